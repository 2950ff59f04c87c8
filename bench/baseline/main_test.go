package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"
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
	h := newHandler()
	raw := q.Encode()
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodPost, "/?"+raw, nil)
		r.Header.Set("x-acs-action", action)
		reqs[i] = r
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for _, r := range reqs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d %s", rec.Code, rec.Body.Bytes())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the process's user + system CPU time so far (as api's
// Serve benchmarks report it).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
	raw := url.Values{"CiphertextBlob": {enc.CiphertextBlob}}.Encode()
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodPost, "/?"+raw, nil)
		r.Header.Set("x-acs-action", "Decrypt")
		reqs[i] = r
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for _, r := range reqs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d %s", rec.Code, rec.Body.Bytes())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkBaseline_GenerateDataKey(b *testing.B) {
	benchmarkAction(b, "GenerateDataKey", url.Values{"KeyId": {"key-bench"}})
}
