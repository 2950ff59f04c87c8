//go:build cgo

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/hsm/hsmtest"
)

// The browser console (issue 15), driven through a real Chromium (Debian's
// chromium, `make deps`) with chromedp against a real three-node cluster:
// HTTPS with certificates from `kmsctl operator tls`, mutual TLS between the
// nodes, two nodes with a SoftHSM token of HSM domain d1 (so the account can
// have a hardware instance), the third node in another region. Every step
// is done on the page the way a person would — labelled fields, buttons —
// and its result checked on the page and through the API (package client).
//
// Screenshots of the main pages go to a temporary directory; with
// RAFTKMS_CONSOLE_SCREENSHOTS=1 they are written to docs/console/ (the PNGs
// the README shows), so CI never dirties the tree.

// consoleChromium is the browser the tests drive.
func consoleChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if fileExists("/usr/bin/chromium") {
		return "/usr/bin/chromium"
	}
	t.Fatal("chromium not found: the console tests drive a real Chromium; run `make deps` (Debian's chromium package)")
	return ""
}

// consoleCluster is the cluster of the console tests.
type consoleCluster struct {
	nodes    []*secProc
	pki      pki
	creds    credentials
	credFile string
	hwInst   string // the hardware instance (HSM domain d1)
	spki     []string
}

func (c *consoleCluster) client(t *testing.T, n int, ak, sk string) *client.Client {
	t.Helper()
	cl, err := client.New(c.nodes[n].endpoint(), ak, sk, client.WithCAFile(c.pki.caFile))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (c *consoleCluster) root(t *testing.T) *client.Client {
	return c.client(t, 0, c.creds.AccessKeyId, c.creds.AccessKeySecret)
}

func (c *consoleCluster) ctl(t *testing.T, args ...string) ctlResult {
	t.Helper()
	return kmsctl(t, nil, append([]string{"--credentials", c.credFile, "--endpoint", c.nodes[0].endpoint(), "--ca-file", c.pki.caFile}, args...)...)
}

func startConsoleCluster(t *testing.T) *consoleCluster {
	t.Helper()
	soft := hsmtest.New(t, "console-t1", "console-t2")
	pin := soft.PinFile(t)
	domainKey := make([]byte, 32)
	rand.Read(domainKey)
	keyFile := hsmtest.DomainKeyFile(t, domainKey)
	for _, tok := range []string{"console-t1", "console-t2"} {
		out, err := exec.Command(kmsdBin, "hsm", "enroll", "--hsm-module", soft.Module, "--hsm-token-label", tok,
			"--hsm-pin-file", pin, "--domain", "d1", "--domain-key-file", keyFile).CombinedOutput()
		if err != nil {
			t.Fatalf("kmsd hsm enroll %s: %v\n%s", tok, err, out)
		}
	}
	dir := t.TempDir()
	c := &consoleCluster{pki: makePKI(t, filepath.Join(dir, "tls"), "c1", "c2", "c3")}
	rootKey := newRootKeyFile(t)
	gossipKey := writeGossipKey(t)
	c.nodes = []*secProc{newSecProc(t, "c1"), newSecProc(t, "c2"), newSecProc(t, "c3")}
	for i, p := range c.nodes {
		crt, key := c.pki.cert(p.id)
		c.spki = append(c.spki, spkiHash(t, crt))
		var join []string
		for _, o := range c.nodes {
			if o != p {
				join = append(join, o.gossip)
			}
		}
		region := "local"
		if i == 2 {
			region = "second"
		}
		args := []string{"--node-id", p.id, "--data-dir", filepath.Join(dir, "data-"+p.id), "--root-key-file", rootKey,
			"--zone", zones[i], "--region", region, "--http-addr", p.http, "--cluster-addr", p.cluster, "--gossip-addr", p.gossip,
			"--fast-gossip", "--bootstrap-expect", "3", "--join", strings.Join(join, ","),
			"--tls-cert-file", crt, "--tls-key-file", key,
			"--cluster-ca-file", c.pki.caFile, "--cluster-cert-file", crt, "--cluster-key-file", key, "--gossip-key-file", gossipKey}
		if i < 2 {
			args = append(args, "--hsm-module", soft.Module, "--hsm-token-label", fmt.Sprintf("console-t%d", i+1),
				"--hsm-pin-file", pin, "--hsm-domain", "d1")
		}
		p.start(args...)
	}
	hc := c.pki.client()
	waitSecureCluster(t, hc, c.nodes, 3, 60*time.Second, "the console cluster forms")
	kmsctl(t, []string{"KMS_ACCESS_KEY_ID=unused", "KMS_ACCESS_KEY_SECRET=unused"},
		"--ca-file", c.pki.caFile, "--endpoint", c.nodes[0].endpoint(), "operator", "init").ok(t, &c.creds)
	c.credFile = writeCreds(t, c.creds)
	var inst struct{ InstanceId, Type, HsmDomain string }
	eventually(t, 30*time.Second, "a hardware instance in domain d1", func() error {
		r := c.ctl(t, "operator", "instance", "create", "--type", "hardware", "--hsm-domain", "d1")
		if r.Code != 0 {
			return errors.New(r.String())
		}
		return json.Unmarshal([]byte(r.Stdout), &inst)
	})
	if inst.Type != "hardware" {
		t.Fatalf("instance create printed %+v", inst)
	}
	c.hwInst = inst.InstanceId
	return c
}

// spkiHash is the base64 SHA-256 of a certificate's public key, as
// Chromium's --ignore-certificate-errors-spki-list takes it: the browser
// trusts exactly the nodes' certificates and nothing else.
func spkiHash(t *testing.T, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	crt, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(crt.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(h[:])
}

// ---- the browser ----

type sentRequest struct {
	Method, URL string
	Headers     map[string]string
}

type consoleBrowser struct {
	t         *testing.T
	ctx       context.Context
	base      string // https://host:port/console/
	shots     string
	downloads string // where the browser saves downloads
	mu        sync.Mutex
	sent      []sentRequest
	dialogs   []string
	errors    []string
}

func newConsoleBrowser(t *testing.T, c *consoleCluster) *consoleBrowser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(consoleChromium(t)),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(c.spki, ",")),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v (run `make deps` to install Debian's chromium)", err)
	}
	b := &consoleBrowser{t: t, ctx: ctx, base: c.nodes[0].endpoint() + "/console/", shots: t.TempDir()}
	if os.Getenv("RAFTKMS_CONSOLE_SCREENSHOTS") == "1" {
		b.shots = filepath.Join(repoRoot, "docs", "console")
		if err := os.MkdirAll(b.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			hs := map[string]string{}
			for k, v := range e.Request.Headers {
				hs[strings.ToLower(k)] = fmt.Sprint(v)
			}
			b.sent = append(b.sent, sentRequest{Method: e.Request.Method, URL: e.Request.URL, Headers: hs})
		case *page.EventJavascriptDialogOpening:
			b.dialogs = append(b.dialogs, e.Message)
		case *runtime.EventExceptionThrown:
			b.errors = append(b.errors, e.ExceptionDetails.Text)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.Enable, page.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.EmulateViewport(1280, 800))
	b.downloads = t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: b.downloads}); err != nil {
		t.Fatal(err)
	}
	return b
}

// do runs steps with a deadline; on failure it saves a screenshot and
// fails with the page's visible text.
func (b *consoleBrowser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(err)
	}
}

func (b *consoleBrowser) fail(err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	shot := filepath.Join(b.t.TempDir(), "failure.png")
	if buf, e := chromedp.Run(ctx, chromedp.FullScreenshot(100)); e == nil {
		os.WriteFile(shot, buf, 0o644)
	}
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.t.Fatalf("browser: %v\nscreenshot: %s\npage text:\n%s", err, shot, text)
}

func evalIn[T any](b *consoleBrowser, expr string) T {
	b.t.Helper()
	v, err := tryEvalIn[T](b, expr)
	if err != nil {
		b.fail(err)
	}
	return v
}

