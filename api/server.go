// Package api is the HTTP face of the service: the Alibaba Cloud KMS OpenAPI
// (2016-01-20, RPC style) on POST / (GET accepted), plus health, status,
// metrics and operator endpoints under /v1/.
//
// It decodes parameters, verifies request signatures, maps errors to the
// service's codes in one table (errors.go) and formats responses. It does
// not touch Raft or key material: every operation is a call into package
// kms.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftkms/raftkms/audit"
	"github.com/raftkms/raftkms/cluster"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
	"github.com/raftkms/raftkms/store"
)

// Raft is the view of the Raft node the status pages need.
type Raft interface {
	ID() string
	State() string
	Leader() (addr, id string)
	AppliedIndex() uint64
	CommitIndex() uint64
	CaughtUp() bool
	Servers() ([]store.Server, error)
}

// Members is the view of gossip membership the status pages need (nil in
// a single dev node without gossip).
type Members interface {
	Members() []cluster.Member
}

// Config configures the API server.
type Config struct {
	NodeID    string
	Service   *kms.Service
	Raft      Raft
	Members   Members
	Logger    hclog.Logger
	Registry  prometheus.Registerer
	Gatherer  prometheus.Gatherer
	ClockSkew time.Duration // allowed request clock skew (default 15 min)
	Clock     func() time.Time
	// RequestTimeout bounds one request's work (default 30 s).
	RequestTimeout time.Duration
	// DataDir is where uploaded snapshots are staged.
	DataDir string
	// MaxInFlight bounds the API requests one node serves at once
	// (default DefaultMaxInFlight); past half of it, each account gets its
	// fair share.
	MaxInFlight int
	// Audit, when set, receives one record per request (every path but
	// /v1/health, /v1/status and /metrics), before the answer is sent.
	Audit Auditor
}

// Auditor is the audit log (package audit's Writer).
type Auditor interface {
	Append(audit.Record) error
}

// Server serves the API.
type Server struct {
	cfg     Config
	log     hclog.Logger
	routes  map[string]http.HandlerFunc
	nonces  *nonceCache
	metrics *metrics
	actions map[string]actionFunc
	limits  *limiter
	// restoring is held by the one snapshot restore this node serves at
	// a time.
	restoring atomic.Bool
}

// maxBody bounds an API request body; snapshots use their own endpoint.
const maxBody = 1 << 20

// New builds the API server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 15 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.Named("api"),
		nonces:  newNonceCache(2 * cfg.ClockSkew),
		metrics: newMetrics(cfg.Registry),
	}
	s.actions = s.actionTable()
	removeStaleUploads(cfg.DataDir, s.log)
	maxInFlight := cfg.MaxInFlight
	if maxInFlight == 0 {
		maxInFlight = DefaultMaxInFlight
	}
	s.limits = newLimiter(maxInFlight)
	// Exact paths, matched by hand: http.ServeMux would answer unclean
	// paths (//, /./) with a bare redirect instead of the service's error.
	s.routes = map[string]http.HandlerFunc{
		"/":                       s.serveAction,
		"/v1/health":              s.serveHealth,
		"/v1/status":              s.serveStatus,
		"/v1/operator/init":       s.serveInit,
		"/v1/operator/snapshot":   s.serveSnapshot,
		"/v1/operator/restore":    s.serveRestoreTarget,
		"/v1/operator/instances":  s.serveInstances,
		"/v1/operator/accounts":   s.serveAccounts,
		"/v1/operator/ratelimits": s.serveRateLimits,
	}
	s.routes["/v1/operator/instance-limits"] = s.serveInstanceLimits
	if cfg.Gatherer != nil {
		s.routes["/metrics"] = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP
	}
	return s
}

