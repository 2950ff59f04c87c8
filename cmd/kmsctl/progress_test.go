package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftkms/raftkms/client"
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

// The upload count follows the file position from the client's rewind:
// the pass that hashes the body is not the upload.
func TestProgressReader_CountsFromTheRewind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, make([]byte, 1000), 0o600)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := newProgress(io.Discard, "uploaded", 1000, false)
	defer p.finish()
	over := 0
	r := progressReader{f, p, new(bool), func() { over++ }}
	if _, err := r.Seek(0, io.SeekCurrent); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r)
	if p.done.Load() != 0 || over != 0 {
		t.Fatalf("the hashing pass counted %d bytes, ended the upload %d times", p.done.Load(), over)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil || p.done.Load() != 0 {
		t.Fatalf("after rewinding: %d, %v", p.done.Load(), err)
	}
	io.CopyN(io.Discard, r, 300)
	if p.done.Load() != 300 || over != 0 {
		t.Fatalf("after 300 bytes: %d, over %d", p.done.Load(), over)
	}
	// The client sends exactly the file's size and never reads its EOF.
	io.CopyN(io.Discard, r, 700)
	if p.done.Load() != 1000 || over != 1 {
		t.Fatalf("after the whole file: %d, over %d", p.done.Load(), over)
	}
}

// Through the real client, "uploaded" is reported once the body has been
// sent, not once it has been hashed: a node that has read only the first
// MiB of a 32 MiB upload has not been sent all of it (socket buffers hold
// far less than the rest).
func TestProgressReader_UploadEndsWhenTheBodyIsSent(t *testing.T) {
	const size, first = 32 << 20, 1 << 20
	path := filepath.Join(t.TempDir(), "snap")
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var over atomic.Bool
	overEarly := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, first)
		overEarly <- over.Load()
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	p := newProgress(io.Discard, "uploaded", size, false)
	c := &client.Client{Endpoint: srv.URL}
	body := progressReader{f, p, new(bool), func() { over.Store(true) }}
	if _, _, err := doJSON(context.Background(), c, http.MethodPost, "/v1/operator/snapshot", nil, body, false); err != nil {
		t.Fatal(err)
	}
	p.finish()
	if <-overEarly {
		t.Fatal("the upload was reported over when the node had read only its first MiB")
	}
	if !over.Load() || p.done.Load() != size {
		t.Fatalf("after the request: over %v, %d bytes counted", over.Load(), p.done.Load())
	}
}
