package signature_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	kms "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/raftkms/raftkms/signature"
)

// Conformance with the official Go SDK: a test server verifies with this
// package what the real SDK sends, in both schemes. Nothing about the SDK is
// faked; it is configured exactly as a user would (endpoint, protocol,
// credentials).

const (
	sdkAccessKeyID     = "LTAI5tSdkConformance"
	sdkAccessKeySecret = "secret+with/special=chars*~"
)

// seenRequest is what the server observed, for the test to assert on.
type seenRequest struct {
	scheme   signature.Scheme
	token    string
	method   string
	path     string
	rawQuery string
	header   http.Header
	bodyLen  int
	action   string
	params   url.Values // the API parameters, decoded
	verified error
}

type sdkServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newSDKServer(t *testing.T) *sdkServer {
	s := &sdkServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *sdkServer) last(t *testing.T) seenRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		t.Fatal("server saw no request")
	}
	return s.seen[len(s.seen)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *sdkServer) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sr := seenRequest{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, header: r.Header.Clone(), bodyLen: len(body)}
	defer func() {
		s.mu.Lock()
		s.seen = append(s.seen, sr)
		s.mu.Unlock()
	}()
	fail := func(status int, code string, err error) {
		sr.verified = err
		writeJSON(w, status, map[string]string{"RequestId": "req-err", "HostId": "kms.test", "Code": code, "Message": err.Error()})
	}

	signed, err := signature.Parse(r, body)
	if err != nil {
		fail(400, "IncompleteSignature", err)
		return
	}
	sr.scheme, sr.token = signed.Scheme, signed.SecurityToken
	if signed.AccessKeyID != sdkAccessKeyID {
		fail(404, "InvalidAccessKeyId.NotFound", fmt.Errorf("unknown AccessKeyId %q", signed.AccessKeyID))
		return
	}
	if err := signed.Verify(sdkAccessKeySecret); err != nil {
		fail(400, "SignatureDoesNotMatch", err)
		return
	}

	// The API parameters: for V1 they are among the signed parameters,
	// mixed with the protocol ones; for V3 they are the whole query.
	if signed.Scheme == signature.SchemeV1 {
		sr.params = url.Values{}
		for k, v := range signed.Params {
			switch k {
			case "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "SecurityToken", "Format", "Version", "Action":
			default:
				sr.params[k] = v
			}
		}
		sr.action = signed.Params.Get("Action")
	} else {
		sr.params = signed.V3.Query
		sr.action = r.Header.Get("x-acs-action")
	}

	switch sr.action {
	case "Encrypt":
		writeJSON(w, 200, map[string]string{
			"RequestId":      "req-1",
			"KeyId":          "a5c1d9e2-7f3b-4c6d-9e8f-0a1b2c3d4e5f",
			"CiphertextBlob": "Y2lwaGVydGV4dA==",
			"KeyVersionId":   "b6d2e0f3-8a4c-4d7e-af90-1b2c3d4e5f60",
		})
	case "CreateKey":
		writeJSON(w, 200, map[string]any{
			"RequestId":   "req-2",
			"KeyMetadata": map[string]string{"KeyId": "c7e3f1a4-9b5d-4e8f-b0a1-2c3d4e5f6071", "Description": sr.params.Get("Description")},
		})
	default:
		fail(400, "InvalidAction.NotFound", fmt.Errorf("action %q", sr.action))
	}
}

type sdkConfig struct {
	name      string
	algorithm string // openapi.Config.SignatureAlgorithm: "" (ACS3-HMAC-SHA256) or "v2" (V1)
	scheme    signature.Scheme
}

var sdkConfigs = []sdkConfig{
	{"default signature", "", signature.SchemeV3},
	{"SignatureAlgorithm v2", "v2", signature.SchemeV1},
}

func newSDKClient(t *testing.T, srv *sdkServer, algorithm, secret, token string) *kms.Client {
	t.Helper()
	cfg := &openapi.Config{
		Endpoint:        tea.String(strings.TrimPrefix(srv.URL, "http://")),
		Protocol:        tea.String("http"),
		AccessKeyId:     tea.String(sdkAccessKeyID),
		AccessKeySecret: tea.String(secret),
	}
	if token != "" {
		cfg.SecurityToken = tea.String(token)
	}
	if algorithm != "" {
		cfg.SignatureAlgorithm = tea.String(algorithm)
	}
	c, err := kms.NewClient(cfg)
	if err != nil {
		t.Fatalf("kms.NewClient: %v", err)
	}
	return c
}

