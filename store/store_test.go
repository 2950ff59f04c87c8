package store

import (
	"github.com/raftkms/raftkms/internal/testutil"

	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/transport"
)

// testAuthKey is the cluster authentication key all test nodes share.
var testAuthKey = bytes.Repeat([]byte{0x42}, 32)

type testNode struct {
	id    string
	dir   string
	trans *transport.Transport
	fsm   *fsm.FSM
	store *Store
}

func openNode(t testing.TB, id, dir string) *testNode {
	t.Helper()
	return openNodeTiming(t, id, dir, FastTiming())
}

func openNodeTiming(t testing.TB, id, dir string, timing Timing) *testNode {
	t.Helper()
	return openNodeAt(t, id, dir, "127.0.0.1:0", timing)
}

// openNodeAt opens a node on a given cluster address (a restarted node
// keeps its address in the Raft configuration).
func openNodeAt(t testing.TB, id, dir, addr string, timing Timing) *testNode {
	t.Helper()
	return openNodeWith(t, id, dir, addr, timing, nil)
}

// openNodeWith is openNodeAt with a change to the store's Config (nil:
// none), such as its log store.
func openNodeWith(t testing.TB, id, dir, addr string, timing Timing, change func(*Config)) *testNode {
	t.Helper()
	s, tr, f, err := tryOpenNode(id, dir, addr, timing, change)
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{id: id, dir: dir, trans: tr, fsm: f, store: s}
}

func tryOpenNode(id, dir, addr string, timing Timing, change func(*Config)) (*Store, *transport.Transport, *fsm.FSM, error) {
	tr, err := transport.New(transport.Config{BindAddr: addr, AuthKey: testAuthKey, Logger: hclog.NewNullLogger()})
	if err != nil {
		return nil, nil, nil, err
	}
	// Every node of a cluster has the same snapshot key (derived from the
	// same root key in kmsd).
	f := fsm.New(nil, fsm.WithSnapshotKey([]byte("store-test-snapshot-key")))
	cfg := Config{
		NodeID: id, DataDir: dir, Transport: tr, FSM: f, Timing: timing,
		Errors: testErrors, Noop: fsm.NoopCommand(),
		Logger: hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn}),
		// Small segments: each is preallocated.
		WALSegmentSize: 1 << 20,
	}
	if change != nil {
		change(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		tr.Close()
		return nil, nil, nil, err
	}
	return s, tr, f, nil
}

func (n *testNode) stop() {
	n.store.Shutdown()
	n.trans.Close()
}

type testCluster struct {
	t     testing.TB
	nodes []*testNode
}

func newTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	return newTestClusterTiming(t, n, FastTiming())
}

func newTestClusterTiming(t testing.TB, n int, timing Timing) *testCluster {
	t.Helper()
	return newTestClusterWith(t, n, timing, nil)
}

// newTestClusterWith starts n nodes whose Config change alters (nil: none).
func newTestClusterWith(t testing.TB, n int, timing Timing, change func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	var servers []Server
	for i := 0; i < n; i++ {
		node := openNodeWith(t, fmt.Sprintf("node%d", i), t.TempDir(), "127.0.0.1:0", timing, change)
		c.nodes = append(c.nodes, node)
		servers = append(servers, Server{ID: node.id, Addr: node.store.Addr(), Voter: true})
	}
	for _, node := range c.nodes {
		if err := node.store.Bootstrap(servers); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, node := range c.nodes {
			if node != nil {
				node.stop()
			}
		}
	})
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, timeout, cond)
}

