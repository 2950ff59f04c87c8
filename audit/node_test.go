package audit_test

import (
	"github.com/raftkms/raftkms/internal/testutil"

	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkms/raftkms/audit"
	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/store"
)

// recorder keeps every request header the client sends, so the test can
// look for its signatures in the audit log.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	query   []string
}

func (rc *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rc.mu.Lock()
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.query = append(rc.query, r.URL.RawQuery)
	rc.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func startNode(t *testing.T, dataDir, logPath string) (*node.Node, error) {
	t.Helper()
	raw := bytes.Repeat([]byte{7}, kcrypto.RootKeySize)
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(node.Config{
		NodeID: "a1", DataDir: dataDir, Single: true,
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		RootKey: root, Timing: store.FastTiming(), AuditLog: logPath,
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(n.Kill)
	testutil.Eventually(t, "the single node to lead", 20*time.Second, n.Store().IsLeader)
	return n, nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// A real node writes one chained line per request — successes and
// failures, API actions and operator endpoints — with who, what, which key
// and the result, and no line holds a plaintext, ciphertext, data key,
// secret, signature or encryption context that was sent or answered.
func TestNode_AuditLogRecordsRequestsWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	n, err := startNode(t, filepath.Join(dir, "data"), logPath)
	if err != nil {
		t.Fatal(err)
	}
	init, err := n.Service().Init(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	httpc := &http.Client{Transport: rec}
	cl, err := client.New(n.Endpoint(), init.AccessKeyID, init.AccessKeySecret, client.WithHTTPClient(httpc))
	if err != nil {
		t.Fatal(err)
	}

	type sent struct {
		requestID, action, code string
		status                  int
		principal               bool
	}
	var want []sent
	var secrets []string
	ok := func(action string, p map[string]string) map[string]any {
		t.Helper()
		resp, err := cl.Call(ctx(t), action, p)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		want = append(want, sent{resp.RequestID, action, "OK", 200, true})
		var m map[string]any
		json.Unmarshal(resp.Body, &m)
		return m
	}
	fail := func(c *client.Client, action string, p map[string]string, code string, principal bool) {
		t.Helper()
		_, err := c.Call(ctx(t), action, p)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Code != code {
			t.Fatalf("%s: %v, want %s", action, err, code)
		}
		want = append(want, sent{ae.RequestID, action, code, ae.StatusCode, principal})
	}

	key := ok("CreateKey", map[string]string{"DKMSInstanceId": init.InstanceID, "Description": "audited"})["KeyMetadata"].(map[string]any)["KeyId"].(string)
	plain := base64.StdEncoding.EncodeToString([]byte("plaintext-marker-5d1e"))
	encCtx := `{"purpose":"context-marker-77aa"}`
	enc := ok("Encrypt", map[string]string{"KeyId": key, "Plaintext": plain, "EncryptionContext": encCtx})
	blob := enc["CiphertextBlob"].(string)
	ok("Decrypt", map[string]string{"CiphertextBlob": blob, "EncryptionContext": encCtx})
	fail(cl, "Decrypt", map[string]string{"CiphertextBlob": blob, "EncryptionContext": `{"purpose":"other"}`}, "InvalidCiphertext", true)
	dk := ok("GenerateDataKey", map[string]string{"KeyId": key})
	fail(cl, "Encrypt", map[string]string{"KeyId": "alias/missing", "Plaintext": plain}, "Forbidden.AliasNotFound", true)
	wrong, _ := client.New(n.Endpoint(), init.AccessKeyID, "not-the-secret", client.WithHTTPClient(httpc))
	fail(wrong, "Encrypt", map[string]string{"KeyId": key, "Plaintext": plain}, "SignatureDoesNotMatch", false)
	secrets = append(secrets, plain, "plaintext-marker-5d1e", "context-marker-77aa", blob,
		dk["Plaintext"].(string), dk["CiphertextBlob"].(string), init.AccessKeySecret)

	// An unsigned request carrying a plaintext in its query.
	resp, err := http.Post(n.Endpoint()+"/?Action=Encrypt&KeyId="+key+"&Plaintext=dW5zaWduZWQtbWFya2Vy", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ RequestId, Code string }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	want = append(want, sent{e.RequestId, "Encrypt", e.Code, resp.StatusCode, false})
	secrets = append(secrets, "dW5zaWduZWQtbWFya2Vy")

	// An operator endpoint: the snapshot download is audited, its content
	// (wrapped key material) is not.
	sresp, err := cl.Do(ctx(t), http.MethodGet, "/v1/operator/snapshot", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sresp.Body.Close()
	want = append(want, sent{sresp.Header.Get("X-Request-Id"), "SnapshotSave", "OK", 200, true})

	// An operator endpoint whose answer carries a new secret.
	aresp, err := cl.Do(ctx(t), http.MethodPost, "/v1/operator/accounts", url.Values{"Name": {"audited"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var acct struct{ RequestId, AccessKeySecret string }
	json.NewDecoder(aresp.Body).Decode(&acct)
	aresp.Body.Close()
	if acct.AccessKeySecret == "" {
		t.Fatal("CreateAccount answered no secret")
	}
	want = append(want, sent{acct.RequestId, "CreateAccount", "OK", 200, true})
	secrets = append(secrets, acct.AccessKeySecret)

	// Monitoring pages are not audited.
	if r, err := http.Get(n.Endpoint() + "/v1/health"); err == nil {
		r.Body.Close()
	}

	rec.mu.Lock()
	for _, h := range rec.headers {
		if a := h.Get("Authorization"); a != "" {
			// ACS3-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=<hex>
			_, sig, _ := strings.Cut(a, "Signature=")
			secrets = append(secrets, sig)
		}
	}
	rec.mu.Unlock()

	n.Stop()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(bytes.NewReader(b), audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("the node's audit log does not verify: %v", err)
	}
	if res.Lines != len(want) {
		t.Fatalf("%d lines for %d audited requests:\n%s", res.Lines, len(want), b)
	}
	for _, s := range secrets {
		if s != "" && bytes.Contains(b, []byte(s)) {
			t.Fatalf("the audit log contains %q:\n%s", s, b)
		}
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	principal := "acs:ram::" + init.AccountID + ":root"
	for i, w := range want {
		var l map[string]any
		if err := json.Unmarshal(lines[i], &l); err != nil {
			t.Fatal(err)
		}
		if l["request_id"] != w.requestID || l["action"] != w.action || l["code"] != w.code || l["status"] != float64(w.status) || l["node"] != "a1" {
			t.Errorf("line %d = %s\nwant request %s, %s, %s, %d", i+1, lines[i], w.requestID, w.action, w.code, w.status)
		}
		if got := l["principal"]; (got == principal) != w.principal {
			t.Errorf("line %d: principal %q (authenticated: %v)", i+1, got, w.principal)
		}
		if !strings.HasPrefix(l["source"].(string), "127.0.0.1:") {
			t.Errorf("line %d: source %q", i+1, l["source"])
		}
	}
	// The crypto lines name the key and its version; the caller's access key
	// id (not its secret) is kept.
	var encLine map[string]any
	json.Unmarshal(lines[1], &encLine)
	if encLine["key_id"] != key || encLine["key_version_id"] == "" || encLine["access_key_id"] != init.AccessKeyID {
		t.Errorf("Encrypt line: %s", lines[1])
	}
	var failedDecrypt map[string]any
	json.Unmarshal(lines[3], &failedDecrypt)
	if failedDecrypt["key_version_id"] != encLine["key_version_id"] {
		t.Errorf("a failed Decrypt names the version its ciphertext names: %s", lines[3])
	}
	var missing map[string]any
	json.Unmarshal(lines[5], &missing)
	if missing["key_id"] != "alias/missing" {
		t.Errorf("a failed request names the key as asked: %s", lines[5])
	}

	// A restart continues the chain.
	n2, err := startNode(t, filepath.Join(dir, "data"), logPath)
	if err != nil {
		t.Fatal(err)
	}
	cl2, _ := client.New(n2.Endpoint(), init.AccessKeyID, init.AccessKeySecret)
	if _, err := cl2.Call(ctx(t), "DescribeKey", map[string]string{"KeyId": key}); err != nil {
		t.Fatal(err)
	}
	n2.Stop()
	b, _ = os.ReadFile(logPath)
	res, err = audit.Verify(bytes.NewReader(b), audit.VerifyOptions{})
	if err != nil || res.Lines != len(want)+1 {
		t.Fatalf("after a restart: %+v %v", res, err)
	}
}

// A node whose audit log ends in a damaged line does not start, and leaves
// the file as it was.
func TestNode_DamagedAuditLogStopsTheNode(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(logPath, []byte(`{"v":1,"time":"2026-01-01T00:00:00.000000Z","prev":"`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := startNode(t, filepath.Join(dir, "data"), logPath)
	if !errors.Is(err, audit.ErrDamaged) {
		t.Fatalf("start with a damaged audit log: %v", err)
	}
}
