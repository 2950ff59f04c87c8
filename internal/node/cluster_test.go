package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
)

func TestCluster_CreateOnOneEncryptOnSecondDecryptOnThird(t *testing.T) {
	c := newTestCluster(t, 3)
	key := c.createKey(0, "three nodes")
	ctxJSON := `{"tenant":"t1","purpose":"test"}`
	enc := c.mustCall(1, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGVsbG8gY2x1c3Rlcg==", "EncryptionContext": ctxJSON})
	// Same context, keys in another order: still the same context.
	dec := c.mustCall(2, "Decrypt", map[string]string{"CiphertextBlob": enc["CiphertextBlob"].(string), "EncryptionContext": `{"purpose":"test","tenant":"t1"}`})
	if dec["Plaintext"] != "aGVsbG8gY2x1c3Rlcg==" || dec["KeyId"] != key {
		t.Fatalf("Decrypt on n3 = %v", dec)
	}
	_, _, err := c.call(2, "Decrypt", map[string]string{"CiphertextBlob": enc["CiphertextBlob"].(string), "EncryptionContext": `{"tenant":"t2","purpose":"test"}`})
	if apiCode(err) != "InvalidCiphertext" {
		t.Fatalf("wrong context on n3: %v", err)
	}
}

// A key created through one node is usable at once through another: the
// second node either has applied the write or looks it up with one
// read-index round trip.
func TestCluster_KeyUsableEverywhereRightAfterCreate(t *testing.T) {
	c := newTestCluster(t, 3)
	for i := 0; i < 20; i++ {
		key := c.createKey(i%3, fmt.Sprintf("k%d", i))
		other := (i + 1) % 3
		if _, _, err := c.call(other, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="}); err != nil {
			t.Fatalf("key %d created on n%d, Encrypt on n%d: %v", i, i%3+1, other+1, err)
		}
	}
}

func TestCluster_ReadYourWritesWithMinIndex(t *testing.T) {
	c := newTestCluster(t, 3)
	key := c.createKey(0, "before")
	_, resp, err := c.call(0, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": "after"})
	if err != nil || resp.Index == 0 {
		t.Fatalf("write without an index: %v %+v", err, resp)
	}
	for i := range c.nodes {
		m := c.mustCall(i, "DescribeKey", map[string]string{"KeyId": key}, client.WithMinIndex(resp.Index))
		if got := m["KeyMetadata"].(map[string]any)["Description"]; got != "after" {
			t.Fatalf("n%d with min index %d sees %q", i+1, resp.Index, got)
		}
	}
	// An index no node will reach soon: a clear, bounded refusal.
	_, _, err = c.call(1, "DescribeKey", map[string]string{"KeyId": key}, client.WithMinIndex(resp.Index+1_000_000))
	if apiCode(err) != "ServiceUnavailable.IndexNotReached" {
		t.Fatalf("unreachable min index: %v", err)
	}
}

// Killing the leader: a new one is elected, writes resume through every
// surviving node, and crypto on the followers never fails meanwhile.
func TestCluster_LeaderLoss_WritesResumeAndCryptoNeverStops(t *testing.T) {
	c := newTestCluster(t, 3)
	key := c.createKey(0, "failover")
	blob := c.mustCall(0, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "c3Vydml2ZQ=="})["CiphertextBlob"].(string)
	old := c.leader()
	var survivors []int
	for i := range c.nodes {
		if i != old {
			survivors = append(survivors, i)
		}
	}
	// Each survivor has applied the key already.
	for _, i := range survivors {
		c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": blob})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ops, failures atomic.Int64
	var firstErr atomic.Value
	for _, i := range survivors {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ops.Add(1)
				enc, _, err := c.call(i, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "ZHVyaW5n"})
				if err == nil {
					_, _, err = c.call(i, "Decrypt", map[string]string{"CiphertextBlob": enc["CiphertextBlob"].(string)})
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("n%d: %v", i+1, err))
				}
			}
		}(i)
	}
	c.nodes[old].Kill()
	c.nodes[old] = nil
	newLeader := c.leader()
	if newLeader == old {
		t.Fatal("the killed node still leads")
	}
	for _, i := range survivors {
		if _, _, err := c.call(i, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": fmt.Sprintf("via n%d", i+1)}); err != nil {
			t.Fatalf("write through n%d after failover: %v", i+1, err)
		}
	}
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d crypto calls on followers failed during failover; first: %v", failures.Load(), ops.Load(), firstErr.Load())
	}
	if ops.Load() < 10 {
		t.Fatalf("only %d crypto calls ran during the failover", ops.Load())
	}
}

