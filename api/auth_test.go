package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/signature"
)

// Raw signed requests, built with package signature so that the test
// controls the clock, the nonce and what changes after signing.

// signedV3 builds POST /?query with x-acs-action and x-acs-version, signed
// with ACS3-HMAC-SHA256 at now with nonce.
func (tn *testNode) signedV3(t *testing.T, action string, params url.Values, creds signature.Credentials, now time.Time, nonce string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tn.Endpoint()+"/?"+signature.CanonicalQuery(params), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-acs-action", action)
	req.Header.Set("x-acs-version", client.APIVersion)
	if err := signature.SignV3(req, signature.EmptyPayloadHash, creds, now, nonce); err != nil {
		t.Fatal(err)
	}
	return req
}

// signedV1 builds POST /?query signed with HMAC-SHA1 (Action and Version in
// the query) and returns it with its signed query, for tampering.
func (tn *testNode) signedV1(t *testing.T, action string, params url.Values, creds signature.Credentials, now time.Time, nonce string) (*http.Request, url.Values) {
	t.Helper()
	q := url.Values{}
	for k, v := range params {
		q[k] = append([]string(nil), v...)
	}
	q.Set("Action", action)
	q.Set("Version", client.APIVersion)
	signature.SignV1(http.MethodPost, q, creds, now, nonce)
	return tn.v1Request(t, http.MethodPost, q), q
}

func (tn *testNode) v1Request(t *testing.T, method string, q url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, tn.Endpoint()+"/?"+signature.CanonicalQuery(q), nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// send sends a raw request and returns the status and, for an error, the
// code (checking the error format).
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		var ok struct{ RequestId string }
		if json.Unmarshal(body, &ok) != nil || ok.RequestId == "" {
			t.Errorf("success without RequestId: %s", body)
		}
		return resp.StatusCode, ""
	}
	checkErrorBody(t, body)
	var e struct{ Code string }
	json.Unmarshal(body, &e)
	return resp.StatusCode, e.Code
}

type authCase struct {
	name   string
	build  func(t *testing.T, now time.Time, nonce string) *http.Request
	status int
	code   string
}

