package node

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/autosnap"
)

// tickSnapshots drives node i's automatic snapshot loop through one whole
// tick: the loop takes the second tick only once it has finished the first.
func (c *testCluster) tickSnapshots(i int) {
	c.t.Helper()
	for range 2 {
		select {
		case c.snapTicks[i] <- time.Now():
		case <-time.After(20 * time.Second):
			c.t.Fatalf("node %d's snapshot loop does not take ticks", i)
		}
	}
}

func (c *testCluster) autoSnaps(i int) []autosnap.File {
	c.t.Helper()
	files, err := autosnap.List(filepath.Join(c.dirs[i], "autosnap"))
	if err != nil && !os.IsNotExist(err) {
		c.t.Fatal(err)
	}
	return files
}

// Issue 14: with the snapshot loop on every node, only the leader writes;
// after leadership moves, the new leader writes and the old one stops; each
// file verifies under the cluster's root key and holds what was written.
func TestAutoSnapshot_OnlyTheLeaderWritesAndANewLeaderTakesOver(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{snapshots: true})
	k := c.createKey(0, "before the first snapshot")
	l := c.leader()
	if err := c.nodes[l].Service().LinearizableRead(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		c.tickSnapshots(i)
	}
	for _, f := range c.followers() {
		if files := c.autoSnaps(f); len(files) != 0 {
			t.Fatalf("follower n%d wrote %v", f+1, files)
		}
	}
	waitFor(t, "the leader's snapshot", 10*time.Second, func() bool { return len(c.autoSnaps(l)) == 1 })
	first := c.autoSnaps(l)[0]
	info := verifyAutoSnap(t, c.root, filepath.Join(c.dirs[l], "autosnap", first.Name))
	if info.Keys != 1 || info.LastIndex != first.Index {
		t.Fatalf("first snapshot holds %d keys at index %d (named idx%d)", info.Keys, info.LastIndex, first.Index)
	}
	// Nothing changed: another tick writes nothing.
	c.tickSnapshots(l)
	c.tickSnapshots(l)
	if n := len(c.autoSnaps(l)); n != 1 {
		t.Fatalf("the leader wrote %d files with nothing changed", n)
	}

	// Leadership moves; a write; only the new leader writes.
	to := c.followers()[0]
	if err := c.nodes[l].Store().TransferLeadership(c.nodes[to].ID(), c.nodes[to].ClusterAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new leader", 20*time.Second, func() bool { return c.nodes[to].Store().IsLeader() })
	c.mustCall(to, "UpdateKeyDescription", map[string]string{"KeyId": k, "Description": "after the transfer"})
	c.createKey(to, "after the transfer")
	for i := range c.nodes {
		c.tickSnapshots(i)
	}
	waitFor(t, "the new leader's snapshot", 10*time.Second, func() bool { return len(c.autoSnaps(to)) == 1 })
	if n := len(c.autoSnaps(l)); n != 1 {
		t.Fatalf("the old leader, now a follower, wrote again: %d files", n)
	}
	second := c.autoSnaps(to)[0]
	info = verifyAutoSnap(t, c.root, filepath.Join(c.dirs[to], "autosnap", second.Name))
	if info.Keys != 2 || second.Index <= first.Index {
		t.Fatalf("new leader's snapshot: %d keys at index %d (first at %d)", info.Keys, second.Index, first.Index)
	}
}

func verifyAutoSnap(t *testing.T, root *kcrypto.RootKey, path string) fsm.SnapshotInfo {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := fsm.New(nil, fsm.WithSnapshotKey(root.Derive(kcrypto.LabelSnapshotMAC))).VerifySnapshot(f, fsm.VerifyOptions{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(info.RootCheck, root.CheckValue()) {
		t.Fatalf("%s: another root key's check value", path)
	}
	return info
}
