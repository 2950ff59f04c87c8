package node

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/cluster"
	"github.com/raftkms/raftkms/store"
)

// errorLines collects the [ERROR] lines of every node while recording.
type errorLines struct {
	mu        sync.Mutex
	recording bool
	lines     []string
}

func (e *errorLines) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.recording {
		for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
			if strings.Contains(l, "[ERROR]") {
				e.lines = append(e.lines, l)
			}
		}
	}
	return len(p), nil
}

func (e *errorLines) start() {
	e.mu.Lock()
	e.recording, e.lines = true, nil
	e.mu.Unlock()
}

func (e *errorLines) stop() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recording = false
	return slices.Clone(e.lines)
}

// raftIDs is node i's view of the Raft configuration: id -> voter.
func (c *testCluster) raftIDs(i int) map[string]bool {
	c.t.Helper()
	servers, err := c.nodes[i].Store().Servers()
	if err != nil {
		return nil
	}
	out := make(map[string]bool, len(servers))
	for _, s := range servers {
		out[s.ID] = s.Voter
	}
	return out
}

// live lists the indexes of the nodes still running.
func (c *testCluster) live() []int {
	var out []int
	for i, n := range c.nodes {
		if n != nil {
			out = append(out, i)
		}
	}
	return out
}

// Graceful leave: a node stopped with Stop (kmsd on SIGTERM) is out of the
// Raft configuration of every survivor within a few seconds — the test
// cluster's DeadServerTimeout is an hour, so only the graceful path can do
// it — and no node, the stopping one included, logs an [ERROR] line while it
// goes: not the leader's failed heartbeats to a gone peer, not the stopping
// node's own shutdown.
func TestLeave_StoppedNodeLeavesRaftAtOnceWithoutErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes int
		pick  func(c *testCluster) int
	}{
		{"follower of three", 3, func(c *testCluster) int { return c.followers()[0] }},
		{"leader of three", 3, func(c *testCluster) int { return c.leader() }},
		{"follower of five", 5, func(c *testCluster) int { return c.followers()[1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &errorLines{}
			// The default Raft timeouts, not the fast ones: the check is
			// that a leave logs no [ERROR], and under `go test -race` on
			// two loaded cores the fast 400 ms heartbeat timeout lets
			// elections happen that have nothing to do with the leave — a
			// leader elected while the removal was still uncommitted
			// replicates to the gone node and logs its EOF.
			c := newTestCluster(t, tc.nodes, clusterOpts{logs: rec, timing: store.DefaultTiming()})
			c.createKey(0, "before the leave")
			victim := tc.pick(c)
			id := c.nodes[victim].ID()

			rec.start()
			c.nodes[victim].Stop()
			c.nodes[victim] = nil
			survivors := c.live()
			waitFor(t, id+" out of every survivor's raft configuration", 5*time.Second, func() bool {
				for _, i := range survivors {
					if _, in := c.raftIDs(i)[id]; in {
						return false
					}
				}
				return true
			})
			// The survivors go on: writes through each commit, and every
			// survivor records the member as left (not failed).
			for _, i := range survivors {
				c.createKey(i, fmt.Sprintf("after the leave, through n%d", i+1))
			}
			waitFor(t, id+" seen as left by every survivor", 5*time.Second, func() bool {
				for _, i := range survivors {
					m, ok := c.nodes[i].Gossip().Member(id)
					if !ok || m.Status != cluster.StatusLeft {
						return false
					}
				}
				return true
			})
			c.waitHealthy()
			if lines := rec.stop(); len(lines) > 0 {
				t.Fatalf("%d [ERROR] lines while %s left:\n%s", len(lines), id, strings.Join(lines, "\n"))
			}
			// The reconciler's rules still hold: an odd number of voters.
			waitFor(t, "an odd number of voters after the leave", 5*time.Second, func() bool {
				voters := 0
				for _, v := range c.raftIDs(c.leader()) {
					if v {
						voters++
					}
				}
				return voters%2 == 1
			})
		})
	}
}

// A node that left gracefully and starts again on its data dir is added
// back by the leader (it gossips without the leaving flag), catches up on
// what was written meanwhile and serves it.
func TestLeave_RestartedNodeRejoinsAsVoter(t *testing.T) {
	c := newTestCluster(t, 3)
	before := c.createKey(0, "before the leave")
	victim := c.followers()[0]
	id := c.nodes[victim].ID()
	c.nodes[victim].Stop()
	c.nodes[victim] = nil
	l := c.leader()
	waitFor(t, id+" out of the raft configuration", 5*time.Second, func() bool {
		_, in := c.raftIDs(l)[id]
		return !in
	})
	during := c.createKey(l, "while it was away")

	c.start(victim, 3, []string{c.nodes[l].GossipAddr()})
	waitFor(t, id+" back in the raft configuration as a voter, with three voters", 20*time.Second, func() bool {
		l := c.leader()
		ids := c.raftIDs(l)
		voters := 0
		for _, v := range ids {
			if v {
				voters++
			}
		}
		return ids[id] && voters == 3
	})
	c.waitHealthy()
	// A new API address (port 0): a new client.
	cl, err := client.New(c.nodes[victim].Endpoint(), c.creds.AccessKeyID, c.creds.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	c.clients[victim] = cl
	for _, key := range []string{before, during} {
		if _, _, err := c.call(victim, "DescribeKey", map[string]string{"KeyId": key}); err != nil {
			t.Fatalf("DescribeKey %s on the rejoined %s: %v", key, id, err)
		}
	}
	// And the cluster still commits through it.
	c.createKey(victim, "through the rejoined node")
}

// The whole cluster stopped at once (SIGTERM to every kmsd, as a host
// shutdown or `docker compose down` does): no node can be taken out of the
// configuration without costing the others their quorum, so each stops as a
// member — and the last leader standing must not log its failed heartbeats
// to peers that announced they were stopping as errors. The stop takes no
// longer than one leave timeout.
func TestLeave_WholeClusterStoppedAtOnceLogsNoErrors(t *testing.T) {
	for _, n := range []int{3, 4} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			rec := &errorLines{}
			c := newTestCluster(t, n, clusterOpts{logs: rec, timing: store.DefaultTiming()})
			c.createKey(0, "before the stop")
			rec.start()
			start := time.Now()
			var wg sync.WaitGroup
			for i := range c.nodes {
				wg.Add(1)
				go func(nd *Node) {
					defer wg.Done()
					nd.Stop()
				}(c.nodes[i])
			}
			wg.Wait()
			took := time.Since(start)
			for i := range c.nodes {
				c.nodes[i] = nil
			}
			if lines := rec.stop(); len(lines) > 0 {
				t.Fatalf("%d [ERROR] lines while the whole cluster stopped:\n%s", len(lines), strings.Join(lines, "\n"))
			}
			if took > leaveTimeout+5*time.Second {
				t.Fatalf("stopping the whole cluster took %s", took)
			}
		})
	}
}
