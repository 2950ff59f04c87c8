package node

import (
	"github.com/raftkms/raftkms/internal/testutil"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
)

// testCluster is n real nodes in one process: real Raft logs on disk, real
// sockets on loopback, gossip with bootstrap-expect, short timers.
type testCluster struct {
	t       *testing.T
	root    *kcrypto.RootKey
	nodes   []*Node
	dirs    []string
	creds   kms.InitResult
	clients []*client.Client
	opts    clusterOpts
	// snapTicks[i] drives node i's automatic snapshots (opts.snapshots).
	snapTicks []chan time.Time
}

type clusterOpts struct {
	maxStaleness time.Duration
	timing       store.Timing     // default store.FastTiming()
	clock        func() time.Time // the service clock; default time.Now
	logs         io.Writer        // also receives every node's log lines (warn and above)
	instance     bool             // serve the instance API on a free loopback port
	regions      []string         // node i's --region is regions[i] when set (default "local")
	// snapshots runs the automatic snapshot loop on every node, into
	// <data dir>/autosnap, driven by the test (testCluster.snapTicks).
	snapshots bool
	maxFrame  int // node.Config.ClusterMaxFrame
}

func testLogger(t *testing.T, name string) hclog.Logger {
	return testLoggerTap(t, name, nil)
}

// testLoggerTap is testLogger whose lines also go to tap (when not nil).
func testLoggerTap(t *testing.T, name string, tap io.Writer) hclog.Logger {
	level := hclog.Warn
	if os.Getenv("RAFTKMS_TEST_LOG") != "" {
		level = hclog.Debug
	}
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	var out io.Writer = w
	if tap != nil {
		out = io.MultiWriter(w, tap)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: out})
}

// nodeLogger is node id's logger: the test log, plus opts.logs when set.
func (c *testCluster) nodeLogger(id string) hclog.Logger {
	return testLoggerTap(c.t, id, c.opts.logs)
}

// testWriter sends node logs to the test log, so they show only on failure.
// Libraries leave goroutines behind that may log after a node stopped
// (memberlist's indirect ping does); once the test's cleanups have run,
// their lines are dropped, since calling t.Log after the test has ended
// races with the testing package marking it done.
type testWriter struct {
	t      *testing.T
	mu     sync.Mutex
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func newTestCluster(t *testing.T, n int, opts ...clusterOpts) *testCluster {
	t.Helper()
	raw := make([]byte, kcrypto.RootKeySize)
	for i := range raw {
		raw[i] = byte(i*7 + 1)
	}
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, root: root}
	if len(opts) > 0 {
		c.opts = opts[0]
	}
	for i := 0; i < n; i++ {
		c.dirs = append(c.dirs, t.TempDir())
	}
	var first string
	for i := 0; i < n; i++ {
		var join []string
		if first != "" {
			join = []string{first}
		}
		node := c.start(i, n, join)
		if i == 0 {
			first = node.GossipAddr()
		}
	}
	t.Cleanup(func() {
		for _, node := range c.nodes {
			if node != nil {
				node.Kill()
			}
		}
	})
	c.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.nodes[0].Service().Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.creds = res
	for _, node := range c.nodes {
		cl, err := client.New(node.Endpoint(), res.AccessKeyID, res.AccessKeySecret)
		if err != nil {
			t.Fatal(err)
		}
		c.clients = append(c.clients, cl)
	}
	return c
}

func (c *testCluster) start(i, expect int, join []string) *Node {
	c.t.Helper()
	id := fmt.Sprintf("n%d", i+1)
	timing := c.opts.timing
	if timing == (store.Timing{}) {
		timing = store.FastTiming()
	}
	instanceAddr := ""
	if c.opts.instance {
		instanceAddr = "127.0.0.1:0"
	}
	region := ""
	if i < len(c.opts.regions) {
		region = c.opts.regions[i]
	}
	var ticks chan time.Time
	snapDir := ""
	if c.opts.snapshots {
		for len(c.snapTicks) <= i {
			c.snapTicks = append(c.snapTicks, make(chan time.Time))
		}
		ticks, snapDir = c.snapTicks[i], filepath.Join(c.dirs[i], "autosnap")
	}
	node, err := Start(Config{
		SnapshotTicks: ticks, SnapshotDir: snapDir, SnapshotRetain: 3,
		NodeID: id, DataDir: c.dirs[i], InstanceAddr: instanceAddr, Region: region,
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Join: join, BootstrapExpect: expect, Zone: fmt.Sprintf("zone-%d", i%3),
		RootKey: c.root, Timing: timing, FastGossip: true, ClusterMaxFrame: c.opts.maxFrame,
		DeadServerTimeout: time.Hour, MaxStaleness: c.opts.maxStaleness, Clock: c.opts.clock,
		Logger: c.nodeLogger(id),
	})
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	if i < len(c.nodes) {
		c.nodes[i] = node
	} else {
		c.nodes = append(c.nodes, node)
	}
	return node
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, timeout, cond)
}

func (c *testCluster) waitHealthy() {
	c.t.Helper()
	waitFor(c.t, "every node to see a leader and catch up", 20*time.Second, func() bool {
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			if _, id := n.Store().Leader(); id == "" || !n.Store().CaughtUp() {
				return false
			}
		}
		return true
	})
}

func (c *testCluster) leader() int {
	c.t.Helper()
	idx := -1
	waitFor(c.t, "a leader", 20*time.Second, func() bool {
		for i, n := range c.nodes {
			if n != nil && n.Store().IsLeader() {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

// followers returns the indexes of live nodes that are not the leader.
func (c *testCluster) followers() []int {
	l := c.leader()
	var out []int
	for i, n := range c.nodes {
		if n != nil && i != l {
			out = append(out, i)
		}
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// call sends an action to node i and decodes the JSON answer.
func (c *testCluster) call(i int, action string, params map[string]string, opts ...client.CallOption) (map[string]any, *client.Response, error) {
	resp, err := c.clients[i].Call(ctxT(c.t), action, params, opts...)
	if err != nil {
		return nil, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		return nil, resp, err
	}
	return m, resp, nil
}

func (c *testCluster) mustCall(i int, action string, params map[string]string, opts ...client.CallOption) map[string]any {
	c.t.Helper()
	m, _, err := c.call(i, action, params, opts...)
	if err != nil {
		c.t.Fatalf("%s on n%d: %v", action, i+1, err)
	}
	return m
}

func (c *testCluster) createKey(i int, desc string) string {
	c.t.Helper()
	m := c.mustCall(i, "CreateKey", map[string]string{"DKMSInstanceId": c.creds.InstanceID, "Description": desc})
	return m["KeyMetadata"].(map[string]any)["KeyId"].(string)
}

func apiCode(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func dataDirFiles(t *testing.T, dir string) []string {
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}
