package hsm

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one token's collectors. With a nil registerer they still
// exist (and count) but nobody collects them.
type metrics struct {
	ops        *prometheus.CounterVec   // op, result
	duration   *prometheus.HistogramVec // op
	recoveries *prometheus.CounterVec   // result
	unwraps    prometheus.Counter
	cached     prometheus.Gauge
	up         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, label string) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_hsm_operations_total",
			Help: "PKCS#11 operations by operation and result (ok, invalid: refused input or failed authentication, error).",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_hsm_operation_duration_seconds",
			Help:    "Latency of PKCS#11 operations, including the wait for a session.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op"}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_hsm_session_recoveries_total",
			Help: "Times the keeper session was reopened after the module lost sessions, by result.",
		}, []string{"result"}),
		unwraps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kms_hsm_key_unwraps_total",
			Help: "Wrapped keys unwrapped into the token (key cache misses).",
		}),
		cached: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kms_hsm_cached_keys",
			Help: "Unwrapped keys held as session objects.",
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kms_hsm_up",
			Help: "1 when the token is healthy, 0 when it is not.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"token": label}, reg)
	for _, c := range []prometheus.Collector{m.ops, m.duration, m.recoveries, m.unwraps, m.cached, m.up} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// unregister is for Close, so a token can be reopened on the same registry.
func (m *metrics) unregister(reg prometheus.Registerer, label string) {
	if reg == nil {
		return
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"token": label}, reg)
	for _, c := range []prometheus.Collector{m.ops, m.duration, m.recoveries, m.unwraps, m.cached, m.up} {
		reg.Unregister(c)
	}
}

func (m *metrics) observe(op string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrDecrypt), errors.Is(err, ErrInvalidParameter), errors.Is(err, ErrUnwrap):
		result = "invalid"
	default:
		result = "error"
	}
	m.ops.WithLabelValues(op, result).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