func (c *testCluster) leader() *testNode {
	c.t.Helper()
	var l *testNode
	waitFor(c.t, "a leader", 10*time.Second, func() bool {
		for _, n := range c.nodes {
			if n != nil && n.store.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func (c *testCluster) follower() *testNode {
	f, _ := c.followerAt()
	return f
}

// followerAt is a follower and its place in c.nodes (a test that restarts
// it puts the new node there).
func (c *testCluster) followerAt() (*testNode, int) {
	l := c.leader()
	for i, n := range c.nodes {
		if n != nil && n != l {
			return n, i
		}
	}
	c.t.Fatal("no follower")
	return nil, 0
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func initCmd(t *testing.T) []byte {
	b, err := fsm.Encode(fsm.CmdInit, fsm.InitCmd{
		RootCheck: []byte("rc"),
		Account:   fsm.Account{ID: "1"},
		AccessKey: fsm.AccessKey{ID: "ak", AccountID: "1"},
		Instance:  fsm.Instance{ID: "kst-1", AccountID: "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPropose_ForwardedFromFollowerAndDomainErrorsSurvive(t *testing.T) {
	c := newTestCluster(t, 3)
	f := c.follower()
	res, err := f.store.Propose(ctxT(t), initCmd(t))
	if err != nil || res.Err != nil || res.Index == 0 {
		t.Fatalf("Propose via follower = %+v, %v", res, err)
	}
	// The same command again is refused by the FSM; the refusal travels back.
	res2, err := f.store.Propose(ctxT(t), initCmd(t))
	if err != nil || !errors.Is(res2.Err, fsm.ErrAlreadyInitialized) || res2.Index <= res.Index {
		t.Fatalf("second init = %+v, %v", res2, err)
	}
	// Read-your-writes: a follower that waits for the index sees the write.
	if err := f.fsm.WaitForIndex(ctxT(t), res.Index); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.fsm.Initialized(); !ok {
		t.Fatal("follower does not see the write at its index")
	}
}

// A follower that forwarded a write learns its commit at once (the leader
// nudges it with a barrier), not at the leader's next commit tick: with a
// 5 s CommitTimeout and no other traffic, the follower applies the write
// well within a second, every time.
// writeThroughAndApply proposes n writes through f, a follower, and fails
// unless f applies each within a second (conditions: the test's, for the
// message).
func writeThroughAndApply(t *testing.T, f *testNode, n int, conditions string) {
	t.Helper()
	for i := 0; i < n; i++ {
		res, err := f.store.Propose(ctxT(t), initCmd(t))
		if err != nil || res.Index == 0 {
			t.Fatalf("write %d via the follower: %+v, %v", i, res, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = f.fsm.WaitForIndex(ctx, res.Index)
		cancel()
		if err != nil {
			t.Fatalf("write %d: the follower did not apply index %d within 1 s (%s): %v", i, res.Index, conditions, err)
		}
	}
}

func TestPropose_ForwardingFollowerLearnsTheCommitWithoutTheCommitTick(t *testing.T) {
	timing := FastTiming()
	timing.CommitTimeout = 5 * time.Second
	c := newTestClusterTiming(t, 3, timing)
	f := c.follower()
	// The leader's first barrier of its term is behind us once a write
	// through it succeeded.
	if _, err := f.store.Propose(ctxT(t), initCmd(t)); err != nil {
		t.Fatal(err)
	}
	writeThroughAndApply(t, f, 5, fmt.Sprintf("commit tick %s", timing.CommitTimeout))
	// The nudge is an entry the FSM applies (a Raft barrier is not): the
	// leader's applied index reaches its commit index, so a client waiting
	// for that index (X-Kms-Min-Index from /v1/status) is not left waiting
	// for a write that may never come.
	l := c.leader()
	waitFor(t, "the leader's FSM at its commit index", 2*time.Second, func() bool {
		return l.fsm.AppliedIndex() >= l.store.CommitIndex()
	})
}

func TestReadIndex_OnFollowerCoversAcknowledgedWrites(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader()
	res, err := l.store.Propose(ctxT(t), initCmd(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		idx, err := n.store.Barrier(ctxT(t))
		if err != nil {
			t.Fatalf("%s: Barrier: %v", n.id, err)
		}
		if idx < res.Index || n.fsm.AppliedIndex() < res.Index {
			t.Fatalf("%s: read index %d below acknowledged write %d", n.id, idx, res.Index)
		}
	}
}

func TestLeaderLoss_NewLeaderAndWritesResume(t *testing.T) {
	c := newTestCluster(t, 3)
	old := c.leader()
	if _, err := old.store.Propose(ctxT(t), initCmd(t)); err != nil {
		t.Fatal(err)
	}
	for i, n := range c.nodes {
		if n == old {
			n.stop()
			c.nodes[i] = nil
		}
	}
	nl := c.leader()
	if nl == old {
		t.Fatal("stopped node still leads")
	}
	noop, _ := fsm.Encode(fsm.CmdNoop, fsm.NoopCmd{})
	for _, n := range c.nodes {
		if n == nil {
			continue
		}
		if res, err := n.store.Propose(ctxT(t), noop); err != nil || res.Err != nil {
			t.Fatalf("%s: write after failover: %+v %v", n.id, res, err)
		}
	}
}

func TestRestart_KeepsStateOnDisk(t *testing.T) {
	n, before := stoppedSoloWithState(t, FastTiming())
	again := openNode(t, "solo", n.dir)
	defer again.stop()
	if has, err := again.store.HasState(); !has || err != nil {
		t.Fatalf("HasState = %v, %v", has, err)
	}
	assertStateKept(t, again, before)
}

// stoppedSoloWithState bootstraps a single node with timing, waits until it
// leads, writes one command, stops it, and returns it with its
// catalogue's hash.
func stoppedSoloWithState(t *testing.T, timing Timing) (*testNode, [32]byte) {
	t.Helper()
	n := openNodeTiming(t, "solo", t.TempDir(), timing)
	if err := n.store.BootstrapSelf(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leader", 5*time.Second, n.store.IsLeader)
	res, err := n.store.Propose(ctxT(t), initCmd(t))
	if err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	before, _ := n.fsm.Hash()
	n.stop()
	return n, before
}

// assertStateKept waits until the restarted single node n leads and has
// caught up, and checks that its catalogue hashes to before.
func assertStateKept(t *testing.T, n *testNode, before [32]byte) {
	t.Helper()
	waitFor(t, "leader after restart", 5*time.Second, n.store.IsLeader)
	if _, err := n.store.Barrier(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if after, _ := n.fsm.Hash(); after != before {
		t.Fatal("state changed across the restart")
	}
}

func TestRestore_ReplacesStateOnEveryNode(t *testing.T) {
	for _, backend := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(backend, func(t *testing.T) { testRestoreReplacesState(t, backend) })
	}
}

// sourceSnapshot is a snapshot of a one-node cluster with an initialized
// catalogue, the index it captures and the catalogue's hash.
func sourceSnapshot(t *testing.T) (*bytes.Buffer, uint64, [32]byte) {
	t.Helper()
	src := openNode(t, "src", t.TempDir())
	defer src.stop()
	src.store.BootstrapSelf()
	waitFor(t, "src leader", 5*time.Second, src.store.IsLeader)
	if _, err := src.store.Propose(ctxT(t), initCmd(t)); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	snapIndex, err := src.fsm.WriteSnapshotTo(&snap)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.fsm.Hash()
	return &snap, snapIndex, want
}

func testRestoreReplacesState(t *testing.T, backend string) {
	snap, snapIndex, want := sourceSnapshot(t)

	c := newTestClusterWith(t, 3, FastTiming(), func(c *Config) { c.LogStore = backend })
	l := c.leader()
	noop, _ := fsm.Encode(fsm.CmdNoop, fsm.NoopCmd{})
	for i := 0; i < 5; i++ {
		l.store.Propose(ctxT(t), noop)
	}
	if err := l.store.Restore(bytes.NewReader(snap.Bytes()), int64(snap.Len()), snapIndex, 10*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	res, err := l.store.Propose(ctxT(t), noop)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		if err := n.fsm.WaitForIndex(ctxT(t), res.Index); err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
		if got, _ := n.fsm.Hash(); got != want {
			t.Fatalf("%s: catalogue differs from the restored snapshot", n.id)
		}
	}
}

// After an operator restore the followers' next entries are gone from the
// leader's log, so its replicators fall back from pipeline mode and would
// send the restored snapshot only at the next new entry or commit tick.
// The leader appends a few entries itself (afterRestore): with a commit
// tick of a minute, the restore still completes in seconds.
func TestRestore_DoesNotWaitForTheCommitTick(t *testing.T) {
	snap, snapIndex, _ := sourceSnapshot(t)
	timing := FastTiming()
	timing.CommitTimeout = time.Minute
	c := newTestClusterWith(t, 3, timing, nil)
	l := c.leader()
	noop, _ := fsm.Encode(fsm.CmdNoop, fsm.NoopCmd{})
	if _, err := l.store.Propose(ctxT(t), noop); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- l.store.Restore(bytes.NewReader(snap.Bytes()), int64(snap.Len()), snapIndex, 10*time.Second, nil)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the restore waited for the replicators' commit tick (a minute) to reach the followers")
	}
}

// testErrors stands for the service's wire table (kms.WireErrors, which
// imports this package): it carries the one FSM refusal these tests make.
var testErrors = ErrorCodec{
	Encode: func(err error) (string, string) {
		if err == nil {
			return "", ""
		}
		if errors.Is(err, fsm.ErrAlreadyInitialized) {
			return "AlreadyInitialized", err.Error()
		}
		return "", err.Error()
	},
	Decode: func(name, msg string) error {
		switch {
		case name == "" && msg == "":
			return nil
		case name == "AlreadyInitialized":
			return fmt.Errorf("%w (%s)", fsm.ErrAlreadyInitialized, msg)
		}
		return errors.New(msg)
	},
}

// An index that names one of Raft's own entries (here a barrier, like a new
// term's no-op) is reached with the last command before it: a reader
// waiting for the commit index is not left waiting for the next write.
func TestCommandIndexAtOrBelow_SkipsRaftsOwnEntries(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader()
	res, err := l.store.Propose(ctxT(t), initCmd(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.store.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	commit := l.store.CommitIndex()
	if commit <= res.Index {
		t.Fatalf("commit index %d, want past the write's %d", commit, res.Index)
	}
	if got := l.store.CommandIndexAtOrBelow(commit); got != res.Index {
		t.Fatalf("CommandIndexAtOrBelow(%d) = %d, want the write's %d", commit, got, res.Index)
	}
	if applied := l.fsm.AppliedIndex(); applied < l.store.CommandIndexAtOrBelow(commit) {
		t.Fatalf("applied %d below %d", applied, l.store.CommandIndexAtOrBelow(commit))
	}
	// An index this node's log does not hold yet stays as it is.
	if got := l.store.CommandIndexAtOrBelow(commit + 100); got != commit+100 {
		t.Fatalf("CommandIndexAtOrBelow(beyond the log) = %d", got)
	}
}

// slowTickTiming is FastTiming with a commit tick far longer than any wait
// below: what the followers learn in time, they learn from the store's
// nudges, not from Raft's commit tick.
func slowTickTiming() Timing {
	timing := FastTiming()
	timing.CommitTimeout = 5 * time.Second
	return timing
}

// waitApplied waits (at most within) until n's FSM has applied index.
func waitApplied(t *testing.T, n *testNode, index uint64, within time.Duration, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := n.fsm.WaitForIndex(ctx, index); err != nil {
		t.Fatalf("%s: %s did not apply index %d within %s (applied %d, commit %d): %v",
			what, n.id, index, within, n.fsm.AppliedIndex(), n.store.CommitIndex(), err)
	}
}

// Writes made on the leader reach every follower's catalogue well before the
// (here 5 s) commit tick: the leader nudges after the last write of a burst.
func TestPropose_FollowersLearnLeaderWritesWithoutTheCommitTick(t *testing.T) {
	c := newTestClusterTiming(t, 3, slowTickTiming())
	l := c.leader()
	noop, _ := fsm.Encode(fsm.CmdNoop, fsm.NoopCmd{})
	for i := 0; i < 5; i++ {
		res, err := l.store.Propose(ctxT(t), noop)
		if err != nil || res.Err != nil {
			t.Fatalf("write %d: %+v, %v", i, res, err)
		}
		for _, n := range c.nodes {
			waitApplied(t, n, res.Index, time.Second, fmt.Sprintf("write %d", i))
		}
	}
}

// The leader's last nudge trails the last write. A linearizable read on a
// follower names the write, not the nudge, and a client waiting on a
// follower for the leader's commit index (X-Kms-Min-Index from /v1/status)
// is not held until the commit tick: it maps the nudge to the write when the
// follower has the entry, and otherwise gets the nudge's commit notice (a
// follower that the nudge's AppendEntries has not reached yet cannot map
// it; CI caught that race).
func TestReadsOnFollower_AreNotHeldByTheLastNudge(t *testing.T) {
	c := newTestClusterTiming(t, 3, slowTickTiming())
	l := c.leader()
	res, commit := writeThenNudge(t, l)
	for _, n := range c.nodes {
		if n == l {
			continue
		}
		waitApplied(t, n, n.store.CommandIndexAtOrBelow(commit), time.Second, "the leader's commit index as a minimum index")
		// The read index names the write, not the nudge after it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		idx, err := n.store.Barrier(ctx)
		cancel()
		if err != nil || idx != res.Index {
			t.Fatalf("%s: linearizable read: index %d, %v; want the write's %d (commit %d)", n.id, idx, err, res.Index, commit)
		}
	}
}

// writeThenNudge has leader l write and then nudge, and waits for the
// nudge's commit on l: the write's result and l's commit index (the nudge's
// index or later). After a write the leader tells the followers by a notice
// now, not an entry; nudges remain (a term's start, a lagging reader, a
// follower without notices).
func writeThenNudge(t *testing.T, l *testNode) (Result, uint64) {
	t.Helper()
	res, err := l.store.Propose(ctxT(t), initCmd(t))
	if err != nil || res.Err != nil {
		t.Fatal(res, err)
	}
	l.store.nudgeFollowers()
	waitFor(t, "the leader's nudge after the write committed", 2*time.Second, func() bool {
		return l.store.CommitIndex() > res.Index && l.fsm.AppliedIndex() >= l.store.CommitIndex()
	})
	return res, l.store.CommitIndex()
}

// A follower that was down while the cluster wrote, and comes back to an
// idle cluster, catches up when it is asked for a read rather than at the
// leader's next commit tick: its read-index request tells the leader it
// lags, and the leader's nudge makes Raft send what it lacks.
func TestReadIndex_RestartedFollowerCatchesUpWithoutTheCommitTick(t *testing.T) {
	timing := slowTickTiming()
	c := newTestClusterTiming(t, 3, timing)
	l := c.leader()
	f, fi := c.followerAt()
	addr := f.store.Addr()
	// The leader's heartbeats to the stopped follower fail a few times:
	// by then its attempts to send it the write below have failed too, and
	// nothing but the commit tick (or a new entry) would retry them.
	failed := make(chan raft.Observation, 64)
	obs := raft.NewObserver(failed, false, func(o *raft.Observation) bool {
		fh, ok := o.Data.(raft.FailedHeartbeatObservation)
		return ok && string(fh.PeerID) == f.id
	})
	l.store.raft.RegisterObserver(obs)
	defer l.store.raft.DeregisterObserver(obs)
	f.stop()
	c.nodes[fi] = nil
	res, err := l.store.Propose(ctxT(t), initCmd(t))
	if err != nil || res.Err != nil {
		t.Fatal(res, err)
	}
	for i := 0; i < 3; i++ {
		select {
		case <-failed:
		case <-ctxT(t).Done():
			t.Fatal("the leader's heartbeats to the stopped follower did not fail")
		}
	}
	f = openNodeAt(t, f.id, f.dir, addr, timing)
	c.nodes[fi] = f
	// Reads wait for a leader and for the catch-up; both well within the
	// commit tick.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timing.CommitTimeout)
	idx, err := f.store.Barrier(ctx)
	cancel()
	if err != nil || idx < res.Index || f.fsm.AppliedIndex() < res.Index {
		t.Fatalf("read on the restarted follower: index %d, applied %d, %v (write at %d)", idx, f.fsm.AppliedIndex(), err, res.Index)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the restarted follower caught up after %s, want well within the %s commit tick", d, timing.CommitTimeout)
	}
}

// A single node (a dev node) has no followers to tell: its writes are not
// followed by nudges, so its commit index moves only with writes.
func TestPropose_SingleNodeAppendsNoNudge(t *testing.T) {
	n := openNode(t, "solo", t.TempDir())
	defer n.stop()
	if err := n.store.BootstrapSelf(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leader", 5*time.Second, n.store.IsLeader)
	if _, err := n.store.Barrier(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	noop, _ := fsm.Encode(fsm.CmdNoop, fsm.NoopCmd{})
	res, err := n.store.Propose(ctxT(t), noop)
	if err != nil || res.Err != nil {
		t.Fatal(res, err)
	}
	// Well past the nudge delay (2 ms in FastTiming), still nothing after
	// the write.
	ctx, cancel := context.WithTimeout(context.Background(), 100*FastTiming().CommitNudgeDelay)
	defer cancel()
	<-ctx.Done()
	if last := n.store.raft.LastIndex(); last != res.Index {
		t.Fatalf("last index %d after the write at %d: a nudge on a single node", last, res.Index)
	}
}
