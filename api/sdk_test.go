package api_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// The official Go SDK against a real node, configured as a user would:
// endpoint, protocol and credentials, plus SignatureAlgorithm "v2" for the
// V1 (HMAC-SHA1) signature. Every action goes through the SDK, which must
// sign it acceptably and parse the answer into its own structs.

func newSDKClient(t *testing.T, tn *testNode, algorithm string) *kmssdk.Client {
	t.Helper()
	cfg := &openapi.Config{
		Endpoint:        tea.String(tn.HTTPAddr()),
		Protocol:        tea.String("http"),
		AccessKeyId:     tea.String(tn.Creds.AccessKeyID),
		AccessKeySecret: tea.String(tn.Creds.AccessKeySecret),
	}
	if algorithm != "" {
		cfg.SignatureAlgorithm = tea.String(algorithm)
	}
	c, err := kmssdk.NewClient(cfg)
	if err != nil {
		t.Fatalf("kmssdk.NewClient: %v", err)
	}
	return c
}

// sdkErr checks that err is the SDK's error for the service's status and
// code.
func sdkErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want %d %s", status, code)
	}
	var se *tea.SDKError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v is not a *tea.SDKError", err, err)
	}
	if tea.StringValue(se.Code) != code || tea.IntValue(se.StatusCode) != status {
		t.Fatalf("SDK error %d %s (%s), want %d %s", tea.IntValue(se.StatusCode), tea.StringValue(se.Code), tea.StringValue(se.Message), status, code)
	}
	if tea.StringValue(se.Message) == "" {
		t.Error("SDK error without a message")
	}
	var data struct{ RequestId string }
	if json.Unmarshal([]byte(tea.StringValue(se.Data)), &data); data.RequestId == "" {
		t.Errorf("SDK error data %q carries no RequestId", tea.StringValue(se.Data))
	}
}

func TestSDK_EveryAction(t *testing.T) {
	for _, cfg := range []struct{ name, algorithm string }{
		{"ACS3-HMAC-SHA256", ""},
		{"HMAC-SHA1 (SignatureAlgorithm v2)", "v2"},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			tn := startNode(t)
			c := newSDKClient(t, tn, cfg.algorithm)
			testSDKActions(t, tn, c)
		})
	}
}

