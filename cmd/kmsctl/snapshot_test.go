package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRestoreNode answers GET /v1/operator/restore with target and records
// the restores posted to it.
type fakeRestoreNode struct {
	*httptest.Server
	mu       sync.Mutex
	restores []*http.Request
}

func newFakeRestoreNode(t *testing.T, target restoreTarget) *fakeRestoreNode {
	f := &fakeRestoreNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/operator/restore":
			json.NewEncoder(w).Encode(target)
		case r.Method == http.MethodPost && r.URL.Path == "/v1/operator/snapshot":
			io.Copy(io.Discard, r.Body)
			f.mu.Lock()
			f.restores = append(f.restores, r)
			f.mu.Unlock()
			w.Write([]byte(`{"Keys":3,"Index":42}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"Code":"InvalidPath.NotFound","Message":"no"}`))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeRestoreNode) restored() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restores
}

// restoreFiles writes a snapshot file and a credentials file naming the
// fake node.
func restoreFiles(t *testing.T, endpoint string) (snap, creds string) {
	dir := t.TempDir()
	snap, creds = filepath.Join(dir, "backup.snap"), filepath.Join(dir, "creds.json")
	os.WriteFile(snap, []byte("RAFTKMS\x00 a snapshot"), 0o600)
	b, _ := json.Marshal(map[string]string{"AccessKeyId": "LTAIoperator", "AccessKeySecret": "secret", "Endpoint": endpoint})
	os.WriteFile(creds, b, 0o600)
	return snap, creds
}

// withStdin makes the restore's confirmation read answer and see a
// terminal or not.
func withStdin(t *testing.T, terminal bool, answer string) {
	oldIn, oldTerm := confirmInput, stdinIsTerminal
	confirmInput = strings.NewReader(answer)
	stdinIsTerminal = func() bool { return terminal }
	t.Cleanup(func() { confirmInput, stdinIsTerminal = oldIn, oldTerm })
}

// Issue 9, the first hour: a restore into a cluster that holds data prints
// what it replaces (key count, applied index), then asks on a terminal or
// needs --force otherwise; a cluster that was never initialized needs
// neither, and gets the restore unsigned.
func TestSnapshotRestore_ConfirmsBeforeReplacingData(t *testing.T) {
	held := restoreTarget{NodeId: "n1", Initialized: true, Keys: 7, Accounts: 2, AppliedIndex: 1234}
	for _, c := range []struct {
		name       string
		target     restoreTarget
		terminal   bool
		answer     string
		flags      []string
		wantCode   int
		wantSent   bool
		wantSigned bool
		wantErr    string
	}{
		{"held data, no terminal, no --force", held, false, "", nil, exitUsage, false, false, "--force"},
		{"held data, no terminal, --force", held, false, "", []string{"--force"}, exitOK, true, true, ""},
		{"held data, terminal, yes", held, true, "yes\n", nil, exitOK, true, true, ""},
		{"held data, terminal, no", held, true, "no\n", nil, exitService, false, false, "cancelled"},
		{"held data, terminal, end of input", held, true, "", nil, exitService, false, false, "cancelled"},
		{"never initialized, no terminal", restoreTarget{NodeId: "n1", AppliedIndex: 3}, false, "", nil, exitOK, true, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			node := newFakeRestoreNode(t, c.target)
			snap, creds := restoreFiles(t, node.URL)
			withStdin(t, c.terminal, c.answer)
			args := append([]string{"--credentials", creds, "operator", "snapshot", "restore", snap}, c.flags...)
			code, stdout, stderr := runCtl(t, args...)
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.wantCode, stdout, stderr)
			}
			if c.target.Initialized && (!strings.Contains(stderr, "7 keys") || !strings.Contains(stderr, "applied index 1234")) {
				t.Fatalf("stderr does not say what is replaced (key count, applied index):\n%s", stderr)
			}
			if c.wantErr != "" && !strings.Contains(stderr, c.wantErr) {
				t.Fatalf("stderr does not mention %q:\n%s", c.wantErr, stderr)
			}
			sent := node.restored()
			if (len(sent) == 1) != c.wantSent || len(sent) > 1 {
				t.Fatalf("%d restores sent, want sent=%v\nstderr: %s", len(sent), c.wantSent, stderr)
			}
			if c.wantSent {
				if signed := sent[0].Header.Get("Authorization") != ""; signed != c.wantSigned {
					t.Fatalf("restore signed=%v, want %v", signed, c.wantSigned)
				}
				if sent[0].URL.Query().Has("AcceptUnauthenticated") {
					t.Fatal("AcceptUnauthenticated sent without --accept-unauthenticated")
				}
			}
		})
	}
}

func TestSnapshotRestore_AcceptUnauthenticatedIsSentAsAParameter(t *testing.T) {
	node := newFakeRestoreNode(t, restoreTarget{Initialized: true, Keys: 1})
	snap, creds := restoreFiles(t, node.URL)
	withStdin(t, false, "")
	code, _, stderr := runCtl(t, "--credentials", creds, "operator", "snapshot", "restore", "--force", "--accept-unauthenticated", snap)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sent := node.restored()
	if len(sent) != 1 || sent[0].URL.Query().Get("AcceptUnauthenticated") != "true" {
		t.Fatalf("restores %v: want one with AcceptUnauthenticated=true", sent)
	}
}

