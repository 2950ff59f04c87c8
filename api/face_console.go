package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/raftkms/raftkms/cluster"
	"github.com/raftkms/raftkms/console"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

// consoleFace is the browser console's way in, under /console/api/: the
// session endpoints (sign-in, the current session, sign-out) and
// POST /console/api/action/<Action>, which dispatches to the RPC face's
// handler table with the same parameters, so answers and errors are the RPC
// API's. The caller is the identity the session stands for, settled from
// the headers alone — the session cookie, and for every state-changing
// request the CSRF token and the Origin — before one byte of the body is
// read; the core then authorizes it exactly as a signed request (RAM
// policies, key policies). The endpoints and their answers are in
// docs/API.md ("Console"); the security design in docs/SECURITY.md
// ("Console").
//
// The console's static files are served outside the pipeline (like
// /v1/health): they are public, carry no identity and are not audited.
type consoleFace struct {
	s *Server
	// signIns rate-limits failed sign-ins per source IP and per access key
	// id (console_signin.go).
	signIns *signInLimiter
}

// Console paths and limits.
const (
	consoleRoot          = "/console"
	consolePrefix        = "/console/"
	consoleAPIPrefix     = "/console/api/"
	consoleSessionPath   = "/console/api/session"
	consoleActionPrefix  = "/console/api/action/"
	consoleCookieName    = "kms_console"
	consoleCSRFHeader    = "X-CSRF-Token"
	consoleCSRFFormField = "CsrfToken"
	// maxSignInBody bounds the sign-in form: an id, a secret and an STS
	// token fit many times over.
	maxSignInBody = 64 << 10
	// maxSnapshotForm bounds the form of a snapshot download, read only
	// when it carries the CSRF token and once the session verified.
	maxSnapshotForm = 4 << 10
)

// consoleCSP is the console's Content-Security-Policy: only this origin's
// files, no inline script or style, no eval, not framed.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Actions the console adds; the session ones are reachable only through
// consoleSessionPath, never through the action path.
const (
	actionConsoleSignIn   = "ConsoleSignIn"
	actionConsoleSession  = "ConsoleSession"
	actionConsoleSignOut  = "ConsoleSignOut"
	actionClusterMembers  = "ConsoleClusterMembers"
	actionConsoleSnapshot = "ConsoleSnapshot"
)

// errCSRF refuses a state-changing console request without this session's
// CSRF token, or sent from another site.
var errCSRF = errors.New("the request is not from this console: missing or wrong CSRF token, or a cross-site origin")

// consoleCall is what the console face keeps about one request beyond the
// pipeline's call (carried in its context).
type consoleCall struct {
	sessionID string
	session   *fsm.ConsoleSession
	// tried is the access key id a sign-in tried, for the audit line of a
	// refused one (never the secret).
	tried string
	// clearCookie: the answer removes the browser's cookie (sign-out, or a
	// session found ended).
	clearCookie bool
}

type consoleCallKey struct{}

func consoleState(c *call) *consoleCall {
	st, _ := c.ctx.Value(consoleCallKey{}).(*consoleCall)
	if st == nil {
		st = &consoleCall{}
	}
	return st
}

// mountConsole serves the console on this server's API listener (never on
// the instance listener, whose handler is its own face alone).
func (s *Server) mountConsole() {
	f := consoleFace{s: s, signIns: newSignInLimiter(s.now)}
	s.routes[consoleRoot] = s.serveConsole
	s.routes[consolePrefix] = s.serveConsole
	s.console = func(w http.ResponseWriter, r *http.Request) {
		consoleHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-store")
		s.serve(w, r, f)
	}
}

// consoleHeaders are on every /console/ answer, files and API alike.
func consoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// isConsolePath tells the paths serveConsole answers.
func isConsolePath(p string) bool { return p == consoleRoot || strings.HasPrefix(p, consolePrefix) }

