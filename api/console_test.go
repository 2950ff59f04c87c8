package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// ramUser creates a RAM user with the system policy attached (none when
// policy is empty) and an access key; it returns the key's id and secret.
func (tn *testNode) ramUser(tb testing.TB, name, policy string) (string, string) {
	tb.Helper()
	tn.must(tb, "CreateUser", map[string]string{"UserName": name}, nil)
	if policy != "" {
		tn.must(tb, "AttachPolicyToUser", map[string]string{"UserName": name, "PolicyType": "System", "PolicyName": policy}, nil)
	}
	var ak struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	tn.must(tb, "CreateAccessKey", map[string]string{"UserName": name}, &ak)
	return ak.AccessKey.AccessKeyId, ak.AccessKey.AccessKeySecret
}

func TestConsole_SignInAsRootGivesTheSessionObject(t *testing.T) {
	tn := startNode(t)
	b := newConsoleBrowser(t, tn.Endpoint())
	s := b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	if s.Identity.AccountId != tn.AccountID || s.Identity.Kind != "root" || s.Identity.AccessKeyId != tn.Creds.AccessKeyID ||
		s.Identity.Temporary || !strings.HasSuffix(s.Identity.Principal, ":root") {
		t.Fatalf("identity %+v", s.Identity)
	}
	if s.Region != "local" || len(s.Regions) == 0 || s.Regions[0].RegionId != "local" || s.CsrfToken == "" ||
		s.IdleTimeoutSeconds != 1800 || s.NodeId != "api-test" || s.RequestId == "" {
		t.Fatalf("session %+v", s)
	}
	// The session reads back, with the same CSRF token.
	var again consoleSession
	b.session().want(t, 200, "").decode(t, &again)
	if again.Identity != s.Identity || again.CsrfToken != s.CsrfToken {
		t.Fatalf("GET session %+v, signed in as %+v", again, s)
	}
	if strings.Contains(string(b.session().Body), tn.Creds.AccessKeySecret) {
		t.Fatal("the session answer carries the secret")
	}
	// Signing in again from the same browser ends the session it had.
	old := b.cookie
	b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	if n := len(tn.FSM().ConsoleSessions()); n != 1 {
		t.Fatalf("%d sessions after signing in again, want 1", n)
	}
	b.cookie = old
	b.session().want(t, 401, "ConsoleSession.Expired")
}

func TestConsole_SessionCookieAttributes(t *testing.T) {
	tn := startNode(t)
	b := newConsoleBrowser(t, tn.Endpoint())
	a := b.signIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "").want(t, 200, "")
	raw := a.Header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("Set-Cookie %q", raw)
	}
	c := b.cookie
	if c.Name != "kms_console" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" || c.Secure {
		t.Fatalf("cookie %q", raw[0])
	}
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(raw[0], attr) {
			t.Fatalf("cookie %q lacks %s", raw[0], attr)
		}
	}
	if len(c.Value) != 43 || strings.Contains(raw[0], tn.Creds.AccessKeySecret) {
		t.Fatalf("cookie value %q is not 32 random bytes in base64url", c.Value)
	}
}

func TestConsole_SignInAsRAMUserAndWithSTSCredentials(t *testing.T) {
	tn := startNode(t)
	id, secret := tn.ramUser(t, "alice", "AliyunKMSFullAccess")
	b := newConsoleBrowser(t, tn.Endpoint())
	s := b.mustSignIn(id, secret, "")
	if s.Identity.Kind != "user" || s.Identity.Name != "alice" || s.Identity.AccountId != tn.AccountID {
		t.Fatalf("identity %+v", s.Identity)
	}
	// An STS session of a role alice may assume.
	trust := `{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:root"]}}],"Version":"1"}`
	tn.must(t, "CreateRole", map[string]string{"RoleName": "ops", "AssumeRolePolicyDocument": trust}, nil)
	tn.must(t, "AttachPolicyToRole", map[string]string{"RoleName": "ops", "PolicyType": "System", "PolicyName": "AliyunKMSReadOnlyAccess"}, nil)
	var cred struct {
		Credentials struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
	}
	tn.must(t, "AssumeRole", map[string]string{"RoleArn": "acs:ram::" + tn.AccountID + ":role/ops", "RoleSessionName": "web"}, &cred)
	sb := newConsoleBrowser(t, tn.Endpoint())
	ss := sb.mustSignIn(cred.Credentials.AccessKeyId, cred.Credentials.AccessKeySecret, cred.Credentials.SecurityToken)
	if ss.Identity.Kind != "role" || ss.Identity.Name != "ops" || !ss.Identity.Temporary {
		t.Fatalf("identity %+v", ss.Identity)
	}
	sb.action("ListKeys", nil).want(t, 200, "")
	// Without its token, or with a wrong secret, the same id is refused.
	newConsoleBrowser(t, tn.Endpoint()).signIn(cred.Credentials.AccessKeyId, cred.Credentials.AccessKeySecret, "").
		want(t, 400, "InvalidSecurityToken.MismatchWithAccessKey")
	newConsoleBrowser(t, tn.Endpoint()).signIn(cred.Credentials.AccessKeyId, "wrong", cred.Credentials.SecurityToken).
		want(t, 400, "SignatureDoesNotMatch")
	// Deleting the role ends the session.
	tn.must(t, "DetachPolicyFromRole", map[string]string{"RoleName": "ops", "PolicyType": "System", "PolicyName": "AliyunKMSReadOnlyAccess"}, nil)
	tn.must(t, "DeleteRole", map[string]string{"RoleName": "ops"}, nil)
	sb.action("ListKeys", nil).want(t, 401, "ConsoleSession.Expired")
}

