package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkms/raftkms/signature"
)

const (
	testAK = "LTAIclienttest"
	testSK = "client secret +/=*~"
)

// testServer answers like a raftkms node would at the HTTP level, and, like
// the real one, refuses anything whose signature package signature does not
// accept, or whose nonce it has seen before.
type testServer struct {
	*httptest.Server
	mu     sync.Mutex
	nonces map[string]bool
}

func newTestServer(t *testing.T, tlsServer bool) *testServer {
	s := &testServer{nonces: map[string]bool{}}
	if tlsServer {
		s.Server = httptest.NewTLSServer(s)
	} else {
		s.Server = httptest.NewServer(s)
	}
	t.Cleanup(s.Close)
	return s
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"RequestId": "req-" + code, "HostId": "node-1", "Code": code, "Message": msg})
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		apiError(w, 400, "InvalidBody", err.Error())
		return
	}
	signed, err := signature.Parse(r, body)
	if err != nil {
		apiError(w, 400, "IncompleteSignature", err.Error())
		return
	}
	if signed.AccessKeyID != testAK {
		apiError(w, 404, "InvalidAccessKeyId.NotFound", signed.AccessKeyID)
		return
	}
	if err := signed.Verify(testSK); err != nil {
		apiError(w, 400, "SignatureDoesNotMatch", err.Error())
		return
	}
	s.mu.Lock()
	replay := s.nonces[signed.Nonce]
	s.nonces[signed.Nonce] = true
	s.mu.Unlock()
	if replay {
		apiError(w, 400, "SignatureNonceUsed", signed.Nonce)
		return
	}
	if time.Since(signed.Time).Abs() > 15*time.Minute {
		apiError(w, 400, "InvalidTimeStamp.Expired", signed.Time.String())
		return
	}

	switch r.URL.Path {
	case "/", "/kms/":
		s.rpc(w, r, signed)
	case "/v1/operator/snapshot":
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := range 1000 {
			fmt.Fprintf(w, "chunk %04d\n", i)
		}
	case "/v1/operator/restore":
		sum := sha256.Sum256(body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"Size": len(body), "SHA256": hex.EncodeToString(sum[:]),
			"ContentType": r.Header.Get("Content-Type"), "Mode": r.URL.Query().Get("mode"),
		})
	default:
		apiError(w, 404, "NotFound", r.URL.Path)
	}
}

func (s *testServer) rpc(w http.ResponseWriter, r *http.Request, signed *signature.Signed) {
	params := map[string]string{}
	var action string
	if signed.Scheme == signature.SchemeV1 {
		action = signed.Params.Get("Action")
		for k := range signed.Params {
			switch k {
			case "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "SecurityToken", "Format", "Version", "Action":
			default:
				params[k] = signed.Params.Get(k)
			}
		}
	} else {
		action = r.Header.Get("x-acs-action")
		for k := range signed.V3.Query {
			params[k] = signed.V3.Query.Get(k)
		}
	}
	switch action {
	case "Echo":
		w.Header().Set(HeaderIndex, "42")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"RequestId": "req-echo", "Action": action, "Params": params,
			"MinIndex": r.Header.Get(HeaderMinIndex), "Token": signed.SecurityToken, "Scheme": signed.Scheme.String(),
		})
	case "DescribeKey":
		apiError(w, 404, "Forbidden.KeyNotFound", "The specified Key is not found.")
	case "ProxyError":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
	case "Abort":
		// The connection drops mid-answer: the write may have happened.
		panic(http.ErrAbortHandler)
	case "Hang":
		<-r.Context().Done()
	case "NotJSON":
		io.WriteString(w, "plain text")
	case "BadIndex":
		w.Header().Set(HeaderIndex, "forty-two")
		io.WriteString(w, `{"RequestId":"r"}`)
	default:
		apiError(w, 400, "InvalidAction.NotFound", action)
	}
}

