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
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftkms/raftkms/audit"
	"github.com/raftkms/raftkms/cluster"
	"github.com/raftkms/raftkms/kms"
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
	// NonceCacheEntries bounds the signature nonces this node remembers
	// (default DefaultNonceCacheEntries); past it, signed requests are
	// refused with 429 until old ones leave the window (noncecache.go).
	NonceCacheEntries int
	// Audit, when set, receives one record per request (every path but
	// /v1/health, /v1/status, /metrics and the console's static files),
	// before the answer is sent.
	Audit Auditor
	// ConsoleIdleTimeout ends a console session nobody used for that long
	// (default kms.DefaultConsoleIdleTimeout).
	ConsoleIdleTimeout time.Duration
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
	// realClock is set when cfg.Clock is time.Now (none was configured):
	// a time the pipeline read from it is the real clock's.
	realClock bool
	// restoring is held by the one snapshot restore this node serves at
	// a time.
	restoring atomic.Bool
	// console serves /console/api/ through the pipeline (face_console.go).
	console http.HandlerFunc
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
	realClock := cfg.Clock == nil
	if realClock {
		cfg.Clock = time.Now
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	s := &Server{
		cfg:       cfg,
		realClock: realClock,
		log:       cfg.Logger.Named("api"),
		nonces:    newNonceCache(cfg.ClockSkew, cfg.NonceCacheEntries),
		metrics:   newMetrics(cfg.Registry),
	}
	s.actions = s.actionTable()
	labels := []string{"unknown"}
	for a := range s.actions {
		labels = append(labels, a)
	}
	s.metrics.prepare(labels)
	removeStaleUploads(cfg.DataDir, s.log)
	maxInFlight := cfg.MaxInFlight
	if maxInFlight == 0 {
		maxInFlight = DefaultMaxInFlight
	}
	s.limits = newLimiter(maxInFlight)
	// Exact paths, matched by hand: http.ServeMux would answer unclean
	// paths (//, /./) with a bare redirect instead of the service's error.
	// Monitoring pages stay outside the pipeline (and the audit log).
	s.routes = map[string]http.HandlerFunc{
		"/v1/health": s.serveHealth,
		"/v1/status": s.serveStatus,
	}
	// Every way in goes through the one pipeline (pipeline.go), each with
	// its face.
	s.mount("/", rpcFace{s})
	op := s.operatorFace()
	for _, path := range op.paths() {
		s.mount(path, op)
	}
	s.mountConsole()
	if cfg.Gatherer != nil {
		s.routes["/metrics"] = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP
	}
	return s
}

func (s *Server) now() time.Time { return s.cfg.Clock() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.guard(w, r, apiListener, func(w http.ResponseWriter) {
		h, ok := s.routes[r.URL.Path]
		if !ok && isConsolePath(r.URL.Path) {
			// Every path under /console/: its files and its API.
			h, ok = s.routes[consolePrefix]
		}
		if !ok {
			s.writeError(w, r, "", newRequestID(), fmt.Errorf("%w: %q; API actions are sent to /", errNotFound, r.URL.Path))
			return
		}
		h(w, r)
	})
}

// listener is what differs between the listeners a Server answers on (the
// API, the instance endpoint) outside the request pipeline: which paths are
// audited, which keep answering on a node with another root key, and how an
// error is written in the listener's format.
type listener struct {
	name         string
	audited      func(path string) bool
	servesAnyway func(path string) bool // on a node with another root key
	fail         func(s *Server, w http.ResponseWriter, r *http.Request, requestID string, err error)
	auditRefusal func(w http.ResponseWriter, requestID, msg string) // nil: JSON
}

var apiListener = listener{
	name:         "API",
	audited:      audited,
	servesAnyway: reportsHealth,
	fail: func(s *Server, w http.ResponseWriter, r *http.Request, requestID string, err error) {
		s.writeError(w, r, "", requestID, err)
	},
}

// guard is the outermost layer of every listener: the audit writer (so a
// refused or panicking request is audited too), a panic guard that still
// answers in the listener's format, and the root-key check.
func (s *Server) guard(w http.ResponseWriter, r *http.Request, l listener, next func(http.ResponseWriter)) {
	if s.cfg.Audit != nil && l.audited(r.URL.Path) {
		a := s.newAuditWriter(w, r)
		a.unavailable = l.auditRefusal
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
			s.log.Error("panic serving request", "listener", l.name, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			l.fail(s, w, r, newRequestID(), fmt.Errorf("internal panic"))
		}
	}()
	if err := s.cfg.Service.RootKeyMismatch(); err != nil && !l.servesAnyway(r.URL.Path) {
		// A node with another root key can serve nothing; say why rather
		// than fail each operation its own way.
		l.fail(s, w, r, newRequestID(), err)
		return
	}
	next(w)
}

// reportsHealth tells the paths that keep answering on a node that cannot
// serve, and report why.
func reportsHealth(path string) bool {
	return path == "/v1/health" || path == "/v1/status" || path == "/metrics"
}

// newRequestID is a random (version 4) UUID in upper case, the shape the
// service's RequestIds have: one allocation, the string. A request id
// names a request, it guards nothing: its 122 random bits come from the
// runtime's per-thread ChaCha8 generator (math/rand/v2, seeded from the
// system), which costs a few nanoseconds where a crypto/rand read cost
// about 200 per request.
func newRequestID() string {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	const hexUpper = "0123456789ABCDEF"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexUpper[c>>4], hexUpper[c&0x0f]
		j += 2
	}
	return string(b[:])
}

// noBody is what readBody returns for a request without a body: empty, but
// not nil (a nil body means "not read" to the pipeline).
var noBody = []byte{}

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.Body == http.NoBody {
		// The server's body for a request without one (every SDK call
		// through the query): skip io.ReadAll's buffer.
		return noBody, nil
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
	w.Header()["Content-Type"] = jsonContentType
	if m, isMap := v.(map[string]any); isMap {
		bp := answerBufs.Get().(*[]byte)
		if b, ok := appendFlatJSON((*bp)[:0], m); ok {
			w.WriteHeader(status)
			if _, err := w.Write(b); err != nil {
				s.log.Debug("writing response", "error", err)
			}
			if cap(b) <= 64<<10 {
				*bp = b[:0]
				answerBufs.Put(bp)
			}
			return
		}
		answerBufs.Put(bp)
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Debug("writing response", "error", err)
	}
}

// jsonContentType is the Content-Type of every JSON answer, as the value
// Header().Set would store, shared by all answers (read only: nothing in
// net/http or this package changes a header's values in place), so that
// setting it costs neither an allocation nor canonicalising the name.
var jsonContentType = []string{"application/json;charset=utf-8"}

// headerGet is h.Get(key) for a key already in canonical form (the
// constant names this package reads): the same value, without
// canonicalising the key on every request.
func headerGet(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// writeFlat is writeJSON of a flatAnswer: the same bytes, no map.
func (s *Server) writeFlat(w http.ResponseWriter, status int, a *flatAnswer) {
	if au := auditOf(w); au != nil && au.rec.RequestID == "" {
		au.rec.RequestID = a.get("RequestId")
	}
	w.Header()["Content-Type"] = jsonContentType
	bp := answerBufs.Get().(*[]byte)
	b := a.appendJSON((*bp)[:0])
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		s.log.Debug("writing response", "error", err)
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		answerBufs.Put(bp)
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
