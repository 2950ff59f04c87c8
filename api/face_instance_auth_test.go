package api_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	dkmsapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util/protobuf/api"
	"google.golang.org/protobuf/proto"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/raftkms/raftkms/kms"
)

// instanceClientKey makes a policy on every key of tn's instance, an AAP and
// a client key, and returns the key's id and private key.
func instanceClientKey(t *testing.T, tn *testNode, aap string) (string, *rsa.PrivateKey) {
	t.Helper()
	tn.must(t, "CreatePolicy", map[string]string{"Name": aap, "KmsInstance": tn.InstanceID,
		"Permissions": `["RbacPermission/Template/CryptoServiceKeyUser"]`, "Resources": `["key/*"]`}, nil)
	tn.must(t, "CreateApplicationAccessPoint", map[string]string{"Name": aap, "Policies": `["` + aap + `"]`}, nil)
	var out struct{ ClientKeyId, PrivateKeyData string }
	tn.must(t, "CreateClientKey", map[string]string{"AapName": aap, "Password": "Passw0rd-face"}, &out)
	p12, err := base64.StdEncoding.DecodeString(out.PrivateKeyData)
	if err != nil {
		t.Fatal(err)
	}
	priv, _, err := pkcs12.Decode(p12, "Passw0rd-face")
	if err != nil {
		t.Fatal(err)
	}
	return out.ClientKeyId, priv.(*rsa.PrivateKey)
}

// signedInstanceRequest builds a request as the SDK signs it.
func signedInstanceRequest(t *testing.T, id string, priv *rsa.PrivateKey, action string, body []byte) *http.Request {
	t.Helper()
	sum := sha256.Sum256(body)
	h := map[string]string{
		"content-type": "application/x-protobuf", "date": time.Now().UTC().Format(http.TimeFormat),
		"content-sha256": strings.ToUpper(hex.EncodeToString(sum[:])), "x-kms-apiversion": "dkms-gcs-0.2",
		"x-kms-apiname": action, "x-kms-signaturemethod": "RSA_PKCS1_SHA_256", "x-kms-acccesskeyid": id,
	}
	var names []string
	for n := range h {
		if strings.HasPrefix(n, "x-kms-") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	s := "POST\n" + h["content-sha256"] + "\n" + h["content-type"] + "\n" + h["date"] + "\n"
	for _, n := range names {
		s += n + ":" + h[n] + "\n"
	}
	d := sha256.Sum256([]byte(s + "/"))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "https://node.test/", bytes.NewReader(body))
	for n, v := range h {
		r.Header.Set(n, v)
	}
	r.Header.Set("authorization", "Bearer "+base64.StdEncoding.EncodeToString(sig))
	return r
}

// A signed request is answered, and refused when what it carries is wrong,
// with the table's code; every audit line names the client key (as the
// access key id) and, once authenticated, its AAP (in the principal).
func TestInstanceFace_AnswersSignedRequestsAndAuditsTheClientKeyAndAAP(t *testing.T) {
	tn := startNode(t)
	ps := newPipelineServer(t, tn)
	key := tn.createKey(t, "instance face")
	id, priv := instanceClientKey(t, tn, "face-app")
	enc := func(m *dkmsapi.EncryptRequest) []byte { b, _ := proto.Marshal(m); return b }
	for _, tc := range []struct {
		name, action string
		body         []byte
		tamper       func(r *http.Request)
		wantStatus   int
		wantCode     string
		authed       bool
	}{
		{"Encrypt", "Encrypt", enc(&dkmsapi.EncryptRequest{KeyId: key, Plaintext: []byte("hi")}), nil, 200, "", true},
		{"an IV chosen by the caller", "Encrypt", enc(&dkmsapi.EncryptRequest{KeyId: key, Plaintext: []byte("hi"), Iv: make([]byte, 12)}), nil, 400, "InvalidParameter", true},
		{"another algorithm", "Encrypt", enc(&dkmsapi.EncryptRequest{KeyId: key, Plaintext: []byte("hi"), Algorithm: "SM4_CBC"}), nil, 400, "InvalidParameter", true},
		{"a body that is not protobuf", "Encrypt", []byte{0xff, 0xff, 0xff}, nil, 400, "ParseRequestParameterException", true},
		{"an action the face does not serve", "Hmac", enc(&dkmsapi.EncryptRequest{KeyId: key}), nil, 404, "InvalidAction.NotFound", true},
		{"a body over 1 MiB", "Encrypt", bytes.Repeat([]byte{0}, 1<<20+1), nil, 413, "RequestEntityTooLarge", false},
		{"a signature by another key", "Encrypt", enc(&dkmsapi.EncryptRequest{KeyId: key, Plaintext: []byte("hi")}), func(r *http.Request) {
			r.Header.Set("x-kms-apiname", "Decrypt") // no longer what was signed
		}, 400, "SignatureDoesNotMatch", false},
		{"an unknown client key", "Encrypt", enc(&dkmsapi.EncryptRequest{KeyId: key}), func(r *http.Request) {
			r.Header.Set("x-kms-acccesskeyid", "KAAP.00000000-0000-0000-0000-000000000000")
		}, 404, "InvalidAccessKeyId.NotFound", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := signedInstanceRequest(t, id, priv, tc.action, tc.body)
			if tc.tamper != nil {
				tc.tamper(r)
			}
			w := httptest.NewRecorder()
			ps.InstanceHandler().ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %q", w.Code, tc.wantStatus, w.Body.Bytes())
			}
			var requestID string
			if tc.wantCode == "" {
				var resp dkmsapi.EncryptResponse
				if err := proto.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.KeyId != key || len(resp.Iv) != 12 {
					t.Fatalf("answer %+v, %v", &resp, err)
				}
				requestID = resp.RequestId
			} else {
				var e dkmsapi.Error
				if err := proto.Unmarshal(w.Body.Bytes(), &e); err != nil || e.ErrorCode != tc.wantCode {
					t.Fatalf("api.Error %+v (%v), want %s", &e, err, tc.wantCode)
				}
				requestID = e.RequestId
			}
			rec := ps.audit.byRequest(t, requestID)
			wantID := r.Header.Get("x-kms-acccesskeyid")
			if rec.AccessKeyID != wantID || (tc.authed && !strings.HasSuffix(rec.Principal, ":aap/face-app")) || (!tc.authed && rec.Principal != "") {
				t.Fatalf("audit line names access key %q, principal %q", rec.AccessKeyID, rec.Principal)
			}
			if tc.wantCode == "" && rec.KeyID != key {
				t.Fatalf("audit line names key %q, want %q", rec.KeyID, key)
			}
		})
	}
}