func newTestClient(t *testing.T, srv *testServer, opts ...Option) *Client {
	t.Helper()
	c, err := New(srv.URL, testAK, testSK, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type echo struct {
	RequestId, Action, MinIndex, Token, Scheme string
	Params                                     map[string]string
}

var trickyParams = map[string]string{
	"KeyId":             "alias/a key*~+/=",
	"Plaintext":         "SGVsbG8+Pz8/+/w==",
	"EncryptionContext": `{"purpose":"client test + more","路径":"a/b=c*d~e"}`,
	"Description":       "100% sure & \"quoted\"\nnew line",
	"Empty":             "",
}

func TestCall_SignsAndDecodes(t *testing.T) {
	for _, version := range []string{"", SignatureV3, SignatureV1} {
		t.Run("version="+version, func(t *testing.T) {
			srv := newTestServer(t, false)
			c := newTestClient(t, srv, WithSignatureVersion(version))
			resp, err := c.Call(context.Background(), "Echo", trickyParams)
			if err != nil {
				t.Fatal(err)
			}
			var got echo
			if err := resp.Decode(&got); err != nil {
				t.Fatal(err)
			}
			wantScheme := signature.SchemeV3.String()
			if version == SignatureV1 {
				wantScheme = signature.SchemeV1.String()
			}
			if got.Scheme != wantScheme || got.Action != "Echo" {
				t.Errorf("server saw scheme %q action %q, want %q Echo", got.Scheme, got.Action, wantScheme)
			}
			if !maps.Equal(got.Params, trickyParams) {
				t.Errorf("server decoded params\n%v\nwant\n%v", got.Params, trickyParams)
			}
			if resp.StatusCode != 200 || resp.RequestID != "req-echo" || resp.Index != 42 {
				t.Errorf("status %d request id %q index %d", resp.StatusCode, resp.RequestID, resp.Index)
			}
			if got.MinIndex != "" {
				t.Errorf("X-Kms-Min-Index sent without WithMinIndex: %q", got.MinIndex)
			}
		})
	}
}

func TestCall_WithMinIndex(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)
	resp, err := c.Call(context.Background(), "Echo", nil, WithMinIndex(1234567))
	if err != nil {
		t.Fatal(err)
	}
	var got echo
	resp.Decode(&got)
	if got.MinIndex != "1234567" {
		t.Errorf("server saw X-Kms-Min-Index %q, want 1234567", got.MinIndex)
	}
}

func TestCall_SecurityTokenIsSent(t *testing.T) {
	for _, version := range []string{SignatureV3, SignatureV1} {
		srv := newTestServer(t, false)
		c := newTestClient(t, srv, WithSignatureVersion(version), WithSecurityToken("sts/token+="))
		resp, err := c.Call(context.Background(), "Echo", nil)
		if err != nil {
			t.Fatalf("%s: %v", version, err)
		}
		var got echo
		resp.Decode(&got)
		if got.Token != "sts/token+=" {
			t.Errorf("%s: server saw token %q", version, got.Token)
		}
	}
}

func TestCall_ServerErrorIsAPIError(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)
	_, err := c.Call(context.Background(), "DescribeKey", map[string]string{"KeyId": "nope"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %T %v, want *APIError", err, err)
	}
	if apiErr.StatusCode != 404 || apiErr.Code != "Forbidden.KeyNotFound" || apiErr.Message != "The specified Key is not found." ||
		apiErr.RequestID != "req-Forbidden.KeyNotFound" || apiErr.HostID != "node-1" || !bytes.Contains(apiErr.Body, []byte(`"Code"`)) {
		t.Errorf("APIError = %+v", apiErr)
	}
	if msg := err.Error(); !strings.Contains(msg, "Forbidden.KeyNotFound") || !strings.Contains(msg, "The specified Key is not found.") {
		t.Errorf("Error() = %q lacks code or message", msg)
	}
}

func TestCall_NonJSONErrorIsAPIErrorWithoutCode(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)
	_, err := c.Call(context.Background(), "ProxyError", nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if apiErr.StatusCode != 502 || apiErr.Code != "" || !strings.Contains(string(apiErr.Body), "Bad Gateway") {
		t.Errorf("APIError = %+v", apiErr)
	}
	if !strings.Contains(err.Error(), "502") {
		t.Errorf("Error() = %q", err.Error())
	}
}

// The server really checks what the client signs: a wrong secret is refused.
func TestCall_WrongSecretIsRefused(t *testing.T) {
	for _, version := range []string{SignatureV3, SignatureV1} {
		srv := newTestServer(t, false)
		c, err := New(srv.URL, testAK, testSK+"x", WithSignatureVersion(version))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Call(context.Background(), "Echo", trickyParams)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "SignatureDoesNotMatch" {
			t.Errorf("%s: err = %v, want SignatureDoesNotMatch", version, err)
		}
	}
}

// Errors where the outcome is unknown must not look like server answers.
func TestCall_UnknownOutcomesAreNotAPIErrors(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	refused, err := New(closedURL, testAK, testSK)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		client *Client
		action string
	}{
		{"connection refused", refused, "Echo"},
		{"connection dropped mid-answer", c, "Abort"},
		{"2xx body not JSON", c, "NotJSON"},
		{"unparsable X-Kms-Index", c, "BadIndex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.Call(context.Background(), tt.action, nil)
			if err == nil {
				t.Fatal("no error")
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				t.Fatalf("err %v is an *APIError; callers would record a definite failure", err)
			}
		})
	}
}