// TestAuth_RejectsBadSignatures sends a correctly signed write, then each
// way of breaking it; every broken request is refused with the right code
// and leaves the catalogue as it was.
func TestAuth_RejectsBadSignatures(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "auth")
	params := url.Values{"KeyId": {key}, "Description": {"changed by a signed request"}}
	good := tn.Creds
	wrongSecret := signature.Credentials{AccessKeyID: good.AccessKeyID, AccessKeySecret: good.AccessKeySecret + "x"}
	unknownID := signature.Credentials{AccessKeyID: "LTAI" + strings.Repeat("Z", 20), AccessKeySecret: good.AccessKeySecret}
	const action = "UpdateKeyDescription"
	v3 := func(creds signature.Credentials, skew time.Duration, tamper func(*http.Request)) func(*testing.T, time.Time, string) *http.Request {
		return func(t *testing.T, now time.Time, nonce string) *http.Request {
			req := tn.signedV3(t, action, params, creds, now.Add(skew), nonce)
			if tamper != nil {
				tamper(req)
			}
			return req
		}
	}
	v1 := func(creds signature.Credentials, skew time.Duration, tamper func(q url.Values) (method string)) func(*testing.T, time.Time, string) *http.Request {
		return func(t *testing.T, now time.Time, nonce string) *http.Request {
			req, q := tn.signedV1(t, action, params, creds, now.Add(skew), nonce)
			if tamper == nil {
				return req
			}
			method := tamper(q)
			if method == "" {
				method = http.MethodPost
			}
			return tn.v1Request(t, method, q)
		}
	}
	setQuery := func(name, value string) func(*http.Request) {
		return func(r *http.Request) {
			q := r.URL.Query()
			q.Set(name, value)
			r.URL.RawQuery = signature.CanonicalQuery(q)
		}
	}

	cases := []authCase{
		// ACS3-HMAC-SHA256.
		{"V3/wrong secret", v3(wrongSecret, 0, nil), 400, "SignatureDoesNotMatch"},
		{"V3/parameter altered after signing", v3(good, 0, setQuery("Description", "altered")), 400, "SignatureDoesNotMatch"},
		{"V3/KeyId altered after signing", v3(good, 0, setQuery("KeyId", "alias/other")), 400, "SignatureDoesNotMatch"},
		{"V3/parameter added after signing", v3(good, 0, setQuery("DryRun", "false")), 400, "SignatureDoesNotMatch"},
		{"V3/action altered after signing", v3(good, 0, func(r *http.Request) { r.Header.Set("x-acs-action", "DisableKey") }), 400, "SignatureDoesNotMatch"},
		{"V3/method altered after signing", v3(good, 0, func(r *http.Request) { r.Method = http.MethodGet }), 400, "SignatureDoesNotMatch"},
		{"V3/signed header value altered", v3(good, 0, func(r *http.Request) { r.Header.Set("x-acs-version", "2019-01-01") }), 400, "SignatureDoesNotMatch"},
		{"V3/unsigned x-acs header added", v3(good, 0, func(r *http.Request) { r.Header.Set("x-acs-extra", "1") }), 400, "IncompleteSignature"},
		{"V3/unsigned content-type added", v3(good, 0, func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }), 400, "IncompleteSignature"},
		{"V3/body added after signing", func(t *testing.T, now time.Time, nonce string) *http.Request {
			// Content-Type is set (and signed) first, so only the body is new.
			req, err := http.NewRequest(http.MethodPost, tn.Endpoint()+"/?"+signature.CanonicalQuery(params), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("x-acs-action", action)
			if err := signature.SignV3(req, signature.EmptyPayloadHash, good, now, nonce); err != nil {
				t.Fatal(err)
			}
			body := "Description=from+the+body"
			req.Body = io.NopCloser(strings.NewReader(body))
			req.ContentLength = int64(len(body))
			return req
		}, 400, "SignatureDoesNotMatch"},
		{"V3/timestamp 16 minutes old", v3(good, -16*time.Minute, nil), 400, "InvalidTimeStamp.Expired"},
		{"V3/timestamp 16 minutes ahead", v3(good, 16*time.Minute, nil), 400, "InvalidTimeStamp.Expired"},
		{"V3/timestamp a day old", v3(good, -24*time.Hour, nil), 400, "InvalidTimeStamp.Expired"},
		{"V3/unknown AccessKeyId", v3(unknownID, 0, nil), 404, "InvalidAccessKeyId.NotFound"},
		{"V3/no Authorization", v3(good, 0, func(r *http.Request) { r.Header.Del("Authorization") }), 400, "IncompleteSignature"},
		{"V3/Authorization without Signature", v3(good, 0, func(r *http.Request) {
			a, _ := signature.ParseAuthorization(r.Header.Get("Authorization"))
			r.Header.Set("Authorization", a.Algorithm+" Credential="+a.AccessKeyID+",SignedHeaders="+strings.Join(a.SignedHeaders, ";"))
		}), 400, "IncompleteSignature"},
		{"V3/empty signature", v3(good, 0, func(r *http.Request) {
			a, _ := signature.ParseAuthorization(r.Header.Get("Authorization"))
			a.Signature = ""
			r.Header.Set("Authorization", a.String())
		}), 400, "IncompleteSignature"},
		{"V3/ACS3-HMAC-SM3", v3(good, 0, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), signature.AlgorithmV3, "ACS3-HMAC-SM3", 1))
		}), 400, "IncompleteSignature"},
		{"V3/no x-acs-date", v3(good, 0, func(r *http.Request) { r.Header.Del("x-acs-date") }), 400, "IncompleteSignature"},
		{"V3/x-acs-date not ISO 8601", v3(good, 0, func(r *http.Request) { r.Header.Set("x-acs-date", time.Now().UTC().Format(time.RFC1123)) }), 400, "IncompleteSignature"},
		{"V3/no nonce", v3(good, 0, func(r *http.Request) { r.Header.Del("x-acs-signature-nonce") }), 400, "IncompleteSignature"},
		{"V3/no content hash", v3(good, 0, func(r *http.Request) { r.Header.Del("x-acs-content-sha256") }), 400, "IncompleteSignature"},
		{"V3/nonce over 128 bytes", func(t *testing.T, now time.Time, _ string) *http.Request {
			return tn.signedV3(t, action, params, good, now, strings.Repeat("n", 129))
		}, 400, "IncompleteSignature"},

		// HMAC-SHA1.
		{"V1/wrong secret", v1(wrongSecret, 0, nil), 400, "SignatureDoesNotMatch"},
		{"V1/parameter altered after signing", v1(good, 0, func(q url.Values) string { q.Set("Description", "altered"); return "" }), 400, "SignatureDoesNotMatch"},
		{"V1/parameter added after signing", v1(good, 0, func(q url.Values) string { q.Set("DryRun", "false"); return "" }), 400, "SignatureDoesNotMatch"},
		{"V1/action altered after signing", v1(good, 0, func(q url.Values) string { q.Set("Action", "DisableKey"); return "" }), 400, "SignatureDoesNotMatch"},
		{"V1/method altered after signing", v1(good, 0, func(url.Values) string { return http.MethodGet }), 400, "SignatureDoesNotMatch"},
		{"V1/timestamp 16 minutes old", v1(good, -16*time.Minute, nil), 400, "InvalidTimeStamp.Expired"},
		{"V1/timestamp 16 minutes ahead", v1(good, 16*time.Minute, nil), 400, "InvalidTimeStamp.Expired"},
		{"V1/unknown AccessKeyId", v1(unknownID, 0, nil), 404, "InvalidAccessKeyId.NotFound"},
		{"V1/no Signature", v1(good, 0, func(q url.Values) string { q.Del("Signature"); return "" }), 400, "IncompleteSignature"},
		{"V1/empty Signature", v1(good, 0, func(q url.Values) string { q.Set("Signature", ""); return "" }), 400, "IncompleteSignature"},
		{"V1/Signature not Base64", v1(good, 0, func(q url.Values) string { q.Set("Signature", "***"); return "" }), 400, "IncompleteSignature"},
		{"V1/no SignatureNonce", v1(good, 0, func(q url.Values) string { q.Del("SignatureNonce"); return "" }), 400, "IncompleteSignature"},
		{"V1/no Timestamp", v1(good, 0, func(q url.Values) string { q.Del("Timestamp"); return "" }), 400, "IncompleteSignature"},
		{"V1/no AccessKeyId", v1(good, 0, func(q url.Values) string { q.Del("AccessKeyId"); return "" }), 400, "IncompleteSignature"},
		{"V1/SignatureMethod HMAC-SHA256", v1(good, 0, func(q url.Values) string { q.Set("SignatureMethod", "HMAC-SHA256"); return "" }), 400, "IncompleteSignature"},
		{"V1/SignatureVersion 2.0", v1(good, 0, func(q url.Values) string { q.Set("SignatureVersion", "2.0"); return "" }), 400, "IncompleteSignature"},
		{"V1/Timestamp not ISO 8601", v1(good, 0, func(q url.Values) string { q.Set("Timestamp", "1700000000"); return "" }), 400, "IncompleteSignature"},
		{"V1/Signature given twice", v1(good, 0, func(q url.Values) string { q.Add("Signature", q.Get("Signature")); return "" }), 400, "IncompleteSignature"},

		// Neither.
		{"unsigned", func(t *testing.T, _ time.Time, _ string) *http.Request {
			return tn.v1Request(t, http.MethodPost, url.Values{"Action": {action}, "KeyId": {key}, "Description": {"x"}})
		}, 400, "IncompleteSignature"},
	}

	// The unbroken requests pass: the cases above fail for what they change.
	for _, ok := range []struct {
		name string
		skew time.Duration
	}{{"now", 0}, {"14 minutes old", -14 * time.Minute}, {"14 minutes ahead", 14 * time.Minute}} {
		t.Run("V3/accepted "+ok.name, func(t *testing.T) {
			if status, code := send(t, v3(good, ok.skew, nil)(t, time.Now(), signature.NewNonce())); status != 200 {
				t.Fatalf("HTTP %d %s", status, code)
			}
		})
		t.Run("V1/accepted "+ok.name, func(t *testing.T) {
			if status, code := send(t, v1(good, ok.skew, nil)(t, time.Now(), signature.NewNonce())); status != 200 {
				t.Fatalf("HTTP %d %s", status, code)
			}
		})
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tn.hash()
			status, code := send(t, tc.build(t, time.Now(), signature.NewNonce()))
			if status != tc.status || code != tc.code {
				t.Errorf("got HTTP %d %s, want HTTP %d %s", status, code, tc.status, tc.code)
			}
			if tn.hash() != before {
				t.Error("the catalogue changed although the request was refused")
			}
		})
	}
}

