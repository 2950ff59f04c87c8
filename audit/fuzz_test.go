package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	_, ls := writeLogF(f, 3)
	f.Add(join(ls))
	f.Add(join(ls[1:]))
	f.Add(join(ls)[:len(join(ls))-7])
	f.Add(bytes.Replace(join(ls), []byte(`"OK"`), []byte(`"NO"`), 1))
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"prev":"0","hash":"1"}` + "\n"))
}

// writeLogF is writeLog for a fuzz target's seeds.
func writeLogF(f *testing.F, n int) (string, [][]byte) {
	path := filepath.Join(f.TempDir(), "audit.log")
	w, err := Open(path, Options{Sync: SyncNone})
	if err != nil {
		f.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		w.Append(rec(i))
	}
	w.Close()
	b, _ := os.ReadFile(path)
	return path, lines(b)
}

// Verify meets files an attacker may have written: it never panics, every
// refusal of an in-memory file is a ChainError, and what it accepts is a
// whole chain of whole lines.
func FuzzVerify(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := Verify(bytes.NewReader(b), VerifyOptions{})
		if err != nil {
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Line < 1 {
				t.Fatalf("refusal without a line: %v", err)
			}
			return
		}
		if res.Lines != bytes.Count(b, []byte("\n")) || (len(b) > 0 && b[len(b)-1] != '\n') {
			t.Fatalf("accepted %d lines of %q", res.Lines, b)
		}
		if _, err := Verify(bytes.NewReader(b), VerifyOptions{Head: res.Head}); err != nil {
			t.Fatalf("its own head is not in it: %v", err)
		}
	})
}

// Open continues any file whose last line is intact, so that the line it
// appends links to it; a file that verified still verifies afterwards.
func FuzzOpenContinuesTheChain(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		before, verr := Verify(bytes.NewReader(b), VerifyOptions{})
		w, err := Open(path, Options{Sync: SyncNone})
		if err != nil {
			if verr == nil {
				t.Fatalf("a file that verifies was refused: %v", err)
			}
			return
		}
		head := w.Head()
		if err := w.Append(rec(1)); err != nil {
			t.Fatal(err)
		}
		w.Close()
		after, _ := os.ReadFile(path)
		last := lines(after)
		_, prev, err := parseLine(bytes.TrimSuffix(last[len(last)-1], []byte("\n")))
		if err != nil || prev != head {
			t.Fatalf("the appended line does not link to the old head: %v", err)
		}
		if verr == nil {
			res, err := Verify(bytes.NewReader(after), VerifyOptions{Head: before.Head})
			if err != nil || res.Lines != before.Lines+1 {
				t.Fatalf("after one append: %+v %v", res, err)
			}
		}
	})
}
