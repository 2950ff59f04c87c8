package node

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/store"
)

// recorder keeps a copy of the last request a client sent, signature and
// all: what an attacker on the path (or in a proxy's log) gets to replay.
type recorder struct {
	mu   sync.Mutex
	last *http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.last = req.Clone(req.Context())
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// replay sends the recorded request again, byte for byte, to node i. The
// Host header stays the one that was signed, as it would behind a load
// balancer that spreads one endpoint over the nodes.
func (r *recorder) replay(t *testing.T, c *testCluster, i int) (int, string) {
	t.Helper()
	r.mu.Lock()
	orig := r.last
	r.mu.Unlock()
	u := *orig.URL
	u.Host = c.nodes[i].HTTPAddr()
	req, err := http.NewRequestWithContext(ctxT(t), orig.Method, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = orig.Header.Clone()
	req.Host = orig.Host
	if req.Host == "" {
		req.Host = orig.URL.Host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("replay to n%d: %v", i+1, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct{ Code string }
	json.Unmarshal(body, &e)
	return resp.StatusCode, e.Code
}

// restart stops node i and starts it again on the same data dir and
// addresses, joining the others: the node comes back with an empty
// per-node nonce cache and whatever its Raft log and snapshots hold.
func (c *testCluster) restart(i int) {
	c.t.Helper()
	old := c.nodes[i]
	httpAddr, clusterAddr, gossipAddr := old.HTTPAddr(), old.ClusterAddr(), old.GossipAddr()
	old.Stop()
	c.nodes[i] = nil
	var join []string
	for j, n := range c.nodes {
		if n != nil && j != i {
			join = append(join, n.GossipAddr())
		}
	}
	id := old.ID()
	timing := c.opts.timing
	if timing == (store.Timing{}) {
		timing = store.FastTiming()
	}
	n, err := Start(Config{
		NodeID: id, DataDir: c.dirs[i],
		HTTPAddr: httpAddr, ClusterAddr: clusterAddr, GossipAddr: gossipAddr,
		Join: join, BootstrapExpect: len(c.nodes), Zone: old.cfg.Zone,
		RootKey: c.root, Timing: timing, FastGossip: true,
		DeadServerTimeout: time.Hour, MaxStaleness: c.opts.maxStaleness, Clock: c.opts.clock,
		Logger: testLogger(c.t, id),
	})
	if err != nil {
		c.t.Fatalf("restart %s: %v", id, err)
	}
	c.nodes[i] = n
	c.waitHealthy()
}

// The attack of issue 9, point 6: one signed CreateKeyVersion, captured and
// sent again to another node and to the first node after a restart, must
// make exactly one new version; every replay answers SignatureNonceUsed.
func TestCluster_SignedWriteReplayRefusedOnEveryNodeAndAfterRestart(t *testing.T) {
	c := newTestCluster(t, 3)
	for _, tc := range []struct {
		scheme string
		// snapshot: node A takes a Raft snapshot before its restart, so it
		// comes back from the snapshot rather than by replaying its log.
		snapshot bool
	}{
		{client.SignatureV3, false},
		{client.SignatureV1, true},
	} {
		scheme := tc.scheme
		t.Run(scheme, func(t *testing.T) {
			key := c.createKey(0, "replay "+scheme)
			a, b := c.followers()[0], c.leader()
			rec := &recorder{}
			cl, err := client.New(c.nodes[a].Endpoint(), c.creds.AccessKeyID, c.creds.AccessKeySecret,
				client.WithSignatureVersion(scheme), client.WithHTTPClient(&http.Client{Transport: rec}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Call(ctxT(t), "CreateKeyVersion", map[string]string{"KeyId": key}); err != nil {
				t.Fatalf("signed CreateKeyVersion on n%d: %v", a+1, err)
			}
			versions := func(i int) int {
				m := c.mustCall(i, "ListKeyVersions", map[string]string{"KeyId": key}, client.WithHeader("X-Kms-Read-Consistency", "linearizable"))
				return int(m["TotalCount"].(float64))
			}
			if n := versions(a); n != 2 {
				t.Fatalf("versions after the write = %d, want 2", n)
			}

			for _, target := range []struct {
				name string
				node int
			}{{"another node", b}, {"the same node", a}} {
				status, code := rec.replay(t, c, target.node)
				if status != http.StatusBadRequest || code != "SignatureNonceUsed" {
					t.Fatalf("replay to %s (n%d): %d %s, want 400 SignatureNonceUsed", target.name, target.node+1, status, code)
				}
			}

			if tc.snapshot {
				if err := c.nodes[a].Store().Snapshot(); err != nil {
					t.Fatalf("snapshot on n%d: %v", a+1, err)
				}
			}
			c.restart(a)
			// From its snapshot, or from its log once the leader tells it
			// what is committed.
			waitFor(t, "the restarted node to rebuild its nonce table", 10*time.Second, func() bool {
				return c.nodes[a].FSM().NonceCount() > 0
			})
			status, code := rec.replay(t, c, a)
			if status != http.StatusBadRequest || code != "SignatureNonceUsed" {
				t.Fatalf("replay to n%d after its restart: %d %s, want 400 SignatureNonceUsed", a+1, status, code)
			}
			for i := range c.nodes {
				if n := versions(i); n != 2 {
					t.Fatalf("n%d: versions after the replays = %d, want 2", i+1, n)
				}
			}
			// Every replica, the restarted one included, holds the same
			// catalogue and the same nonce table.
			waitFor(t, "replicas to agree", 10*time.Second, func() bool {
				h0, i0 := c.nodes[0].FSM().Hash()
				n0 := c.nodes[0].FSM().NonceCount()
				for _, n := range c.nodes[1:] {
					if h, i := n.FSM().Hash(); h != h0 || i != i0 || n.FSM().NonceCount() != n0 {
						return false
					}
				}
				return n0 > 0
			})
		})
	}
}
