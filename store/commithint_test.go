package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// pumpHarness drives a hintPump as Raft's network transport and Raft would:
// RPCs in, RPCs out in order, a commit index Raft reports.
type pumpHarness struct {
	t      *testing.T
	in     chan raft.RPC
	p      *hintPump
	commit uint64
}

func newPumpHarness(t *testing.T) *pumpHarness {
	h := &pumpHarness{t: t, in: make(chan raft.RPC)}
	h.p = newHintPump(h.in)
	f := func() uint64 { return h.commit }
	h.p.commitIndex.Store(&f)
	t.Cleanup(h.p.close)
	return h
}

func appendEntries(term, prev uint64, n int, commit uint64) *raft.AppendEntriesRequest {
	a := &raft.AppendEntriesRequest{Term: term, PrevLogEntry: prev, PrevLogTerm: term, LeaderCommitIndex: commit}
	for i := 1; i <= n; i++ {
		a.Entries = append(a.Entries, &raft.Log{Index: prev + uint64(i), Term: term})
	}
	return a
}

// send hands an RPC to the pump and returns what Raft receives.
func (h *pumpHarness) send(a *raft.AppendEntriesRequest) *raft.AppendEntriesRequest {
	h.t.Helper()
	h.in <- raft.RPC{Command: a, RespChan: make(chan raft.RPCResponse, 1)}
	return h.recv()
}

func (h *pumpHarness) recv() *raft.AppendEntriesRequest {
	h.t.Helper()
	select {
	case rpc := <-h.p.out:
		return rpc.Command.(*raft.AppendEntriesRequest)
	case <-time.After(10 * time.Second):
		h.t.Fatal("the pump handed nothing to Raft")
		return nil
	}
}

// nothingMore checks that the pump hands Raft nothing once the RPC sent
// after it has come out (the pump handles its inputs one at a time).
func (h *pumpHarness) nothingMore() {
	h.t.Helper()
	probe := appendEntries(1, 0, 0, 0)
	if got := h.send(probe); got != probe {
		h.t.Fatalf("Raft got %+v before the probe", got)
	}
}

func hint(term, index uint64) commitHint {
	return commitHint{Term: term, Index: index, LeaderID: "leader", LeaderAddr: "10.0.0.1:7000"}
}

// The entry was handed to Raft before the leader's answer: Raft gets an
// empty AppendEntries from the leader of that term whose previous entry is
// the committed one, carrying it as the commit index.
func TestHintPump_EntryAlreadyHandedGetsAnEmptyAppendEntries(t *testing.T) {
	h := newPumpHarness(t)
	h.send(appendEntries(3, 7, 3, 6)) // entries 8..10, commit 6
	h.p.learn(hint(3, 10))
	a := h.recv()
	if len(a.Entries) != 0 || a.Term != 3 || a.PrevLogEntry != 10 || a.PrevLogTerm != 3 || a.LeaderCommitIndex != 10 {
		t.Fatalf("synthetic AppendEntries = %+v, want term 3, previous entry 10 of term 3, commit 10, no entries", a)
	}
	if string(a.ID) != "leader" || string(a.Addr) != "10.0.0.1:7000" || string(a.Leader) != "10.0.0.1:7000" ||
		a.ProtocolVersion != raft.ProtocolVersionMax {
		t.Fatalf("synthetic AppendEntries header = %+v, want the leader's", a.RPCHeader)
	}
	if n := h.p.hinted.Load(); n != 1 {
		t.Fatalf("hinted = %d, want 1", n)
	}
}

// The leader answered before the entry reached this node (it was not in the
// quorum): the AppendEntries that brings it carries the commit, and no
// empty one is sent before it (it would be refused: no such entry yet).
func TestHintPump_EntryNotYetHandedIsCommittedByItsAppendEntries(t *testing.T) {
	h := newPumpHarness(t)
	h.send(appendEntries(3, 5, 2, 5)) // up to 7
	h.p.learn(hint(3, 9))
	h.nothingMore()
	a := h.send(appendEntries(3, 7, 3, 7)) // entries 8..10
	if a.LeaderCommitIndex != 9 {
		t.Fatalf("commit index = %d, want 9 (raised)", a.LeaderCommitIndex)
	}
	// An AppendEntries that does not reach the entry is left alone.
	h.p.learn(hint(3, 12))
	h.nothingMore()
	if a := h.send(appendEntries(3, 10, 1, 9)); a.LeaderCommitIndex != 9 {
		t.Fatalf("commit index = %d, want 9 (the request ends at 11, before the entry)", a.LeaderCommitIndex)
	}
}