// serveConsole answers every path under /console/: the API through the
// pipeline, the rest from the embedded files.
func (s *Server) serveConsole(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, consoleAPIPrefix) {
		s.console(w, r)
		return
	}
	consoleHeaders(w.Header())
	if r.URL.Path == consoleRoot {
		http.Redirect(w, r, consolePrefix, http.StatusFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(w, r, "", newRequestID(), fmt.Errorf("%w: the console's files take GET", errMethod))
		return
	}
	name := strings.TrimPrefix(r.URL.Path, consolePrefix)
	if name == "" {
		name = "index.html"
	}
	var b []byte
	err := fmt.Errorf("%w: not a file of the console", fs.ErrNotExist)
	if fs.ValidPath(name) && !strings.HasSuffix(name, "/") {
		b, err = fs.ReadFile(console.Assets, name) // a directory does not read: no listings
	}
	if err != nil {
		s.writeError(w, r, "", newRequestID(), fmt.Errorf("%w: %q", errNotFound, shorten(r.URL.Path)))
		return
	}
	w.Header().Set("Content-Type", consoleContentType(name))
	// Revalidated on each load, so an upgraded node's pages are used at once.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}

// consoleContentType names the types of the console's files (not the
// system's MIME table, which differs between hosts).
func consoleContentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json":
		return "application/json"
	case ".webmanifest":
		return "application/manifest+json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// sessionOnly are the actions of consoleSessionPath.
func sessionOnly(action string) bool {
	return action == actionConsoleSignIn || action == actionConsoleSession || action == actionConsoleSignOut
}

func (f consoleFace) decode(c *call) error {
	c.ctx = context.WithValue(c.ctx, consoleCallKey{}, &consoleCall{})
	p := c.r.URL.Path
	switch {
	case p == consoleSessionPath:
		switch c.r.Method {
		case http.MethodPost:
			c.action = actionConsoleSignIn
		case http.MethodGet:
			c.action = actionConsoleSession
		case http.MethodDelete:
			c.action = actionConsoleSignOut
		default:
			c.action = actionConsoleSession
			return fmt.Errorf("%w: GET reads the session, POST signs in, DELETE signs out", errMethod)
		}
	case strings.HasPrefix(p, consoleActionPrefix):
		name := strings.TrimPrefix(p, consoleActionPrefix)
		if !isActionName(name) || sessionOnly(name) {
			return fmt.Errorf("%w: %q", errUnknownAction, shorten(name))
		}
		c.action = name
		if c.r.Method != http.MethodPost {
			return fmt.Errorf("%w: console actions take POST", errMethod)
		}
		if _, err := f.route(name); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: %q; console actions are sent to %s<Action>", errNotFound, shorten(p), consoleActionPrefix)
	}
	// The body stays unread: a sign-in reads its form in its handler, any
	// other request once its session and CSRF token verified.
	return nil
}

func (f consoleFace) authenticate(c *call) error {
	st := consoleState(c)
	changes := c.r.Method != http.MethodGet && c.r.Method != http.MethodHead
	if changes {
		if err := sameOrigin(c.r); err != nil {
			return err
		}
	}
	if c.action == actionConsoleSignIn {
		// The credentials are the body; the handler checks them.
		return nil
	}
	ck, err := c.r.Cookie(consoleCookieName)
	if err != nil {
		return fmt.Errorf("%w (no session cookie)", kms.ErrConsoleSession)
	}
	id, err := kms.ParseConsoleCookie(ck.Value)
	if err != nil {
		st.clearCookie = true
		return err
	}
	st.sessionID = id
	svc := f.s.cfg.Service
	// The CSRF token from the header is checked before the session is read:
	// a forged request costs no Raft round trip.
	headerToken := c.r.Header.Get(consoleCSRFHeader)
	formToken := changes && headerToken == "" && c.action == actionConsoleSnapshot
	if changes && !formToken && !svc.CheckConsoleCSRF(id, headerToken) {
		return fmt.Errorf("%w: send the session's CsrfToken in the %s header", errCSRF, consoleCSRFHeader)
	}
	sess, caller, err := svc.ConsoleSession(c.ctx, id)
	if err != nil {
		st.clearCookie = errors.Is(err, kms.ErrConsoleSession)
		return err
	}
	st.session = sess
	caller.SourceIP = sourceIP(c.r)
	c.caller, c.authenticated = caller, true
	if formToken {
		// A snapshot download is a form POST: its token is a form field,
		// read (at most maxSnapshotForm bytes) now that the session stands.
		body, err := readBody(c.r, maxSnapshotForm)
		if err != nil {
			return err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || !svc.CheckConsoleCSRF(id, form.Get(consoleCSRFFormField)) {
			c.authenticated = false
			return fmt.Errorf("%w: send the session's CsrfToken in the %s header or the %s form field", errCSRF, consoleCSRFHeader, consoleCSRFFormField)
		}
		c.p = params{}
		return nil
	}
	if strings.HasPrefix(c.r.URL.Path, consoleActionPrefix) {
		body, err := readBody(c.r, maxBody)
		if err != nil {
			return err
		}
		if c.p, err = decodeConsoleParams(c.r, body); err != nil {
			return err
		}
	}
	return nil
}

// sameOrigin refuses a request a browser sent from another site: an Origin
// other than this node's own (scheme and Host as the browser reached it),
// or a Sec-Fetch-Site other than same-origin.
func sameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("%w (Sec-Fetch-Site: %s)", errCSRF, shorten(site))
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(origin, scheme+"://"+r.Host) {
		return fmt.Errorf("%w (Origin %s is not %s://%s)", errCSRF, shorten(origin), scheme, shorten(r.Host))
	}
	return nil
}

// decodeConsoleParams reads an action's parameters from the body alone (a
// JSON object of strings, or a form): the query string never adds any, and
// the action is the path's.
func decodeConsoleParams(r *http.Request, body []byte) (params, error) {
	u := *r.URL
	u.RawQuery = ""
	noQuery := &http.Request{Method: r.Method, URL: &u, Header: r.Header}
	p, err := decodeParams(noQuery, body)
	if err != nil {
		return nil, err
	}
	delete(p, "Action")
	delete(p, consoleCSRFFormField)
	return p, nil
}

func (f consoleFace) route(action string) (route, error) {
	switch action {
	case actionConsoleSignIn:
		return route{handle: f.signIn, class: kms.ClassWrite}, nil
	case actionConsoleSession:
		return route{handle: f.currentSession, class: kms.ClassRead}, nil
	case actionConsoleSignOut:
		return route{handle: f.signOut, class: kms.ClassWrite}, nil
	case actionClusterMembers:
		return route{handle: f.clusterMembers, class: kms.ClassRead}, nil
	case actionConsoleSnapshot:
		return route{handle: f.snapshot, class: kms.ClassRead}, nil
	}
	fn, ok := f.s.actions[action]
	if !ok {
		return route{}, fmt.Errorf("%w: %q", errUnknownAction, shorten(action))
	}
	return route{handle: fn, class: rpcClass(action)}, nil
}

func (f consoleFace) written(c *call) (string, string) { return rpcFace{f.s}.written(c) }

func (f consoleFace) answer(w http.ResponseWriter, c *call, resp any) {
	if consoleState(c).clearCookie {
		clearConsoleCookie(w, c.r)
	}
	if d, ok := resp.(*snapshotDownload); ok {
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"raftkms-%d.snap\"", c.index))
		operatorFace{s: f.s}.answer(w, c, d)
		return
	}
	f.s.answerJSON(w, c, resp)
}

