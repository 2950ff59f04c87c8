package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
)

// EmptyPayloadHash is hex(SHA-256("")), the x-acs-content-sha256 of every
// RPC call the SDK makes (parameters travel in the query, the body is empty).
const EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// HashPayload returns hex(SHA-256(body)), the value of x-acs-content-sha256.
func HashPayload(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// PercentEncode encodes s the way both signatures need it: RFC 3986
// unreserved characters (A-Z a-z 0-9 - _ . ~) stay, every other byte of the
// UTF-8 form becomes %XX with upper-case hex. So a space is %20 (never +),
// * is %2A and ~ is left alone.
func PercentEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&0x0f])
	}
	return b.String()
}

// appendPercentEncoded appends PercentEncode(s) to dst: runs of
// unreserved bytes are copied whole.
func appendPercentEncoded(dst []byte, s string) []byte {
	const hexUpper = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreservedByte[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0x0f])
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// unreservedByte is unreserved as a table.
var unreservedByte = func() (t [256]bool) {
	for c := range t {
		t[c] = unreserved(byte(c))
	}
	return t
}()

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// CanonicalQuery renders decoded parameters as the signatures see them:
// names sorted by byte order, name and value percent-encoded, "name=value"
// joined by "&". A name with several values contributes one pair per value,
// values sorted, so the result does not depend on the order on the wire.
//
// The input must be decoded values (url.ParseQuery semantics): the SDK writes
// a space as "+" on the wire but signs it as "%20", so a server has to decode
// the raw query and re-encode it, never sign the raw string.
func CanonicalQuery(q url.Values) string {
	var buf [512]byte
	return string(appendCanonicalQuery(buf[:0], q))
}

// appendCanonicalQuery appends CanonicalQuery(q) to dst. The hot path of
// every signature check: no allocation for up to 16 parameters with single
// values beyond dst's growth.
func appendCanonicalQuery(dst []byte, q url.Values) []byte {
	var kbuf [16]string
	keys := kbuf[:0]
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	first := true
	for _, k := range keys {
		vs := q[k]
		if len(vs) > 1 {
			vs = slices.Clone(vs)
			slices.Sort(vs)
		}
		for _, v := range vs {
			if !first {
				dst = append(dst, '&')
			}
			first = false
			dst = appendPercentEncoded(dst, k)
			dst = append(dst, '=')
			dst = appendPercentEncoded(dst, v)
		}
	}
	return dst
}

// appendCanonicalFlatQuery is appendCanonicalQuery of a query with one
// value per name.
func appendCanonicalFlatQuery(dst []byte, q map[string]string) []byte {
	var kbuf [16]string
	keys := kbuf[:0]
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = appendPercentEncoded(dst, k)
		dst = append(dst, '=')
		dst = appendPercentEncoded(dst, q[k])
	}
	return dst
}

// CanonicalURI percent-encodes a decoded path one segment at a time (the
// slashes stay). The empty path is "/", which is every RPC action's URI.
func CanonicalURI(path string) string {
	if path == "" || path == "/" {
		return "/"
	}
	return string(appendCanonicalURI(nil, path))
}

// appendCanonicalURI appends CanonicalURI(path) to dst.
func appendCanonicalURI(dst []byte, path string) []byte {
	if path == "" {
		return append(dst, '/')
	}
	for {
		seg, rest, more := strings.Cut(path, "/")
		dst = appendPercentEncoded(dst, seg)
		if !more {
			return dst
		}
		dst = append(dst, '/')
		path = rest
	}
}
