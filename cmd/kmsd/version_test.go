package main

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/fsm"
)

// TestVersion_FlagNeedsNoOtherFlag: --version is answered before the checks
// that a real start needs (--data-dir, --root-key-file).
func TestVersion_FlagNeedsNoOtherFlag(t *testing.T) {
	if _, err := parseFlags([]string{"--version"}, io.Discard); err != errShowVersion {
		t.Fatalf("parseFlags(--version) = %v, want errShowVersion", err)
	}
	if _, err := parseFlags([]string{"--data-dir", "x"}, io.Discard); err == errShowVersion {
		t.Fatal("no --version, yet parseFlags asks to show it")
	}
}

// TestVersion_PrintsTheLinkedVersion: the binary built with
// -ldflags "-X main.version=..." (as the Makefile does) prints it.
func TestVersion_PrintsTheLinkedVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kmsd")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v1.2.3-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	want := fmt.Sprintf("kmsd v1.2.3-test (log level %d)", fsm.LogLevel)
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Fatalf("kmsd --version: %v, %q", err, out)
	}
}
