package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func rec(i int) Record {
	return Record{
		Time:         time.Date(2026, 1, 2, 3, 4, 5, i*1000, time.UTC),
		RequestID:    fmt.Sprintf("REQ-%04d", i),
		Node:         "n1",
		Principal:    "acs:ram::1234:root",
		AccessKeyID:  "LTAIexample",
		Source:       "127.0.0.1:5555",
		Action:       "Encrypt",
		KeyID:        "key-" + fmt.Sprint(i),
		KeyVersionID: "ver-" + fmt.Sprint(i),
		Code:         "OK",
		Status:       200,
		Latency:      time.Duration(i) * time.Millisecond,
	}
}

// writeLog writes n records to a new file and returns its path and lines.
func writeLog(t *testing.T, n int) (string, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := w.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, lines(b)
}

func lines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

func join(ls [][]byte) []byte { return bytes.Join(ls, nil) }

func verifyBytes(b []byte, opts ...VerifyOptions) (Result, error) {
	var o VerifyOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	return Verify(bytes.NewReader(b), o)
}

func TestVerify_IntactFile(t *testing.T) {
	path, ls := writeLog(t, 5)
	b, _ := os.ReadFile(path)
	res, err := verifyBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lines != 5 {
		t.Fatalf("lines = %d", res.Lines)
	}
	var last struct{ Hash string }
	json.Unmarshal(ls[4], &last)
	if res.Head != last.Hash {
		t.Fatalf("head %s, last line's hash %s", res.Head, last.Hash)
	}
	if res, err := verifyBytes(nil); err != nil || res.Lines != 0 || res.Head != Genesis {
		t.Fatalf("empty file: %+v %v", res, err)
	}
}

// forge builds a line that is internally valid (correct hash) with the
// given prev, as someone who knows the format would.
func forge(t *testing.T, r Record, prev string) []byte {
	t.Helper()
	b, _, err := encode(r, prev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hashOf(t *testing.T, l []byte) string {
	t.Helper()
	var v struct{ Hash string }
	if err := json.Unmarshal(l, &v); err != nil {
		t.Fatal(err)
	}
	return v.Hash
}

func TestVerify_TamperingNamesTheFirstBrokenLine(t *testing.T) {
	_, orig := writeLog(t, 6)
	clone := func() [][]byte {
		out := make([][]byte, len(orig))
		for i := range orig {
			out[i] = append([]byte(nil), orig[i]...)
		}
		return out
	}
	cases := []struct {
		name   string
		tamper func() []byte
		line   int
		reason string
	}{
		{"EditAField", func() []byte {
			ls := clone()
			ls[2] = bytes.Replace(ls[2], []byte(`"code":"OK"`), []byte(`"code":"NO"`), 1)
			return join(ls)
		}, 3, "modified"},
		{"EditTheLatency", func() []byte {
			ls := clone()
			ls[3] = bytes.Replace(ls[3], []byte(`"latency_us":4000`), []byte(`"latency_us":4001`), 1)
			return join(ls)
		}, 4, "modified"},
		{"EditAndRehash", func() []byte {
			// Someone who recomputes the edited line's own hash is caught
			// by the next line.
			ls := clone()
			r := rec(3)
			r.Principal = "acs:ram::9999:root"
			ls[2] = forge(t, r, hashOf(t, ls[1]))
			return join(ls)
		}, 4, "removed, inserted or reordered"},
		{"DeleteALine", func() []byte {
			ls := clone()
			return join(append(ls[:2], ls[3:]...))
		}, 3, "removed, inserted or reordered"},
		{"DeleteTheFirstLine", func() []byte {
			return join(clone()[1:])
		}, 1, "genesis"},
		{"SwapTwoLines", func() []byte {
			ls := clone()
			ls[3], ls[4] = ls[4], ls[3]
			return join(ls)
		}, 4, "removed, inserted or reordered"},
		{"InsertACopiedLine", func() []byte {
			ls := clone()
			out := append([][]byte{}, ls[:2]...)
			out = append(out, ls[0])
			return join(append(out, ls[2:]...))
		}, 3, "removed, inserted or reordered"},
		{"InsertAForgedLine", func() []byte {
			// A well-formed line chained after line 2: the line after it
			// no longer follows.
			ls := clone()
			out := append([][]byte{}, ls[:2]...)
			out = append(out, forge(t, rec(99), hashOf(t, ls[1])))
			return join(append(out, ls[2:]...))
		}, 4, "removed, inserted or reordered"},
		{"InsertGarbage", func() []byte {
			ls := clone()
			out := append([][]byte{}, ls[:5]...)
			out = append(out, []byte("hello\n"))
			return join(append(out, ls[5:]...))
		}, 6, "JSON"},
		{"InsertAnEmptyLine", func() []byte {
			ls := clone()
			out := append([][]byte{}, ls[:1]...)
			out = append(out, []byte("\n"))
			return join(append(out, ls[1:]...))
		}, 2, "empty"},
		{"TruncateMidLine", func() []byte {
			b := join(clone())
			return b[:len(b)-len(orig[5])/2]
		}, 6, "incomplete"},
		{"TruncateJustTheNewline", func() []byte {
			b := join(clone())
			return b[:len(b)-1]
		}, 6, "incomplete"},
		{"HashNotLast", func() []byte {
			ls := clone()
			ls[0] = bytes.Replace(ls[0], []byte(`"}`+"\n"), []byte(`","x":1}`+"\n"), 1)
			return join(ls)
		}, 1, "last member"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyBytes(tc.tamper())
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("tampered file verified: %v", err)
			}
			if ce.Line != tc.line || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("got %q, want line %d mentioning %q", ce.Error(), tc.line, tc.reason)
			}
		})
	}
}

