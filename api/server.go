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
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftkms/raftkms/cluster"
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
}

// Server serves the API.
type Server struct {
	cfg     Config
	log     hclog.Logger
	routes  map[string]http.HandlerFunc
	nonces  *nonceCache
	metrics *metrics
	actions map[string]actionFunc
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
	// Exact paths, matched by hand: http.ServeMux would answer unclean
	// paths (//, /./) with a bare redirect instead of the service's error.
	s.routes = map[string]http.HandlerFunc{
		"/":                      s.serveAction,
		"/v1/health":             s.serveHealth,
		"/v1/status":             s.serveStatus,
		"/v1/operator/init":      s.serveInit,
		"/v1/operator/snapshot":  s.serveSnapshot,
		"/v1/operator/instances": s.serveInstances,
	}
	if cfg.Gatherer != nil {
		s.routes["/metrics"] = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP
	}
	return s
}

func (s *Server) now() time.Time { return s.cfg.Clock() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	h, ok := s.routes[r.URL.Path]
	if !ok {
		s.writeError(w, r, "", newRequestID(), fmt.Errorf("%w: %q; API actions are sent to /", errNotFound, r.URL.Path))
		return
	}
	h(w, r)
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

	var resp any
	var c *call
	action, c, err = s.prepare(ctx, r, body)
	if err == nil {
		fn, ok := s.actions[action]
		if !ok {
			err = fmt.Errorf("%w: %q", errUnknownAction, action)
		} else {
			resp, err = fn(c)
		}
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

// prepare decodes, authenticates and applies X-Kms-Min-Index.
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
	if action == "" {
		return action, nil, fmt.Errorf("%w: the parameter \"Action\" is needed but not provided", kms.ErrMissingParameter)
	}
	switch strings.ToLower(r.Header.Get("X-Kms-Read-Consistency")) {
	case "", "default":
	case "linearizable":
		// The strongest read: everything acknowledged before this request
		// began is visible (docs/CONSISTENCY.md).
		if err := s.cfg.Service.LinearizableRead(ctx); err != nil {
			return action, nil, err
		}
	default:
		return action, nil, invalidParam("X-Kms-Read-Consistency", "must be default or linearizable")
	}
	if v := r.Header.Get("X-Kms-Min-Index"); v != "" {
		idx, perr := strconv.ParseUint(v, 10, 64)
		if perr != nil {
			return action, nil, invalidParam("X-Kms-Min-Index", "must be a Raft index (an unsigned integer)")
		}
		if err := s.cfg.Service.WaitForIndex(ctx, idx); err != nil {
			return action, nil, err
		}
	}
	return action, &call{ctx: ctx, r: r, p: p, caller: caller}, nil
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
	msg := err.Error()
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
