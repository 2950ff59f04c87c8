package api

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// byAction holds, for each action of the RPC table and "unknown", the
	// children of the two vectors a successful request counts in, resolved
	// at its first request: WithLabelValues hashes the labels and looks
	// them up under a lock on every call. Read-only once built (prepare).
	byAction map[string]*actionMetrics
}

// actionMetrics is one action's OK counter and its duration histogram,
// each resolved when first used (so a series appears exactly when it did
// with WithLabelValues on every request: the histogram at the action's
// first request, the OK counter at its first success).
type actionMetrics struct {
	ok       atomic.Pointer[counterChild]
	duration atomic.Pointer[observerChild]
}

type counterChild struct{ prometheus.Counter }
type observerChild struct{ prometheus.Observer }

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_requests_total",
			Help: "API requests by action and result code (OK for success).",
		}, []string{"action", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_request_duration_seconds",
			Help:    "API request latency by action.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"action"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

// prepare makes the slots of the given action labels (called once, before
// the server serves).
func (m *metrics) prepare(actions []string) {
	m.byAction = make(map[string]*actionMetrics, len(actions))
	for _, a := range actions {
		m.byAction[a] = &actionMetrics{}
	}
}

func (m *metrics) observe(action, code string, d time.Duration) {
	am := m.byAction[action]
	if am == nil {
		m.requests.WithLabelValues(action, code).Inc()
		m.duration.WithLabelValues(action).Observe(d.Seconds())
		return
	}
	if code == "OK" {
		c := am.ok.Load()
		if c == nil {
			c = &counterChild{m.requests.WithLabelValues(action, code)}
			am.ok.Store(c) // a racing first store holds the same child
		}
		c.Inc()
	} else {
		m.requests.WithLabelValues(action, code).Inc()
	}
	o := am.duration.Load()
	if o == nil {
		o = &observerChild{m.duration.WithLabelValues(action)}
		am.duration.Store(o)
	}
	o.Observe(d.Seconds())
}