func (s *Server) now() time.Time { return s.cfg.Clock() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Audit != nil && audited(r.URL.Path) {
		a := s.newAuditWriter(w, r)
		w = a
		// Registered first, so it runs after the panic handler below has
		// answered: a panicking request is audited too.
		defer a.finish()
	}
	defer func() {
		// A panic is a bug in this process; the client still gets an
		// answer in the service's format, and the node keeps serving.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			s.writeError(w, r, "", newRequestID(), fmt.Errorf("internal panic"))
		}
	}()
	if err := s.cfg.Service.RootKeyMismatch(); err != nil && !reportsHealth(r.URL.Path) {
		// A node with another root key can serve nothing; say why rather
		// than fail each operation its own way.
		s.writeError(w, r, "", newRequestID(), err)
		return
	}
	h, ok := s.routes[r.URL.Path]
	if !ok {
		s.writeError(w, r, "", newRequestID(), fmt.Errorf("%w: %q; API actions are sent to /", errNotFound, r.URL.Path))
		return
	}
	h(w, r)
}

// reportsHealth tells the paths that keep answering on a node that cannot
// serve, and report why.
func reportsHealth(path string) bool {
	return path == "/v1/health" || path == "/v1/status" || path == "/metrics"
}

func newRequestID() string { return strings.ToUpper(uuid.NewString()) }

// call is one API request being served.
type call struct {
	ctx    context.Context
	r      *http.Request
	p      params
	caller kms.Caller
	index  uint64 // Raft index of the write, for X-Kms-Index
}

// keyRef returns the key and version the request concerned, for the audit
// log: from the answer when it names them (it has resolved aliases), else
// from the KeyId and KeyVersionId parameters as the caller wrote them, or,
// for a Decrypt, the version its ciphertext's header names.
func (c *call) keyRef(action string, resp any) (keyID, versionID string) {
	if m, ok := resp.(map[string]any); ok {
		keyID, _ = m["KeyId"].(string)
		versionID, _ = m["KeyVersionId"].(string)
		if md, ok := m["KeyMetadata"].(map[string]any); ok && keyID == "" {
			keyID, _ = md["KeyId"].(string)
		}
	}
	if c != nil {
		if keyID == "" {
			keyID = c.p.str("KeyId")
			// An ARN names the key id after "key/".
			if i := strings.LastIndex(keyID, ":key/"); i >= 0 && strings.HasPrefix(keyID, "acs:kms:") {
				keyID = keyID[i+len(":key/"):]
			}
		}
		if versionID == "" {
			versionID = c.p.str("KeyVersionId")
		}
		if versionID == "" && action == "Decrypt" {
			if blob, err := base64.StdEncoding.DecodeString(c.p.str("CiphertextBlob")); err == nil {
				if h, err := kcrypto.ParseCiphertext(blob); err == nil {
					versionID = h.VersionID
				}
			}
		}
	}
	return keyID, versionID
}

type actionFunc func(c *call) (any, error)

