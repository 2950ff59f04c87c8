package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dkmsapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util/protobuf/api"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/audit"
)

// A request the instance face cannot take is refused before anything is
// read or authenticated, as the SDK's protobuf api.Error with the table's
// code and status, audited and counted.
func TestInstanceFace_RefusesUnusableRequestsWithTheSDKsProtobufError(t *testing.T) {
	tn := startNode(t)
	ps := newPipelineServer(t, tn)
	h := ps.InstanceHandler()
	for _, tc := range []struct {
		name, method, path, action, version string
		wantAction                          string // in the audit line
		wantStatus                          int
		wantCode                            string
	}{
		{"a bogus signature", http.MethodPost, "/", "Encrypt", "dkms-gcs-0.2", "Encrypt", 400, "IncompleteSignature"},
		{"another path", http.MethodPost, "/v1/status", "Decrypt", "dkms-gcs-0.2", "Decrypt", 404, "InvalidPath.NotFound"},
		{"GET", http.MethodGet, "/", "GenerateRandom", "dkms-gcs-0.2", "GenerateRandom", 405, "UnsupportedHTTPMethod"},
		{"another API version", http.MethodPost, "/", "Encrypt", "dkms-gcs-0.1", "Encrypt", 400, "InvalidParameter"},
		{"no action", http.MethodPost, "/", "", "dkms-gcs-0.2", "", 404, "InvalidAction.NotFound"},
		{"an action name that is not one", http.MethodPost, "/", "Encrypt;drop", "dkms-gcs-0.2", "", 404, "InvalidAction.NotFound"},
		{"an action name too long", http.MethodPost, "/", strings.Repeat("A", 65), "dkms-gcs-0.2", "", 404, "InvalidAction.NotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "https://node.test"+tc.path, strings.NewReader("\x0a\x01k"))
			r.Header.Set("Content-Type", "application/x-protobuf")
			r.Header.Set("x-kms-apiversion", tc.version)
			r.Header.Set("x-kms-apiname", tc.action)
			r.Header.Set("authorization", "Bearer c2lnbmF0dXJl")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantStatus || w.Header().Get("Content-Type") != "application/x-protobuf" {
				t.Fatalf("%d %s, want %d application/x-protobuf", w.Code, w.Header().Get("Content-Type"), tc.wantStatus)
			}
			var e dkmsapi.Error
			if err := proto.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("the SDK's api.Error does not decode the body: %v", err)
			}
			if int(e.StatusCode) != tc.wantStatus || e.ErrorCode != tc.wantCode || e.RequestId == "" {
				t.Fatalf("api.Error = %+v, want %s", &e, tc.wantCode)
			}
			rec := ps.audit.byRequest(t, e.RequestId)
			if rec.Action != tc.wantAction || rec.Code != tc.wantCode || rec.Status != tc.wantStatus || rec.Principal != "" {
				t.Fatalf("audit record %+v", rec)
			}
		})
	}
	// The metric's action label stays bounded: unknown.
	if n := ps.requests(t, "unknown", "InvalidAction.NotFound"); n != 3 {
		t.Fatalf(`kms_requests_total{action="unknown",code="InvalidAction.NotFound"} = %v, want 3`, n)
	}
}

// The instance face is not on the API's routes: a protobuf request there is
// answered by the RPC face, in JSON.
func TestInstanceFace_IsNotMountedOnTheAPI(t *testing.T) {
	tn := startNode(t)
	ps := newPipelineServer(t, tn)
	r := httptest.NewRequest(http.MethodPost, "http://node.test/", strings.NewReader("\x0a\x01k"))
	r.Header.Set("Content-Type", "application/x-protobuf")
	r.Header.Set("x-kms-apiname", "Encrypt")
	w := httptest.NewRecorder()
	ps.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("the API answered %d %s, want its JSON", w.Code, ct)
	}
}

// GetKmsInstance answers the instance CA as the reference does, in
// CaCertificateChainPem: one PEM CA certificate (P-256), the same for
// every instance of the cluster.
func TestGetKmsInstance_AnswersTheInstanceCA(t *testing.T) {
	tn := startNode(t)
	var out struct {
		KmsInstance struct{ CaCertificateChainPem string }
	}
	tn.must(t, "GetKmsInstance", map[string]string{"KmsInstanceId": tn.InstanceID}, &out)
	block, rest := pem.Decode([]byte(out.KmsInstance.CaCertificateChainPem))
	if block == nil || block.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("CaCertificateChainPem = %q, want one PEM certificate", out.KmsInstance.CaCertificateChainPem)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("the instance CA: IsCA %v, key usage %b, key %T", ca.IsCA, ca.KeyUsage, ca.PublicKey)
	}
	if want, _ := tn.Service().InstanceCAPEM(); out.KmsInstance.CaCertificateChainPem != want {
		t.Fatal("GetKmsInstance answers another CA than the catalogue's")
	}
}

// failingAudit refuses every record, as a full disk would.
type failingAudit struct{}

func (failingAudit) Append(audit.Record) error { return errors.New("disk full") }

// A node that cannot write its audit log answers the instance API 503 in the
// SDK's format, with the code the SDK retries (on another node).
func TestInstanceFace_UnauditableRequestIs503InTheSDKsFormat(t *testing.T) {
	tn := startNode(t)
	srv := api.New(api.Config{NodeID: "noaudit", Service: tn.Service(), Raft: tn.Store(), DataDir: t.TempDir(),
		Registry: prometheus.NewRegistry(), Audit: failingAudit{}})
	r := httptest.NewRequest(http.MethodPost, "https://node.test/", strings.NewReader(""))
	r.Header.Set("x-kms-apiname", "Encrypt")
	w := httptest.NewRecorder()
	srv.InstanceHandler().ServeHTTP(w, r)
	var e dkmsapi.Error
	if err := proto.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusServiceUnavailable ||
		w.Header().Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("%d %s %q (%v)", w.Code, w.Header().Get("Content-Type"), w.Body.Bytes(), err)
	}
	if e.ErrorCode != "ServiceUnavailableTemporary" || e.StatusCode != 503 || e.RequestId == "" {
		t.Fatalf("api.Error = %+v", &e)
	}
}
