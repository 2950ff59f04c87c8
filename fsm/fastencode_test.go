package fsm

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raftkms/raftkms/internal/testutil"
)

// The hand-written record encoders write the reflection encoder's bytes,
// for every field filled, for zero values, nil against empty slices and
// maps, several tags, integers at their extremes and strings past each
// msgpack length class; and writeRecord uses them.
func TestFastEncoders_MatchReflection(t *testing.T) {
	reflectBytes := func(v any) []byte { return testutil.SortedMsgpack(t, v) }
	fastBytes := func(f func(e *msgpack.Encoder) error) []byte {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.SetSortMapKeys(true)
		if err := f(enc); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	var full Key
	fillAll(t, reflect.ValueOf(&full).Elem(), 7)
	long := strings.Repeat("x", 70000)
	keys := map[string]*Key{
		"every field":    &full,
		"zero":           {},
		"empty, not nil": {ID: "k", Versions: []string{}, Tags: map[string]string{}, MaterialFingerprint: []byte{}},
		"extremes": {ID: strings.Repeat("i", 31), Description: strings.Repeat("d", 32), Policy: strings.Repeat("p", 256), Creator: long,
			CreatedAt: math.MinInt64, DeleteDate: -1, MaterialExpireTime: math.MaxInt64, CrossAccount: -70000, CreateIndex: math.MaxUint64,
			Tags: map[string]string{"b": "2", "a": "1", "c": long, "": ""}, Versions: make([]string, 20)},
		"a nil key": nil,
	}
	for name, k := range keys {
		if got, want := fastBytes(func(e *msgpack.Encoder) error { return encodeKeyRecord(e, k) }), reflectBytes(k); !bytes.Equal(got, want) {
			t.Errorf("key, %s: the hand encoder's bytes differ from reflection's", name)
		}
	}
	var fullV KeyVersion
	fillAll(t, reflect.ValueOf(&fullV).Elem(), 8)
	for name, v := range map[string]*KeyVersion{
		"every field":   &fullV,
		"zero":          {},
		"no domain":     {ID: "v", KeyID: "k", WrappedMaterial: []byte{}, PublicKey: make([]byte, 300), CreateIndex: 1 << 40},
		"a nil version": nil,
	} {
		if got, want := fastBytes(func(e *msgpack.Encoder) error { return encodeVersionRecord(e, v) }), reflectBytes(v); !bytes.Equal(got, want) {
			t.Errorf("version, %s: the hand encoder's bytes differ from reflection's", name)
		}
	}
	var fullN signedNonceRecord
	fillAll(t, reflect.ValueOf(&fullN).Elem(), 9)
	for name, r := range map[string]signedNonceRecord{
		"every field": fullN,
		"zero":        {},
		"no seq":      {AccessKeyID: "LTAI", Nonce: long, Expires: math.MaxInt64},
		"large seq":   {AccessKeyID: "LTAI", Nonce: "n", Seq: math.MaxUint32, Expires: -5},
	} {
		if got, want := fastBytes(func(e *msgpack.Encoder) error { return encodeNonceRecord(e, &r) }), reflectBytes(r); !bytes.Equal(got, want) {
			t.Errorf("nonce, %s: the hand encoder's bytes differ from reflection's", name)
		}
	}
	// writeRecord frames the same bytes.
	var rec bytes.Buffer
	if err := writeRecord(&rec, recKey, &full); err != nil {
		t.Fatal(err)
	}
	if want := reflectBytes(&full); !bytes.Equal(rec.Bytes()[5:], want) {
		t.Error("writeRecord's key record differs from reflection's")
	}
}