// Nothing is claimed across terms, nor for what Raft already knows.
func TestHintPump_OtherTermOrKnownCommitChangesNothing(t *testing.T) {
	h := newPumpHarness(t)
	h.send(appendEntries(4, 0, 10, 2))
	h.p.learn(hint(3, 8)) // an older term's leader: the AppendEntries handed are term 4's
	h.nothingMore()
	if a := h.send(appendEntries(5, 10, 2, 3)); a.LeaderCommitIndex != 3 {
		t.Fatalf("a term-5 AppendEntries was raised to %d by a term-3 answer", a.LeaderCommitIndex)
	}
	h.commit = 20
	h.p.learn(hint(5, 12)) // Raft knows 20 already
	h.nothingMore()
	if a := h.send(appendEntries(5, 12, 1, 10)); a.LeaderCommitIndex != 10 {
		t.Fatalf("commit index = %d, want 10 untouched (Raft's commit is past the hint)", a.LeaderCommitIndex)
	}
	if n := h.p.hinted.Load(); n != 0 {
		t.Fatalf("hinted = %d, want 0", n)
	}
}

// With no nudge (a delay of an hour) and a commit tick of 5 s, a follower
// still applies each write it forwarded within a second: it learns the
// commit from the leader's answer.
func TestPropose_ForwardingFollowerLearnsTheCommitWithoutANudge(t *testing.T) {
	timing := FastTiming()
	timing.CommitTimeout = 5 * time.Second
	timing.CommitNudgeDelay = time.Hour
	c := newTestClusterTiming(t, 3, timing)
	f := c.follower()
	if _, err := f.store.Propose(ctxT(t), initCmd(t)); err != nil {
		t.Fatal(err)
	}
	l := c.leader()
	waitTermNudge(t, l)
	nudges := counterValue(t, l.store.m.nudges)
	hinted := f.store.trans.pump.hinted.Load()
	const writes = 5
	writeThroughAndApply(t, f, writes, fmt.Sprintf("commit tick %s, no nudges", timing.CommitTimeout))
	if got := counterValue(t, l.store.m.nudges); got != nudges {
		t.Fatalf("the leader nudged %v times during the writes, want none", got-nudges)
	}
	if got := f.store.trans.pump.hinted.Load() - hinted; got < writes {
		t.Fatalf("the follower learned %d commits from hints, want at least %d", got, writes)
	}
}

// After the last write of a burst on the leader, the followers learn its
// commit from a notice (RPC store.commit), not from a nudge entry.
func TestNoteCommitted_FollowersLearnByNoticeNotNudge(t *testing.T) {
	timing := FastTiming()
	timing.CommitTimeout = 5 * time.Second
	c := newTestClusterTiming(t, 3, timing)
	l := c.leader()
	waitTermNudge(t, l)
	nudges, notices := counterValue(t, l.store.m.nudges), counterValue(t, l.store.m.notices)
	for i := 0; i < 3; i++ {
		res, err := l.store.Propose(ctxT(t), initCmd(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.nodes {
			if n == l {
				continue
			}
			waitApplied(t, n, res.Index, time.Second, fmt.Sprintf("write %d (commit tick %s)", i, timing.CommitTimeout))
		}
	}
	if got := counterValue(t, l.store.m.nudges); got != nudges {
		t.Fatalf("the leader appended %v nudges, want none", got-nudges)
	}
	if got := counterValue(t, l.store.m.notices); got <= notices {
		t.Fatalf("the leader sent no commit notice")
	}
}

// waitTermNudge waits for the nudge a leader appends once per term, after
// its barrier commits (watchLeadership): a test counting nudges starts
// after it.
func waitTermNudge(t *testing.T, l *testNode) {
	t.Helper()
	waitFor(t, "the leader's nudge of its term", 10*time.Second, func() bool {
		return counterValue(t, l.store.m.nudges) >= 1
	})
}

// A nudge's own commit reaches the followers by a commit notice: they apply
// the nudge well before the (here 5 s) commit tick, so a client on a
// follower waiting for the leader's commit index — which names the nudge
// when the follower has not received it yet and cannot map it to the write
// before — is not held until the next entry or tick.
func TestNudge_FollowersApplyItByNotice(t *testing.T) {
	c := newTestClusterTiming(t, 3, slowTickTiming())
	l := c.leader()
	waitTermNudge(t, l)
	_, commit := writeThenNudge(t, l)
	for _, n := range c.nodes {
		if n != l {
			waitApplied(t, n, commit, time.Second, "the nudge (commit tick 5s)")
		}
	}
}