// Parameter values that break naive canonicalization: space, * ~ + / =,
// unicode, and a map parameter that travels as a JSON string.
var (
	trickyKeyID     = "alias/sdk test*~+/=ü"
	trickyPlaintext = "SGVsbG8gV29ybGQ+Pz8/+/w=="
	trickyContext   = map[string]any{"purpose": "sdk test + more", "路径": "a/b=c*d~e", "empty": ""}
)

func TestSDK_Encrypt_Verifies(t *testing.T) {
	for _, cfg := range sdkConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			srv := newSDKServer(t)
			client := newSDKClient(t, srv, cfg.algorithm, sdkAccessKeySecret, "")
			resp, err := client.Encrypt(&kms.EncryptRequest{
				KeyId:             tea.String(trickyKeyID),
				Plaintext:         tea.String(trickyPlaintext),
				EncryptionContext: trickyContext,
			})
			seen := srv.last(t)
			if err != nil {
				t.Fatalf("Encrypt: %v (server: %v)", err, seen.verified)
			}
			if seen.scheme != cfg.scheme {
				t.Errorf("scheme = %v, want %v", seen.scheme, cfg.scheme)
			}
			if got := tea.StringValue(resp.Body.CiphertextBlob); got != "Y2lwaGVydGV4dA==" {
				t.Errorf("CiphertextBlob = %q", got)
			}
			if got := tea.StringValue(resp.Body.KeyVersionId); got != "b6d2e0f3-8a4c-4d7e-af90-1b2c3d4e5f60" {
				t.Errorf("KeyVersionId = %q", got)
			}

			// The server decoded exactly what the caller passed.
			if got := seen.params.Get("KeyId"); got != trickyKeyID {
				t.Errorf("KeyId = %q, want %q", got, trickyKeyID)
			}
			if got := seen.params.Get("Plaintext"); got != trickyPlaintext {
				t.Errorf("Plaintext = %q, want %q", got, trickyPlaintext)
			}
			var ctx map[string]any
			if err := json.Unmarshal([]byte(seen.params.Get("EncryptionContext")), &ctx); err != nil {
				t.Fatalf("EncryptionContext %q is not JSON: %v", seen.params.Get("EncryptionContext"), err)
			}
			if !reflect.DeepEqual(ctx, trickyContext) {
				t.Errorf("EncryptionContext = %v, want %v", ctx, trickyContext)
			}
			// The space test is only meaningful if the SDK really sent "+".
			if !strings.Contains(seen.rawQuery, "sdk+test") {
				t.Errorf("raw query %q does not carry a space as '+'; the test no longer covers that case", seen.rawQuery)
			}
		})
	}
}

func TestSDK_CreateKey_DescriptionAndTags(t *testing.T) {
	const desc = "a key: 100% * sdk ~ test/+=\n中文"
	const tags = `[{"TagKey":"team name","TagValue":"a+b/c=d"}]`
	for _, cfg := range sdkConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			srv := newSDKServer(t)
			client := newSDKClient(t, srv, cfg.algorithm, sdkAccessKeySecret, "")
			resp, err := client.CreateKey(&kms.CreateKeyRequest{Description: tea.String(desc), Tags: tea.String(tags), KeySpec: tea.String("Aliyun_AES_256")})
			seen := srv.last(t)
			if err != nil {
				t.Fatalf("CreateKey: %v (server: %v)", err, seen.verified)
			}
			if got := tea.StringValue(resp.Body.KeyMetadata.Description); got != desc {
				t.Errorf("Description round trip = %q, want %q", got, desc)
			}
			if got := seen.params.Get("Tags"); got != tags {
				t.Errorf("Tags = %q, want %q", got, tags)
			}
		})
	}
}

