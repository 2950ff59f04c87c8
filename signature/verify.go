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
	"reflect"
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

	// signedBuf holds Authorization.SignedHeaders (V3, up to its length).
	signedBuf [maxPreSigned]string
	// pre is the signed headers' values as parsed (ParseFlatQueried), for
	// V3's canonical request.
	pre preSigned
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
		return parseV3(nil, r, body, query, nil)
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
// built from it. Neither may r's headers: for V3 the canonical request
// takes the signed headers' values found while parsing (unless the
// result's V3.Header or V3.SignedHeaders is replaced).
func ParseFlatQueried(r *http.Request, body []byte, query map[string]string) (*Signed, error) {
	return ParseFlatQueriedInto(nil, r, body, query)
}

// ParseFlatQueriedInto is ParseFlatQueried that fills dst (overwritten
// whole) when the request is signed with V3, for a caller that keeps
// one Signed per request anyway; nil dst, or another scheme, gets a Signed
// of its own. The result is dst then, or that other Signed.
func ParseFlatQueriedInto(dst *Signed, r *http.Request, body []byte, query map[string]string) (*Signed, error) {
	// r.Header.Values of a canonical name is the map's entry.
	if len(r.Header[HeaderAuthorization]) == 0 {
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
	return parseV3(dst, r, body, nil, query)
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
	s, err := parseV3(nil, r, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	s.bodyUnread = true
	return s, nil
}

// parseV3 parses a V3 signature into s (nil: a new Signed); the query is
// query, else flat, else decoded from r.
func parseV3(s *Signed, r *http.Request, body []byte, query url.Values, flat map[string]string) (*Signed, error) {
	// r.Header.Values of a canonical name is the map's entry.
	authz := r.Header[HeaderAuthorization]
	if n := len(authz); n != 1 {
		return nil, fmt.Errorf("%w: %d Authorization headers", ErrMalformed, n)
	}
	if s == nil {
		s = new(Signed)
	}
	*s = Signed{Scheme: SchemeV3, method: r.Method, body: body}
	auth, err := parseAuthorization(authz[0], s.signedBuf[:0])
	if err != nil {
		return nil, err
	}
	s.AccessKeyID, s.Authorization = auth.AccessKeyID, auth

	// The headers read below, and the signed headers' values, found in
	// one pass over the header map.
	var sc v3Scan
	sc.scan(r.Header, auth.SignedHeaders)
	hv := &sc.hv
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

	if sc.uncovered {
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
		if flat != nil && sc.indexed {
			s.pre.set(&sc, r.Header, auth.SignedHeaders)
			s.V3.pre = &s.pre
		}
	}
	return s, nil
}

// maxPreSigned bounds the signed headers parseV3 keeps in Signed and
// finds in its one pass over the headers (the SDK signs 7, 9 with a
// security token); a request that signs more takes the general path.
const maxPreSigned = 12

// v3Scan is what parseV3 needs of a request's headers, found in one pass
// over the header map, keys matched without regard to case as
// headerValues matches them: the values of v3HeaderNames (hv, merged
// when several keys match), whether a header that must be signed (host,
// content-type, x-acs-*) is not (uncovered, decided as uncoveredHeader
// decides), and each signed header's values (found, when indexed).
type v3Scan struct {
	hv        [len(v3HeaderNames)][]string
	found     [maxPreSigned][]string
	matches   [maxPreSigned]int
	uncovered bool
	indexed   bool // len(signed) <= maxPreSigned: found is set
}

// scan fills sc from h for signed, the lower-case names of a parsed
// Authorization (HTTP tokens, so ASCII).
func (sc *v3Scan) scan(h http.Header, signed []string) {
	var nv [len(v3HeaderNames)]int
	sc.indexed = len(signed) <= len(sc.found)
	if !sc.indexed {
		sc.uncovered = uncoveredHeader(h, signed) != ""
	} else if !slices.Contains(signed, "host") {
		sc.uncovered = true
	}
	for k, vs := range h {
		ascii := isASCII(k)
		for i, name := range v3HeaderNames {
			if (len(k) == len(name) || !ascii) && strings.EqualFold(k, name) {
				sc.hv[i] = vs
				nv[i]++
			}
		}
		if !sc.indexed {
			continue
		}
		signedKey := false
		for i, name := range signed {
			if (len(k) == len(name) || !ascii) && strings.EqualFold(k, name) {
				sc.found[i] = vs
				sc.matches[i]++
				signedKey = true
			}
		}
		if sc.uncovered {
			continue
		}
		if !ascii {
			lk := strings.ToLower(k)
			if (lk == "content-type" || strings.HasPrefix(lk, "x-acs-")) && !slices.Contains(signed, lk) {
				sc.uncovered = true
			}
			continue
		}
		// An ASCII key and a lower-case ASCII name of one length are
		// equal without regard to case exactly when EqualFold says so:
		// signedKey is uncoveredHeader's "found".
		if !signedKey && (asciiLowerHasPrefix(k, "x-acs-") || asciiLowerEqual(k, "content-type")) {
			sc.uncovered = true
		}
	}
	for i, name := range v3HeaderNames {
		if nv[i] > 1 {
			sc.hv[i] = headerValues(h, name)
		}
	}
}

// preSigned is the signed headers' values as parseV3 found them: the
// canonical request takes them instead of looking through the header map
// again, as long as the V3Request still has the header map and the
// signed-header list they were found for.
type preSigned struct {
	header http.Header
	first  *string // &SignedHeaders[0]
	n      int     // len(SignedHeaders)
	// single has bit i set when signed header i has at most one value
	// under one key (anything else is merged by the general path); val[i]
	// is that value, trimmed ("" when absent).
	single uint32
	val    [maxPreSigned]string
}

func (p *preSigned) set(sc *v3Scan, h http.Header, signed []string) {
	p.header, p.n = h, len(signed)
	if len(signed) > 0 {
		p.first = &signed[0]
	}
	for i := range signed {
		if sc.matches[i] <= 1 && len(sc.found[i]) <= 1 {
			p.single |= 1 << i
			if len(sc.found[i]) == 1 {
				p.val[i] = strings.TrimSpace(sc.found[i][0])
			}
		}
	}
}

// isFor reports whether p was found for v's header map and signed headers.
func (p *preSigned) isFor(v *V3Request) bool {
	if p == nil || p.n != len(v.SignedHeaders) || p.n == 0 || p.first != &v.SignedHeaders[0] {
		return false
	}
	return reflect.ValueOf(p.header).UnsafePointer() == reflect.ValueOf(v.Header).UnsafePointer()
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
			if !ok || claimed != bodySum(s.body) {
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

// emptySum is SHA-256 of the empty body, which every SDK call has.
var emptySum = sha256.Sum256(nil)

func bodySum(body []byte) [sha256.Size]byte {
	if len(body) == 0 {
		return emptySum
	}
	return sha256.Sum256(body)
}

// decodeHex32 decodes exactly 64 hex digits (either case) without
// allocating.
func decodeHex32(s string) (out [sha256.Size]byte, ok bool) {
	if len(s) != 2*sha256.Size {
		return out, false
	}
	// A table and no branch per digit: random hex digits made a
	// digit-or-letter branch mispredict every other byte.
	var bad byte
	for i := range out {
		hi, lo := hexValue[s[2*i]], hexValue[s[2*i+1]]
		bad |= hi | lo
		out[i] = hi<<4 | lo&0x0f
	}
	return out, bad&notHex == 0
}

// hexValue is each byte's value as a hex digit (either case), or notHex.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = notHex
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

const notHex = 0x10

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
	if t, ok := parseTimeFast(s); ok {
		return t, nil
	}
	t, err := time.Parse(TimeFormat, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// parseTimeFast is parseTime of a well-formed time in exactly
// TimeFormat's shape (what every client sends), in a tenth of
// time.Parse's time; ok is false for anything else, which time.Parse then
// reads (or refuses) as before.
func parseTimeFast(s string) (time.Time, bool) {
	if len(s) != len(TimeFormat) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	// The day must exist in its month: time.Date would roll it over.
	if t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC); t.Day() == day {
		return t, true
	}
	return time.Time{}, false
}

// v3HeaderNames are the headers parseV3 reads (hv's order).
var v3HeaderNames = [...]string{HeaderDate, HeaderNonce, HeaderContentSHA256, HeaderSecurityToken}

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
