package store

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	applyDuration prometheus.Histogram
	nudges        prometheus.Counter
	notices       prometheus.Counter
	perAppend     prometheus.Histogram // kms_raft_entries_per_append (logstore.go)
}

// newMetrics registers the store's collectors on reg (nil: unregistered).
func newMetrics(reg prometheus.Registerer, s *Store, perAppend prometheus.Histogram) *metrics {
	m := &metrics{
		perAppend: perAppend,
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kms_raft_apply_duration_seconds",
			Help:    "Time to commit and apply a write through Raft, including forwarding to the leader.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		nudges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kms_raft_commit_nudges_total",
			Help: "No-op entries the leader appended to tell followers that writes are committed (after the last write of a burst, for a follower whose read index is ahead of its commit, at the start of a term).",
		}),
		notices: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kms_raft_commit_notices_total",
			Help: "Times the leader told every follower its commit index by RPC (store.commit) after the last write of a burst, instead of appending a nudge, and after its nudges, for the nudge's own commit.",
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.applyDuration, m.nudges, m.notices, perAppend)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "kms_raft_commit_hints_total",
		Help: "Commits this follower learned from the leader's answer to a write it forwarded or from its commit notice, instead of from a nudge: AppendEntries whose commit index was raised, and empty ones handed to Raft (store/commithint.go).",
	}, func() float64 { return float64(s.trans.pump.hinted.Load()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kms_raft_applied_index",
		Help: "Index of the last log entry applied to this node's catalogue.",
	}, func() float64 { return float64(s.fsm.AppliedIndex()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kms_raft_commit_index",
		Help: "Highest log index this node knows to be committed.",
	}, func() float64 { return float64(s.raft.CommitIndex()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kms_raft_leader",
		Help: "1 if this node is the Raft leader.",
	}, func() float64 {
		if s.IsLeader() {
			return 1
		}
		return 0
	}))
	return m
}