// TestAuth_ReplayedNonce: the same signed request sent twice is served once;
// a new signature that reuses a nonce is refused too; a request refused for
// its signature does not spend its nonce.
func TestAuth_ReplayedNonce(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "replay")
	params := url.Values{"KeyId": {key}}
	wrongSecret := signature.Credentials{AccessKeyID: tn.Creds.AccessKeyID, AccessKeySecret: "wrong"}
	schemes := []struct {
		name string
		sign func(t *testing.T, creds signature.Credentials, p url.Values, nonce string) *http.Request
	}{
		{"V3", func(t *testing.T, creds signature.Credentials, p url.Values, nonce string) *http.Request {
			return tn.signedV3(t, "CreateKeyVersion", p, creds, time.Now(), nonce)
		}},
		{"V1", func(t *testing.T, creds signature.Credentials, p url.Values, nonce string) *http.Request {
			req, _ := tn.signedV1(t, "CreateKeyVersion", p, creds, time.Now(), nonce)
			return req
		}},
	}
	for _, s := range schemes {
		t.Run(s.name+"/same request twice", func(t *testing.T) {
			req := s.sign(t, tn.Creds, params, signature.NewNonce())
			replay := req.Clone(req.Context())
			before := tn.hash()
			if status, code := send(t, req); status != 200 {
				t.Fatalf("first request: HTTP %d %s", status, code)
			}
			afterFirst := tn.hash()
			if afterFirst == before {
				t.Fatal("the first request changed nothing; the replay check would prove nothing")
			}
			status, code := send(t, replay)
			if status != 400 || code != "SignatureNonceUsed" {
				t.Errorf("replay: HTTP %d %s, want 400 SignatureNonceUsed", status, code)
			}
			if tn.hash() != afterFirst {
				t.Error("the replay changed the catalogue")
			}
		})
		t.Run(s.name+"/new signature, used nonce", func(t *testing.T) {
			nonce := signature.NewNonce()
			if status, code := send(t, s.sign(t, tn.Creds, params, nonce)); status != 200 {
				t.Fatalf("first request: HTTP %d %s", status, code)
			}
			before := tn.hash()
			status, code := send(t, s.sign(t, tn.Creds, url.Values{"KeyId": {key}, "DryRun": {"false"}}, nonce))
			if status != 400 || code != "SignatureNonceUsed" {
				t.Errorf("HTTP %d %s, want 400 SignatureNonceUsed", status, code)
			}
			if tn.hash() != before {
				t.Error("the catalogue changed")
			}
		})
		t.Run(s.name+"/refused request keeps its nonce unspent", func(t *testing.T) {
			nonce := signature.NewNonce()
			if status, code := send(t, s.sign(t, wrongSecret, params, nonce)); code != "SignatureDoesNotMatch" {
				t.Fatalf("wrong secret: HTTP %d %s", status, code)
			}
			if status, code := send(t, s.sign(t, tn.Creds, params, nonce)); status != 200 {
				t.Errorf("the owner's request with that nonce: HTTP %d %s, want 200", status, code)
			}
		})
	}
}

