package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftkms/raftkms/fsm"
)

func useLogStore(name string) func(*Config) { return func(c *Config) { c.LogStore = name } }

// A new data dir gets raft-wal's segment files, and its state survives a
// restart.
func TestOpen_NewDataDirGetsTheWAL(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, "solo", dir)
	if n.store.backend.name != LogStoreWAL {
		t.Fatalf("backend %q, want %q", n.store.backend.name, LogStoreWAL)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", walDir, walMeta)); err != nil {
		t.Fatalf("no wal metadata: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", boltFile)); err == nil {
		t.Fatalf("a new data dir also got %s", boltFile)
	}
	n.stop()
}

// A data dir whose log is in bbolt (made by an earlier kmsd) keeps it,
// with its state, when kmsd starts without choosing; asking for the other
// backend is refused with what to do, and changes nothing.
func TestOpen_BoltDataDirKeepsBolt(t *testing.T) {
	dir := t.TempDir()
	n := openNodeWith(t, "solo", dir, "127.0.0.1:0", FastTiming(), useLogStore(LogStoreBolt))
	if err := n.store.BootstrapSelf(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leader", 5*time.Second, n.store.IsLeader)
	if res, err := n.store.Propose(ctxT(t), initCmd(t)); err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	before, _ := n.fsm.Hash()
	n.stop()

	_, _, _, err := tryOpenNode("solo", dir, "127.0.0.1:0", FastTiming(), useLogStore(LogStoreWAL))
	if err == nil || !strings.Contains(err.Error(), "--raft-log-store") || !strings.Contains(err.Error(), "raft/raft.db") {
		t.Fatalf("wal asked for on a boltdb data dir: %v; want a refusal naming the log and the flag", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", walDir)); err == nil {
		t.Fatal("the refused open created a wal dir")
	}

	again := openNode(t, "solo", dir)
	defer again.stop()
	if again.store.backend.name != LogStoreBolt {
		t.Fatalf("backend %q, want %q (the data dir's)", again.store.backend.name, LogStoreBolt)
	}
	assertStateKept(t, again, before)
}

// The same refusal the other way round.
func TestOpen_WALDataDirRefusesBolt(t *testing.T) {
	dir := t.TempDir()
	openNode(t, "solo", dir).stop()
	_, _, _, err := tryOpenNode("solo", dir, "127.0.0.1:0", FastTiming(), useLogStore(LogStoreBolt))
	if err == nil || !strings.Contains(err.Error(), "raft/wal/") {
		t.Fatalf("boltdb asked for on a wal data dir: %v; want a refusal naming the log", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", boltFile)); err == nil {
		t.Fatal("the refused open created raft.db")
	}
}

// A data dir holding both logs is refused: kmsd cannot tell which one is
// the node's.
func TestOpen_TwoLogsAreRefused(t *testing.T) {
	dir := t.TempDir()
	openNode(t, "solo", dir).stop()
	other := t.TempDir()
	openNodeWith(t, "solo", other, "127.0.0.1:0", FastTiming(), useLogStore(LogStoreBolt)).stop()
	if err := os.Rename(filepath.Join(other, "raft", boltFile), filepath.Join(dir, "raft", boltFile)); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := tryOpenNode("solo", dir, "127.0.0.1:0", FastTiming(), nil)
	if err == nil || !strings.Contains(err.Error(), "two Raft logs") {
		t.Fatalf("open with both logs: %v", err)
	}
}

// A second store on a data dir in use fails at once with a clear message,
// whatever the backend, and the first keeps working.
func TestOpen_DataDirInUseIsRefusedAtOnce(t *testing.T) {
	for _, backend := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			n := openNodeWith(t, "solo", dir, "127.0.0.1:0", FastTiming(), useLogStore(backend))
			defer n.stop()
			start := time.Now()
			_, _, _, err := tryOpenNode("solo", dir, "127.0.0.1:0", FastTiming(), nil)
			if err == nil || !strings.Contains(err.Error(), "in use by another kmsd process") {
				t.Fatalf("second open: %v", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("the second open took %s to fail; want at once", d)
			}
			if err := n.store.BootstrapSelf(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "leader", 5*time.Second, n.store.IsLeader)
		})
	}
}

// Raft must see raft-wal as monotonic through the cache and the counter:
// otherwise, after a snapshot moves a log past its last entry, Raft leaves
// a gap that raft-wal refuses.
func TestLogStore_MonotonicThroughTheWrappers(t *testing.T) {
	for backend, want := range map[string]bool{LogStoreWAL: true, LogStoreBolt: false} {
		n := openNodeWith(t, "solo", t.TempDir(), "127.0.0.1:0", FastTiming(), useLogStore(backend))
		m, ok := n.store.logs.(raft.MonotonicLogStore)
		if got := ok && m.IsMonotonic(); got != want {
			t.Errorf("%s: monotonic %v, want %v", backend, got, want)
		}
		n.stop()
	}
}

// A follower that missed more than the leader keeps in its log gets the
// leader's snapshot, and then appends after it: with raft-wal that needs
// Raft to have emptied the follower's log first.
func TestFollower_InstallsASnapshotAndAppendsAfterIt(t *testing.T) {
	for _, backend := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(backend, func(t *testing.T) {
			change := func(c *Config) { c.LogStore = backend; c.SnapshotThreshold = 4 }
			c := newTestClusterWith(t, 3, FastTiming(), change)
			l := c.leader()
			f, fi := c.followerAt()
			noop, _ := fsm.Encode(fsm.CmdNoop, fsm.NoopCmd{})
			res, err := l.store.Propose(ctxT(t), noop)
			if err != nil {
				t.Fatal(err)
			}
			waitApplied(t, f, res.Index, 5*time.Second, "before the stop")
			addr := f.store.Addr()
			f.stop()
			c.nodes[fi] = nil
			for i := 0; i < 40; i++ {
				if _, err := l.store.Propose(ctxT(t), noop); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.store.Snapshot(); err != nil {
				t.Fatal(err)
			}
			first, err := l.store.backend.logs.FirstIndex()
			if err != nil || first <= res.Index+1 {
				t.Fatalf("the leader's log starts at %d (%v): the follower could still catch up from it", first, err)
			}
			f = openNodeWith(t, f.id, f.dir, addr, FastTiming(), change)
			c.nodes[fi] = f
			for i := 0; i < 3; i++ {
				res, err = l.store.Propose(ctxT(t), noop)
				if err != nil {
					t.Fatal(err)
				}
			}
			waitApplied(t, f, res.Index, 10*time.Second, "after the snapshot")
			if lh, _ := l.fsm.Hash(); func() bool { fh, _ := f.fsm.Hash(); return fh != lh }() {
				t.Fatal("the follower's catalogue differs from the leader's")
			}
		})
	}
}

// A leader stopped right after its election used to hang in Shutdown: its
// term's barrier was still in Raft's buffered apply channel, which Raft
// never answers once it shuts down, and watchLeadership waited on it.
// Each round elects a single node and stops it at once; a stop must end.
func TestShutdown_RightAfterElectionEnds(t *testing.T) {
	for i := 0; i < 10; i++ {
		n := openNode(t, "solo", t.TempDir())
		if err := n.store.BootstrapSelf(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "leader", 5*time.Second, n.store.IsLeader)
		done := make(chan struct{})
		go func() { n.stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Shutdown did not return within 20 s", i)
		}
	}
}
