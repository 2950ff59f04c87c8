package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// listFSM records every applied entry, so replicas can be compared.
type listFSM struct {
	mu      sync.Mutex
	entries [][]byte
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, bytes.Clone(l.Data))
	return len(f.entries)
}

func (f *listFSM) state() (n int, digest [32]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := sha256.New()
	for _, e := range f.entries {
		h.Write(e)
		h.Write([]byte{0})
	}
	copy(digest[:], h.Sum(nil))
	return len(f.entries), digest
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) { return noSnapshot{}, nil }
func (f *listFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type noSnapshot struct{}

func (noSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (noSnapshot) Release()                             {}

type raftNode struct {
	tr   *Transport
	raft *raft.Raft
	fsm  *listFSM
}

// newRaftCluster starts n raft nodes, each over its own Transport's
// StreamLayer, bootstrapped as one group. mod adjusts node i's Config.
func newRaftCluster(t *testing.T, n int, mod func(i int, c *Config)) []*raftNode {
	t.Helper()
	nodes := make([]*raftNode, n)
	var servers []raft.Server
	for i := range nodes {
		tr := newTestTransport(t, func(c *Config) {
			if mod != nil {
				mod(i, c)
			}
		})
		tr.Handle("echo", echo)
		nodes[i] = &raftNode{tr: tr, fsm: &listFSM{}}
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprint("node", i)), Address: raft.ServerAddress(tr.Addr())})
	}
	for i, nd := range nodes {
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		conf.HeartbeatTimeout = 200 * time.Millisecond
		conf.ElectionTimeout = 200 * time.Millisecond
		conf.LeaderLeaseTimeout = 100 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		conf.Logger = testLogger(string(conf.LocalID))
		nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  nd.tr.StreamLayer(),
			MaxPool: 3,
			Timeout: 2 * time.Second,
			Logger:  testLogger("raft-net"),
		})
		store := raft.NewInmemStore()
		r, err := raft.NewRaft(conf, nd.fsm, store, store, raft.NewInmemSnapshotStore(), nt)
		if err != nil {
			t.Fatalf("NewRaft: %v", err)
		}
		nd.raft = r
		// Runs before the transport's cleanup (LIFO): raft first, then the port.
		t.Cleanup(func() {
			if err := r.Shutdown().Error(); err != nil {
				t.Errorf("raft shutdown: %v", err)
			}
		})
	}
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return nodes
}

func waitForLeader(t *testing.T, nodes []*raftNode) *raftNode {
	t.Helper()
	var leader *raftNode
	waitFor(t, 15*time.Second, "a leader that every node agrees on", func() bool {
		leader = nil
		for _, nd := range nodes {
			if nd.raft.State() == raft.Leader {
				leader = nd
			}
		}
		if leader == nil {
			return false
		}
		for _, nd := range nodes {
			if addr, _ := nd.raft.LeaderWithID(); string(addr) != leader.tr.Addr() {
				return false
			}
		}
		return true
	})
	return leader
}

// applyAndCompare applies count entries through the leader (following
// leadership changes) and waits until every replica holds the same log.
func applyAndCompare(t *testing.T, nodes []*raftNode, count int) {
	t.Helper()
	for i := range count {
		entry := fmt.Appendf(nil, "entry-%03d", i)
		waitFor(t, 15*time.Second, fmt.Sprintf("entry %d to commit", i), func() bool {
			leader := waitForLeader(t, nodes)
			err := leader.raft.Apply(entry, 2*time.Second).Error()
			if err != nil && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) {
				t.Fatalf("apply: %v", err)
			}
			return err == nil
		})
	}
	waitFor(t, 15*time.Second, "replicas to converge", func() bool {
		n0, d0 := nodes[0].fsm.state()
		for _, nd := range nodes[1:] {
			if n, d := nd.fsm.state(); n != n0 || d != d0 {
				return false
			}
		}
		return n0 >= count
	})
}

// TestRaftCluster_OverStreamLayer runs a real 3-node hashicorp/raft group over
// the transport's StreamLayer, with RPC traffic on the same ports.
func TestRaftCluster_OverStreamLayer(t *testing.T) {
	nodes := newRaftCluster(t, 3, nil)
	leader := waitForLeader(t, nodes)
	applyAndCompare(t, nodes, 20)

	// The same port still answers RPC: the mux keeps both protocols apart.
	for _, nd := range nodes {
		got, err := nd.tr.Call(context.Background(), leader.tr.Addr(), "echo", []byte("via rpc"))
		if err != nil || string(got) != "via rpc" {
			t.Fatalf("RPC to leader from %s: %q, %v", nd.tr.Addr(), got, err)
		}
	}
}
