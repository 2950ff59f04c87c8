package fsm

import (
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// decodeShared decodes a string that many records repeat (account and
// instance ids, specs, states, the default policy) to its interned copy
// without allocating one per record: a restore of a million keys
// otherwise makes ~500 MB of strings only to drop them for the interned
// ones. Strings up to sharedMaxLen are looked up in a bounded table; longer
// ones, and any once the table is full, are decoded and interned as usual.
func decodeShared(d *msgpack.Decoder) (string, error) {
	n, err := d.DecodeBytesLen()
	if err != nil || n <= 0 {
		return "", err
	}
	if n > sharedMaxLen {
		b, err := readClaimed(d, n)
		if err != nil {
			return "", err
		}
		return intern(string(b)), nil
	}
	// Read into the table's own buffer, under its lock: a buffer of this
	// call's would escape to the heap through the reader.
	shared.mu.Lock()
	defer shared.mu.Unlock()
	b := shared.buf[:n]
	if err := d.ReadFull(b); err != nil {
		return "", err
	}
	if s, ok := shared.m[string(b)]; ok { // no allocation for the lookup
		return s, nil
	}
	s := intern(string(b))
	if len(shared.m) < sharedMaxEntries {
		shared.m[s] = s
	}
	return s, nil
}

const (
	sharedMaxLen     = 1024
	sharedMaxEntries = 1 << 14
)

// A record's lengths are claims of bytes that may not hold them (a damaged
// snapshot, a hostile upload): the decoders below allocate for what
// arrives, not for what is claimed, as msgpack's own decoder does.
// They allocate at most allocAheadBytes (readClaimed) or
// allocAheadElems (decodeStrings, decodeStringMap) ahead of what has
// arrived.
const (
	allocAheadBytes = 64 << 10
	allocAheadElems = 1 << 10
)

// readClaimed reads the n bytes of a value whose length d has just decoded,
// growing the buffer with what arrives.
func readClaimed(d *msgpack.Decoder, n int) ([]byte, error) {
	b := make([]byte, 0, min(n, allocAheadBytes))
	for len(b) < n {
		k := min(n-len(b), allocAheadBytes)
		b = slices.Grow(b, k)[:len(b)+k]
		if err := d.ReadFull(b[len(b)-k:]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

var shared = struct {
	mu  sync.Mutex
	m   map[string]string
	buf []byte
}{m: map[string]string{}, buf: make([]byte, sharedMaxLen)}

// Hand-written msgpack decoders for the records there are a million of
// (issue 16: restart and restore of a million keys). They read exactly
// what the reflection decoder reads — the same field names, unknown fields
// skipped, nil as the zero value — and encoding is unchanged (reflection,
// so the bytes on disk are the same). TestDecoders_MatchReflection fills
// every field of each type by reflection and fails when a field is added
// to a record but not here.

var (
	_ msgpack.CustomDecoder = (*Key)(nil)
	_ msgpack.CustomDecoder = (*KeyVersion)(nil)
	_ msgpack.CustomDecoder = (*signedNonceRecord)(nil)
)

// DecodeMsgpack decodes a nonce record as the reflection decoder would.
func (r *signedNonceRecord) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	*r = signedNonceRecord{}
	for i := 0; i < n; i++ {
		name, err := d.DecodeString()
		if err != nil {
			return err
		}
		switch name {
		case "ak":
			r.AccessKeyID, err = decodeShared(d)
		case "nonce":
			r.Nonce, err = d.DecodeString()
		case "seq":
			r.Seq, err = d.DecodeUint32()
		case "exp":
			r.Expires, err = d.DecodeInt64()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack decodes a Key as the reflection decoder would.
func (k *Key) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	*k = Key{}
	for i := 0; i < n; i++ {
		name, err := d.DecodeString()
		if err != nil {
			return err
		}
		switch name {
		case "id":
			k.ID, err = d.DecodeString()
		case "acct":
			k.AccountID, err = decodeShared(d)
		case "inst":
			k.InstanceID, err = decodeShared(d)
		case "spec":
			k.Spec, err = decodeShared(d)
		case "usage":
			k.Usage, err = decodeShared(d)
		case "origin":
			k.Origin, err = decodeShared(d)
		case "prot":
			k.ProtectionLevel, err = decodeShared(d)
		case "state":
			k.State, err = decodeShared(d)
		case "desc":
			k.Description, err = d.DecodeString()
		case "creator":
			k.Creator, err = decodeShared(d)
		case "ct":
			k.CreatedAt, err = d.DecodeInt64()
		case "primary":
			k.PrimaryVersion, err = d.DecodeString()
		case "versions":
			k.Versions, err = decodeStrings(d)
		case "lastrot":
			k.LastRotation, err = d.DecodeInt64()
		case "rotint":
			k.RotationInterval, err = d.DecodeInt64()
		case "deldate":
			k.DeleteDate, err = d.DecodeInt64()
		case "delprot":
			k.DeletionProtection, err = d.DecodeBool()
		case "delprotdesc":
			k.DeletionProtectionDescription, err = d.DecodeString()
		case "matexp":
			k.MaterialExpireTime, err = d.DecodeInt64()
		case "matfp":
			k.MaterialFingerprint, err = d.DecodeBytes()
		case "policy":
			k.Policy, err = decodeShared(d)
		case "creatortype":
			k.CreatorType, err = decodeShared(d)
		case "xacct":
			k.CrossAccount, err = d.DecodeInt()
		case "tags":
			k.Tags, err = decodeStringMap(d)
		case "ci":
			k.CreateIndex, err = d.DecodeUint64()
		case "mi":
			k.ModifyIndex, err = d.DecodeUint64()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack decodes a KeyVersion as the reflection decoder would.
func (v *KeyVersion) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	*v = KeyVersion{}
	for i := 0; i < n; i++ {
		name, err := d.DecodeString()
		if err != nil {
			return err
		}
		switch name {
		case "id":
			v.ID, err = d.DecodeString()
		case "key":
			v.KeyID, err = d.DecodeString()
		case "ct":
			v.CreatedAt, err = d.DecodeInt64()
		case "wm":
			v.WrappedMaterial, err = d.DecodeBytes()
		case "pub":
			v.PublicKey, err = d.DecodeBytes()
		case "ci":
			v.CreateIndex, err = d.DecodeUint64()
		case "dom":
			v.Domain, err = d.DecodeString()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeStrings decodes a []string; nil stays nil.
func decodeStrings(d *msgpack.Decoder) ([]string, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]string, 0, min(n, allocAheadElems))
	for i := 0; i < n; i++ {
		s, err := d.DecodeString()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// decodeStringMap decodes a map[string]string; nil stays nil, {} is an
// empty map.
func decodeStringMap(d *msgpack.Decoder) (map[string]string, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, err
	}
	out := make(map[string]string, min(n, allocAheadElems))
	for i := 0; i < n; i++ {
		k, err := d.DecodeString()
		if err != nil {
			return nil, err
		}
		if out[k], err = d.DecodeString(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
