package fsm

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
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

// A length that the body cannot hold is refused without allocating for it:
// a damaged or hostile record in a snapshot, a restore upload or a log entry
// claiming a long string, array or map costs what its bytes are, not what it
// claims (the fuzzer found decodeShared allocating 4 GiB for a 32-byte
// nonce record, which ended the process).
func TestDecoders_ClaimedLengthsBeyondTheBodyAllocateLittle(t *testing.T) {
	field := func(name string, header ...byte) []byte {
		b := []byte{0x81, 0xa0 | byte(len(name))}
		b = append(b, name...)
		return append(b, append(header, "short"...)...)
	}
	const claim = 1 << 26 // 64 Mi elements or bytes
	str32 := []byte{0xdb, claim >> 24, 0, 0, 0}
	arr32 := []byte{0xdd, claim >> 24, 0, 0, 0}
	map32 := []byte{0xdf, claim >> 24, 0, 0, 0}
	for _, tc := range []struct {
		name string
		body []byte
		into any
	}{
		{"a key's shared string", field("acct", str32...), new(Key)},
		{"a key's versions", field("versions", arr32...), new(Key)},
		{"a key's tags", field("tags", map32...), new(Key)},
		{"a nonce record's access key", field("ak", str32...), new(signedNonceRecord)},
		{"the longest string", field("acct", 0xdb, 0xff, 0xff, 0xff, 0xff), new(Key)},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := msgpack.Unmarshal(tc.body, tc.into)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: decoded %d bytes claiming %d", tc.name, len(tc.body), claim)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("%s: %d bytes allocated for a %d-byte body", tc.name, got, len(tc.body))
		}
	}
}

// Values longer than what the decoders allocate ahead still decode whole.
func TestDecoders_LongValuesDecodeWhole(t *testing.T) {
	k := Key{ID: "key-1", Policy: strings.Repeat("p", 3*allocAheadBytes+7), Tags: map[string]string{}}
	for i := 0; i < 3*allocAheadElems+1; i++ {
		k.Versions = append(k.Versions, fmt.Sprintf("v-%d", i))
		k.Tags[fmt.Sprintf("t-%d", i)] = fmt.Sprint(i)
	}
	b, err := msgpack.Marshal(&k)
	if err != nil {
		t.Fatal(err)
	}
	var got Key
	if err := msgpack.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, k) {
		t.Fatalf("decoded key differs: policy %d bytes (want %d), %d versions (want %d), %d tags (want %d)",
			len(got.Policy), len(k.Policy), len(got.Versions), len(k.Versions), len(got.Tags), len(k.Tags))
	}
}
