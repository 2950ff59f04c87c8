//go:build cgo

package node

import (
	"errors"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/raftkms/raftkms/internal/testutil"
)

// officialSDK is the official OpenAPI SDK (kms-20160120/v3), unmodified,
// against node i.
func (c *hsmCluster) officialSDK(i int) *kmssdk.Client {
	c.t.Helper()
	cl, err := kmssdk.NewClient(&openapi.Config{
		Endpoint:        tea.String(c.nodes[i].HTTPAddr()),
		Protocol:        tea.String("http"),
		AccessKeyId:     tea.String(c.creds.AccessKeyID),
		AccessKeySecret: tea.String(c.creds.AccessKeySecret),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func wantSDKCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var se *tea.SDKError
	if !errors.As(err, &se) || tea.StringValue(se.Code) != code {
		t.Fatalf("%s: want %s, got %v", what, code, err)
	}
}

// Issue 12: secrets sealed under an HSM key of a hardware instance, through
// the official SDK, created and read through the node without an HSM (its
// data-key operations go to the token's node) and the node with one. The
// token really ran them; a disabled HSM key makes the secret unreadable,
// enabling it makes it readable again.
func TestSecrets_OfficialSDKWithAnHSMEncryptionKey(t *testing.T) {
	c := newHSMClusterWith(t, hsmClusterOpts{}, []hsmNodeSpec{{token: "tok1", domainKey: randomKey(t)}, {}, {}}, 3)
	c.waitHSM("n1", "ok")
	inst := c.createHardwareInstance(0)
	key := c.createHWKey(0, inst, "Aliyun_AES_256", "ENCRYPT/DECRYPT")
	withHSM, without := c.officialSDK(0), c.officialSDK(2)

	before := keyOps(t, c.nodes[0], "tok1")
	created, err := without.CreateSecret(&kmssdk.CreateSecretRequest{
		SecretName: tea.String("hsm/db"), SecretData: tea.String("sealed by the HSM's data key"),
		VersionId: tea.String("v1"), EncryptionKeyId: tea.String(key.id), DKMSInstanceId: tea.String(inst),
	})
	if err != nil {
		t.Fatalf("CreateSecret through the node without an HSM: %v", err)
	}
	if tea.StringValue(created.Body.SecretName) != "hsm/db" || tea.StringValue(created.Body.VersionId) != "v1" {
		t.Fatalf("CreateSecret answered %v", created.Body)
	}
	if _, err := withHSM.PutSecretValue(&kmssdk.PutSecretValueRequest{
		SecretName: tea.String("hsm/db"), SecretData: tea.String("second value"), VersionId: tea.String("v2"),
	}); err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
	// The other nodes serve reads from their own copy: wait until each has
	// applied the write (what X-Kms-Min-Index does for other clients).
	written := c.nodes[0].FSM().AppliedIndex()
	for _, n := range c.nodes {
		if err := n.FSM().WaitForIndex(ctxT(t), written); err != nil {
			t.Fatal(err)
		}
	}
	read := func(cl *kmssdk.Client, stage string) (*kmssdk.GetSecretValueResponseBody, error) {
		r, err := cl.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("hsm/db"), VersionStage: tea.String(stage)})
		if err != nil {
			return nil, err
		}
		return r.Body, nil
	}
	for name, cl := range map[string]*kmssdk.Client{"with the HSM": withHSM, "without": without} {
		cur, err := read(cl, "ACSCurrent")
		if err != nil || tea.StringValue(cur.SecretData) != "second value" || tea.StringValue(cur.VersionId) != "v2" {
			t.Fatalf("GetSecretValue ACSCurrent through the node %s = %v, %v", name, cur, err)
		}
		prev, err := read(cl, "ACSPrevious")
		if err != nil || tea.StringValue(prev.SecretData) != "sealed by the HSM's data key" {
			t.Fatalf("GetSecretValue ACSPrevious through the node %s = %v, %v", name, prev, err)
		}
	}
	if after := keyOps(t, c.nodes[0], "tok1"); after < before+4 {
		t.Fatalf("the token ran %v key operations for two seals and four opens", after-before)
	}
	d, err := without.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String("hsm/db")})
	if err != nil || tea.StringValue(d.Body.EncryptionKeyId) != key.id || tea.StringValue(d.Body.DKMSInstanceId) != inst {
		t.Fatalf("DescribeSecret = %v, %v; want key %s in %s", d, err, key.id, inst)
	}

	if _, err := withHSM.DisableKey(&kmssdk.DisableKeyRequest{KeyId: tea.String(key.id)}); err != nil {
		t.Fatal(err)
	}
	_, err = read(withHSM, "ACSCurrent")
	wantSDKCode(t, "GetSecretValue with the encryption key disabled", err, "Rejected.Disabled")
	// The other node learns of the change when it applies it (within the
	// freshness bound of docs/CONSISTENCY.md).
	testutil.Eventually(t, "the node without an HSM refuses the disabled key", 10*time.Second, func() bool {
		_, err := read(without, "ACSCurrent")
		var se *tea.SDKError
		return errors.As(err, &se) && tea.StringValue(se.Code) == "Rejected.Disabled"
	})
	if _, err := without.EnableKey(&kmssdk.EnableKeyRequest{KeyId: tea.String(key.id)}); err != nil {
		t.Fatal(err)
	}
	if cur, err := read(without, "ACSCurrent"); err != nil || tea.StringValue(cur.SecretData) != "second value" {
		t.Fatalf("GetSecretValue after EnableKey = %v, %v", cur, err)
	}
}
