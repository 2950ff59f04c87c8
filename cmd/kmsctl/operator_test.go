package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/internal/testutil"
)

// TestOperatorInit_OutWritesA0600FileAndNothingOnStdout.
func TestOperatorInit_OutWritesA0600FileAndNothingOnStdout(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", nil)
	path := filepath.Join(t.TempDir(), "creds.json")
	code, out, errs := runCtl(t, "--endpoint", n.Endpoint(), "operator", "init", "--out", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %o, want 600", m)
	}
	var cr struct{ AccountId, AccessKeyId, AccessKeySecret, InstanceId, Endpoint string }
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &cr); err != nil || cr.AccessKeySecret == "" || cr.AccountId == "" || cr.InstanceId == "" || cr.Endpoint != n.Endpoint() {
		t.Fatalf("the file is not a credentials file (%v): %s", err, b)
	}
	if strings.Contains(out+errs, cr.AccessKeySecret) {
		t.Errorf("the secret was printed as well as written:\nstdout %s\nstderr %s", out, errs)
	}
	if !strings.Contains(errs, path) {
		t.Errorf("stderr does not say where the credentials went: %q", errs)
	}
	// The file works.
	var keys map[string]any
	mustCtl(t, &keys, "--credentials", path, "ListKeys")
}

// TestOperatorInit_OutRefusesAnExistingFileBeforeInitializing: the file is
// left as it was, and the cluster is not initialized (a later init with
// another file gets the one-time secret).
func TestOperatorInit_OutRefusesAnExistingFileBeforeInitializing(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", nil)
	dir := t.TempDir()
	existing := filepath.Join(dir, "creds.json")
	os.WriteFile(existing, []byte("precious"), 0o644)
	link := filepath.Join(dir, "link.json")
	os.Symlink(filepath.Join(dir, "elsewhere.json"), link) // dangling: O_EXCL refuses it too
	for _, path := range []string{existing, link} {
		code, out, errs := runCtl(t, "--endpoint", n.Endpoint(), "operator", "init", "--out", path)
		if code != exitUsage || out != "" || !strings.Contains(errs, "exists") {
			t.Fatalf("--out %s: exit %d, stdout %q, stderr %q; want exit 2 saying the file exists", path, code, out, errs)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "precious" {
		t.Errorf("the existing file now holds %q", b)
	}
	if m := mode(t, existing); m != 0o644 {
		t.Errorf("the existing file's mode changed to %o", m)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere.json")); !os.IsNotExist(err) {
		t.Errorf("the symlink's target was created")
	}
	// Not initialized by the refused attempts.
	initNode(t, n.Endpoint())
}

// TestOperatorInit_FailedInitLeavesNoFile: when the node refuses (already
// initialized), the file claimed for the secret is removed.
func TestOperatorInit_FailedInitLeavesNoFile(t *testing.T) {
	n, _, _ := initializedNode(t)
	path := filepath.Join(t.TempDir(), "again.json")
	code, _, errs := runCtl(t, "--endpoint", n.Endpoint(), "operator", "init", "--out", path)
	if code != exitService {
		t.Fatalf("exit %d, want 1: %s", code, errs)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("a refused init left %s behind", path)
	}
}

// TestOperatorInit_WaitsForANodeThatIsNotUpYet: init started before the node
// listens reports that it waits, then succeeds once the node leads.
func TestOperatorInit_WaitsForANodeThatIsNotUpYet(t *testing.T) {
	addr := freePort(t)
	path := filepath.Join(t.TempDir(), "creds.json")
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--endpoint", "http://" + addr, "operator", "init", "--wait", "2m", "--out", path}, &stdout, &stderr)
	}()
	testutil.Eventually(t, "kmsctl says it waits", 30*time.Second, func() bool {
		return strings.Contains(stderr.String(), "waiting for a leader at http://"+addr)
	})
	startNode(t, addr, nil)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\nstderr: %s", code, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("init did not finish; stderr: %s", stderr.String())
	}
	if mode(t, path) != 0o600 {
		t.Errorf("mode %o", mode(t, path))
	}
}

// TestOperatorInit_WaitEndsWithWhatToCheck: nobody listens; after --wait the
// error says where it waited and what to check; nothing is written.
func TestOperatorInit_WaitEndsWithWhatToCheck(t *testing.T) {
	addr := freePort(t)
	path := filepath.Join(t.TempDir(), "creds.json")
	start := time.Now()
	code, out, errs := runCtl(t, "--endpoint", "http://"+addr, "operator", "init", "--wait", "700ms", "--out", path)
	if code != exitService || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1", code, out, errs)
	}
	if time.Since(start) < 700*time.Millisecond {
		t.Errorf("gave up after %s, before --wait", time.Since(start))
	}
	for _, want := range []string{"waiting for a leader at http://" + addr, "no leader at http://" + addr, "connection refused", "--http-addr", "--wait"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errs)
		}
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Error("a failed init left the --out file behind")
	}
	// --wait 0: one try, the old behaviour.
	code, _, errs = runCtl(t, "--endpoint", "http://"+addr, "operator", "init", "--wait", "0")
	if code != exitService || strings.Contains(errs, "waiting") || !strings.Contains(errs, "Is a node running") {
		t.Errorf("--wait 0: exit %d, stderr %q", code, errs)
	}
}

// TestAccountCreate_OutWritesA0600FileAndRefusesToOverwrite.
func TestAccountCreate_OutWritesA0600FileAndRefusesToOverwrite(t *testing.T) {
	n, creds, _ := initializedNode(t)
	path := filepath.Join(t.TempDir(), "payments.json")
	code, out, errs := ctl(t, creds, n.Endpoint(), "operator", "account", "create", "--name", "payments", "--out", path)
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %o, want 600", m)
	}
	var cr struct{ AccountId, AccessKeyId, AccessKeySecret, Endpoint string }
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &cr); err != nil || cr.AccessKeySecret == "" || cr.AccountId == "" {
		t.Fatalf("not a credentials file: %s", b)
	}
	// The new account's credentials work.
	mustCtl(t, nil, "--credentials", path, "ListKeys")

	// A second create onto the same file is refused before any request:
	// no second account appears, the file is unchanged.
	code, out, errs = ctl(t, creds, n.Endpoint(), "operator", "account", "create", "--name", "other", "--out", path)
	if code != exitUsage || out != "" || !strings.Contains(errs, "exists") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 saying the file exists", code, out, errs)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Error("the file changed")
	}
	// Without --out: stdout, as before.
	var again struct{ AccessKeySecret string }
	mustCtl(t, &again, "--credentials", creds, "--endpoint", n.Endpoint(), "operator", "account", "create", "--name", "third")
	if again.AccessKeySecret == "" {
		t.Error("no secret on stdout without --out")
	}
}

// Counts from the server's JSON print as whole numbers, also a million.
func TestJSONCount_PrintsWholeNumbers(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{float64(1000000), "1000000"},
		{float64(1000013), "1000013"},
		{float64(0), "0"},
		{1.5, "1.5"},
		{nil, "<nil>"},
	} {
		if got := jsonCount(tc.v); got != tc.want {
			t.Errorf("jsonCount(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