// tryEvalIn is evalIn that returns its error: while the page navigates
// the browser refuses an evaluation ("Inspected target navigated or
// closed"), which a caller waiting for the navigation retries.
func tryEvalIn[T any](b *consoleBrowser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return v, fmt.Errorf("evaluate %s: %w", expr, err)
	}
	return v, nil
}

func (b *consoleBrowser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.fail(fmt.Errorf("text of %s: %w", sel, err))
	}
	return strings.TrimSpace(s)
}

func (b *consoleBrowser) value(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.fail(fmt.Errorf("value of %s: %w", sel, err))
	}
	return s
}

// waitText waits until the element's text contains want.
func (b *consoleBrowser) waitText(sel, want string) string {
	b.t.Helper()
	var got string
	deadline := time.Now().Add(45 * time.Second)
	for {
		got = evalIn[string](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && !e.closest('[hidden]') ? e.textContent : ''; })()`, sel))
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			b.fail(fmt.Errorf("%s never showed %q (last %q)", sel, want, got))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fieldByLabel is the id of the control whose <label> reads label inside
// the element sel (the way a person finds a field).
func (b *consoleBrowser) fieldByLabel(within, label string) string {
	b.t.Helper()
	id := evalIn[string](b, fmt.Sprintf(`(() => {
		for (const l of document.querySelectorAll(%q + ' label')) {
			if (l.textContent.trim() === %q && l.htmlFor) return l.htmlFor;
		}
		return '';
	})()`, within, label))
	if id == "" {
		b.fail(fmt.Errorf("no field labelled %q in %s", label, within))
	}
	return "#" + id
}

// choose sets a <select> or checks a radio/checkbox and fires the events a
// person's click would.
func (b *consoleBrowser) choose(sel, value string) {
	b.t.Helper()
	ok := evalIn[bool](b, fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		if (!e) return false;
		if (e.tagName === 'SELECT') {
			if (![...e.options].some((o) => o.value === %q)) return false;
			e.value = %q;
		} else { e.checked = %q === 'on'; }
		e.dispatchEvent(new Event('input', { bubbles: true }));
		e.dispatchEvent(new Event('change', { bubbles: true }));
		return true;
	})()`, sel, value, value, value))
	if !ok {
		b.fail(fmt.Errorf("cannot choose %q in %s", value, sel))
	}
}

