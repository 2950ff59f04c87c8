package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/signature"
)

// drState is what a cluster held when its snapshot was saved.
type drState struct {
	Creds     credentials
	CredsFile string
	Sealed    []sealed // decrypt after a restore
	Disabled  []sealed // refused after a restore (the key is Disabled)
	View      catalogueView
}

// drWorkload writes, through several nodes, keys with several versions,
// aliases (one moved with UpdateAlias), tags and a disabled key, and seals
// data under each version.
func drWorkload(t *testing.T, c *testCluster) drState {
	t.Helper()
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	var st drState
	seal := func(n *kmsdNode, keyRef, keyID, ctx string) sealed {
		p := b64("dr " + keyRef + " " + randomHex(6))
		return sealed{Blob: c.encrypt(n, keyRef, p, ctx), Context: ctx, Plaintext: p, KeyID: keyID}
	}

	k1 := c.createKey(n1, "dr key one")
	st.Sealed = append(st.Sealed, seal(n2, k1, k1, `{"v":"1"}`))
	c.Ctl(n2, "CreateKeyVersion", "--KeyId", k1).ok(t, nil)
	st.Sealed = append(st.Sealed, seal(n3, k1, k1, `{"v":"2"}`))
	c.Ctl(n3, "CreateKeyVersion", "--KeyId", k1).ok(t, nil)
	st.Sealed = append(st.Sealed, seal(n1, k1, k1, ""))
	c.Ctl(n1, "CreateAlias", "--AliasName", "alias/dr/one", "--KeyId", k1).ok(t, nil)
	c.Ctl(n2, "TagResource", "--KeyId", k1, "--Tags", `[{"TagKey":"team","TagValue":"payments"},{"TagKey":"env","TagValue":"prod"}]`).ok(t, nil)

	k2 := c.createKey(n2, "dr key two")
	c.Ctl(n3, "CreateAlias", "--AliasName", "alias/dr/two", "--KeyId", k2).ok(t, nil)
	c.Ctl(n1, "CreateAlias", "--AliasName", "alias/dr/moving", "--KeyId", k1).ok(t, nil)
	c.Ctl(n2, "UpdateAlias", "--AliasName", "alias/dr/moving", "--KeyId", k2).ok(t, nil)
	c.Ctl(n3, "TagResource", "--KeyId", k2, "--Tags", `[{"TagKey":"team","TagValue":"risk"}]`).ok(t, nil)
	c.Ctl(n1, "UpdateKeyDescription", "--KeyId", k2, "--Description", "dr key two, described again").ok(t, nil)
	st.Sealed = append(st.Sealed, seal(n1, "alias/dr/moving", k2, `{"tenant":"a","app":"dr"}`))

	k3 := c.createKey(n3, "dr key three, disabled")
	st.Disabled = append(st.Disabled, seal(n3, k3, k3, ""))
	c.Ctl(n1, "DisableKey", "--KeyId", k3).ok(t, nil)

	st.Creds, st.CredsFile = c.Creds, c.CredsFile
	return st
}

// view records the cluster's catalogue, as its leader lists it, in st.
func (st *drState) view(t *testing.T, c *testCluster) {
	t.Helper()
	st.View = catalogue(t, []string{"--credentials", c.CredsFile, "--endpoint", c.Leader().Endpoint()})
	if ids := keyIDs(t, st.View); len(ids) != 3 {
		t.Fatalf("the workload's catalogue lists keys %v, want 3", ids)
	}
}

// saveSnapshot runs `kmsctl operator snapshot save FILE` through node n and
// returns the file.
func saveSnapshot(t *testing.T, c *testCluster, n *kmsdNode) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "backup.snap")
	r := c.Ctl(n, "operator", "snapshot", "save", file).ok(t, nil)
	if !strings.Contains(r.Stdout, file) {
		t.Fatalf("snapshot save does not name the file it wrote:\n%s", r)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("snapshot save wrote no file (%v):\n%s", err, r)
	}
	return file
}