func TestCall_ContextDeadline(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, "Hang", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		t.Fatal("timeout reported as *APIError")
	}
}

func TestCall_DefaultTimeoutApplies(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv, WithTimeout(100*time.Millisecond))
	if _, err := c.Call(context.Background(), "Hang", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded from Client.Timeout", err)
	}
}

// Many goroutines on one client: the lazily built HTTP client is shared
// safely (run with -race) and every request has a fresh nonce (the server
// refuses replays).
func TestCall_ConcurrentUse(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Call(context.Background(), "Echo", map[string]string{"N": fmt.Sprint(i)}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCall_EndpointWithPathPrefix(t *testing.T) {
	srv := newTestServer(t, false)
	c, err := New(srv.URL+"/kms", testAK, testSK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "Echo", nil); err != nil {
		t.Fatal(err)
	}
}

func TestDo_StreamsUploadFromFile(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)

	content := bytes.Repeat([]byte("snapshot\x00\xff"), 100_000)
	path := filepath.Join(t.TempDir(), "snap.bin")
	if err := os.WriteFile(path, append([]byte("HEADER"), content...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Start past a header: only the rest is hashed and sent.
	if _, err := f.Seek(int64(len("HEADER")), io.SeekStart); err != nil {
		t.Fatal(err)
	}

	resp, err := c.Do(context.Background(), "POST", "/v1/operator/restore", map[string][]string{"mode": {"force it"}}, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Size              int
		SHA256            string
		ContentType, Mode string
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if got.Size != len(content) || got.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("server got %d bytes %s, want %d bytes %x", got.Size, got.SHA256, len(content), sum)
	}
	if got.ContentType != "application/octet-stream" || got.Mode != "force it" {
		t.Errorf("content type %q mode %q", got.ContentType, got.Mode)
	}
	// The file is not closed by Do: the caller owns it.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Errorf("file closed by Do: %v", err)
	}
}

func TestDo_BytesBodyWithContentType(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)
	resp, err := c.Do(context.Background(), "POST", "/v1/operator/restore", nil, bytes.NewReader([]byte(`{"a":1}`)),
		http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Size        int
		ContentType string
	}
	json.NewDecoder(resp.Body).Decode(&got)
	if got.Size != 7 || got.ContentType != "application/json" {
		t.Errorf("got %+v", got)
	}
}

func TestDo_StreamsDownload(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)
	resp, err := c.Do(context.Background(), "GET", "/v1/operator/snapshot", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("chunk ")); n != 1000 || !bytes.HasSuffix(b, []byte("chunk 0999\n")) {
		t.Errorf("got %d chunks, %d bytes", n, len(b))
	}
}

