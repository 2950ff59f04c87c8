package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var autoSnapName = regexp.MustCompile(`^raftkms-\d{8}T\d{6}Z-idx(\d+)\.snap$`)

// autoSnaps lists the automatic snapshots in dir, by index.
func autoSnaps(t *testing.T, dir string) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if m := autoSnapName.FindStringSubmatch(e.Name()); m != nil {
			idx, _ := strconv.ParseUint(m[1], 10, 64)
			out[idx] = filepath.Join(dir, e.Name())
		}
	}
	return out
}

// Issue 14, automatic snapshots: a 3-node cluster started with
// --snapshot-interval writes, on its leader only, authenticated snapshots
// named by time and index, keeps the newest --snapshot-retain, runs the
// --snapshot-command hook with each file, and reports the last one in its
// metrics; `kmsctl operator snapshot verify` accepts a file under the
// cluster's root key and refuses it under another; restored into a new
// cluster, the file brings the keys back.
func TestAutoSnapshot_LeaderWritesVerifiableRestorableFiles(t *testing.T) {
	rootKey := newRootKeyFile(t)
	copies := t.TempDir()
	hook := filepath.Join(t.TempDir(), "copy-off.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nexec cp \"$2\" \""+copies+"/$1\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	a := &testCluster{t: t, RootKey: rootKey}
	dirs := map[string]string{}
	for i := range 3 {
		n := newNode(t, fmt.Sprintf("s%d", i+1), zones[i%len(zones)], rootKey)
		dirs[n.ID] = filepath.Join(filepath.Dir(n.DataDir), "snapshots")
		// The hook's first word is an argument of ours, the path comes last.
		n.Extra = []string{"--snapshot-interval", "200ms", "--snapshot-dir", dirs[n.ID], "--snapshot-retain", "2",
			"--snapshot-command", hook + " " + n.ID}
		n.Env = []string{"KMSD_TEST_SNAPSHOT_MIN_INTERVAL=100ms"}
		a.Nodes = append(a.Nodes, n)
	}
	for _, n := range a.Nodes {
		n.Expect = 3
		for _, o := range a.Nodes {
			if o != n {
				n.Join = append(n.Join, o.Gossip)
			}
		}
		n.Start()
	}
	a.WaitReady(45 * time.Second)
	a.Init()
	k := a.createKey(a.Nodes[0], "kept by an automatic snapshot")
	p := b64("sealed before the disaster")
	blob := a.encrypt(a.Nodes[1], k, p, "")
	leader := a.Leader()

	// Wait for a file holding the key: verify the leader's newest file
	// until one names it.
	var file string
	eventually(t, 30*time.Second, "an automatic snapshot holding the key on the leader", func() error {
		snaps := autoSnaps(t, dirs[leader.ID])
		var newest uint64
		for idx := range snaps {
			newest = max(newest, idx)
		}
		if newest == 0 {
			return fmt.Errorf("no snapshot in %s", dirs[leader.ID])
		}
		r := kmsctl(t, nil, "operator", "snapshot", "verify", snaps[newest], "--root-key-file", rootKey)
		if r.Code != 0 {
			return fmt.Errorf("verify: %s", r)
		}
		if !strings.Contains(r.Stdout, " 1 keys") {
			return fmt.Errorf("newest file does not hold the key yet: %s", r.Stdout)
		}
		file = snaps[newest]
		return nil
	})
	t.Logf("automatic snapshot on the leader %s: %s", leader.ID, file)
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file mode %v (%v), want 0600", fi.Mode(), err)
	}
	if di, err := os.Stat(dirs[leader.ID]); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("snapshot dir mode %v (%v), want 0700", di.Mode(), err)
	}

	// Nothing changes any more: the leader skips, and keeps at most 2.
	eventually(t, 30*time.Second, "skipped ticks in the leader's metrics", func() error {
		_, body, err := httpGet(leader.Endpoint() + "/metrics")
		if err != nil {
			return err
		}
		m := string(body)
		for _, want := range []string{"kms_snapshot_last_success_timestamp_seconds ", "kms_snapshot_last_size_bytes " + strconv.FormatInt(fi.Size(), 10), "kms_snapshot_failures_total 0", "kms_snapshot_command_failures_total 0"} {
			if !strings.Contains(m, want) {
				return fmt.Errorf("metrics lack %q", want)
			}
		}
		if strings.Contains(m, "kms_snapshots_skipped_total 0\n") {
			return fmt.Errorf("no tick skipped yet")
		}
		return nil
	})
	if snaps := autoSnaps(t, dirs[leader.ID]); len(snaps) > 2 {
		t.Fatalf("the leader keeps %d snapshots, want at most 2 (--snapshot-retain 2)", len(snaps))
	}
	// Followers write nothing (the cluster kept one leader throughout).
	if l := a.Leader(); l.ID == leader.ID {
		for _, n := range a.Followers() {
			if snaps := autoSnaps(t, dirs[n.ID]); len(snaps) != 0 {
				t.Fatalf("follower %s wrote automatic snapshots: %v", n.ID, snaps)
			}
		}
	}
	// The hook got the path: its copy is the same file.
	copied, err := os.ReadFile(filepath.Join(copies, leader.ID))
	orig, _ := os.ReadFile(file)
	if err != nil || string(copied) != string(orig) {
		t.Fatalf("--snapshot-command did not copy the newest snapshot (%v)", err)
	}

	// Offline verification: another root key is refused (exit 1, naming why).
	r := kmsctl(t, nil, "operator", "snapshot", "verify", file, "--root-key-file", newRootKeyFile(t))
	if r.Code != 1 || !strings.Contains(r.Stderr, "another root key") {
		t.Fatalf("verify under another root key: want exit 1 naming the root key:\n%s", r)
	}

	// Disaster: the cluster is gone; a new one with the same root key
	// takes the file.
	for _, n := range a.Nodes {
		n.Kill()
	}
	b := startCluster(t, "r", 3, rootKey)
	idx := restoreIntoNewCluster(t, b.Followers()[0], file)
	t.Logf("restored into a new cluster at index %d", idx)
	checkDecrypts(t, []string{"--credentials", a.CredsFile, "--endpoint", b.Nodes[2].Endpoint(), "--min-index", strconv.FormatUint(idx, 10)},
		"r3", []sealed{{Blob: blob, Plaintext: p, KeyID: k}})
}
