package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestPrepareDataDir_CreatesAndTightensTo0700(t *testing.T) {
	cases := []struct {
		name     string
		existing os.FileMode // 0: the dir does not exist yet
		warns    bool
	}{
		{"created by kmsd", 0, false},
		{"existing 0755 is tightened", 0o755, true},
		{"existing 0777 is tightened", 0o777, true},
		{"existing 0750 is tightened", 0o750, true},
		{"existing 0700 is left alone", 0o700, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data", "node")
			if tc.existing != 0 {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			if err := prepareDataDir(dir, true, hclog.New(&hclog.LoggerOptions{Output: &logs})); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Mode().Perm(); got != 0o700 {
				t.Fatalf("mode %04o, want 0700", got)
			}
			if warned := strings.Contains(logs.String(), "[WARN]"); warned != tc.warns {
				t.Fatalf("warned=%v, want %v: %s", warned, tc.warns, logs.String())
			}
		})
	}
}

func TestPrepareDataDir_RefusesAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if err := prepareDataDir(f, false, hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckRootKeyFile_WarnsOrRefusesWhenGroupOrOthersCanAccessIt(t *testing.T) {
	cases := []struct {
		mode    os.FileMode
		exposed bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true}, // group-readable
		{0o620, true}, // group-writable
		{0o604, true}, // world-readable
		{0o602, true}, // world-writable
		{0o644, true},
	}
	for _, tc := range cases {
		t.Run(tc.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			logger := hclog.New(&hclog.LoggerOptions{Output: &logs})
			if err := checkRootKeyFile(path, false, logger); err != nil {
				t.Fatalf("without --strict-permissions: %v", err)
			}
			strictErr := checkRootKeyFile(path, true, logger)
			if !tc.exposed {
				if logs.Len() != 0 || strictErr != nil {
					t.Fatalf("a private key file was flagged: %v %s", strictErr, logs.String())
				}
				return
			}
			want := "chmod 600 " + path
			if !strings.Contains(logs.String(), "[WARN]") || !strings.Contains(logs.String(), want) {
				t.Fatalf("no warning naming %q: %s", want, logs.String())
			}
			if strictErr == nil || !strings.Contains(strictErr.Error(), want) || !strings.Contains(strictErr.Error(), "--strict-permissions") {
				t.Fatalf("--strict-permissions did not refuse with %q: %v", want, strictErr)
			}
		})
	}
}

// A node started with a group-readable root key and --strict-permissions
// stops before it opens anything; without it, it warns and starts.
func TestRun_StrictPermissionsRefusesAnExposedRootKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "root.key")
	if err := os.WriteFile(key, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(key, 0o644)
	cfg, err := parseFlags([]string{"--node-id", "n1", "--data-dir", filepath.Join(dir, "data"), "--root-key-file", key,
		"--strict-permissions", "--http-addr", "127.0.0.1:0", "--cluster-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	err = run(cfg, os.Stdout)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+key) {
		t.Fatalf("run = %v", err)
	}
}

func TestRaiseOpenFileLimit_RaisesTheSoftLimitToTheHardLimit(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	// Start from a lower soft limit, as a service manager may set it.
	low := before
	low.Cur = min(before.Max, 1024)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &before) })
	var logs bytes.Buffer
	got := raiseOpenFileLimit(hclog.New(&hclog.LoggerOptions{Output: &logs}))
	var after syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after)
	if after.Cur != after.Max || got != after.Max {
		t.Fatalf("soft %d, hard %d, returned %d", after.Cur, after.Max, got)
	}
	if !strings.Contains(logs.String(), "open-file limit") {
		t.Fatalf("the new limit is not logged: %s", logs.String())
	}
}
