package node

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/store"
)

// The leader's duties (automatic rotation, the end of deletion windows) in
// a real 3-node cluster whose nodes share one injected service clock, with
// the scheduler running every 50 ms, across a leader change.

// catalogueClock is the service clock shared by the cluster's nodes.
type catalogueClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *catalogueClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *catalogueClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// newCatalogueCluster is newTestCluster with the service clock injected
// and a short scheduler interval.
func newCatalogueCluster(t *testing.T, clock *catalogueClock, schedulerEvery time.Duration) *testCluster {
	t.Helper()
	raw := make([]byte, kcrypto.RootKeySize)
	for i := range raw {
		raw[i] = byte(i*5 + 3)
	}
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, root: root}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n != nil {
				n.Kill()
			}
		}
	})
	var first string
	for i := 0; i < 3; i++ {
		c.dirs = append(c.dirs, t.TempDir())
		var join []string
		if first != "" {
			join = []string{first}
		}
		id := fmt.Sprintf("n%d", i+1)
		n, err := Start(Config{
			NodeID: id, DataDir: c.dirs[i],
			HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			Join: join, BootstrapExpect: 3, Zone: fmt.Sprintf("zone-%d", i),
			RootKey: root, Timing: store.FastTiming(), FastGossip: true, DeadServerTimeout: time.Hour,
			Logger: testLogger(t, id), Clock: clock.Now, SchedulerInterval: schedulerEvery,
		})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		c.nodes = append(c.nodes, n)
		if i == 0 {
			first = n.GossipAddr()
		}
	}
	c.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.nodes[0].Service().Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.creds = res
	for _, n := range c.nodes {
		cl, err := client.New(n.Endpoint(), res.AccessKeyID, res.AccessKeySecret)
		if err != nil {
			t.Fatal(err)
		}
		c.clients = append(c.clients, cl)
	}
	return c
}

func metadata(m map[string]any) map[string]any { return m["KeyMetadata"].(map[string]any) }

// keyOn describes a key on node i (nil when the node says it is not found).
func (c *testCluster) keyOn(i int, key string) map[string]any {
	m, _, err := c.call(i, "DescribeKey", map[string]string{"KeyId": key})
	if err != nil {
		if apiCode(err) == "Forbidden.KeyNotFound" {
			return nil
		}
		c.t.Fatalf("DescribeKey on n%d: %v", i+1, err)
	}
	return metadata(m)
}

func (c *testCluster) versionCount(i int, key string) int {
	m := c.mustCall(i, "ListKeyVersions", map[string]string{"KeyId": key})
	return int(m["TotalCount"].(float64))
}

func isoDate(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse("2006-01-02T15:04:05Z", s)
	if err != nil {
		t.Fatalf("%q is not a date", s)
	}
	return at
}

