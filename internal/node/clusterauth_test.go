package node

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/store"
)

// syncBuffer collects log lines from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// hasLine reports whether one log line contains every one of words.
func (b *syncBuffer) hasLine(words ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range strings.Split(b.buf.String(), "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

// legacyRPCRequest is what a client of the unauthenticated cluster port
// sent: protocol byte 0x02, then a request frame (length, kind 0x01, id,
// timeout, method, payload).
func legacyRPCRequest(method string, payload []byte) []byte {
	body := []byte{0x01}
	body = binary.BigEndian.AppendUint64(body, 1)
	body = binary.BigEndian.AppendUint64(body, uint64(5*time.Second))
	body = append(body, byte(len(method)))
	body = append(body, method...)
	body = append(body, payload...)
	out := []byte{0x02}
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

// The attack of issue 9, point 4: anyone who could reach the cluster port
// sent store.apply with a forged SetKeyPolicy and opened a tenant's key. The
// leader must close such a connection without an answer, apply nothing, and
// log it.
func TestClusterPort_ForgedApplyWithoutAuthenticationIsRefused(t *testing.T) {
	logs := &syncBuffer{}
	c := newTestCluster(t, 3, clusterOpts{logs: logs})
	key := c.createKey(0, "a tenant's key")
	policy := func() any {
		return c.mustCall(0, "GetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default"})["Policy"]
	}
	before := policy()
	open := `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:*"],"Resource":["*"]}]}`
	cmd, err := fsm.Encode(fsm.CmdSetKeyPolicy, fsm.KeyPolicyCmd{Now: time.Now().UnixMilli(), KeyID: key, Policy: open})
	if err != nil {
		t.Fatal(err)
	}
	leader := c.nodes[c.leader()]

	conn, err := net.Dial("tcp", leader.ClusterAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a safety net, not synchronization
	if _, err := conn.Write(legacyRPCRequest("store.apply", cmd)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the leader kept the unauthenticated connection open")
	}
	if len(got) != 0 {
		t.Fatalf("the leader answered an unauthenticated peer with %d bytes: %q", len(got), got)
	}
	waitFor(t, "the leader to log the refused connection", 10*time.Second, func() bool {
		return logs.hasLine("[WARN]", leader.ID()+".transport", "unauthenticated", conn.LocalAddr().String())
	})
	// Nothing was applied: a barrier on every node, then the policy.
	c.mustCall(0, "CreateKey", map[string]string{"DKMSInstanceId": c.creds.InstanceID, "Description": "barrier"})
	for i := range c.nodes {
		if after := c.mustCall(i, "GetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default"})["Policy"]; after != before {
			t.Fatalf("n%d: the key policy changed to %v", i+1, after)
		}
	}
	if policy() == open {
		t.Fatal("the forged policy was applied")
	}
}

// otherRootKey is a valid root key that is not the test cluster's.
func otherRootKey(t *testing.T) *kcrypto.RootKey {
	raw := bytes.Repeat([]byte{0xee}, kcrypto.RootKeySize)
	k, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Issue 9, point 7: a node started with another root key joins gossip but
// never enters the Raft configuration, and answers every API request with
// 503 ServiceUnavailable.RootKeyMismatch; the healthy nodes are unaffected.
func TestCluster_NodeWithAnotherRootKeyIsNeverAddedAndAnswersRootKeyMismatch(t *testing.T) {
	logs := &syncBuffer{}
	c := newTestCluster(t, 3, clusterOpts{logs: logs})
	key := c.createKey(0, "before the stranger")
	stranger, err := Start(Config{
		NodeID: "n4", DataDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Join: []string{c.nodes[0].GossipAddr()}, Zone: "zone-3",
		RootKey: otherRootKey(t), Timing: store.FastTiming(), FastGossip: true,
		DeadServerTimeout: time.Hour, Logger: c.nodeLogger("n4"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stranger.Kill)

	leader := c.nodes[c.leader()]
	waitFor(t, "the leader to see n4 alive in gossip", 20*time.Second, func() bool {
		m, ok := leader.Gossip().Member("n4")
		return ok && m.Alive()
	})
	waitFor(t, "the leader to refuse n4 and log it", 20*time.Second, func() bool {
		return logs.hasLine("[WARN]", leader.ID()+".", "reconciler: member failed the cluster port check", "id=n4")
	})
	waitFor(t, "n4 to learn that the cluster refuses its key", 20*time.Second, func() bool {
		return stranger.Service().RootKeyMismatch() != nil
	})
	// The leader has tried and refused n4 (above) on a pass that already
	// saw it alive; it must not be in the configuration, on any node.
	for i, n := range c.nodes {
		servers, err := n.Store().Servers()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if s.ID == "n4" {
				t.Fatalf("n%d's Raft configuration has n4: %+v", i+1, servers)
			}
		}
	}
	if _, id := stranger.Store().Leader(); id != "" {
		t.Fatalf("n4 knows a leader (%s)", id)
	}

	// Signed, with the cluster's valid credentials.
	cl, err := client.New(stranger.Endpoint(), c.creds.AccessKeyID, c.creds.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"DescribeKey", "Encrypt"} {
		_, err := cl.Call(ctxT(t), action, map[string]string{"KeyId": key, "Plaintext": "eA=="})
		assertRootKeyMismatch(t, "signed "+action, err)
	}
	// Unsigned, and on the operator paths.
	for _, path := range []string{"/?Action=DescribeKey&KeyId=" + key, "/v1/operator/snapshot", "/nowhere"} {
		resp, err := http.Get(stranger.Endpoint() + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Code, Message string }
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		assertRootKeyMismatch(t, "unsigned "+path, &client.APIError{StatusCode: resp.StatusCode, Code: body.Code, Message: body.Message})
	}
	// Health says why; /metrics still answers.
	resp, err := http.Get(stranger.Endpoint() + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Ready  bool
		Reason string
	}
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || health.Ready || !strings.Contains(health.Reason, "root key") {
		t.Fatalf("health of n4: %d %+v", resp.StatusCode, health)
	}
	resp, err = http.Get(stranger.Endpoint() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "kms_node_root_key_mismatch 1") {
		t.Fatal("/metrics of n4 does not report the mismatch")
	}

	// The healthy nodes were not flipped by the stranger.
	for i, n := range c.nodes {
		if err := n.Service().RootKeyMismatch(); err != nil {
			t.Fatalf("n%d: %v", i+1, err)
		}
		c.mustCall(i, "DescribeKey", map[string]string{"KeyId": key})
	}
}

func assertRootKeyMismatch(t *testing.T, what string, err error) {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: %v, want an API error", what, err)
	}
	if ae.StatusCode != http.StatusServiceUnavailable || ae.Code != "ServiceUnavailable.RootKeyMismatch" ||
		!strings.Contains(ae.Message, "--root-key-file") {
		t.Fatalf("%s: %d %s %q, want 503 ServiceUnavailable.RootKeyMismatch naming --root-key-file", what, ae.StatusCode, ae.Code, ae.Message)
	}
}
