package api_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/internal/testutil"
)

// consoleServer is a second API server over tn's service, with its own
// audit sink (and its own sign-in limits), on a loopback HTTP server.
func consoleServer(t *testing.T, tn *testNode) (*httptest.Server, *auditSink) {
	t.Helper()
	sink := &auditSink{}
	srv := httptest.NewServer(api.New(api.Config{
		NodeID: "console", Service: tn.Service(), Raft: tn.Store(), DataDir: t.TempDir(), Audit: sink,
	}))
	t.Cleanup(srv.Close)
	return srv, sink
}

func (a *auditSink) byAction(action string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.recs {
		if r.Action == action {
			out = append(out, fmt.Sprintf("%s %s %s %d", r.AccessKeyID, r.Principal, r.Code, r.Status))
		}
	}
	return out
}

func (a *auditSink) dump() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("%+v", a.recs)
}

func TestConsole_FailedSignInsAreAuditedAndRateLimited(t *testing.T) {
	tn := startNode(t)
	srv, sink := consoleServer(t, tn)
	const wrong = "not-the-secret-0123456789"
	b := newConsoleBrowser(t, srv.URL)
	for range 5 {
		b.signIn(tn.Creds.AccessKeyID, wrong, "").want(t, 400, "SignatureDoesNotMatch")
	}
	// The sixth try for that key is refused unchecked — even with the
	// right secret — and says when to retry.
	a := b.signIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "").want(t, 429, "Rejected.Throttling")
	if ra := a.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	lines := sink.byAction("ConsoleSignIn")
	if len(lines) != 6 {
		t.Fatalf("audit lines of ConsoleSignIn: %q", lines)
	}
	for i, l := range lines {
		want := tn.Creds.AccessKeyID + "  SignatureDoesNotMatch 400"
		if i == 5 {
			want = tn.Creds.AccessKeyID + "  Rejected.Throttling 429"
		}
		if l != want {
			t.Errorf("audit line %d: %q, want %q", i, l, want)
		}
	}
	if d := sink.dump(); strings.Contains(d, wrong) || strings.Contains(d, tn.Creds.AccessKeySecret) {
		t.Fatal("a secret reached the audit log")
	}

	// Per source address: unknown key ids, one try each, until the
	// address's limit (20 failures; the throttled try above is none).
	for i := range 15 {
		b.signIn(fmt.Sprintf("LTAIunknown%02d", i), "x", "").want(t, 404, "InvalidAccessKeyId.NotFound")
	}
	b.signIn("LTAIunknownXX", "x", "").want(t, 429, "Rejected.Throttling")

	// A successful sign-in and a sign-out are audited with the identity.
	ram, ramSecret := tn.ramUser(t, "auditee", "")
	srv2, sink2 := consoleServer(t, tn)
	other := newConsoleBrowser(t, srv2.URL)
	other.mustSignIn(ram, ramSecret, "")
	other.signOut().want(t, 200, "")
	principal := "acs:ram::" + tn.AccountID + ":user/auditee"
	if got := sink2.byAction("ConsoleSignIn"); len(got) != 1 || got[0] != ram+" "+principal+" OK 200" {
		t.Fatalf("sign-in audit %q", got)
	}
	if got := sink2.byAction("ConsoleSignOut"); len(got) != 1 || got[0] != ram+" "+principal+" OK 200" {
		t.Fatalf("sign-out audit %q", got)
	}
}