// checkRestored checks, on every running node of c, that the state saved in
// st is back: catalogue, ciphertexts, the saved credentials.
func checkRestored(t *testing.T, c *testCluster, st drState, index uint64) {
	t.Helper()
	for _, n := range c.running() {
		prefix := []string{"--credentials", st.CredsFile, "--endpoint", n.Endpoint(), "--min-index", strconv.FormatUint(index, 10)}
		if d := diffViews(st.View, catalogue(t, prefix)); d != "" {
			t.Fatalf("after the restore, %s lists a different catalogue than the saved cluster:\n%s", n.ID, d)
		}
		checkDecrypts(t, prefix, n.ID, st.Sealed)
		for _, s := range st.Disabled {
			code := kmsctl(t, nil, append(prefix, decryptArgs(s.Blob, s.Context)...)...).serviceError(t)
			if code != "Rejected.Disabled" {
				t.Fatalf("on %s, a ciphertext of the disabled key: Code %s, want Rejected.Disabled", n.ID, code)
			}
		}
		if s := mustStatus(t, n); !s.Initialized {
			t.Fatalf("%s: not Initialized after the restore", n.ID)
		}
	}
}

var restoredIndex = regexp.MustCompile(`Raft index (\d+)`)

// restoreUnsigned posts a snapshot the way kmsctl does when it has no
// credentials (a new cluster): POST /v1/operator/snapshot, unsigned.
func restoreUnsigned(t *testing.T, n *kmsdNode, file string) (index uint64, apiErr *client.APIError) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cl, err := client.New(n.Endpoint(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := cl.DoUnsigned(ctx, http.MethodPost, "/v1/operator/snapshot", nil, f, nil)
	if errors.As(err, &apiErr) {
		return 0, apiErr
	}
	if err != nil {
		t.Fatalf("restore through %s: %v", n.ID, err)
	}
	defer resp.Body.Close()
	var out struct{ Index uint64 }
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil || out.Index == 0 {
		t.Fatalf("restore through %s answered %s", n.ID, b)
	}
	return out.Index, nil
}

// restoreIntoNewCluster runs, as the README writes it,
// `kmsctl --endpoint <n> operator snapshot restore FILE` without any
// credentials, and returns the cluster's index after the restore.
func restoreIntoNewCluster(t *testing.T, n *kmsdNode, file string) uint64 {
	t.Helper()
	r := kmsctl(t, nil, "--endpoint", n.Endpoint(), "operator", "snapshot", "restore", file)
	if r.Code != 0 {
		t.Fatalf("`kmsctl --endpoint %s operator snapshot restore FILE` into a new cluster failed:\n%s", n.Endpoint(), r)
	}
	m := restoredIndex.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("snapshot restore does not print the cluster's Raft index:\n%s", r)
	}
	idx, _ := strconv.ParseUint(m[1], 10, 64)
	return idx
}

