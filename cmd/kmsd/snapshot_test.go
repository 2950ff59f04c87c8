package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags_Snapshots(t *testing.T) {
	c, err := parseFlags(baseArgs(t), io.Discard)
	if err != nil || c.snapshot.interval != 0 {
		t.Fatalf("default: %+v %v", c.snapshot, err)
	}
	c, err = parseFlags(append(baseArgs(t), "--snapshot-interval", "1h", "--snapshot-dir", "/backups/kms",
		"--snapshot-retain", "3", "--snapshot-command", "/usr/local/bin/copy-off --bucket b"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := snapshotFlags{interval: time.Hour, dir: "/backups/kms", retain: 3, command: "/usr/local/bin/copy-off --bucket b", commandTimeout: 5 * time.Minute}
	if c.snapshot != want {
		t.Fatalf("%+v, want %+v", c.snapshot, want)
	}
}

func TestParseFlags_RefusesBadSnapshotFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--snapshot-interval", "30s", "--snapshot-dir", "/b"}, "--snapshot-interval must be at least 1m"},
		{[]string{"--snapshot-interval", "-1h", "--snapshot-dir", "/b"}, "--snapshot-interval must be at least"},
		{[]string{"--snapshot-interval", "1h"}, "needs --snapshot-dir"},
		{[]string{"--snapshot-interval", "1h", "--snapshot-dir", "/b", "--snapshot-retain", "0"}, "--snapshot-retain"},
		{[]string{"--snapshot-interval", "1h", "--snapshot-dir", "/b", "--snapshot-command-timeout", "0s"}, "--snapshot-command-timeout"},
		{[]string{"--snapshot-dir", "/b"}, "need --snapshot-interval"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseFlags(append(baseArgs(t), tc.args...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseFlags_SnapshotTestMinimum(t *testing.T) {
	t.Setenv(snapshotMinIntervalEnv, "100ms")
	c, err := parseFlags(append(baseArgs(t), "--snapshot-interval", "200ms", "--snapshot-dir", "/b"), io.Discard)
	if err != nil || c.snapshot.interval != 200*time.Millisecond {
		t.Fatalf("%+v %v", c.snapshot, err)
	}
}
