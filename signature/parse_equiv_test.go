package signature

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// The parsers of untrusted bytes that the server runs on every V3 request
// (parseV3 with its one pass over the headers, parseAuthorization without
// an iterator or a list of its own, parseTime's fast path) must decide
// exactly as the code they replaced: these references are that code.

func refParseAuthorization(v string) (Authorization, error) {
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
			hs, err := refParseSignedHeaders(val)
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
func refParseSignedHeaders(v string) ([]string, error) {
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

func refLookupHeaders(h http.Header, names []string, out [][]string) {
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

func refParseV3(r *http.Request, body []byte, query url.Values, flat map[string]string) (*Signed, error) {
	if n := len(r.Header.Values(HeaderAuthorization)); n != 1 {
		return nil, fmt.Errorf("%w: %d Authorization headers", ErrMalformed, n)
	}
	auth, err := refParseAuthorization(r.Header.Get(HeaderAuthorization))
	if err != nil {
		return nil, err
	}
	s := &Signed{Scheme: SchemeV3, AccessKeyID: auth.AccessKeyID, Authorization: auth, method: r.Method, body: body}

	// The headers read below, found in one pass over the header map.
	var hv [len(v3HeaderNames)][]string
	refLookupHeaders(r.Header, v3HeaderNames[:], hv[:])
	date, err := singleOf(HeaderDate, hv[0])
	if err != nil {
		return nil, err
	}
	if s.Time, err = refParseTime(date); err != nil {
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

func refParseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeFormat, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// sameSigned compares what two parses found (not the parse-time state).
func sameSigned(a, b *Signed) error {
	switch {
	case a.Scheme != b.Scheme, a.AccessKeyID != b.AccessKeyID, a.SecurityToken != b.SecurityToken, a.Nonce != b.Nonce:
		return fmt.Errorf("scheme, key, token or nonce differ: %+v, %+v", a, b)
	case !a.Time.Equal(b.Time) || a.Time.Location() != b.Time.Location():
		return fmt.Errorf("time %v, want %v", a.Time, b.Time)
	case a.Authorization.Algorithm != b.Authorization.Algorithm, a.Authorization.AccessKeyID != b.Authorization.AccessKeyID,
		a.Authorization.Signature != b.Authorization.Signature, !slices.Equal(a.Authorization.SignedHeaders, b.Authorization.SignedHeaders):
		return fmt.Errorf("authorization %+v, want %+v", a.Authorization, b.Authorization)
	case a.V3.Method != b.V3.Method, a.V3.Path != b.V3.Path, a.V3.Host != b.V3.Host, a.V3.PayloadHash != b.V3.PayloadHash,
		!slices.Equal(a.V3.SignedHeaders, b.V3.SignedHeaders):
		return fmt.Errorf("V3 %+v, want %+v", a.V3, b.V3)
	}
	if a.Scheme == SchemeV3 {
		if ca, cb := a.V3.Canonical(), refCanonical(b.V3); ca != cb {
			return fmt.Errorf("canonical request\n%q\nwant\n%q", ca, cb)
		}
	}
	return nil
}

// v3FuzzRequest builds a request from fuzz input: an Authorization value
// and header lines "name: value" separated by newlines.
func v3FuzzRequest(authz, headers, query string) (*http.Request, url.Values, map[string]string, bool) {
	r, err := http.NewRequest(http.MethodPost, "http://kms.test:9700/?"+query, nil)
	if err != nil {
		return nil, nil, nil, false
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, nil, nil, false
	}
	flat := map[string]string{}
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, nil, nil, false
		}
		flat[k] = vs[0]
	}
	r.Header["Authorization"] = []string{authz}
	for line := range strings.SplitSeq(headers, "\n") {
		k, v, _ := strings.Cut(line, ":")
		r.Header[k] = append(r.Header[k], v) // any spelling, as a client may store it
	}
	return r, q, flat, true
}

func checkParseV3(t *testing.T, authz, headers, query string) {
	r, q, flat, ok := v3FuzzRequest(authz, headers, query)
	if !ok {
		return
	}
	want, werr := refParseV3(r, nil, q, nil)
	for _, path := range []string{"flat", "queried", "parse"} {
		var got *Signed
		var gerr error
		switch path {
		case "flat":
			got, gerr = ParseFlatQueriedInto(&Signed{Nonce: "stale", pre: preSigned{single: 0xfff}}, r, nil, flat)
		case "queried":
			got, gerr = parseV3(nil, r, nil, q, nil)
		default:
			got, gerr = parseV3(nil, r, nil, nil, nil)
		}
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%s: error %v, want %v", path, gerr, werr)
		}
		if gerr != nil {
			continue
		}
		if err := sameSigned(got, want); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if e1, e2 := got.Verify("secret"), want.Verify("secret"); e1 != e2 {
			t.Fatalf("%s: Verify %v, want %v", path, e1, e2)
		}
	}
}

func signedFuzzSeed() (authz, headers string) {
	r, _ := http.NewRequest(http.MethodPost, "http://kms.test:9700/?KeyId=k&Plaintext=aGk%3D", nil)
	r.Header.Set("x-acs-action", "Encrypt")
	r.Header.Set("x-acs-version", "2016-01-20")
	r.Header.Set("User-Agent", "sdk")
	_ = SignV3(r, EmptyPayloadHash, Credentials{AccessKeyID: "AK", AccessKeySecret: "secret", SecurityToken: "tok"}, time.Now(), NewNonce())
	var lines []string
	for k, vs := range r.Header {
		if k == "Authorization" {
			continue
		}
		for _, v := range vs {
			lines = append(lines, k+":"+v)
		}
	}
	slices.Sort(lines)
	return r.Header.Get("Authorization"), strings.Join(lines, "\n")
}

// FuzzParseV3_SameAsReference: whatever the Authorization header, the
// other headers (any spelling, repeated, non-ASCII) and the query, parseV3
// — by each of its three ways to the query — fails with the same error as
// the code it replaced, or finds the same things, builds the same
// canonical request and verifies the same way.
func FuzzParseV3_SameAsReference(f *testing.F) {
	authz, headers := signedFuzzSeed()
	f.Add(authz, headers, "KeyId=k&Plaintext=aGk%3D")
	f.Add(authz, headers+"\nX-Acs-Date:2024-01-01T00:00:00Z", "KeyId=k&Plaintext=aGk%3D")
	f.Add(authz, strings.ReplaceAll(headers, "X-Acs-", "x-acs-"), "")
	f.Add(authz, headers+"\nContent-Type:text/plain", "a=b")
	f.Add(authz, headers+"\nX-Acs-\u212aey:v", "a=b")
	f.Add(authz, headers+"\nx-acs-action: Decrypt ", "a=b")
	f.Add(strings.Replace(authz, "host;", "host;content-type;", 1), headers+"\nContent-Type:a\ncontent-type:b", "")
	f.Add("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;x-acs-date,Signature=,", "X-Acs-Date:2024-02-30T00:00:00Z", "")
	f.Add("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;x,Signature=00", "", "")
	f.Fuzz(func(t *testing.T, authz, headers, query string) {
		checkParseV3(t, authz, headers, query)
	})
}

// FuzzParseAuthorization_SameAsReference: the same answer, error text
// included, as the parser parseAuthorization replaced, with and without a
// buffer for the signed headers.
func FuzzParseAuthorization_SameAsReference(f *testing.F) {
	authz, _ := signedFuzzSeed()
	f.Add(authz)
	f.Add("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;HOST,Signature=" + strings.Repeat("0", 64))
	f.Add("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;,Signature=" + strings.Repeat("0", 64) + ",")
	f.Add("ACS3-HMAC-SHA256 ")
	f.Add("ACS3-HMAC-SHA256 Credential=a,Credential=b")
	f.Fuzz(func(t *testing.T, in string) {
		want, werr := refParseAuthorization(in)
		var buf [3]string
		for _, b := range [][]string{nil, buf[:0]} {
			got, gerr := parseAuthorization(in, b)
			if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
				t.Fatalf("%q: error %v, want %v", in, gerr, werr)
			}
			if gerr == nil && (got.Algorithm != want.Algorithm || got.AccessKeyID != want.AccessKeyID ||
				got.Signature != want.Signature || !slices.Equal(got.SignedHeaders, want.SignedHeaders)) {
				t.Fatalf("%q: %+v, want %+v", in, got, want)
			}
		}
	})
}

// FuzzParseTime_SameAsTimeParse: the fast path reads what time.Parse
// reads, and everything else goes to time.Parse.
func FuzzParseTime_SameAsTimeParse(f *testing.F) {
	for _, s := range []string{"2024-01-01T00:00:00Z", "2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2024-01-00T00:00:00Z",
		"2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00.5Z", "2024-01-01T0:00:00Z",
		"+024-01-01T00:00:00Z", "2024-01-01t00:00:00Z", "2024-01-01T00:00:00z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gerr := parseTime(s)
		want, werr := refParseTime(s)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%q: error %v, want %v", s, gerr, werr)
		}
		if got != want {
			t.Fatalf("%q: %v, want %v", s, got, want)
		}
	})
}

