package cluster

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// waitFor polls cond until it returns nil or the deadline passes. The poll
// interval is not a synchronization point: only cond decides.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		<-tick.C
	}
}

// testLogger buffers logs and prints them only when the test fails (or
// always with RAFTKMS_TEST_LOG=1).
func testLogger(t testing.TB) hclog.Logger {
	w := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("RAFTKMS_TEST_LOG") != "" {
			t.Log("logs:\n" + w.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug, Output: w})
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 8<<20 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddrs reserves n loopback ports free for both TCP and UDP, so that
// nodes can be given each other's addresses before any of them starts.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var closers []func()
	for len(addrs) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			l.Close()
			continue
		}
		closers = append(closers, func() { l.Close(); u.Close() })
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	for _, c := range closers {
		c()
	}
	return addrs
}

type nodeOpt func(*Config)

func withJoin(addrs ...string) nodeOpt { return func(c *Config) { c.Join = addrs } }
func withBind(addr string) nodeOpt     { return func(c *Config) { c.BindAddr = addr } }
func withExpect(n int) nodeOpt         { return func(c *Config) { c.Meta.Expect = n } }
func withKey(k []byte) nodeOpt         { return func(c *Config) { c.SecretKey = k } }
func withRegistry(r *prometheus.Registry) nodeOpt {
	return func(c *Config) { c.Metrics = r }
}

// counterValue sums a counter family's samples whose labels include want.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// newTestNode starts a Fast gossip node "id" in zone, shut down at cleanup.
func newTestNode(t testing.TB, id, zone string, opts ...nodeOpt) *Cluster {
	t.Helper()
	c, err := tryTestNode(t, id, zone, opts...)
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	return c
}

func tryTestNode(t testing.TB, id, zone string, opts ...nodeOpt) (*Cluster, error) {
	cfg := Config{
		BindAddr: "127.0.0.1:0",
		Meta: Meta{ID: id, Zone: zone, Region: "test-1", Version: "test",
			ClusterAddr: "raft-" + id, HTTPAddr: "http-" + id},
		Logger:  testLogger(t).Named(id),
		Fast:    true,
		Metrics: prometheus.NewRegistry(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Shutdown() })
	return c, nil
}

// newTestNodeAt starts a node on addrs[i], joining all of addrs. Another
// process may have taken the reserved port since freeAddrs released it;
// then the node moves to a fresh address and addrs[i] is updated (nodes
// started later still list it, which is enough for everyone to meet).
func newTestNodeAt(t testing.TB, addrs []string, i int, id, zone string, opts ...nodeOpt) *Cluster {
	t.Helper()
	for try := 0; ; try++ {
		c, err := tryTestNode(t, id, zone, append([]nodeOpt{withBind(addrs[i]), withJoin(addrs...)}, opts...)...)
		if err == nil {
			return c
		}
		if !strings.Contains(err.Error(), "address already in use") || try == 5 {
			t.Fatalf("New(%s): %v", id, err)
		}
		addrs[i] = freeAddrs(t, 1)[0]
	}
}

// statusOf returns what c thinks of member id ("" if unknown).
func statusOf(c *Cluster, id string) string {
	m, ok := c.Member(id)
	if !ok {
		return ""
	}
	return m.Status
}

func waitStatus(t testing.TB, c *Cluster, id, status string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s to see %s %s", c.id, id, status), func() error {
		if s := statusOf(c, id); s != status {
			return fmt.Errorf("status %q", s)
		}
		return nil
	})
}
