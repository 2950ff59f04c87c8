package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// raftNode adapts a real hashicorp/raft (in-memory stores and transport) to
// the Raft interface, and records Bootstrap calls.
type raftNode struct {
	id    string
	r     *raft.Raft
	store *raft.InmemStore
	snaps *raft.InmemSnapshotStore
	trans *raft.InmemTransport

	mu         sync.Mutex
	bootstraps [][]Server
}

const raftTimeout = 2 * time.Second

func (n *raftNode) HasState() (bool, error) { return raft.HasExistingState(n.store, n.store, n.snaps) }
func (n *raftNode) IsLeader() bool          { return n.r.State() == raft.Leader }
func (n *raftNode) Bootstrap(servers []Server) error {
	n.mu.Lock()
	n.bootstraps = append(n.bootstraps, slices.Clone(servers))
	n.mu.Unlock()
	var cfg raft.Configuration
	for _, s := range servers {
		suffrage := raft.Nonvoter
		if s.Voter {
			suffrage = raft.Voter
		}
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: suffrage, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Addr)})
	}
	return n.r.BootstrapCluster(cfg).Error()
}
func (n *raftNode) Servers() ([]Server, error) {
	f := n.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}
func (n *raftNode) AddVoter(id, addr string) error {
	return n.r.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, raftTimeout).Error()
}
func (n *raftNode) AddNonvoter(id, addr string) error {
	return n.r.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, raftTimeout).Error()
}
func (n *raftNode) DemoteVoter(id string) error {
	return n.r.DemoteVoter(raft.ServerID(id), 0, raftTimeout).Error()
}
func (n *raftNode) RemoveServer(id string) error {
	return n.r.RemoveServer(raft.ServerID(id), 0, raftTimeout).Error()
}

func (n *raftNode) bootstrapCalls() [][]Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.bootstraps)
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

// testNode is a gossip node plus its Raft node, with the bootstrapper and
// reconciler running as cmd/kmsd will run them.
type testNode struct {
	id     string
	c      *Cluster
	raft   *raftNode
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu           sync.Mutex
	bootstrapErr error
	bootstrapped bool
}

// testRaftCluster is a set of testNodes whose Raft transports are all
// connected to each other.
type testRaftCluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes []*testNode
	join  []string
	rc    ReconcileConfig
}

func newTestRaftCluster(t *testing.T, rc ReconcileConfig) *testRaftCluster {
	return &testRaftCluster{t: t, rc: rc}
}

