package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Scheme is the signature scheme a request uses.
type Scheme int

const (
	SchemeNone Scheme = iota // not signed
	SchemeV3                 // Authorization header (ACS3-*)
	SchemeV1                 // Signature parameter (HMAC-SHA1)
)

func (s Scheme) String() string {
	switch s {
	case SchemeV3:
		return "ACS3-HMAC-SHA256"
	case SchemeV1:
		return "HMAC-SHA1"
	default:
		return "none"
	}
}

// MaxNonceLength bounds the nonce a request may carry, so a replay cache
// keyed by nonce cannot be made to hold arbitrarily large strings. The SDKs
// send 32 hex digits (V3 and V1 alike) or a 36-character UUID.
const MaxNonceLength = 128

// Detect tells which scheme r uses without validating anything: any
// Authorization header means V3 (Parse rejects non-ACS3 values), else a
// Signature parameter in the query or in a form body means V1.
func Detect(r *http.Request, body []byte) Scheme {
	if len(r.Header.Values(HeaderAuthorization)) > 0 {
		return SchemeV3
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && q.Has(ParamSignature) {
		return SchemeV1
	}
	if isForm(r.Header) {
		if f, err := url.ParseQuery(string(body)); err == nil && f.Has(ParamSignature) {
			return SchemeV1
		}
	}
	return SchemeNone
}

// Signed is a parsed, not yet verified, signed request: what the server
// needs before it can verify (whose key, which nonce, what time) plus a copy
// of everything the signature covers.
type Signed struct {
	Scheme        Scheme
	AccessKeyID   string
	SecurityToken string    // "" for long-term keys
	Nonce         string    // x-acs-signature-nonce or SignatureNonce
	Time          time.Time // x-acs-date or Timestamp, UTC

	// Authorization is the parsed header (V3 only).
	Authorization Authorization
	// Params are the signed parameters of a V1 request (query merged with a
	// form body, Signature removed). Nil for V3, whose query is in V3.
	Params url.Values
	// V3 is what a V3 signature covers (V3 only).
	V3 V3Request

	method string
	body   []byte
	sigV1  []byte
	// bodyUnread marks a request parsed by ParseUnreadBody: Verify checks
	// the signature over the claimed x-acs-content-sha256, and the caller
	// checks the body against it while streaming it.
	bodyUnread bool
}

// Parse reads the signature of r. body is the complete request body (the
// server reads it once, bounded, before calling). Parse checks form and
// presence of every piece, but not the clock, the nonce or the signature
// itself; the server checks skew and replay on Time and Nonce, looks up the
// secret for AccessKeyID and calls Verify.
//
// For V3 every x-acs-* header present, content-type when present, and host
// must be among SignedHeaders: otherwise an intermediary could change the
// action, the security token or the nonce without breaking the signature.
func Parse(r *http.Request, body []byte) (*Signed, error) {
	return ParseQueried(r, body, nil)
}

// ParseQueried is Parse for a caller that has already decoded r's query:
// query must be url.ParseQuery(r.URL.RawQuery) of a query without error
// (nil: Parse decodes it). It is read, never modified, and for V3 kept in
// the result's V3.Query.
func ParseQueried(r *http.Request, body []byte, query url.Values) (*Signed, error) {
	var scheme Scheme
	if query != nil && len(r.Header.Values(HeaderAuthorization)) == 0 && query.Has(ParamSignature) {
		scheme = SchemeV1
	} else {
		scheme = Detect(r, body)
	}
	switch scheme {
	case SchemeV3:
		return parseV3(r, body, query, nil)
	case SchemeV1:
		return parseV1(r, body, query, false)
	default:
		return nil, fmt.Errorf("%w: no Authorization header and no Signature parameter", ErrNotSigned)
	}
}

// ParseFlatQueried is ParseQueried for a caller that decoded r's query
// into one value per name: query must be what url.ParseQuery of
// r.URL.RawQuery gives, without error, when no name appears twice (each
// name's single value). It is read, never modified, and must not change
// until Verify has returned: for V3 the result's canonical request is
// built from it.
func ParseFlatQueried(r *http.Request, body []byte, query map[string]string) (*Signed, error) {
	if len(r.Header.Values(HeaderAuthorization)) == 0 {
		if _, ok := query[ParamSignature]; !ok {
			// Not signed (a form body cannot sign: the caller had none).
			return ParseQueried(r, body, nil)
		}
		// V1 keeps its parameters as url.Values: one of its own, all the
		// values in one array.
		params := make(url.Values, len(query))
		vals := make([]string, 0, len(query))
		for k, v := range query {
			vals = append(vals, v)
			params[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
		return parseV1(r, body, params, true)
	}
	return parseV3(r, body, nil, query)
}

// ParseUnreadBody is Parse for a request whose body is too large to hold in
// memory and must not be read before the caller is known (a snapshot
// upload). Only ACS3-HMAC-SHA256 qualifies: its signature covers the body's
// claimed hash (x-acs-content-sha256, V3.PayloadHash), so Verify checks the
// signature without the body, and the caller must hash the body as it
// streams it and refuse the request when the hash differs from PayloadHash.
func ParseUnreadBody(r *http.Request) (*Signed, error) {
	switch Detect(r, nil) {
	case SchemeV3:
	case SchemeV1:
		return nil, fmt.Errorf("%w: this endpoint accepts only ACS3-HMAC-SHA256 signatures, which cover the body's hash", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: no Authorization header", ErrNotSigned)
	}
	s, err := parseV3(r, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	s.bodyUnread = true
	return s, nil
}

// parseV3 parses a V3 signature; the query is query, else flat, else
// decoded from r.
func parseV3(r *http.Request, body []byte, query url.Values, flat map[string]string) (*Signed, error) {
	if n := len(r.Header.Values(HeaderAuthorization)); n != 1 {
		return nil, fmt.Errorf("%w: %d Authorization headers", ErrMalformed, n)
	}
	auth, err := ParseAuthorization(r.Header.Get(HeaderAuthorization))
	if err != nil {
		return nil, err
	}
	s := &Signed{Scheme: SchemeV3, AccessKeyID: auth.AccessKeyID, Authorization: auth, method: r.Method, body: body}

	// The headers read below, found in one pass over the header map.
	var hv [len(v3HeaderNames)][]string
	lookupHeaders(r.Header, v3HeaderNames[:], hv[:])
	date, err := singleOf(HeaderDate, hv[0])
	if err != nil {
		return nil, err
	}
	if s.Time, err = parseTime(date); err != nil {
		return nil, fmt.Errorf("%w: %s %q: want %s", ErrMalformed, HeaderDate, truncate(date), TimeFormat)
	}
	if s.Nonce, err = singleOf(HeaderNonce, hv[1]); err != nil {
		return nil, err
	}
	if len(s.Nonce) > MaxNonceLength {
		return nil, fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, HeaderNonce, MaxNonceLength)
	}
	hash, err := singleOf(HeaderContentSHA256, hv[2])
	if err != nil {
		return nil, err
	}
	if len(hash) != len(EmptyPayloadHash) || !isHex(hash) {
		return nil, fmt.Errorf("%w: %s %q is not hex SHA-256", ErrMalformed, HeaderContentSHA256, truncate(hash))
	}
	s.SecurityToken = firstOf(hv[3])

	if uncoveredHeader(r.Header, auth.SignedHeaders) != "" {
		// Name the first missing header in sorted order, as always.
		for _, need := range requiredSignedHeaders(r.Header) {
			if !slices.Contains(auth.SignedHeaders, need) {
				return nil, fmt.Errorf("%w: header %s is not in SignedHeaders", ErrMalformed, need)
			}
		}
	}
	if query == nil && flat == nil {
		if s.V3, err = NewV3Request(r, auth.SignedHeaders); err != nil {
			return nil, err
		}
	} else {
		s.V3 = V3Request{
			Method: r.Method, Path: r.URL.Path, Query: query, Host: requestHost(r), Header: r.Header,
			SignedHeaders: auth.SignedHeaders, PayloadHash: firstOf(hv[2]), flatQuery: flat,
		}
	}
	return s, nil
}

// parseV1 parses a V1 signature from query (decoded from r when nil; a
// copy is kept unless owned says query is the caller's gift).
func parseV1(r *http.Request, body []byte, query url.Values, owned bool) (*Signed, error) {
	var params url.Values
	if owned {
		params = query
	} else if query != nil {
		// Parse keeps its own map: Signature is removed from it below.
		params = maps.Clone(query)
	} else {
		var err error
		if params, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return nil, fmt.Errorf("%w: query string: %v", ErrMalformed, err)
		}
	}
	if isForm(r.Header) && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("%w: form body: %v", ErrMalformed, err)
		}
		// The SDK signs the query merged with the form body, the body
		// winning on a shared name.
		for k, vs := range form {
			params[k] = vs
		}
	}
	get := func(name string) (string, error) {
		switch vs := params[name]; len(vs) {
		case 0:
			return "", fmt.Errorf("%w: parameter %s", ErrMissing, name)
		case 1:
			if vs[0] == "" {
				return "", fmt.Errorf("%w: parameter %s is empty", ErrMissing, name)
			}
			return vs[0], nil
		default:
			return "", fmt.Errorf("%w: parameter %s given %d times", ErrMalformed, name, len(vs))
		}
	}
	s := &Signed{Scheme: SchemeV1, method: r.Method}
	sig, err := get(ParamSignature)
	if err != nil {
		return nil, err
	}
	if s.sigV1, err = base64.StdEncoding.DecodeString(sig); err != nil {
		return nil, fmt.Errorf("%w: Signature is not base64", ErrMalformed)
	}
	method, err := get(ParamSignatureMethod)
	if err != nil {
		return nil, err
	}
	if method != V1Method {
		return nil, fmt.Errorf("%w: SignatureMethod %q (want %s)", ErrUnsupported, truncate(method), V1Method)
	}
	version, err := get(ParamSignatureVersion)
	if err != nil {
		return nil, err
	}
	if version != V1Version {
		return nil, fmt.Errorf("%w: SignatureVersion %q (want %s)", ErrUnsupported, truncate(version), V1Version)
	}
	if s.AccessKeyID, err = get(ParamAccessKeyID); err != nil {
		return nil, err
	}
	if s.Nonce, err = get(ParamSignatureNonce); err != nil {
		return nil, err
	}
	if len(s.Nonce) > MaxNonceLength {
		return nil, fmt.Errorf("%w: SignatureNonce longer than %d bytes", ErrMalformed, MaxNonceLength)
	}
	ts, err := get(ParamTimestamp)
	if err != nil {
		return nil, err
	}
	if s.Time, err = parseTime(ts); err != nil {
		return nil, fmt.Errorf("%w: Timestamp %q: want %s", ErrMalformed, truncate(ts), TimeFormat)
	}
	s.SecurityToken = params.Get(ParamSecurityToken)
	delete(params, ParamSignature)
	s.Params = params
	return s, nil
}

// Verify checks the signature against secret in constant time, and for V3
// that x-acs-content-sha256 is the hash of the body. It returns nil,
// ErrContentHashMismatch or ErrSignatureMismatch. It does not look at the
// clock or the nonce: that is the caller's job, done before Verify.
func (s *Signed) Verify(secret string) error {
	switch s.Scheme {
	case SchemeV3:
		if !s.bodyUnread {
			// Compare decoded bytes (upper- or lower-case hex alike).
			claimed, ok := decodeHex32(s.V3.PayloadHash)
			if !ok || claimed != sha256.Sum256(s.body) {
				return ErrContentHashMismatch
			}
		}
		// Compare decoded bytes, so an upper-case hex digest is accepted too.
		got, ok := decodeHex32(s.Authorization.Signature)
		if !ok {
			// Not 64 hex digits (ParseAuthorization refuses those; a
			// Signed built by hand may hold them).
			if _, err := hex.DecodeString(s.Authorization.Signature); err != nil {
				return fmt.Errorf("%w: Signature is not hex", ErrMalformed)
			}
			return ErrSignatureMismatch
		}
		want := s.V3.mac(secret)
		if !hmac.Equal(got[:], want[:]) {
			return ErrSignatureMismatch
		}
		return nil
	case SchemeV1:
		want := macV1(s.method, s.Params, secret)
		if !hmac.Equal(s.sigV1, want[:]) {
			return ErrSignatureMismatch
		}
		return nil
	default:
		return ErrNotSigned
	}
}

// decodeHex32 decodes exactly 64 hex digits (either case) without
// allocating.
func decodeHex32(s string) (out [sha256.Size]byte, ok bool) {
	if len(s) != 2*sha256.Size {
		return out, false
	}
	for i := range out {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return out, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// VerifyRequest is Parse followed by Verify for a caller that already knows
// the secret (tests, single-key tools). It skips the skew and replay checks
// a server must add.
func VerifyRequest(r *http.Request, body []byte, secret string) (*Signed, error) {
	s, err := Parse(r, body)
	if err != nil {
		return nil, err
	}
	return s, s.Verify(secret)
}

// NewNonce returns 128 random bits in hex, the shape the SDK uses.
func NewNonce() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeFormat, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// v3HeaderNames are the headers parseV3 reads (hv's order).
var v3HeaderNames = [...]string{HeaderDate, HeaderNonce, HeaderContentSHA256, HeaderSecurityToken}

// lookupHeaders sets out[i] to the values of names[i] in h, keys matched
// without regard to case, as headerValues gives them (merged when several
// keys match), in one pass over h for up to 8 names. out[i] may be h's own
// slice: read only.
func lookupHeaders(h http.Header, names []string, out [][]string) {
	var n [8]int
	if len(names) > len(n) {
		for i, name := range names {
			out[i] = headerValues(h, name)
		}
		return
	}
	for k, vs := range h {
		ascii := isASCII(k)
		for i, name := range names {
			if (len(k) == len(name) || !ascii) && strings.EqualFold(k, name) {
				out[i] = vs
				n[i]++
			}
		}
	}
	for i, name := range names {
		if n[i] > 1 {
			out[i] = headerValues(h, name)
		}
	}
}

func firstOf(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// singleOf is the one value of header name (its values vs), trimmed.
func singleOf(name string, vs []string) (string, error) {
	switch len(vs) {
	case 0:
		return "", fmt.Errorf("%w: header %s", ErrMissing, name)
	case 1:
		if strings.TrimSpace(vs[0]) == "" {
			return "", fmt.Errorf("%w: header %s is empty", ErrMissing, name)
		}
		return strings.TrimSpace(vs[0]), nil
	default:
		return "", fmt.Errorf("%w: header %s given %d times", ErrMalformed, name, len(vs))
	}
}

func isForm(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}
