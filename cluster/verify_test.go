package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// errWrongKey stands for the node's cluster-port check failing with
// transport.ErrPeerAuth.
var errWrongKey = errors.New("cluster authentication failed")

// keyCheck is a VerifyPeer for node self in a world where the nodes in
// wrong hold another root key: two nodes pass each other's check only if
// both or neither are in wrong.
func keyCheck(self string, wrong map[string]bool) nodeOpt {
	return func(c *Config) {
		c.VerifyPeer = func(ctx context.Context, id, addr string) error {
			if addr != "raft-"+id {
				return fmt.Errorf("unexpected address %q for %s", addr, id)
			}
			if wrong[self] != wrong[id] {
				return errWrongKey
			}
			return nil
		}
	}
}

type observed struct {
	reg  *prometheus.Registry
	logs *logBuffer
}

func observe(o *observed) nodeOpt {
	o.reg, o.logs = prometheus.NewRegistry(), &logBuffer{}
	return func(c *Config) {
		c.Metrics = o.reg
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: c.Meta.ID, Level: hclog.Debug, Output: o.logs})
	}
}

func (o *observed) refusals(t *testing.T) float64 {
	return counterValue(t, o.reg, "kms_cluster_peer_verify_failures_total", nil)
}

// refusalLines counts the warnings about member id failing the check.
func (o *observed) refusalLines(id string) int {
	n := 0
	for _, line := range strings.Split(o.logs.String(), "\n") {
		if strings.Contains(line, "[WARN]") && strings.Contains(line, "failed the cluster port check") && strings.Contains(line, "id="+id) {
			n++
		}
	}
	return n
}

// A member that gossip shows alive but whose cluster port does not prove
// the cluster key is never added to Raft, and the leader says so once (each
// node that leads, once, even when leadership moves and comes back).
func TestReconciler_MemberFailingPeerCheckIsNeverAdded(t *testing.T) {
	wrong := map[string]bool{"n4": true}
	tc := newTestRaftCluster(t, ReconcileConfig{Interval: 50 * time.Millisecond, DeadServerTimeout: time.Minute})
	obs := map[string]*observed{}
	var nodes []*testNode
	for _, id := range []string{"n1", "n2", "n3"} {
		obs[id] = &observed{}
		nodes = append(nodes, tc.start(id, "zone-"+id, 3, keyCheck(id, wrong), observe(obs[id])))
	}
	tc.waitConfig(nodes, "n1:v,n2:v,n3:v")
	bad := tc.start("n4", "zone-n4", 0, keyCheck("n4", wrong))
	leader := tc.leader(nodes)
	waitStatus(t, leader.c, "n4", StatusAlive, 10*time.Second)
	// Bounded by conditions, not by time: the leaders (an election under
	// load may move leadership) have refused n4 on several passes after
	// seeing it alive.
	waitFor(t, 10*time.Second, "the leader to refuse n4 on several passes", func() error {
		total := 0.0
		for _, o := range obs {
			total += o.refusals(t)
		}
		if total < 5 {
			return fmt.Errorf("%v refusals", total)
		}
		return nil
	})
	leader = tc.leader(nodes)
	servers, err := leader.raft.Servers()
	if err != nil {
		t.Fatal(err)
	}
	if got := configString(servers); got != "n1:v,n2:v,n3:v" {
		t.Fatalf("configuration %s; n4 must never enter it", got)
	}
	// Each node that led says so once, however often leadership moved.
	logged := 0
	for id, o := range obs {
		n := o.refusalLines("n4")
		if n > 1 {
			t.Fatalf("%s logged the refusal of n4 %d times, want once:\n%s", id, n, o.logs.String())
		}
		logged += n
	}
	if logged == 0 {
		t.Fatal("no leader logged the refusal of n4")
	}
	if has, _ := bad.raft.HasState(); has {
		t.Fatal("n4 received Raft state")
	}
}

// bootstrap-expect never lists a server that fails the check, even one that
// would otherwise be chosen first (lowest id).
func TestBootstrapExpect_ServerFailingPeerCheckIsNotListed(t *testing.T) {
	wrong := map[string]bool{"n0": true}
	tc := newTestRaftCluster(t, ReconcileConfig{Interval: 50 * time.Millisecond, DeadServerTimeout: time.Minute})
	obs := map[string]*observed{}
	var good []*testNode
	bad := tc.start("n0", "zone-n0", 3, keyCheck("n0", wrong))
	for _, id := range []string{"n1", "n2", "n3"} {
		obs[id] = &observed{}
		good = append(good, tc.start(id, "zone-"+id, 3, keyCheck(id, wrong), observe(obs[id])))
	}
	leader := tc.leader(good)
	tc.waitConfig(good, "n1:v,n2:v,n3:v")
	waitFor(t, 10*time.Second, "the leader's reconciler to refuse n0 too", func() error {
		if n := obs[leader.id].refusals(t); n < 5 {
			return fmt.Errorf("%v refusals", n)
		}
		return nil
	})
	for _, n := range append(good, bad) {
		for _, call := range n.raft.bootstrapCalls() {
			if got := configString(call); got != "n1:v,n2:v,n3:v" {
				t.Fatalf("%s bootstrapped with %s", n.id, got)
			}
		}
	}
	if calls := bad.raft.bootstrapCalls(); len(calls) != 0 {
		t.Fatalf("n0 bootstrapped: %v", calls)
	}
	servers, _ := leader.raft.Servers()
	if got := configString(servers); got != "n1:v,n2:v,n3:v" {
		t.Fatalf("configuration %s", got)
	}
}