// fill replaces a field's text by typing it.
func (b *consoleBrowser) fill(sel, text string) {
	b.t.Helper()
	b.setText(sel, "")
	b.do(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// setText sets a value at once (typing 4 KiB is slow) and fires input.
func (b *consoleBrowser) setText(sel, text string) {
	b.t.Helper()
	ok := evalIn[bool](b, fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		if (!e) return false;
		e.value = %q;
		e.dispatchEvent(new Event('input', { bubbles: true }));
		return true;
	})()`, sel, text))
	if !ok {
		b.fail(fmt.Errorf("no field %s", sel))
	}
}

func (b *consoleBrowser) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (b *consoleBrowser) waitVisible(sel string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
}

func (b *consoleBrowser) go_(hash string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + hash))
}

// checkLabelled fails when a visible control of the page has no label: every
// field is found by its label text (and read by a screen reader by it).
func (b *consoleBrowser) checkLabelled(where string) {
	b.t.Helper()
	bad := evalIn[[]string](b, `[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
		.filter((e) => e.offsetParent !== null)
		.filter((e) => {
			if (e.tagName === 'BUTTON') return !(e.textContent.trim() || e.getAttribute('aria-label'));
			return !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby');
		})
		.map((e) => e.tagName + '#' + e.id)`)
	if len(bad) > 0 {
		b.t.Fatalf("%s: controls without a label: %v", where, bad)
	}
}

// actions counts the console API calls of an action the page has sent.
func (b *consoleBrowser) actions(action string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.sent {
		if strings.HasSuffix(r.URL, "/console/api/action/"+action) {
			n++
		}
	}
	return n
}

func (b *consoleBrowser) screenshot(name string) {
	b.t.Helper()
	b.shoot(name, "")
}

// shootAt saves the viewport with the element sel scrolled to its top
// (inside a panel too).
func (b *consoleBrowser) shootAt(name, sel string) {
	b.t.Helper()
	evalIn[bool](b, fmt.Sprintf(`(() => {
		if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
		const t = document.querySelector('#toast'); if (t) t.hidden = true;
		document.querySelector(%q).scrollIntoView({ block: 'start' });
		return true;
	})()`, sel))
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// shoot saves the viewport, scrolled to the top, or one element (sel), as
// docs/console/<name>.png (see RAFTKMS_CONSOLE_SCREENSHOTS). The toast and
// the focus ring are hidden first.
func (b *consoleBrowser) shoot(name, sel string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	evalIn[bool](b, `(() => {
		if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
		const t = document.querySelector('#toast'); if (t) t.hidden = true;
		window.scrollTo(0, 0);
		const p = document.querySelector('.panel-body'); if (p) p.scrollTop = 0;
		return true;
	})()`)
	var buf []byte
	var err error
	if sel == "" {
		buf, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	} else {
		buf, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	if err != nil {
		b.fail(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *consoleBrowser) signIn(ak, sk string) {
	b.t.Helper()
	b.go_("")
	b.waitVisible("#signin-form")
	b.fill(b.fieldByLabel("#signin-form", "AccessKeyId"), ak)
	b.fill(b.fieldByLabel("#signin-form", "AccessKeySecret"), sk)
	b.click("#signin-submit")
}

// closePanels cancels a panel left open by an earlier step.
func (b *consoleBrowser) closePanels() {
	b.t.Helper()
	evalIn[bool](b, `(() => { const c = document.querySelector('#overlay button.secondary[id$="-cancel"]'); if (c) c.click(); return true; })()`)
}

func (b *consoleBrowser) signOut() {
	b.t.Helper()
	b.closePanels()
	b.click("#signout")
	b.waitVisible("#signin-form")
}

// sessionCookie is the console's cookie as the browser holds it.
func (b *consoleBrowser) sessionCookie() *network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base}})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "kms_console" {
			return c
		}
	}
	return nil
}

// ---- API helpers ----

func apiCall(t *testing.T, cl *client.Client, action string, params map[string]string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := cl.Call(ctx, action, params)
	if err != nil {
		t.Fatalf("%s %v: %v", action, params, err)
	}
	if out != nil {
		if err := r.Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

type keyMeta struct {
	KeyId, KeyState, KeySpec, KeyUsage, Origin, ProtectionLevel, Description, DKMSInstanceId    string
	DeleteDate, MaterialExpireTime, AutomaticRotation, RotationInterval, PrimaryKeyVersion, Arn string
}

func describeKey(t *testing.T, cl *client.Client, id string) keyMeta {
	t.Helper()
	var out struct{ KeyMetadata keyMeta }
	apiCall(t, cl, "DescribeKey", map[string]string{"KeyId": id}, &out)
	return out.KeyMetadata
}

func countKeys(t *testing.T, cl *client.Client) int {
	t.Helper()
	var out struct{ TotalCount int }
	apiCall(t, cl, "ListKeys", map[string]string{"PageSize": "1"}, &out)
	return out.TotalCount
}

// consoleGet is GET /console/api/session on a node with a cookie.
func consoleGet(t *testing.T, c *consoleCluster, n int, cookie string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", c.nodes[n].endpoint()+"/console/api/session", nil)
	req.Header.Set("Cookie", "kms_console="+cookie)
	resp, err := c.pki.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// ---- the tests ----

// step runs a subtest and stops the test when it fails: each step builds on
// the earlier ones (the signed-in browser, the keys made).
func step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

func TestConsole_Browser(t *testing.T) {
	consoleChromium(t) // before the cluster: a missing browser fails at once
	c := startConsoleCluster(t)
	root := c.root(t)
	var swInst = c.creds.InstanceId

	// A read-only RAM user, and RAM users and roles to pick in a custom policy.
	apiCall(t, root, "CreateUser", map[string]string{"UserName": "reader"}, nil)
	apiCall(t, root, "AttachPolicyToUser", map[string]string{"PolicyType": "System", "PolicyName": "AliyunKMSReadOnlyAccess", "UserName": "reader"}, nil)
	var readerKey struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	apiCall(t, root, "CreateAccessKey", map[string]string{"UserName": "reader"}, &readerKey)
	apiCall(t, root, "CreateUser", map[string]string{"UserName": "alice"}, nil)

	b := newConsoleBrowser(t, c)

	step(t, "SignIn", func(t *testing.T) {
		b.t = t
		b.go_("")
		b.waitVisible("#signin-form")
		b.checkLabelled("the sign-in form")
		b.screenshot("sign-in")
		// A wrong secret: the service's own refusal, as text.
		b.fill("#signin-akid", c.creds.AccessKeyId)
		b.fill("#signin-secret", "not-the-secret")
		b.click("#signin-submit")
		b.waitVisible("#signin-error")
		got := b.text("#signin-error")
		if got == "" || strings.Contains(got, "Sign in") {
			t.Fatalf("a wrong secret showed %q", got)
		}
		b.signIn(c.creds.AccessKeyId, c.creds.AccessKeySecret)
		b.waitVisible("#keys-table")
		if id := b.text("#identity"); !strings.Contains(id, c.creds.AccountId) {
			t.Fatalf("the top bar shows %q, not the account %s", id, c.creds.AccountId)
		}
		regions := evalIn[[]string](b, `[...document.querySelectorAll('#region-select option')].map(o => o.value)`)
		if strings.Join(regions, ",") != "local,second" && strings.Join(regions, ",") != "second,local" {
			t.Fatalf("the region picker lists %v, want the cluster's regions local and second", regions)
		}
		if sel := b.value("#region-select"); sel != "local" {
			t.Fatalf("the region picker shows %q for a node of region local", sel)
		}
		ck := b.sessionCookie()
		if ck == nil || !ck.HTTPOnly || !ck.Secure || ck.SameSite != network.CookieSameSiteStrict {
			t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", ck)
		}
		// The session is the cluster's: the cookie works on the other nodes.
		for n := 1; n < 3; n++ {
			if code, body := consoleGet(t, c, n, ck.Value); code != 200 || !strings.Contains(body, c.creds.AccountId) {
				t.Fatalf("the session on node %d: %d %s", n+1, code, body)
			}
		}
		// Instance drop-down: id and type in words.
		opts := evalIn[[]string](b, `[...document.querySelectorAll('#instance-select option')].map(o => o.textContent)`)
		want := map[string]bool{swInst + " (software)": false, c.hwInst + " (hardware)": false}
		for _, o := range opts {
			if _, ok := want[o]; ok {
				want[o] = true
			}
		}
		for o, seen := range want {
			if !seen {
				t.Fatalf("Instance ID drop-down %v lacks %q", opts, o)
			}
		}
	})

	// showKeys opens the Keys tab on an instance.
	showKeys := func(inst string) {
		b.t.Helper()
		b.go_("#/keys")
		b.waitVisible("#instance-select")
		if b.value("#instance-select") != inst {
			b.choose("#instance-select", inst)
		}
		b.waitVisible(fmt.Sprintf(`#keys-list[data-instance=%q] #keys-table`, inst))
	}
	// createKey fills the Create Key panel for a spec and returns the new key's id.
	openPanel := func(inst string) {
		b.t.Helper()
		b.closePanels()
		showKeys(inst)
		b.click("#create-key")
		b.waitVisible("#create-key-panel")
	}
	submitPanel := func() string {
		b.t.Helper()
		before := b.actions("CreateKey")
		b.click("#create-key-panel-ok")
		b.waitText("#toast", "created")
		b.do(chromedp.WaitNotPresent(chromedp.CSS("#create-key-panel")))
		if b.actions("CreateKey") != before+1 {
			b.fail(fmt.Errorf("the panel sent %d CreateKey requests", b.actions("CreateKey")-before))
		}
		toast := b.text("#toast")
		f := strings.Fields(toast)
		if len(f) < 2 {
			b.fail(fmt.Errorf("toast %q", toast))
		}
		return f[1]
	}

	step(t, "DefaultKeyEnable", func(t *testing.T) {
		b.t = t
		b.go_("#/keys/default")
		b.waitVisible("#default-key-enable")
		b.screenshot("default-key")
		b.click("#default-key-enable")
		b.waitVisible("#default-key-panel")
		b.fill(b.fieldByLabel("#default-key-panel", "Key Alias"), "default")
		b.fill(b.fieldByLabel("#default-key-panel", "Description"), "the account's default key")
		b.click("#dk-advanced summary")
		sent := b.actions("CreateKey")
		b.choose("#dk-origin-external", "on")
		b.click("#default-key-panel-ok")
		b.waitText("#dk-origin-error", "I understand the implications of using the external key materials")
		if b.actions("CreateKey") != sent {
			t.Fatal("External without the acknowledgement sent a request")
		}
		b.choose("#dk-origin-kms", "on")
		b.click("#default-key-panel-ok")
		b.waitText("#default-key-id", "-")
		id := b.text("#default-key-id")
		m := describeKey(t, root, "alias/default")
		if m.KeyId != id || m.DKMSInstanceId != "" || m.KeySpec != "Aliyun_AES_256" || m.Origin != "Aliyun_KMS" || m.Description != "the account's default key" {
			t.Fatalf("the default key enabled on the page is %+v (page: %s)", m, id)
		}
	})

	step(t, "RegionPicker", func(t *testing.T) {
		b.t = t
		b.go_("#/keys")
		b.waitVisible("#region-select")
		// Region "second" is node c3's: picking it opens c3's console, where
		// the same session is valid.
		b.choose("#region-select", "second")
		eventually(t, 30*time.Second, "c3's console", func() error {
			loc, err := tryEvalIn[string](b, `location.host + ' ' + (document.querySelector('#region-select') || {}).value`)
			if err != nil {
				return err // the page is navigating to c3
			}
			if loc != c.nodes[2].http+" second" {
				return fmt.Errorf("at %q", loc)
			}
			return nil
		})
		b.waitVisible("#keys-table")
		b.go_("#/keys")
		b.waitVisible("#keys-table")
		if v := b.value("#region-select"); v != "local" {
			t.Fatalf("back on c1 the region reads %q", v)
		}
	})

	step(t, "CreateKeyEverySpec", func(t *testing.T) {
		b.t = t
		specs := map[string]struct {
			inst, level string
			sym, asym   []string
		}{
			"software": {swInst, "SOFTWARE", []string{"Aliyun_AES_256"}, []string{"RSA_2048", "RSA_3072", "EC_P256", "EC_P256K"}},
			"hardware": {c.hwInst, "HSM", []string{"Aliyun_AES_256", "Aliyun_AES_192", "Aliyun_AES_128"}, []string{"RSA_2048", "RSA_3072", "RSA_4096", "EC_P256", "EC_P256K"}},
		}
		for _, typ := range []string{"software", "hardware"} {
			s := specs[typ]
			for _, asym := range []bool{false, true} {
				list := s.sym
				if asym {
					list = s.asym
				}
				for _, spec := range list {
					openPanel(s.inst)
					if asym {
						b.choose("#ck-type-asymmetric", "on")
					}
					offered := evalIn[[]string](b, `[...document.querySelectorAll('#ck-spec option')].map(o => o.value)`)
					if strings.Join(offered, ",") != strings.Join(list, ",") {
						t.Fatalf("%s instance, asymmetric=%v: Key Specifications offers %v, want %v", typ, asym, offered, list)
					}
					b.choose(b.fieldByLabel("#create-key-panel", "Key Specifications"), spec)
					usages := evalIn[[]string](b, `[...document.querySelectorAll('#ck-usage option')].map(o => o.value)`)
					usage := usages[len(usages)-1]
					switch {
					case strings.HasPrefix(spec, "Aliyun"):
						if strings.Join(usages, ",") != "ENCRYPT/DECRYPT" {
							t.Fatalf("%s offers usages %v", spec, usages)
						}
					case strings.HasPrefix(spec, "RSA"):
						if strings.Join(usages, ",") != "ENCRYPT/DECRYPT,SIGN/VERIFY" {
							t.Fatalf("%s offers usages %v", spec, usages)
						}
						if spec == "RSA_2048" {
							usage = "ENCRYPT/DECRYPT"
						}
					default:
						if strings.Join(usages, ",") != "SIGN/VERIFY" {
							t.Fatalf("%s offers usages %v", spec, usages)
						}
					}
					b.choose("#ck-usage", usage)
					alias := fmt.Sprintf("%s/%s", typ[:2], strings.ToLower(spec))
					b.fill(b.fieldByLabel("#create-key-panel", "Key Alias"), alias)
					b.fill("#ck-description", "made in the console: "+spec)
					if typ == "software" && spec == "Aliyun_AES_256" {
						b.click("#ck-add-tag")
						b.fill("#ck-tag-key-0", "team")
						b.fill("#ck-tag-value-0", "payments ünd Co")
						b.fill("#ck-rotation-days", "30")
						b.screenshot("create-key")
					}
					id := submitPanel()
					m := describeKey(t, c.client(t, 1, c.creds.AccessKeyId, c.creds.AccessKeySecret), "alias/"+alias)
					if m.KeyId != id || m.KeySpec != spec || m.KeyUsage != usage || m.ProtectionLevel != s.level || m.DKMSInstanceId != s.inst || m.KeyState != "Enabled" {
						t.Fatalf("the key made in the panel (%s %s %s on %s) is %+v", spec, usage, typ, s.inst, m)
					}
					if typ == "software" && spec == "Aliyun_AES_256" {
						if m.AutomaticRotation != "Enabled" || m.RotationInterval != "2592000s" {
							t.Fatalf("rotation %s %s, want Enabled 2592000s", m.AutomaticRotation, m.RotationInterval)
						}
						var tags struct {
							Tags struct {
								Tag []struct{ TagKey, TagValue string }
							}
						}
						apiCall(t, root, "ListResourceTags", map[string]string{"KeyId": id}, &tags)
						if len(tags.Tags.Tag) != 1 || tags.Tags.Tag[0].TagValue != "payments ünd Co" {
							t.Fatalf("tags %+v", tags)
						}
					}
					// The list shows it.
					b.waitVisible(fmt.Sprintf(`#keys-table tr[data-key-id=%q]`, id))
					row := b.text(fmt.Sprintf(`#keys-table tr[data-key-id=%q]`, id))
					for _, want := range []string{id, "alias/" + alias, spec, usage, "Enabled", s.level} {
						if !strings.Contains(row, want) {
							t.Fatalf("the list row %q lacks %q", row, want)
						}
					}
				}
			}
		}
		// A spec set without a change event (as a script or an autofill
		// does) still gets the usage its spec allows.
		openPanel(swInst)
		b.click("#ck-type-asymmetric")
		b.do(chromedp.SetValue(chromedp.CSS("#ck-spec"), "EC_P256"))
		b.fill("#ck-alias", "so/scripted")
		id := submitPanel()
		if m := describeKey(t, root, id); m.KeySpec != "EC_P256" || m.KeyUsage != "SIGN/VERIFY" {
			t.Fatalf("a scripted spec made %+v", m)
		}
		b.go_("#/keys")
		b.waitVisible("#keys-table")
		b.checkLabelled("the Keys page")
		b.screenshot("keys")
	})

	step(t, "FormRules", func(t *testing.T) {
		b.t = t
		before := countKeys(t, root)
		sent := b.actions("CreateKey")
		refused := func(setup func(), errSel, want string) {
			t.Helper()
			openPanel(swInst)
			setup()
			if errSel != "#ck-tags-error" || !strings.Contains(want, "20") {
				b.click("#create-key-panel-ok")
			}
			got := b.waitText(errSel, want)
			if b.actions("CreateKey") != sent {
				t.Fatalf("an invalid form (%s: %q) sent a request", errSel, got)
			}
			if evalIn[bool](b, `!!document.querySelector('#create-key-panel')`) == false {
				t.Fatalf("the panel closed on an invalid form")
			}
		}
		refused(func() { b.fill("#ck-alias", "has space") }, "#ck-alias-error", "letters, digits")
		b.shootAt("create-key-refused", "#ck-type-symmetric")
		refused(func() { b.fill("#ck-alias", "acs/mine") }, "#ck-alias-error", "reserved")
		refused(func() { b.fill("#ck-alias", "dot.name") }, "#ck-alias-error", "letters, digits")
		refused(func() { b.fill("#ck-alias", strings.Repeat("a", 256)) }, "#ck-alias-error", "255")
		refused(func() {
			b.click("#ck-add-tag")
			b.fill("#ck-tag-key-0", "aliyun-owner")
		}, "#ck-tags-error", "aliyun")
		refused(func() {
			b.click("#ck-add-tag")
			b.fill("#ck-tag-key-0", "ACS:thing")
		}, "#ck-tags-error", "acs:")
		refused(func() {
			b.click("#ck-add-tag")
			b.fill("#ck-tag-key-0", "team")
			b.fill("#ck-tag-value-0", "a<b>")
		}, "#ck-tags-error", "letters, digits")
		refused(func() {
			for i := 0; i < 21; i++ {
				b.click("#ck-add-tag")
			}
		}, "#ck-tags-error", "20")
		if n := evalIn[int](b, `document.querySelectorAll('#ck-tags .tag-row').length`); n != 20 {
			t.Fatalf("the panel holds %d tag rows, at most 20", n)
		}
		refused(func() { b.fill("#ck-rotation-days", "6") }, "#ck-rotation-days-error", "7 to 365")
		refused(func() { b.fill("#ck-rotation-days", "366") }, "#ck-rotation-days-error", "7 to 365")
		refused(func() { b.fill("#ck-rotation-days", "thirty") }, "#ck-rotation-days-error", "7 to 365")
		if got := countKeys(t, root); got != before {
			t.Fatalf("the refused forms made keys: %d -> %d", before, got)
		}
		// The server checks again: an alias that exists is its refusal,
		// shown next to the alias field.
		openPanel(swInst)
		b.fill("#ck-alias", "so/aliyun_aes_256")
		b.click("#create-key-panel-ok")
		got := b.waitText("#ck-alias-error", "AliasAlreadyExists")
		if b.actions("CreateKey") != sent+1 {
			t.Fatalf("the valid form sent %d requests", b.actions("CreateKey")-sent)
		}
		if countKeys(t, root) != before {
			t.Fatalf("a refused CreateKey made a key (%s)", got)
		}
	})

	step(t, "ExternalKeyImport", func(t *testing.T) {
		b.t = t
		sent := b.actions("CreateKey")
		openPanel(swInst)
		b.fill("#ck-alias", "byok")
		b.click("#ck-advanced summary")
		b.choose("#ck-origin-external", "on")
		b.click("#create-key-panel-ok")
		b.waitText("#ck-origin-error", "I understand the implications")
		if b.actions("CreateKey") != sent {
			t.Fatal("External without the acknowledgement sent a request")
		}
		b.click("#ck-external-ack")
		id := submitPanel()
		if m := describeKey(t, root, id); m.Origin != "EXTERNAL" || m.KeyState != "PendingImport" {
			t.Fatalf("the External key is %+v", m)
		}
		b.go_("#/keys/" + id)
		b.waitVisible("#imp-get-params")
		b.click("#imp-get-params")
		b.waitVisible("#imp-public-key")
		der, err := base64.StdEncoding.DecodeString(b.value("#imp-public-key"))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatal(err)
		}
		material := make([]byte, 32)
		rand.Read(material)
		wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok := b.value("#imp-token"); tok == "" || tok != b.value("#imp-token-out") {
			t.Fatalf("the import token is not carried to step 2")
		}
		// The wrapping public key downloads as the DER the page shows.
		b.click("#imp-download-key")
		eventually(t, 20*time.Second, "the wrapping public key file", func() error {
			got, err := os.ReadFile(filepath.Join(b.downloads, "publickey_"+id+".bin"))
			if err != nil {
				return err
			}
			if string(got) != string(der) {
				return fmt.Errorf("the file holds %d bytes, not the %d of the key", len(got), len(der))
			}
			return nil
		})
		b.setText("#imp-material", base64.StdEncoding.EncodeToString(wrapped))
		expiry := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Minute)
		b.choose("#imp-expiry-at", "on")
		b.setText("#imp-expiry-time", expiry.Local().Format("2006-01-02T15:04"))
		b.shoot("import-key-material", "section.card:has(#imp-import)")
		b.click("#imp-import")
		b.waitText("#kd-state", "Enabled")
		m := describeKey(t, root, id)
		if m.KeyState != "Enabled" || m.MaterialExpireTime == "" {
			t.Fatalf("after the import: %+v", m)
		}
		exp, err := time.Parse(time.RFC3339, m.MaterialExpireTime)
		if err != nil || exp.Sub(expiry).Abs() > time.Minute {
			t.Fatalf("MaterialExpireTime %q, want %s", m.MaterialExpireTime, expiry.UTC())
		}
		if got := b.text("#kd-material-expiry"); got != m.MaterialExpireTime {
			t.Fatalf("the page shows material expiry %q, the API %q", got, m.MaterialExpireTime)
		}
		// The key now encrypts through the API and decrypts on the page.
		var enc struct{ CiphertextBlob string }
		apiCall(t, root, "Encrypt", map[string]string{"KeyId": id, "Plaintext": b64("imported")}, &enc)
		b.setText("#try-ciphertext", enc.CiphertextBlob)
		b.click("#try-decrypt")
		b.waitText("#try-decrypted", "imported")
	})

	step(t, "CustomPolicyCrossAccount", func(t *testing.T) {
		b.t = t
		sent := b.actions("CreateKey")
		openPanel(swInst)
		b.fill("#ck-alias", "shared")
		b.click("#ck-advanced summary")
		b.choose("#ck-policy-custom", "on")
		b.waitVisible("#ck-cross")
		alice := fmt.Sprintf("acs:ram::%s:user/alice", c.creds.AccountId)
		b.click(fmt.Sprintf(`#ck-admins input[data-principal=%q]`, alice))
		b.fill("#ck-cross", "acs:ram::not-a-number:user/bob")
		b.click("#create-key-panel-ok")
		b.waitText("#ck-cross-error", "acs:ram::<userId>:user/<name>")
		if b.actions("CreateKey") != sent {
			t.Fatal("an invalid cross-account principal sent a request")
		}
		cross := "acs:ram::1234567890123456:user/bob"
		b.fill("#ck-cross", cross)
		b.waitText("#ck-quota", "0 of 10 used by its keys; this key adds 1, which leaves 9")
		b.checkLabelled("the Create Key panel")
		b.shootAt("create-key-custom-policy", "#ck-advanced")
		id := submitPanel()
		var pol struct{ Policy string }
		apiCall(t, root, "GetKeyPolicy", map[string]string{"KeyId": id, "PolicyName": "default"}, &pol)
		var doc struct {
			Statement []struct {
				Sid       string
				Principal struct{ RAM []string }
				Action    []string
			}
		}
		if err := json.Unmarshal([]byte(pol.Policy), &doc); err != nil {
			t.Fatal(err)
		}
		var admin, user bool
		for _, s := range doc.Statement {
			p := strings.Join(s.Principal.RAM, ",")
			if strings.Contains(p, alice) && strings.Contains(strings.Join(s.Action, ","), "kms:Disable*") {
				admin = true
			}
			if strings.Contains(p, cross) && strings.Contains(strings.Join(s.Action, ","), "kms:Decrypt") {
				user = true
			}
		}
		if !admin || !user {
			t.Fatalf("the key policy lacks alice as administrator or %s as user:\n%s", cross, pol.Policy)
		}
		b.go_("#/keys/" + id)
		if got := b.waitText("#kd-policy", cross); !strings.Contains(got, alice) {
			t.Fatalf("the policy view shows %s", got)
		}
		// Edit the policy on the key's page: carol instead of bob.
		carol := "acs:ram::1234567890123456:user/carol"
		edited := strings.ReplaceAll(pol.Policy, cross, carol)
		b.click("#kd-policy-edit summary")
		b.setText(b.fieldByLabel("#key-details", "Policy document (JSON)"), edited)
		b.click("#kd-policy-save")
		b.waitText("#kd-policy", carol)
		apiCall(t, root, "GetKeyPolicy", map[string]string{"KeyId": id, "PolicyName": "default"}, &pol)
		if !strings.Contains(pol.Policy, carol) || strings.Contains(pol.Policy, cross) {
			t.Fatalf("after the edit the policy is %s", pol.Policy)
		}
		// The next key's panel counts the unit this key uses.
		openPanel(swInst)
		b.click("#ck-advanced summary")
		b.choose("#ck-policy-custom", "on")
		b.waitText("#ck-quota", "1 of 10 used by its keys; this key adds 0, which leaves 9")
		b.closePanels()
	})

	step(t, "ScheduleAndCancelDeletion", func(t *testing.T) {
		b.t = t
		var m struct{ KeyMetadata keyMeta }
		apiCall(t, root, "CreateKey", map[string]string{"DKMSInstanceId": swInst, "Description": "to delete"}, &m)
		id := m.KeyMetadata.KeyId
		b.go_("#/keys/" + id)
		b.waitVisible("#kd-schedule-deletion")
		sent := b.actions("ScheduleKeyDeletion")
		b.fill(b.fieldByLabel("#key-details", "Waiting period (days)"), "6")
		b.click("#kd-schedule-deletion")
		b.waitText("#kd-pending-days-error", "7 to 366")
		b.fill("#kd-pending-days", "367")
		b.click("#kd-schedule-deletion")
		b.waitText("#kd-pending-days-error", "7 to 366")
		if b.actions("ScheduleKeyDeletion") != sent {
			t.Fatal("an invalid waiting period sent a request")
		}
		// Deletion protection: the service's refusal, shown; then off again.
		b.fill(b.fieldByLabel("#key-details", "Reason (optional)"), "kept for the audit")
		b.click("#kd-protection-toggle")
		b.waitText("#kd-protection-state", "Enabled")
		b.fill("#kd-pending-days", "7")
		b.click("#kd-schedule-deletion")
		b.waitText("#kd-banner", "Forbidden.DeletionProtection")
		if got := describeKey(t, root, id); got.KeyState != "Enabled" {
			t.Fatalf("a protected key was scheduled: %+v", got)
		}
		b.click("#kd-protection-toggle")
		b.waitText("#kd-protection-state", "Disabled")
		// Disable and enable.
		b.click("#kd-disable")
		b.waitText("#kd-state", "Disabled")
		if got := describeKey(t, root, id); got.KeyState != "Disabled" {
			t.Fatalf("after Disable: %+v", got)
		}
		b.click("#kd-enable")
		b.waitText("#kd-state", "Enabled")
		// An alias and a tag added on the key's page.
		b.fill(b.fieldByLabel("#key-details", "New alias"), "doomed")
		b.click("#kd-alias-add")
		b.waitText("#kd-aliases", "alias/doomed")
		b.fill("#kd-tag-key", "stage")
		b.fill("#kd-tag-value", "test")
		b.click("#kd-tag-add")
		b.waitText("#kd-tags", "stage")
		if got := describeKey(t, root, "alias/doomed"); got.KeyId != id {
			t.Fatalf("alias/doomed names %s", got.KeyId)
		}
		b.fill("#kd-pending-days", "7")
		b.click("#kd-schedule-deletion")
		b.waitText("#kd-state", "PendingDeletion")
		got := describeKey(t, root, id)
		del, err := time.Parse(time.RFC3339, got.DeleteDate)
		if got.KeyState != "PendingDeletion" || err != nil || del.Sub(time.Now().Add(7*24*time.Hour)).Abs() > 5*time.Minute {
			t.Fatalf("after scheduling: %+v", got)
		}
		b.screenshot("key-pending-deletion")
		b.click("#kd-cancel-deletion")
		b.waitText("#kd-state", "Enabled")
		if got := describeKey(t, root, id); got.KeyState != "Enabled" || got.DeleteDate != "" {
			t.Fatalf("after cancelling: %+v", got)
		}
	})

	step(t, "TryIt", func(t *testing.T) {
		b.t = t
		id := describeKey(t, root, "alias/so/aliyun_aes_256").KeyId
		b.go_("#/keys/" + id)
		b.waitVisible("#try-encrypt")
		text := "hello from the console ✓"
		b.fill(b.fieldByLabel("#key-details", "Text to encrypt"), text)
		b.fill(b.fieldByLabel("#key-details", "Encryption context (optional JSON)"), `{"purpose":"console"}`)
		b.click("#try-encrypt")
		b.waitText("#try-result", "Encrypted")
		blob := b.value("#try-ciphertext")
		var dec struct{ Plaintext, KeyId string }
		apiCall(t, c.client(t, 2, c.creds.AccessKeyId, c.creds.AccessKeySecret), "Decrypt",
			map[string]string{"CiphertextBlob": blob, "EncryptionContext": `{"purpose":"console"}`}, &dec)
		if dec.KeyId != id || dec.Plaintext != base64.StdEncoding.EncodeToString([]byte(text)) {
			t.Fatalf("the page's ciphertext decrypts through the API to %+v", dec)
		}
		b.fill("#try-context", `{"purpose":"other"}`)
		b.click("#try-decrypt")
		b.waitText("#try-error", "InvalidCiphertext")
		b.fill("#try-context", `{"purpose":"console"}`)
		b.click("#try-decrypt")
		b.waitText("#try-decrypted", text)
		b.checkLabelled("a key's page")
		b.screenshot("key-details")
		b.shoot("try-it", "section.card:has(#try-encrypt)")

		// RSA encryption with a software RSA_2048 key.
		rsaKey := describeKey(t, root, "alias/so/rsa_2048")
		b.go_("#/keys/" + rsaKey.KeyId)
		b.waitVisible("#try-encrypt")
		b.fill("#try-plaintext", "rsa secret")
		b.click("#try-encrypt")
		eventually(t, 30*time.Second, "an RSA ciphertext", func() error {
			if b.value("#try-ciphertext") == "" {
				return errors.New("none yet")
			}
			return nil
		})
		var rdec struct{ Plaintext string }
		apiCall(t, root, "AsymmetricDecrypt", map[string]string{"KeyId": rsaKey.KeyId, "KeyVersionId": rsaKey.PrimaryKeyVersion,
			"Algorithm": "RSAES_OAEP_SHA_256", "CiphertextBlob": b.value("#try-ciphertext")}, &rdec)
		if rdec.Plaintext != b64("rsa secret") {
			t.Fatalf("the page's RSA ciphertext decrypts through the API to %q", rdec.Plaintext)
		}
		b.click("#try-decrypt")
		b.waitText("#try-decrypted", "rsa secret")

		// Sign and verify with an EC key of the hardware instance.
		ec := describeKey(t, root, "alias/ha/ec_p256")
		b.go_("#/keys/" + ec.KeyId)
		b.waitVisible("#try-sign")
		msg := "sign me"
		b.fill("#try-message", msg)
		b.click("#try-sign")
		sig := ""
		eventually(t, 30*time.Second, "a signature", func() error {
			if sig = b.value("#try-signature"); sig == "" {
				return errors.New("none yet")
			}
			return nil
		})
		digest := sha256.Sum256([]byte(msg))
		var ver struct{ Value any }
		apiCall(t, root, "AsymmetricVerify", map[string]string{"KeyId": ec.KeyId, "KeyVersionId": ec.PrimaryKeyVersion,
			"Algorithm": "ECDSA_SHA_256", "Digest": base64.StdEncoding.EncodeToString(digest[:]), "Value": sig}, &ver)
		if fmt.Sprint(ver.Value) != "true" {
			t.Fatalf("the page's signature does not verify through the API: %v", ver.Value)
		}
		b.click("#try-verify")
		b.waitText("#try-verified", "valid")
		if got := b.text("#try-verified"); strings.Contains(got, "NOT") {
			t.Fatalf("verification shows %q", got)
		}
		if pemText := b.text("#kd-public-key"); !strings.Contains(pemText, "BEGIN PUBLIC KEY") {
			t.Fatalf("the public key shows %q", pemText)
		}
	})

	step(t, "XSSShownAsText", func(t *testing.T) {
		b.t = t
		payload := `<img src=x onerror="document.title='pwned';window.__xss=1"><script>window.__xss=2</script>`
		openPanel(swInst)
		b.fill("#ck-alias", "xss")
		b.setText("#ck-description", payload)
		id := submitPanel()
		if m := describeKey(t, root, id); m.Description != payload {
			t.Fatalf("the description stored is %q", m.Description)
		}
		// An alias and a tag that look like markup are refused by the rules
		// (in the form); set a tag through the API that the page must show
		// as text.
		apiCall(t, root, "TagResource", map[string]string{"KeyId": id, "Tags": `[{"TagKey":"x:@img","TagValue":"=onerror=alert"}]`}, nil)
		for _, where := range []string{"#/keys", "#/keys/" + id} {
			if where == "#/keys" {
				showKeys(swInst)
				b.waitText("#keys-table", payload)
			} else {
				b.go_(where)
				b.waitText("#kd-description", payload)
				b.waitText("#kd-tags", "=onerror=alert")
			}
			xss := evalIn[bool](b, `document.title === 'pwned' || window.__xss !== undefined || document.querySelectorAll('img, main script').length > 0`)
			if xss {
				t.Fatalf("%s: the description ran as markup", where)
			}
		}
		b.mu.Lock()
		dialogs := append([]string(nil), b.dialogs...)
		b.mu.Unlock()
		if len(dialogs) > 0 {
			t.Fatalf("dialogs opened: %v", dialogs)
		}
	})

	step(t, "SearchAndPaging", func(t *testing.T) {
		b.t = t
		// Three more keys: the software instance then holds 12, two pages.
		for i := 0; i < 3; i++ {
			apiCall(t, root, "CreateKey", map[string]string{"DKMSInstanceId": swInst, "AliasName": fmt.Sprintf("alias/extra/%d", i)}, nil)
		}
		var lk struct{ TotalCount int }
		apiCall(t, root, "ListKeys", map[string]string{"Filters": `[{"Key":"DKMSInstanceId","Values":["` + swInst + `"]}]`}, &lk)
		showKeys(swInst)
		if rows := evalIn[int](b, `document.querySelectorAll('#keys-table tbody tr').length`); rows != 10 {
			t.Fatalf("page 1 shows %d rows", rows)
		}
		b.waitText("#keys-page", fmt.Sprintf("Page 1 of 2 · %d keys", lk.TotalCount))
		b.click("#keys-next")
		b.waitText("#keys-page", "Page 2 of 2")
		if rows := evalIn[int](b, `document.querySelectorAll('#keys-table tbody tr').length`); rows != lk.TotalCount-10 {
			t.Fatalf("page 2 shows %d rows of %d keys", rows, lk.TotalCount)
		}
		// By alias, and by tag (key:value).
		b.fill(b.fieldByLabel("#key-search-form", "Search by alias or tag"), "so/rsa")
		b.click("#key-search-go")
		b.waitText("#keys-page", `2 keys matching "so/rsa"`)
		b.fill("#key-search", "team:payments")
		b.click("#key-search-go")
		b.waitText("#keys-page", `1 key matching "team:payments"`)
		if row := b.text("#keys-table tbody"); !strings.Contains(row, "so/aliyun_aes_256") {
			t.Fatalf("the tag search shows %q", row)
		}
		b.fill("#key-search", "")
		b.click("#key-search-go")
		b.waitText("#keys-page", "Page 1 of 2")
	})

	step(t, "SecretsAndAccessPoints", func(t *testing.T) {
		b.t = t
		b.go_("#/secrets")
		b.waitVisible("#create-secret")
		b.click("#create-secret")
		b.waitVisible("#create-secret-panel")
		b.fill(b.fieldByLabel("#create-secret-panel", "Secret name"), "db password") // a space: refused in the form
		b.fill("#cs-data", "s3cret-value")
		sent := b.actions("CreateSecret")
		b.click("#create-secret-panel-ok")
		b.waitText("#cs-name-error", "A-Z a-z 0-9")
		if b.actions("CreateSecret") != sent {
			t.Fatal("an invalid secret name sent a request")
		}
		b.fill("#cs-name", "db-password")
		b.choose("#cs-instance", swInst)
		b.fill("#cs-key", "alias/so/aliyun_aes_256")
		b.click("#create-secret-panel-ok")
		b.waitText("#secrets-table", "db-password")
		var sv struct{ SecretData string }
		apiCall(t, root, "GetSecretValue", map[string]string{"SecretName": "db-password"}, &sv)
		if sv.SecretData != "s3cret-value" {
			t.Fatalf("the secret made on the page holds %q", sv.SecretData)
		}
		b.go_("#/secrets/db-password")
		b.click("#secret-show")
		b.waitText("#secret-value", "s3cret-value")

		b.go_("#/aaps")
		b.waitVisible("#create-network-rule")
		b.click("#create-network-rule")
		b.fill("#nr-name", "office")
		b.fill("#nr-ips", "10.0.0.0/8, 192.168.1.5")
		b.click("#create-rule-panel-ok")
		b.waitText("#network-rules-table", "office")
		b.click("#create-policy")
		b.waitVisible("#create-policy-panel")
		b.fill("#pol-name", "app-keys")
		b.choose("#pol-instance", swInst)
		b.fill("#pol-rules", "office")
		b.click("#create-policy-panel-ok")
		b.waitText("#policies-table", "app-keys")
		b.click("#create-aap")
		b.fill("#aap-name", "app")
		b.fill("#aap-policies", "app-keys")
		b.click("#create-aap-panel-ok")
		b.waitText("#aaps-table", "app")
		var aap struct{ Policies string }
		apiCall(t, root, "DescribeApplicationAccessPoint", map[string]string{"Name": "app"}, &aap)
		if !strings.Contains(aap.Policies, "app-keys") {
			t.Fatalf("the AAP made on the page names %q", aap.Policies)
		}
		// A client key: the file the instance SDK reads, saved by the page.
		b.click("#aap-client-key-app")
		b.waitVisible("#create-client-key-panel")
		b.fill(b.fieldByLabel("#create-client-key-panel", "Password"), "short")
		b.click("#create-client-key-panel-ok")
		b.waitText("#ck-password-error", "8 to 64")
		b.fill("#ck-password", "Console-pass-1")
		b.click("#create-client-key-panel-ok")
		b.waitText("#client-keys-table", "KAAP.")
		var cks struct {
			ClientKeys []struct{ ClientKeyId, AapName string }
		}
		apiCall(t, root, "ListClientKeys", map[string]string{"AapName": "app"}, &cks)
		if len(cks.ClientKeys) != 1 {
			t.Fatalf("ListClientKeys: %+v", cks)
		}
		file := filepath.Join(b.downloads, "clientKey_"+cks.ClientKeys[0].ClientKeyId+".json")
		eventually(t, 20*time.Second, "the client key file", func() error {
			raw, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var ck struct{ KeyId, PrivateKeyData string }
			if err := json.Unmarshal(raw, &ck); err != nil || ck.KeyId != cks.ClientKeys[0].ClientKeyId || len(ck.PrivateKeyData) < 100 {
				return fmt.Errorf("%s: %v %.60s", file, err, raw)
			}
			return nil
		})
		b.checkLabelled("the access points page")
		b.screenshot("access-points")
	})

	step(t, "CSRFRefused", func(t *testing.T) {
		b.t = t
		before := countKeys(t, root)
		// Every request the page itself sent to an action carried the token.
		b.mu.Lock()
		for _, r := range b.sent {
			if strings.Contains(r.URL, "/console/api/action/") && r.Method == "POST" && r.Headers["x-csrf-token"] == "" &&
				!strings.HasSuffix(r.URL, "/ConsoleSnapshot") {
				b.mu.Unlock()
				t.Fatalf("the page sent %s without the CSRF token", r.URL)
			}
		}
		b.mu.Unlock()
		// From the signed-in page, a request without the token and one with
		// a wrong token: 403 Forbidden.CsrfToken, nothing made.
		for _, hdr := range []string{`{}`, `{"X-CSRF-Token": "forged"}`} {
			res := evalIn[map[string]any](b, fmt.Sprintf(`fetch('/console/api/action/CreateKey', {method: 'POST',
				headers: Object.assign({'Content-Type': 'application/json'}, %s),
				body: JSON.stringify({DKMSInstanceId: %q})}).then(async r => ({status: r.status, body: await r.json()}))`, hdr, swInst))
			body, _ := res["body"].(map[string]any)
			if fmt.Sprint(res["status"]) != "403" || body["Code"] != "Forbidden.CsrfToken" {
				t.Fatalf("a request with headers %s: %v", hdr, res)
			}
		}
		// The cookie replayed from elsewhere without the token: refused too.
		ck := b.sessionCookie()
		req, _ := http.NewRequest("POST", c.nodes[1].endpoint()+"/console/api/action/CreateKey",
			strings.NewReader(`{"DKMSInstanceId":"`+swInst+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", "kms_console="+ck.Value)
		resp, err := c.pki.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), "Forbidden.CsrfToken") {
			t.Fatalf("a cookie without the token: %d %s", resp.StatusCode, body)
		}
		if got := countKeys(t, root); got != before {
			t.Fatalf("forged requests made keys: %d -> %d", before, got)
		}
		// Security headers of the pages.
		resp, err = c.pki.client().Get(b.base)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("the console's headers: CSP %q, X-Frame-Options %q", csp, resp.Header.Get("X-Frame-Options"))
		}
	})

	step(t, "InstancesAndCluster", func(t *testing.T) {
		b.t = t
		b.go_("#/instances")
		b.waitText("#instances-table", c.hwInst)
		row := b.text(fmt.Sprintf(`#instances-table tr[data-instance=%q]`, c.hwInst))
		if !strings.Contains(row, "hardware") || !strings.Contains(row, "d1") {
			t.Fatalf("the hardware instance's row: %q", row)
		}
		b.screenshot("instances")
		// Bind the hardware instance to the network rule made earlier.
		b.click(fmt.Sprintf("#inst-network-%s", c.hwInst))
		b.waitVisible("#connect-instance-panel")
		b.choose(b.fieldByLabel("#connect-instance-panel", "Network rule (VpcId)"), "office")
		b.click("#connect-instance-panel-ok")
		b.waitText(fmt.Sprintf(`#instances-table tr[data-instance=%q]`, c.hwInst), "office")
		var gi struct{ KmsInstance struct{ VpcId string } }
		apiCall(t, root, "GetKmsInstance", map[string]string{"KmsInstanceId": c.hwInst}, &gi)
		if gi.KmsInstance.VpcId != "office" {
			t.Fatalf("GetKmsInstance VpcId %q after binding on the page", gi.KmsInstance.VpcId)
		}
		b.go_("#/cluster")
		b.waitVisible("#members-table")
		for _, p := range c.nodes {
			b.waitText("#members-table", p.id)
		}
		rows := b.text("#members-table")
		for _, want := range []string{"zone-a", "zone-b", "zone-c", "leader", "follower", "d1", "alive"} {
			if !strings.Contains(rows, want) {
				t.Fatalf("the members table lacks %q: %s", want, rows)
			}
		}
		b.screenshot("cluster")
		// The snapshot download: a form POST carrying the CSRF token.
		dl := b.downloads
		b.click("#snapshot-download")
		eventually(t, 30*time.Second, "the snapshot downloaded", func() error {
			names, _ := filepath.Glob(filepath.Join(dl, "raftkms-*.snap"))
			if len(names) != 1 {
				all, _ := os.ReadDir(dl)
				page := evalIn[string](b, `location.href + ' ' + document.body.innerText.slice(0, 300)`)
				return fmt.Errorf("downloads: %v; the page: %s", all, page)
			}
			if fi, err := os.Stat(names[0]); err != nil || fi.Size() < 100 {
				return fmt.Errorf("%s: %v", names[0], err)
			}
			return nil
		})
		b.go_("#/accounts")
		b.waitText("#users-table", "reader")
		// A role the account root may assume, made and given a policy here.
		b.fill(b.fieldByLabel("#create-role-form", "New role name"), "auditor")
		b.click("#create-role")
		b.waitText("#roles-table", "auditor")
		b.choose("#role-pol-auditor", "AliyunKMSReadOnlyAccess")
		b.click("#role-attach-auditor")
		b.waitText("#toast", "attached to role auditor")
		var role struct{ Role struct{ Arn string } }
		apiCall(t, root, "GetRole", map[string]string{"RoleName": "auditor"}, &role)
		if !strings.HasSuffix(role.Role.Arn, ":role/auditor") {
			t.Fatalf("GetRole answers %+v", role)
		}
		b.checkLabelled("the Accounts page")
		b.screenshot("accounts")
	})

	step(t, "PhoneWidth", func(t *testing.T) {
		b.t = t
		b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		defer b.do(chromedp.EmulateViewport(1280, 800))
		b.go_("#/keys")
		b.waitVisible("#keys-table")
		if w := evalIn[int](b, `document.documentElement.scrollWidth`); w > 392 {
			wide := evalIn[[]string](b, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)
				.slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`)
			t.Fatalf("at phone width the Keys page is %dpx wide; too wide: %v", w, wide)
		}
		b.screenshot("keys-phone")
		b.click("#create-key")
		b.waitVisible("#create-key-panel")
		if w := evalIn[int](b, `Math.round(document.querySelector('#create-key-panel').getBoundingClientRect().width)`); w > 391 {
			t.Fatalf("at phone width the Create Key panel is %dpx wide", w)
		}
		b.screenshot("create-key-phone")
	})

	step(t, "ReadOnlyUserRefused", func(t *testing.T) {
		b.t = t
		before := countKeys(t, root)
		b.signOut()
		b.signIn(readerKey.AccessKey.AccessKeyId, readerKey.AccessKey.AccessKeySecret)
		b.waitVisible("#keys-table")
		if id := b.text("#identity"); !strings.Contains(id, "reader") {
			t.Fatalf("the top bar shows %q", id)
		}
		// It may read: the list shows the account's keys.
		showKeys(swInst)
		b.waitText("#keys-table", "so/aliyun_aes_256")
		// It may not create: the service's own refusal, shown plainly.
		openPanel(swInst)
		b.fill("#ck-alias", "reader-made")
		b.click("#create-key-panel-ok")
		b.waitVisible("#create-key-panel-banner")
		msg := b.text("#create-key-panel-banner")
		var apiErr *client.APIError
		_, err := c.client(t, 0, readerKey.AccessKey.AccessKeyId, readerKey.AccessKey.AccessKeySecret).Call(context.Background(), "CreateKey",
			map[string]string{"DKMSInstanceId": swInst})
		if !errors.As(err, &apiErr) || !strings.Contains(msg, apiErr.Code) {
			t.Fatalf("the page shows %q; the API answers %v", msg, err)
		}
		b.screenshot("read-only-refused")
		if got := countKeys(t, root); got != before {
			t.Fatalf("the read-only user made a key: %d -> %d", before, got)
		}
		b.go_("#/cluster")
		b.waitVisible("main [data-testid=error-banner]")
		if got := b.text("main [data-testid=error-banner]"); !strings.Contains(got, "Forbidden") {
			t.Fatalf("the cluster page shows %q to a read-only user", got)
		}
		b.signOut()
	})

	step(t, "STSSignIn", func(t *testing.T) {
		b.t = t
		var sts struct {
			Credentials struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
		}
		apiCall(t, root, "AssumeRole", map[string]string{"RoleArn": fmt.Sprintf("acs:ram::%s:role/auditor", c.creds.AccountId),
			"RoleSessionName": "console-review"}, &sts)
		b.go_("")
		b.waitVisible("#signin-form")
		b.fill("#signin-akid", sts.Credentials.AccessKeyId)
		b.fill("#signin-secret", sts.Credentials.AccessKeySecret)
		b.setText(b.fieldByLabel("#signin-form", "SecurityToken (optional)"), sts.Credentials.SecurityToken)
		b.click("#signin-submit")
		b.waitVisible("#keys-table")
		if id := b.text("#identity"); !strings.Contains(id, "role") || !strings.Contains(id, "temporary") {
			t.Fatalf("signed in with STS credentials, the top bar shows %q", id)
		}
		showKeys(swInst)
		b.waitText("#keys-table", "so/aliyun_aes_256")
		b.signOut()
	})

	step(t, "SessionEndedElsewhere", func(t *testing.T) {
		b.t = t
		b.signIn(c.creds.AccessKeyId, c.creds.AccessKeySecret)
		b.waitVisible("#keys-table")
		openPanel(swInst)
		// The same session signed out from another node (another tab, say).
		ck := b.sessionCookie()
		code, body := consoleGet(t, c, 2, ck.Value)
		var sess struct{ CsrfToken string }
		if err := json.Unmarshal([]byte(body), &sess); code != 200 || err != nil || sess.CsrfToken == "" {
			t.Fatalf("the session on c3: %d %s", code, body)
		}
		req, _ := http.NewRequest("DELETE", c.nodes[2].endpoint()+"/console/api/session", nil)
		req.Header.Set("Cookie", "kms_console="+ck.Value)
		req.Header.Set("X-CSRF-Token", sess.CsrfToken)
		req.Header.Set("Origin", c.nodes[2].endpoint())
		resp, err := c.pki.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("DELETE /console/api/session on c3: %d", resp.StatusCode)
		}
		// The next action on c1's page finds the session gone: the sign-in
		// form, saying why, and no panel left over it.
		b.fill("#ck-alias", "after-sign-out")
		b.click("#create-key-panel-ok")
		b.waitText("#signin-error", "session ended")
		if evalIn[bool](b, `!!document.querySelector('#overlay')`) {
			t.Fatal("a panel stays open over the sign-in form")
		}
		if _, err := root.Call(context.Background(), "DescribeKey", map[string]string{"KeyId": "alias/after-sign-out"}); err == nil {
			t.Fatal("a key was made after the session ended")
		}
	})

	step(t, "SignOutEverywhere", func(t *testing.T) {
		b.t = t
		b.signIn(c.creds.AccessKeyId, c.creds.AccessKeySecret)
		b.waitVisible("#keys-table")
		ck := b.sessionCookie()
		for n := 0; n < 3; n++ {
			if code, _ := consoleGet(t, c, n, ck.Value); code != 200 {
				t.Fatalf("before sign-out node %d answers %d", n+1, code)
			}
		}
		b.signOut()
		for n := 0; n < 3; n++ {
			eventually(t, 10*time.Second, "the session ended on node "+strconv.Itoa(n+1), func() error {
				code, body := consoleGet(t, c, n, ck.Value)
				if code != 401 || !strings.Contains(body, "ConsoleSession.Expired") {
					return fmt.Errorf("node %d: %d %s", n+1, code, body)
				}
				return nil
			})
		}
		b.go_("#/keys")
		b.waitVisible("#signin-form")
	})

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		t.Fatalf("the pages threw: %v", b.errors)
	}
}
