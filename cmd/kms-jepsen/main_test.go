package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeHistory(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheck_ExitCodes(t *testing.T) {
	lost := writeHistory(t,
		`{"index":0,"time":1,"process":0,"type":"invoke","f":"add","key":"","value":"a","node":"n1"}`,
		`{"index":1,"time":2,"process":0,"type":"ok","f":"add","key":"","value":"a","node":"n1"}`,
		`{"index":2,"time":3,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n2"}`,
		`{"index":3,"time":4,"process":0,"type":"ok","f":"read","key":"","value":[],"node":"n2"}`,
	)
	stale := writeHistory(t,
		`{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"index":1,"time":2,"process":0,"type":"ok","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"index":2,"time":3,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n2"}`,
		`{"index":3,"time":4,"process":1,"type":"ok","f":"read","key":"k","value":null,"node":"n2"}`,
	)
	fine := writeHistory(t,
		`{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"index":1,"time":2,"process":0,"type":"info","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"index":2,"time":3,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n2"}`,
		`{"index":3,"time":4,"process":1,"type":"ok","f":"read","key":"k","value":"a","node":"n2"}`,
	)
	retried := writeHistory(t,
		`{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"s","value":"a","node":"n1","workload":"secrets"}`,
		`{"index":1,"time":2,"process":0,"type":"info","f":"write","key":"s","value":"a","node":"n1","workload":"secrets"}`,
		`{"index":2,"time":3,"process":1,"type":"invoke","f":"write","key":"s","value":"a","node":"n2","workload":"secrets"}`,
		`{"index":3,"time":4,"process":1,"type":"ok","f":"write","key":"s","value":"a","node":"n2","workload":"secrets"}`,
		`{"index":4,"time":5,"process":1,"type":"invoke","f":"read","key":"s","value":null,"node":"n3","workload":"secrets"}`,
		`{"index":5,"time":6,"process":1,"type":"ok","f":"read","key":"s","value":"a","node":"n3","workload":"secrets"}`,
	)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"lost add", []string{"check", "--workload", "set", lost}, 1, "misses 1 acknowledged add"},
		{"flags after the file", []string{"check", lost, "--workload", "set"}, 1, "misses 1 acknowledged add"},
		{"stale read", []string{"check", "--workload", "register", stale}, 1, "not linearizable"},
		{"valid with an unknown write", []string{"check", "--workload", "register", fine}, 0, "valid"},
		{"secrets: a retried write", []string{"check", "--workload", "secrets", retried}, 0, "valid: secrets history"},
		{"secrets: stale read", []string{"check", "--workload", "secrets", stale}, 1, "not linearizable"},
		{"no workload", []string{"check", fine}, 2, "usage"},
		{"unknown workload", []string{"check", "--workload", "bank", fine}, 2, "unknown workload"},
		{"missing file", []string{"check", "--workload", "set", filepath.Join(t.TempDir(), "none")}, 2, "no such file"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := realMain(c.args, &out, &errb); code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, c.code, errb.String())
			}
			if !strings.Contains(errb.String(), c.stderr) {
				t.Errorf("stderr %q does not mention %q", errb.String(), c.stderr)
			}
		})
	}
}

func TestRun_RejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--nemesis", "earthquake"},
		{"run", "--workload", "bank"},
		{"run", "--workload", "none"},
		{"run", "--rate", "0"},
		{"run", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := realMain(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}
