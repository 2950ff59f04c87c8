package store

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// countingLogStore is the Raft log store with one observation per append.
// Both backends make each StoreLogs call durable with one sync (raft-wal
// one fsync of its segment; raft-boltdb one bbolt transaction), so entries
// per call is entries per sync: above 1 when
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
		Help:    "Log entries written to this node's Raft log per append (one durable write: one fsync, two fdatasyncs with boltdb): above 1 when concurrent writes share an fsync.",
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

// IsMonotonic reports whether the backend refuses gaps in the log's
// indexes (raft.MonotonicLogStore): raft-wal does, and Raft then empties
// the log when a snapshot moves it past its last entry. Without this the
// wrapper would hide it, and the first append after a restore would fail.
func (c countingLogStore) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
