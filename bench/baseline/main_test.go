package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/internal/testutil"
)

// serve runs one request through the handler and returns the recorder.
func serve(h http.Handler, action string, q url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/?"+q.Encode(), nil)
	r.Header.Set("x-acs-action", action)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestBaseline_EncryptDecryptRoundTrip(t *testing.T) {
	h := newHandler()
	rec := serve(h, "Encrypt", url.Values{"KeyId": {"k"}, "Plaintext": {"hello"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("Encrypt: HTTP %d %s", rec.Code, rec.Body)
	}
	var enc encryptAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &enc); err != nil || enc.CiphertextBlob == "" {
		t.Fatalf("Encrypt answer %s: %v", rec.Body, err)
	}
	rec = serve(h, "Decrypt", url.Values{"CiphertextBlob": {enc.CiphertextBlob}})
	var dec decryptAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &dec); err != nil || dec.Plaintext != "hello" {
		t.Fatalf("Decrypt answer %s: %v", rec.Body, err)
	}
	rec = serve(h, "Decrypt", url.Values{"CiphertextBlob": {"AAAA"}})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("Decrypt of garbage: HTTP %d, want 400", rec.Code)
	}
	rec = serve(h, "GenerateDataKey", url.Values{"KeyId": {"k"}})
	var dk dataKeyAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &dk); err != nil || dk.Plaintext == "" || dk.CiphertextBlob == "" {
		t.Fatalf("GenerateDataKey answer %s: %v", rec.Body, err)
	}
}

// The benchmarks mirror api's BenchmarkServe_* (the same request shape,
// built before the timer), so `make bench` can print allocs/op of raftkms
// next to the floor's.
func benchmarkAction(b *testing.B, action string, q url.Values) {
	benchmarkOn(b, newHandler(), action, q)
}

// benchmarkOn serves b.N requests of action with query q through h.
func benchmarkOn(b *testing.B, h *handler, action string, q url.Values) {
	raw := q.Encode()
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodPost, "/?"+raw, nil)
		r.Header.Set("x-acs-action", action)
		reqs[i] = r
	}
	b.ReportAllocs()
	cpu0 := testutil.ProcessCPU()
	b.ResetTimer()
	for _, r := range reqs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d %s", rec.Code, rec.Body.Bytes())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(testutil.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

const plaintext64 = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="

func BenchmarkBaseline_Encrypt(b *testing.B) {
	benchmarkAction(b, "Encrypt", url.Values{"KeyId": {"key-bench"}, "Plaintext": {plaintext64}})
}

func BenchmarkBaseline_Decrypt(b *testing.B) {
	h := newHandler()
	rec := serve(h, "Encrypt", url.Values{"KeyId": {"key-bench"}, "Plaintext": {plaintext64}})
	var enc encryptAnswer
	json.Unmarshal(rec.Body.Bytes(), &enc)
	benchmarkOn(b, h, "Decrypt", url.Values{"CiphertextBlob": {enc.CiphertextBlob}})
}

func BenchmarkBaseline_GenerateDataKey(b *testing.B) {
	benchmarkAction(b, "GenerateDataKey", url.Values{"KeyId": {"key-bench"}})
}

// CreateKey's floor: every answered key is a whole line of the journal,
// however many append at once.
func TestBaseline_CreateKeyIsAJournalLineOnceAnswered(t *testing.T) {
	h := newHandler()
	var err error
	path := t.TempDir() + "/journal"
	if h.journal, err = openJournal(path); err != nil {
		t.Fatal(err)
	}
	const n = 64
	ids := make(chan string, n)
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			rec := serve(h, "CreateKey", url.Values{})
			var a createKeyAnswer
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &a) != nil || a.KeyMetadata.KeyId == "" {
				t.Errorf("CreateKey: HTTP %d %s", rec.Code, rec.Body)
				return
			}
			ids <- a.KeyMetadata.KeyId
		}()
	}
	for i := 0; i < n; i++ {
		<-done
	}
	close(ids)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var jl journalLine
		if err := json.Unmarshal([]byte(l), &jl); err != nil || jl.Wrapped == "" {
			t.Fatalf("journal line %q: %v", l, err)
		}
		lines[jl.KeyId] = true
	}
	got := 0
	for id := range ids {
		got++
		if !lines[id] {
			t.Errorf("key %s was answered but is not in the journal", id)
		}
	}
	if got != n || len(lines) != n {
		t.Fatalf("%d answers, %d journal lines; want %d of each", got, len(lines), n)
	}
}
