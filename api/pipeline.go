package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
)

// face is one way into the service: the Alibaba Cloud RPC API (face_rpc.go),
// the operator endpoints (face_operator.go), and the ones still to come. A
// face only translates: HTTP into a call of its handlers, and their answers
// and errors back into HTTP. Everything around that — request id, deadline,
// consistency headers, admission and rate limits, HSM routing report, key
// resolution report, metrics, audit record, error classification — is the
// pipeline's (serve), the same for every face.
type face interface {
	// decode reads what the request asks for: c.action (named even when
	// the request will be refused: the audit line and the metrics use it)
	// and whatever the face needs before authenticating (c.body, c.p). A
	// face that must authenticate before reading the body leaves it unread.
	decode(c *call) error
	// authenticate settles who is calling: it sets c.caller and
	// c.authenticated, or leaves them unset for a request the face serves
	// without credentials (the handler then decides whether that is
	// enough).
	authenticate(c *call) error
	// route finds the handler of an action and its rate-limit class.
	route(action string) (route, error)
	// written names the key and version as the caller wrote them, for the
	// audit line of a request for which the core resolved none.
	written(c *call) (keyID, versionID string)
	// answer writes a handler's answer; fail writes an error (classify
	// gives its code and status).
	answer(w http.ResponseWriter, c *call, resp any)
	fail(w http.ResponseWriter, c *call, err error)
}

// route is where a face sends one action.
type route struct {
	handle actionFunc
	// class is the action's rate-limit class (kms.ClassSymmetric,
	// ClassAsymmetric, ClassRead, ClassWrite): per-account limits are set
	// per class.
	class string
}

type actionFunc func(c *call) (any, error)

// call is one request going through the pipeline.
type call struct {
	ctx    context.Context // the request's, bounded by RequestTimeout
	r      *http.Request
	p      params
	caller kms.Caller
	index  uint64 // Raft index of the write, for X-Kms-Index

	w         http.ResponseWriter
	requestID string
	action    string
	body      []byte // what decode read of the body (nil: unread)
	// query is the decoded query string when the face decoded it (the
	// signature check reuses it; read only).
	query url.Values
	// flatQuery is set when p is exactly the decoded query (no body, no
	// name twice): the signature check reads p then, not query.
	flatQuery bool
	// authenticated is set once the caller's signature verified.
	authenticated bool
	// routed is set once the face found action's handler.
	routed bool
	// unbounded is the request's context without the pipeline's deadline,
	// for a handler whose work has its own budget (a snapshot restore
	// after its upload): read it with unboundedCtx.
	unbounded context.Context
	// kept is set when something may hold on to the call after its
	// request (release then leaves it to the garbage collector).
	kept bool
	// signedHash is the body hash a signature covered when the body was
	// left unread (a snapshot upload).
	signedHash string

	// reports and rctx are unbounded's and ctx's contexts, kept here so
	// that they cost no allocations of their own (reqctx.go).
	reports kms.Reports
	rctx    requestContext
	// flat is the handler's answer when it is a flatAnswer (flatAnswer()).
	flat flatAnswer
	// signed holds the parsed V3 signature (rpcFace), so that it costs no
	// allocation of its own.
	signed signature.Signed
	// pmap is an empty map for p (rpcFace's decoding of a query), kept
	// with the call from one request to the next.
	pmap params
}

// calls recycles the calls of finished requests: a call is 2 KB, and
// allocating it (then collecting it) was an eighth of a request's CPU.
var calls = sync.Pool{New: func() any { return new(call) }}

// release returns c to calls once its request is answered, unless
// something may still hold on to it: its contexts live in it, and a
// context handed to work that outlives the request (a goroutine, a
// derived context) has been asked for its Done channel by then (every
// derived context and every wait asks), or is unboundedCtx's. A call
// whose request panicked is never released.
func (c *call) release() {
	if c.kept || c.rctx.inner.Load() != nil {
		return
	}
	pm := c.pmap
	*c = call{}
	if len(pm) <= maxKeptParams {
		// Handlers only read p during their request (never keep it).
		clear(pm)
		c.pmap = pm
	}
	calls.Put(c)
}

// maxKeptParams bounds the map a released call keeps for its next
// request's parameters (clearing a map costs its capacity, not its length).
const maxKeptParams = 16

// unboundedCtx is c.unbounded; the call is not recycled after a request
// that used it (its work has a budget of its own and may be handed on).
func (c *call) unboundedCtx() context.Context {
	c.kept = true
	return c.unbounded
}

// flatAnswer is the call's (empty) flat answer, for its handler to fill.
func (c *call) flatAnswer() *flatAnswer {
	c.flat = flatAnswer{}
	return &c.flat
}

// callerOrNil is the caller when one authenticated, nil otherwise.
func (c *call) callerOrNil() *kms.Caller {
	if !c.authenticated {
		return nil
	}
	caller := c.caller
	return &caller
}