func TestConsole_ActionAnswersEqualTheRPCAPIs(t *testing.T) {
	tn := startNode(t)
	keyID := tn.createKey(t, "compare me")
	tn.must(t, "CreateAlias", map[string]string{"AliasName": "alias/cmp", "KeyId": keyID}, nil)
	b := newConsoleBrowser(t, tn.Endpoint())
	b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	for _, c := range []struct {
		action string
		params map[string]string
	}{
		{"DescribeKey", map[string]string{"KeyId": keyID}},
		{"DescribeKey", map[string]string{"KeyId": "alias/cmp"}},
		{"ListKeys", map[string]string{"PageSize": "10"}},
		{"ListAliases", nil},
		{"ListKmsInstances", nil},
		{"DescribeRegions", nil},
		{"GetKeyPolicy", map[string]string{"KeyId": keyID, "PolicyName": "default"}},
	} {
		resp := tn.must(t, c.action, c.params, nil)
		a := b.action(c.action, c.params).want(t, 200, "")
		if got, want := withoutRequestID(t, a.Body), withoutRequestID(t, resp.Body); got != want {
			t.Errorf("%s: console answered %s, the RPC API %s", c.action, got, want)
		}
	}
	// Errors are the RPC API's too: the same code, status and message.
	_, rpcErr := tn.call(t, "DescribeKey", map[string]string{"KeyId": "alias/none"})
	ae := wantAPIError(t, rpcErr, 404, "Forbidden.AliasNotFound")
	a := b.action("DescribeKey", map[string]string{"KeyId": "alias/none"}).want(t, 404, "Forbidden.AliasNotFound")
	var got struct{ Message string }
	a.decode(t, &got)
	if got.Message != ae.Message {
		t.Errorf("console message %q, RPC %q", got.Message, ae.Message)
	}
	b.action("NoSuchAction", nil).want(t, 404, "InvalidAction.NotFound")
	// A write through the console is a real write, visible through the API.
	var ck struct{ KeyMetadata struct{ KeyId string } }
	b.action("CreateKey", map[string]string{"DKMSInstanceId": tn.InstanceID, "Description": "from the console",
		"Tags": `[{"TagKey":"k","TagValue":"v"}]`}).want(t, 200, "").decode(t, &ck)
	var dk struct{ KeyMetadata struct{ Description string } }
	tn.must(t, "DescribeKey", map[string]string{"KeyId": ck.KeyMetadata.KeyId}, &dk)
	if dk.KeyMetadata.Description != "from the console" {
		t.Fatalf("key made through the console: %+v", dk)
	}
}

func TestConsole_ReadOnlyUserGetsTheServicesRefusal(t *testing.T) {
	tn := startNode(t)
	id, secret := tn.ramUser(t, "reader", "AliyunKMSReadOnlyAccess")
	tn.createKey(t, "existing")
	b := newConsoleBrowser(t, tn.Endpoint())
	b.mustSignIn(id, secret, "")
	b.action("ListKeys", nil).want(t, 200, "")
	before := tn.hash()
	b.action("CreateKey", map[string]string{"DKMSInstanceId": tn.InstanceID}).want(t, 403, "Forbidden.NoPermission")
	b.action("ConsoleClusterMembers", nil).want(t, 403, "Forbidden.NoPermission")
	b.request(http.MethodPost, "/console/api/action/ConsoleSnapshot", "application/x-www-form-urlencoded",
		formBody("CsrfToken", b.csrf), map[string]string{"X-CSRF-Token": ""}).want(t, 403, "Forbidden.NoPermission")
	if tn.hash() != before {
		t.Fatal("a refused console action changed the catalogue")
	}
}