// Issue 2, disaster recovery: a snapshot saved through a follower, restored
// into a brand-new cluster that has the same root key and was never
// initialized, brings back everything — keys, versions, aliases, tags,
// accounts, access keys, instances — on every node, and every ciphertext
// made before the save decrypts with the saved credentials. A restore into
// an initialized cluster needs its operator's credentials and replaces its
// whole state.
func TestSnapshot_RestoreIntoNewClusterWithSameRootKey(t *testing.T) {
	a := startCluster(t, "a", 3, "")
	a.Init()
	st := drWorkload(t, a)
	// The save is consistent: a write acknowledged by the leader just
	// before is in a snapshot saved through a follower.
	leader := a.Leader()
	last := keyIDs(t, catalogue(t, []string{"--credentials", a.CredsFile, "--endpoint", leader.Endpoint()}))[0]
	a.Ctl(leader, "UpdateKeyDescription", "--KeyId", last, "--Description", "the last write before the save").ok(t, nil)
	file := saveSnapshot(t, a, a.Followers()[0])
	st.view(t, a)
	if !strings.Contains(fmt.Sprint(st.View["DescribeKey "+last]), "the last write before the save") {
		t.Fatalf("the leader does not show the last write: %v", st.View["DescribeKey "+last])
	}
	// A lost cluster: nothing of it runs any more.
	for _, n := range a.Nodes {
		n.Kill()
	}

	t.Run("into a new uninitialized cluster", func(t *testing.T) {
		b := startCluster(t, "b", 3, a.RootKey)
		for _, n := range b.Nodes {
			if mustStatus(t, n).Initialized {
				t.Fatalf("%s is initialized before the restore", n.ID)
			}
		}
		// Through a follower, which hands the file to the leader.
		idx := restoreIntoNewCluster(t, b.Followers()[0], file)
		checkRestored(t, b, st, idx)
		// The restored cluster takes writes with the old credentials, and
		// the restored instance takes keys.
		b.Creds, b.CredsFile = st.Creds, st.CredsFile
		k := b.createKey(b.Nodes[2], "after the restore")
		p := b64("after the restore")
		blob := b.encrypt(b.Nodes[0], k, p, "")
		checkDecrypts(t, []string{"--credentials", st.CredsFile, "--endpoint", b.Nodes[1].Endpoint()}, "b2",
			[]sealed{{Blob: blob, Plaintext: p, KeyID: k}})
		// Restarting a node of the restored cluster keeps the restored state.
		n := b.Nodes[2]
		if code, _ := n.Terminate(30 * time.Second); code != 0 {
			t.Fatalf("%s exited %d on SIGTERM", n.ID, code)
		}
		n.Start()
		b.WaitReady(30 * time.Second)
		checkDecrypts(t, []string{"--credentials", st.CredsFile, "--endpoint", n.Endpoint()}, n.ID, st.Sealed)
		for _, n := range b.Nodes {
			n.Kill()
		}
	})

	t.Run("into an initialized cluster with its operator credentials", func(t *testing.T) {
		c := startCluster(t, "c", 3, a.RootKey)
		c.Init()
		own := c.createKey(c.Nodes[0], "the new cluster's own key")
		before := catalogue(t, []string{"--credentials", c.CredsFile, "--endpoint", c.Nodes[0].Endpoint()})

		// Without credentials an initialized cluster refuses, and keeps
		// its state.
		if _, apiErr := restoreUnsigned(t, c.Nodes[1], file); apiErr == nil || apiErr.Code != "Forbidden.NoPermission" {
			t.Fatalf("an unsigned restore into an initialized cluster: want Forbidden.NoPermission, got %v", apiErr)
		}
		// Nor may the saved cluster's credentials, which this one does
		// not know.
		code := kmsctl(t, nil, "--credentials", st.CredsFile, "--endpoint", c.Nodes[1].Endpoint(), "operator", "snapshot", "restore", "--force", file).serviceError(t)
		if code != "InvalidAccessKeyId.NotFound" {
			t.Fatalf("restore with unknown credentials: Code %s", code)
		}
		if d := diffViews(before, catalogue(t, []string{"--credentials", c.CredsFile, "--endpoint", c.Leader().Endpoint()})); d != "" {
			t.Fatalf("a refused restore changed the cluster:\n%s", d)
		}

		// kmsctl says what it would replace, and without a terminal to
		// confirm on it needs --force.
		r := c.Ctl(c.Leader(), "operator", "snapshot", "restore", file)
		if r.Code != 2 || !strings.Contains(r.Stderr, "--force") || !strings.Contains(r.Stderr, "1 key ") || !strings.Contains(r.Stderr, "applied index") {
			t.Fatalf("restore into a cluster holding data without --force: want exit 2 naming --force, the key count and the applied index:\n%s", r)
		}
		if d := diffViews(before, catalogue(t, []string{"--credentials", c.CredsFile, "--endpoint", c.Leader().Endpoint()})); d != "" {
			t.Fatalf("a restore without --force changed the cluster:\n%s", d)
		}

		// Through the leader this time.
		r = c.Ctl(c.Leader(), "operator", "snapshot", "restore", "--force", file).ok(t, nil)
		m := restoredIndex.FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("snapshot restore does not print the cluster's Raft index:\n%s", r)
		}
		idx, _ := strconv.ParseUint(m[1], 10, 64)
		checkRestored(t, c, st, idx)
		// The whole state was replaced: this cluster's own key and its
		// operator's credentials are gone.
		for _, n := range c.Nodes {
			code := c.Ctl(n, "--min-index", strconv.FormatUint(idx, 10), "ListKeys").serviceError(t)
			if code != "InvalidAccessKeyId.NotFound" {
				t.Fatalf("on %s, the replaced operator credentials: Code %s, want InvalidAccessKeyId.NotFound", n.ID, code)
			}
		}
		code = kmsctl(t, nil, "--credentials", st.CredsFile, "--endpoint", c.Nodes[2].Endpoint(), "DescribeKey", "--KeyId", own).serviceError(t)
		if code != "Forbidden.KeyNotFound" {
			t.Fatalf("the replaced cluster's own key: Code %s, want Forbidden.KeyNotFound", code)
		}
	})
}