// A client mistake through the instance face is a 4xx with the service's
// code, never a 500: a Decrypt naming another account's key (or alias)
// that does not exist is refused like a blob that does not open under the
// named key, which does not tell whether the key exists; an Aad over 8 KiB
// is refused as Encrypt's parameter.
func TestInstanceFace_RefusesAnotherAccountsUnknownKeyAndAnOversizedAadWith4xx(t *testing.T) {
	tn := startNode(t)
	ps := newPipelineServer(t, tn)
	key := tn.createKey(t, "instance face refusals")
	id, priv := instanceClientKey(t, tn, "face-refusals")
	var desc struct{ KeyMetadata struct{ Arn string } }
	tn.must(t, "DescribeKey", map[string]string{"KeyId": key}, &desc)
	region := strings.Split(desc.KeyMetadata.Arn, ":")[2]
	other := "1" + strings.Repeat("0", 15)
	if other == tn.AccountID {
		other = "2" + strings.Repeat("0", 15)
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		t.Fatal(err)
	}
	unknownUUID := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
	foreignKey := "acs:kms:" + region + ":" + other + ":key/" + unknownUUID
	foreignAlias := "acs:kms:" + region + ":" + other + ":alias/nobody"

	call := func(t *testing.T, action string, m proto.Message) *httptest.ResponseRecorder {
		t.Helper()
		body, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		ps.InstanceHandler().ServeHTTP(w, signedInstanceRequest(t, id, priv, action, body))
		return w
	}
	w := call(t, "Encrypt", &dkmsapi.EncryptRequest{KeyId: key, Plaintext: []byte("hi")})
	var enc dkmsapi.EncryptResponse
	if err := proto.Unmarshal(w.Body.Bytes(), &enc); w.Code != 200 || err != nil {
		t.Fatalf("Encrypt: %d %q", w.Code, w.Body.Bytes())
	}
	for _, tc := range []struct {
		name, action string
		req          proto.Message
		wantStatus   int
		wantCode     string
	}{
		{"Decrypt naming another account's unknown key", "Decrypt", &dkmsapi.DecryptRequest{KeyId: foreignKey, CiphertextBlob: enc.CiphertextBlob}, 400, "InvalidCiphertext"},
		{"Decrypt naming another account's unknown alias", "Decrypt", &dkmsapi.DecryptRequest{KeyId: foreignAlias, CiphertextBlob: enc.CiphertextBlob}, 400, "InvalidCiphertext"},
		{"AdvanceDecrypt naming another account's unknown key", "AdvanceDecrypt", &dkmsapi.AdvanceDecryptRequest{KeyId: foreignKey, CiphertextBlob: enc.CiphertextBlob}, 400, "InvalidCiphertext"},
		{"Encrypt with an Aad over 8 KiB", "Encrypt", &dkmsapi.EncryptRequest{KeyId: key, Plaintext: []byte("hi"), Aad: make([]byte, kms.MaxAADSize+1)}, 400, "InvalidParameter"},
		{"GenerateDataKey with an Aad over 8 KiB", "GenerateDataKey", &dkmsapi.GenerateDataKeyRequest{KeyId: key, Aad: make([]byte, kms.MaxAADSize+1)}, 400, "InvalidParameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := call(t, tc.action, tc.req)
			var e dkmsapi.Error
			if err := proto.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != tc.wantStatus || e.ErrorCode != tc.wantCode {
				t.Fatalf("status %d, api.Error %+v (%v); want %d %s", w.Code, &e, err, tc.wantStatus, tc.wantCode)
			}
		})
	}
}
