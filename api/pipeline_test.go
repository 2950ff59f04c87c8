package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/audit"
	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/signature"
)

// auditSink keeps the records a server audits.
type auditSink struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (a *auditSink) Append(r audit.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return nil
}

func (a *auditSink) byRequest(tb testing.TB, id string) audit.Record {
	tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.recs {
		if r.RequestID == id {
			return r
		}
	}
	tb.Fatalf("no audit record for request %q", id)
	return audit.Record{}
}

// pipelineServer is a second API server over tn's service with its own
// metrics registry and audit sink, and the test-only plain-text face
// mounted on /test/plain.
type pipelineServer struct {
	*api.Server
	reg   *prometheus.Registry
	audit *auditSink
}

func newPipelineServer(t *testing.T, tn *testNode) *pipelineServer {
	reg := prometheus.NewRegistry()
	ps := &pipelineServer{reg: reg, audit: &auditSink{}}
	ps.Server = api.New(api.Config{
		NodeID: "pipeline", Service: tn.Service(), Raft: tn.Store(), DataDir: t.TempDir(),
		Registry: reg, Gatherer: reg, Audit: ps.audit,
	})
	api.MountPlainFace(ps.Server, "/test/plain")
	return ps
}

// requests is kms_requests_total{action,code}.
func (ps *pipelineServer) requests(tb testing.TB, action, code string) float64 {
	tb.Helper()
	mfs, err := ps.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kms_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "action") == action && label(m, "code") == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// plain sends one request to the plain-text face, signed with creds when
// they are set, and returns the status and the answer's words.
func (ps *pipelineServer) plain(t *testing.T, creds *signature.Credentials, q url.Values) (int, []string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://node.test/test/plain?"+signature.CanonicalQuery(q), nil)
	if creds != nil {
		empty := sha256.Sum256(nil)
		if err := signature.SignV3(r, hex.EncodeToString(empty[:]), *creds, time.Now(), signature.NewNonce()); err != nil {
			t.Fatal(err)
		}
	}
	w := httptest.NewRecorder()
	ps.ServeHTTP(w, r)
	return w.Code, strings.Fields(w.Body.String())
}

