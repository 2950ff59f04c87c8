package node

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTPLimits bounds the API's connections. Zero fields take the defaults.
//
// The timeouts are http.Server's and apply per request; a handler that
// needs longer (a snapshot upload or download) extends its own deadlines
// with http.ResponseController, which these settings do not prevent: the
// connections are the listener's own, never wrapped with deadlines of
// their own.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers (default 10 s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and body
	// (default 30 s): a body trickled a byte at a time is cut off.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request's headers to
	// the end of the answer (default 90 s: more than reading a body plus
	// the API's 30 s request timeout).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that has waited this long
	// for its next request (default 90 s).
	IdleTimeout time.Duration
	// MaxConnections caps the connections the API holds (default 4096);
	// see connLimiter for what happens at the cap.
	MaxConnections int
	// NonceCacheEntries bounds the signature nonces the API remembers
	// (default api.DefaultNonceCacheEntries; api/noncecache.go).
	NonceCacheEntries int
}

// Defaults of HTTPLimits.
const (
	DefaultHTTPReadHeaderTimeout = 10 * time.Second
	DefaultHTTPReadTimeout       = 30 * time.Second
	DefaultHTTPWriteTimeout      = 90 * time.Second
	DefaultHTTPIdleTimeout       = 90 * time.Second
	DefaultHTTPMaxConnections    = 4096
)

func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultHTTPReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultHTTPReadTimeout
	}
	if l.ReadHeaderTimeout > l.ReadTimeout {
		l.ReadHeaderTimeout = l.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultHTTPWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultHTTPIdleTimeout
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultHTTPMaxConnections
	}
	return l
}

// connLimiter is the API's listener: it admits at most max connections.
//
// At the cap a new connection is admitted by closing another one, chosen
// in this order:
//  1. the keep-alive connection that has been idle longest (between
//     requests; its client reconnects, as after the idle timeout);
//  2. else the oldest connection that has not yet sent a whole request
//     header (a TLS handshake or a first request still on its way; it is
//     bounded by ReadHeaderTimeout anyway, and without this a flood of
//     silent connections would lock every client out for that long);
//  3. else — every held connection is running a request — the new
//     connection is closed at once (kms_http_connections_rejected_total).
//
// So a node flooded with idle or silent connections keeps answering new
// clients at the cost of the flood, and only a node whose every connection
// is busy refuses. States come from http.Server.ConnState; the listener
// hands out the accepted connections unwrapped.
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]*trackedConn // by the accepted (raw) connection
	idle  connList                  // longest idle first
	fresh connList                  // oldest first

	gauge    *prometheus.GaugeVec
	byState  [3]prometheus.Gauge // gauge's children: new, active, idle
	rejected prometheus.Counter
	evicted  prometheus.Counter
}

type trackedConn struct {
	conn       net.Conn
	state      http.ConnState
	in         *connList // idle or fresh; nil while active
	prev, next *trackedConn
}

// connList is a doubly linked list of tracked connections threaded through
// them: a keep-alive request moves its connection out of and back into the
// idle list without allocating (container/list allocated an element each
// time).
type connList struct {
	head, tail *trackedConn
	n          int
}

func (q *connList) pushBack(t *trackedConn) {
	t.in, t.prev, t.next = q, q.tail, nil
	if q.tail != nil {
		q.tail.next = t
	} else {
		q.head = t
	}
	q.tail = t
	q.n++
}

func (q *connList) remove(t *trackedConn) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		q.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		q.tail = t.prev
	}
	t.in, t.prev, t.next = nil, nil, nil
	q.n--
}

// connMetrics names a listener's connection metrics: the API's
// (kms_http_connections...) or the instance endpoint's
// (kms_instance_http_connections...).
type connMetrics struct {
	prefix string // metric name prefix
	what   string // the listener, in help texts
}

var (
	apiConnMetrics      = connMetrics{prefix: "kms_http", what: "API"}
	instanceConnMetrics = connMetrics{prefix: "kms_instance_http", what: "Instance API"}
)

