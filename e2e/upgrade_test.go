package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/fsm"
)

// The rolling-upgrade test (make test-upgrade; issue 14): a 3-node cluster of
// an earlier build of main, under steady CreateKey, Encrypt and Decrypt load
// through every node, has its nodes replaced one by one (followers first,
// the leader last) by this build on the same data dirs and ports. Zero
// client requests may fail. A request answered 503 is retried, at most
// upgradeRetries times within upgradeRetryBudget (the bound documented in
// docs/OPERATIONS.md, Rolling upgrades); anything else, or a 503 beyond the
// bound, is a failure.
const (
	upgradeRetries      = 5
	upgradeRetryBudget  = 5 * time.Second
	upgradeBaseFile     = "scripts/upgrade-base"
	upgradeBaseOverride = "RAFTKMS_UPGRADE_BASE"
)

// upgradeBase picks the build to upgrade from, by this rule:
//
//  1. $RAFTKMS_UPGRADE_BASE, any git revision, when set (a manual run);
//  2. else the newest v* tag that is an ancestor of HEAD's parent (so a
//     release tag on HEAD itself is not "upgraded" to itself) and a
//     descendant of the commit in scripts/upgrade-base: the last release;
//  3. else the commit in scripts/upgrade-base: the first commit of issue
//     14's work, from before log levels existed.
//
// A clone without history (shallow) fetches it once (git fetch --unshallow);
// if that fails it cannot build an earlier commit, and the test fails saying
// so. CI clones main with its history.
func upgradeBase(t *testing.T) (commit, name, why string) {
	t.Helper()
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = repoRoot
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	shallow, err := git("rev-parse", "--is-shallow-repository")
	if err != nil {
		t.Fatalf("the upgrade test builds an earlier commit from git history, but %s is not a git checkout: %v", repoRoot, err)
	}
	if shallow == "true" {
		// Fetch the history once from where the clone came from; only if
		// that fails is the test impossible here.
		if _, ferr := git("fetch", "--quiet", "--unshallow"); ferr != nil {
			t.Fatalf("this clone is shallow and `git fetch --unshallow` failed (%v): the upgrade test builds an earlier commit of main from git history. "+
				"Clone with full history (or actions/checkout with fetch-depth: 0)", ferr)
		}
	}
	if rev := os.Getenv(upgradeBaseOverride); rev != "" {
		c, err := git("rev-parse", "--verify", rev+"^{commit}")
		if err != nil {
			t.Fatalf("%s=%s: %v", upgradeBaseOverride, rev, err)
		}
		return c, rev, "$" + upgradeBaseOverride
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, upgradeBaseFile))
	if err != nil {
		t.Fatal(err)
	}
	var pinned string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			pinned = line
			break
		}
	}
	if pinned == "" {
		t.Fatalf("%s names no commit", upgradeBaseFile)
	}
	if _, err := git("cat-file", "-e", pinned+"^{commit}"); err != nil {
		t.Fatalf("%s names commit %s, which is not in this clone's history (fetch main with its history): %v", upgradeBaseFile, pinned, err)
	}
	if tag, err := git("describe", "--tags", "--abbrev=0", "--match", "v*", "HEAD^"); err == nil && tag != "" {
		if _, err := git("merge-base", "--is-ancestor", pinned, tag); err == nil {
			c, err := git("rev-parse", "--verify", tag+"^{commit}")
			if err != nil {
				t.Fatal(err)
			}
			return c, tag, "the newest v* tag before HEAD"
		}
	}
	return pinned, "base-" + pinned[:12], upgradeBaseFile
}

// buildKmsdAt builds cmd/kmsd of commit into a temporary directory, from a
// `git archive` of that commit (the repository and its worktrees are left
// untouched), with the module and build caches of this run.
func buildKmsdAt(t *testing.T, commit, version string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("git", "archive", "--format=tar", commit)
	archive.Dir = repoRoot
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var errs bytes.Buffer
	archive.Stderr, untar.Stderr = &errs, &errs
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, errs.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("tar: %v\n%s", err, errs.String())
	}
	bin := filepath.Join(dir, "kmsd-"+version)
	build := exec.Command(goTool(), "build", "-buildvcs=false", "-ldflags", "-X main.version="+version, "-o", bin, "./cmd/kmsd")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kmsd at %s: %v\n%s", commit, err, out)
	}
	return bin
}

// upgradeLoad is the steady client load: one worker per node, each looping
// CreateKey (one in sixteen), Encrypt under a random acknowledged key and
// Decrypt of a random acknowledged ciphertext, through its node only.
type upgradeLoad struct {
	t        *testing.T
	c        *testCluster
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	gates    map[string]*sync.Mutex // held while a worker's node is down
	ok       atomic.Int64
	retry    atomic.Int64
	mu       sync.Mutex
	keys     []ackedKey
	blobs    []ackedBlob
	failed   []string
	// retried names the 503s that were retried (within the bound).
	retried []string
}

