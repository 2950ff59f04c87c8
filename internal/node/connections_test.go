package node

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/testutil"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
)

// startSingle starts an initialized one-node cluster with the given API
// limits, and a signed client for its root account.
func startSingle(t *testing.T, lim HTTPLimits) (*Node, kms.InitResult, *client.Client) {
	t.Helper()
	raw := make([]byte, kcrypto.RootKeySize)
	for i := range raw {
		raw[i] = byte(i + 3)
	}
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(Config{
		NodeID: "s1", DataDir: t.TempDir(), Single: true,
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		RootKey: root, Timing: store.FastTiming(), Logger: testLogger(t, "s1"), HTTPLimits: lim,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	testutil.Eventually(t, "the single node to lead", 20*time.Second, n.Store().IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	init, err := n.Service().Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(n.Endpoint(), init.AccessKeyID, init.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	return n, init, cl
}

// gauge reads one sample of a metric family from the node's registry.
func gauge(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s{%s=%q}", name, label, value)
	return 0
}

// With the default limits, a request body trickled at one byte every two
// seconds is cut off by the node within 60 s (its read timeout is 30 s).
func TestNode_TrickledBodyIsCutOffWithin60s(t *testing.T) {
	t.Parallel()
	n, _, _ := startSingle(t, HTTPLimits{})
	c := dial(t, n.HTTPAddr())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nA")
	stop := make(chan struct{})
	defer close(stop)
	go trickle(c, 2*time.Second, stop)
	start := time.Now()
	// The node answers (a refusal of the unread body) and closes.
	c.SetReadDeadline(start.Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
		t.Logf("answered %d after %s", resp.StatusCode, time.Since(start))
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("a cut-off body answered %d, want a 4xx refusal", resp.StatusCode)
		}
	}
	if _, err := closedBy(c, 60*time.Second-time.Since(start)); err != nil {
		t.Fatalf("the trickled request still holds its connection: %v", err)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Fatalf("cut off after %s", d)
	}
}

// A node flooded with idle connections — as many as this machine's
// open-file limit lets one process hold on both ends, up to 20,000 — still
// answers a signed Encrypt in under 100 ms (the median of 5): both while it
// holds them all (a cap above the flood), and at its default cap, where
// each newcomer displaces an idle or silent connection instead of being
// refused.
func TestNode_EncryptStaysFastUnderAnIdleConnectionFlood(t *testing.T) {
	cases := []struct {
		name string
		// conns returns how many to open from the descriptors available
		// and the cap to run with (0: the default).
		conns     func(avail int) (n, max int)
		keepAlive bool // each connection sent one request first (idle) or nothing (silent)
	}{
		{"held idle keep-alive connections", func(avail int) (int, int) {
			n := min(20000, avail/2) // the client's end and the node's
			return n, n + 100
		}, true},
		{"silent connections past the default cap", func(avail int) (int, int) {
			return min(20000, avail-DefaultHTTPMaxConnections), 0
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			avail := raiseNoFile(t) - 512 // the node's own files, the client's connections
			count, max := tc.conns(avail)
			if count < 1000 {
				t.Fatalf("only %d descriptors available; raise the hard open-file limit", avail)
			}
			n, init, cl := startSingle(t, HTTPLimits{MaxConnections: max})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var key struct{ KeyMetadata struct{ KeyId string } }
			resp, err := cl.Call(ctx, "CreateKey", map[string]string{"DKMSInstanceId": init.InstanceID})
			if err != nil {
				t.Fatal(err)
			}
			resp.Decode(&key)
			encrypt := func() (time.Duration, error) {
				start := time.Now()
				_, err := cl.Call(ctx, "Encrypt", map[string]string{"KeyId": key.KeyMetadata.KeyId, "Plaintext": "aGVsbG8="})
				return time.Since(start), err
			}
			if _, err := encrypt(); err != nil { // the key's material unwrapped once
				t.Fatal(err)
			}

			conns := make([]net.Conn, 0, count)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for len(conns) < count {
				c, err := net.Dial("tcp", n.HTTPAddr())
				if isTooManyFiles(err) {
					t.Logf("stopped at %d connections: %v", len(conns), err)
					break
				}
				if err != nil {
					t.Fatalf("connection %d: %v", len(conns), err)
				}
				if tc.keepAlive {
					if _, err := io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
						t.Fatal(err)
					}
				}
				conns = append(conns, c)
			}
			if tc.keepAlive {
				for i, c := range conns {
					c.SetReadDeadline(time.Now().Add(30 * time.Second))
					resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
					if err != nil {
						t.Fatalf("connection %d: %v", i, err)
					}
					resp.Body.Close()
				}
				testutil.Eventually(t, "the node to hold every connection idle", 30*time.Second, func() bool {
					return gauge(t, n.Registry, "kms_http_connections", "state", "idle") >= float64(len(conns))
				})
			} else {
				testutil.Eventually(t, "the node to fill its cap", 30*time.Second, func() bool {
					return gauge(t, n.Registry, "kms_http_connections", "state", "new") == DefaultHTTPMaxConnections
				})
			}
			t.Logf("%d connections open", len(conns))

			var took []time.Duration
			for range 5 {
				d, err := encrypt()
				if err != nil {
					t.Fatalf("Encrypt under the flood: %v", err)
				}
				took = append(took, d)
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			t.Logf("Encrypt with %d connections open: %v", len(conns), took)
			if took[2] >= 100*time.Millisecond {
				t.Fatalf("median Encrypt %s with %d idle connections open, want under 100ms (all: %v)", took[2], len(conns), took)
			}
			if rej := gauge(t, n.Registry, "kms_http_connections_rejected_total", "", ""); rej != 0 {
				t.Fatalf("%v connections refused; idle ones should have made room", rej)
			}
			if !tc.keepAlive {
				if ev := gauge(t, n.Registry, "kms_http_connections_evicted_total", "", ""); ev < float64(len(conns)-DefaultHTTPMaxConnections) {
					t.Fatalf("evicted %v of %d connections past the cap", ev, len(conns))
				}
			}
		})
	}
}
