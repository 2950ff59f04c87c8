package audit

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The verification script docs/SECURITY.md gives auditors agrees with
// Verify: it accepts an intact file and rejects each kind of tampering.
func TestDocs_SecurityMDScriptVerifiesTheChain(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	script, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/SECURITY.md has no ```python block")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed: install it (make deps) — this test runs the documented script")
	}
	dir := t.TempDir()
	scriptPath := filepath.Join(dir, "verify_audit.py")
	os.WriteFile(scriptPath, []byte(script), 0o600)
	_, ls := writeLog(t, 4)
	run := func(content []byte) (string, bool) {
		p := filepath.Join(dir, "audit.log")
		os.WriteFile(p, content, 0o600)
		out, err := exec.Command(python, scriptPath, p).CombinedOutput()
		return string(out), err == nil
	}
	if out, ok := run(join(ls)); !ok || !strings.Contains(out, "intact, 4 lines, head "+hashOf(t, ls[3])) {
		t.Fatalf("the script rejects an intact file: %s", out)
	}
	if out, ok := run(nil); !ok || !strings.Contains(out, "0 lines") {
		t.Fatalf("the script on an empty file: %s", out)
	}
	for name, bad := range map[string][]byte{
		"edited":    join([][]byte{ls[0], bytes.Replace(ls[1], []byte(`"OK"`), []byte(`"NO"`), 1), ls[2], ls[3]}),
		"removed":   join([][]byte{ls[0], ls[2], ls[3]}),
		"reordered": join([][]byte{ls[0], ls[2], ls[1], ls[3]}),
		"inserted":  join([][]byte{ls[0], ls[1], ls[1], ls[2], ls[3]}),
		"truncated": join(ls)[:len(join(ls))-5],
	} {
		if out, ok := run(bad); ok {
			t.Errorf("%s: the script accepts a tampered file: %s", name, out)
		}
	}
}
