package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AlgorithmV3 is the only ACS3 algorithm implemented. The SDKs also know
// ACS3-HMAC-SM3 and ACS3-RSA-SHA256; neither is selected unless configured.
const AlgorithmV3 = "ACS3-HMAC-SHA256"

// TimeFormat is the layout of x-acs-date and of the V1 Timestamp parameter.
const TimeFormat = "2006-01-02T15:04:05Z"

// Header names the V3 signature reads or writes.
const (
	HeaderAuthorization = "Authorization"
	HeaderDate          = "x-acs-date"
	HeaderNonce         = "x-acs-signature-nonce"
	HeaderContentSHA256 = "x-acs-content-sha256"
	HeaderSecurityToken = "x-acs-security-token"
	HeaderAccessKeyID   = "x-acs-accesskey-id"
)

// Credentials sign requests. SecurityToken is set only for temporary (STS)
// credentials.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
}

// Authorization is the parsed value of a V3 Authorization header:
//
//	ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2>,Signature=<hex>
type Authorization struct {
	Algorithm     string
	AccessKeyID   string
	SignedHeaders []string // lower-case, in the order given
	Signature     string   // hex, as sent
}

// String renders the header value.
func (a Authorization) String() string {
	return a.Algorithm + " Credential=" + a.AccessKeyID +
		",SignedHeaders=" + strings.Join(a.SignedHeaders, ";") +
		",Signature=" + a.Signature
}

// ParseAuthorization parses a V3 Authorization header value. It is strict:
// exactly the three fields, each once, a hex signature of the right length,
// header names that are HTTP tokens and appear once. Algorithms other than
// ACS3-HMAC-SHA256 give ErrUnsupported; anything else unreadable gives
// ErrMalformed.
func ParseAuthorization(v string) (Authorization, error) {
	return parseAuthorization(v, nil)
}

// parseAuthorization is ParseAuthorization with the SignedHeaders list
// appended to buf[:0] (nil: a list of its own), so that the server's
// parse keeps it in the Signed it fills.
func parseAuthorization(v string, buf []string) (Authorization, error) {
	var a Authorization
	v = strings.TrimSpace(v)
	if v == "" {
		return a, fmt.Errorf("%w: empty Authorization header", ErrMissing)
	}
	alg, rest, ok := strings.Cut(v, " ")
	if !strings.HasPrefix(alg, "ACS3-") {
		return a, fmt.Errorf("%w: Authorization scheme %q (want %s)", ErrUnsupported, truncate(alg), AlgorithmV3)
	}
	if alg != AlgorithmV3 {
		return a, fmt.Errorf("%w: %q (want %s)", ErrUnsupported, truncate(alg), AlgorithmV3)
	}
	if !ok {
		return a, fmt.Errorf("%w: Authorization has no Credential, SignedHeaders, Signature", ErrMalformed)
	}
	a.Algorithm = alg
	var seen [3]bool
	// The fields split at each comma (strings.Split's pieces: an empty
	// one for an empty rest or a trailing comma), without an iterator's
	// closure on every request.
	for more := true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		part = strings.TrimSpace(part)
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, fmt.Errorf("%w: Authorization field %q is not name=value", ErrMalformed, truncate(part))
		}
		if val == "" {
			return a, fmt.Errorf("%w: Authorization field %q is empty", ErrMalformed, truncate(k))
		}
		var i int
		switch k {
		case "Credential":
			i = 0
			if !printableNoSpace(val) {
				return a, fmt.Errorf("%w: Credential contains spaces or control characters", ErrMalformed)
			}
			a.AccessKeyID = val
		case "SignedHeaders":
			i = 1
			hs, err := parseSignedHeaders(val, buf)
			if err != nil {
				return a, err
			}
			a.SignedHeaders = hs
		case "Signature":
			i = 2
			if len(val) != 2*sha256.Size || !isHex(val) {
				return a, fmt.Errorf("%w: Signature must be %d hex digits", ErrMalformed, 2*sha256.Size)
			}
			a.Signature = val
		default:
			return a, fmt.Errorf("%w: unknown Authorization field %q", ErrMalformed, truncate(k))
		}
		if seen[i] {
			return a, fmt.Errorf("%w: Authorization field %s given twice", ErrMalformed, k)
		}
		seen[i] = true
	}
	for i, name := range [...]string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			return a, fmt.Errorf("%w: Authorization has no %s", ErrMalformed, name)
		}
	}
	return a, nil
}

