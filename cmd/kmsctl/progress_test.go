package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Transfer progress: bytes, percent and rate; rewritten in place on a
// terminal; off the terminal only the final line unless --progress.
func TestProgress_BytesRateAndFinalLine(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, "downloaded", 4<<20, false)
	p.Write(make([]byte, 1<<20))
	if l := p.line(); !strings.HasPrefix(l, "1.0 MiB of 4.0 MiB (25%), ") || !strings.Contains(l, "/s") {
		t.Errorf("line = %q", l)
	}
	p.finish()
	if got := out.String(); !strings.HasPrefix(got, "downloaded 1.0 MiB in ") || !strings.HasSuffix(got, "/s)\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("not a terminal, no --progress: %q, want only the final line", got)
	}

	old := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { isTerminal = old })
	out.Reset()
	p = newProgress(&out, "uploaded", 0, false)
	p.Write(make([]byte, 2048))
	p.print()
	p.finish()
	if got := out.String(); !strings.HasPrefix(got, "\r\x1b[Kuploaded: 2.0 KiB, ") || !strings.Contains(got, "\r\x1b[Kuploaded 2.0 KiB in ") {
		t.Errorf("terminal: %q", got)
	}
}

// The upload count follows the file position: the client reads the body
// once to hash it, rewinds, then sends it.
func TestProgressReader_SeekMovesTheCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, make([]byte, 1000), 0o600)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := newProgress(io.Discard, "uploaded", 1000, false)
	defer p.finish()
	r := progressReader{f, p, new(bool), nil}
	io.Copy(io.Discard, r)
	if _, err := r.Seek(0, io.SeekStart); err != nil || p.done.Load() != 0 {
		t.Fatalf("after rewinding: %d, %v", p.done.Load(), err)
	}
	io.CopyN(io.Discard, r, 300)
	if p.done.Load() != 300 {
		t.Fatalf("after 300 bytes: %d", p.done.Load())
	}
}