// start launches node id (zone) with --bootstrap-expect expect, joining
// every node started so far.
func (tc *testRaftCluster) start(id, zone string, expect int, opts ...nodeOpt) *testNode {
	t := tc.t
	t.Helper()
	logger := testLogger(t).Named(id)
	raftAddr := "raft-" + id
	_, trans := raft.NewInmemTransport(raft.ServerAddress(raftAddr))
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
	conf.HeartbeatTimeout = 100 * time.Millisecond
	conf.ElectionTimeout = 100 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.Logger = logger.Named("raft")
	store := raft.NewInmemStore()
	snaps := raft.NewInmemSnapshotStore()
	r, err := raft.NewRaft(conf, nopFSM{}, store, store, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	rn := &raftNode{id: id, r: r, store: store, snaps: snaps, trans: trans}

	tc.mu.Lock()
	for _, o := range tc.nodes {
		o.raft.trans.Connect(raft.ServerAddress("raft-"+o.id), o.raft.trans)
		trans.Connect(raft.ServerAddress("raft-"+o.id), o.raft.trans)
		o.raft.trans.Connect(raft.ServerAddress(raftAddr), trans)
	}
	join := slices.Clone(tc.join)
	tc.mu.Unlock()

	c := newTestNode(t, id, zone, append([]nodeOpt{withJoin(join...), withExpect(expect)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{id: id, c: c, raft: rn, cancel: cancel}
	n.done.Add(2)
	go func() {
		defer n.done.Done()
		err := c.RunBootstrap(ctx, expect, rn)
		n.mu.Lock()
		n.bootstrapErr, n.bootstrapped = err, true
		n.mu.Unlock()
	}()
	go func() {
		defer n.done.Done()
		c.RunReconciler(ctx, rn, tc.rc)
	}()
	t.Cleanup(func() { n.stop() })

	tc.mu.Lock()
	tc.nodes = append(tc.nodes, n)
	tc.join = append(tc.join, c.Addr())
	tc.mu.Unlock()
	return n
}

// stop kills the node without a leave: gossip and Raft just stop.
func (n *testNode) stop() {
	n.cancel()
	n.done.Wait()
	n.c.Shutdown()
	n.raft.r.Shutdown().Error()
	n.raft.trans.Close()
}

func (n *testNode) bootstrapResult() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bootstrapped, n.bootstrapErr
}

// leader waits for exactly one leader among the live nodes and returns it.
func (tc *testRaftCluster) leader(live []*testNode) *testNode {
	tc.t.Helper()
	var leader *testNode
	waitFor(tc.t, 10*time.Second, "one leader", func() error {
		var leaders []string
		leader = nil
		for _, n := range live {
			if n.raft.IsLeader() {
				leaders = append(leaders, n.id)
				leader = n
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("leaders: %v", leaders)
		}
		return nil
	})
	return leader
}

// configString renders a configuration as "a:v,b:n" sorted by ID.
func configString(servers []Server) string {
	parts := make([]string, len(servers))
	for i, s := range servers {
		kind := "n"
		if s.Voter {
			kind = "v"
		}
		parts[i] = s.ID + ":" + kind
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// waitConfig waits until every live node's Raft configuration is want.
func (tc *testRaftCluster) waitConfig(live []*testNode, want string) {
	tc.t.Helper()
	waitFor(tc.t, 10*time.Second, "raft configuration "+want, func() error {
		for _, n := range live {
			servers, err := n.raft.Servers()
			if err != nil {
				return err
			}
			if got := configString(servers); got != want {
				return fmt.Errorf("%s has %s", n.id, got)
			}
		}
		return nil
	})
}

func TestBootstrapExpect_ThreeElectOneLeader_FourthIsAddedDeadIsRemoved(t *testing.T) {
	tc := newTestRaftCluster(t, ReconcileConfig{Interval: 50 * time.Millisecond, DeadServerTimeout: time.Second})
	n1 := tc.start("n1", "zone-a", 3)
	n2 := tc.start("n2", "zone-b", 3)
	n3 := tc.start("n3", "zone-c", 3)
	three := []*testNode{n1, n2, n3}

	leader := tc.leader(three)
	tc.waitConfig(three, "n1:v,n2:v,n3:v")
	var initial []Server
	for _, n := range three {
		waitFor(t, 5*time.Second, n.id+" RunBootstrap to return", func() error {
			if done, err := n.bootstrapResult(); !done || err != nil {
				return fmt.Errorf("done=%v err=%v", done, err)
			}
			return nil
		})
		if !n.c.LocalMeta().Bootstrapped {
			t.Fatalf("%s is not marked Bootstrapped", n.id)
		}
		// Every node that called Bootstrap used the same server list.
		for _, call := range n.raft.bootstrapCalls() {
			if initial == nil {
				initial = call
			} else if configString(call) != configString(initial) {
				t.Fatalf("different bootstrap lists: %v vs %v", call, initial)
			}
		}
	}
	if initial == nil {
		t.Fatal("nobody called Bootstrap")
	}
	t.Logf("leader %s; initial configuration %s", leader.id, configString(initial))

	// A fourth fresh node with the same --bootstrap-expect must not
	// bootstrap its own cluster: the leader adds it, as a nonvoter so the
	// voter count stays odd.
	n4 := tc.start("n4", "zone-a", 3)
	four := []*testNode{n1, n2, n3, n4}
	tc.waitConfig(four, "n1:v,n2:v,n3:v,n4:n")
	waitFor(t, 5*time.Second, "n4 RunBootstrap to return", func() error {
		if done, err := n4.bootstrapResult(); !done || err != nil {
			return fmt.Errorf("done=%v err=%v", done, err)
		}
		return nil
	})
	if calls := n4.raft.bootstrapCalls(); len(calls) != 0 {
		t.Fatalf("n4 bootstrapped on its own: %v", calls)
	}
	if !n4.c.LocalMeta().Bootstrapped {
		t.Fatal("n4 is not marked Bootstrapped after being added")
	}

	// Kill a voter that is not the leader. After DeadServerTimeout it is
	// removed, and n4 is promoted to keep three voters.
	var victim *testNode
	var rest []*testNode
	for _, n := range three {
		if n != leader && victim == nil {
			victim = n
		} else {
			rest = append(rest, n)
		}
	}
	rest = append(rest, n4)
	killed := time.Now()
	victim.stop()
	leader = tc.leader(rest)
	waitStatus(t, leader.c, victim.id, StatusFailed, 5*time.Second)
	if m, _ := leader.c.Member(victim.id); time.Since(m.StatusSince) < 500*time.Millisecond {
		servers, err := leader.raft.Servers()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(configString(servers), victim.id+":v") {
			t.Fatalf("%s removed right after failing: %s", victim.id, configString(servers))
		}
	}
	want := []string{}
	for _, n := range rest {
		want = append(want, n.id+":v")
	}
	sort.Strings(want)
	tc.waitConfig(rest, strings.Join(want, ","))
	t.Logf("%s killed; removed and replaced after %s", victim.id, time.Since(killed).Round(time.Millisecond))
	m, ok := leader.c.Member(victim.id)
	if !ok || m.Status != StatusFailed {
		t.Fatalf("leader sees %s as %+v", victim.id, m)
	}
	// Not removed before it had been failed for DeadServerTimeout (the
	// failure may have been seen before the kill on a loaded machine, so
	// measure from the leader's own observation).
	if failedFor := time.Since(m.StatusSince); failedFor < time.Second {
		t.Fatalf("%s removed after being failed for only %s", victim.id, failedFor)
	}
}

func TestBootstrapExpect_MoreNodesThanExpectFormOneCluster(t *testing.T) {
	// Four nodes with --bootstrap-expect 3 start one right after the other.
	// Whichever three agree first form the cluster: every Bootstrap call
	// uses the same list, only listed nodes call it, and the fourth node
	// ends up a nonvoter of that one cluster.
	tc := newTestRaftCluster(t, ReconcileConfig{Interval: 50 * time.Millisecond, DeadServerTimeout: time.Minute})
	var nodes []*testNode
	for _, id := range []string{"n4", "n3", "n1", "n2"} {
		nodes = append(nodes, tc.start(id, "zone-"+id, 3))
	}
	tc.leader(nodes)
	var initial string
	for _, n := range nodes {
		for _, call := range n.raft.bootstrapCalls() {
			got := configString(call)
			if initial == "" {
				initial = got
			} else if got != initial {
				t.Fatalf("two different bootstrap lists: %s and %s", initial, got)
			}
			if !strings.Contains(got, n.id+":v") {
				t.Fatalf("%s bootstrapped with a list without itself: %s", n.id, got)
			}
		}
	}
	if initial == "" {
		t.Fatal("nobody bootstrapped")
	}
	// The initial voters keep their seats; the odd one out is a nonvoter.
	var want []string
	for _, n := range nodes {
		kind := ":n"
		if strings.Contains(initial, n.id+":v") {
			kind = ":v"
		}
		want = append(want, n.id+kind)
	}
	sort.Strings(want)
	tc.waitConfig(nodes, strings.Join(want, ","))
	t.Logf("bootstrapped with %s; final %s", initial, strings.Join(want, ","))
}

func TestBootstrapExpect_WaitsForEnoughServers(t *testing.T) {
	tc := newTestRaftCluster(t, ReconcileConfig{Interval: 50 * time.Millisecond})
	n1 := tc.start("n1", "a", 3)
	n2 := tc.start("n2", "b", 3)
	waitStatus(t, n1.c, "n2", StatusAlive, 5*time.Second)
	waitFor(t, 5*time.Second, "n1 to publish it is waiting", func() error {
		// Both have seen each other; a few bootstrap passes have run.
		if m, _ := n2.c.Member("n1"); m.Expect != 3 {
			return errors.New("n1's Expect not seen yet")
		}
		return nil
	})
	for _, n := range []*testNode{n1, n2} {
		if calls := n.raft.bootstrapCalls(); len(calls) != 0 {
			t.Fatalf("%s bootstrapped with only 2 of 3 servers: %v", n.id, calls)
		}
		if has, _ := n.raft.HasState(); has {
			t.Fatalf("%s has raft state", n.id)
		}
	}
	n3 := tc.start("n3", "c", 3)
	tc.leader([]*testNode{n1, n2, n3})
	tc.waitConfig([]*testNode{n1, n2, n3}, "n1:v,n2:v,n3:v")
}

func TestBootstrapExpect_ConflictingExpectDoesNotBootstrap(t *testing.T) {
	tc := newTestRaftCluster(t, ReconcileConfig{Interval: 50 * time.Millisecond})
	n1 := tc.start("n1", "a", 2)
	n2 := tc.start("n2", "b", 3)
	n3 := tc.start("n3", "c", 3)
	for _, n := range []*testNode{n1, n2, n3} {
		for _, o := range []string{"n1", "n2", "n3"} {
			waitStatus(t, n.c, o, StatusAlive, 5*time.Second)
		}
	}
	// Give the bootstrappers some membership events to react to, then
	// check that nobody has bootstrapped.
	for _, n := range []*testNode{n1, n2, n3} {
		if err := n.c.UpdateMeta(func(m *Meta) { m.Version = "poke" }); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "everyone to see the poke", func() error {
		for _, n := range []*testNode{n1, n2, n3} {
			for _, m := range n.c.Members() {
				if m.Version != "poke" {
					return fmt.Errorf("%s sees %s at %q", n.id, m.ID, m.Version)
				}
			}
		}
		return nil
	})
	for _, n := range []*testNode{n1, n2, n3} {
		if calls := n.raft.bootstrapCalls(); len(calls) != 0 {
			t.Fatalf("%s bootstrapped despite conflicting --bootstrap-expect: %v", n.id, calls)
		}
	}
}