// TestAuth_V1BodyCannotOverrideSignedParameters: a V1 signature covers the
// query (and a form body), but the decoder also merges a JSON body, whose
// values win over the query's. Whoever holds a signed V1 request in transit
// can therefore add a JSON body and change any parameter (KeyId,
// Description, Plaintext, ...) without breaking the signature: the request
// below is signed for Description "signed" and must not set "injected".
func TestAuth_V1BodyCannotOverrideSignedParameters(t *testing.T) {
	tn := startNode(t)
	for _, tc := range []struct{ name, contentType, body string }{
		{"JSON body", "application/json", `{"Description":"injected"}`},
		{"form body after signing", "application/x-www-form-urlencoded", "Description=injected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tn.createKey(t, "v1 body")
			req, _ := tn.signedV1(t, "UpdateKeyDescription", url.Values{"KeyId": {key}, "Description": {"signed"}}, tn.Creds, time.Now(), signature.NewNonce())
			req.Header.Set("Content-Type", tc.contentType)
			req.Body = io.NopCloser(strings.NewReader(tc.body))
			req.ContentLength = int64(len(tc.body))
			before := tn.hash()
			status, code := send(t, req)
			k, _ := tn.FSM().Key(key)
			if k.Description == "injected" {
				t.Fatalf("an unsigned body changed a signed parameter: HTTP %d, Description is now %q", status, k.Description)
			}
			if status == 200 {
				return // served with the signed value
			}
			if code != "SignatureDoesNotMatch" && code != "IncompleteSignature" {
				t.Errorf("HTTP %d %s, want a signature error", status, code)
			}
			if tn.hash() != before {
				t.Error("the catalogue changed")
			}
		})
	}
}

