package signature

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

var (
	testCreds = Credentials{AccessKeyID: "LTAItestkey", AccessKeySecret: "s3cr3t/+="}
	testTime  = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

// signedV3 builds a client request, signs it, and returns the request as a
// server would receive it (r.Host set, RequestURI set, headers canonical).
// The query travels as url.Values.Encode writes it (space as "+"), which is
// what the SDK does.
func signedV3(t *testing.T, method, target string, q url.Values, body []byte, hdr http.Header, c Credentials) (*http.Request, []byte) {
	t.Helper()
	creq, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	creq.URL.RawQuery = q.Encode()
	for k, vs := range hdr {
		for _, v := range vs {
			creq.Header.Add(k, v)
		}
	}
	if err := SignV3(creq, HashPayload(body), c, testTime, "nonce-0001"); err != nil {
		t.Fatal(err)
	}
	return toServer(creq, body), body
}

func toServer(c *http.Request, body []byte) *http.Request {
	s := httptest.NewRequest(c.Method, c.URL.String(), bytes.NewReader(body))
	s.Host = c.URL.Host
	for k, vs := range c.Header {
		s.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	return s
}

func rpcHeaders(action string) http.Header {
	h := http.Header{}
	h.Set("x-acs-action", action)
	h.Set("x-acs-version", "2016-01-20")
	return h
}

func TestVerify_V3_AcceptsWhatSignV3Produces(t *testing.T) {
	q := url.Values{
		"KeyId":             {"alias/my key"},
		"Plaintext":         {"aGVsbG8+Lz0="},
		"EncryptionContext": {`{"a b":"c+d/e=f*g~h","ü":"中"}`},
	}
	sts := testCreds
	sts.SecurityToken = "CAIS token/with+chars=="
	tests := []struct {
		name   string
		method string
		target string
		body   []byte
		hdr    http.Header
		creds  Credentials
	}{
		{"rpc POST empty body", "POST", "http://kms.test:9700/", nil, rpcHeaders("Encrypt"), testCreds},
		{"rpc GET", "GET", "http://kms.test:9700/", nil, rpcHeaders("Encrypt"), testCreds},
		{"temporary credentials", "POST", "http://kms.test:9700/", nil, rpcHeaders("Encrypt"), sts},
		{"path with body and content-type", "POST", "http://[::1]:9700/v1/operator/restore", []byte("snapshot bytes\x00\xff"),
			http.Header{"Content-Type": {"application/octet-stream"}}, testCreds},
		{"json body", "POST", "http://kms.test/", []byte(`{"KeyId":"k"}`),
			http.Header{"Content-Type": {"application/json"}, "X-Acs-Action": {"Encrypt"}}, testCreds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := signedV3(t, tt.method, tt.target, q, tt.body, tt.hdr, tt.creds)
			s, err := Parse(r, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s.Scheme != SchemeV3 || s.AccessKeyID != tt.creds.AccessKeyID || s.Nonce != "nonce-0001" ||
				!s.Time.Equal(testTime) || s.SecurityToken != tt.creds.SecurityToken {
				t.Errorf("Parse = scheme %v id %q nonce %q time %v token %q", s.Scheme, s.AccessKeyID, s.Nonce, s.Time, s.SecurityToken)
			}
			if err := s.Verify(tt.creds.AccessKeySecret); err != nil {
				t.Fatalf("Verify: %v\ncanonical:\n%s", err, s.V3.Canonical())
			}
			if err := s.Verify("wrong"); !errors.Is(err, ErrSignatureMismatch) {
				t.Errorf("Verify(wrong secret) = %v, want ErrSignatureMismatch", err)
			}
		})
	}
}

// Each mutation of a signed request must be caught, with the right error.
func TestVerify_V3_RejectsTampering(t *testing.T) {
	q := url.Values{"KeyId": {"k1"}, "Plaintext": {"cGxhaW4="}}
	tests := []struct {
		name    string
		mutate  func(r *http.Request, body *[]byte)
		wantErr error
	}{
		{"query value changed", func(r *http.Request, _ *[]byte) { r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "k1", "k2", 1) }, ErrSignatureMismatch},
		{"query parameter added", func(r *http.Request, _ *[]byte) { r.URL.RawQuery += "&DryRun=true" }, ErrSignatureMismatch},
		{"action header changed", func(r *http.Request, _ *[]byte) { r.Header.Set("x-acs-action", "Decrypt") }, ErrSignatureMismatch},
		{"host changed", func(r *http.Request, _ *[]byte) { r.Host = "other:9700" }, ErrSignatureMismatch},
		{"method changed", func(r *http.Request, _ *[]byte) { r.Method = "PUT" }, ErrSignatureMismatch},
		{"path changed", func(r *http.Request, _ *[]byte) { r.URL.Path = "/v1/operator/init" }, ErrSignatureMismatch},
		{"date changed", func(r *http.Request, _ *[]byte) { r.Header.Set("x-acs-date", "2026-03-04T05:06:08Z") }, ErrSignatureMismatch},
		{"nonce changed", func(r *http.Request, _ *[]byte) { r.Header.Set("x-acs-signature-nonce", "nonce-0002") }, ErrSignatureMismatch},
		{"body changed", func(_ *http.Request, b *[]byte) { *b = []byte("x") }, ErrContentHashMismatch},
		{"body and hash changed", func(r *http.Request, b *[]byte) {
			*b = []byte("x")
			r.Header.Set("x-acs-content-sha256", HashPayload(*b))
		}, ErrSignatureMismatch},
		{"unsigned x-acs header added", func(r *http.Request, _ *[]byte) { r.Header.Set("x-acs-security-token", "t") }, ErrMalformed},
		{"unsigned content-type added", func(r *http.Request, _ *[]byte) { r.Header.Set("Content-Type", "application/json") }, ErrMalformed},
		{"host left out of SignedHeaders", func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "", 1))
		}, ErrMalformed},
		{"Authorization removed", func(r *http.Request, _ *[]byte) { r.Header.Del("Authorization") }, ErrNotSigned},
		{"two Authorization headers", func(r *http.Request, _ *[]byte) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }, ErrMalformed},
		{"date missing", func(r *http.Request, _ *[]byte) { r.Header.Del("x-acs-date") }, ErrMissing},
		{"date not in format", func(r *http.Request, _ *[]byte) { r.Header.Set("x-acs-date", "2026-03-04 05:06:07") }, ErrMalformed},
		{"nonce missing", func(r *http.Request, _ *[]byte) { r.Header.Del("x-acs-signature-nonce") }, ErrMissing},
		{"nonce twice", func(r *http.Request, _ *[]byte) { r.Header.Add("x-acs-signature-nonce", "again") }, ErrMalformed},
		{"nonce twice under two spellings of its name", func(r *http.Request, _ *[]byte) {
			r.Header["x-acs-signature-nonce"] = []string{"again"} // a key net/http would not canonicalize
		}, ErrMalformed},
		{"nonce too long", func(r *http.Request, _ *[]byte) {
			r.Header.Set("x-acs-signature-nonce", strings.Repeat("n", MaxNonceLength+1))
		}, ErrMalformed},
		{"content hash missing", func(r *http.Request, _ *[]byte) { r.Header.Del("x-acs-content-sha256") }, ErrMissing},
		{"content hash not hex", func(r *http.Request, _ *[]byte) { r.Header.Set("x-acs-content-sha256", "UNSIGNED-PAYLOAD") }, ErrMalformed},
		{"SM3 algorithm", func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "HMAC-SHA256", "HMAC-SM3", 1))
		}, ErrUnsupported},
		{"bad query escape", func(r *http.Request, _ *[]byte) { r.URL.RawQuery += "&x=%zz" }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := signedV3(t, "POST", "http://kms.test:9700/", q, []byte("body"), rpcHeaders("Encrypt"), testCreds)
			if _, err := VerifyRequest(r, body, testCreds.AccessKeySecret); err != nil {
				t.Fatalf("untampered request fails: %v", err)
			}
			tt.mutate(r, &body)
			_, err := VerifyRequest(r, body, testCreds.AccessKeySecret)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// The SDK writes "+" for a space in the query; a client may equally write
// %20. Both decode to the same parameters and must verify.
func TestVerify_V3_QueryEncodingVariants(t *testing.T) {
	r, body := signedV3(t, "POST", "http://kms.test/", url.Values{"Description": {"a b+c"}}, nil, rpcHeaders("UpdateKeyDescription"), testCreds)
	for _, raw := range []string{"Description=a+b%2Bc", "Description=a%20b%2Bc", "Description=a%20b%2bc"} {
		r.URL.RawQuery = raw
		if _, err := VerifyRequest(r, body, testCreds.AccessKeySecret); err != nil {
			t.Errorf("query %q: %v", raw, err)
		}
	}
}

func TestVerify_V3_AcceptsUpperCaseHexSignature(t *testing.T) {
	r, body := signedV3(t, "POST", "http://kms.test/", nil, nil, rpcHeaders("ListKeys"), testCreds)
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	a.Signature = strings.ToUpper(a.Signature)
	r.Header.Set("Authorization", a.String())
	if _, err := VerifyRequest(r, body, testCreds.AccessKeySecret); err != nil {
		t.Fatal(err)
	}
}

func TestSignV3_RejectsBadInput(t *testing.T) {
	r := httptest.NewRequest("POST", "http://kms.test/", nil)
	if err := SignV3(r, EmptyPayloadHash, Credentials{AccessKeyID: "id"}, testTime, "n"); !errors.Is(err, ErrMissing) {
		t.Errorf("empty secret: %v", err)
	}
	if err := SignV3(r, "abc", testCreds, testTime, "n"); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad payload hash: %v", err)
	}
	if err := SignV3(r, EmptyPayloadHash, testCreds, testTime, ""); !errors.Is(err, ErrMissing) {
		t.Errorf("empty nonce: %v", err)
	}
}