// Cutting whole lines off the end leaves a valid chain; a head hash noted
// earlier catches it.
func TestVerify_RecordedHeadCatchesRemovedTail(t *testing.T) {
	_, ls := writeLog(t, 4)
	head := hashOf(t, ls[3])
	if _, err := verifyBytes(join(ls), VerifyOptions{Head: head}); err != nil {
		t.Fatalf("intact file with its head: %v", err)
	}
	// A head from the middle is fine too: the file grew since.
	if _, err := verifyBytes(join(ls), VerifyOptions{Head: hashOf(t, ls[1])}); err != nil {
		t.Fatalf("intact file with an earlier head: %v", err)
	}
	cut := join(ls[:3])
	if _, err := verifyBytes(cut); err != nil {
		t.Fatalf("without a head the shorter chain is valid: %v", err)
	}
	_, err := verifyBytes(cut, VerifyOptions{Head: head})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Line != 4 || !strings.Contains(ce.Reason, "removed from the end") {
		t.Fatalf("cut tail with a recorded head: %v", err)
	}
}

// The construction documented in docs/SECURITY.md, implemented here
// without the package's code, accepts what the package writes.
func TestFormat_DocumentedConstruction(t *testing.T) {
	_, ls := writeLog(t, 3)
	prev := strings.Repeat("0", 64)
	for i, l := range ls {
		l = bytes.TrimSuffix(l, []byte("\n"))
		cut := bytes.LastIndex(l, []byte(`,"hash":"`))
		body := append(append([]byte(nil), l[:cut]...), '}')
		sum := sha256.Sum256(body)
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		if m["prev"] != prev || m["hash"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("line %d does not follow the documented construction: %s", i+1, l)
		}
		prev = m["hash"].(string)
	}
}

// The members of a line, in order: the whitelist and nothing else.
func TestFormat_MembersAreTheWhitelist(t *testing.T) {
	b, _, err := encode(rec(7), Genesis)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token()
	var keys []string
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v any
		dec.Decode(&v)
	}
	want := []string{"v", "time", "request_id", "node", "principal", "access_key_id", "source", "action",
		"key_id", "key_version_id", "code", "status", "latency_us", "prev", "hash"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("members %v, want %v", keys, want)
	}
	if !bytes.Contains(b, []byte(`"time":"2026-01-02T03:04:05.000007Z"`)) || !bytes.Contains(b, []byte(`"latency_us":7000`)) {
		t.Fatalf("time or latency format: %s", b)
	}
}

func TestFormat_LongFieldsAreClipped(t *testing.T) {
	r := rec(1)
	r.Action = strings.Repeat("A", 10000)
	r.KeyID = strings.Repeat("é", 5000)
	b, _, err := encode(r, Genesis)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 2048 {
		t.Fatalf("line of %d bytes", len(b))
	}
	if _, _, err := parseLine(bytes.TrimSuffix(b, []byte("\n"))); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	json.Unmarshal(b, &m)
	if strings.ContainsRune(m["key_id"], '\uFFFD') {
		t.Fatal("clipping split a UTF-8 sequence")
	}
}

