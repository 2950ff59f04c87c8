package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/signature"
)

// BenchmarkServe_Encrypt is one signed Encrypt through the whole pipeline of
// a real single node, in process (no sockets): parameter decoding, V3
// signature check, nonce, freshness, authorization, AES-GCM, metrics, the
// JSON answer. Requests are signed before the timer starts, so ns/op and
// allocs/op are the server's alone (issue 16 asks for allocations per
// request next to the time).
func BenchmarkServe_Encrypt(b *testing.B) {
	tn := startNode(b)
	key := tn.createKey(b, "bench")
	h := api.New(api.Config{NodeID: tn.ID(), Service: tn.Service(), Raft: tn.Store(), DataDir: b.TempDir()})
	query := url.Values{"Action": {"Encrypt"}, "KeyId": {key}, "Plaintext": {"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="}}.Encode()
	reqs := make([]*http.Request, b.N)
	now := time.Now()
	for i := range reqs {
		r := httptest.NewRequest(http.MethodPost, "/?"+query, nil)
		r.Header.Set("x-acs-action", "Encrypt")
		if err := signature.SignV3(r, signature.EmptyPayloadHash, tn.Creds, now, signature.NewNonce()); err != nil {
			b.Fatal(err)
		}
		reqs[i] = r
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, r := range reqs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d %s", rec.Code, rec.Body.Bytes())
		}
	}
}
