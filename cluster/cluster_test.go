package cluster

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// threeNodes starts c, a, b in that order with join lists naming all three;
// c starts alone and must have failed to join at least once before the
// others start. It waits until every node sees all three alive.
func threeNodes(t *testing.T, opts ...nodeOpt) []*Cluster {
	t.Helper()
	addrs := freeAddrs(t, 3)
	ids := []string{"a", "b", "c"}
	zones := []string{"zone-a", "zone-b", "zone-c"}
	nodes := make([]*Cluster, 3)
	for _, i := range []int{2, 0, 1} {
		reg := prometheus.NewRegistry()
		nodes[i] = newTestNodeAt(t, addrs, i, ids[i], zones[i], append([]nodeOpt{withRegistry(reg)}, opts...)...)
		if i == 2 {
			waitFor(t, 5*time.Second, "c's first failed join attempt", func() error {
				if counterValue(t, reg, "kms_cluster_join_attempts_total", map[string]string{"result": "error"}) < 1 {
					return errors.New("no failed attempt yet")
				}
				return nil
			})
		}
	}
	for _, n := range nodes {
		for _, id := range ids {
			waitStatus(t, n, id, StatusAlive, 5*time.Second)
		}
	}
	return nodes
}

func TestCluster_ThreeNodesJoinInAnyOrder(t *testing.T) {
	nodes := threeNodes(t)
	for _, n := range nodes {
		members := n.Members()
		if len(members) != 3 {
			t.Fatalf("%s sees %d members", n.id, len(members))
		}
		for i, m := range members {
			want := nodes[i]
			if m.ID != want.id || m.Status != StatusAlive {
				t.Fatalf("%s: member %d = %s %s", n.id, i, m.ID, m.Status)
			}
			if m.Zone != "zone-"+m.ID || m.Region != "test-1" ||
				m.ClusterAddr != "raft-"+m.ID || m.HTTPAddr != "http-"+m.ID {
				t.Fatalf("%s sees wrong meta for %s: %+v", n.id, m.ID, m.Meta)
			}
			if m.GossipAddr != want.Addr() {
				t.Fatalf("%s sees %s at %s, want %s", n.id, m.ID, m.GossipAddr, want.Addr())
			}
		}
	}
	if got := nodes[0].AliveWith(func(m Member) bool { return m.Zone == "zone-b" }); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("AliveWith(zone-b) = %+v", got)
	}
}

func TestCluster_ShutdownWithoutLeaveIsFailed_LeaveIsLeft(t *testing.T) {
	nodes := threeNodes(t)
	a, b, c := nodes[0], nodes[1], nodes[2]

	start := time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, "c", StatusFailed, 3*time.Second)
	waitStatus(t, b, "c", StatusFailed, 3*time.Second)
	t.Logf("failure detected in %s", time.Since(start).Round(time.Millisecond))

	if err := b.Leave(time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitStatus(t, a, "b", StatusLeft, 3*time.Second)

	// Failed and left members are kept, with their status.
	got := map[string]string{}
	for _, m := range a.Members() {
		got[m.ID] = m.Status
	}
	want := map[string]string{"a": StatusAlive, "b": StatusLeft, "c": StatusFailed}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("a.Members statuses = %v, want %v", got, want)
	}
	if m, _ := a.Member("c"); m.StatusSince.Before(start) {
		t.Fatalf("StatusSince %v predates the shutdown at %v", m.StatusSince, start)
	}
	if alive := a.AliveWith(nil); len(alive) != 1 || alive[0].ID != "a" {
		t.Fatalf("AliveWith(nil) = %v", alive)
	}
}

func TestCluster_UpdateMetaPropagates(t *testing.T) {
	nodes := threeNodes(t)
	a, c := nodes[0], nodes[2]
	changed, cancel := c.Subscribe()
	defer cancel()

	hsm := []HSMDomain{{Domain: "luna-1", Health: HSMHealthOK, CheckValue: "abc123"}}
	if err := a.UpdateMeta(func(m *Meta) { m.Version = "v2"; m.HSM = hsm }); err != nil {
		t.Fatal(err)
	}
	if got := a.LocalMeta(); got.Version != "v2" || !reflect.DeepEqual(got.HSM, hsm) {
		t.Fatalf("LocalMeta = %+v", got)
	}
	for _, n := range nodes {
		waitFor(t, 3*time.Second, n.id+" to see a's new meta", func() error {
			m, _ := n.Member("a")
			if m.Version != "v2" || !reflect.DeepEqual(m.HSM, hsm) {
				return fmt.Errorf("a is %+v", m.Meta)
			}
			return nil
		})
	}
	select {
	case <-changed:
	default:
		t.Fatal("subscriber was not notified of the metadata change")
	}
	routed := c.AliveWith(func(m Member) bool {
		for _, d := range m.HSM {
			if d.Domain == "luna-1" && d.Health == HSMHealthOK {
				return true
			}
		}
		return false
	})
	if len(routed) != 1 || routed[0].ID != "a" {
		t.Fatalf("AliveWith(luna-1 ok) = %+v", routed)
	}

	if err := a.UpdateMeta(func(m *Meta) { m.ID = "other" }); err == nil {
		t.Fatal("UpdateMeta changing ID succeeded")
	}
}

func TestCluster_EncryptedGossip(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	nodes := threeNodes(t, withKey(key))
	// A node with another key cannot join.
	other := newTestNode(t, "x", "zone-x", withKey([]byte("fedcba9876543210fedcba9876543210")), withJoin(nodes[0].Addr()))
	if _, err := other.ml.Join([]string{nodes[0].Addr()}); err == nil {
		t.Fatal("join with the wrong gossip key succeeded")
	}
	if s := statusOf(nodes[0], "x"); s != "" {
		t.Fatalf("node with the wrong key is known as %q", s)
	}
}

func TestCluster_SubscribeCoalesces(t *testing.T) {
	n := newTestNode(t, "solo", "z")
	ch, cancel := n.Subscribe()
	for i := 0; i < 5; i++ {
		if err := n.UpdateMeta(func(m *Meta) { m.Version = fmt.Sprint(i) }); err != nil {
			t.Fatal(err)
		}
	}
	<-ch
	select {
	case <-ch:
		t.Fatal("notifications were not coalesced")
	default:
	}
	cancel()
	cancel() // idempotent
	if err := n.UpdateMeta(func(m *Meta) { m.Version = "x" }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("notified after cancel")
	default:
	}
}

func TestCluster_AfterShutdown(t *testing.T) {
	n := newTestNode(t, "solo", "z")
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := n.UpdateMeta(func(*Meta) {}); !errors.Is(err, ErrShutdown) {
		t.Fatalf("UpdateMeta after Shutdown: %v", err)
	}
	if err := n.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Leave after Shutdown: %v", err)
	}
}

func TestNew_Validates(t *testing.T) {
	if _, err := New(Config{BindAddr: "127.0.0.1:0"}); err == nil {
		t.Fatal("New without ID succeeded")
	}
	if _, err := New(Config{BindAddr: "nonsense", Meta: Meta{ID: "a"}}); err == nil {
		t.Fatal("New with a bad BindAddr succeeded")
	}
}