func (f consoleFace) fail(w http.ResponseWriter, c *call, err error) {
	st := consoleState(c)
	if a := auditOf(w); a != nil && !c.authenticated && st.tried != "" {
		a.rec.AccessKeyID = st.tried
	}
	if st.clearCookie {
		clearConsoleCookie(w, c.r)
	}
	var tf throttledFor
	if errors.As(err, &tf) {
		w.Header().Set("Retry-After", strconv.Itoa(int((tf.wait+time.Second-1)/time.Second)))
	}
	f.s.writeError(w, c.r, c.action, c.requestID, err)
}

func setConsoleCookie(w http.ResponseWriter, r *http.Request, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: consoleCookieName, Value: value, Path: consolePrefix, MaxAge: int(maxAge / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

func clearConsoleCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: consoleCookieName, Value: "", Path: consolePrefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// signIn checks an AccessKey pair (or STS credentials) and opens a session.
func (f consoleFace) signIn(c *call) (any, error) {
	st := consoleState(c)
	ip := sourceIP(c.r)
	if err := f.signIns.check(ip, ""); err != nil {
		return nil, err
	}
	body, err := readBody(c.r, maxSignInBody)
	if err != nil {
		return nil, err
	}
	p, err := decodeConsoleParams(c.r, body)
	if err != nil {
		return nil, err
	}
	akid := p.str("AccessKeyId")
	st.tried = shorten(akid)
	for _, name := range []string{"AccessKeyId", "AccessKeySecret"} {
		if _, err := p.required(name); err != nil {
			return nil, err
		}
	}
	if err := f.signIns.check(ip, akid); err != nil {
		return nil, err
	}
	res, err := f.s.cfg.Service.CreateConsoleSession(c.ctx, kms.ConsoleSignIn{
		AccessKeyID: akid, AccessKeySecret: p.str("AccessKeySecret"), SecurityToken: p.str("SecurityToken"),
		IdleTimeout: f.s.cfg.ConsoleIdleTimeout, Node: f.s.cfg.NodeID,
	})
	if err != nil {
		if credentialRefused(err) {
			f.signIns.failed(ip, akid)
		}
		return nil, err
	}
	f.signIns.succeeded(akid)
	if ck, err := c.r.Cookie(consoleCookieName); err == nil {
		// The browser's previous session, replaced by this one: ended now
		// rather than left to idle out (it would count against the
		// account's limit meanwhile). Only its holder could send it.
		if old, err := kms.ParseConsoleCookie(ck.Value); err == nil {
			if _, err := f.s.cfg.Service.DeleteConsoleSession(c.ctx, old); err != nil {
				f.s.log.Debug("previous console session not ended; it idles out", "error", err)
			}
		}
	}
	st.session, st.sessionID = res.Session, ""
	c.caller, c.authenticated = res.Caller, true
	c.caller.SourceIP = ip
	c.index = res.Index
	setConsoleCookie(c.w, c.r, res.Cookie, time.Duration(res.Session.ExpiresAt-res.Session.CreatedAt)*time.Millisecond)
	return f.sessionJSON(c, res.Session, f.s.cfg.Service.ConsoleCSRFToken(res.Session.ID)), nil
}

// credentialRefused tells the sign-in failures that count against the
// rate limits: the credentials were wrong, not the cluster unavailable.
func credentialRefused(err error) bool {
	for _, e := range []error{kms.ErrConsoleSecret, kms.ErrAccessKeyNotFound, kms.ErrAccessKeyInactive,
		kms.ErrSTSToken, kms.ErrSTSExpired, kms.ErrSTSRevoked} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (f consoleFace) currentSession(c *call) (any, error) {
	st := consoleState(c)
	return f.sessionJSON(c, st.session, f.s.cfg.Service.ConsoleCSRFToken(st.sessionID)), nil
}

func (f consoleFace) signOut(c *call) (any, error) {
	st := consoleState(c)
	idx, err := f.s.cfg.Service.DeleteConsoleSession(c.ctx, st.sessionID)
	c.index = idx
	if err != nil {
		return nil, err
	}
	st.clearCookie = true
	return map[string]any{}, nil
}

// sessionJSON is the Session object of the contract.
func (f consoleFace) sessionJSON(c *call, sess *fsm.ConsoleSession, csrf string) map[string]any {
	svc := f.s.cfg.Service
	regions := []map[string]any{}
	if rs, err := svc.DescribeRegions(c.ctx, c.caller); err == nil {
		for _, r := range rs {
			m := map[string]any{"RegionId": r.ID, "RegionEndpoint": "", "LocalName": r.ID}
			if len(r.Endpoints) > 0 {
				m["RegionEndpoint"] = r.Endpoints[0]
			}
			regions = append(regions, m)
		}
	}
	if len(regions) == 0 {
		// An identity that may not call DescribeRegions still sees where
		// it is.
		regions = append(regions, map[string]any{"RegionId": svc.Region(), "RegionEndpoint": "", "LocalName": svc.Region()})
	}
	return map[string]any{
		"Identity": map[string]any{
			"AccountId": sess.AccountID, "Principal": sess.Principal, "Kind": sess.Kind, "Name": sess.Name,
			"AccessKeyId": sess.AccessKeyID, "Temporary": sess.Temporary,
		},
		"Region": svc.Region(), "Regions": regions, "CsrfToken": csrf,
		"IdleTimeoutSeconds": sess.IdleTimeout / 1000, "NodeId": f.s.cfg.NodeID,
	}
}

// clusterMembers is ConsoleClusterMembers: /v1/status's members, for the
// operator.
func (f consoleFace) clusterMembers(c *call) (any, error) {
	if err := f.s.cfg.Service.AuthorizeClusterView(c.caller, actionClusterMembers); err != nil {
		return nil, err
	}
	_, leaderID := f.s.cfg.Raft.Leader()
	since := map[string]time.Time{}
	if f.s.cfg.Members != nil {
		for _, m := range f.s.cfg.Members.Members() {
			since[m.ID] = m.StatusSince
		}
	}
	now := f.s.now()
	list := make([]map[string]any, 0)
	for _, m := range f.s.members() {
		role, suffrage := "none", "none"
		if m.RaftMember {
			role, suffrage = "follower", "nonvoter"
			if m.Voter {
				suffrage = "voter"
			}
			switch {
			case m.NodeId == leaderID:
				role = "leader"
			case m.NodeId == f.s.cfg.NodeID:
				if st := strings.ToLower(f.s.cfg.Raft.State()); st == "candidate" || st == "follower" {
					role = st
				}
			}
		}
		health, last := "suspect", ""
		switch m.Status {
		case cluster.StatusAlive:
			// Gossip heard from it within its probe interval.
			health, last = "alive", now.UTC().Format(time.RFC3339)
		case cluster.StatusSuspect, cluster.StatusFailed, cluster.StatusLeft:
			health = map[string]string{cluster.StatusSuspect: "suspect", cluster.StatusFailed: "dead", cluster.StatusLeft: "left"}[m.Status]
			if t := since[m.NodeId]; !t.IsZero() {
				last = t.UTC().Format(time.RFC3339) // when this node saw it stop answering
			}
		}
		if m.NodeId == leaderID && m.NodeId != f.s.cfg.NodeID {
			if lc, ok := f.s.cfg.Raft.(interface{ LastContact() time.Time }); ok {
				if t := lc.LastContact(); !t.IsZero() {
					last = t.UTC().Format(time.RFC3339)
				}
			}
		}
		domains := make([]string, 0, len(m.HSM))
		for _, d := range m.HSM {
			domains = append(domains, d.Domain)
		}
		addr := m.HTTPAddr
		if addr == "" {
			addr = m.ClusterAddr
		}
		list = append(list, map[string]any{
			"NodeId": m.NodeId, "Address": addr, "Zone": m.Zone, "Region": m.Region, "RaftRole": role,
			"Suffrage": suffrage, "Health": health, "HsmDomain": strings.Join(domains, ","), "LastContact": last,
			"Leader": m.NodeId == leaderID,
		})
	}
	return map[string]any{"Members": list}, nil
}

// snapshot is ConsoleSnapshot: GET /v1/operator/snapshot's file, with its
// authorization.
func (f consoleFace) snapshot(c *call) (any, error) {
	if err := f.s.cfg.Service.AuthorizeClusterView(c.caller, actionConsoleSnapshot); err != nil {
		return nil, err
	}
	return f.s.saveSnapshot(c)
}