// Issue 16, a million keys in one cluster: a follower hands a restore to the
// leader, in parts up to 1 GiB, but in one cluster message only when the
// leader runs a build from before parts (ForwardLimitBytes says which). A
// file larger than the follower says it can hand on goes to the leader's
// API address the follower names, signed as it would have been; a smaller
// one goes to the node given; with no leader known, nothing is sent and the
// error says what to do.
func TestSnapshotRestore_LargerThanAFollowerForwardsGoesToTheLeader(t *testing.T) {
	file := int64(len("RAFTKMS\x00 a snapshot")) // restoreFiles' snapshot
	for _, c := range []struct {
		name         string
		limit        int64
		leaderKnown  bool
		wantCode     int
		wantLeader   bool // the restore reached the leader, not the follower
		wantInStderr string
	}{
		{"larger than the follower forwards", file - 1, true, exitOK, true, "restoring through the leader, node n2"},
		{"as large as the follower forwards", file, true, exitOK, false, "through http://"},
		{"larger, and no leader known", file - 1, false, exitService, false, "knows no leader"},
	} {
		t.Run(c.name, func(t *testing.T) {
			leader := newFakeRestoreNode(t, restoreTarget{NodeId: "n2", Initialized: true, Keys: 7, IsLeader: true})
			target := restoreTarget{NodeId: "n1", Initialized: true, Keys: 7, ForwardLimitBytes: c.limit}
			if c.leaderKnown {
				target.LeaderId, target.LeaderHttpAddr = "n2", strings.TrimPrefix(leader.URL, "http://")
			}
			follower := newFakeRestoreNode(t, target)
			snap, creds := restoreFiles(t, follower.URL)
			withStdin(t, false, "")
			code, stdout, stderr := runCtl(t, "--credentials", creds, "operator", "snapshot", "restore", "--force", snap)
			if code != c.wantCode || !strings.Contains(stderr, c.wantInStderr) {
				t.Fatalf("exit %d (want %d), stderr without %q:\nstdout: %s\nstderr: %s", code, c.wantCode, c.wantInStderr, stdout, stderr)
			}
			toLeader, toFollower := leader.restored(), follower.restored()
			switch {
			case c.wantCode != exitOK:
				if len(toLeader)+len(toFollower) != 0 {
					t.Fatalf("%d restores sent to the leader, %d to the follower; want none", len(toLeader), len(toFollower))
				}
			case c.wantLeader:
				if len(toLeader) != 1 || len(toFollower) != 0 || toLeader[0].Header.Get("Authorization") == "" {
					t.Fatalf("%d restores sent to the leader, %d to the follower; want one signed to the leader", len(toLeader), len(toFollower))
				}
			default:
				if len(toLeader) != 0 || len(toFollower) != 1 {
					t.Fatalf("%d restores sent to the leader, %d to the follower; want one to the follower", len(toLeader), len(toFollower))
				}
			}
		})
	}
}

// While the node works on a restore after the upload, or on a save before
// the download, kmsctl shows what the node's /v1/status says it is doing:
// with --progress off a terminal, a line every 2 seconds (shortened here).
// The fake node answers the request only once its status has been asked
// for twice (kmsctl shows one answer before it asks again).
func TestSnapshot_ShowsWhatTheNodeIsDoing(t *testing.T) {
	old := watchEvery
	watchEvery = 20 * time.Millisecond
	t.Cleanup(func() { watchEvery = old })
	for _, c := range []struct {
		name, status, want string
		args               func(snap string) []string
	}{
		{"restore", `{"NodeId":"n3","Restore":{"Phase":"replicating","Seconds":12.3,"PhaseSeconds":2}}`,
			"node n3 has installed the snapshot; the followers receive and install it (12s)",
			func(snap string) []string {
				return []string{"operator", "snapshot", "restore", "--force", "--progress", snap}
			}},
		{"save", `{"NodeId":"n3","SnapshotSave":{"Seconds":4,"Bytes":3145728}}`,
			"node n3 writes the snapshot: 3.0 MiB (4s)",
			func(snap string) []string {
				return []string{"operator", "snapshot", "save", "--progress", filepath.Join(filepath.Dir(snap), "saved.snap")}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			asked := make(chan struct{})
			var polls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/v1/status":
					w.Write([]byte(c.status))
					if polls.Add(1) == 2 {
						close(asked)
					}
				case r.Method == http.MethodGet && r.URL.Path == "/v1/operator/restore":
					json.NewEncoder(w).Encode(restoreTarget{NodeId: "n3", Initialized: true, Keys: 1, IsLeader: true})
				case r.URL.Path == "/v1/operator/snapshot":
					io.Copy(io.Discard, r.Body)
					select {
					case <-asked:
					case <-time.After(20 * time.Second):
					}
					if r.Method == http.MethodGet {
						w.Header().Set("X-Kms-Index", "7")
						w.Write([]byte("RAFTKMS\x00 saved"))
						return
					}
					w.Write([]byte(`{"Keys":1,"Index":42}`))
				default:
					w.WriteHeader(http.StatusNotFound)
				}
			}))
			defer srv.Close()
			snap, creds := restoreFiles(t, srv.URL)
			withStdin(t, false, "")
			code, stdout, stderr := runCtl(t, append([]string{"--credentials", creds}, c.args(snap)...)...)
			if code != exitOK || !strings.Contains(stderr, c.want+"\n") {
				t.Fatalf("exit %d, stderr without %q:\nstdout: %s\nstderr: %s", code, c.want, stdout, stderr)
			}
		})
	}
}
