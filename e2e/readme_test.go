package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeWalkthrough returns the shell block of README.md's "Five minutes
// with kmsctl" section that starts with `export KMS_CREDENTIALS`.
func readmeWalkthrough(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatalf("read the README: %v", err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Five minutes with kmsctl\n")
	if !ok {
		t.Fatalf(`README.md has no "## Five minutes with kmsctl" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "```sh\n")
		if !ok {
			break
		}
		block, tail, ok := strings.Cut(after, "```")
		if !ok {
			t.Fatalf("README: unterminated code block in the walkthrough")
		}
		if strings.HasPrefix(strings.TrimSpace(block), "export KMS_CREDENTIALS") {
			return block
		}
		rest = tail
	}
	t.Fatalf("README: no ```sh block starting with `export KMS_CREDENTIALS` in the walkthrough section")
	return ""
}

var orEcho = regexp.MustCompile(`\|\|\s*echo\s+"([^"]*)"\s*$`)

// Issue 2: the README walkthrough works exactly as written, against the dev
// node `make run` starts (kmsd --dev --data-dir .tmp/dev on 127.0.0.1:9700),
// run from a directory that has bin/kmsctl, under bash -euo pipefail.
func TestReadme_WalkthroughRunsAsWritten(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatalf("the README walkthrough uses jq, which is not installed: run `make deps` (or apt-get install jq)")
	}
	block := readmeWalkthrough(t)

	// The README hard-codes the dev node's address (make run's default).
	if ln, err := net.Listen("tcp", "127.0.0.1:9700"); err != nil {
		t.Fatalf("127.0.0.1:9700, where the README's dev node listens, is in use (%v): stop whatever runs there (a `make run` or `make cluster`?) and run this test again", err)
	} else {
		ln.Close()
	}

	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(kmsctlBin, filepath.Join(work, "bin", "kmsctl")); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(work, ".tmp", "dev")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dev := newNode(t, "dev", "", "")
	dev.HTTP = "127.0.0.1:9700"
	dev.DataDir = dataDir
	dev.Args = []string{"--dev", "--data-dir", dataDir, "--http-addr", dev.HTTP,
		"--cluster-addr", dev.Cluster, "--gossip-addr", dev.Gossip, "--raft-timeout", "300ms"}
	dev.Start()
	credsPath := filepath.Join(dataDir, "credentials.json")
	eventually(t, 30*time.Second, "dev node ready with its credentials file", func() error {
		if code, body := healthCode(dev); code != http.StatusOK {
			return fmt.Errorf("/v1/health %d %s", code, body)
		}
		if _, err := os.Stat(credsPath); err != nil {
			return err
		}
		return nil
	})
	if !strings.Contains(tail(dev.LogPath, 40), "export KMS_CREDENTIALS=") {
		t.Errorf("the dev node does not print how to use its credentials:\n%s", tail(dev.LogPath, 40))
	}

	script := filepath.Join(t.TempDir(), "walkthrough.sh")
	if err := os.WriteFile(script, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", script)
	cmd.Dir = work
	cmd.Env = append(cleanEnv(), "PWD="+work)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	report := fmt.Sprintf("---- walkthrough ----\n%s\n---- stdout ----\n%s\n---- stderr ----\n%s", block, stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("the README walkthrough failed under bash -euo pipefail: %v\n%s", err, report)
	}

	// Lines ending in `|| echo "..."` must have failed, so their echo ran.
	expected := 0
	for _, line := range strings.Split(block, "\n") {
		if m := orEcho.FindStringSubmatch(line); m != nil {
			expected++
			if !strings.Contains(stdout.String(), m[1]) {
				t.Errorf("this line should have failed and printed %q, but did not:\n  %s\n%s", m[1], line, report)
			}
		}
	}
	t.Logf("%d lines of the walkthrough are expected to fail, and did", expected)
	if expected == 0 {
		t.Errorf("the walkthrough has no `|| echo` line: the refusals it shows are not checked\n%s", report)
	}
	// What the README says the reader will see.
	for _, want := range []string{"hello, kms", "payments"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the walkthrough's output lacks %q\n%s", want, report)
		}
	}
	if strings.Count(stderr.String(), `"Code"`) < expected {
		t.Errorf("the failing lines did not print the service's error JSON on stderr\n%s", report)
	}
}