type ackedKey struct {
	id    string
	index uint64 // the write's Raft index (read-your-writes on any node)
}

type ackedBlob struct {
	keyID, blob, plaintext string
	index                  uint64
}

func startUpgradeLoad(t *testing.T, c *testCluster) *upgradeLoad {
	l := &upgradeLoad{t: t, c: c, stop: make(chan struct{}), gates: map[string]*sync.Mutex{}}
	for _, n := range c.Nodes {
		l.gates[n.ID] = &sync.Mutex{}
	}
	for _, n := range c.Nodes {
		l.wg.Add(1)
		go l.worker(n)
	}
	// A test that fails half-way stops its load too (without waiting: a
	// drained worker stays parked on its gate).
	t.Cleanup(func() { l.stopOnce.Do(func() { close(l.stop) }) })
	return l
}

// drain waits for n's worker to finish its request in flight and holds it
// until resume: the load balancer taking a node out before it is stopped.
func (l *upgradeLoad) drain(n *kmsdNode)  { l.gates[n.ID].Lock() }
func (l *upgradeLoad) resume(n *kmsdNode) { l.gates[n.ID].Unlock() }

func (l *upgradeLoad) worker(n *kmsdNode) {
	defer l.wg.Done()
	cl, err := client.New(n.Endpoint(), l.c.Creds.AccessKeyId, l.c.Creds.AccessKeySecret, client.WithTimeout(10*time.Second))
	if err != nil {
		l.fail(fmt.Sprintf("%s: client: %v", n.ID, err))
		return
	}
	// A steady rate, not a flood: about 100 requests a second per node
	// (the instance's 1,000-key quota must last the whole run).
	pace := time.NewTicker(10 * time.Millisecond)
	defer pace.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-pace.C:
		}
		gate := l.gates[n.ID]
		gate.Lock()
		l.op(cl, n, i)
		gate.Unlock()
	}
}

func (l *upgradeLoad) op(cl *client.Client, n *kmsdNode, i int) {
	l.mu.Lock()
	var key ackedKey
	var blob ackedBlob
	if len(l.keys) > 0 {
		key = l.keys[rand.IntN(len(l.keys))]
	}
	if len(l.blobs) > 0 {
		blob = l.blobs[rand.IntN(len(l.blobs))]
	}
	l.mu.Unlock()
	switch {
	case key.id == "" || i%16 == 0:
		var out struct{ KeyMetadata struct{ KeyId string } }
		res, err := l.call(cl, n, "CreateKey", map[string]string{"DKMSInstanceId": l.c.Creds.InstanceId,
			"Description": fmt.Sprintf("upgrade load %s %d", n.ID, i)}, 0, &out)
		if err == nil {
			l.mu.Lock()
			l.keys = append(l.keys, ackedKey{id: out.KeyMetadata.KeyId, index: res.Index})
			l.mu.Unlock()
		}
	case blob.blob == "" || i%2 == 0:
		pt := b64(fmt.Sprintf("%s %d %s", n.ID, i, randomHex(8)))
		var out struct{ CiphertextBlob string }
		if _, err := l.call(cl, n, "Encrypt", map[string]string{"KeyId": key.id, "Plaintext": pt}, key.index, &out); err == nil {
			l.mu.Lock()
			l.blobs = append(l.blobs, ackedBlob{keyID: key.id, blob: out.CiphertextBlob, plaintext: pt, index: key.index})
			l.mu.Unlock()
		}
	default:
		var out struct{ Plaintext, KeyId string }
		if _, err := l.call(cl, n, "Decrypt", map[string]string{"CiphertextBlob": blob.blob}, blob.index, &out); err == nil &&
			(out.Plaintext != blob.plaintext || out.KeyId != blob.keyID) {
			l.fail(fmt.Sprintf("%s: Decrypt gave %q under %s, want %q under %s", n.ID, out.Plaintext, out.KeyId, blob.plaintext, blob.keyID))
		}
	}
}

// call runs one action, retrying a 503 within the documented bound. Any
// other error, or a 503 past the bound, is recorded as a failed request.
func (l *upgradeLoad) call(cl *client.Client, n *kmsdNode, action string, params map[string]string, minIndex uint64, out any) (*client.Response, error) {
	deadline := time.Now().Add(upgradeRetryBudget)
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := cl.Call(ctx, action, params, client.WithMinIndex(minIndex))
		cancel()
		if err == nil {
			if err = res.Decode(out); err == nil {
				l.ok.Add(1)
				return res, nil
			}
		}
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusServiceUnavailable &&
			attempt < upgradeRetries && time.Now().Add(backoff).Before(deadline) {
			l.retry.Add(1)
			l.mu.Lock()
			l.retried = append(l.retried, fmt.Sprintf("%s via %s: %s", action, n.ID, apiErr.Code))
			l.mu.Unlock()
			time.Sleep(backoff) // a client's retry backoff, not test synchronization
			backoff *= 2
			continue
		}
		l.fail(fmt.Sprintf("%s %s through %s (attempt %d): %v", time.Now().Format("15:04:05.000"), action, n.ID, attempt+1, err))
		return nil, err
	}
}

