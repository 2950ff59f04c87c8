package store

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// countingLogStore is the Raft log store with one observation per append.
// raft-boltdb writes each StoreLogs call in one bbolt transaction — one
// fsync — so entries per call is entries per fsync: above 1 when
// concurrent writes share an append (the leader's group commit: Raft
// gathers what arrived on its apply channel, up to MaxAppendEntries, into
// one append; a follower stores each AppendEntries batch in one call).
type countingLogStore struct {
	raft.LogStore
	entries prometheus.Histogram
}

func newEntriesPerAppend() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kms_raft_entries_per_append",
		Help:    "Log entries written to this node's Raft log per append (one bbolt transaction, one fsync): above 1 when concurrent writes share an fsync.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
	})
}

func (c countingLogStore) StoreLog(l *raft.Log) error {
	c.entries.Observe(1)
	return c.LogStore.StoreLog(l)
}

func (c countingLogStore) StoreLogs(logs []*raft.Log) error {
	c.entries.Observe(float64(len(logs)))
	return c.LogStore.StoreLogs(logs)
}