func TestCluster_RotationAcrossLeaderChangeRotatesOnce(t *testing.T) {
	clock := &catalogueClock{now: time.Now().UTC().Truncate(time.Second)}
	c := newCatalogueCluster(t, clock, 50*time.Millisecond)
	interval := 7 * 24 * time.Hour

	f := c.followers()[0]
	created := metadata(c.mustCall(f, "CreateKey", map[string]string{
		"DKMSInstanceId": c.creds.InstanceID, "EnableAutomaticRotation": "true", "RotationInterval": "7d",
	}))
	key, v1 := created["KeyId"].(string), created["PrimaryKeyVersion"].(string)
	if !isoDate(t, created["NextRotationDate"]).Equal(clock.Now().Add(interval)) {
		t.Fatalf("NextRotationDate %v at creation", created["NextRotationDate"])
	}
	blob1 := c.mustCall(f, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "djE="})["CiphertextBlob"].(string)
	// A second key whose deletion window ends with the first rotation.
	doomed := c.createKey(f, "doomed")
	doomedBlob := c.mustCall(f, "Encrypt", map[string]string{"KeyId": doomed, "Plaintext": "Ynll"})["CiphertextBlob"].(string)
	c.mustCall(f, "ScheduleKeyDeletion", map[string]string{"KeyId": doomed, "PendingWindowInDays": "7"})

	// Nothing is due yet: the leader's scheduler, asked directly, does nothing.
	leader := c.leader()
	if n, err := c.nodes[leader].Service().SchedulerTick(ctxT(t)); err != nil || n != 0 {
		t.Fatalf("a tick before anything is due: %d changes, %v", n, err)
	}

	// Past NextRotationDate: the running scheduler rotates the key.
	t1 := clock.Advance(interval + time.Second)
	waitFor(t, "the first automatic rotation", 10*time.Second, func() bool {
		return c.keyOn(leader, key)["PrimaryKeyVersion"] != v1
	})
	md := c.keyOn(leader, key)
	v2 := md["PrimaryKeyVersion"].(string)
	last, next := isoDate(t, md["LastRotationDate"]), isoDate(t, md["NextRotationDate"])
	if !last.Equal(t1) || !next.Equal(last.Add(interval)) {
		t.Fatalf("after the first rotation: LastRotationDate %v NextRotationDate %v, want %v and +7d", last, next, t1)
	}
	waitFor(t, "the doomed key's deletion", 10*time.Second, func() bool { return c.keyOn(leader, doomed) == nil })
	if n, err := c.nodes[leader].Service().SchedulerTick(ctxT(t)); err != nil || n != 0 {
		t.Fatalf("a tick after the rotation: %d changes, %v", n, err)
	}
	for i := range c.nodes {
		waitFor(t, fmt.Sprintf("n%d to apply the rotation", i+1), 5*time.Second, func() bool { return c.versionCount(i, key) == 2 })
		enc := c.mustCall(i, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "djI="})
		if enc["KeyVersionId"] != v2 {
			t.Errorf("n%d encrypts with %v, want the new primary %s", i+1, enc["KeyVersionId"], v2)
		}
		dec := c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": blob1})
		if dec["Plaintext"] != "djE=" || dec["KeyVersionId"] != v1 {
			t.Errorf("n%d: the old ciphertext: %v", i+1, dec)
		}
		waitFor(t, fmt.Sprintf("n%d to apply the deletion", i+1), 5*time.Second, func() bool { return c.keyOn(i, doomed) == nil })
		if _, _, err := c.call(i, "Decrypt", map[string]string{"CiphertextBlob": doomedBlob}); apiCode(err) != "InvalidCiphertext" {
			t.Errorf("n%d: a deleted key's ciphertext: %v, want InvalidCiphertext", i+1, err)
		}
	}

	// Kill the leader; the new one takes the duty over.
	old := leader
	c.nodes[old].Kill()
	c.nodes[old] = nil
	leader = c.leader()
	if leader == old {
		t.Fatal("the killed node still leads")
	}
	t2 := clock.Advance(interval + time.Second)
	waitFor(t, "the new leader's rotation", 15*time.Second, func() bool {
		return c.keyOn(leader, key)["PrimaryKeyVersion"] != v2
	})
	md = c.keyOn(leader, key)
	v3 := md["PrimaryKeyVersion"].(string)
	last, next = isoDate(t, md["LastRotationDate"]), isoDate(t, md["NextRotationDate"])
	if !last.Equal(t2) || !next.Equal(last.Add(interval)) {
		t.Fatalf("after the second rotation: LastRotationDate %v NextRotationDate %v, want %v and +7d", last, next, t2)
	}
	// Exactly once: the new leader finds nothing more to do at this time,
	// and every survivor holds three versions.
	for range 3 {
		if n, err := c.nodes[leader].Service().SchedulerTick(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("the new leader's tick after its rotation: %d changes, %v", n, err)
		}
	}
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		waitFor(t, fmt.Sprintf("n%d to apply the second rotation", i+1), 5*time.Second, func() bool {
			return c.keyOn(i, key)["PrimaryKeyVersion"] == v3
		})
		if got := c.versionCount(i, key); got != 3 {
			t.Errorf("n%d holds %d versions, want 3 (one rotation per due date)", i+1, got)
		}
		for blob, want := range map[string]string{blob1: "djE="} {
			if dec := c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": blob}); dec["Plaintext"] != want {
				t.Errorf("n%d: the first ciphertext after two rotations: %v", i+1, dec)
			}
		}
		if enc := c.mustCall(i, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "djM="}); enc["KeyVersionId"] != v3 {
			t.Errorf("n%d encrypts with %v, want %s", i+1, enc["KeyVersionId"], v3)
		}
	}
}

// TestCluster_ImportAcrossNodesAndMaterialExpiry: an import token made
// through one node imports through another at once, and when the material
// expires the leader makes the key unusable on every node.
func TestCluster_ImportAcrossNodesAndMaterialExpiry(t *testing.T) {
	clock := &catalogueClock{now: time.Now().UTC().Truncate(time.Second)}
	c := newCatalogueCluster(t, clock, 50*time.Millisecond)
	fs := c.followers()
	a, b := fs[0], fs[1]
	key := metadata(c.mustCall(a, "CreateKey", map[string]string{"DKMSInstanceId": c.creds.InstanceID, "Origin": "EXTERNAL"}))["KeyId"].(string)
	p := c.mustCall(b, "GetParametersForImport", map[string]string{"KeyId": key, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"})
	der, err := base64.StdEncoding.DecodeString(p["PublicKey"].(string))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	material := make([]byte, 32)
	rand.Read(material)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	expire := clock.Now().Add(time.Hour)
	_, resp, err := c.call(a, "ImportKeyMaterial", map[string]string{"KeyId": key, "ImportToken": p["ImportToken"].(string),
		"EncryptedKeyMaterial": base64.StdEncoding.EncodeToString(wrapped), "KeyMaterialExpireUnix": fmt.Sprint(expire.Unix())})
	if err != nil {
		t.Fatalf("ImportKeyMaterial on n%d with a token made on n%d: %v", a+1, b+1, err)
	}
	// Read-your-writes across nodes: the import's index.
	blob := c.mustCall(b, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "Ynlvaw=="}, client.WithMinIndex(resp.Index))["CiphertextBlob"].(string)
	for i := range c.nodes {
		if dec := c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": blob}, client.WithMinIndex(resp.Index)); dec["Plaintext"] != "Ynlvaw==" {
			t.Fatalf("n%d: %v", i+1, dec)
		}
	}
	clock.Advance(time.Hour)
	for i := range c.nodes {
		waitFor(t, fmt.Sprintf("n%d to see the material expired", i+1), 10*time.Second, func() bool {
			return c.keyOn(i, key)["KeyState"] == "PendingImport"
		})
		if _, _, err := c.call(i, "Decrypt", map[string]string{"CiphertextBlob": blob}); apiCode(err) != "Rejected.PendingImport" {
			t.Errorf("n%d: Decrypt after expiry: %v, want Rejected.PendingImport", i+1, err)
		}
	}
}
