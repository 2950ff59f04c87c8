package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
)

// Issue 2: "a write answered OK is on a majority of disks". Every node is
// killed (SIGKILL, no shutdown) right after a burst of acknowledged writes;
// restarted on their data dirs, they have every one of them.
func TestDurability_AcknowledgedWritesSurviveKillingEveryNode(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	var keys []string
	var blobs []sealed
	for i := range 30 {
		n := c.Nodes[i%3]
		cl := c.Client(n)
		r, err := cl.Call(context.Background(), "CreateKey", map[string]string{"DKMSInstanceId": c.Creds.InstanceId, "Description": fmt.Sprint("durable ", i)})
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ KeyMetadata struct{ KeyId string } }
		r.Decode(&out)
		keys = append(keys, out.KeyMetadata.KeyId)
		if i%10 == 9 {
			p := b64(fmt.Sprint("durable data ", i))
			blobs = append(blobs, sealed{Blob: c.encrypt(n, out.KeyMetadata.KeyId, p, ""), Plaintext: p, KeyID: out.KeyMetadata.KeyId})
		}
	}
	last := keys[len(keys)-1]
	// The last write is the one most at risk: acknowledged, then at once
	// every process dies.
	if _, err := c.Client(c.Nodes[1]).Call(context.Background(), "CreateAlias", map[string]string{"AliasName": "alias/last", "KeyId": last}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		n.Kill()
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitReady(45 * time.Second)

	for _, n := range c.Nodes {
		listed := c.Ctl(n, "ListKeys", "--PageSize", "100").ok(t, nil).Stdout
		for _, k := range keys {
			if !strings.Contains(listed, k) {
				t.Fatalf("after every node was killed, %s has lost acknowledged key %s", n.ID, k)
			}
		}
		var d struct{ KeyMetadata struct{ KeyId string } }
		c.Ctl(n, "DescribeKey", "--KeyId", "alias/last").ok(t, &d)
		if d.KeyMetadata.KeyId != last {
			t.Fatalf("on %s alias/last names %q, want %s", n.ID, d.KeyMetadata.KeyId, last)
		}
		checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, n.ID, blobs)
	}
}

// docs/CONSISTENCY.md: a key disabled through one node is refused by crypto
// on every node within milliseconds when they are connected, and always
// within --max-staleness.
func TestStaleness_DisableKeySeenByEveryNodeWithinBound(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	key := c.createKey(c.Nodes[0], "to be disabled")
	clients := []*client.Client{c.Client(c.Nodes[0]), c.Client(c.Nodes[1]), c.Client(c.Nodes[2])}
	for _, cl := range clients {
		if _, err := cl.Call(context.Background(), "Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk="}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Client(c.Leader()).Call(context.Background(), "DisableKey", map[string]string{"KeyId": key}); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	for i, cl := range clients {
		eventually(t, 5*time.Second, "Encrypt refused on "+c.Nodes[i].ID, func() error {
			_, err := cl.Call(context.Background(), "Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk="})
			var ae *client.APIError
			if errors.As(err, &ae) && ae.Code == "Rejected.Disabled" {
				return nil
			}
			return fmt.Errorf("Encrypt: %v", err)
		})
		t.Logf("%s refuses the disabled key %s after the DisableKey answer", c.Nodes[i].ID, time.Since(acked))
	}
	if d := time.Since(acked); d > time.Second {
		t.Errorf("connected nodes took %s to refuse a disabled key; docs/CONSISTENCY.md says milliseconds", d)
	}
}

// docs/CONSISTENCY.md: a node cut off from the leader (here: every other
// node paused with SIGSTOP) stops serving crypto once --max-staleness has
// passed, with 503 ServiceUnavailable.Stale, and serves again when the
// cluster is back.
func TestStaleness_CutOffNodeRefusesCryptoAfterMaxStaleness(t *testing.T) {
	c := startClusterWith(t, "n", 3, "", []string{"--max-staleness", "1s"})
	c.Init()
	key := c.createKey(c.Nodes[0], "staleness")
	p := b64("stale?")
	blob := c.encrypt(c.Nodes[0], key, p, "")
	alone := c.Followers()[0]
	cl := c.Client(alone)
	// The node to be cut off knows the key (what it serves from a stale
	// catalogue is the point here, not what it has not seen).
	idx := mustStatus(t, c.Leader()).CommitIndex
	if _, err := cl.Call(context.Background(), "Decrypt", map[string]string{"CiphertextBlob": blob}, client.WithMinIndex(idx)); err != nil {
		t.Fatal(err)
	}
	var paused []*kmsdNode
	for _, n := range c.Nodes {
		if n != alone {
			paused = append(paused, n)
		}
	}
	for _, n := range paused {
		n.Pause()
	}
	t.Cleanup(func() {
		for _, n := range paused {
			n.Resume()
		}
	})
	cut := time.Now()
	const maxStaleness = time.Second
	eventually(t, 10*time.Second, alone.ID+" refuses crypto once stale", func() error {
		start := time.Now()
		_, err := cl.Call(context.Background(), "Decrypt", map[string]string{"CiphertextBlob": blob})
		if err == nil && start.After(cut.Add(maxStaleness+100*time.Millisecond)) {
			t.Fatalf("%s served Decrypt for a request started %s after it lost the cluster; --max-staleness is %s", alone.ID, start.Sub(cut), maxStaleness)
		}
		var ae *client.APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusServiceUnavailable && ae.Code == "ServiceUnavailable.Stale" {
			return nil
		}
		return fmt.Errorf("Decrypt: %v", err)
	})
	refused := time.Since(cut)
	t.Logf("%s refused crypto %s after losing the cluster (--max-staleness 1s)", alone.ID, refused)
	if refused > 8*time.Second {
		t.Errorf("%s kept serving crypto for %s without the leader; --max-staleness is 1s", alone.ID, refused)
	}
	if code, _ := healthCode(alone); code == http.StatusOK {
		t.Errorf("%s reports healthy while it has no leader", alone.ID)
	}

	for _, n := range paused {
		n.Resume()
	}
	c.WaitReady(30 * time.Second)
	eventually(t, 10*time.Second, alone.ID+" serves crypto again", func() error {
		_, err := cl.Call(context.Background(), "Decrypt", map[string]string{"CiphertextBlob": blob})
		return err
	})
}