func TestSDK_TemporaryCredentials_Verify(t *testing.T) {
	const token = "CAIS+sts/token=="
	for _, cfg := range sdkConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			srv := newSDKServer(t)
			client := newSDKClient(t, srv, cfg.algorithm, sdkAccessKeySecret, token)
			if _, err := client.Encrypt(&kms.EncryptRequest{KeyId: tea.String("k"), Plaintext: tea.String("cA==")}); err != nil {
				t.Fatalf("Encrypt: %v (server: %v)", err, srv.last(t).verified)
			}
			if got := srv.last(t).token; got != token {
				t.Errorf("SecurityToken = %q, want %q", got, token)
			}
		})
	}
}

func TestSDK_WrongSecret_IsRejected(t *testing.T) {
	for _, cfg := range sdkConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			srv := newSDKServer(t)
			client := newSDKClient(t, srv, cfg.algorithm, sdkAccessKeySecret+"x", "")
			_, err := client.Encrypt(&kms.EncryptRequest{KeyId: tea.String(trickyKeyID), Plaintext: tea.String(trickyPlaintext), EncryptionContext: trickyContext})
			if err == nil {
				t.Fatal("Encrypt with a wrong secret succeeded")
			}
			if seen := srv.last(t); !errors.Is(seen.verified, signature.ErrSignatureMismatch) {
				t.Errorf("server error = %v, want ErrSignatureMismatch", seen.verified)
			}
			var sdkErr *tea.SDKError
			if !errors.As(err, &sdkErr) {
				t.Fatalf("error %T %v is not a *tea.SDKError", err, err)
			}
			if tea.StringValue(sdkErr.Code) != "SignatureDoesNotMatch" || tea.IntValue(sdkErr.StatusCode) != 400 {
				t.Errorf("SDK error code %q status %d", tea.StringValue(sdkErr.Code), tea.IntValue(sdkErr.StatusCode))
			}
		})
	}
}

// The facts DESIGN.md states about the wire format, checked against the SDK.
func TestSDK_WireShape(t *testing.T) {
	for _, cfg := range sdkConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			srv := newSDKServer(t)
			client := newSDKClient(t, srv, cfg.algorithm, sdkAccessKeySecret, "")
			if _, err := client.Encrypt(&kms.EncryptRequest{KeyId: tea.String("k"), Plaintext: tea.String("cA==")}); err != nil {
				t.Fatal(err)
			}
			seen := srv.last(t)
			if seen.method != "POST" || seen.path != "/" || seen.bodyLen != 0 {
				t.Errorf("method %s path %q body %d bytes, want POST / and no body", seen.method, seen.path, seen.bodyLen)
			}
			if seen.header.Get("Content-Type") != "" {
				t.Errorf("Content-Type %q, want none", seen.header.Get("Content-Type"))
			}
			if seen.header.Get("x-acs-action") != "Encrypt" || seen.header.Get("x-acs-version") != "2016-01-20" {
				t.Errorf("x-acs-action %q x-acs-version %q", seen.header.Get("x-acs-action"), seen.header.Get("x-acs-version"))
			}
			q, _ := url.ParseQuery(seen.rawQuery)
			switch cfg.scheme {
			case signature.SchemeV3:
				a, err := signature.ParseAuthorization(seen.header.Get("Authorization"))
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-credentials-provider", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}
				if !reflect.DeepEqual(a.SignedHeaders, want) {
					t.Errorf("SignedHeaders = %v, want %v", a.SignedHeaders, want)
				}
				if got := seen.header.Get("x-acs-content-sha256"); got != signature.EmptyPayloadHash {
					t.Errorf("x-acs-content-sha256 = %q", got)
				}
				if q.Has("Action") || q.Has("Version") {
					t.Errorf("V3 query carries Action/Version: %s", seen.rawQuery)
				}
			case signature.SchemeV1:
				for k, want := range map[string]string{"Action": "Encrypt", "Version": "2016-01-20", "Format": "json", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "AccessKeyId": sdkAccessKeyID} {
					if got := q.Get(k); got != want {
						t.Errorf("query %s = %q, want %q", k, got, want)
					}
				}
				if seen.header.Get("Authorization") != "" || seen.header.Get("x-acs-date") != "" {
					t.Errorf("V1 request carries V3 headers: %v", seen.header)
				}
			}
		})
	}
}