func TestOpen_ContinuesTheChainAfterRestart(t *testing.T) {
	path, ls := writeLog(t, 3)
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.Head() != hashOf(t, ls[2]) {
		t.Fatalf("head after reopen %s", w.Head())
	}
	for i := 4; i <= 5; i++ {
		if err := w.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	b, _ := os.ReadFile(path)
	res, err := verifyBytes(b)
	if err != nil || res.Lines != 5 {
		t.Fatalf("after a restart: %+v %v", res, err)
	}
}

func TestOpen_RefusesADamagedTail(t *testing.T) {
	_, ls := writeLog(t, 3)
	cases := map[string][]byte{
		"cut mid-line":     join(ls)[:len(join(ls))-10],
		"no final newline": join(ls)[:len(join(ls))-1],
		"edited last line": join(append(ls[:2:2], bytes.Replace(ls[2], []byte(`"OK"`), []byte(`"NO"`), 1))),
		"garbage appended": append(join(ls), []byte("garbage\n")...),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			os.WriteFile(path, content, 0o600)
			w, err := Open(path, Options{})
			if err == nil {
				w.Close()
				t.Fatal("opened a damaged file")
			}
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "audit verify") {
				t.Fatalf("error does not say what to do: %v", err)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, content) {
				t.Fatal("a refused file was changed")
			}
		})
	}
}

func TestOpen_OneWriterPerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w2, err := Open(path, Options{}); err == nil {
		w2.Close()
		t.Fatal("a second writer opened the same file")
	}
	w.Close()
	w3, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	w3.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
}

// appendConcurrently has writers goroutines append lines records each.
func appendConcurrently(t *testing.T, w *Writer, writers, lines int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < lines; i++ {
				if err := w.Append(rec(g*1000 + i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestAppend_ConcurrentWritersKeepOneChain(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncEachLine, SyncNone} {
		path := filepath.Join(t.TempDir(), "audit.log")
		w, err := Open(path, Options{Sync: policy})
		if err != nil {
			t.Fatal(err)
		}
		appendConcurrently(t, w, 8, 50)
		w.Close()
		b, _ := os.ReadFile(path)
		res, err := verifyBytes(b)
		if err != nil || res.Lines != 400 {
			t.Fatalf("policy %d: %+v %v", policy, res, err)
		}
	}
}

// After a failure that leaves the file's end unknown, nothing more is
// written: every later Append fails.
func TestAppend_BrokenWriterRefusesEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(rec(1)); err != nil {
		t.Fatal(err)
	}
	w.f.Close() // the disk went away
	if err := w.Append(rec(2)); !errors.Is(err, ErrBroken) {
		t.Fatalf("append on a failed file: %v", err)
	}
	if err := w.Append(rec(3)); !errors.Is(err, ErrBroken) {
		t.Fatalf("append after a failure: %v", err)
	}
	b, _ := os.ReadFile(path)
	if res, err := verifyBytes(b); err != nil || res.Lines != 1 {
		t.Fatalf("file after the failure: %+v %v", res, err)
	}
}

// kms_audit_lines_per_sync counts every line once: its sum is the lines
// appended, its count the writes (each with its fdatasync), at most one per
// line.
func TestAppend_MetricsCountEveryLineInOneBatch(t *testing.T) {
	reg := prometheus.NewRegistry()
	w, err := Open(filepath.Join(t.TempDir(), "audit.log"), Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	appendConcurrently(t, w, 8, 25)
	w.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetHistogram()
	}
	lines, syncs := got["kms_audit_lines_per_sync"], got["kms_audit_sync_duration_seconds"]
	if lines == nil || syncs == nil {
		t.Fatalf("metrics %v", got)
	}
	if lines.GetSampleSum() != 200 || lines.GetSampleCount() < 1 || lines.GetSampleCount() > 200 || syncs.GetSampleCount() != lines.GetSampleCount() {
		t.Fatalf("lines per sync: sum %v over %d syncs (%d durations); want 200 lines", lines.GetSampleSum(), lines.GetSampleCount(), syncs.GetSampleCount())
	}
}
