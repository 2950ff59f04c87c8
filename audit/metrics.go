package audit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics show the group commit at work: how many lines each write and
// fsync carried, and how long the durable write of a batch took (what a
// request waits for, at most twice).
type metrics struct {
	linesPerSync prometheus.Histogram
	syncDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	lines := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kms_audit_lines_per_sync",
		Help:    "Audit log lines written by one write and made durable by one fdatasync (group commit batch size).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
	})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kms_audit_sync_duration_seconds",
		Help:    "Time to write one batch of audit lines and fdatasync it.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1 ms … 3.3 s
	})
	m := &metrics{linesPerSync: lines, syncDuration: dur}
	if reg != nil {
		reg.MustRegister(lines, dur)
	}
	return m
}

func (m *metrics) observe(lines int, d time.Duration) {
	if m == nil {
		return
	}
	m.linesPerSync.Observe(float64(lines))
	m.syncDuration.Observe(d.Seconds())
}