// The empty body's hash is the constant Verify compares with.
func TestBodySum_Empty(t *testing.T) {
	if bodySum(nil) != sha256.Sum256(nil) || bodySum([]byte{}) != sha256.Sum256(nil) || bodySum([]byte("x")) != sha256.Sum256([]byte("x")) {
		t.Fatal("bodySum differs from sha256.Sum256")
	}
}

// The canonical request ignores the values found while parsing once the
// Signed's V3 no longer has the headers or the list they were found for.
func TestParseFlatQueried_PreValuesFollowV3(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "http://kms.test/?KeyId=k", nil)
	r.Header.Set("x-acs-action", "Encrypt")
	if err := SignV3(r, EmptyPayloadHash, Credentials{AccessKeyID: "AK", AccessKeySecret: "secret"}, time.Now(), NewNonce()); err != nil {
		t.Fatal(err)
	}
	s, err := ParseFlatQueried(r, nil, map[string]string{"KeyId": "k"})
	if err != nil {
		t.Fatal(err)
	}
	if s.V3.pre == nil {
		t.Fatal("no values kept from the parse")
	}
	if err := s.Verify("secret"); err != nil {
		t.Fatal(err)
	}
	h := r.Header.Clone()
	h.Set("x-acs-action", "Decrypt")
	s.V3.Header = h
	if err := s.Verify("secret"); err != ErrSignatureMismatch {
		t.Fatalf("Verify with other headers: %v, want a mismatch", err)
	}
	s.V3.Header = r.Header
	s.V3.SignedHeaders = slices.Clone(s.V3.SignedHeaders)
	if err := s.Verify("secret"); err != nil {
		t.Fatalf("Verify with a copy of the list: %v", err)
	}
}