// mount serves path through the pipeline with face f.
func (s *Server) mount(path string, f face) {
	s.routes[path] = func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, f) }
}

// serve is the one request pipeline. Every face enters here:
//
//	decode → authenticate → consistency headers → route → admission and
//	rate limit → handler → audit record → answer or error
//
// with one request id, one deadline, one metrics observation and one audit
// line per request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, f face) {
	c := calls.Get().(*call)
	s.serveCall(w, r, f, c)
	// Not deferred: a call whose request panicked is not reused.
	c.release()
}

func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, f face, c *call) {
	start := s.now()
	c.r, c.w, c.requestID = r, w, newRequestID()
	// HSM work forwarded to another node writes no audit line there; this
	// request's line says where it ran. The core reports the key it
	// resolved the same way.
	base, hsmRoute, resolved := c.reports.Init(r.Context())
	if s.realClock {
		// The deadline is on the real clock: start is that clock's now.
		c.rctx.startAt(base, start, s.cfg.RequestTimeout)
	} else {
		c.rctx.start(base, s.cfg.RequestTimeout)
	}
	defer c.rctx.end()
	c.ctx, c.unbounded = &c.rctx, base

	code := "InternalFailure" // until run returns: a panic is counted as one
	defer func() {
		label := "unknown" // bounded: a client cannot grow the metric
		if c.routed {
			label = c.action
		} else if _, rerr := f.route(c.action); rerr == nil {
			label = c.action
		}
		s.metrics.observe(label, code, s.now().Sub(start))
	}()
	resp, err := s.run(c, f)
	code = "OK"
	if err != nil {
		e, _ := classify(err)
		code = e.code
	}

	if a := auditOf(w); a != nil {
		a.rec.RequestID, a.rec.Action = c.requestID, c.action
		if err != nil {
			a.rec.Code = code
		}
		if c.authenticated {
			a.setCaller(c.caller)
		} else {
			// Not authenticated: name the access key that was tried (a
			// wrong secret, an unknown id), never anything secret.
			a.rec.AccessKeyID = claimedAccessKeyID(r, c.body)
		}
		keyID, versionID := resolved.Key()
		if c.authenticated {
			wk, wv := f.written(c)
			if keyID == "" {
				keyID = wk
			}
			if versionID == "" {
				versionID = wv
			}
		}
		a.rec.KeyID, a.rec.KeyVersionID = keyID, versionID
		a.rec.ForwardedTo = hsmRoute.ForwardedTo()
	}
	if err != nil {
		f.fail(w, c, err)
		return
	}
	if c.index > 0 {
		w.Header().Set("X-Kms-Index", strconv.FormatUint(c.index, 10))
	}
	f.answer(w, c, resp)
}

// run takes a call from its decoding to its handler's answer.
func (s *Server) run(c *call, f face) (any, error) {
	if err := f.decode(c); err != nil {
		return nil, err
	}
	if err := f.authenticate(c); err != nil {
		return nil, err
	}
	if c.authenticated {
		// kms.WithSignature, without a context of its own: c.ctx is (or
		// wraps) c.rctx.
		c.rctx.sig.Set(c.caller)
	}
	if err := s.consistency(c.ctx, c.r); err != nil {
		return nil, err
	}
	rt, err := f.route(c.action)
	if err != nil {
		return nil, err
	}
	c.routed = true
	sl, err := s.admit(c.caller.AccountID, rt.class)
	if err != nil {
		return nil, err
	}
	defer sl.release()
	return rt.handle(c)
}

// consistency applies the read-consistency headers: X-Kms-Read-Consistency
// (default or linearizable) and X-Kms-Min-Index (wait until this node has
// applied that index). See docs/CONSISTENCY.md.
func (s *Server) consistency(ctx context.Context, r *http.Request) error {
	switch strings.ToLower(headerGet(r.Header, "X-Kms-Read-Consistency")) {
	case "", "default":
	case "linearizable":
		// The strongest read: everything acknowledged before this request
		// began is visible.
		if err := s.cfg.Service.LinearizableRead(ctx); err != nil {
			return err
		}
	default:
		return invalidParam("X-Kms-Read-Consistency", "must be default or linearizable")
	}
	if v := headerGet(r.Header, "X-Kms-Min-Index"); v != "" {
		idx, perr := strconv.ParseUint(v, 10, 64)
		if perr != nil {
			return invalidParam("X-Kms-Min-Index", "must be a Raft index (an unsigned integer)")
		}
		if err := s.cfg.Service.WaitForIndex(ctx, idx); err != nil {
			return err
		}
	}
	return nil
}

// answerJSON is the JSON answer every face of this package gives: the
// handler's object with its RequestId.
func (s *Server) answerJSON(w http.ResponseWriter, c *call, resp any) {
	if a, ok := resp.(*flatAnswer); ok {
		s.writeFlat(w, http.StatusOK, a.str("RequestId", c.requestID))
		return
	}
	s.writeJSON(w, http.StatusOK, withRequestID(resp, c.requestID))
}
