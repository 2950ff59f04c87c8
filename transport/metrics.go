package transport

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Result label values of kms_transport_rpc_total (client side) and
// kms_transport_rpc_handled_total (server side).
const (
	resultOK            = "ok"
	resultRemoteError   = "remote_error"
	resultUnknownMethod = "unknown_method"
	resultUnreachable   = "unreachable"
	resultConnLost      = "conn_lost"
	resultOverloaded    = "overloaded"
	resultPeerAuth      = "peer_auth"
	resultTooLarge      = "too_large"
	resultInvalid       = "invalid"
	resultPanic         = "panic"
)

// unknownMethodLabel replaces method names that have no handler in server-side
// labels, so a peer sending random names cannot blow up label cardinality.
const unknownMethodLabel = "_unknown"

type metrics struct {
	calls    *prometheus.CounterVec   // method, result
	duration *prometheus.HistogramVec // method
	handled  *prometheus.CounterVec   // method, result
	conns    *prometheus.CounterVec   // protocol
}

// newMetrics builds the collectors and registers them on reg. A nil reg gives
// a metrics value whose methods do nothing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return &metrics{}, nil
	}
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_transport_rpc_total",
			Help: "Outgoing internal RPC calls by method and result.",
		}, []string{"method", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_transport_rpc_duration_seconds",
			Help:    "Duration of outgoing internal RPC calls, including dialing.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method"}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_transport_rpc_handled_total",
			Help: "Incoming internal RPC requests by method and result.",
		}, []string{"method", "result"}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_transport_accepted_conns_total",
			Help: "Accepted cluster connections by protocol (raft, rpc) or rejection reason (tls, handshake, auth, unknown_protocol).",
		}, []string{"protocol"}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.handled, m.conns} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeCall(method, result string, d time.Duration) {
	if m.calls == nil {
		return
	}
	m.calls.WithLabelValues(method, result).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}

func (m *metrics) observeHandled(method, result string) {
	if m.handled == nil {
		return
	}
	m.handled.WithLabelValues(method, result).Inc()
}

func (m *metrics) observeConn(protocol string) {
	if m.conns == nil {
		return
	}
	m.conns.WithLabelValues(protocol).Inc()
}
