package store

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftkms/raftkms/fsm"
)

// Group commit, proven by its metric: concurrent proposals share log
// appends (each one fsync), and kms_raft_entries_per_append counts every
// entry the log stored.
func TestEntriesPerAppend_ConcurrentWritesShareAnFsync(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.nodes[0]
	waitFor(t, "a leader", 5*time.Second, n.store.IsLeader)
	// The node's own histogram, gathered through a registry of its own.
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.store.m.perAppend)
	before := histogram(t, reg)

	const writes = 200
	var wg sync.WaitGroup
	errs := make(chan error, writes)
	for i := 0; i < writes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := n.store.Propose(ctxT(t), fsm.NoopCommand())
			if err == nil {
				err = res.Err
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	after := histogram(t, reg)
	entries := after.GetSampleSum() - before.GetSampleSum()
	appends := after.GetSampleCount() - before.GetSampleCount()
	if entries < writes {
		t.Fatalf("the log stored %v entries for %d writes", entries, writes)
	}
	if appends >= writes {
		t.Fatalf("%d writes took %d appends: no fsync was shared", writes, appends)
	}
	t.Logf("%d writes: %v entries in %d appends (%.1f per fsync)", writes, entries, appends, entries/float64(appends))
}

func histogram(t *testing.T, reg *prometheus.Registry) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "kms_raft_entries_per_append" {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatal("no kms_raft_entries_per_append")
	return nil
}
