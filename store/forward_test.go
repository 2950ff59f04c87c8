package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftkms/raftkms/fsm"
)

// stallingFSM stops applying entries on the node named by target (once it
// is set) until release is closed: a leader that committed a forwarded
// write but never answers it. stalled is closed when it first stops.
type stallingFSM struct {
	FSM
	self    string
	target  *atomic.Value // node id
	release <-chan struct{}
	stalled chan struct{}
	once    *sync.Once
}

func (s *stallingFSM) Apply(l *raft.Log) any {
	if id, _ := s.target.Load().(string); id == s.self {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
	}
	return s.FSM.Apply(l)
}

// A write forwarded to a leader that never answers ends soon after the
// forwarding node sees another leader, with ErrUnknownOutcome (the write may
// have been applied), instead of holding the client for its whole deadline.
func TestPropose_ForwardedWriteEndsWhenTheLeaderChanges(t *testing.T) {
	var target atomic.Value
	target.Store("")
	release := make(chan struct{})
	stalled := make(chan struct{})
	var stallOnce sync.Once
	c := newTestClusterWith(t, 3, FastTiming(), func(cfg *Config) {
		cfg.FSM = &stallingFSM{FSM: cfg.FSM, self: cfg.NodeID, target: &target, release: release, stalled: stalled, once: &stallOnce}
	})
	// Registered after the cluster's cleanup, so it runs first: Raft's
	// shutdown waits for its FSM goroutine.
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	l := c.leader()
	var f, other *testNode
	for _, n := range c.nodes {
		switch {
		case n == l:
		case f == nil:
			f = n
		default:
			other = n
		}
	}
	noop, err := fsm.Encode(fsm.CmdNoop, fsm.NoopCmd{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Propose(ctxT(t), noop); err != nil {
		t.Fatalf("a write before the stall: %v", err)
	}

	target.Store(l.id)
	// Far longer than the test's own timeout: an answer before it is the
	// leader change's doing.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := f.store.Propose(ctx, noop)
		errc <- err
	}()
	<-stalled
	if err := l.store.TransferLeadership(other.id, other.store.Addr()); err != nil {
		t.Fatalf("transfer leadership: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("forwarded write after the leader changed: %v, want ErrUnknownOutcome", err)
		}
	case <-time.After(30 * time.Second): // a bound on failure, not a wait
		t.Fatal("the forwarded write was still waiting 30 s after the leader changed")
	}
}