func newConnLimiter(ln net.Listener, max int, reg prometheus.Registerer, m connMetrics) *connLimiter {
	l := &connLimiter{
		Listener: ln, max: max, conns: map[net.Conn]*trackedConn{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: m.prefix + "_connections",
			Help: m.what + " connections held, by state: new (no whole request header yet), active (running a request), idle (keep-alive, between requests).",
		}, []string{"state"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: m.prefix + "_connections_rejected_total",
			Help: m.what + " connections closed on arrival because every held connection was running a request (--max-connections).",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: m.prefix + "_connections_evicted_total",
			Help: "Idle or not yet active " + m.what + " connections closed to admit a new one at --max-connections.",
		}),
	}
	for i, s := range []http.ConnState{http.StateNew, http.StateActive, http.StateIdle} {
		l.byState[i] = l.gauge.WithLabelValues(stateLabel(s))
	}
	if reg != nil {
		reg.MustRegister(l.gauge, l.rejected, l.evicted)
	}
	return l
}

// Accept returns the next admitted connection; refused ones are closed
// here and never reach the HTTP server.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		victim, ok := l.admit(c)
		if victim != nil {
			victim.Close()
		}
		if ok {
			return c, nil
		}
		c.Close()
	}
}

// admit tracks c as new, making room by dropping a victim (returned, to be
// closed) when at the cap; false when there is no room.
func (l *connLimiter) admit(c net.Conn) (victim net.Conn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= l.max {
		t := l.idle.head
		if t == nil {
			t = l.fresh.head
		}
		if t == nil {
			l.rejected.Inc()
			return nil, false
		}
		l.forget(t)
		l.evicted.Inc()
		victim = t.conn
	}
	t := &trackedConn{conn: c, state: http.StateNew}
	l.conns[c] = t
	l.fresh.pushBack(t)
	l.stateGauge(http.StateNew).Inc()
	return victim, true
}

// forget stops tracking t. Callers hold mu.
func (l *connLimiter) forget(t *trackedConn) {
	l.unlist(t)
	delete(l.conns, t.conn)
	l.stateGauge(t.state).Dec()
}

func (l *connLimiter) unlist(t *trackedConn) {
	if t.in != nil {
		t.in.remove(t)
	}
}

// stateGauge is the held-connections gauge of state s.
func (l *connLimiter) stateGauge(s http.ConnState) prometheus.Gauge {
	switch s {
	case http.StateActive:
		return l.byState[1]
	case http.StateIdle:
		return l.byState[2]
	}
	return l.byState[0]
}

// connState is the HTTP server's ConnState hook.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.conns[c]
	if t == nil {
		return // evicted, or not ours
	}
	switch s {
	case http.StateNew:
		return
	case http.StateClosed, http.StateHijacked:
		l.forget(t)
		return
	}
	l.unlist(t)
	l.stateGauge(t.state).Dec()
	t.state = s
	l.stateGauge(s).Inc()
	if s == http.StateIdle {
		l.idle.pushBack(t)
	}
}

func stateLabel(s http.ConnState) string {
	switch s {
	case http.StateActive:
		return "active"
	case http.StateIdle:
		return "idle"
	}
	return "new"
}

// held returns how many connections are held in each state.
func (l *connLimiter) held() (fresh, active, idle int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fresh.n, len(l.conns) - l.fresh.n - l.idle.n, l.idle.n
}

// newHTTPServer builds the API's server with the limits' timeouts and
// their connection cap on ln.
func newHTTPServer(h http.Handler, ln net.Listener, lim HTTPLimits, reg prometheus.Registerer) (*http.Server, *connLimiter) {
	return newLimitedServer(h, ln, lim, reg, apiConnMetrics)
}

// newLimitedServer is newHTTPServer for any listener of the node, its
// connection metrics named by m.
func newLimitedServer(h http.Handler, ln net.Listener, lim HTTPLimits, reg prometheus.Registerer, m connMetrics) (*http.Server, *connLimiter) {
	lim = lim.withDefaults()
	cl := newConnLimiter(ln, lim.MaxConnections, reg, m)
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ConnState:         cl.connState,
	}, cl
}