// Issue 2: a restore is refused with a clear error, and nothing changes, when
// the cluster's root key differs, or the file is truncated, has a flipped
// byte, or is not a snapshot at all.
func TestSnapshot_RestoreRefusalsChangeNothing(t *testing.T) {
	a := startCluster(t, "a", 3, "")
	a.Init()
	st := drWorkload(t, a)
	good := saveSnapshot(t, a, a.Leader())
	st.view(t, a)
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flip := func(i int) []byte {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return b
	}
	readme, _ := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	credsJSON, _ := os.ReadFile(st.CredsFile)
	damaged := []struct{ name, file string }{
		{"truncated to half", write("half.snap", raw[:len(raw)/2])},
		{"truncated by one byte", write("short.snap", raw[:len(raw)-1])},
		{"only the magic", write("magic.snap", raw[:8])},
		{"empty", write("empty.snap", nil)},
		{"a byte flipped in the header", write("flip-header.snap", flip(12))},
		{"a byte flipped in the middle", write("flip-middle.snap", flip(len(raw)/2))},
		{"a byte flipped in the checksum", write("flip-last.snap", flip(len(raw)-1))},
		{"the README", write("readme.snap", readme)},
		{"a credentials file", write("creds.snap", credsJSON)},
		{"a snapshot with trailing bytes", write("trailing.snap", append(append([]byte(nil), raw...), "more"...))},
		// Issue 9, point 5: edited by someone without the root key, who
		// recomputes the SHA-256 trailer (and may downgrade the file to
		// the old unauthenticated format).
		{"a key's description edited, SHA-256 recomputed", write("edited.snap", editedSnapshot(t, raw, false))},
		{"edited and downgraded to format 1", write("edited-v1.snap", editedSnapshot(t, raw, true))},
	}

	// Every refusal leaves the cluster as it was: same catalogue on every
	// node, ciphertexts decrypt, the credentials work.
	unchanged := func(t *testing.T, c *testCluster, what string) {
		t.Helper()
		idx := strconv.FormatUint(mustStatus(t, c.Leader()).CommitIndex, 10)
		for _, n := range c.Nodes {
			prefix := []string{"--credentials", st.CredsFile, "--endpoint", n.Endpoint(), "--min-index", idx}
			if d := diffViews(st.View, catalogue(t, prefix)); d != "" {
				t.Fatalf("after %s, %s lists a different catalogue:\n%s", what, n.ID, d)
			}
			checkDecrypts(t, prefix, n.ID, st.Sealed)
		}
	}

	t.Run("damaged files into the initialized cluster", func(t *testing.T) {
		for _, d := range damaged {
			r := a.Ctl(a.Followers()[0], "operator", "snapshot", "restore", "--force", d.file)
			code := r.serviceError(t)
			if code != "InvalidSnapshot" {
				t.Errorf("restore of %s: Code %s, want InvalidSnapshot:\n%s", d.name, code, r)
			}
			unchanged(t, a, "a refused restore of "+d.name)
		}
	})

	t.Run("a different root key", func(t *testing.T) {
		for _, n := range a.Nodes {
			n.Kill()
		}
		other := startCluster(t, "d", 3, "")
		_, apiErr := restoreUnsigned(t, other.Nodes[0], good)
		if apiErr == nil {
			t.Fatalf("a snapshot made under another root key was restored")
		}
		if apiErr.Code != "Rejected.RootKeyMismatch" || !strings.Contains(apiErr.Message, "root key") {
			t.Fatalf("restore under another root key: want Rejected.RootKeyMismatch naming the root key, got %v", apiErr)
		}
		// Damaged files are refused here too (whichever check comes first).
		for _, d := range damaged {
			if _, apiErr := restoreUnsigned(t, other.Nodes[1], d.file); apiErr == nil || apiErr.StatusCode/100 != 4 {
				t.Fatalf("restore of %s into a new cluster: want a 4xx refusal, got %v", d.name, apiErr)
			}
		}
		// Nothing changed: still never initialized, so init works now and
		// the cluster holds none of the snapshot's keys.
		for _, n := range other.Nodes {
			if s := mustStatus(t, n); s.Initialized {
				t.Fatalf("%s became initialized through a refused restore", n.ID)
			}
		}
		other.Init()
		keys := other.Ctl(other.Nodes[2], "ListKeys").ok(t, nil).Stdout
		for _, id := range keyIDs(t, st.View) {
			if strings.Contains(keys, id) {
				t.Fatalf("a refused restore left key %s behind: %s", id, keys)
			}
		}
		// The old credentials do not exist there.
		code := kmsctl(t, nil, "--credentials", st.CredsFile, "--endpoint", other.Nodes[0].Endpoint(), "ListKeys").serviceError(t)
		if code != "InvalidAccessKeyId.NotFound" {
			t.Fatalf("the snapshot's credentials on the other cluster: Code %s", code)
		}
	})
}