// parseSignedHeaders splits v at each semicolon (strings.Split's pieces)
// into buf[:0], lower-cased; a nil buf gets a list of v's length.
func parseSignedHeaders(v string, buf []string) ([]string, error) {
	hs := buf[:0]
	if buf == nil {
		hs = make([]string, 0, strings.Count(v, ";")+1)
	}
	for more := true; more; {
		var h string
		h, v, more = strings.Cut(v, ";")
		if h == "" || !isToken(h) {
			return nil, fmt.Errorf("%w: SignedHeaders entry %q is not a header name", ErrMalformed, truncate(h))
		}
		h = strings.ToLower(h)
		if slices.Contains(hs, h) {
			return nil, fmt.Errorf("%w: SignedHeaders names %s twice", ErrMalformed, h)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// V3Request is everything an ACS3-HMAC-SHA256 signature covers. The server
// builds it from the request it received, the client from the one it sends;
// both then derive the same canonical request.
type V3Request struct {
	Method        string
	Path          string      // decoded path; "" means "/"
	Query         url.Values  // decoded parameters
	Host          string      // the value signed for "host"
	Header        http.Header // every other signed header is read from here
	SignedHeaders []string    // lower-case names, in signing order
	PayloadHash   string      // as sent in x-acs-content-sha256

	// flatQuery is the query when Query is nil and the server decoded it
	// one value per name (ParseFlatQueried).
	flatQuery map[string]string
	// pre is the signed headers' values found by ParseFlatQueried (used
	// while Header and SignedHeaders are still the ones parsed).
	pre *preSigned
}

// NewV3Request takes what the signature covers from r. The payload hash is
// the x-acs-content-sha256 header as sent: checking it against the body is a
// separate step ([Signed.Verify] does both).
func NewV3Request(r *http.Request, signedHeaders []string) (V3Request, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return V3Request{}, fmt.Errorf("%w: query string: %v", ErrMalformed, err)
	}
	return V3Request{
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         q,
		Host:          requestHost(r),
		Header:        r.Header,
		SignedHeaders: signedHeaders,
		PayloadHash:   headerValue(r.Header, HeaderContentSHA256),
	}, nil
}

// requestHost is the host the Go client puts on the wire (and the server
// finds in r.Host): r.Host when set, else the URL's host.
func requestHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// Canonical returns the canonical request:
// METHOD \n URI \n query \n headers \n signed-header-list \n payload-hash.
func (v V3Request) Canonical() string {
	var buf [1024]byte
	return string(v.appendCanonical(buf[:0]))
}

// appendCanonical appends the canonical request to dst (the server builds
// it for every signed request: no allocation beyond dst's growth in the
// common case of single-valued headers).
func (v V3Request) appendCanonical(b []byte) []byte {
	b = append(b, v.Method...)
	b = append(b, '\n')
	b = appendCanonicalURI(b, v.Path)
	b = append(b, '\n')
	if v.Query == nil && v.flatQuery != nil {
		b = appendCanonicalFlatQuery(b, v.flatQuery)
	} else {
		b = appendCanonicalQuery(b, v.Query)
	}
	b = append(b, '\n')
	if v.pre.isFor(&v) {
		for i, name := range v.SignedHeaders {
			b = append(b, name...)
			b = append(b, ':')
			if name == "host" {
				b = append(b, strings.TrimSpace(v.Host)...)
			} else if v.pre.single&(1<<i) != 0 {
				b = append(b, v.pre.val[i]...)
			} else {
				b = appendMergedHeader(b, v.Header, name)
			}
			b = append(b, '\n')
		}
		return appendSignedList(b, v.SignedHeaders, v.PayloadHash)
	}
	// One pass over the header map finds every signed header's values
	// (keys matched without regard to case); a name matched by several
	// keys is merged below.
	var found [16][]string
	var matches [16]int
	indexed := len(v.SignedHeaders) <= len(found)
	if indexed {
		for k, vs := range v.Header {
			ascii := isASCII(k)
			for i, name := range v.SignedHeaders {
				if (len(k) == len(name) || !ascii) && strings.EqualFold(k, name) {
					found[i] = vs
					matches[i]++
				}
			}
		}
	}
	for i, name := range v.SignedHeaders {
		b = append(b, name...)
		b = append(b, ':')
		if name == "host" {
			b = append(b, strings.TrimSpace(v.Host)...)
		} else if indexed && matches[i] <= 1 && len(found[i]) <= 1 {
			if len(found[i]) == 1 {
				b = append(b, strings.TrimSpace(found[i][0])...)
			}
		} else {
			b = appendMergedHeader(b, v.Header, name)
		}
		b = append(b, '\n')
	}
	return appendSignedList(b, v.SignedHeaders, v.PayloadHash)
}

// appendMergedHeader appends the canonical value of header name: the SDK
// trims each value and joins repeated headers sorted, with commas; a
// single value is just itself.
func appendMergedHeader(b []byte, h http.Header, name string) []byte {
	vals := headerValues(h, name)
	for i := range vals {
		vals[i] = strings.TrimSpace(vals[i])
	}
	slices.Sort(vals)
	return append(b, strings.Join(vals, ",")...)
}

// appendSignedList ends the canonical request after the header lines: the
// blank line, the signed-header list, the payload hash.
func appendSignedList(b []byte, signed []string, payloadHash string) []byte {
	b = append(b, '\n')
	for i, name := range signed {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, name...)
	}
	b = append(b, '\n')
	return append(b, payloadHash...)
}

// StringToSign returns "ACS3-HMAC-SHA256\n" + hex(SHA-256(canonical request)).
func (v V3Request) StringToSign() string {
	var buf [len(AlgorithmV3) + 1 + 2*sha256.Size]byte
	return string(v.appendStringToSign(buf[:0]))
}

func (v V3Request) appendStringToSign(dst []byte) []byte {
	var buf [1024]byte
	return appendStringToSignOf(dst, v.appendCanonical(buf[:0]))
}

// appendStringToSignOf appends the string to sign of a canonical request.
func appendStringToSignOf(dst, canonical []byte) []byte {
	sum := sha256.Sum256(canonical)
	dst = append(dst, AlgorithmV3...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, sum[:])
}

// Signature returns hex(HMAC-SHA256(secret, string to sign)).
func (v V3Request) Signature(secret string) string {
	sum := v.mac(secret)
	return hex.EncodeToString(sum[:])
}

func (v V3Request) mac(secret string) [sha256.Size]byte {
	m := getMacer(&sha256Macers)
	defer m.put(&sha256Macers)
	// The canonical request is built in the macer's own buffer (a fresh
	// one on the stack cost clearing 1 KB).
	m.canon = v.appendCanonical(m.canon[:0])
	m.msg = appendStringToSignOf(m.msg[:0], m.canon)
	return [sha256.Size]byte(m.mac(sha256.New, secret, "", m.msg))
}

// SignV3 signs an outgoing request in place, as the SDK does: it sets
// x-acs-date (from now), x-acs-signature-nonce, x-acs-content-sha256
// (payloadHash, which must be the hex SHA-256 of the body that will be sent),
// x-acs-security-token and x-acs-accesskey-id for temporary credentials, and
// finally Authorization over host, content-type (if set) and every x-acs-*
// header. Set x-acs-action, x-acs-version and any other header before
// calling: headers added afterwards are not covered.
func SignV3(r *http.Request, payloadHash string, c Credentials, now time.Time, nonce string) error {
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return fmt.Errorf("%w: sign: empty AccessKeyId or AccessKeySecret", ErrMissing)
	}
	if len(payloadHash) != 2*sha256.Size || !isHex(payloadHash) {
		return fmt.Errorf("%w: sign: payload hash %q is not hex SHA-256", ErrMalformed, truncate(payloadHash))
	}
	if nonce == "" {
		return fmt.Errorf("%w: sign: empty nonce", ErrMissing)
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set(HeaderDate, now.UTC().Format(TimeFormat))
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderContentSHA256, payloadHash)
	if c.SecurityToken != "" {
		r.Header.Set(HeaderSecurityToken, c.SecurityToken)
		r.Header.Set(HeaderAccessKeyID, c.AccessKeyID)
	}
	signed := requiredSignedHeaders(r.Header)
	v, err := NewV3Request(r, signed)
	if err != nil {
		return err
	}
	a := Authorization{
		Algorithm:     AlgorithmV3,
		AccessKeyID:   c.AccessKeyID,
		SignedHeaders: signed,
		Signature:     v.Signature(c.AccessKeySecret),
	}
	r.Header.Set(HeaderAuthorization, a.String())
	return nil
}