func (l *upgradeLoad) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed = append(l.failed, msg)
}

// progress waits until the load has completed more requests since the call.
func (l *upgradeLoad) progress(what string, more int64) {
	from := l.ok.Load()
	eventually(l.t, 30*time.Second, what, func() error {
		if got := l.ok.Load() - from; got < more {
			return fmt.Errorf("%d requests succeeded, want %d", got, more)
		}
		return nil
	})
}

// finish stops the workers and waits for them.
func (l *upgradeLoad) finish() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// finalize runs kmsctl operator upgrade finalize through n.
func (c *testCluster) finalize(n *kmsdNode) ctlResult {
	c.t.Helper()
	return c.Ctl(n, "operator", "upgrade", "finalize")
}

func TestUpgrade_RollingFromAnEarlierBuildUnderLoad(t *testing.T) {
	began := time.Now()
	commit, name, why := upgradeBase(t)
	t.Logf("upgrading from %s (%s, chosen by %s)", name, commit[:12], why)
	oldBin := buildKmsdAt(t, commit, name)
	out, err := exec.Command(kmsdBin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	newVersion := strings.Fields(string(out))[1]
	t.Logf("old build ready after %s; new build %q, log level %d", time.Since(began).Round(time.Millisecond), newVersion, fsm.LogLevel)

	root := newRootKeyFile(t)
	c := &testCluster{t: t, RootKey: root}
	for i := range 3 {
		n := newNode(t, fmt.Sprintf("u%d", i+1), zones[i], root)
		n.Expect, n.Bin = 3, oldBin
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		for _, o := range c.Nodes {
			if o != n {
				n.Join = append(n.Join, o.Gossip)
			}
		}
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitReady(45 * time.Second)
	c.Init()

	load := startUpgradeLoad(t, c)
	load.progress("load on the old cluster", 300)
	// A snapshot the old build writes, for the new build to read at the end.
	oldSnap := filepath.Join(t.TempDir(), "old-build.snap")
	c.Ctl(c.Nodes[0], "operator", "snapshot", "save", oldSnap).ok(t, nil)

	// Followers first, the leader last.
	leader := c.Leader()
	order := append(c.Followers(), leader)
	baseLevel := 0
	for i, n := range order {
		load.drain(n)
		if code, took := n.Terminate(60 * time.Second); code != 0 {
			t.Fatalf("%s (old build) exited with %d after SIGTERM (%s)", n.ID, code, took)
		}
		n.Bin = ""
		n.Start()
		c.WaitReady(60 * time.Second)
		load.resume(n)
		load.progress(fmt.Sprintf("load after %s runs the new build", n.ID), 300)

		s := mustStatus(t, n)
		for _, m := range s.Members {
			if m.NodeId == n.ID && (m.Version != newVersion || m.LogLevel != fsm.LogLevel) {
				t.Fatalf("%s after its upgrade: version %q level %d, want %q level %d", n.ID, m.Version, m.LogLevel, newVersion, fsm.LogLevel)
			}
		}
		if i == len(order)-1 {
			break
		}
		// An old node remains: a write of the newest level is refused
		// with the Upgrading error, naming it — unless the base build
		// already runs this level.
		old := order[len(order)-1]
		m, _ := s.member(old.ID)
		if baseLevel == 0 {
			baseLevel = m.LogLevel
			t.Logf("the base build advertises log level %d (version %q)", baseLevel, m.Version)
		}
		if i == 0 {
			t.Logf("kmsctl operator members through %s, mid-upgrade:\n%s", n.ID, c.Ctl(n, "operator", "members").ok(t, nil).Stdout)
		}
		r := c.finalize(n)
		if baseLevel < fsm.LogLevel {
			if code := r.serviceError(t); code != "ServiceUnavailable.Upgrading" || !strings.Contains(r.Stderr, old.ID) {
				t.Fatalf("finalize with %s still on the old build: want ServiceUnavailable.Upgrading naming it:\n%s", old.ID, r)
			}
			t.Logf("finalize through %s, refused as it should: %s", n.ID, strings.TrimSpace(r.Stderr))
			if s.Upgrade.ClusterLevel != baseLevel || !strings.Contains(strings.Join(s.Upgrade.NodesBehind, ","), old.ID) {
				t.Fatalf("%s's status during the upgrade: %+v", n.ID, s.Upgrade)
			}
		} else {
			r.ok(t, nil)
		}
	}

	// Every node runs the new build: the newest level works.
	var fin struct{ FinalizedLevel int }
	c.finalize(c.Nodes[0]).ok(t, &fin)
	if fin.FinalizedLevel != fsm.LogLevel {
		t.Fatalf("finalized level %d, want %d", fin.FinalizedLevel, fsm.LogLevel)
	}
	load.progress("load after the upgrade", 300)

	// A rollback is over: a node of the old build that joins now is kept
	// out of Raft (it would stop at the FinalizeLevel entry), and the
	// cluster keeps serving. (A base of this very level is welcome.)
	late := newNode(t, "u4", zones[3], root)
	late.Bin, late.Join = oldBin, []string{c.Nodes[0].Gossip}
	if baseLevel < fsm.LogLevel {
		lateJoinerStaysOut(t, c, late, load)
	}
	load.finish()

	load.mu.Lock()
	failed, keys, blobs := load.failed, load.keys, load.blobs
	load.mu.Unlock()
	t.Logf("%d requests succeeded (%d retries on 503: %v), %d keys and %d ciphertexts acknowledged",
		load.ok.Load(), load.retry.Load(), load.retried, len(keys), len(blobs))
	if len(failed) > 0 {
		t.Fatalf("%d client requests failed during the upgrade:\n%s", len(failed), strings.Join(failed, "\n"))
	}

	// Every node on the new build, at the finalized level; every
	// acknowledged key readable, and ciphertexts decrypt, on every node.
	idx := mustStatus(t, c.Leader()).CommitIndex
	for _, n := range c.Nodes {
		s := mustStatus(t, n)
		if s.Upgrade.FinalizedLevel != fsm.LogLevel || s.Upgrade.ClusterLevel != fsm.LogLevel || len(s.Upgrade.NodesBehind) != 0 {
			t.Fatalf("%s's upgrade status after the upgrade: %+v", n.ID, s.Upgrade)
		}
		for _, o := range c.Nodes {
			m, _ := s.member(o.ID)
			if m.Version != newVersion || m.LogLevel != fsm.LogLevel || !m.RaftMember {
				t.Fatalf("%s lists %s as version %q level %d raft member %v, want %q level %d", n.ID, o.ID, m.Version, m.LogLevel, m.RaftMember, newVersion, fsm.LogLevel)
			}
		}
		if m, ok := s.member(late.ID); ok && m.RaftMember {
			t.Fatalf("%s lists the old build's %s as a Raft member: %+v", n.ID, late.ID, m)
		}
		cl := c.Client(n)
		for _, k := range keys {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := cl.Call(ctx, "DescribeKey", map[string]string{"KeyId": k.id}, client.WithMinIndex(idx))
			cancel()
			if err != nil {
				t.Fatalf("acknowledged key %s on %s: %v", k.id, n.ID, err)
			}
		}
		for i, b := range blobs {
			if i%5 != 0 { // a sample per node; every one on the first
				if n != c.Nodes[0] {
					continue
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := cl.Call(ctx, "Decrypt", map[string]string{"CiphertextBlob": b.blob}, client.WithMinIndex(idx))
			cancel()
			var out struct{ Plaintext string }
			if err != nil || res.Decode(&out) != nil || out.Plaintext != b.plaintext {
				t.Fatalf("acknowledged ciphertext under %s on %s: %v %q", b.keyID, n.ID, err, out.Plaintext)
			}
		}
	}
	// The new build reads the old build's snapshot.
	r := kmsctl(t, nil, "operator", "snapshot", "verify", oldSnap, "--root-key-file", root).ok(t, nil)
	t.Logf("the old build's snapshot, verified by the new build: %s", strings.TrimSpace(r.Stdout))
	t.Logf("upgrade test took %s", time.Since(began).Round(time.Millisecond))
}

// lateJoinerStaysOut starts late, an old build, once the cluster runs the new
// level, and checks that it is kept out of Raft while the load goes on.
func lateJoinerStaysOut(t *testing.T, c *testCluster, late *kmsdNode, load *upgradeLoad) {
	t.Helper()
	late.Start()
	consistently(t, 3*time.Second, "an old build joining after the upgrade stays out of Raft", func() error {
		s, err := getStatus(c.Nodes[0])
		if err != nil {
			return err
		}
		if m, ok := s.member("u4"); ok && m.RaftMember {
			return fmt.Errorf("u4 (old build) was added to Raft: %+v", m)
		}
		return nil
	})
	if !late.Running() {
		t.Fatalf("u4 (old build) stopped: %s", tail(late.LogPath, 20))
	}
	late.Terminate(30 * time.Second)
	load.progress("load after the old build was turned away", 100)
}