// A face added in a file of its own (face_plain_test.go: decode,
// authenticate, route, answer, fail) gets the whole envelope from the
// pipeline without touching it: its requests are counted in
// kms_requests_total, audited with the caller and the key the core
// resolved (or the key as written when none was), refused with the codes
// and statuses of the one error table, and rate-limited by its route's
// class.
func TestPipeline_NewFaceGetsMetricsAuditErrorsAndLimits(t *testing.T) {
	tn := startNode(t)
	ps := newPipelineServer(t, tn)
	key := tn.createKey(t, "plain face")
	tn.must(t, "CreateAlias", map[string]string{"AliasName": "alias/plain", "KeyId": key}, nil)
	principal := "acs:ram::" + tn.AccountID + ":root"

	status, words := ps.plain(t, &tn.Creds, url.Values{"op": {"describe"}, "key": {"alias/plain"}})
	if status != 200 || len(words) != 3 || words[0] != "OK" || words[2] != key {
		t.Fatalf("describe through the plain face: %d %q", status, words)
	}
	if rec := ps.audit.byRequest(t, words[1]); rec.Action != "Plaindescribe" || rec.Code != "OK" || rec.Status != 200 ||
		rec.Principal != principal || rec.KeyID != key {
		t.Errorf("audit record of a served request: %+v (want the key the alias resolved to, %s)", rec, key)
	}

	refusals := []struct {
		name    string
		creds   *signature.Credentials
		q       url.Values
		status  int
		code    string
		label   string // the metric's action label
		keyID   string // the audit line's key
		authned bool
	}{
		{"unknown alias", &tn.Creds, url.Values{"op": {"describe"}, "key": {"alias/none"}}, 404, "Forbidden.AliasNotFound", "Plaindescribe", "alias/none", true},
		{"unsigned", nil, url.Values{"op": {"describe"}, "key": {key}}, 400, "IncompleteSignature", "Plaindescribe", "", false},
		{"unknown operation", &tn.Creds, url.Values{"op": {"drop"}}, 404, "InvalidAction.NotFound", "unknown", "", true},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			status, words := ps.plain(t, tc.creds, tc.q)
			if status != tc.status || len(words) != 3 || words[0] != "ERR" || words[2] != tc.code {
				t.Fatalf("got %d %q, want %d ERR <id> %s", status, words, tc.status, tc.code)
			}
			rec := ps.audit.byRequest(t, words[1])
			if rec.Code != tc.code || rec.Status != tc.status || rec.KeyID != tc.keyID || (rec.Principal == principal) != tc.authned {
				t.Errorf("audit record %+v", rec)
			}
			if n := ps.requests(t, tc.label, tc.code); n != 1 {
				t.Errorf("kms_requests_total{action=%q,code=%q} = %v, want 1", tc.label, tc.code, n)
			}
		})
	}
	if n := ps.requests(t, "Plaindescribe", "OK"); n != 1 {
		t.Errorf(`kms_requests_total{action="Plaindescribe",code="OK"} = %v, want 1`, n)
	}

	// The route's class (read) is rate-limited like every other read of
	// the account: a burst of one, then 429.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := tn.V3.Do(ctx, http.MethodPost, "/v1/operator/ratelimits",
		url.Values{"AccountId": {tn.AccountID}, "Class": {"read"}, "Rate": {"0.001"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := url.Values{"op": {"describe"}, "key": {key}}
	if status, words := ps.plain(t, &tn.Creds, q); status != 200 {
		t.Fatalf("first read under the limit: %d %q", status, words)
	}
	if status, words := ps.plain(t, &tn.Creds, q); status != 429 || len(words) != 3 || words[2] != "Rejected.Throttling" {
		t.Fatalf("second read over the limit: %d %q, want 429 Rejected.Throttling", status, words)
	}
}

// The operator endpoints go through the same pipeline as the API actions:
// each request is counted in kms_requests_total under its action, audited
// with its caller, and admitted under the account's rate limit for its
// class — and one that needs no credentials (init) still is.
func TestOperator_EndpointsAreCountedAuditedAndRateLimited(t *testing.T) {
	tn := startNode(t)
	ps := newPipelineServer(t, tn)
	srv := httptest.NewServer(ps)
	defer srv.Close()
	cl, err := client.New(srv.URL, tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	principal := "acs:ram::" + tn.AccountID + ":root"

	resp, err := cl.Do(ctx, http.MethodPost, "/v1/operator/accounts", url.Values{"Name": {"counted"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := ps.requests(t, "CreateAccount", "OK"); n != 1 {
		t.Errorf(`kms_requests_total{action="CreateAccount",code="OK"} = %v, want 1`, n)
	}
	_, err = cl.DoUnsigned(ctx, http.MethodPost, "/v1/operator/init", nil, nil, nil)
	ae := wantAPIError(t, err, 409, "Rejected.AlreadyInitialized")
	if rec := ps.audit.byRequest(t, ae.RequestID); rec.Action != "Init" || rec.Code != "Rejected.AlreadyInitialized" || rec.Principal != "" {
		t.Errorf("audit record of a second init: %+v", rec)
	}
	if n := ps.requests(t, "Init", "Rejected.AlreadyInitialized"); n != 1 {
		t.Errorf(`kms_requests_total{action="Init",code="Rejected.AlreadyInitialized"} = %v, want 1`, n)
	}
	resp, err = cl.Do(ctx, http.MethodGet, "/v1/operator/ratelimits", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var read struct{ RequestId string }
	json.NewDecoder(resp.Body).Decode(&read)
	resp.Body.Close()
	if rec := ps.audit.byRequest(t, read.RequestId); rec.Action != "RateLimits" || rec.Principal != principal || rec.Code != "OK" {
		t.Errorf("audit record of a rate limits read: %+v", rec)
	}
	if n := ps.requests(t, "RateLimits", "OK"); n != 1 {
		t.Errorf(`kms_requests_total{action="RateLimits",code="OK"} = %v, want 1`, n)
	}

	// A write limit on the operator's account applies to its operator
	// writes too: a burst of one, then 429.
	resp, err = cl.Do(ctx, http.MethodPost, "/v1/operator/ratelimits",
		url.Values{"AccountId": {tn.AccountID}, "Class": {"write"}, "Rate": {"0.001"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = cl.Do(ctx, http.MethodPost, "/v1/operator/instances", url.Values{"Name": {"limited"}}, nil, nil)
	if err != nil {
		t.Fatalf("first write under the limit: %v", err)
	}
	resp.Body.Close()
	_, err = cl.Do(ctx, http.MethodPost, "/v1/operator/instances", url.Values{"Name": {"over"}}, nil, nil)
	ae = wantAPIError(t, err, 429, "Rejected.Throttling")
	if rec := ps.audit.byRequest(t, ae.RequestID); rec.Action != "CreateInstance" || rec.Principal != principal {
		t.Errorf("audit record of a throttled operator write: %+v", rec)
	}
	if n := ps.requests(t, "CreateInstance", "Rejected.Throttling"); n != 1 {
		t.Errorf(`kms_requests_total{action="CreateInstance",code="Rejected.Throttling"} = %v, want 1`, n)
	}
}

// The audit line names the key the core resolved, even when the request
// is refused after resolving it: an Encrypt through an alias of a disabled
// key names the key id, not the alias; a ReEncrypt names its destination
// key and the version that sealed.
func TestAudit_RefusedRequestNamesTheKeyTheCoreResolved(t *testing.T) {
	tn := startNode(t)
	ps := newPipelineServer(t, tn)
	srv := httptest.NewServer(ps)
	defer srv.Close()
	cl, err := client.New(srv.URL, tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := tn.createKey(t, "source")
	dst := tn.createKey(t, "destination")
	tn.must(t, "CreateAlias", map[string]string{"AliasName": "alias/disabled-soon", "KeyId": dst}, nil)
	var enc struct{ CiphertextBlob, KeyVersionId string }
	tn.must(t, "Encrypt", map[string]string{"KeyId": src, "Plaintext": "YXVkaXQ="}, &enc)
	var re struct{ KeyId, KeyVersionId string }
	r, err := cl.Call(ctx, "ReEncrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob, "DestinationKeyId": "alias/disabled-soon"})
	if err != nil {
		t.Fatal(err)
	}
	r.Decode(&re)
	if rec := ps.audit.byRequest(t, r.RequestID); rec.KeyID != dst || rec.KeyVersionID != re.KeyVersionId || re.KeyId != dst {
		t.Errorf("ReEncrypt's audit record names %s/%s, want the destination %s/%s", rec.KeyID, rec.KeyVersionID, dst, re.KeyVersionId)
	}

	tn.must(t, "DisableKey", map[string]string{"KeyId": dst}, nil)
	_, err = cl.Call(ctx, "Encrypt", map[string]string{"KeyId": "alias/disabled-soon", "Plaintext": "YXVkaXQ="})
	ae := wantAPIError(t, err, 409, "Rejected.Disabled")
	if rec := ps.audit.byRequest(t, ae.RequestID); rec.KeyID != dst {
		t.Errorf("a refused Encrypt through an alias names key %q, want the key it resolved, %s", rec.KeyID, dst)
	}
	_, err = cl.Call(ctx, "DescribeKey", map[string]string{"KeyId": "alias/never"})
	ae = wantAPIError(t, err, 404, "Forbidden.AliasNotFound")
	if rec := ps.audit.byRequest(t, ae.RequestID); rec.KeyID != "alias/never" {
		t.Errorf("a key that did not resolve is named %q, want it as written", rec.KeyID)
	}
}