// signedV1 signs params with SignV1 and returns the server-side request,
// with the parameters in the query (as the SDK sends them) or in a form body.
func signedV1(t *testing.T, method string, params url.Values, inBody bool, c Credentials) (*http.Request, []byte) {
	t.Helper()
	SignV1(method, params, c, testTime, "nonce-v1")
	target := "http://kms.test:9700/"
	var body []byte
	if inBody {
		body = []byte(params.Encode())
	} else {
		target += "?" + params.Encode()
	}
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if inBody {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	return r, body
}

func v1Params() url.Values {
	return url.Values{
		"Action":            {"Encrypt"},
		"Version":           {"2016-01-20"},
		"KeyId":             {"alias/k"},
		"Plaintext":         {"a b+c/d=*~"},
		"EncryptionContext": {`{"k":"v w","中":"ü"}`},
	}
}

func TestVerify_V1_AcceptsWhatSignV1Produces(t *testing.T) {
	sts := testCreds
	sts.SecurityToken = "sts-token"
	tests := []struct {
		name   string
		method string
		inBody bool
		creds  Credentials
	}{
		{"POST query", "POST", false, testCreds},
		{"GET query", "GET", false, testCreds},
		{"POST form body", "POST", true, testCreds},
		{"temporary credentials", "POST", false, sts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := signedV1(t, tt.method, v1Params(), tt.inBody, tt.creds)
			if got := Detect(r, body); got != SchemeV1 {
				t.Fatalf("Detect = %v", got)
			}
			s, err := Parse(r, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s.AccessKeyID != tt.creds.AccessKeyID || s.Nonce != "nonce-v1" || !s.Time.Equal(testTime) || s.SecurityToken != tt.creds.SecurityToken {
				t.Errorf("Parse = id %q nonce %q time %v token %q", s.AccessKeyID, s.Nonce, s.Time, s.SecurityToken)
			}
			if s.Params.Get("Action") != "Encrypt" || s.Params.Has("Signature") {
				t.Errorf("Params = %v", s.Params)
			}
			if err := s.Verify(tt.creds.AccessKeySecret); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if err := s.Verify("wrong"); !errors.Is(err, ErrSignatureMismatch) {
				t.Errorf("Verify(wrong secret) = %v", err)
			}
		})
	}
}

func TestVerify_V1_Rejects(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(r *http.Request)
		wantErr error
	}{
		{"parameter changed", func(r *http.Request) { setQuery(r, "KeyId", "alias/other") }, ErrSignatureMismatch},
		{"parameter added", func(r *http.Request) { r.URL.RawQuery += "&DryRun=true" }, ErrSignatureMismatch},
		{"method changed", func(r *http.Request) { r.Method = "GET" }, ErrSignatureMismatch},
		{"Signature removed", func(r *http.Request) { delQuery(r, "Signature") }, ErrNotSigned},
		{"Timestamp missing", func(r *http.Request) { delQuery(r, "Timestamp") }, ErrMissing},
		{"SignatureNonce missing", func(r *http.Request) { delQuery(r, "SignatureNonce") }, ErrMissing},
		{"AccessKeyId empty", func(r *http.Request) { setQuery(r, "AccessKeyId", "") }, ErrMissing},
		{"SignatureVersion missing", func(r *http.Request) { delQuery(r, "SignatureVersion") }, ErrMissing},
		{"SignatureMethod other", func(r *http.Request) { setQuery(r, "SignatureMethod", "HMAC-SHA256") }, ErrUnsupported},
		{"SignatureVersion other", func(r *http.Request) { setQuery(r, "SignatureVersion", "2.0") }, ErrUnsupported},
		{"Signature not base64", func(r *http.Request) { setQuery(r, "Signature", "!!!") }, ErrMalformed},
		{"Timestamp not in format", func(r *http.Request) { setQuery(r, "Timestamp", "1700000000") }, ErrMalformed},
		{"nonce twice", func(r *http.Request) { r.URL.RawQuery += "&SignatureNonce=x" }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := signedV1(t, "POST", v1Params(), false, testCreds)
			if _, err := VerifyRequest(r, body, testCreds.AccessKeySecret); err != nil {
				t.Fatalf("untampered request fails: %v", err)
			}
			tt.mutate(r)
			if _, err := VerifyRequest(r, body, testCreds.AccessKeySecret); !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func setQuery(r *http.Request, k, v string) {
	q := r.URL.Query()
	q.Set(k, v)
	r.URL.RawQuery = q.Encode()
}

func delQuery(r *http.Request, k string) {
	q := r.URL.Query()
	q.Del(k)
	r.URL.RawQuery = q.Encode()
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		r    *http.Request
		body string
		want Scheme
	}{
		{"nothing", httptest.NewRequest("POST", "/?Action=ListKeys", nil), "", SchemeNone},
		{"authorization header", func() *http.Request {
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Authorization", "ACS3-HMAC-SHA256 x")
			return r
		}(), "", SchemeV3},
		{"signature in query", httptest.NewRequest("GET", "/?Signature=abc", nil), "", SchemeV1},
		{"signature in form body", func() *http.Request {
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(), "Signature=abc", SchemeV1},
		{"signature in a JSON body is not V1", func() *http.Request {
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), "Signature=abc", SchemeNone},
	}
	for _, tt := range tests {
		if got := Detect(tt.r, []byte(tt.body)); got != tt.want {
			t.Errorf("%s: Detect = %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := Parse(httptest.NewRequest("POST", "/", nil), nil); !errors.Is(err, ErrNotSigned) {
		t.Errorf("Parse(unsigned) = %v, want ErrNotSigned", err)
	}
}

// A random sign/transport/verify round trip: whatever the parameter values,
// what SignV3 signs, sent the way the SDK sends it, verifies.
func FuzzSignV3_RoundTrip(f *testing.F) {
	for _, v := range trickyValues {
		f.Add(v, "/")
	}
	f.Add("x", "/v1/a b/c")
	f.Fuzz(func(t *testing.T, val, path string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#") {
			return // not a request path
		}
		u := &url.URL{Scheme: "http", Host: "kms.test:9700", Path: path}
		r, body := signedV3(t, "POST", u.String(), url.Values{"P": {val}, val: {"v"}}, []byte(val), rpcHeaders("Encrypt"), testCreds)
		if r.URL.Path != path {
			return // not a path the URL parser keeps as is
		}
		if _, err := VerifyRequest(r, body, testCreds.AccessKeySecret); err != nil {
			t.Fatalf("value %q path %q: %v", val, path, err)
		}
	})
}
