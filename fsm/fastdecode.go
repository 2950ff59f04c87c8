package fsm

import "encoding/binary"

// Fast decoders for the records a snapshot holds a million of (keys,
// versions, signed-write nonces): they read the msgpack body in place
// instead of through msgpack.Decoder's reader interface, a byte at a time
// (issue 16: restart and restore of a million keys). The bytes on disk do
// not change.
//
// They are a fast path only. They take the common encodings — what
// writeRecord produces — and give up (ok false) on anything else: another
// encoding of a value, a field they do not know, truncated input. The
// caller then decodes the same body with msgpack.Unmarshal (the
// DecodeMsgpack methods of decode.go), so whatever the fast path gives up
// on is decoded, or refused, exactly as before. When the fast path does
// succeed its value is the one msgpack.Unmarshal gives:
// TestFastDecoders_MatchMsgpack and FuzzFastDecoders check it.

// mp reads msgpack values from b, at i. (An index rather than reslicing
// b: moving a slice's pointer in a struct passed by pointer costs a write
// barrier while the collector runs, i.e. during most of a large restore.)
type mp struct {
	b  []byte
	i  int
	ok bool
}

func (r *mp) fail() { r.ok = false; r.i = len(r.b) }

// left is how many bytes remain.
func (r *mp) left() int { return len(r.b) - r.i }

// n takes the next k bytes.
func (r *mp) n(k int) []byte {
	if k < 0 || k > len(r.b)-r.i {
		r.fail()
		return nil
	}
	out := r.b[r.i : r.i+k : r.i+k]
	r.i += k
	return out
}

func (r *mp) code() byte {
	if r.i >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

// length reads the length that follows a code of the 8/16/32-bit family.
func (r *mp) length(bits int) int {
	switch bits {
	case 8:
		if b := r.n(1); b != nil {
			return int(b[0])
		}
	case 16:
		if b := r.n(2); b != nil {
			return int(binary.BigEndian.Uint16(b))
		}
	case 32:
		if b := r.n(4); b != nil {
			return int(binary.BigEndian.Uint32(b))
		}
	}
	return 0
}

// mapLen is DecodeMapLen: -1 for nil.
func (r *mp) mapLen() int {
	c := r.code()
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f)
	case c == 0xde:
		return r.length(16)
	case c == 0xdf:
		return r.length(32)
	case c == 0xc0:
		return -1
	}
	r.fail()
	return 0
}

// arrayLen is DecodeArrayLen: -1 for nil.
func (r *mp) arrayLen() int {
	c := r.code()
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f)
	case c == 0xdc:
		return r.length(16)
	case c == 0xdd:
		return r.length(32)
	case c == 0xc0:
		return -1
	}
	r.fail()
	return 0
}

// rawLen is bytesLen: a str or bin value's length, -1 for nil.
func (r *mp) rawLen() int {
	c := r.code()
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return int(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		return r.length(8)
	case c == 0xda || c == 0xc5:
		return r.length(16)
	case c == 0xdb || c == 0xc6:
		return r.length(32)
	case c == 0xc0:
		return -1
	}
	r.fail()
	return 0
}

// raw is a str or bin value's bytes, aliasing b; nil for nil or empty.
func (r *mp) raw() []byte {
	n := r.rawLen()
	if n <= 0 {
		return nil
	}
	return r.n(n)
}

func (r *mp) str() string { return string(r.raw()) }

// shared is decodeShared: the interned copy of a string many records
// repeat, looked up without allocating.
func (r *mp) shared(c *sharedCache) string {
	b := r.raw()
	if len(b) == 0 {
		return ""
	}
	return c.get(b)
}

// bytes is DecodeBytes: nil for nil, a new slice otherwise (empty, not
// nil, for an empty value).
func (r *mp) bytes() []byte {
	n := r.rawLen()
	if n == -1 || !r.ok {
		return nil
	}
	b := r.n(n)
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, n), b...)
}

// int64 is DecodeInt64 (msgpack's conversions included).
func (r *mp) int64() int64 {
	c := r.code()
	switch {
	case c <= 0x7f || c >= 0xe0:
		return int64(int8(c))
	case c == 0xc0:
		return 0
	case c == 0xcc:
		return int64(uint8(r.length(8)))
	case c == 0xd0:
		return int64(int8(r.length(8)))
	case c == 0xcd:
		return int64(uint16(r.length(16)))
	case c == 0xd1:
		return int64(int16(r.length(16)))
	case c == 0xce:
		return int64(uint32(r.length(32)))
	case c == 0xd2:
		return int64(int32(r.length(32)))
	case c == 0xcf || c == 0xd3:
		if b := r.n(8); b != nil {
			return int64(binary.BigEndian.Uint64(b))
		}
		return 0
	}
	r.fail()
	return 0
}

// uint64 is DecodeUint64 (msgpack's conversions included).
func (r *mp) uint64() uint64 {
	c := r.code()
	switch {
	case c <= 0x7f || c >= 0xe0:
		return uint64(int8(c))
	case c == 0xc0:
		return 0
	case c == 0xcc:
		return uint64(uint8(r.length(8)))
	case c == 0xd0:
		return uint64(int8(r.length(8)))
	case c == 0xcd:
		return uint64(uint16(r.length(16)))
	case c == 0xd1:
		return uint64(int16(r.length(16)))
	case c == 0xce:
		return uint64(uint32(r.length(32)))
	case c == 0xd2:
		return uint64(int32(r.length(32)))
	case c == 0xcf || c == 0xd3:
		if b := r.n(8); b != nil {
			return binary.BigEndian.Uint64(b)
		}
		return 0
	}
	r.fail()
	return 0
}