func TestDo_ErrorStatusIsAPIError(t *testing.T) {
	srv := newTestServer(t, false)
	c := newTestClient(t, srv)
	_, err := c.Do(context.Background(), "GET", "/v1/operator/nothing", nil, nil, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "NotFound" {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Do(context.Background(), "GET", "v1/no-slash", nil, nil, nil); err == nil {
		t.Error("relative path accepted")
	}
}

func TestWithCAFile_TrustsClusterCA(t *testing.T) {
	srv := newTestServer(t, true)
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caPath, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	c := newTestClient(t, srv, WithCAFile(caPath))
	if _, err := c.Call(context.Background(), "Echo", trickyParams); err != nil {
		t.Fatalf("with CA file: %v", err)
	}

	untrusting := newTestClient(t, srv)
	_, err := untrusting.Call(context.Background(), "Echo", nil)
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Fatalf("without CA file: err = %v, want x509.UnknownAuthorityError", err)
	}

	if _, err := New(srv.URL, testAK, testSK, WithCAFile(filepath.Join(t.TempDir(), "missing.pem"))); err == nil {
		t.Error("missing CA file accepted")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a pem"), 0o600)
	if _, err := New(srv.URL, testAK, testSK, WithCAFile(empty)); err == nil {
		t.Error("CA file without certificates accepted")
	}
}

func TestCall_WithoutCredentialsFailsBeforeSending(t *testing.T) {
	sent := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent = true }))
	defer srv.Close()
	c, err := New(srv.URL, "", "")
	if err != nil {
		t.Fatalf("an endpoint alone must be enough to build a client: %v", err)
	}
	if _, err := c.Call(context.Background(), "DescribeKey", nil); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("Call without credentials: %v", err)
	}
	if _, err := c.Do(context.Background(), http.MethodGet, "/v1/operator/snapshot", nil, nil, nil); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("Do without credentials: %v", err)
	}
	if sent {
		t.Fatal("an unsigned request reached the server")
	}
	resp, err := c.DoUnsigned(context.Background(), http.MethodGet, "/v1/status", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !sent {
		t.Fatal("DoUnsigned sent nothing")
	}
}

func TestNew_Validates(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		ak, sk   string
		opts     []Option
		wantErr  bool
		wantURL  string
	}{
		{name: "http URL", endpoint: "http://127.0.0.1:9700", ak: "a", sk: "s", wantURL: "http://127.0.0.1:9700"},
		{name: "https URL", endpoint: "https://kms.example:9700", ak: "a", sk: "s", wantURL: "https://kms.example:9700"},
		{name: "bare host:port is http", endpoint: "localhost:9700", ak: "a", sk: "s", wantURL: "http://localhost:9700"},
		{name: "empty endpoint", endpoint: "", ak: "a", sk: "s", wantErr: true},
		{name: "other scheme", endpoint: "ftp://h:21", ak: "a", sk: "s", wantErr: true},
		{name: "no host", endpoint: "http://", ak: "a", sk: "s", wantErr: true},
		{name: "query in endpoint", endpoint: "http://h:1/?x=1", ak: "a", sk: "s", wantErr: true},
		{name: "bad signature version", endpoint: "http://h:1", ak: "a", sk: "s", opts: []Option{WithSignatureVersion("v2")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.endpoint, tt.ak, tt.sk, tt.opts...)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, _ := c.baseURL()
			if u.String() != tt.wantURL {
				t.Errorf("base URL %s, want %s", u, tt.wantURL)
			}
		})
	}
}

func TestAPIError_ErrorMentionsCodeMessageStatus(t *testing.T) {
	e := &APIError{StatusCode: 409, Code: "Forbidden.KeyState", Message: "key is Disabled", RequestID: "r-1"}
	want := "kms: Forbidden.KeyState: key is Disabled (HTTP 409, RequestId r-1)"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}

// The default client must not wait forever on a black-holed address or a
// stalled TLS handshake, and must not follow redirects with a signed request.
func TestDefaultHTTPClient_HasTimeoutsAndNoRedirects(t *testing.T) {
	c := &Client{Endpoint: "http://127.0.0.1:1"}
	hc := c.httpClient()
	tr := hc.Transport.(*http.Transport)
	if tr.TLSHandshakeTimeout == 0 || tr.DialContext == nil || tr.IdleConnTimeout == 0 {
		t.Errorf("transport timeouts not set: %+v", tr)
	}
	if hc.CheckRedirect == nil || hc.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("default client follows redirects")
	}
}