// uncoveredHeader returns a header of h that a V3 signature must cover
// (host, content-type, every x-acs-*) but signed (lower-case names) does
// not name, lower-cased; "" when none. It decides exactly as
// requiredSignedHeaders does, without building the list or lower-casing
// ASCII names.
func uncoveredHeader(h http.Header, signed []string) string {
	if !slices.Contains(signed, "host") {
		return "host"
	}
	for k := range h {
		if !isASCII(k) {
			lk := strings.ToLower(k)
			if (lk == "content-type" || strings.HasPrefix(lk, "x-acs-")) && !slices.Contains(signed, lk) {
				return lk
			}
			continue
		}
		if !asciiLowerHasPrefix(k, "x-acs-") && !asciiLowerEqual(k, "content-type") {
			continue
		}
		found := false
		for _, s := range signed {
			if asciiLowerEqual(k, s) {
				found = true
				break
			}
		}
		if !found {
			return strings.ToLower(k)
		}
	}
	return ""
}

// asciiLowerEqual reports whether ASCII s, lower-cased, is lower.
func asciiLowerEqual(s, lower string) bool {
	return len(s) == len(lower) && asciiLowerHasPrefix(s, lower)
}

// asciiLowerHasPrefix reports whether ASCII s, lower-cased, starts with
// lower.
func asciiLowerHasPrefix(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// requiredSignedHeaders lists, sorted, the headers a V3 signature must cover
// for this header set: host, content-type when present, every x-acs-*.
func requiredSignedHeaders(h http.Header) []string {
	names := []string{"host"}
	for k := range h {
		lk := strings.ToLower(k)
		if (lk == "content-type" || strings.HasPrefix(lk, "x-acs-")) && !slices.Contains(names, lk) {
			names = append(names, lk)
		}
	}
	slices.Sort(names)
	return names
}

// headerValues collects the values of name from h, matching keys without
// regard to case: a client may have stored a non-canonical key directly.
func headerValues(h http.Header, name string) []string {
	var out []string
	for k, vs := range h {
		if (len(k) == len(name) || !isASCII(k)) && strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

// headerLookup returns the values of name from h without copying when a
// single key matches (one is true; vs may be nil when none matches), and
// one false when several keys differing only in case match: then use
// headerValues. The caller must not modify vs.
func headerLookup(h http.Header, name string) (vs []string, one bool) {
	n := 0
	for k, v := range h {
		if (len(k) == len(name) || !isASCII(k)) && strings.EqualFold(k, name) {
			n++
			vs = v
		}
	}
	return vs, n <= 1
}

func headerValue(h http.Header, name string) string {
	vs, one := headerLookup(h, name)
	if !one {
		vs = headerValues(h, name)
	}
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func isHex(s string) bool {
	var bad byte
	for i := 0; i < len(s); i++ {
		bad |= hexValue[s[i]]
	}
	return bad&notHex == 0
}

// isToken reports whether s is an RFC 7230 token (a valid header name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		default:
			return false
		}
	}
	return s != ""
}

func printableNoSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// truncate bounds attacker-controlled text quoted into error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// isASCII reports whether s is all ASCII: only then can strings.EqualFold
// not match strings of different lengths (U+212A KELVIN SIGN folds to k,
// U+017F LONG S to s), so a length check may skip it.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
