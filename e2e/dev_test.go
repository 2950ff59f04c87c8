package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startDev starts `kmsd --dev` with the given extra flags on free ports and
// waits until it is healthy. dataDir "" leaves --data-dir out.
func startDev(t *testing.T, n *kmsdNode, dataDir string, env ...string) {
	t.Helper()
	n.Args = []string{"--dev", "--http-addr", n.HTTP, "--cluster-addr", n.Cluster, "--gossip-addr", n.Gossip, "--raft-timeout", "300ms"}
	if dataDir != "" {
		n.Args = append(n.Args, "--data-dir", dataDir)
	}
	n.Env = env
	var offset int64
	if fi, err := os.Stat(n.LogPath); err == nil {
		offset = fi.Size()
	}
	n.Start()
	eventually(t, 30*time.Second, "dev node ready", func() error {
		if code, body := healthCode(n); code != http.StatusOK {
			return fmt.Errorf("/v1/health %d %s", code, body)
		}
		if !strings.Contains(readFrom(n.LogPath, offset), "raftkms dev node is ready") {
			return fmt.Errorf("no ready message yet")
		}
		return nil
	})
}

// Issue 2: `kmsd --dev --data-dir D` initializes once and writes its
// credentials to D/credentials.json; restarted on D, it keeps its state and
// its credentials.
func TestDev_RestartOnDataDirKeepsStateAndCredentials(t *testing.T) {
	n := newNode(t, "dev", "", "")
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, n, dir)
	credsPath := filepath.Join(dir, "credentials.json")
	first, err := os.ReadFile(credsPath)
	if err != nil {
		t.Fatalf("dev mode wrote no credentials file: %v", err)
	}
	var cr credentials
	c := &testCluster{t: t, Nodes: []*kmsdNode{n}, CredsFile: credsPath}
	if err := jsonUnmarshal(first, &cr); err != nil || cr.AccessKeyId == "" || cr.AccessKeySecret == "" || cr.InstanceId == "" || cr.Endpoint != n.Endpoint() {
		t.Fatalf("credentials.json = %s (%v), want AccessKeyId, AccessKeySecret, InstanceId and Endpoint %s", first, err, n.Endpoint())
	}
	c.Creds = cr
	// The file alone is enough: its endpoint is the node.
	key := func() string {
		var out struct{ KeyMetadata struct{ KeyId string } }
		kmsctl(t, []string{"KMS_CREDENTIALS=" + credsPath}, "CreateKey", "--DKMSInstanceId", cr.InstanceId).ok(t, &out)
		return out.KeyMetadata.KeyId
	}()
	c.Ctl(n, "CreateAlias", "--AliasName", "alias/dev", "--KeyId", key).ok(t, nil)
	p := b64("dev data")
	blob := c.encrypt(n, "alias/dev", p, `{"dev":"1"}`)

	if code, _ := n.Terminate(30 * time.Second); code != 0 {
		t.Fatalf("dev node exited %d on SIGTERM, want 0", code)
	}
	startDev(t, n, dir)
	again, _ := os.ReadFile(credsPath)
	if string(again) != string(first) {
		t.Fatalf("the restart rewrote credentials.json:\nbefore %s\nafter  %s", first, again)
	}
	checkDecrypts(t, []string{"--credentials", credsPath}, "dev", []sealed{{Blob: blob, Context: `{"dev":"1"}`, Plaintext: p, KeyID: key}})
	// Still initialized once: init is refused.
	code := kmsctl(t, nil, "--endpoint", n.Endpoint(), "operator", "init").serviceError(t)
	if code != "Rejected.AlreadyInitialized" {
		t.Fatalf("operator init on a dev node: Code %s", code)
	}
}

var devDataDir = regexp.MustCompile(`Data dir:\s+(\S+)`)

// Issue 2: without --data-dir, dev mode uses a fresh temporary directory,
// and kmsd says "Without --data-dir the state is thrown away when the
// process ends": after SIGTERM, that directory (root key and credentials
// included) must be gone.
func TestDev_WithoutDataDirThrowsStateAwayOnExit(t *testing.T) {
	tmp := t.TempDir()
	n := newNode(t, "dev", "", "")
	startDev(t, n, "", "TMPDIR="+tmp)
	m := devDataDir.FindStringSubmatch(readFrom(n.LogPath, 0))
	if m == nil {
		t.Fatalf("the dev node does not say where its data dir is:\n%s", tail(n.LogPath, 30))
	}
	dir := m[1]
	if !strings.HasPrefix(dir, tmp) {
		t.Fatalf("dev data dir %s is not a fresh temporary directory under $TMPDIR %s", dir, tmp)
	}
	if _, err := os.Stat(filepath.Join(dir, "root.key")); err != nil {
		t.Fatalf("no root key in the dev data dir: %v", err)
	}
	if code, _ := n.Terminate(30 * time.Second); code != 0 {
		t.Fatalf("dev node exited %d on SIGTERM, want 0", code)
	}
	if _, err := os.Stat(dir); err == nil {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("BUG: after SIGTERM, the throwaway dev data dir %s is still there with %v (its root key and credentials included); "+
			"kmsd promised \"the state is thrown away when the process ends\" (cmd/kmsd/run.go makes it with os.MkdirTemp and never removes it)", dir, names)
	}
}