func testSDKActions(t *testing.T, tn *testNode, c *kmssdk.Client) {
	covered := map[string]bool{}
	step := func(action string, err error, body any) {
		t.Helper()
		covered[action] = true
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		requireSet(t, body)
	}
	desc := "sdk test: 100% * ~ +/= ü"

	ck, err := c.CreateKey(&kmssdk.CreateKeyRequest{DKMSInstanceId: tea.String(tn.InstanceID), Description: tea.String(desc)})
	step("CreateKey", err, ck.Body)
	key := tea.StringValue(ck.Body.KeyMetadata.KeyId)
	wantEq(t, "CreateKey Description", tea.StringValue(ck.Body.KeyMetadata.Description), desc)
	wantEq(t, "CreateKey HTTP status", tea.Int32Value(ck.StatusCode), 200)
	ck2, err := c.CreateKey(&kmssdk.CreateKeyRequest{DKMSInstanceId: tea.String(tn.InstanceID)})
	step("CreateKey", err, ck2.Body)
	key2 := tea.StringValue(ck2.Body.KeyMetadata.KeyId)

	dk, err := c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: tea.String(tn.keyArn(key))})
	step("DescribeKey", err, dk.Body)
	wantEq(t, "DescribeKey KeyId", tea.StringValue(dk.Body.KeyMetadata.KeyId), key)

	lk, err := c.ListKeys(&kmssdk.ListKeysRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(1)})
	step("ListKeys", err, lk.Body)
	wantEq(t, "ListKeys TotalCount", tea.Int32Value(lk.Body.TotalCount), int32(2))
	wantEq(t, "ListKeys KeyArn", tea.StringValue(lk.Body.Keys.Key[0].KeyArn), tn.keyArn(tea.StringValue(lk.Body.Keys.Key[0].KeyId)))

	ud, err := c.UpdateKeyDescription(&kmssdk.UpdateKeyDescriptionRequest{KeyId: tea.String(key), Description: tea.String("updated by sdk")})
	step("UpdateKeyDescription", err, ud.Body)

	dis, err := c.DisableKey(&kmssdk.DisableKeyRequest{KeyId: tea.String(key2)})
	step("DisableKey", err, dis.Body)
	_, err = c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String(key2), Plaintext: tea.String("eA==")})
	sdkErr(t, err, 409, "Rejected.Disabled")
	en, err := c.EnableKey(&kmssdk.EnableKeyRequest{KeyId: tea.String(key2)})
	step("EnableKey", err, en.Body)

	cv, err := c.CreateKeyVersion(&kmssdk.CreateKeyVersionRequest{KeyId: tea.String(key)})
	step("CreateKeyVersion", err, cv.Body)
	version := tea.StringValue(cv.Body.KeyVersion.KeyVersionId)

	lv, err := c.ListKeyVersions(&kmssdk.ListKeyVersionsRequest{KeyId: tea.String(key), PageSize: tea.Int32(100)})
	step("ListKeyVersions", err, lv.Body)
	wantEq(t, "ListKeyVersions TotalCount", tea.Int32Value(lv.Body.TotalCount), int32(2))

	dv, err := c.DescribeKeyVersion(&kmssdk.DescribeKeyVersionRequest{KeyId: tea.String(key), KeyVersionId: tea.String(version)})
	step("DescribeKeyVersion", err, dv.Body)

	ca, err := c.CreateAlias(&kmssdk.CreateAliasRequest{AliasName: tea.String("alias/sdk"), KeyId: tea.String(key)})
	step("CreateAlias", err, ca.Body)

	plain := base64.StdEncoding.EncodeToString([]byte("hello from the SDK"))
	encCtx := map[string]any{"purpose": "sdk test + more", "路径": "a/b=c*d~e"}
	e, err := c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String("alias/sdk"), Plaintext: tea.String(plain), EncryptionContext: encCtx})
	step("Encrypt", err, e.Body)
	wantEq(t, "Encrypt KeyId", tea.StringValue(e.Body.KeyId), key)
	wantEq(t, "Encrypt KeyVersionId", tea.StringValue(e.Body.KeyVersionId), version)

	d, err := c.Decrypt(&kmssdk.DecryptRequest{CiphertextBlob: e.Body.CiphertextBlob, EncryptionContext: encCtx})
	step("Decrypt", err, d.Body)
	wantEq(t, "Decrypt Plaintext", tea.StringValue(d.Body.Plaintext), plain)
	_, err = c.Decrypt(&kmssdk.DecryptRequest{CiphertextBlob: e.Body.CiphertextBlob, EncryptionContext: map[string]any{"purpose": "other"}})
	sdkErr(t, err, 400, "InvalidCiphertext")

	g, err := c.GenerateDataKey(&kmssdk.GenerateDataKeyRequest{KeyId: tea.String(key), NumberOfBytes: tea.Int32(64), EncryptionContext: encCtx})
	step("GenerateDataKey", err, g.Body)
	if n := len(decodeB64(t, tea.StringValue(g.Body.Plaintext))); n != 64 {
		t.Errorf("GenerateDataKey: %d bytes, want 64", n)
	}
	gd, err := c.Decrypt(&kmssdk.DecryptRequest{CiphertextBlob: g.Body.CiphertextBlob, EncryptionContext: encCtx})
	if err != nil || tea.StringValue(gd.Body.Plaintext) != tea.StringValue(g.Body.Plaintext) {
		t.Errorf("Decrypt of the data key: %v", err)
	}

	gw, err := c.GenerateDataKeyWithoutPlaintext(&kmssdk.GenerateDataKeyWithoutPlaintextRequest{KeyId: tea.String(key), KeySpec: tea.String("AES_128")})
	step("GenerateDataKeyWithoutPlaintext", err, gw.Body)

	re, err := c.ReEncrypt(&kmssdk.ReEncryptRequest{
		CiphertextBlob: e.Body.CiphertextBlob, SourceEncryptionContext: encCtx,
		DestinationKeyId: tea.String(key2), DestinationEncryptionContext: map[string]any{"to": "key2"},
	})
	step("ReEncrypt", err, re.Body)
	rd, err := c.Decrypt(&kmssdk.DecryptRequest{CiphertextBlob: re.Body.CiphertextBlob, EncryptionContext: map[string]any{"to": "key2"}})
	if err != nil || tea.StringValue(rd.Body.Plaintext) != plain || tea.StringValue(rd.Body.KeyId) != key2 {
		t.Errorf("Decrypt after ReEncrypt: %v", err)
	}

	ua, err := c.UpdateAlias(&kmssdk.UpdateAliasRequest{AliasName: tea.String("alias/sdk"), KeyId: tea.String(key2)})
	step("UpdateAlias", err, ua.Body)

	la, err := c.ListAliases(&kmssdk.ListAliasesRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	step("ListAliases", err, la.Body)
	wantEq(t, "ListAliases TotalCount", tea.Int32Value(la.Body.TotalCount), int32(1))
	wantEq(t, "ListAliases KeyId", tea.StringValue(la.Body.Aliases.Alias[0].KeyId), key2)

	lb, err := c.ListAliasesByKeyId(&kmssdk.ListAliasesByKeyIdRequest{KeyId: tea.String(key2)})
	step("ListAliasesByKeyId", err, lb.Body)
	wantEq(t, "ListAliasesByKeyId AliasName", tea.StringValue(lb.Body.Aliases.Alias[0].AliasName), "alias/sdk")

	da, err := c.DeleteAlias(&kmssdk.DeleteAliasRequest{AliasName: tea.String("alias/sdk")})
	step("DeleteAlias", err, da.Body)
	_, err = c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: tea.String("alias/sdk")})
	sdkErr(t, err, 404, "Forbidden.AliasNotFound")

	tr, err := c.TagResource(&kmssdk.TagResourceRequest{KeyId: tea.String(key), Tags: tea.String(`[{"TagKey":"team name","TagValue":"a+b/c=d"}]`)})
	step("TagResource", err, tr.Body)

	lt, err := c.ListResourceTags(&kmssdk.ListResourceTagsRequest{KeyId: tea.String(key)})
	step("ListResourceTags", err, lt.Body)
	wantEq(t, "TagKey", tea.StringValue(lt.Body.Tags.Tag[0].TagKey), "team name")
	wantEq(t, "TagValue", tea.StringValue(lt.Body.Tags.Tag[0].TagValue), "a+b/c=d")

	ut, err := c.UntagResource(&kmssdk.UntagResourceRequest{KeyId: tea.String(key), TagKeys: tea.String(`["team name"]`)})
	step("UntagResource", err, ut.Body)

	// Errors surface as the SDK's error with the service's code.
	_, err = c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: tea.String("00000000-0000-4000-8000-000000000000")})
	sdkErr(t, err, 404, "Forbidden.KeyNotFound")
	_, err = c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: tea.String("acs:kms:cn-hangzhou:" + tn.AccountID + ":key/" + key)})
	sdkErr(t, err, 404, "Forbidden.KeyNotFound")
	_, err = c.ListKeys(&kmssdk.ListKeysRequest{PageSize: tea.Int32(101)})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.GenerateDataKey(&kmssdk.GenerateDataKeyRequest{KeyId: tea.String(key), NumberOfBytes: tea.Int32(1025)})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.CreateAlias(&kmssdk.CreateAliasRequest{AliasName: tea.String("alias/acs/reserved"), KeyId: tea.String(key)})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String(key), Plaintext: tea.String(strings.Repeat("x", 6145))})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String(key)})
	sdkErr(t, err, 400, "MissingParameter")
	_, err = c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String(key), Plaintext: tea.String(plain), DryRun: tea.String("true")})
	sdkErr(t, err, 412, "DryRunOperationError")

	for _, a := range allActions {
		if !covered[a] {
			t.Errorf("%s not called through the SDK", a)
		}
	}
}

// TestSDK_WrongSecret: the SDK's error for a bad signature, both schemes.
func TestSDK_WrongSecret(t *testing.T) {
	tn := startNode(t)
	for _, algorithm := range []string{"", "v2"} {
		bad := *tn
		bad.Creds.AccessKeySecret += "x"
		c := newSDKClient(t, &bad, algorithm)
		_, err := c.ListKeys(&kmssdk.ListKeysRequest{})
		sdkErr(t, err, 400, "SignatureDoesNotMatch")
	}
}