// TestAuth_V1SignatureCannotBeRetargeted: a V1 signature covers the method
// and the parameters, not the path, and not a body other than a form. The
// operator endpoints nevertheless accept V1 (api/operator.go calls
// authenticate, which takes either scheme). So one V1-signed API request of
// the operator — say a ListKeys that never reached the server — can be sent
// to POST /v1/operator/snapshot with any snapshot as its body: an attacker
// holding an old snapshot rolls the whole cluster back (re-enabling disabled
// keys, restoring deleted aliases). Each retargeted request must be refused
// and change nothing.
func TestAuth_V1SignatureCannotBeRetargeted(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "retarget")
	old := saveSnapshot(t, tn)
	tn.must(t, "DisableKey", map[string]string{"KeyId": key}, nil)

	for _, tc := range []struct {
		name, path, contentType string
		body                    []byte
	}{
		{"instance creation", "/v1/operator/instances", "", nil},
		{"snapshot restore", "/v1/operator/snapshot", "application/octet-stream", old},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := tn.signedV1(t, "ListKeys", url.Values{}, tn.Creds, time.Now(), signature.NewNonce())
			req.URL.Path = tc.path
			if tc.body != nil {
				req.Header.Set("Content-Type", tc.contentType)
				req.Body = io.NopCloser(bytes.NewReader(tc.body))
				req.ContentLength = int64(len(tc.body))
			}
			before := tn.hash()
			status, code := send(t, req)
			if k, _ := tn.FSM().Key(key); tc.body != nil && k.State != "Disabled" {
				t.Errorf("the disabled key is %s again: the old snapshot was restored", k.State)
			}
			if status == 200 || tn.hash() != before {
				t.Fatalf("a V1 signature made for POST / ListKeys was accepted on %s (HTTP %d %s)", tc.path, status, code)
			}
		})
	}
}

func saveSnapshot(t *testing.T, tn *testNode) []byte {
	t.Helper()
	resp, err := tn.V3.Do(context.Background(), http.MethodGet, "/v1/operator/snapshot", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