// isHex and decodeHex32 (tables now) decide and decode as the range
// checks they replaced, for every byte in every position.
func TestHexTable_SameAsRanges(t *testing.T) {
	ref := func(c byte) (byte, bool) {
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
	base := []byte(strings.Repeat("0123456789abcdefABCDEF", 3)[:64])
	for pos := 0; pos < 64; pos++ {
		for c := 0; c < 256; c++ {
			b := slices.Clone(base)
			b[pos] = byte(c)
			_, valid := ref(byte(c))
			if isHex(string(b)) != valid {
				t.Fatalf("isHex with %#x at %d: %v", c, pos, !valid)
			}
			out, ok := decodeHex32(string(b))
			if ok != valid {
				t.Fatalf("decodeHex32 with %#x at %d: ok %v", c, pos, ok)
			}
			if ok {
				for i := range out {
					hi, _ := ref(b[2*i])
					lo, _ := ref(b[2*i+1])
					if out[i] != hi<<4|lo {
						t.Fatalf("decodeHex32(%q)[%d] = %#x", b, i, out[i])
					}
				}
			}
		}
	}
	if _, ok := decodeHex32(string(base[:63])); ok {
		t.Fatal("63 digits decoded")
	}
}

// appendPercentEncoded (copying runs of unreserved bytes) writes what
// PercentEncode writes, every byte in every position.
func TestAppendPercentEncoded_SameAsPercentEncode(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, s := range []string{string([]byte{byte(c)}), "a" + string([]byte{byte(c)}), string([]byte{byte(c)}) + "b~", "x-" + string([]byte{byte(c), byte(c)}) + "-y"} {
			if got, want := string(appendPercentEncoded([]byte("p"), s)), "p"+PercentEncode(s); got != want {
				t.Fatalf("%q: %q, want %q", s, got, want)
			}
		}
	}
}
