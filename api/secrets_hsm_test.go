//go:build cgo

package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/hsm/hsmtest"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/internal/testutil"
)

// startHSMNode is startNode with a SoftHSM token enrolled in domain d1,
// and returns a hardware KMS instance of that domain.
func startHSMNode(t *testing.T) (*testNode, string) {
	t.Helper()
	soft := hsmtest.New(t, "secrets")
	pin := soft.PinFile(t)
	domainKey := make([]byte, 32)
	rand.Read(domainKey)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := hsm.RunEnroll(ctx, hsm.EnrollOptions{ModulePath: soft.Module, TokenLabel: "secrets", PinFile: pin, Domain: "d1",
		DomainKeyFile: hsmtest.DomainKeyFile(t, domainKey)}); err != nil {
		t.Fatalf("enroll: %v", err)
	}
	tn := startNodeWith(t, func(c *node.Config) {
		c.HSM = &hsm.Config{ModulePath: soft.Module, TokenLabel: "secrets", PinFile: pin}
		c.HSMDomain = "d1"
		c.HSMCheckInterval = 50 * time.Millisecond
	})
	// The domain is registered by the node's first HSM check.
	var inst string
	testutil.Eventually(t, "a hardware instance of domain d1", 20*time.Second, func() bool {
		resp, err := tn.V3.Do(ctx30(t), http.MethodPost, "/v1/operator/instances", url.Values{"Type": {"hardware"}, "HsmDomain": {"d1"}}, nil, nil)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var out struct{ InstanceId string }
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
			return false
		}
		inst = out.InstanceId
		return inst != ""
	})
	return tn, inst
}

// A secret sealed under an HSM key: written, read, unreadable while the
// key is disabled, readable again when it is enabled.
func TestSDK_SecretUnderAnHSMKey(t *testing.T) {
	tn, inst := startHSMNode(t)
	c := newSDKClient(t, tn, "")
	ck, err := c.CreateKey(&kmssdk.CreateKeyRequest{DKMSInstanceId: tea.String(inst)})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "ProtectionLevel", tea.StringValue(ck.Body.KeyMetadata.ProtectionLevel), "HSM")
	key := tea.StringValue(ck.Body.KeyMetadata.KeyId)

	cs, err := c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: tea.String("hsm-secret"), SecretData: tea.String("in the token's care"),
		VersionId: tea.String("v1"), EncryptionKeyId: tea.String(key), DKMSInstanceId: tea.String(inst)})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	wantEq(t, "DKMSInstanceId", tea.StringValue(cs.Body.DKMSInstanceId), inst)
	read := func() string {
		t.Helper()
		gv, err := c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("hsm-secret")})
		if err != nil {
			t.Fatalf("GetSecretValue: %v", err)
		}
		return tea.StringValue(gv.Body.SecretData)
	}
	wantEq(t, "the first value", read(), "in the token's care")
	if _, err := c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("hsm-secret"), VersionId: tea.String("v2"), SecretData: tea.String("still")}); err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
	wantEq(t, "the second value", read(), "still")
	ds, err := c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String("hsm-secret")})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "EncryptionKeyId", tea.StringValue(ds.Body.EncryptionKeyId), key)

	if _, err := c.DisableKey(&kmssdk.DisableKeyRequest{KeyId: tea.String(key)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("hsm-secret")})
	sdkErr(t, err, 409, "Rejected.Disabled")
	_, err = c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("hsm-secret"), VersionId: tea.String("v3"), SecretData: tea.String("no")})
	sdkErr(t, err, 409, "Rejected.Disabled")
	if _, err := c.EnableKey(&kmssdk.EnableKeyRequest{KeyId: tea.String(key)}); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "readable again", read(), "still")
}