// editedSnapshot changes a key's description inside a saved snapshot —
// "dr key two" becomes "DR key two" — and recomputes a SHA-256 trailer, as
// someone holding the file but not the root key would; downgrade also
// relabels it as the old format 1, whose trailer was a plain SHA-256.
func editedSnapshot(t *testing.T, raw []byte, downgrade bool) []byte {
	t.Helper()
	i := bytes.Index(raw, []byte("dr key two"))
	if i < 0 {
		t.Fatal("the workload's key description is not in the snapshot")
	}
	b := bytes.Clone(raw[:len(raw)-sha256.Size])
	copy(b[i:], "DR")
	if downgrade {
		binary.BigEndian.PutUint16(b[8:], 1)
		j := bytes.Index(b, []byte("\xa6format\x02"))
		if j < 0 || j > 40 {
			t.Fatal("no format field in the snapshot header")
		}
		b[j+7] = 1
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// pid is the node's process id.
func (n *kmsdNode) pid(t *testing.T) int {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		t.Fatalf("%s is not running", n.ID)
	}
	return n.cmd.Process.Pid
}

// memory reads the process's resident set size and its peak (VmRSS,
// VmHWM) in bytes.
func memory(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the memory of kmsd: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	if rss == 0 || peak == 0 {
		t.Fatalf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rss, peak
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// uploadResult is what one raw upload saw.
type uploadResult struct {
	status int
	code   string
	sent   int64 // bytes of the body the client managed to hand to the kernel
	err    error
}

// uploadSnapshot opens its own connection and POSTs a snapshot of
// declared length size, streaming zeros, with the given extra headers; it
// reads the answer while the body is still being written, as a client
// must when the server refuses early.
func uploadSnapshot(addr string, size int64, header http.Header) uploadResult {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return uploadResult{err: err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var head strings.Builder
	fmt.Fprintf(&head, "POST /v1/operator/snapshot HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", addr, size)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		return uploadResult{err: err}
	}
	var sent atomic.Int64
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		n, _ := io.Copy(conn, io.LimitReader(zeros{}, size))
		sent.Store(n)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return uploadResult{err: err}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	conn.Close() // ends the writer
	<-wrote
	var e struct{ Code string }
	json.Unmarshal(body, &e)
	return uploadResult{status: resp.StatusCode, code: e.Code, sent: sent.Load()}
}

// Issue 9, point 1: concurrent 1 GiB snapshot uploads from callers that may
// not restore — no credentials, a RAM user, a wrong secret — are refused
// from their headers, without the node reading their bodies: its resident
// memory (now and at its peak) stays within 50 MB of where it was, and the
// catalogue does not change.
func TestSnapshot_RefusedUploadsCostNoMemory(t *testing.T) {
	c := startCluster(t, "m", 1, "")
	c.Init()
	n := c.Nodes[0]
	c.Ctl(n, "CreateUser", "--UserName", "mallory").ok(t, nil)
	var ak struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	c.Ctl(n, "CreateAccessKey", "--UserName", "mallory").ok(t, &ak)
	before := catalogue(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()})

	signed := func(creds signature.Credentials) http.Header {
		r, _ := http.NewRequest(http.MethodPost, n.Endpoint()+"/v1/operator/snapshot", nil)
		r.Header.Set("Content-Type", "application/octet-stream")
		if err := signature.SignV3(r, strings.Repeat("ab", 32), creds, time.Now(), signature.NewNonce()); err != nil {
			t.Fatal(err)
		}
		return r.Header
	}
	const size = 1 << 30
	pid := n.pid(t)
	rss0, peak0 := memory(t, pid)
	for _, tc := range []struct {
		name   string
		header func() http.Header
		status int
		code   string
	}{
		{"no credentials", func() http.Header { return http.Header{"Content-Type": {"application/octet-stream"}} }, 403, "Forbidden.NoPermission"},
		{"a RAM user", func() http.Header {
			return signed(signature.Credentials{AccessKeyID: ak.AccessKey.AccessKeyId, AccessKeySecret: ak.AccessKey.AccessKeySecret})
		}, 403, "Forbidden.NoPermission"},
		{"the operator's key, wrong secret", func() http.Header {
			return signed(signature.Credentials{AccessKeyID: c.Creds.AccessKeyId, AccessKeySecret: "guessed"})
		}, 400, "SignatureDoesNotMatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := make(chan uploadResult, 3)
			for range 3 {
				h := tc.header()
				go func() { results <- uploadSnapshot(n.HTTP, size, h) }()
			}
			for range 3 {
				r := <-results
				if r.err != nil {
					t.Fatalf("upload: %v", r.err)
				}
				if r.status != tc.status || r.code != tc.code {
					t.Fatalf("HTTP %d %s, want %d %s", r.status, r.code, tc.status, tc.code)
				}
				if r.sent >= size {
					t.Fatalf("the whole 1 GiB body went out before the refusal")
				}
			}
		})
	}
	rss1, peak1 := memory(t, pid)
	t.Logf("kmsd memory: RSS %d -> %d MB, peak %d -> %d MB", rss0>>20, rss1>>20, peak0>>20, peak1>>20)
	if rss1-rss0 > 50<<20 || peak1-peak0 > 50<<20 {
		t.Fatalf("refused uploads grew kmsd's memory: RSS %d -> %d MB, peak %d -> %d MB", rss0>>20, rss1>>20, peak0>>20, peak1>>20)
	}
	if d := diffViews(before, catalogue(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()})); d != "" {
		t.Fatalf("refused uploads changed the catalogue:\n%s", d)
	}
}