// DESIGN.md §3: a key (or key version) a node does not know triggers a
// read-index round trip to the leader "before answering not found". When
// that round trip cannot be made — the node is cut off — the node does not
// know, and must say so (503), not answer that a valid ciphertext is invalid
// or that an existing key does not exist: clients treat those as final.
//
// Two kinds of name are asked about. Names that never existed anywhere must
// get the 503: the node cannot tell them from names made while it was away.
// Names made while the node was paused get the 503 too, unless the node
// did apply them after all: replication to a paused process lands in its
// socket buffer and is read when it wakes, so success is allowed exactly
// when the node's applied index covers the write.
func TestPartition_CutOffNodeDoesNotCallUnseenKeysNonexistent(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	alone := c.Followers()[0]
	var others []*kmsdNode
	for _, n := range c.Nodes {
		if n != alone {
			others = append(others, n)
		}
	}
	// alone knows the credentials (it has applied init)...
	if _, err := c.Client(alone).Call(context.Background(), "ListKeys", nil, client.WithMinIndex(mustStatus(t, c.Leader()).CommitIndex)); err != nil {
		t.Fatal(err)
	}
	// ...but is paused while the other two (a majority) create a key and
	// seal data under it.
	alone.Pause()
	t.Cleanup(alone.Resume)
	write := func(action string, params map[string]string) (*client.Response, map[string]any) {
		t.Helper()
		r, err := c.Client(others[0]).Call(context.Background(), action, params)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		var out map[string]any
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		return r, out
	}
	created, out := write("CreateKey", map[string]string{"DKMSInstanceId": c.Creds.InstanceId, "Description": "unseen by the cut-off node"})
	key := out["KeyMetadata"].(map[string]any)["KeyId"].(string)
	aliased, _ := write("CreateAlias", map[string]string{"AliasName": "alias/unseen", "KeyId": key})
	p := b64("sealed while a node slept")
	_, out = write("Encrypt", map[string]string{"KeyId": key, "Plaintext": p})
	blob := out["CiphertextBlob"].(string)

	// A blob that names a key version no cluster ever had.
	forged, err := kcrypto.Seal(make([]byte, 32), uuid.NewString(), []byte(p), nil)
	if err != nil {
		t.Fatal(err)
	}

	// Then the others stop and alone wakes up, well within
	// --max-staleness (5s) of its last contact with the leader.
	for _, n := range others {
		n.Pause()
	}
	t.Cleanup(func() {
		for _, n := range others {
			n.Resume()
		}
	})
	alone.Resume()

	// All at once, within --max-staleness of its last contact with the
	// leader. needs is the index the node must have applied to know the
	// answer; 0 means the name never existed.
	cl := c.Client(alone)
	cases := []struct {
		action string
		params map[string]string
		needs  uint64
	}{
		{"Decrypt", map[string]string{"CiphertextBlob": blob}, created.Index},
		{"DescribeKey", map[string]string{"KeyId": key}, created.Index},
		{"Encrypt", map[string]string{"KeyId": "alias/unseen", "Plaintext": p}, aliased.Index},
		{"Decrypt", map[string]string{"CiphertextBlob": base64.StdEncoding.EncodeToString(forged)}, 0},
		{"DescribeKey", map[string]string{"KeyId": uuid.NewString()}, 0},
		{"Encrypt", map[string]string{"KeyId": "alias/never-made", "Plaintext": p}, 0},
	}
	errs := make([]error, len(cases))
	took := make([]time.Duration, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, errs[i] = cl.Call(ctx, tc.action, tc.params)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	// The others are still paused, so nothing more can reach alone.
	applied := mustStatus(t, alone).AppliedIndex
	for i, tc := range cases {
		what := fmt.Sprintf("%s of a name made while it slept (index %d; it applied %d)", tc.action, tc.needs, applied)
		if tc.needs == 0 {
			what = tc.action + " of a name that never existed"
		}
		var ae *client.APIError
		switch {
		case errs[i] == nil && tc.needs != 0 && applied >= tc.needs:
			t.Logf("%s: served, as it had applied the write before the others froze", what)
		case errs[i] == nil:
			t.Errorf("%s on the cut-off node succeeded", what)
		case !errors.As(errs[i], &ae):
			t.Errorf("BUG: %s on a node cut off from the leader got no answer within %s (%v); want a prompt 503", what, took[i].Round(time.Millisecond), errs[i])
		case ae.StatusCode != http.StatusServiceUnavailable:
			t.Errorf("BUG: %s on a node cut off from the leader answered after %s: HTTP %d %s (%s); want 503 — it could not ask the leader, so it does not know",
				what, took[i].Round(time.Millisecond), ae.StatusCode, ae.Code, ae.Message)
		default:
			t.Logf("%s: %s after %s", what, ae.Code, took[i].Round(time.Millisecond))
		}
	}

	// With the cluster back, it knows the key.
	for _, n := range others {
		n.Resume()
	}
	c.WaitReady(30 * time.Second)
	checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", alone.Endpoint()}, alone.ID, []sealed{{Blob: blob, Plaintext: p, KeyID: key}})
}