func TestConsole_BodyIsReadOnlyAfterAuthentication(t *testing.T) {
	tn := startNode(t)
	h := api.New(api.Config{NodeID: "direct", Service: tn.Service(), Raft: tn.Store(), DataDir: t.TempDir()})
	const origin = "http://node.test"
	send := func(method, path string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, origin+path, body)
		r.Header.Set("Origin", origin)
		r.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := send(http.MethodPost, "/console/api/session", strings.NewReader(
		`{"AccessKeyId":"`+tn.Creds.AccessKeyID+`","AccessKeySecret":"`+tn.Creds.AccessKeySecret+`"}`), nil)
	if w.Code != 200 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	cookie := w.Result().Cookies()[0].Name + "=" + w.Result().Cookies()[0].Value
	var s consoleSession
	consoleAnswer{Status: w.Code, Body: w.Body.Bytes()}.decode(t, &s)

	for _, c := range []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
		code   string
		max    int64 // bytes the server may read
	}{
		{"no session", "/console/api/action/CreateKey", nil, 401, "ConsoleSession.Expired", 0},
		{"a forged cookie", "/console/api/action/CreateKey", map[string]string{"Cookie": "kms_console=" + strings.Repeat("A", 43), "X-CSRF-Token": s.CsrfToken}, 403, "Forbidden.CsrfToken", 0},
		{"no CSRF token", "/console/api/action/CreateKey", map[string]string{"Cookie": cookie}, 403, "Forbidden.CsrfToken", 0},
		{"a cross-site origin", "/console/api/action/CreateKey", map[string]string{"Cookie": cookie, "X-CSRF-Token": s.CsrfToken, "Origin": "http://evil.test"}, 403, "Forbidden.CsrfToken", 0},
		{"an unknown action", "/console/api/action/Nope", map[string]string{"Cookie": cookie, "X-CSRF-Token": s.CsrfToken}, 404, "InvalidAction.NotFound", 0},
		{"authenticated, too large", "/console/api/action/CreateKey", map[string]string{"Cookie": cookie, "X-CSRF-Token": s.CsrfToken}, 413, "RequestEntityTooLarge", 1<<20 + 1},
		{"a sign-in too large", "/console/api/session", nil, 413, "RequestEntityTooLarge", 64<<10 + 1},
		{"a snapshot form without the token", "/console/api/action/ConsoleSnapshot", map[string]string{"Cookie": "kms_console=" + strings.Repeat("B", 43)}, 401, "ConsoleSession.Expired", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := tn.hash()
			body := newEndlessBody(100 << 20)
			w := send(http.MethodPost, c.path, body, c.hdr)
			var e struct{ Code string }
			consoleAnswer{Body: w.Body.Bytes()}.decode(t, &e)
			if w.Code != c.status || e.Code != c.code {
				t.Fatalf("HTTP %d %s, want %d %s", w.Code, w.Body, c.status, c.code)
			}
			if n := body.read.Load(); n > c.max {
				t.Fatalf("the server read %d bytes of the body, at most %d allowed", n, c.max)
			}
			if tn.hash() != before {
				t.Fatal("a refused request changed the catalogue")
			}
		})
	}
}

// testClock is a service clock the test moves.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func TestConsole_IdleTimeoutEndsTheSession(t *testing.T) {
	clk := &testClock{}
	tn := startNodeWith(t, func(c *node.Config) { c.Clock = clk.now })
	b := newConsoleBrowser(t, tn.Endpoint())
	s := b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	if s.IdleTimeoutSeconds != 1800 {
		t.Fatalf("idle timeout %d s", s.IdleTimeoutSeconds)
	}
	// Used every 20 minutes, the session lives past its first 30.
	clk.advance(20 * time.Minute)
	b.action("ListKeys", nil).want(t, 200, "")
	clk.advance(20 * time.Minute)
	b.action("ListKeys", nil).want(t, 200, "")
	// Reads do not all write: a request right after a touch proposes none.
	idx := tn.Store().CommitIndex()
	b.session().want(t, 200, "")
	if got := tn.Store().CommitIndex(); got != idx {
		t.Fatalf("a read right after a touch wrote (commit index %d → %d)", idx, got)
	}
	kept := b.cookie
	clk.advance(31 * time.Minute)
	b.action("ListKeys", nil).want(t, 401, "ConsoleSession.Expired")
	if b.cookie != nil {
		t.Fatal("the refusal did not clear the cookie")
	}
	id := cookieSessionID(t, kept.Value)
	testutil.Eventually(t, "the idle session to be deleted", 10*time.Second, func() bool {
		_, ok := tn.FSM().ConsoleSession(id)
		return !ok
	})
	// Nor does the old cookie work once the clock would allow it again.
	b.cookie = kept
	b.session().want(t, 401, "ConsoleSession.Expired")
}

func TestConsole_AbsoluteLifetimeEndsAnActiveSession(t *testing.T) {
	clk := &testClock{}
	tn := startNodeWith(t, func(c *node.Config) { c.Clock = clk.now })
	b := newConsoleBrowser(t, tn.Endpoint())
	b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	for range 25 { // 12.5 hours, a request every 30 minutes minus one
		clk.advance(29 * time.Minute)
		if a := b.session(); a.Status != 200 {
			break
		}
	}
	b.session().want(t, 401, "ConsoleSession.Expired")
}

