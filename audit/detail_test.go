package audit_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/raftkms/raftkms/audit"
	"github.com/raftkms/raftkms/client"
)

// auditLines reads a stopped node's verified audit log, by request id.
func auditLines(t *testing.T, path string) (map[string]map[string]any, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(bytes.NewReader(b), audit.VerifyOptions{}); err != nil {
		t.Fatalf("the audit log does not verify: %v", err)
	}
	out := map[string]map[string]any{}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		out[m["request_id"].(string)] = m
	}
	return out, b
}

// A request whose signature does not verify (wrong secret, unknown id;
// V3 or V1; API action or operator endpoint) leaves a line that names the
// AccessKeyId that was tried, with no principal; a refused Decrypt names
// the key, not only the version its ciphertext names. No line holds the
// tried secret, the plaintext or the ciphertext.
func TestNode_AuditNamesTheTriedAccessKeyAndTheKeyOfARefusedDecrypt(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	n, err := startNode(t, filepath.Join(dir, "data"), logPath)
	if err != nil {
		t.Fatal(err)
	}
	init, err := n.Service().Init(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := client.New(n.Endpoint(), init.AccessKeyID, init.AccessKeySecret)
	resp, err := cl.Call(ctx(t), "CreateKey", map[string]string{"DKMSInstanceId": init.InstanceID})
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ KeyMetadata struct{ KeyId string } }
	resp.Decode(&created)
	key := created.KeyMetadata.KeyId
	plain := base64.StdEncoding.EncodeToString([]byte("audit-detail-plaintext"))
	resp, err = cl.Call(ctx(t), "Encrypt", map[string]string{"KeyId": key, "Plaintext": plain})
	if err != nil {
		t.Fatal(err)
	}
	var enc struct{ CiphertextBlob, KeyVersionId string }
	resp.Decode(&enc)

	// A second account, whose caller may not use the first account's key.
	aresp, err := cl.Do(ctx(t), http.MethodPost, "/v1/operator/accounts", url.Values{"Name": {"other"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var other struct{ AccessKeyId, AccessKeySecret string }
	json.NewDecoder(aresp.Body).Decode(&other)
	aresp.Body.Close()
	if other.AccessKeyId == "" {
		t.Fatal("CreateAccount answered no access key")
	}

	const wrongSecret = "wrong-secret-marker-3c9f"
	type attempt struct {
		name      string
		requestID string
		accessKey string // the access_key_id the line must name
		keyID     string // the key_id the line must name ("" = not checked)
	}
	var attempts []attempt
	refuse := func(name, accessKey, keyID string, call func() error) {
		t.Helper()
		err := call()
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.RequestID == "" {
			t.Fatalf("%s: %v, want an API error", name, err)
		}
		attempts = append(attempts, attempt{name, ae.RequestID, accessKey, keyID})
	}
	for _, version := range []string{client.SignatureV3, client.SignatureV1} {
		wrong, _ := client.New(n.Endpoint(), init.AccessKeyID, wrongSecret, client.WithSignatureVersion(version))
		refuse("wrong secret, "+version, init.AccessKeyID, "", func() error {
			_, err := wrong.Call(ctx(t), "Encrypt", map[string]string{"KeyId": key, "Plaintext": plain})
			return err
		})
		unknown, _ := client.New(n.Endpoint(), "LTAIunknownKeyId0000", wrongSecret, client.WithSignatureVersion(version))
		refuse("unknown access key, "+version, "LTAIunknownKeyId0000", "", func() error {
			_, err := unknown.Call(ctx(t), "Decrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob})
			return err
		})
	}
	wrongOp, _ := client.New(n.Endpoint(), init.AccessKeyID, wrongSecret)
	refuse("operator endpoint, wrong secret", init.AccessKeyID, "", func() error {
		r, err := wrongOp.Do(ctx(t), http.MethodPost, "/v1/operator/accounts", url.Values{"Name": {"x"}}, nil, nil)
		if err == nil {
			r.Body.Close()
		}
		return err
	})
	otherCl, _ := client.New(n.Endpoint(), other.AccessKeyId, other.AccessKeySecret)
	refuse("another account's Decrypt", other.AccessKeyId, key, func() error {
		_, err := otherCl.Call(ctx(t), "Decrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob})
		return err
	})
	refuse("Decrypt with the wrong context", init.AccessKeyID, key, func() error {
		_, err := cl.Call(ctx(t), "Decrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob, "EncryptionContext": `{"a":"b"}`})
		return err
	})

	n.Stop()
	lines, raw := auditLines(t, logPath)
	for _, a := range attempts {
		l, ok := lines[a.requestID]
		if !ok {
			t.Errorf("%s: no audit line for request %s", a.name, a.requestID)
			continue
		}
		if l["access_key_id"] != a.accessKey {
			t.Errorf("%s: access_key_id %q, want %q", a.name, l["access_key_id"], a.accessKey)
		}
		if a.accessKey != other.AccessKeyId && a.name != "Decrypt with the wrong context" && l["principal"] != "" {
			t.Errorf("%s: an unauthenticated request has principal %q", a.name, l["principal"])
		}
		if a.keyID != "" && (l["key_id"] != a.keyID || l["key_version_id"] != enc.KeyVersionId) {
			t.Errorf("%s: key_id %q key_version_id %q, want %s and %s", a.name, l["key_id"], l["key_version_id"], a.keyID, enc.KeyVersionId)
		}
		if l["code"] == "OK" {
			t.Errorf("%s: audited as OK", a.name)
		}
	}
	for _, secret := range []string{wrongSecret, init.AccessKeySecret, other.AccessKeySecret, plain, enc.CiphertextBlob} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("the audit log contains %q", secret)
		}
	}
}
