package autosnap

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	itest "github.com/raftkms/raftkms/internal/testutil"
)

// fakeSource stands for the FSM: a state string at an applied index.
type fakeSource struct {
	mu    sync.Mutex
	state string
	index uint64
	fail  error
}

func (f *fakeSource) set(state string, index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.index = state, index
}

func (f *fakeSource) Hash() ([32]byte, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sha256.Sum256([]byte(f.state)), f.index
}

func (f *fakeSource) WriteSnapshotTo(w io.Writer) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, f.fail
	}
	_, err := fmt.Fprintf(w, "snapshot of %q at %d", f.state, f.index)
	return f.index, err
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

type env struct {
	s      *Snapshotter
	src    *fakeSource
	clock  *fakeClock
	reg    *prometheus.Registry
	dir    string
	leader bool
}

func newEnv(t *testing.T, retain int, command string) *env {
	t.Helper()
	e := &env{src: &fakeSource{state: "a", index: 10}, clock: &fakeClock{t: time.Date(2026, 12, 6, 5, 15, 0, 0, time.UTC)},
		reg: prometheus.NewRegistry(), dir: filepath.Join(t.TempDir(), "snaps"), leader: true}
	s, err := New(Config{Dir: e.dir, Retain: retain, Command: command, CommandTimeout: 10 * time.Second,
		Source: e.src, IsLeader: func() bool { return e.leader }, Now: e.clock.now, Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	return e
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestOnce_WritesOnLeaderNamedByTimeAndIndex(t *testing.T) {
	e := newEnv(t, 3, "")
	fi, err := os.Stat(e.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", fi.Mode(), err)
	}
	r := e.s.Once(context.Background())
	if r.Err != nil || r.Skipped {
		t.Fatalf("%+v", r)
	}
	want := filepath.Join(e.dir, "raftkms-20261206T051500Z-idx10.snap")
	if r.Path != want {
		t.Fatalf("path %s, want %s", r.Path, want)
	}
	fi, err = os.Stat(want)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(want)
	if string(data) != `snapshot of "a" at 10` {
		t.Fatalf("content %q", data)
	}
	if got := names(t, e.dir); len(got) != 1 {
		t.Fatalf("dir holds %v (a temporary file left?)", got)
	}
	if v := value(e.s.m.lastSuccess); v != float64(e.clock.t.Unix()) {
		t.Fatalf("last success %v", v)
	}
	if v := value(e.s.m.lastSize); v != float64(len(data)) {
		t.Fatalf("last size %v, want %d", v, len(data))
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, n := range []string{"kms_snapshot_last_success_timestamp_seconds", "kms_snapshot_last_size_bytes", "kms_snapshot_failures_total", "kms_snapshot_command_failures_total"} {
		if !seen[n] {
			t.Errorf("%s not on the registry", n)
		}
	}
}

func TestOnce_FollowerWritesNothingUntilItLeads(t *testing.T) {
	e := newEnv(t, 3, "")
	e.leader = false
	if r := e.s.Once(context.Background()); r.Path != "" || r.Skipped || r.Err != nil {
		t.Fatalf("follower: %+v", r)
	}
	if got := names(t, e.dir); len(got) != 0 {
		t.Fatalf("follower wrote %v", got)
	}
	e.leader = true
	if r := e.s.Once(context.Background()); r.Path == "" {
		t.Fatalf("new leader: %+v", r)
	}
}

func TestOnce_SkipsWhenNothingChanged(t *testing.T) {
	e := newEnv(t, 3, "")
	if r := e.s.Once(context.Background()); r.Path == "" {
		t.Fatalf("%+v", r)
	}
	e.clock.t = e.clock.t.Add(time.Hour)
	if r := e.s.Once(context.Background()); !r.Skipped {
		t.Fatalf("same index: %+v", r)
	}
	// The index moved (a no-op entry, a barrier) but the catalogue did not.
	e.src.set("a", 11)
	if r := e.s.Once(context.Background()); !r.Skipped {
		t.Fatalf("same catalogue: %+v", r)
	}
	e.src.set("b", 12)
	if r := e.s.Once(context.Background()); r.Path == "" || !strings.HasSuffix(r.Path, "T061500Z-idx12.snap") {
		t.Fatalf("changed: %+v", r)
	}
	if v := value(e.s.m.skipped); v != 2 {
		t.Fatalf("skipped %v", v)
	}
}

func TestNew_RestartDoesNotRewriteTheNewestFile(t *testing.T) {
	e := newEnv(t, 3, "")
	e.s.Once(context.Background())
	s2, err := New(Config{Dir: e.dir, Retain: 3, Source: e.src, IsLeader: func() bool { return true }, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if r := s2.Once(context.Background()); !r.Skipped {
		t.Fatalf("%+v", r)
	}
}

func TestOnce_RetainsNewestNAndLeavesOtherFiles(t *testing.T) {
	e := newEnv(t, 2, "")
	others := []string{"notes.txt", "raftkms-backup.snap", "raftkms-20200101T000000Z-idx1.snap.gz"}
	for _, n := range others {
		if err := os.WriteFile(filepath.Join(e.dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		e.src.set(fmt.Sprint("state", i), uint64(100+i))
		e.clock.t = e.clock.t.Add(time.Minute)
		if r := e.s.Once(context.Background()); r.Path == "" {
			t.Fatalf("%d: %+v", i, r)
		}
	}
	files, err := e.s.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Index != 103 || files[1].Index != 104 {
		t.Fatalf("kept %+v", files)
	}
	for _, n := range others {
		if _, err := os.Stat(filepath.Join(e.dir, n)); err != nil {
			t.Fatalf("%s removed: %v", n, err)
		}
	}
}

func TestOnce_FailureCountedAndNothingLeft(t *testing.T) {
	e := newEnv(t, 2, "")
	e.src.fail = fmt.Errorf("disk on fire")
	if r := e.s.Once(context.Background()); r.Err == nil {
		t.Fatalf("%+v", r)
	}
	if v := value(e.s.m.failures); v != 1 {
		t.Fatalf("failures %v", v)
	}
	if got := names(t, e.dir); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
	// The next tick tries again.
	e.src.fail = nil
	if r := e.s.Once(context.Background()); r.Path == "" {
		t.Fatalf("%+v", r)
	}
}

func shellHook(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOnce_HookGetsThePathAsOneArgument(t *testing.T) {
	out := filepath.Join(t.TempDir(), "args")
	hook := shellHook(t, `for a in "$@"; do printf '%s\n' "$a"; done > "`+out+`"`+"\n")
	e := newEnv(t, 2, hook+" --to remote")
	r := e.s.Once(context.Background())
	if r.Err != nil || r.HookErr != nil {
		t.Fatalf("%+v", r)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "--to\nremote\n" + r.Path + "\n"; string(got) != want {
		t.Fatalf("hook args %q, want %q", got, want)
	}
}

func TestOnce_HookFailureCountedNotFatal(t *testing.T) {
	e := newEnv(t, 2, shellHook(t, "echo copy failed >&2\nexit 3\n"))
	r := e.s.Once(context.Background())
	if r.Err != nil || r.Path == "" || r.HookErr == nil || !strings.Contains(r.HookErr.Error(), "copy failed") {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(r.Path); err != nil {
		t.Fatalf("snapshot removed after a hook failure: %v", err)
	}
	if v := value(e.s.m.commandFailure); v != 1 {
		t.Fatalf("command failures %v", v)
	}
	if v := value(e.s.m.failures); v != 0 {
		t.Fatalf("snapshot failures %v", v)
	}
}

func TestOnce_HookTimeout(t *testing.T) {
	e := newEnv(t, 2, shellHook(t, "exec sleep 60\n"))
	e.s.cfg.CommandTimeout = 100 * time.Millisecond
	r := e.s.Once(context.Background())
	if r.HookErr == nil || !strings.Contains(r.HookErr.Error(), "timed out") {
		t.Fatalf("%+v", r)
	}
}

func TestRun_WritesAtEachTickAndStops(t *testing.T) {
	e := newEnv(t, 5, "")
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.s.Run(ctx, ticks); close(done) }()
	ticks <- time.Time{}
	itest.Eventually(t, "one snapshot", 5*time.Second, func() bool {
		f, _ := List(e.dir)
		return len(f) == 1
	})
	e.src.set("b", 20)
	ticks <- time.Time{}
	itest.Eventually(t, "two snapshots", 5*time.Second, func() bool {
		f, _ := List(e.dir)
		return len(f) == 2
	})
	cancel()
	<-done
}

func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

func TestNew_RemovesItsInterruptedTemporaryFilesOnly(t *testing.T) {
	dir := t.TempDir()
	keep := []string{"notes.txt", ".other.tmp"}
	for _, n := range append([]string{".raftkms-snapshot-123.tmp"}, keep...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(Config{Dir: dir, Retain: 1, Source: &fakeSource{}, IsLeader: func() bool { return true }}); err != nil {
		t.Fatal(err)
	}
	got := names(t, dir)
	if strings.Join(got, ",") != ".other.tmp,notes.txt" {
		t.Fatalf("dir holds %v", got)
	}
}
