package fsm

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// fastRecords are records of the three types the fast decoders read,
// with every field set, zero, and the edge values of their fields.
func fastRecords(t testing.TB) []any {
	var k Key
	fillAll(t, reflect.ValueOf(&k).Elem(), 1)
	var v KeyVersion
	fillAll(t, reflect.ValueOf(&v).Elem(), 2)
	var nr signedNonceRecord
	fillAll(t, reflect.ValueOf(&nr).Elem(), 3)
	svc := scaleKeyCmd(7)
	return []any{
		&k, &Key{}, &Key{ID: "k", Tags: map[string]string{}, Versions: []string{}, MaterialFingerprint: []byte{}},
		&svc.Key,
		&Key{ID: "k2", CreatedAt: math.MinInt64, DeleteDate: -1, LastRotation: math.MaxInt64, CreateIndex: math.MaxUint64,
			ModifyIndex: 1 << 40, CrossAccount: -3, Description: string(bytes.Repeat([]byte("d"), 70000)),
			Policy: string(bytes.Repeat([]byte("p"), 300)), Tags: map[string]string{"a": "", "": "b"}},
		&v, &KeyVersion{}, &KeyVersion{ID: "v", WrappedMaterial: []byte{}, PublicKey: bytes.Repeat([]byte{1}, 300)},
		&svc.Version,
		&nr, &signedNonceRecord{}, &signedNonceRecord{AccessKeyID: "LTAI1", Nonce: "n", Seq: math.MaxUint32, Expires: -5},
	}
}

// fastDecode runs the fast decoder of v's type on b; it returns the value
// decoded and whether the fast path took it.
func fastDecode(v any, b []byte) (any, bool) {
	var c sharedCache
	switch v.(type) {
	case *Key:
		k, ok := fastKey(b, &c)
		return k, ok
	case *KeyVersion:
		kv, ok := fastKeyVersion(b)
		return kv, ok
	case *signedNonceRecord:
		r, ok := fastNonce(b, &c)
		return &r, ok
	}
	panic("no fast decoder")
}

// The fast decoders take every record as writeRecord encodes it (else a
// restore silently falls back to the slow path) and give what
// msgpack.Unmarshal (decode.go's DecodeMsgpack) gives.
func TestFastDecoders_MatchMsgpack(t *testing.T) {
	for _, rec := range fastRecords(t) {
		var buf bytes.Buffer
		if err := writeRecord(&buf, 1, rec); err != nil {
			t.Fatal(err)
		}
		body := buf.Bytes()[5:]
		got, ok := fastDecode(rec, body)
		if !ok {
			t.Fatalf("%T %+.200v: the fast decoder gave up on writeRecord's encoding", rec, rec)
		}
		want := reflect.New(reflect.TypeOf(rec).Elem()).Interface()
		if err := msgpack.Unmarshal(body, want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T:\n got %#.300v\nwant %#.300v", rec, got, want)
		}
		// Every truncation is given up on (the slow path then refuses it).
		for n := 0; n < len(body); n++ {
			if _, ok := fastDecode(rec, body[:n]); ok && n < len(body) {
				// A prefix may be a complete record of fewer fields only
				// if the reference decoder agrees.
				checkFastAgainstMsgpack(t, rec, body[:n])
			}
		}
	}
}

// checkFastAgainstMsgpack fails when the fast decoder accepts b and
// msgpack.Unmarshal does not, or they disagree.
func checkFastAgainstMsgpack(t *testing.T, typ any, b []byte) {
	t.Helper()
	got, ok := fastDecode(typ, b)
	if !ok {
		return
	}
	want := reflect.New(reflect.TypeOf(typ).Elem()).Interface()
	if err := msgpack.Unmarshal(b, want); err != nil {
		t.Fatalf("%T: the fast decoder took %x, msgpack.Unmarshal refuses it: %v", typ, b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T of %x:\n fast    %#v\n msgpack %#v", typ, b, got, want)
	}
}

// FuzzFastDecoders: on any bytes, what the fast decoders take they decode
// as msgpack.Unmarshal does; what they give up on goes to it anyway.
func FuzzFastDecoders(f *testing.F) {
	for _, rec := range fastRecords(f) {
		if kk, ok := rec.(*Key); ok && len(kk.Description) > 1000 {
			continue // keep the corpus small
		}
		var buf bytes.Buffer
		if err := writeRecord(&buf, 1, rec); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes()[5:])
	}
	f.Add([]byte{0xc0})
	f.Add([]byte{0x81, 0xa2, 'i', 'd', 0xc4, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range []any{&Key{}, &KeyVersion{}, &signedNonceRecord{}} {
			checkFastAgainstMsgpack(t, typ, b)
		}
	})
}
