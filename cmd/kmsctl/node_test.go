package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/store"
)

// startNode starts a real one-node cluster on loopback (not initialized),
// stopped when the test ends. httpAddr may name a port ("127.0.0.1:0" for
// any); tlsCfg, when set, makes the API HTTPS.
func startNode(t *testing.T, httpAddr string, tlsCfg *tls.Config) *node.Node {
	t.Helper()
	dir := t.TempDir()
	root, err := kcrypto.GenerateRootKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(node.Config{
		NodeID: "kmsctl-test", DataDir: filepath.Join(dir, "data"), Single: true,
		HTTPAddr: httpAddr, ClusterAddr: "127.0.0.1:0",
		RootKey: root, Timing: store.FastTiming(), HTTPTLS: tlsCfg,
	})
	if err != nil {
		t.Fatalf("node.Start: %v", err)
	}
	t.Cleanup(n.Stop)
	return n
}

// initNode runs `kmsctl operator init --out FILE` against the node and
// returns the credentials file.
func initNode(t *testing.T, endpoint string, extra ...string) (string, client.Credentials) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "creds.json")
	args := append(append([]string{}, extra...), "--endpoint", endpoint, "operator", "init", "--out", path)
	if code, out, errs := runCtl(t, args...); code != 0 {
		t.Fatalf("operator init: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	cr, err := client.LoadCredentialsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, cr
}

// initializedNode is a started and initialized node and its credentials
// file.
func initializedNode(t *testing.T) (*node.Node, string, client.Credentials) {
	t.Helper()
	n := startNode(t, "127.0.0.1:0", nil)
	path, cr := initNode(t, n.Endpoint())
	return n, path, cr
}

// ctl runs kmsctl with the credentials file and the node's endpoint.
func ctl(t *testing.T, creds, endpoint string, args ...string) (int, string, string) {
	t.Helper()
	return runCtl(t, append([]string{"--credentials", creds, "--endpoint", endpoint}, args...)...)
}

// mustCtl runs kmsctl, which must succeed, and decodes its JSON stdout.
func mustCtl(t *testing.T, out any, args ...string) {
	t.Helper()
	code, stdout, stderr := runCtl(t, args...)
	if code != 0 {
		t.Fatalf("kmsctl %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			t.Fatalf("kmsctl %s: stdout is not JSON: %v\n%s", strings.Join(args, " "), err, stdout)
		}
	}
}

// countingServer is an HTTP server that counts the requests it gets and
// answers each with an empty JSON object: for checking that kmsctl sends
// nothing.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"RequestId":"TEST"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// writeCredsFile writes a credentials file.
func writeCredsFile(t *testing.T, cr client.Credentials) string {
	t.Helper()
	b, err := json.Marshal(cr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freePort reserves a loopback port and releases it for a node to take.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe to read while kmsctl writes to it
// from another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