func cookieSessionID(tb testing.TB, v string) string {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

func TestConsole_DisabledAccessKeyEndsTheSession(t *testing.T) {
	tn := startNode(t)
	id, secret := tn.ramUser(t, "bob", "AliyunKMSFullAccess")
	b := newConsoleBrowser(t, tn.Endpoint())
	b.mustSignIn(id, secret, "")
	b.action("ListKeys", nil).want(t, 200, "")
	tn.must(t, "UpdateAccessKey", map[string]string{"UserName": "bob", "UserAccessKeyId": id, "Status": "Inactive"}, nil)
	kept := b.cookie
	b.action("ListKeys", nil).want(t, 401, "ConsoleSession.Expired")
	// Enabled again, the key signs in anew; the old session stays ended.
	tn.must(t, "UpdateAccessKey", map[string]string{"UserName": "bob", "UserAccessKeyId": id, "Status": "Active"}, nil)
	b.cookie = kept
	b.session().want(t, 401, "ConsoleSession.Expired")
	b.signIn(id, secret, "").want(t, 200, "")
	// A deleted key: the same.
	tn.must(t, "DeleteAccessKey", map[string]string{"UserName": "bob", "UserAccessKeyId": id}, nil)
	b.session().want(t, 401, "ConsoleSession.Expired")
	newConsoleBrowser(t, tn.Endpoint()).signIn(id, secret, "").want(t, 404, "InvalidAccessKeyId.NotFound")
}

// The catalogue holds the SHA-256 of the cookie, never the cookie: not in
// a snapshot (downloaded through the console), not in any file of the
// data directory.
func TestConsole_CookieIsNeverStored(t *testing.T) {
	var dataDir string
	tn := startNodeWith(t, func(c *node.Config) { dataDir = c.DataDir })
	b := newConsoleBrowser(t, tn.Endpoint())
	b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	value := b.cookie.Value
	raw, _ := base64.RawURLEncoding.DecodeString(value)
	id := cookieSessionID(t, value)

	a := b.request(http.MethodPost, "/console/api/action/ConsoleSnapshot", "application/x-www-form-urlencoded",
		formBody("CsrfToken", b.csrf), map[string]string{"X-CSRF-Token": ""}).want(t, 200, "")
	if cd := a.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="raftkms-`) || !strings.HasSuffix(cd, `.snap"`) {
		t.Fatalf("Content-Disposition %q", cd)
	}
	if !bytes.HasPrefix(a.Body, []byte("RAFTKMS\x00")) {
		t.Fatalf("not a snapshot: %q", a.Body[:min(len(a.Body), 16)])
	}
	if !bytes.Contains(a.Body, []byte(id)) {
		t.Fatal("the snapshot holds no console session (the test would prove nothing)")
	}
	check := func(what string, data []byte) {
		if bytes.Contains(data, raw) || bytes.Contains(data, []byte(value)) {
			t.Errorf("%s holds the session cookie", what)
		}
		if bytes.Contains(data, []byte(tn.Creds.AccessKeySecret)) {
			t.Errorf("%s holds the access key secret", what)
		}
	}
	check("the snapshot", a.Body)
	if err := tn.Store().Snapshot(); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			check(p, data)
		}
		return nil
	})
}

func TestConsole_ClusterMembersForTheOperator(t *testing.T) {
	tn := startNode(t)
	b := newConsoleBrowser(t, tn.Endpoint())
	b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	var out struct {
		RequestId string
		Members   []struct {
			NodeId, Address, Zone, Region, RaftRole, Suffrage, Health, HsmDomain, LastContact string
			Leader                                                                            bool
		}
	}
	b.action("ConsoleClusterMembers", nil).want(t, 200, "").decode(t, &out)
	if len(out.Members) != 1 || out.RequestId == "" {
		t.Fatalf("members %+v", out)
	}
	m := out.Members[0]
	if m.NodeId != "api-test" || m.RaftRole != "leader" || m.Suffrage != "voter" || m.Health != "alive" || !m.Leader || m.LastContact == "" {
		t.Fatalf("member %+v", m)
	}
	if _, err := time.Parse(time.RFC3339, m.LastContact); err != nil {
		t.Fatalf("LastContact %q: %v", m.LastContact, err)
	}
}

func TestConsole_InstanceListenerDoesNotServeIt(t *testing.T) {
	tn := startNodeWith(t, func(c *node.Config) { c.InstanceAddr = "127.0.0.1:0" })
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, p := range []string{"/console/", "/console/index.html", "/console/api/session"} {
		resp, err := hc.Get("https://" + tn.InstanceAddr() + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || resp.Header.Get("Content-Security-Policy") != "" || bytes.Contains(body, []byte("<html")) {
			t.Fatalf("the instance listener answered %s: %d %v %q", p, resp.StatusCode, resp.Header, body)
		}
	}
	// The API listener does.
	newConsoleBrowser(t, tn.Endpoint()).request(http.MethodGet, "/console/", "", nil, nil).want(t, 200, "")
}

// Over TLS the cookie is Secure, and the origin compared is https://.
func TestConsole_OverTLSTheCookieIsSecure(t *testing.T) {
	tn := startNode(t)
	srv := httptest.NewTLSServer(api.New(api.Config{NodeID: "tls", Service: tn.Service(), Raft: tn.Store(), DataDir: t.TempDir()}))
	t.Cleanup(srv.Close)
	b := newConsoleBrowser(t, srv.URL)
	b.hc = srv.Client()
	a := b.signIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "").want(t, 200, "")
	if raw := a.Header.Get("Set-Cookie"); !strings.Contains(raw, "; Secure") || !b.cookie.Secure {
		t.Fatalf("cookie over TLS: %q", raw)
	}
	b.action("ListKeys", nil).want(t, 200, "")
	// The same host over plain http is another origin.
	b.request(http.MethodPost, "/console/api/action/ListKeys", "application/json", []byte(`{}`),
		map[string]string{"Origin": strings.Replace(srv.URL, "https://", "http://", 1)}).want(t, 403, "Forbidden.CsrfToken")
}
