package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// consoleBrowser is what a browser does with the console: it keeps the
// session cookie, sends the node's own Origin with state-changing requests
// and the CSRF token the session answered.
type consoleBrowser struct {
	tb     testing.TB
	base   string // http://host:port
	hc     *http.Client
	cookie *http.Cookie
	csrf   string
}

func newConsoleBrowser(tb testing.TB, base string) *consoleBrowser {
	tb.Helper()
	return &consoleBrowser{tb: tb, base: strings.TrimSuffix(base, "/"), hc: &http.Client{
		Timeout: 30 * time.Second,
		// The test looks at redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// consoleAnswer is one answer of the console.
type consoleAnswer struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a consoleAnswer) code() string {
	var e struct{ Code string }
	json.Unmarshal(a.Body, &e)
	return e.Code
}

func (a consoleAnswer) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(a.Body, v); err != nil {
		tb.Fatalf("answer %d %s: %v", a.Status, a.Body, err)
	}
}

// want fails unless the answer has this status and (when not empty) code.
func (a consoleAnswer) want(tb testing.TB, status int, code string) consoleAnswer {
	tb.Helper()
	if a.Status != status || (code != "" && a.code() != code) {
		tb.Fatalf("got HTTP %d %s, want %d %s", a.Status, a.Body, status, code)
	}
	return a
}

// request sends one request as the browser would; extra headers override
// the browser's (an empty value removes one).
func (b *consoleBrowser) request(method, path, contentType string, body []byte, extra map[string]string) consoleAnswer {
	b.tb.Helper()
	r, err := http.NewRequest(method, b.base+path, bytes.NewReader(body))
	if err != nil {
		b.tb.Fatal(err)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if method != http.MethodGet && method != http.MethodHead {
		r.Header.Set("Origin", b.base)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		if b.csrf != "" {
			r.Header.Set("X-CSRF-Token", b.csrf)
		}
	}
	if b.cookie != nil {
		r.AddCookie(b.cookie)
	}
	for k, v := range extra {
		if v == "" {
			r.Header.Del(k)
			continue
		}
		r.Header.Set(k, v)
	}
	resp, err := b.hc.Do(r)
	if err != nil {
		b.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		b.tb.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "kms_console" {
			if c.MaxAge < 0 || c.Value == "" {
				b.cookie = nil
			} else {
				b.cookie = c
			}
		}
	}
	return consoleAnswer{Status: resp.StatusCode, Header: resp.Header, Body: out}
}

// consoleSession is the Session object of the contract.
type consoleSession struct {
	RequestId string
	Identity  struct {
		AccountId, Principal, Kind, Name, AccessKeyId string
		Temporary                                     bool
	}
	Region             string
	Regions            []struct{ RegionId, RegionEndpoint, LocalName string }
	CsrfToken          string
	IdleTimeoutSeconds int64
	NodeId             string
}

// signIn posts the sign-in form; on success the browser keeps the cookie
// and the CSRF token.
func (b *consoleBrowser) signIn(akid, secret, token string) consoleAnswer {
	b.tb.Helper()
	form := map[string]string{"AccessKeyId": akid, "AccessKeySecret": secret}
	if token != "" {
		form["SecurityToken"] = token
	}
	body, _ := json.Marshal(form)
	a := b.request(http.MethodPost, "/console/api/session", "application/json", body, nil)
	if a.Status == http.StatusOK {
		var s consoleSession
		a.decode(b.tb, &s)
		b.csrf = s.CsrfToken
	}
	return a
}

// mustSignIn signs in and returns the session.
func (b *consoleBrowser) mustSignIn(akid, secret, token string) consoleSession {
	b.tb.Helper()
	a := b.signIn(akid, secret, token).want(b.tb, http.StatusOK, "")
	var s consoleSession
	a.decode(b.tb, &s)
	if b.cookie == nil {
		b.tb.Fatal("sign-in set no kms_console cookie")
	}
	return s
}

// session is GET /console/api/session.
func (b *consoleBrowser) session() consoleAnswer {
	b.tb.Helper()
	return b.request(http.MethodGet, "/console/api/session", "", nil, nil)
}

// action is POST /console/api/action/<name> with params as a JSON object.
func (b *consoleBrowser) action(name string, params map[string]string) consoleAnswer {
	b.tb.Helper()
	if params == nil {
		params = map[string]string{}
	}
	body, _ := json.Marshal(params)
	return b.request(http.MethodPost, "/console/api/action/"+name, "application/json", body, nil)
}

// signOut is DELETE /console/api/session.
func (b *consoleBrowser) signOut() consoleAnswer {
	b.tb.Helper()
	return b.request(http.MethodDelete, "/console/api/session", "", nil, nil)
}

// withoutRequestID is a JSON answer with its RequestId removed, re-encoded
// with sorted keys, for comparing answers of two requests.
func withoutRequestID(tb testing.TB, body []byte) string {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatalf("%s: %v", body, err)
	}
	delete(m, "RequestId")
	out, _ := json.Marshal(m)
	return string(out)
}

// formBody is a form-encoded body.
func formBody(kv ...string) []byte {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return []byte(v.Encode())
}
