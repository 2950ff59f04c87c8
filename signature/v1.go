package signature

import (
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"time"
)

// Parameter names of the V1 (HMAC-SHA1) scheme.
const (
	ParamAccessKeyID      = "AccessKeyId"
	ParamSignature        = "Signature"
	ParamSignatureMethod  = "SignatureMethod"
	ParamSignatureVersion = "SignatureVersion"
	ParamSignatureNonce   = "SignatureNonce"
	ParamTimestamp        = "Timestamp"
	ParamSecurityToken    = "SecurityToken"
	ParamFormat           = "Format"

	// V1Method and V1Version are the only values accepted for
	// SignatureMethod and SignatureVersion.
	V1Method  = "HMAC-SHA1"
	V1Version = "1.0"
)

// StringToSignV1 returns METHOD + "&%2F&" + PercentEncode(canonical query),
// where the canonical query is every parameter except Signature. The path
// is always "/" in V1: the scheme was made for RPC calls and does not cover
// any other path.
func StringToSignV1(method string, params url.Values) string {
	if _, ok := params[ParamSignature]; ok {
		params = cloneWithout(params, ParamSignature)
	}
	var buf [1024]byte
	return string(appendStringToSignV1(buf[:0], method, params))
}

// appendStringToSignV1 appends StringToSignV1 of params (which must not
// hold Signature) to dst.
func appendStringToSignV1(dst []byte, method string, params url.Values) []byte {
	var qbuf [1024]byte
	q := appendCanonicalQuery(qbuf[:0], params)
	dst = append(dst, method...)
	dst = append(dst, "&%2F&"...)
	const hexUpper = "0123456789ABCDEF"
	for _, c := range q {
		if unreserved(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0x0f])
	}
	return dst
}

// SignatureV1 returns base64(HMAC-SHA1(secret + "&", StringToSignV1)).
func SignatureV1(method string, params url.Values, secret string) string {
	sum := macV1(method, params, secret)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func macV1(method string, params url.Values, secret string) [sha1.Size]byte {
	// The "&" is where the V1 design meant to append a token secret; no
	// Alibaba service uses one, but the key keeps the separator.
	if _, ok := params[ParamSignature]; ok {
		params = cloneWithout(params, ParamSignature)
	}
	m := getMacer(&sha1Macers)
	defer m.put(&sha1Macers)
	m.msg = appendStringToSignV1(m.msg[:0], method, params)
	return [sha1.Size]byte(m.mac(sha1.New, secret, "&", m.msg))
}

// SignV1 adds the V1 signature parameters to params in place, as the SDK
// does: AccessKeyId, SignatureMethod, SignatureVersion, SignatureNonce,
// Timestamp (from now), SecurityToken for temporary credentials, Format=json
// unless a Format is already set, and finally Signature. The caller sets
// Action and Version (and sends the parameters with the given method).
func SignV1(method string, params url.Values, c Credentials, now time.Time, nonce string) {
	params.Del(ParamSignature)
	params.Set(ParamAccessKeyID, c.AccessKeyID)
	params.Set(ParamSignatureMethod, V1Method)
	params.Set(ParamSignatureVersion, V1Version)
	params.Set(ParamSignatureNonce, nonce)
	params.Set(ParamTimestamp, now.UTC().Format(TimeFormat))
	if c.SecurityToken != "" {
		params.Set(ParamSecurityToken, c.SecurityToken)
	}
	if params.Get(ParamFormat) == "" {
		params.Set(ParamFormat, "json")
	}
	params.Set(ParamSignature, SignatureV1(method, params, c.AccessKeySecret))
}

func cloneWithout(v url.Values, drop string) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		if k != drop {
			out[k] = vs
		}
	}
	return out
}
