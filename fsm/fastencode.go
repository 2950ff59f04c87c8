package fsm

import (
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// Hand-written encoders of the three records a large snapshot is made of
// (a million keys: a key, a version and a nonce each), writing exactly the
// bytes the reflection encoder of a recordEncoder writes (a map of the
// fields in declaration order, omitempty fields left out when empty, int64
// and uint64 in their full widths, int compact, map keys sorted), with the
// encoder's own primitives but without reflection (issue 16: reflection
// was ~40 % of a million-key save). TestFastEncoders_MatchReflection fills
// every field, so a field added to one of these types but not here fails
// it.

// fieldWriter writes a record's fields, each a name then a value, keeping
// the first error.
type fieldWriter struct {
	e   *msgpack.Encoder
	err error
}

func (w *fieldWriter) name(n string) bool {
	if w.err == nil {
		w.err = w.e.EncodeString(n)
	}
	return w.err == nil
}

func (w *fieldWriter) str(n, v string) {
	if w.name(n) {
		w.err = w.e.EncodeString(v)
	}
}

func (w *fieldWriter) i64(n string, v int64) {
	if w.name(n) {
		w.err = w.e.EncodeInt64(v)
	}
}

func (w *fieldWriter) u64(n string, v uint64) {
	if w.name(n) {
		w.err = w.e.EncodeUint64(v)
	}
}

func (w *fieldWriter) bin(n string, v []byte) {
	if w.name(n) {
		w.err = w.e.EncodeBytes(v)
	}
}

// encodeKeyRecord writes k as recordEncoder's e.Encode(k) would.
func encodeKeyRecord(e *msgpack.Encoder, k *Key) error {
	if k == nil {
		return e.EncodeNil()
	}
	w := fieldWriter{e: e, err: e.EncodeMapLen(26)}
	w.str("id", k.ID)
	w.str("acct", k.AccountID)
	w.str("inst", k.InstanceID)
	w.str("spec", k.Spec)
	w.str("usage", k.Usage)
	w.str("origin", k.Origin)
	w.str("prot", k.ProtectionLevel)
	w.str("state", k.State)
	w.str("desc", k.Description)
	w.str("creator", k.Creator)
	w.i64("ct", k.CreatedAt)
	w.str("primary", k.PrimaryVersion)
	if w.name("versions") {
		w.err = encodeStrings(e, k.Versions)
	}
	w.i64("lastrot", k.LastRotation)
	w.i64("rotint", k.RotationInterval)
	w.i64("deldate", k.DeleteDate)
	if w.name("delprot") {
		w.err = e.EncodeBool(k.DeletionProtection)
	}
	w.str("delprotdesc", k.DeletionProtectionDescription)
	w.i64("matexp", k.MaterialExpireTime)
	w.bin("matfp", k.MaterialFingerprint)
	w.str("policy", k.Policy)
	w.str("creatortype", k.CreatorType)
	if w.name("xacct") {
		w.err = e.EncodeInt(int64(k.CrossAccount))
	}
	if w.name("tags") {
		w.err = encodeSortedStringMap(e, k.Tags)
	}
	w.u64("ci", k.CreateIndex)
	w.u64("mi", k.ModifyIndex)
	return w.err
}

// encodeVersionRecord writes v as recordEncoder's e.Encode(v) would.
func encodeVersionRecord(e *msgpack.Encoder, v *KeyVersion) error {
	if v == nil {
		return e.EncodeNil()
	}
	n := 6
	if v.Domain != "" {
		n++
	}
	w := fieldWriter{e: e, err: e.EncodeMapLen(n)}
	w.str("id", v.ID)
	w.str("key", v.KeyID)
	w.i64("ct", v.CreatedAt)
	w.bin("wm", v.WrappedMaterial)
	w.bin("pub", v.PublicKey)
	w.u64("ci", v.CreateIndex)
	if v.Domain != "" {
		w.str("dom", v.Domain)
	}
	return w.err
}

// encodeNonceRecord writes r as recordEncoder's e.Encode(r) would.
func encodeNonceRecord(e *msgpack.Encoder, r *signedNonceRecord) error {
	n := 3
	if r.Seq != 0 {
		n++
	}
	w := fieldWriter{e: e, err: e.EncodeMapLen(n)}
	w.str("ak", r.AccessKeyID)
	w.str("nonce", r.Nonce)
	if r.Seq != 0 && w.name("seq") {
		w.err = e.EncodeUint32(r.Seq)
	}
	w.i64("exp", r.Expires)
	return w.err
}

// encodeStrings writes a []string as the reflection encoder does: nil as
// nil, else an array.
func encodeStrings(e *msgpack.Encoder, s []string) error {
	if s == nil {
		return e.EncodeNil()
	}
	err := e.EncodeArrayLen(len(s))
	for _, v := range s {
		if err != nil {
			break
		}
		err = e.EncodeString(v)
	}
	return err
}

// encodeSortedStringMap writes a map[string]string as the reflection
// encoder with sorted map keys does.
func encodeSortedStringMap(e *msgpack.Encoder, m map[string]string) error {
	if m == nil {
		return e.EncodeNil()
	}
	w := fieldWriter{e: e, err: e.EncodeMapLen(len(m))}
	if len(m) > 0 {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			w.str(k, m[k])
		}
	}
	return w.err
}
