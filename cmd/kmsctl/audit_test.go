package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/audit"
)

// writeAuditLog writes n lines the way kmsd does and returns the path and
// the file's lines.
func writeAuditLog(t *testing.T, n int) (string, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := audit.Open(path, audit.Options{Sync: audit.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := w.Append(audit.Record{Time: time.Now(), RequestID: fmt.Sprint("R", i), Node: "n1", Action: "Encrypt", Code: "OK", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	b, _ := os.ReadFile(path)
	return path, bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func TestAuditVerify_IntactFileExits0(t *testing.T) {
	path, _ := writeAuditLog(t, 4)
	code, out, errs := runCtl(t, "operator", "audit", "verify", path)
	if code != 0 || !strings.Contains(out, "intact") || !strings.Contains(out, "4 lines") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestAuditVerify_BrokenChainExits1NamingTheLine(t *testing.T) {
	_, ls := writeAuditLog(t, 5)
	withNL := func(ls [][]byte) []byte {
		b := bytes.Join(ls, nil)
		return append(b, '\n')
	}
	cases := map[string]struct {
		content []byte
		line    int
	}{
		"edited":    {withNL(append(append([][]byte{}, ls[:1]...), append([][]byte{bytes.Replace(ls[1], []byte(`"R1"`), []byte(`"R9"`), 1)}, ls[2:]...)...)), 2},
		"removed":   {withNL(append(append([][]byte{}, ls[:2]...), ls[3:]...)), 3},
		"reordered": {withNL([][]byte{ls[0], ls[1], ls[3], ls[2], ls[4]}), 3},
		"inserted":  {withNL([][]byte{ls[0], ls[1], ls[2], ls[0], ls[3], ls[4]}), 4},
		"truncated": {withNL(ls)[:len(withNL(ls))-20], 5},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			os.WriteFile(path, tc.content, 0o600)
			code, out, errs := runCtl(t, "operator", "audit", "verify", path)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
			if want := fmt.Sprintf("line %d breaks the chain", tc.line); !strings.Contains(errs, want) {
				t.Fatalf("stderr %q does not say %q", errs, want)
			}
		})
	}
}

func TestAuditVerify_Head(t *testing.T) {
	path, _ := writeAuditLog(t, 3)
	_, out, _ := runCtl(t, "operator", "audit", "verify", path)
	head := out[strings.LastIndex(out, " ")+1:]
	head = strings.TrimSpace(head)
	if code, _, errs := runCtl(t, "operator", "audit", "verify", "--head", head, path); code != 0 {
		t.Fatalf("with its own head: %s", errs)
	}
	// Cut the last line: the chain is still valid, the head is gone.
	b, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(b, []byte("\n"))
	os.WriteFile(path, bytes.Join(lines[:2], nil), 0o600)
	if code, _, errs := runCtl(t, "operator", "audit", "verify", "--head", head, path); code != 1 || !strings.Contains(errs, "removed from the end") {
		t.Fatalf("cut tail with the old head: exit %d, %s", code, errs)
	}
}

func TestAuditVerify_UsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"no path":         {"operator", "audit", "verify"},
		"two paths":       {"operator", "audit", "verify", "a", "b"},
		"missing file":    {"operator", "audit", "verify", filepath.Join(dir, "nope.log")},
		"a directory":     {"operator", "audit", "verify", dir},
		"no subcommand":   {"operator", "audit"},
		"unknown command": {"operator", "audit", "check", "x"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errs := runCtl(t, args...)
			if code != 2 || out != "" || errs == "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
		})
	}
}
