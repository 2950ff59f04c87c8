package main

import (
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// The image's HEALTHCHECK: exit 0 on 200 from /v1/health over HTTPS with the
// cluster's CA, 1 on 503, 1 when the CA is not given (untrusted certificate).
func TestHealth_ExitCodeFollowsTheNodesAnswerOverTLS(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := runCtl(t, "operator", "tls", "create-ca", dir); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := runCtl(t, "operator", "tls", "create-cert", "--ca", dir, "--name", "n1", "--ip", "127.0.0.1", dir); code != 0 {
		t.Fatal(errs)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"))
	if err != nil {
		t.Fatal(err)
	}
	var status atomic.Int32
	status.Store(http.StatusOK)
	var paths atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.Method + " " + r.URL.Path)
		w.WriteHeader(int(status.Load()))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(dir, "ca.crt")

	code, out, errs := runCtl(t, "--endpoint", srv.URL, "--ca-file", ca, "health")
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("healthy node: exit %d, out %q, err %q", code, out, errs)
	}
	if got := paths.Load(); got != "GET /v1/health" {
		t.Fatalf("probe sent %v", got)
	}
	status.Store(http.StatusServiceUnavailable)
	if code, _, errs := runCtl(t, "--endpoint", srv.URL, "--ca-file", ca, "health", "--quiet"); code != 1 || !strings.Contains(errs, "503") {
		t.Fatalf("503: exit %d, err %q", code, errs)
	}
	status.Store(http.StatusOK)
	if code, _, _ := runCtl(t, "--endpoint", srv.URL, "health"); code != 1 {
		t.Fatalf("without --ca-file the node's certificate must not be trusted: exit %d", code)
	}
	srv.Close()
	if code, _, _ := runCtl(t, "--endpoint", srv.URL, "--ca-file", ca, "health"); code != 1 {
		t.Fatalf("no node: exit %d", code)
	}
}

func TestKeygen_WritesRandomBase64Mode0600AndNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys", "root.key")
	code, out, errs := runCtl(t, "operator", "keygen", p)
	if code != 0 {
		t.Fatal(errs)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		t.Fatalf("key file: %v, %d bytes", err, len(raw))
	}
	if strings.Contains(out, strings.TrimSpace(string(b))) {
		t.Fatal("keygen printed the key")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if code, _, _ := runCtl(t, "operator", "keygen", p); code != 1 {
		t.Fatalf("overwrite: exit %d", code)
	}
	if code, _, _ := runCtl(t, "operator", "keygen", "--keep-existing", p); code != 0 {
		t.Fatalf("--keep-existing: exit %d", code)
	}
	if b2, _ := os.ReadFile(p); string(b2) != string(b) {
		t.Fatal("the key changed")
	}
	if code, _, _ := runCtl(t, "operator", "keygen", "--bytes", "20", filepath.Join(dir, "g.key")); code != 2 {
		t.Fatalf("--bytes 20: exit %d", code)
	}
}

func TestTLS_KeepExistingWritesNothingTheSecondTime(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		if code, _, errs := runCtl(t, "operator", "tls", "create-ca", "--keep-existing", dir); code != 0 {
			t.Fatalf("run %d: %s", i, errs)
		}
	}
	ca1, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	for i := 0; i < 2; i++ {
		if code, _, errs := runCtl(t, "operator", "tls", "create-cert", "--keep-existing", "--ca", dir, "--name", "n1", "--ip", "10.0.0.1", dir); code != 0 {
			t.Fatalf("run %d: %s", i, errs)
		}
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if string(ca1) != string(ca2) {
		t.Fatal("the CA changed")
	}
	if code, _, _ := runCtl(t, "operator", "tls", "create-ca", dir); code != 1 {
		t.Fatalf("without --keep-existing an existing CA is still refused: exit %d", code)
	}
}