func (s *Server) serveAction(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	start := s.now()
	action := ""
	var err error
	defer func() {
		code := "OK"
		if err != nil {
			e, _ := classify(err)
			code = e.code
		}
		s.metrics.observe(s.actionLabel(action), code, s.now().Sub(start))
	}()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		err = fmt.Errorf("%w: %s", errMethod, r.Method)
		s.writeError(w, r, action, requestID, err)
		return
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		s.writeError(w, r, action, requestID, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	// HSM work forwarded to another node writes no audit line there; this
	// request's line says where it ran.
	ctx, route := kms.WithHSMRoute(ctx)

	var resp any
	var c *call
	action, c, err = s.prepare(ctx, r, body)
	if err == nil {
		fn, ok := s.actions[action]
		if !ok {
			err = fmt.Errorf("%w: %q", errUnknownAction, action)
		} else {
			var release func()
			if release, err = s.admit(c.caller.AccountID, action); err == nil {
				resp, err = fn(c)
				release()
			}
		}
	}
	if a := auditOf(w); a != nil {
		a.rec.RequestID, a.rec.Action = requestID, action
		if c != nil {
			a.setCaller(c.caller)
		} else {
			// Not authenticated: name the access key that was tried (a
			// wrong secret, an unknown id), never anything secret.
			a.rec.AccessKeyID = claimedAccessKeyID(r, body)
		}
		a.rec.KeyID, a.rec.KeyVersionID = c.keyRef(action, resp)
		if a.rec.KeyID == "" && a.rec.KeyVersionID != "" {
			// A refused Decrypt knows only the version its ciphertext
			// names; the line names its key too.
			a.rec.KeyID = s.cfg.Service.KeyIDOfVersion(a.rec.KeyVersionID)
		}
		a.rec.ForwardedTo = route.ForwardedTo()
	}
	if err != nil {
		s.writeError(w, r, action, requestID, err)
		return
	}
	if c.index > 0 {
		w.Header().Set("X-Kms-Index", strconv.FormatUint(c.index, 10))
	}
	s.writeJSON(w, http.StatusOK, withRequestID(resp, requestID))
}

// prepare decodes, authenticates and applies X-Kms-Min-Index. Once the
// caller is authenticated, the call comes back even with an error (the audit
// log names the caller of a refused request).
func (s *Server) prepare(ctx context.Context, r *http.Request, body []byte) (string, *call, error) {
	p, err := decodeParams(r, body)
	if err != nil {
		return "", nil, err
	}
	signed, caller, err := s.authenticate(ctx, r, body)
	action := p.str("Action")
	if signed != nil && signed.Scheme == signature.SchemeV1 {
		// V1 signs the query and a form body, nothing else: the action and
		// every parameter come from what it signed, never from a JSON body
		// or the x-acs-action header an intermediary could change.
		p = params{}
		for k, v := range signed.Params {
			p[k] = v[0]
		}
		action = p.str("Action")
	} else if h := r.Header.Get("x-acs-action"); h != "" {
		action = h
	}
	if err != nil {
		return action, nil, err
	}
	c := &call{ctx: kms.WithSignature(ctx, caller), r: r, p: p, caller: caller}
	if action == "" {
		return action, c, fmt.Errorf("%w: the parameter \"Action\" is needed but not provided", kms.ErrMissingParameter)
	}
	switch strings.ToLower(r.Header.Get("X-Kms-Read-Consistency")) {
	case "", "default":
	case "linearizable":
		// The strongest read: everything acknowledged before this request
		// began is visible (docs/CONSISTENCY.md).
		if err := s.cfg.Service.LinearizableRead(ctx); err != nil {
			return action, c, err
		}
	default:
		return action, c, invalidParam("X-Kms-Read-Consistency", "must be default or linearizable")
	}
	if v := r.Header.Get("X-Kms-Min-Index"); v != "" {
		idx, perr := strconv.ParseUint(v, 10, 64)
		if perr != nil {
			return action, c, invalidParam("X-Kms-Min-Index", "must be a Raft index (an unsigned integer)")
		}
		if err := s.cfg.Service.WaitForIndex(ctx, idx); err != nil {
			return action, c, err
		}
	}
	return action, c, nil
}

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the body: %v", errBadRequest, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: limit is %d bytes", errBodyTooLarge, limit)
	}
	return b, nil
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// withRequestID adds RequestId to a response object.
func withRequestID(resp any, id string) any {
	m, ok := resp.(map[string]any)
	if !ok || m == nil {
		m = map[string]any{}
	}
	m["RequestId"] = id
	return m
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	if a := auditOf(w); a != nil && a.rec.RequestID == "" {
		// A handler that did not name its request to the audit log.
		if m, ok := v.(map[string]any); ok {
			a.rec.RequestID, _ = m["RequestId"].(string)
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Debug("writing response", "error", err)
	}
}

// writeError answers in the service's error format. Internal errors are
// logged with the request id and answered without their detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, action, requestID string, err error) {
	e, internal := classify(err)
	if a := auditOf(w); a != nil {
		a.rec.RequestID, a.rec.Code = requestID, e.code
		if action != "" {
			a.rec.Action = action
		}
	}
	msg := errorMessage(err)
	if internal {
		s.log.Error("internal error", "request_id", requestID, "action", action, "error", err)
		msg = "The request processing has failed due to some unknown error. Request id: " + requestID
	}
	s.writeJSON(w, e.status, map[string]any{
		"RequestId": requestID,
		"HostId":    r.Host,
		"Code":      e.code,
		"Message":   msg,
	})
}

// audited reports whether requests to path go to the audit log: all but
// the unauthenticated read-only pages that monitoring polls.
func audited(path string) bool {
	switch path {
	case "/v1/health", "/v1/status", "/metrics":
		return false
	}
	return true
}

