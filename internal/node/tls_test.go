package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/store"
	"github.com/raftkms/raftkms/transport"
)

// testCA is a throwaway certificate authority for a test's nodes.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a node certificate for 127.0.0.1, as server and client, the
// way `kmsctl operator tls create-cert` does.
func (ca *testCA) issue(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{name, "localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// withClusterTLS gives a node a certificate from certCA and makes it trust
// peers whose certificates come from trustCA (mutual TLS, as kmsd builds
// it from --cluster-ca-file, --cluster-cert-file, --cluster-key-file).
func withClusterTLS(t *testing.T, certCA, trustCA *testCA, name string) func(*Config) {
	cert := certCA.issue(t, name)
	return func(c *Config) {
		c.ClusterServerTLS = &tls.Config{
			Certificates: []tls.Certificate{cert}, ClientCAs: trustCA.pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13,
		}
		c.ClusterClientTLS = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: trustCA.pool, MinVersion: tls.VersionTLS13}
	}
}

func withGossipKey(k []byte) func(*Config) { return func(c *Config) { c.GossipKey = k } }

func testRootKey(t *testing.T) *kcrypto.RootKey {
	raw := make([]byte, kcrypto.RootKeySize)
	for i := range raw {
		raw[i] = byte(i*7 + 1)
	}
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startConfigured starts one node on loopback with fast timers; mods add
// the security settings under test.
func startConfigured(t *testing.T, id string, expect int, join []string, mods ...func(*Config)) *Node {
	t.Helper()
	cfg := Config{
		NodeID: id, DataDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Join: join, BootstrapExpect: expect, Zone: "zone-" + id,
		RootKey: testRootKey(t), Timing: store.FastTiming(), FastGossip: true,
		DeadServerTimeout: time.Hour, Logger: testLogger(t, id),
	}
	for _, m := range mods {
		m(&cfg)
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(n.Kill)
	return n
}

// startConfiguredCluster starts n nodes that bootstrap together; mod(i)
// gives node i its settings. It waits for a leader and initializes the
// cluster.
func startConfiguredCluster(t *testing.T, n int, mod func(i int) []func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, root: testRootKey(t)}
	var first string
	for i := 0; i < n; i++ {
		var join []string
		if first != "" {
			join = []string{first}
		}
		node := startConfigured(t, fmt.Sprintf("n%d", i+1), n, join, mod(i)...)
		if i == 0 {
			first = node.GossipAddr()
		}
		c.nodes = append(c.nodes, node)
	}
	c.waitHealthy()
	res, err := c.nodes[0].Service().Init(ctxT(t))
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

// counter sums a counter of a node's registry over the series whose labels
// include want.
func counter(t *testing.T, n *Node, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := n.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func inRaftConfig(t *testing.T, n *Node, id string) bool {
	t.Helper()
	servers, err := n.Store().Servers()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

func aliveInGossip(n *Node, id string) bool {
	m, ok := n.Gossip().Member(id)
	return ok && m.Alive()
}

// createKeyRetrying creates a key through node i, retrying while the
// cluster answers 503 (a young cluster under -race may still change
// leaders; an unknown outcome at most leaves an extra key).
func createKeyRetrying(c *testCluster, i int) string {
	c.t.Helper()
	var key string
	waitFor(c.t, "a key created through n"+fmt.Sprint(i+1), 20*time.Second, func() bool {
		m, _, err := c.call(i, "CreateKey", map[string]string{"DKMSInstanceId": c.creds.InstanceID})
		var ae *client.APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusServiceUnavailable {
			return false
		}
		if err != nil {
			c.t.Fatalf("CreateKey on n%d: %v", i+1, err)
		}
		key = m["KeyMetadata"].(map[string]any)["KeyId"].(string)
		return true
	})
	return key
}

// A cluster with mutual TLS on its cluster port works (writes forwarded
// from followers travel over it), and a node whose certificate comes from
// another CA never becomes a Raft member even though gossip lets it in:
// the leader's handshake with it fails before the reconciler adds it, and
// its own RPCs and Raft connections are refused. A node with a certificate
// from the cluster's CA joins, so the test can tell the two apart.
func TestTLS_MutualTLSClusterRefusesForeignCertificate(t *testing.T) {
	ca, rogueCA := newTestCA(t, "cluster CA"), newTestCA(t, "rogue CA")
	c := startConfiguredCluster(t, 3, func(i int) []func(*Config) {
		return []func(*Config){withClusterTLS(t, ca, ca, fmt.Sprintf("n%d", i+1))}
	})
	for i := range c.nodes {
		key := createKeyRetrying(c, i) // followers forward the write to the leader
		c.mustCall((i+1)%3, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk="})
	}
	leader := c.nodes[c.leader()]

	for _, rogue := range []struct {
		name  string
		trust *testCA
	}{
		{"trusts the cluster CA", ca}, // only the cluster's checks can refuse it
		{"trusts its own CA", rogueCA},
	} {
		t.Run(rogue.name, func(t *testing.T) {
			id := "rogue-" + strings.ReplaceAll(rogue.name, " ", "-")
			before := counter(t, leader, "kms_transport_rpc_total", map[string]string{"method": rpc.NodePing, "result": "unreachable"})
			r := startConfigured(t, id, 0, []string{c.nodes[0].GossipAddr()}, withClusterTLS(t, rogueCA, rogue.trust, id))
			waitFor(t, "the leader to see the rogue in gossip", 20*time.Second, func() bool { return aliveInGossip(leader, id) })
			// The reconciler tried to add it, twice, and the handshake failed
			// (or, were the check missing, it was added).
			waitFor(t, "the leader to probe the rogue and fail", 20*time.Second, func() bool {
				return counter(t, leader, "kms_transport_rpc_total", map[string]string{"method": rpc.NodePing, "result": "unreachable"}) >= before+2 ||
					inRaftConfig(t, leader, id)
			})
			for _, n := range c.nodes {
				if inRaftConfig(t, n, id) {
					t.Fatalf("%s lists the rogue node in its Raft configuration", n.ID())
				}
			}
			if has, _ := r.Store().HasState(); has {
				t.Fatal("the rogue node has Raft state")
			}
			if _, lid := r.Store().Leader(); lid != "" {
				t.Fatalf("the rogue node follows leader %q", lid)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := r.trans.Call(ctx, leader.ClusterAddr(), rpc.NodePing, nil); !errors.Is(err, transport.ErrUnreachable) {
				t.Fatalf("the rogue's RPC to the leader: %v, want refused (not delivered)", err)
			}
			if _, err := r.trans.Call(ctx, leader.ClusterAddr(), "store.apply", []byte{0}); !errors.Is(err, transport.ErrUnreachable) {
				t.Fatalf("the rogue's forwarded write: %v, want refused (not delivered)", err)
			}
			if conn, err := r.trans.StreamLayer().Dial(raft.ServerAddress(leader.ClusterAddr()), 5*time.Second); err == nil {
				conn.Close()
				t.Fatal("the rogue opened a Raft connection to the leader")
			}
		})
	}

	t.Run("a node with the cluster CA's certificate joins", func(t *testing.T) {
		good := startConfigured(t, "n4", 0, []string{c.nodes[0].GossipAddr()}, withClusterTLS(t, ca, ca, "n4"))
		waitFor(t, "n4 to be added to Raft", 20*time.Second, func() bool { return inRaftConfig(t, leader, "n4") })
		waitFor(t, "n4 to follow the leader", 20*time.Second, func() bool { _, id := good.Store().Leader(); return id != "" })
	})
}

// A node whose gossip key differs never enters the membership, so it is
// never added to Raft; one with the cluster's key joins.
func TestTLS_GossipKeyKeepsOtherKeysOut(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	c := startConfiguredCluster(t, 3, func(int) []func(*Config) { return []func(*Config){withGossipKey(key)} })
	leader := c.nodes[c.leader()]

	for _, other := range []struct {
		name string
		key  []byte
	}{
		{"another key", []byte("fedcba9876543210")},
		{"no key", nil},
	} {
		t.Run(other.name, func(t *testing.T) {
			id := "x-" + strings.ReplaceAll(other.name, " ", "-")
			x := startConfigured(t, id, 0, []string{c.nodes[0].GossipAddr(), c.nodes[1].GossipAddr()}, withGossipKey(other.key))
			waitFor(t, "the outsider to fail joining three times", 20*time.Second, func() bool {
				return counter(t, x, "kms_cluster_join_attempts_total", map[string]string{"result": "error"}) >= 3
			})
			for _, n := range c.nodes {
				if _, ok := n.Gossip().Member(id); ok {
					t.Fatalf("%s knows the outsider", n.ID())
				}
				if inRaftConfig(t, n, id) {
					t.Fatalf("%s has the outsider in Raft", n.ID())
				}
			}
			if got := len(x.Gossip().Members()); got != 1 {
				t.Fatalf("the outsider sees %d members", got)
			}
		})
	}

	t.Run("the cluster's key joins", func(t *testing.T) {
		startConfigured(t, "n4", 0, []string{c.nodes[0].GossipAddr()}, withGossipKey(key))
		waitFor(t, "n4 to be added to Raft", 20*time.Second, func() bool { return inRaftConfig(t, leader, "n4") })
	})
}

// The API over HTTPS: a client that trusts the CA (kmsctl --ca-file, the
// SDK with the CA installed) works; one that does not is refused by its
// own TLS check; plaintext HTTP gets no API answer.
func TestTLS_HTTPSAPI(t *testing.T) {
	ca := newTestCA(t, "api CA")
	cert := ca.issue(t, "dev")
	n := startConfigured(t, "dev", 0, nil, func(c *Config) {
		c.Single = true
		c.HTTPTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	if !strings.HasPrefix(n.Endpoint(), "https://") {
		t.Fatalf("endpoint %s", n.Endpoint())
	}
	waitFor(t, "the single node to lead", 20*time.Second, func() bool { return n.Store().IsLeader() })
	res, err := n.Service().Init(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(n.Endpoint(), res.AccessKeyID, res.AccessKeySecret, client.WithTLSConfig(&tls.Config{RootCAs: ca.pool}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Call(ctxT(t), "CreateKey", map[string]string{"DKMSInstanceId": res.InstanceID})
	if err != nil {
		t.Fatalf("CreateKey over HTTPS: %v", err)
	}
	if resp.Index == 0 {
		t.Fatal("no index on a write over HTTPS")
	}

	untrusting, _ := client.New(n.Endpoint(), res.AccessKeyID, res.AccessKeySecret)
	_, err = untrusting.Call(ctxT(t), "ListKeys", nil)
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Fatalf("a client without the CA: %v, want an unknown-authority error", err)
	}

	plain, err := http.Get("http://" + n.HTTPAddr() + "/v1/health")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Fatal("plaintext HTTP was served on the HTTPS port")
		}
	}
}
