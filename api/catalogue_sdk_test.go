package api_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// The official Go SDK, configured with endpoint, protocol and credentials
// only, drives every catalogue action with both signature schemes and
// parses every answer into its own structs.
func TestSDK_CatalogueActions(t *testing.T) {
	clientKeys(t)
	eachSDKSignature(t, testSDKCatalogue)
}

// eachSDKSignature runs test against a fresh node with a fake clock, once
// per signature the SDK can send: ACS3-HMAC-SHA256 and V1 HMAC-SHA1.
func eachSDKSignature(t *testing.T, test func(t *testing.T, tn *testNode, clock *fakeClock, c *kmssdk.Client)) {
	for _, cfg := range []struct{ name, algorithm string }{
		{"ACS3-HMAC-SHA256", ""},
		{"HMAC-SHA1 (SignatureAlgorithm v2)", "v2"},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			clock := newFakeClock()
			tn := startClockNode(t, clock)
			test(t, tn, clock, newSDKClient(t, tn, cfg.algorithm))
		})
	}
}

func testSDKCatalogue(t *testing.T, tn *testNode, clock *fakeClock, c *kmssdk.Client) {
	covered := map[string]bool{}
	step := func(action string, err error, body any, optional ...string) {
		t.Helper()
		covered[action] = true
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		requireSet(t, body, optional...)
	}

	// CreateKey with everything the catalogue added.
	policy := `{"Version":"1","Statement":[{"Sid":"Owner","Effect":"Allow","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:*"]},"Action":["kms:*"],"Resource":["*"]}]}`
	ck, err := c.CreateKey(&kmssdk.CreateKeyRequest{
		DKMSInstanceId: tea.String(tn.InstanceID), KeySpec: tea.String("Aliyun_AES_256"), KeyUsage: tea.String("ENCRYPT/DECRYPT"),
		EnableAutomaticRotation: tea.Bool(true), RotationInterval: tea.String("7d"), Policy: tea.String(policy),
		Tags: tea.String(`[{"TagKey":"env","TagValue":"sdk test"}]`), Description: tea.String("sdk + catalogue"),
	})
	step("CreateKey", err, ck.Body)
	sym := tea.StringValue(ck.Body.KeyMetadata.KeyId)
	wantEq(t, "RotationInterval", tea.StringValue(ck.Body.KeyMetadata.RotationInterval), "604800s")

	mk := func(spec, usage string) (string, string) {
		t.Helper()
		r, err := c.CreateKey(&kmssdk.CreateKeyRequest{DKMSInstanceId: tea.String(tn.InstanceID), KeySpec: tea.String(spec), KeyUsage: tea.String(usage)})
		if err != nil {
			t.Fatalf("CreateKey %s %s: %v", spec, usage, err)
		}
		return tea.StringValue(r.Body.KeyMetadata.KeyId), tea.StringValue(r.Body.KeyMetadata.PrimaryKeyVersion)
	}
	ecKey, ecVersion := mk("EC_P256K", "SIGN/VERIFY")
	rsaKey, rsaVersion := mk("RSA_2048", "ENCRYPT/DECRYPT")

	lk, err := c.ListKeys(&kmssdk.ListKeysRequest{Filters: tea.String(`[{"Key":"KeySpec","Values":["EC_P256K","RSA_2048"]},{"Key":"KeyState","Values":["Enabled"]}]`), PageSize: tea.Int32(10)})
	step("ListKeys", err, lk.Body)
	wantEq(t, "ListKeys filtered TotalCount", tea.Int32Value(lk.Body.TotalCount), int32(2))

	ur, err := c.UpdateRotationPolicy(&kmssdk.UpdateRotationPolicyRequest{KeyId: tea.String(sym), EnableAutomaticRotation: tea.Bool(true), RotationInterval: tea.String("2592000s")})
	step("UpdateRotationPolicy", err, ur.Body)
	dk, err := c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: tea.String(sym)})
	step("DescribeKey", err, dk.Body)
	wantEq(t, "RotationInterval after UpdateRotationPolicy", tea.StringValue(dk.Body.KeyMetadata.RotationInterval), "2592000s")
	_, err = c.UpdateRotationPolicy(&kmssdk.UpdateRotationPolicyRequest{KeyId: tea.String(ecKey), EnableAutomaticRotation: tea.Bool(true), RotationInterval: tea.String("30d")})
	sdkErr(t, err, 400, "Rejected.UnsupportedOperation")

	sd, err := c.ScheduleKeyDeletion(&kmssdk.ScheduleKeyDeletionRequest{KeyId: tea.String(sym), PendingWindowInDays: tea.Int32(7)})
	step("ScheduleKeyDeletion", err, sd.Body)
	dk, _ = c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: tea.String(sym)})
	wantEq(t, "KeyState", tea.StringValue(dk.Body.KeyMetadata.KeyState), "PendingDeletion")
	wantEq(t, "DeleteDate", parseDate(t, "DeleteDate", tea.StringValue(dk.Body.KeyMetadata.DeleteDate)), clock.Now().Add(7*24*time.Hour))
	_, err = c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String(sym), Plaintext: tea.String("eA==")})
	sdkErr(t, err, 409, "Rejected.PendingDeletion")
	_, err = c.ScheduleKeyDeletion(&kmssdk.ScheduleKeyDeletionRequest{KeyId: tea.String(sym), PendingWindowInDays: tea.Int32(6)})
	sdkErr(t, err, 400, "InvalidParameter")
	cd, err := c.CancelKeyDeletion(&kmssdk.CancelKeyDeletionRequest{KeyId: tea.String(sym)})
	step("CancelKeyDeletion", err, cd.Body)

	sp, err := c.SetDeletionProtection(&kmssdk.SetDeletionProtectionRequest{ProtectedResourceArn: tea.String(tn.keyArn(sym)), EnableDeletionProtection: tea.Bool(true), DeletionProtectionDescription: tea.String("keep it")})
	step("SetDeletionProtection", err, sp.Body)
	_, err = c.ScheduleKeyDeletion(&kmssdk.ScheduleKeyDeletionRequest{KeyId: tea.String(sym), PendingWindowInDays: tea.Int32(7)})
	sdkErr(t, err, 403, "Forbidden.DeletionProtection")
	dk, _ = c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: tea.String(sym)})
	wantEq(t, "DeletionProtection", tea.StringValue(dk.Body.KeyMetadata.DeletionProtection), "Enabled")
	wantEq(t, "DeletionProtectionDescription", tea.StringValue(dk.Body.KeyMetadata.DeletionProtectionDescription), "keep it")

	gp, err := c.GetKeyPolicy(&kmssdk.GetKeyPolicyRequest{KeyId: tea.String(sym), PolicyName: tea.String("default")})
	step("GetKeyPolicy", err, gp.Body)
	wantEq(t, "Policy", tea.StringValue(gp.Body.Policy), policy)
	newPolicy := strings.Replace(policy, `"Owner"`, `"Owner2"`, 1)
	spol, err := c.SetKeyPolicy(&kmssdk.SetKeyPolicyRequest{KeyId: tea.String(sym), PolicyName: tea.String("default"), Policy: tea.String(newPolicy)})
	step("SetKeyPolicy", err, spol.Body)
	gp, _ = c.GetKeyPolicy(&kmssdk.GetKeyPolicyRequest{KeyId: tea.String(sym), PolicyName: tea.String("default")})
	wantEq(t, "Policy after SetKeyPolicy", tea.StringValue(gp.Body.Policy), newPolicy)
	_, err = c.SetKeyPolicy(&kmssdk.SetKeyPolicyRequest{KeyId: tea.String(sym), PolicyName: tea.String("default"), Policy: tea.String(`{"Version":"2"}`)})
	sdkErr(t, err, 400, "InvalidParameter")

	// Asymmetric actions.
	d := sha256.Sum256([]byte("sdk"))
	as, err := c.AsymmetricSign(&kmssdk.AsymmetricSignRequest{KeyId: tea.String(ecKey), KeyVersionId: tea.String(ecVersion), Algorithm: tea.String("ECDSA_SHA_256"), Digest: tea.String(b64(d[:]))})
	step("AsymmetricSign", err, as.Body)
	av, err := c.AsymmetricVerify(&kmssdk.AsymmetricVerifyRequest{KeyId: tea.String(ecKey), KeyVersionId: tea.String(ecVersion), Algorithm: tea.String("ECDSA_SHA_256"), Digest: tea.String(b64(d[:])), Value: as.Body.Value})
	step("AsymmetricVerify", err, av.Body)
	wantEq(t, "AsymmetricVerify Value", tea.BoolValue(av.Body.Value), true)
	pk, err := c.GetPublicKey(&kmssdk.GetPublicKeyRequest{KeyId: tea.String(ecKey), KeyVersionId: tea.String(ecVersion)})
	step("GetPublicKey", err, pk.Body)
	if !verifyOutside(t, publicKeyOf(t, tea.StringValue(pk.Body.PublicKey)), "ECDSA_SHA_256", d[:], decodeB64(t, tea.StringValue(as.Body.Value))) {
		t.Error("the SDK's signature does not verify with decred")
	}
	_, err = c.AsymmetricSign(&kmssdk.AsymmetricSignRequest{KeyId: tea.String(ecKey), Algorithm: tea.String("ECDSA_SHA_256"), Digest: tea.String(b64(d[:]))})
	sdkErr(t, err, 400, "MissingParameter")
	_, err = c.AsymmetricSign(&kmssdk.AsymmetricSignRequest{KeyId: tea.String(ecKey), KeyVersionId: tea.String(ecVersion), Algorithm: tea.String("ECDSA_SHA_256"), Digest: tea.String(b64(d[:])), DryRun: tea.String("true")})
	sdkErr(t, err, 412, "DryRunOperationError")

	ae, err := c.AsymmetricEncrypt(&kmssdk.AsymmetricEncryptRequest{KeyId: tea.String(rsaKey), KeyVersionId: tea.String(rsaVersion), Algorithm: tea.String("RSAES_OAEP_SHA_256"), Plaintext: tea.String(b64([]byte("sdk secret")))})
	step("AsymmetricEncrypt", err, ae.Body)
	ad, err := c.AsymmetricDecrypt(&kmssdk.AsymmetricDecryptRequest{KeyId: tea.String(rsaKey), KeyVersionId: tea.String(rsaVersion), Algorithm: tea.String("RSAES_OAEP_SHA_256"), CiphertextBlob: ae.Body.CiphertextBlob})
	step("AsymmetricDecrypt", err, ad.Body)
	wantEq(t, "AsymmetricDecrypt Plaintext", tea.StringValue(ad.Body.Plaintext), b64([]byte("sdk secret")))
	_, err = c.AsymmetricEncrypt(&kmssdk.AsymmetricEncryptRequest{KeyId: tea.String(rsaKey), KeyVersionId: tea.String(rsaVersion), Algorithm: tea.String("RSAES_OAEP_SHA_256"), Plaintext: tea.String(b64(randomBytes(191)))})
	sdkErr(t, err, 400, "InvalidParameter")

	// Data key export to the caller's own RSA key.
	encCtx := map[string]any{"purpose": "sdk export"}
	pub := spkiB64(t, &clientRSA2048.PublicKey)
	gx, err := c.GenerateAndExportDataKey(&kmssdk.GenerateAndExportDataKeyRequest{KeyId: tea.String(sym), PublicKeyBlob: tea.String(pub),
		WrappingKeySpec: tea.String("RSA_2048"), WrappingAlgorithm: tea.String("RSAES_OAEP_SHA_1"), EncryptionContext: encCtx, NumberOfBytes: tea.Int32(24)})
	step("GenerateAndExportDataKey", err, gx.Body)
	exported, err := rsa.DecryptOAEP(oaepHash("RSAES_OAEP_SHA_1"), nil, clientRSA2048, decodeB64(t, tea.StringValue(gx.Body.ExportedDataKey)), nil)
	if err != nil || len(exported) != 24 {
		t.Fatalf("ExportedDataKey: %d bytes, %v", len(exported), err)
	}
	ex, err := c.ExportDataKey(&kmssdk.ExportDataKeyRequest{CiphertextBlob: gx.Body.CiphertextBlob, EncryptionContext: encCtx,
		PublicKeyBlob: tea.String(pub), WrappingKeySpec: tea.String("RSA_2048"), WrappingAlgorithm: tea.String("RSAES_OAEP_SHA_256")})
	step("ExportDataKey", err, ex.Body)
	again, err := rsa.DecryptOAEP(oaepHash("RSAES_OAEP_SHA_256"), nil, clientRSA2048, decodeB64(t, tea.StringValue(ex.Body.ExportedDataKey)), nil)
	if err != nil || !bytes.Equal(again, exported) {
		t.Fatalf("ExportDataKey gives another data key: %v", err)
	}

	// Import.
	ck, err = c.CreateKey(&kmssdk.CreateKeyRequest{DKMSInstanceId: tea.String(tn.InstanceID), Origin: tea.String("EXTERNAL")})
	step("CreateKey", err, ck.Body)
	ext := tea.StringValue(ck.Body.KeyMetadata.KeyId)
	gi, err := c.GetParametersForImport(&kmssdk.GetParametersForImportRequest{KeyId: tea.String(ext), WrappingAlgorithm: tea.String("RSAES_OAEP_SHA_256"), WrappingKeySpec: tea.String("RSA_2048")})
	step("GetParametersForImport", err, gi.Body)
	material := randomBytes(32)
	im, err := c.ImportKeyMaterial(&kmssdk.ImportKeyMaterialRequest{KeyId: tea.String(ext), ImportToken: gi.Body.ImportToken,
		EncryptedKeyMaterial:  tea.String(wrapForImport(t, tea.StringValue(gi.Body.PublicKey), "RSAES_OAEP_SHA_256", material)),
		KeyMaterialExpireUnix: tea.Int64(clock.Now().Add(48 * time.Hour).Unix())})
	step("ImportKeyMaterial", err, im.Body)
	_, err = c.ImportKeyMaterial(&kmssdk.ImportKeyMaterialRequest{KeyId: tea.String(ext), ImportToken: tea.String("not-a-token"),
		EncryptedKeyMaterial: tea.String(wrapForImport(t, tea.StringValue(gi.Body.PublicKey), "RSAES_OAEP_SHA_256", material))})
	sdkErr(t, err, 400, "InvalidImportToken")
	e, err := c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String(ext), Plaintext: tea.String("aW1wb3J0ZWQ=")})
	if err != nil {
		t.Fatalf("Encrypt with imported material: %v", err)
	}
	if got := openOutside(t, material, tea.StringValue(e.Body.KeyVersionId), tea.StringValue(e.Body.CiphertextBlob), ""); string(got) != "aW1wb3J0ZWQ=" {
		t.Errorf("opened outside: %q", got)
	}
	dm, err := c.DeleteKeyMaterial(&kmssdk.DeleteKeyMaterialRequest{KeyId: tea.String(ext)})
	step("DeleteKeyMaterial", err, dm.Body)
	_, err = c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String(ext), Plaintext: tea.String("eA==")})
	sdkErr(t, err, 409, "Rejected.PendingImport")

	// Instances.
	li, err := c.ListKmsInstances(&kmssdk.ListKmsInstancesRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(20)})
	step("ListKmsInstances", err, li.Body)
	wantEq(t, "ListKmsInstances TotalCount", tea.Int64Value(li.Body.TotalCount), 1)
	gk, err := c.GetKmsInstance(&kmssdk.GetKmsInstanceRequest{KmsInstanceId: li.Body.KmsInstances.KmsInstance[0].KmsInstanceId})
	step("GetKmsInstance", err, gk.Body, getKmsInstanceOptional...)
	wantEq(t, "GetKmsInstance InstanceId", tea.StringValue(gk.Body.KmsInstance.InstanceId), tn.InstanceID)
	wantEq(t, "GetKmsInstance KeyNum", tea.Int64Value(gk.Body.KmsInstance.KeyNum), 1000)
	_, err = c.GetKmsInstance(&kmssdk.GetKmsInstanceRequest{KmsInstanceId: tea.String("kst-nosuchinstance")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")

	for _, a := range catalogueActions {
		if !covered[a] {
			t.Errorf("%s not called through the SDK", a)
		}
	}
}
