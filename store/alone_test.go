package store

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// slowElectionTiming has a heartbeat timeout far longer than the waits
// below: a node that leads within them did not wait for it.
func slowElectionTiming() Timing {
	return Timing{HeartbeatTimeout: time.Minute, ElectionTimeout: time.Minute, LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout: time.Minute, CommitNudgeDelay: 2 * time.Millisecond}
}

// A node that is the only voter of its configuration campaigns at once,
// when it bootstraps and when it starts again from its state: nobody else
// could lead, so waiting a heartbeat timeout (1–2 × --raft-timeout) first
// only delayed every dev node's start and every single-node restart.
func TestSingleVoter_LeadsWithoutWaitingForTheHeartbeatTimeout(t *testing.T) {
	// Leads within 5 s of its bootstrap, a twelfth of the timeout.
	n, before := stoppedSoloWithState(t, slowElectionTiming())
	again := openNodeTiming(t, "solo", n.dir, slowElectionTiming())
	defer again.stop()
	assertStateKept(t, again, before) // leads within 5 s of its restart
	// The heartbeat timeout is the configured one again.
	if got := again.store.raft.ReloadableConfig().HeartbeatTimeout; got != time.Minute {
		t.Fatalf("heartbeat timeout after the early election: %v", got)
	}
}

// A new cluster's first voter (the smallest id of the bootstrap list)
// campaigns as soon as it has bootstrapped; the others keep Raft's wait, so
// the first election is not split.
func TestBootstrap_FirstVoterCampaignsAtOnce(t *testing.T) {
	c := newTestClusterTiming(t, 3, slowElectionTiming())
	// Within 5 s, a twelfth of the heartbeat timeout.
	waitFor(t, "a leader", 5*time.Second, func() bool { return c.nodes[0].store.IsLeader() })
	if _, err := c.nodes[2].store.Propose(ctxT(t), initCmd(t)); err != nil {
		t.Fatal(err)
	}
}

// A first voter that bootstraps after the others have elected a leader
// campaigns at once too, but members that know the leader refuse it (Raft
// refuses a pre-vote, and a vote, to another candidate while it knows a
// leader): the leader and its term stay.
func TestBootstrap_LateFirstVoterDoesNotDisturbTheLeader(t *testing.T) {
	timing := DefaultTiming() // elections of 1–2 s: no spurious one on a busy machine
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lateAddr := l.Addr().String() // the late voter's address, free again
	l.Close()
	b := openNodeTiming(t, "b", t.TempDir(), timing)
	defer b.stop()
	c := openNodeTiming(t, "c", t.TempDir(), timing)
	defer c.stop()
	servers := []Server{{ID: "a", Addr: lateAddr, Voter: true}, {ID: "b", Addr: b.store.Addr(), Voter: true}, {ID: "c", Addr: c.store.Addr(), Voter: true}}
	for _, n := range []*testNode{b, c} {
		if err := n.store.Bootstrap(servers); err != nil {
			t.Fatal(err)
		}
	}
	var leader *testNode
	waitFor(t, "a leader among b and c", 10*time.Second, func() bool {
		for _, n := range []*testNode{b, c} {
			if n.store.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	term := leader.store.raft.CurrentTerm()

	a := openNodeAt(t, "a", t.TempDir(), lateAddr, timing)
	defer a.stop()
	if err := a.store.Bootstrap(servers); err != nil {
		t.Fatal(err)
	}
	// a learns of the leader through its replication (a has the
	// configuration's first entry then).
	waitFor(t, "a follows the leader", 10*time.Second, func() bool {
		_, id := a.store.Leader()
		return id == leader.id && a.store.raft.AppliedIndex() >= 1
	})
	if _, err := leader.store.Propose(ctxT(t), initCmd(t)); err != nil {
		t.Fatal(err)
	}
	if !leader.store.IsLeader() || leader.store.raft.CurrentTerm() != term {
		t.Fatalf("the leader changed: %s leads %v, term %d → %d", leader.id, leader.store.IsLeader(), term, leader.store.raft.CurrentTerm())
	}
}

// Only the sole voter of a configuration campaigns early: a member of a
// larger one keeps Raft's wait (campaigning at once there would disrupt a
// leader it has not heard from yet), and a non-voter never campaigns.
func TestOnlyVoter(t *testing.T) {
	v := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter} }
	nv := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Nonvoter} }
	for _, tc := range []struct {
		servers []raft.Server
		want    bool
	}{
		{nil, false},
		{[]raft.Server{v("a")}, true},
		{[]raft.Server{v("a"), nv("b"), nv("c")}, true},
		{[]raft.Server{v("b")}, false},
		{[]raft.Server{nv("a"), v("b")}, false},
		{[]raft.Server{v("a"), v("b")}, false},
		{[]raft.Server{v("a"), v("b"), v("c")}, false},
		{[]raft.Server{nv("a")}, false},
	} {
		if got := onlyVoter(tc.servers, "a"); got != tc.want {
			t.Errorf("onlyVoter(%v, a) = %v", tc.servers, got)
		}
	}
}

// Only the voter with the smallest id of a bootstrap list campaigns right
// after the bootstrap.
func TestFirstVoter(t *testing.T) {
	v := func(id string) Server { return Server{ID: id, Voter: true} }
	nv := func(id string) Server { return Server{ID: id} }
	for _, tc := range []struct {
		servers []Server
		want    bool
	}{
		{nil, false},
		{[]Server{v("b")}, true},
		{[]Server{v("c"), v("b"), v("d")}, true},
		{[]Server{v("a"), v("b"), v("c")}, false},
		{[]Server{nv("a"), v("b"), v("c")}, true},
		{[]Server{nv("b"), v("c")}, false},
		{[]Server{v("c"), v("d")}, false},
	} {
		if got := firstVoter(tc.servers, "b"); got != tc.want {
			t.Errorf("firstVoter(%v, b) = %v", tc.servers, got)
		}
	}
}
