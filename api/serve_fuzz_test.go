package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/signature"
)

// fuzzPaths are the paths a fuzz input picks from: the action endpoint and
// its neighbours. /metrics is left out (it answers text, not JSON), and so
// are paths that need cleaning such as "//", which the mux answers with a
// bare redirect (TestServe_UncleanPathAnsweredInServiceFormat).
var fuzzPaths = []string{"/", "/v1/health", "/v1/status", "/v1/operator/init", "/v1/operator/instances", "/v1/operator/snapshot", "/nope", "/v1/nope"}

// FuzzServeAction sends arbitrary requests — method, path, query, headers,
// body, unsigned or signed with the node's real credentials in either
// scheme (so that the action handlers themselves are reached) — to the API
// handler of a real single node. Whatever comes in, the answer is never a
// 5xx, and any answer other than 200 is the service's JSON error with a
// Code.
//
// The handler is api.New over the node's own service and Raft store, called
// in-process: one request costs microseconds (a signed write costs one Raft
// apply), and it can receive what no HTTP client would send.
func FuzzServeAction(f *testing.F) {
	tn := startNode(f)
	key := tn.createKey(f, "fuzz")
	h := api.New(api.Config{NodeID: tn.ID(), Service: tn.Service(), Raft: tn.Store(), DataDir: f.TempDir()})

	seed := func(method string, path uint8, query, headers, body string, mode uint8) {
		f.Add(method, path, query, headers, []byte(body), mode)
	}
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	seed("POST", 0, "", "", "", 0)
	seed("POST", 0, q("Action", "Encrypt", "KeyId", key, "Plaintext", "aGk="), "x-acs-action: Encrypt", "", 1)
	seed("POST", 0, q("Action", "Encrypt", "KeyId", key, "Plaintext", "aGk=", "EncryptionContext", `{"a":"b"}`), "", "", 2)
	seed("POST", 0, q("KeyId", key), "x-acs-action: DescribeKey", "", 1)
	seed("GET", 0, q("Action", "ListKeys", "PageSize", "100"), "", "", 2)
	seed("POST", 0, "", "Content-Type: application/json\nx-acs-action: GenerateDataKey", `{"KeyId":"`+key+`","NumberOfBytes":1024}`, 1)
	seed("POST", 0, "", "Content-Type: application/x-www-form-urlencoded\nx-acs-action: TagResource", "KeyId="+key+"&Tags=%5B%7B%22TagKey%22%3A%22a%22%7D%5D", 1)
	seed("POST", 0, q("Action", "Decrypt", "CiphertextBlob", "AAAA"), "", "", 2)
	seed("POST", 0, q("Action", "CreateAlias", "AliasName", "alias/fuzz", "KeyId", key), "", "", 2)
	seed("POST", 0, q("Action", "ReEncrypt", "CiphertextBlob", "!!", "DestinationKeyId", key), "", "", 2)
	seed("POST", 0, q("Action", "CreateSecret", "SecretName", "fz", "SecretData", "v", "VersionId", "1", "EncryptionKeyId", key), "", "", 2)
	seed("POST", 0, q("Action", "PutSecretValue", "SecretName", "fz", "SecretData", "w", "VersionId", "2", "VersionStages", `["ACSCurrent","x"]`), "", "", 1)
	seed("POST", 0, q("Action", "GetSecretValue", "SecretName", "fz", "VersionStage", "ACSPrevious", "FetchExtendedConfig", "true"), "", "", 2)
	seed("POST", 0, q("Action", "ListSecrets", "Filters", `[{"Key":"TagKey","Values":["a"]}]`, "FetchTags", "true"), "", "", 1)
	seed("POST", 0, q("Action", "UpdateSecret", "SecretName", "fz", "ExtendedConfig.CustomData.a", "1"), "", "", 2)
	seed("POST", 0, q("Action", "UpdateSecretVersionStage", "SecretName", "fz", "VersionStage", "ACSCurrent", "MoveToVersion", "1"), "", "", 1)
	seed("POST", 0, q("Action", "GetRandomPassword", "PasswordLength", "64", "ExcludeCharacters", "abc"), "", "", 2)
	seed("POST", 0, q("Action", "CreateCertificate", "KeySpec", "EC_P256", "Subject", "CN=a,OU=b,O=c,C=CN", "SubjectAlternativeNames", `["a.example.com"]`), "", "", 2)
	seed("POST", 0, q("Action", "UploadCertificate", "CertificateId", "x", "Certificate", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), "", "", 1)
	seed("POST", 0, q("Action", "CertificatePrivateKeySign", "CertificateId", "x", "Algorithm", "ECDSA_SHA_256", "Message", "aGk=", "MessageType", "DIGEST"), "", "", 2)
	seed("DELETE", 0, "", "", "", 1)
	seed("POST", 0, "a=%zz", "Authorization: ACS3-HMAC-SHA256 Credential=x", "", 0)
	seed("POST", 0, "", "Content-Type: text/plain", "hello", 1)
	seed("GET", 1, "", "", "", 0)
	seed("GET", 2, "", "", "", 0)
	seed("POST", 3, "", "", "", 0)
	seed("POST", 4, "", "", `{"Name":"x"}`, 1)
	seed("POST", 5, "", "", "not a snapshot", 1)
	seed("GET", 6, "", "", "", 1)

	f.Fuzz(func(t *testing.T, method string, path uint8, rawQuery, headers string, body []byte, mode uint8) {
		r := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: fuzzPaths[int(path)%len(fuzzPaths)], RawQuery: rawQuery},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{},
			Host:          "fuzz.test",
			RemoteAddr:    "127.0.0.1:1",
			Body:          http.NoBody,
			ContentLength: int64(len(body)),
		}
		if len(body) > 0 {
			r.Body = httpBody(body)
		}
		for line := range strings.SplitSeq(headers, "\n") {
			name, value, ok := strings.Cut(line, ":")
			if ok && name != "" {
				r.Header[http.CanonicalHeaderKey(strings.TrimSpace(name))] = append(r.Header[http.CanonicalHeaderKey(strings.TrimSpace(name))], strings.TrimSpace(value))
			}
		}
		// A Min-Index ahead of the log is answered after a 5 s wait (503,
		// retry elsewhere): by design, and too slow to fuzz.
		r.Header.Del("X-Kms-Min-Index")
		switch mode % 3 {
		case 1:
			signature.SignV3(r, signature.HashPayload(body), tn.Creds, time.Now(), signature.NewNonce())
		case 2:
			if params, err := url.ParseQuery(rawQuery); err == nil {
				signature.SignV1(method, params, tn.Creds, time.Now(), signature.NewNonce())
				r.URL.RawQuery = signature.CanonicalQuery(params)
			}
		}

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("%s %s?%s (mode %d): HTTP %d %s", method, r.URL.Path, r.URL.RawQuery, mode%3, rec.Code, rec.Body.Bytes())
		}
		if rec.Code == http.StatusOK {
			return
		}
		var e struct{ RequestId, Code, Message string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatalf("HTTP %d answer is not JSON: %q", rec.Code, rec.Body.Bytes())
		}
		if e.Code == "" || e.RequestId == "" || e.Message == "" {
			t.Fatalf("HTTP %d answer lacks Code, RequestId or Message: %s", rec.Code, rec.Body.Bytes())
		}
	})
}

type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }

func httpBody(b []byte) bodyReader { return bodyReader{bytes.NewReader(b)} }

// TestServe_UncleanPathAnsweredInServiceFormat: every answer that is not a
// success is the service's JSON error. The API's http.ServeMux (api/server.go,
// New) answers a path that needs cleaning ("//", "/./", "/a/..") itself,
// with a redirect and no JSON body, before any handler of the service runs;
// found by FuzzServeAction. The answer should be the service's error (404
// InvalidPath.NotFound, or the action endpoint's own answer).
func TestServe_UncleanPathAnsweredInServiceFormat(t *testing.T) {
	tn := startNode(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"//", "/./", "/a/..", "//v1/status"} {
		t.Run(path, func(t *testing.T) {
			resp, err := noRedirect.Post(tn.Endpoint()+path, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ RequestId, Code, Message string }
			if resp.StatusCode == http.StatusOK {
				return
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code == "" {
				t.Errorf("POST %s: HTTP %d (Location %q), not the service's JSON error", path, resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}
