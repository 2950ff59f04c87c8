package fsm

import (
	"sort"

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

// encodeKeyRecord writes k as recordEncoder's e.Encode(k) would.
func encodeKeyRecord(e *msgpack.Encoder, k *Key) error {
	if k == nil {
		return e.EncodeNil()
	}
	var err error
	str := func(name, v string) {
		if err == nil {
			if err = e.EncodeString(name); err == nil {
				err = e.EncodeString(v)
			}
		}
	}
	i64 := func(name string, v int64) {
		if err == nil {
			if err = e.EncodeString(name); err == nil {
				err = e.EncodeInt64(v)
			}
		}
	}
	u64 := func(name string, v uint64) {
		if err == nil {
			if err = e.EncodeString(name); err == nil {
				err = e.EncodeUint64(v)
			}
		}
	}
	name := func(n string) bool {
		if err == nil {
			err = e.EncodeString(n)
		}
		return err == nil
	}
	if err = e.EncodeMapLen(26); err != nil {
		return err
	}
	str("id", k.ID)
	str("acct", k.AccountID)
	str("inst", k.InstanceID)
	str("spec", k.Spec)
	str("usage", k.Usage)
	str("origin", k.Origin)
	str("prot", k.ProtectionLevel)
	str("state", k.State)
	str("desc", k.Description)
	str("creator", k.Creator)
	i64("ct", k.CreatedAt)
	str("primary", k.PrimaryVersion)
	if name("versions") {
		err = encodeStrings(e, k.Versions)
	}
	i64("lastrot", k.LastRotation)
	i64("rotint", k.RotationInterval)
	i64("deldate", k.DeleteDate)
	if name("delprot") {
		err = e.EncodeBool(k.DeletionProtection)
	}
	str("delprotdesc", k.DeletionProtectionDescription)
	i64("matexp", k.MaterialExpireTime)
	if name("matfp") {
		err = e.EncodeBytes(k.MaterialFingerprint)
	}
	str("policy", k.Policy)
	str("creatortype", k.CreatorType)
	if name("xacct") {
		err = e.EncodeInt(int64(k.CrossAccount))
	}
	if name("tags") {
		err = encodeSortedStringMap(e, k.Tags)
	}
	u64("ci", k.CreateIndex)
	u64("mi", k.ModifyIndex)
	return err
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
	err := e.EncodeMapLen(n)
	str := func(name, s string) {
		if err == nil {
			if err = e.EncodeString(name); err == nil {
				err = e.EncodeString(s)
			}
		}
	}
	bin := func(name string, b []byte) {
		if err == nil {
			if err = e.EncodeString(name); err == nil {
				err = e.EncodeBytes(b)
			}
		}
	}
	str("id", v.ID)
	str("key", v.KeyID)
	if err == nil {
		if err = e.EncodeString("ct"); err == nil {
			err = e.EncodeInt64(v.CreatedAt)
		}
	}
	bin("wm", v.WrappedMaterial)
	bin("pub", v.PublicKey)
	if err == nil {
		if err = e.EncodeString("ci"); err == nil {
			err = e.EncodeUint64(v.CreateIndex)
		}
	}
	if v.Domain != "" {
		str("dom", v.Domain)
	}
	return err
}

// encodeNonceRecord writes r as recordEncoder's e.Encode(r) would.
func encodeNonceRecord(e *msgpack.Encoder, r *signedNonceRecord) error {
	n := 3
	if r.Seq != 0 {
		n++
	}
	if err := e.EncodeMapLen(n); err != nil {
		return err
	}
	if err := e.EncodeString("ak"); err != nil {
		return err
	}
	if err := e.EncodeString(r.AccessKeyID); err != nil {
		return err
	}
	if err := e.EncodeString("nonce"); err != nil {
		return err
	}
	if err := e.EncodeString(r.Nonce); err != nil {
		return err
	}
	if r.Seq != 0 {
		if err := e.EncodeString("seq"); err != nil {
			return err
		}
		if err := e.EncodeUint32(r.Seq); err != nil {
			return err
		}
	}
	if err := e.EncodeString("exp"); err != nil {
		return err
	}
	return e.EncodeInt64(r.Expires)
}

// encodeStrings writes a []string as the reflection encoder does: nil as
// nil, else an array.
func encodeStrings(e *msgpack.Encoder, s []string) error {
	if s == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(s)); err != nil {
		return err
	}
	for _, v := range s {
		if err := e.EncodeString(v); err != nil {
			return err
		}
	}
	return nil
}

// encodeSortedStringMap writes a map[string]string as the reflection
// encoder with sorted map keys does.
func encodeSortedStringMap(e *msgpack.Encoder, m map[string]string) error {
	if m == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeMapLen(len(m)); err != nil {
		return err
	}
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := e.EncodeString(k); err != nil {
			return err
		}
		if err := e.EncodeString(m[k]); err != nil {
			return err
		}
	}
	return nil
}
