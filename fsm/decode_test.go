package fsm

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// fillAll sets every field of the struct v points to a non-zero value.
func fillAll(t testing.TB, v reflect.Value, seed int) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString(fmt.Sprintf("%s-%d", name, seed))
		case reflect.Int, reflect.Int64, reflect.Int32:
			f.SetInt(int64(1000 + i + seed))
		case reflect.Uint64, reflect.Uint32:
			f.SetUint(uint64(2000 + i + seed))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			switch f.Type().Elem().Kind() {
			case reflect.Uint8:
				f.SetBytes([]byte(name))
			case reflect.String:
				f.Set(reflect.ValueOf([]string{name + "-a", name + "-b"}))
			default:
				t.Fatalf("field %s: a slice kind the test does not fill; teach it and the decoder", name)
			}
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{name: "x", "k": "v"}))
		default:
			t.Fatalf("field %s of kind %s: teach the test and fsm/decode.go", name, f.Kind())
		}
	}
}

// reflectDecode decodes with the reflection decoder, bypassing the
// custom one (through a type with the same fields and tags but no methods).
func reflectDecode[T any, Plain any](t *testing.T, b []byte) T {
	var p Plain
	if err := msgpack.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return *(*T)(reflect.ValueOf(&p).UnsafePointer())
}

type plainKey Key
type plainKeyVersion KeyVersion
type plainNonce signedNonceRecord

// The hand-written decoders read every field the reflection decoder reads,
// nil and empty values alike, skip unknown fields, and a record with a
// field the decoder misses fails here.
func TestDecoders_MatchReflection(t *testing.T) {
	var k Key
	fillAll(t, reflect.ValueOf(&k).Elem(), 1)
	var v KeyVersion
	fillAll(t, reflect.ValueOf(&v).Elem(), 2)
	var nr signedNonceRecord
	fillAll(t, reflect.ValueOf(&nr).Elem(), 3)
	b, _ := msgpack.Marshal(nr)
	var gotNonce signedNonceRecord
	if err := msgpack.Unmarshal(b, &gotNonce); err != nil || gotNonce != reflectDecode[signedNonceRecord, plainNonce](t, b) || gotNonce != nr {
		t.Fatalf("nonce record, every field: %+v %v", gotNonce, err)
	}
	for _, c := range []struct {
		name string
		in   any
		dec  func(b []byte) (any, any)
	}{
		{"key, every field", k, func(b []byte) (any, any) {
			var got Key
			if err := msgpack.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			return got, reflectDecode[Key, plainKey](t, b)
		}},
		{"key, zero", Key{}, func(b []byte) (any, any) {
			var got Key
			msgpack.Unmarshal(b, &got)
			return got, reflectDecode[Key, plainKey](t, b)
		}},
		{"key, empty tags and versions", Key{ID: "k", Tags: map[string]string{}, Versions: []string{}}, func(b []byte) (any, any) {
			var got Key
			msgpack.Unmarshal(b, &got)
			return got, reflectDecode[Key, plainKey](t, b)
		}},
		{"version, every field", v, func(b []byte) (any, any) {
			var got KeyVersion
			if err := msgpack.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			return got, reflectDecode[KeyVersion, plainKeyVersion](t, b)
		}},
		{"nonce record", signedNonceRecord{AccessKeyID: "LTAI1", Nonce: "n-1", Seq: 3, Expires: 99}, func(b []byte) (any, any) {
			var got signedNonceRecord
			if err := msgpack.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			return got, reflectDecode[signedNonceRecord, plainNonce](t, b)
		}},
		{"command with both", CreateKeyCmd{Now: 5, Key: k, Version: v, Alias: "alias/x"}, func(b []byte) (any, any) {
			var got CreateKeyCmd
			if err := msgpack.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			return got, CreateKeyCmd{Now: 5, Key: k, Version: v, Alias: "alias/x"}
		}},
	} {
		b, err := msgpack.Marshal(c.in)
		if err != nil {
			t.Fatal(err)
		}
		got, want := c.dec(b)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c.name, got, want)
		}
	}
	// An unknown field (written by a newer version) is skipped.
	b, _ = msgpack.Marshal(map[string]any{"id": "k1", "future": map[string]any{"a": []int{1, 2}}, "state": "Enabled"})
	var got Key
	if err := msgpack.Unmarshal(b, &got); err != nil || got.ID != "k1" || got.State != "Enabled" {
		t.Fatalf("unknown field: %+v %v", got, err)
	}
	if !reflect.DeepEqual(k, func() Key { var x Key; b, _ := msgpack.Marshal(k); msgpack.Unmarshal(b, &x); return x }()) {
		t.Fatal("round trip")
	}
}