// The documented bound (docs/CONSISTENCY.md): once DisableKey is
// acknowledged, a connected follower refuses crypto with the key within
// the commit propagation delay; this asserts a generous 1 s on loopback.
func TestCluster_DisableSeenByFollowersWithinBound(t *testing.T) {
	c := newTestCluster(t, 3)
	const bound = time.Second
	for round := 0; round < 5; round++ {
		key := c.createKey(0, "disable bound")
		for _, i := range c.followers() {
			c.mustCall(i, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="})
		}
		leader := c.leader()
		c.mustCall(leader, "DisableKey", map[string]string{"KeyId": key})
		acked := time.Now()
		for _, i := range c.followers() {
			var last error
			waitFor(t, fmt.Sprintf("n%d to refuse a disabled key", i+1), 5*time.Second, func() bool {
				_, _, last = c.call(i, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="})
				return apiCode(last) == "Rejected.Disabled"
			})
			lag := time.Since(acked)
			if lag > bound {
				t.Fatalf("n%d still encrypted with a disabled key %s after DisableKey was acknowledged (bound %s)", i+1, lag, bound)
			}
			t.Logf("n%d refused the disabled key %s after the acknowledgement", i+1, lag)
		}
	}
}

// A follower cut off from the leader stops serving crypto after
// MaxStaleness instead of using a catalogue that may miss a DisableKey.
func TestCluster_IsolatedFollowerRefusesCryptoAfterMaxStaleness(t *testing.T) {
	const staleness = 800 * time.Millisecond
	c := newTestCluster(t, 3, clusterOpts{maxStaleness: staleness})
	key := c.createKey(0, "stale")
	f := c.followers()[0]
	c.mustCall(f, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="})
	for i := range c.nodes {
		if i != f {
			c.nodes[i].Kill()
			c.nodes[i] = nil
		}
	}
	lostAt := time.Now()
	var last error
	waitFor(t, "the isolated follower to refuse crypto", 10*time.Second, func() bool {
		_, _, last = c.call(f, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="})
		return apiCode(last) == "ServiceUnavailable.Stale"
	})
	// It may not refuse before the bound (it would fail over-eagerly), and
	// must refuse soon after it (plus the time one catch-up attempt takes).
	if elapsed := time.Since(lostAt); elapsed < staleness/2 {
		t.Fatalf("refused after %s, before the staleness bound %s", elapsed, staleness)
	}
}

// After any workload, every replica holds the same catalogue at the same
// applied index (etcd's robustness-test ending).
func TestCluster_ReplicasConverge(t *testing.T) {
	c := newTestCluster(t, 3)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				key := c.createKey(w, fmt.Sprintf("w%d-%d", w, i))
				c.mustCall((w+1)%3, "CreateAlias", map[string]string{"AliasName": fmt.Sprintf("alias/w%d-%d", w, i), "KeyId": key})
				c.mustCall((w+2)%3, "TagResource", map[string]string{"KeyId": key, "Tags": `[{"TagKey":"w","TagValue":"` + strconv.Itoa(w) + `"}]`})
				c.mustCall(w, "CreateKeyVersion", map[string]string{"KeyId": key})
			}
		}(w)
	}
	wg.Wait()
	idx, err := c.nodes[c.leader()].Store().Barrier(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range c.nodes {
		if err := n.FSM().WaitForIndex(ctxT(t), idx); err != nil {
			t.Fatalf("n%d: %v", i+1, err)
		}
	}
	// Compare the catalogues at one applied index. Entries can still come
	// after the barrier (the leader's nudge after a burst of writes), so
	// hash every node again until all were hashed at the same index (Hash
	// returns the index its catalogue is at).
	var hashes [][32]byte
	waitFor(t, "every node hashed at one applied index", 10*time.Second, func() bool {
		hashes = hashes[:0]
		var first uint64
		for i, n := range c.nodes {
			h, at := n.FSM().Hash()
			if i == 0 {
				first = at
			} else if at != first {
				return false
			}
			hashes = append(hashes, h)
		}
		return true
	})
	for i := 1; i < len(hashes); i++ {
		if hashes[i] != hashes[0] {
			t.Fatalf("n%d's catalogue differs from n1's at index %d", i+1, idx)
		}
	}
}

// Snapshot and restore through the service, between two clusters with the
// same root key: everything comes back and old ciphertexts decrypt; the
// snapshot and the data dirs never hold a data key in the clear.
func TestCluster_SnapshotRestoreIntoNewCluster(t *testing.T) {
	src := newTestCluster(t, 3)
	key := src.createKey(0, "dr")
	src.mustCall(0, "CreateAlias", map[string]string{"AliasName": "alias/dr", "KeyId": key})
	src.mustCall(1, "TagResource", map[string]string{"KeyId": key, "Tags": `[{"TagKey":"env","TagValue":"prod"}]`})
	dk := src.mustCall(2, "GenerateDataKey", map[string]string{"KeyId": "alias/dr"})
	src.mustCall(0, "CreateKeyVersion", map[string]string{"KeyId": key})
	enc := src.mustCall(1, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "ZGlzYXN0ZXI="})

	var snap bytes.Buffer
	follower := src.followers()[0]
	caller := kms.Caller{AccountID: src.creds.AccountID, Principal: "acs:ram::" + src.creds.AccountID + ":root"}
	if _, err := src.nodes[follower].Service().SaveSnapshot(ctxT(t), caller, &snap); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(dk["Plaintext"].(string))
	for _, secret := range [][]byte{raw, []byte(dk["Plaintext"].(string)), []byte(src.creds.AccessKeySecret)} {
		if bytes.Contains(snap.Bytes(), secret) {
			t.Fatal("the snapshot holds a secret in the clear")
		}
		for _, dir := range src.dirs {
			for _, f := range dataDirFiles(t, dir) {
				b, _ := os.ReadFile(f)
				if bytes.Contains(b, secret) {
					t.Fatalf("%s holds a secret in the clear", f)
				}
			}
		}
	}

	dst := newTestCluster(t, 3)
	f, err := os.CreateTemp(t.TempDir(), "snap")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(snap.Bytes())
	dstCaller := kms.Caller{AccountID: dst.creds.AccountID, Principal: "acs:ram::" + dst.creds.AccountID + ":root"}
	if _, err := dst.nodes[dst.followers()[0]].Service().RestoreSnapshot(ctxT(t), &dstCaller, f); err != nil {
		t.Fatal(err)
	}
	// The source's credentials are now the valid ones, on every node.
	for i, n := range dst.nodes {
		cl, _ := client.New(n.Endpoint(), src.creds.AccessKeyID, src.creds.AccessKeySecret)
		resp, err := cl.Call(ctxT(t), "Decrypt", map[string]string{"CiphertextBlob": enc["CiphertextBlob"].(string)})
		if err != nil {
			t.Fatalf("n%d of the new cluster: %v", i+1, err)
		}
		if !bytes.Contains(resp.Body, []byte("ZGlzYXN0ZXI=")) {
			t.Fatalf("n%d decrypted to %s", i+1, resp.Body)
		}
		resp, err = cl.Call(ctxT(t), "Decrypt", map[string]string{"CiphertextBlob": dk["CiphertextBlob"].(string)})
		if err != nil || !bytes.Contains(resp.Body, []byte(dk["Plaintext"].(string))) {
			t.Fatalf("n%d: data key: %v %s", i+1, err, resp.Body)
		}
		resp, err = cl.Call(ctxT(t), "ListResourceTags", map[string]string{"KeyId": "alias/dr"})
		if err != nil || !bytes.Contains(resp.Body, []byte(`"prod"`)) {
			t.Fatalf("n%d: tags: %v %s", i+1, err, resp.Body)
		}
	}
	if _, _, err := dst.call(0, "ListKeys", nil); apiCode(err) != "InvalidAccessKeyId.NotFound" {
		t.Fatalf("the replaced cluster's own credentials still work: %v", err)
	}
}

// A catalogue of 10,000 keys snapshots and restores. The leader decodes the
// whole snapshot inside Raft's leader loop, where it sends no heartbeats, so
// this test runs with production timeouts: under the race detector a 10,000
// key restore takes longer than the test clusters' 200 ms election timeout.
func TestCluster_TenThousandKeysSnapshotAndRestore(t *testing.T) {
	opts := clusterOpts{timing: store.DefaultTiming()}
	c := newTestCluster(t, 3, opts)
	svc := c.nodes[c.leader()].Service()
	caller := kms.Caller{AccountID: c.creds.AccountID, Principal: "acs:ram::" + c.creds.AccountID + ":root"}
	const total, workers = 10000, 32
	// A software instance holds 1,000 keys: spread them over ten.
	instances := []string{c.creds.InstanceID}
	for len(instances) < total/kms.DefaultKeyQuota {
		in, _, err := svc.CreateInstance(ctxT(t), caller, kms.InstanceInput{Type: "software", Name: fmt.Sprintf("bulk-%d", len(instances))})
		if err != nil {
			t.Fatal(err)
		}
		instances = append(instances, in.ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < total; i += workers {
				in := kms.CreateKeyInput{DKMSInstanceID: instances[i%len(instances)], Description: strconv.Itoa(i)}
				if _, _, err := svc.CreateKey(context.Background(), caller, in); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, err := svc.SaveSnapshot(ctxT(t), caller, &snap); err != nil {
		t.Fatal(err)
	}
	want, _ := c.nodes[c.leader()].FSM().Hash()

	dst := newTestCluster(t, 3, opts)
	f, _ := os.CreateTemp(t.TempDir(), "snap")
	f.Write(snap.Bytes())
	dstCaller := kms.Caller{AccountID: dst.creds.AccountID, Principal: "acs:ram::" + dst.creds.AccountID + ":root"}
	sum, err := dst.nodes[0].Service().RestoreSnapshot(ctxT(t), &dstCaller, f)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Keys != total {
		t.Fatalf("restored %d keys", sum.Keys)
	}
	for i, n := range dst.nodes {
		if err := n.FSM().WaitForIndex(ctxT(t), sum.Index); err != nil {
			t.Fatal(err)
		}
		if got, _ := n.FSM().Hash(); got != want {
			t.Fatalf("n%d of the new cluster differs from the saved catalogue", i+1)
		}
	}
}