func (r *mp) bool() bool {
	switch r.code() {
	case 0xc0, 0xc2:
		return false
	case 0xc3:
		return true
	}
	r.fail()
	return false
}

// strings is decodeStrings; nil stays nil.
func (r *mp) strings() []string {
	n := r.arrayLen()
	if n < 0 || !r.ok {
		return nil
	}
	if n > r.left() { // each element is at least one byte
		r.fail()
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

// stringMap is decodeStringMap; nil stays nil, {} is an empty map.
func (r *mp) stringMap() map[string]string {
	n := r.mapLen()
	if n < 0 || !r.ok {
		return nil
	}
	if n > r.left()/2 {
		r.fail()
		return nil
	}
	out := make(map[string]string, n)
	for i := 0; i < n && r.ok; i++ {
		k := r.str()
		out[k] = r.str()
	}
	return out
}

// fields reads a record's map header: how many fields follow, or false
// for a nil record (the zero value) or a damaged one.
func (r *mp) fields() (int, bool) {
	n := r.mapLen()
	if !r.ok || n < 0 {
		return 0, false
	}
	if n > r.left()/2 {
		r.fail()
		return 0, false
	}
	return n, true
}

// fastKey decodes a Key record as msgpack.Unmarshal would; ok is false
// when it gave up (see above).
func fastKey(b []byte, c *sharedCache) (*Key, bool) {
	r := mp{b: b, ok: true}
	k := new(Key)
	n, ok := r.fields()
	if !ok {
		return nil, false
	}
	var primary []byte
	for i := 0; i < n && r.ok; i++ {
		switch string(r.raw()) {
		case "id":
			k.ID = r.str()
		case "acct":
			k.AccountID = r.shared(c)
		case "inst":
			k.InstanceID = r.shared(c)
		case "spec":
			k.Spec = r.shared(c)
		case "usage":
			k.Usage = r.shared(c)
		case "origin":
			k.Origin = r.shared(c)
		case "prot":
			k.ProtectionLevel = r.shared(c)
		case "state":
			k.State = r.shared(c)
		case "desc":
			k.Description = r.str()
		case "creator":
			k.Creator = r.shared(c)
		case "ct":
			k.CreatedAt = r.int64()
		case "primary":
			primary = r.raw() // resolved below
		case "versions":
			k.Versions = r.strings()
		case "lastrot":
			k.LastRotation = r.int64()
		case "rotint":
			k.RotationInterval = r.int64()
		case "deldate":
			k.DeleteDate = r.int64()
		case "delprot":
			k.DeletionProtection = r.bool()
		case "delprotdesc":
			k.DeletionProtectionDescription = r.str()
		case "matexp":
			k.MaterialExpireTime = r.int64()
		case "matfp":
			k.MaterialFingerprint = r.bytes()
		case "policy":
			k.Policy = r.shared(c)
		case "creatortype":
			k.CreatorType = r.shared(c)
		case "xacct":
			k.CrossAccount = int(r.int64())
		case "tags":
			if k.Tags = r.stringMap(); k.Tags != nil && len(k.Tags) == 0 {
				k.Tags = noTags // shared, as compactLoaded would make it
			}
		case "ci":
			k.CreateIndex = r.uint64()
		case "mi":
			k.ModifyIndex = r.uint64()
		default:
			r.fail() // a field this build does not know: the reference decoder skips it
		}
	}
	if !r.ok {
		return nil, false
	}
	// The primary version is one of the versions: one copy of its id.
	if primary != nil {
		for _, v := range k.Versions {
			if v == string(primary) {
				k.PrimaryVersion = v
				break
			}
		}
		if k.PrimaryVersion == "" {
			k.PrimaryVersion = string(primary)
		}
	}
	return k, true
}

// fastKeyVersion decodes a KeyVersion record as msgpack.Unmarshal would.
func fastKeyVersion(b []byte) (*KeyVersion, bool) {
	r := mp{b: b, ok: true}
	v := new(KeyVersion)
	n, ok := r.fields()
	if !ok {
		return nil, false
	}
	for i := 0; i < n && r.ok; i++ {
		switch string(r.raw()) {
		case "id":
			v.ID = r.str()
		case "key":
			v.KeyID = r.str()
		case "ct":
			v.CreatedAt = r.int64()
		case "wm":
			v.WrappedMaterial = r.bytes()
		case "pub":
			v.PublicKey = r.bytes()
		case "ci":
			v.CreateIndex = r.uint64()
		case "dom":
			v.Domain = r.str()
		default:
			r.fail()
		}
	}
	return v, r.ok
}

// fastNonce decodes a signedNonceRecord as msgpack.Unmarshal would.
func fastNonce(b []byte, c *sharedCache) (signedNonceRecord, bool) {
	r := mp{b: b, ok: true}
	var rec signedNonceRecord
	n, ok := r.fields()
	if !ok {
		return rec, false
	}
	for i := 0; i < n && r.ok; i++ {
		switch string(r.raw()) {
		case "ak":
			rec.AccessKeyID = r.shared(c)
		case "nonce":
			rec.Nonce = r.str()
		case "seq":
			rec.Seq = uint32(r.uint64())
		case "exp":
			rec.Expires = r.int64()
		default:
			r.fail()
		}
	}
	return rec, r.ok
}

// sharedCache is decodeShared's table for one snapshot load, without its
// lock: the interned copy of each short string the load met, up to
// sharedMaxEntries of them.
type sharedCache struct {
	m map[string]string
}

func (c *sharedCache) get(b []byte) string {
	if c.m == nil {
		c.m = make(map[string]string)
	}
	if s, ok := c.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := intern(string(b))
	if len(b) <= sharedMaxLen && len(c.m) < sharedMaxEntries {
		c.m[s] = s
	}
	return s
}
