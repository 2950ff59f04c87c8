package api_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alibabacloud-go/tea/tea"
	dkmsopenapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi"
	dkms "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/sdk"

	"github.com/raftkms/raftkms/internal/node"
)

// GetSecretValue on the instance endpoint, through the reference's KMS
// Instance SDK (dkms-gcs), unmodified, with client keys made by
// CreateClientKey: a client key whose policy grants CryptoServiceSecretUser
// on the secret reads it; others are refused.

const instanceKeyPassword = "Passw0rd-secrets"

// instanceClient makes a permission policy (permission, resources on the
// node's instance), an AAP and a client key named name, and returns the
// SDK configured with it.
func (tn *testNode) instanceClient(t *testing.T, name, permission string, resources []string) *dkms.Client {
	t.Helper()
	res, _ := json.Marshal(resources)
	tn.must(t, "CreatePolicy", map[string]string{"Name": name, "KmsInstance": tn.InstanceID,
		"Permissions": `["` + permission + `"]`, "Resources": string(res)}, nil)
	tn.must(t, "CreateApplicationAccessPoint", map[string]string{"Name": name, "Policies": `["` + name + `"]`}, nil)
	var ck struct{ ClientKeyId, PrivateKeyData string }
	tn.must(t, "CreateClientKey", map[string]string{"AapName": name, "Password": instanceKeyPassword}, &ck)
	var inst struct {
		KmsInstance struct{ CaCertificateChainPem string }
	}
	tn.must(t, "GetKmsInstance", map[string]string{"KmsInstanceId": tn.InstanceID}, &inst)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(inst.KmsInstance.CaCertificateChainPem), 0o600); err != nil {
		t.Fatal(err)
	}
	content, _ := json.Marshal(map[string]string{"KeyId": ck.ClientKeyId, "PrivateKeyData": ck.PrivateKeyData})
	cl, err := dkms.NewClient(&dkmsopenapi.Config{Protocol: tea.String("https"), Endpoint: tea.String(tn.InstanceAddr()),
		CaFilePath: tea.String(caFile), ClientKeyContent: tea.String(string(content)), Password: tea.String(instanceKeyPassword)})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func wantInstanceError(t *testing.T, err error, code string) {
	t.Helper()
	var se *tea.SDKError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want the SDK error %s", err, err, code)
	}
	if got := tea.StringValue(se.Code); got != code {
		t.Fatalf("SDK error %q (%s), want %s", got, tea.StringValue(se.Message), code)
	}
}

func TestInstanceEndpoint_GetSecretValueWithTheOfficialSDK(t *testing.T) {
	tn := startNodeWith(t, func(c *node.Config) { c.InstanceAddr = "127.0.0.1:0" })
	key := tn.createKey(t, "secrets")
	tn.must(t, "CreateSecret", map[string]string{"SecretName": "db-password", "SecretData": "s3cret v1", "VersionId": "v1",
		"EncryptionKeyId": key, "DKMSInstanceId": tn.InstanceID}, nil)
	tn.must(t, "PutSecretValue", map[string]string{"SecretName": "db-password", "SecretData": "s3cret v2", "VersionId": "v2"}, nil)
	var created struct{ CreateTime string }
	tn.must(t, "GetSecretValue", map[string]string{"SecretName": "db-password"}, &created)

	reader := tn.instanceClient(t, "reader", "RbacPermission/Template/CryptoServiceSecretUser", []string{"secret/db-password"})
	out, err := reader.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("db-password")})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	wantEq(t, "SecretName", tea.StringValue(out.SecretName), "db-password")
	wantEq(t, "SecretType", tea.StringValue(out.SecretType), "Generic")
	wantEq(t, "SecretData", tea.StringValue(out.SecretData), "s3cret v2")
	wantEq(t, "SecretDataType", tea.StringValue(out.SecretDataType), "text")
	wantEq(t, "VersionId", tea.StringValue(out.VersionId), "v2")
	wantEq(t, "VersionStages", strings.Join(tea.StringSliceValue(out.VersionStages), ","), "ACSCurrent")
	wantEq(t, "CreateTime", tea.StringValue(out.CreateTime), created.CreateTime)
	wantEq(t, "AutomaticRotation", tea.StringValue(out.AutomaticRotation), "Invalid")
	wantEq(t, "RotationInterval", tea.StringValue(out.RotationInterval), "")
	wantEq(t, "ExtendedConfig", tea.StringValue(out.ExtendedConfig), "")
	if tea.StringValue(out.RequestId) == "" {
		t.Error("no RequestId")
	}
	prev, err := reader.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("db-password"), VersionStage: tea.String("ACSPrevious")})
	if err != nil {
		t.Fatalf("GetSecretValue ACSPrevious: %v", err)
	}
	wantEq(t, "ACSPrevious SecretData", tea.StringValue(prev.SecretData), "s3cret v1")
	byID, err := reader.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v1"), FetchExtendedConfig: tea.Bool(true)})
	if err != nil {
		t.Fatalf("GetSecretValue VersionId v1: %v", err)
	}
	wantEq(t, "v1 VersionStages", strings.Join(tea.StringSliceValue(byID.VersionStages), ","), "ACSPrevious")
	_, err = reader.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v9")})
	wantInstanceError(t, err, "Forbidden.ResourceNotFound")

	// Another secret is not in the reader's policy; a key user reads no
	// secret at all.
	tn.must(t, "CreateSecret", map[string]string{"SecretName": "other", "SecretData": "x", "VersionId": "1", "EncryptionKeyId": key, "DKMSInstanceId": tn.InstanceID}, nil)
	_, err = reader.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("other")})
	wantInstanceError(t, err, "Forbidden.NoPermission")
	keyUser := tn.instanceClient(t, "key-user", "RbacPermission/Template/CryptoServiceKeyUser", []string{"key/*", "secret/*"})
	_, err = keyUser.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("db-password")})
	wantInstanceError(t, err, "Forbidden.NoPermission")

	// With secret/*, an unknown secret is not found.
	all := tn.instanceClient(t, "all-secrets", "RbacPermission/Template/CryptoServiceSecretUser", []string{"secret/*"})
	if out, err := all.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("other")}); err != nil || tea.StringValue(out.SecretData) != "x" {
		t.Fatalf("GetSecretValue with secret/*: %v, %v", out, err)
	}
	_, err = all.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("nope")})
	wantInstanceError(t, err, "Forbidden.ResourceNotFound")
	_, err = all.GetSecretValue(&dkms.GetSecretValueRequest{})
	wantInstanceError(t, err, "MissingParameter")
}
