package signature

import (
	"crypto/hmac"
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
	for part := range strings.SplitSeq(rest, ",") {
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
			hs, err := parseSignedHeaders(val)
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
	for i, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			return a, fmt.Errorf("%w: Authorization has no %s", ErrMalformed, name)
		}
	}
	return a, nil
}

func parseSignedHeaders(v string) ([]string, error) {
	hs := strings.Split(v, ";")
	for i, h := range hs {
		if h == "" || !isToken(h) {
			return nil, fmt.Errorf("%w: SignedHeaders entry %q is not a header name", ErrMalformed, truncate(h))
		}
		h = strings.ToLower(h)
		if slices.Contains(hs[:i], h) {
			return nil, fmt.Errorf("%w: SignedHeaders names %s twice", ErrMalformed, h)
		}
		hs[i] = h
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
	var b strings.Builder
	b.WriteString(v.Method)
	b.WriteByte('\n')
	b.WriteString(CanonicalURI(v.Path))
	b.WriteByte('\n')
	b.WriteString(CanonicalQuery(v.Query))
	b.WriteByte('\n')
	for _, name := range v.SignedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		if name == "host" {
			b.WriteString(strings.TrimSpace(v.Host))
		} else {
			// The SDK trims each value and joins repeated headers sorted,
			// with commas; a single value is just itself.
			vals := headerValues(v.Header, name)
			for i := range vals {
				vals[i] = strings.TrimSpace(vals[i])
			}
			slices.Sort(vals)
			b.WriteString(strings.Join(vals, ","))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(v.SignedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(v.PayloadHash)
	return b.String()
}

// StringToSign returns "ACS3-HMAC-SHA256\n" + hex(SHA-256(canonical request)).
func (v V3Request) StringToSign() string {
	sum := sha256.Sum256([]byte(v.Canonical()))
	return AlgorithmV3 + "\n" + hex.EncodeToString(sum[:])
}

// Signature returns hex(HMAC-SHA256(secret, string to sign)).
func (v V3Request) Signature(secret string) string {
	return hex.EncodeToString(v.mac(secret))
}

func (v V3Request) mac(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(v.StringToSign()))
	return m.Sum(nil)
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
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

func headerValue(h http.Header, name string) string {
	vs := headerValues(h, name)
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 7230 token (a valid header name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
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