// auditWriter holds a request's audit record while the request runs and
// appends it when the answer's status is decided, before any byte of the
// answer leaves: no answer goes out unaudited. When the record cannot be
// written, the answer is replaced by a 503 (a committed write then reads
// as an unknown outcome, which it is to the client).
type auditWriter struct {
	http.ResponseWriter
	s      *Server
	r      *http.Request
	start  time.Time
	rec    audit.Record
	wrote  bool // status decided and record appended (or failed)
	failed bool // record not written: the real answer is dropped
}

func (s *Server) newAuditWriter(w http.ResponseWriter, r *http.Request) *auditWriter {
	a := &auditWriter{ResponseWriter: w, s: s, r: r, start: s.now()}
	a.rec = audit.Record{Time: a.start, Node: s.cfg.NodeID, Source: r.RemoteAddr}
	if _, known := s.routes[r.URL.Path]; known && r.URL.Path != "/" {
		// Operator endpoints name themselves; this is the fallback.
		a.rec.Action = r.URL.Path
	}
	return a
}

// claimedAccessKeyID is the AccessKeyId a request claims, verified or not:
// from the ACS3 Authorization header, else the V1 AccessKeyId parameter of
// the query or a form body. For the audit line of a refused request only.
func claimedAccessKeyID(r *http.Request, body []byte) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if a, err := signature.ParseAuthorization(h); err == nil && a.AccessKeyID != "" {
			return a.AccessKeyID
		}
	}
	if id := r.URL.Query().Get(signature.ParamAccessKeyID); id != "" {
		return id
	}
	if len(body) > 0 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil {
			return form.Get(signature.ParamAccessKeyID)
		}
	}
	return ""
}

// auditOf returns the request's audit record holder, nil when requests are
// not audited.
func auditOf(w http.ResponseWriter) *auditWriter {
	a, _ := w.(*auditWriter)
	return a
}

// auditAs names an operator request in the audit log.
func auditAs(w http.ResponseWriter, action, requestID string) {
	if a := auditOf(w); a != nil {
		a.rec.Action, a.rec.RequestID = action, requestID
	}
}

// setCaller records who made the request; nil-safe.
func (a *auditWriter) setCaller(c kms.Caller) {
	if a != nil {
		a.rec.Principal, a.rec.AccessKeyID = c.Principal, c.AccessKeyID
	}
}

func (a *auditWriter) WriteHeader(status int) {
	if a.wrote {
		return
	}
	a.wrote = true
	a.rec.Status = status
	if a.rec.Principal == "" && a.rec.AccessKeyID == "" {
		// An operator endpoint that refused the caller: the access key
		// the signature claimed (the body is not at hand here).
		a.rec.AccessKeyID = claimedAccessKeyID(a.r, nil)
	}
	if a.rec.Code == "" {
		a.rec.Code = "OK"
		if status >= 400 {
			a.rec.Code = "HTTP" + strconv.Itoa(status)
		}
	}
	a.rec.Latency = a.s.now().Sub(a.start)
	if err := a.s.cfg.Audit.Append(a.rec); err != nil {
		a.failed = true
		a.s.log.Error("cannot write the audit log; answering 503 instead", "request_id", a.rec.RequestID, "action", a.rec.Action, "error", err)
		h := a.ResponseWriter.Header()
		for _, k := range []string{"X-Kms-Index", "Content-Length", "Content-Disposition"} {
			h.Del(k)
		}
		h.Set("Content-Type", "application/json;charset=utf-8")
		a.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
		b, _ := json.Marshal(map[string]any{
			"RequestId": a.rec.RequestID, "Code": "ServiceUnavailableTemporary",
			"Message": "this node cannot write its audit log, so it does not answer; retry on another node (the outcome of a write is unknown)",
		})
		a.ResponseWriter.Write(append(b, '\n'))
		return
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *auditWriter) Write(b []byte) (int, error) {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	if a.failed {
		return len(b), nil
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (a *auditWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// finish audits a request whose handler wrote nothing (net/http answers
// 200 then).
func (a *auditWriter) finish() {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
}