func TestConsole_SecurityHeadersOnFilesAndAnswers(t *testing.T) {
	tn := startNode(t)
	b := newConsoleBrowser(t, tn.Endpoint())
	check := func(what string, a consoleAnswer, api bool) {
		t.Helper()
		h := a.Header
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %s", what, csp, d)
			}
		}
		for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "data:", "http:", "https:"} {
			if strings.Contains(csp, bad) {
				t.Errorf("%s: CSP %q allows %s", what, csp, bad)
			}
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", what, h)
		}
		if api && h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", what, h.Get("Cache-Control"))
		}
	}
	idx := b.request(http.MethodGet, "/console/", "", nil, nil).want(t, 200, "")
	if !strings.HasPrefix(idx.Header.Get("Content-Type"), "text/html") || len(idx.Body) == 0 {
		t.Fatalf("index: %s %q", idx.Header.Get("Content-Type"), idx.Body)
	}
	check("index", idx, false)
	check("index.html", b.request(http.MethodGet, "/console/index.html", "", nil, nil).want(t, 200, ""), false)
	red := b.request(http.MethodGet, "/console", "", nil, nil).want(t, http.StatusFound, "")
	if red.Header.Get("Location") != "/console/" {
		t.Fatalf("redirect to %q", red.Header.Get("Location"))
	}
	check("redirect", red, false)
	check("missing file", b.request(http.MethodGet, "/console/nope.js", "", nil, nil).want(t, 404, "InvalidPath.NotFound"), false)
	check("a directory", b.request(http.MethodGet, "/console/static/", "", nil, nil).want(t, 404, ""), false)
	check("dot-dot", b.request(http.MethodGet, "/console/../v1/status", "", nil, nil), false)
	check("no session", b.session().want(t, 401, "ConsoleSession.Expired"), true)
	check("sign-in refused", b.signIn(tn.Creds.AccessKeyID, "wrong", "").want(t, 400, "SignatureDoesNotMatch"), true)
	b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	check("action", b.action("ListKeys", nil).want(t, 200, ""), true)
	check("action error", b.action("DescribeKey", map[string]string{"KeyId": "nope"}), true)
}

func TestConsole_CSRFAndCrossSiteRequestsAreRefusedAndChangeNothing(t *testing.T) {
	tn := startNode(t)
	b := newConsoleBrowser(t, tn.Endpoint())
	s := b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	other := newConsoleBrowser(t, tn.Endpoint())
	os := other.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	if os.CsrfToken == s.CsrfToken {
		t.Fatal("two sessions share a CSRF token")
	}
	body, _ := json.Marshal(map[string]string{"DKMSInstanceId": tn.InstanceID})
	before := tn.hash()
	for _, c := range []struct {
		name  string
		extra map[string]string
	}{
		{"no token", map[string]string{"X-CSRF-Token": ""}},
		{"a wrong token", map[string]string{"X-CSRF-Token": "AAAA"}},
		{"another session's token", map[string]string{"X-CSRF-Token": os.CsrfToken}},
		{"a cross-site Origin", map[string]string{"Origin": "https://evil.example"}},
		{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"Origin null", map[string]string{"Origin": "null"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b.request(http.MethodPost, "/console/api/action/CreateKey", "application/json", body, c.extra).want(t, 403, "Forbidden.CsrfToken")
			b.request(http.MethodDelete, "/console/api/session", "", nil, c.extra).want(t, 403, "Forbidden.CsrfToken")
		})
	}
	if tn.hash() != before {
		t.Fatal("a refused request changed the catalogue")
	}
	// The session still stands (the forged sign-out did nothing).
	b.session().want(t, 200, "")
	// A cross-site sign-in is refused too (login CSRF).
	newConsoleBrowser(t, tn.Endpoint()).request(http.MethodPost, "/console/api/session", "application/json",
		[]byte(`{"AccessKeyId":"`+tn.Creds.AccessKeyID+`","AccessKeySecret":"`+tn.Creds.AccessKeySecret+`"}`),
		map[string]string{"Origin": "https://evil.example"}).want(t, 403, "Forbidden.CsrfToken")
}

func TestConsole_SignOutEndsTheSession(t *testing.T) {
	tn := startNode(t)
	b := newConsoleBrowser(t, tn.Endpoint())
	b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	kept := b.cookie
	a := b.signOut().want(t, 200, "")
	if b.cookie != nil {
		t.Fatalf("sign-out left the cookie: %q", a.Header.Values("Set-Cookie"))
	}
	b.cookie = kept // a stolen copy of the cookie is worth nothing now
	b.session().want(t, 401, "ConsoleSession.Expired")
	b.cookie = kept
	b.action("ListKeys", nil).want(t, 401, "ConsoleSession.Expired")
}

func TestConsole_OpenSessionsPerAccountAreLimited(t *testing.T) {
	tn := startNode(t)
	first := newConsoleBrowser(t, tn.Endpoint())
	first.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	for range 99 {
		newConsoleBrowser(t, tn.Endpoint()).mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
	}
	b := newConsoleBrowser(t, tn.Endpoint())
	b.signIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "").want(t, 400, "Rejected.LimitExceeded")
	// A sign-out makes room.
	first.signOut().want(t, 200, "")
	b.mustSignIn(tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret, "")
}
