package kms

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	kcrypto "github.com/raftkms/raftkms/crypto"
)

type hsmMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHSMMetrics(reg prometheus.Registerer) *hsmMetrics {
	m := &hsmMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_hsm_requests_total",
			Help: "Operations on hardware keys by where they ran (local token, forwarded to a peer, served for a peer) and result.",
		}, []string{"op", "route", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_hsm_request_duration_seconds",
			Help:    "Duration of operations on hardware keys, forwarding included.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 14),
		}, []string{"op", "route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

func (m *hsmMetrics) observe(op, route string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, kcrypto.ErrInvalidCiphertext), errors.Is(err, ErrInvalidParameter):
		result = "invalid"
	case errors.Is(err, ErrHSMUnavailable), errors.Is(err, errPeerUnavailable):
		result = "unavailable"
	default:
		result = "error"
	}
	m.requests.WithLabelValues(op, route, result).Inc()
	m.duration.WithLabelValues(op, route).Observe(time.Since(start).Seconds())
}
