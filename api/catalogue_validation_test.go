package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// Codes of the catalogue actions, as api/errors.go maps them.
const (
	keyUsageCode    = "InvalidKeyUsage"
	pendingDelCode  = "Rejected.PendingDeletion"
	pendingImpCode  = "Rejected.PendingImport"
	enabledCode     = "Rejected.Enabled"
	protectedCode   = "Forbidden.DeletionProtection"
	notExternalCode = "Unsupported.Origin"
	badTokenCode    = "InvalidImportToken"
	badMaterialCode = "InvalidKeyMaterial"
	dryRunCode      = "DryRunOperationError"
)

// catKeyRefCases are the ways a KeyId can be wrong for an action whose other
// parameters are valid. (Other accounts' keys are the access tests' matter.)
func catKeyRefCases(action, param string, base map[string]string) []errCase {
	return []errCase{
		{action + "/missing " + param, action, without(base, param), 400, missingParam},
		{action + "/unknown key id", action, with(base, param, uuid.NewString()), 404, keyNotFound},
		{action + "/unknown alias", action, with(base, param, "alias/no-such-alias"), 404, aliasNotFound},
		{action + "/ARN of another region", action, with(base, param, "acs:kms:cn-hangzhou:{ACCOUNT}:key/{SYM}"), 404, keyNotFound},
		{action + "/malformed ARN", action, with(base, param, "acs:kms:local"), 400, invalidParam},
	}
}

// badPolicies are policy documents the service refuses, for SetKeyPolicy
// and CreateKey.
func badPolicies() map[string]string {
	base := `"Effect":"Allow","Principal":{"RAM":["acs:ram::{ACCOUNT}:*"]},"Action":["kms:*"],"Resource":["*"]`
	doc := func(stmts string) string { return `{"Version":"1","Statement":[` + stmts + `]}` }
	big := doc(`{"Sid":"big",` + base + `}` + strings.Repeat(`,{`+base+`}`, 400))
	return map[string]string{
		"not JSON":                   `{"Version":"1"`,
		"Version 2":                  `{"Version":"2","Statement":[{` + base + `}]}`,
		"no Statement":               `{"Version":"1"}`,
		"Effect Permit":              doc(`{"Effect":"Permit","Principal":{"RAM":["*"]},"Action":["kms:*"]}`),
		"no Principal":               doc(`{"Effect":"Allow","Action":["kms:*"]}`),
		"Principal not RAM":          doc(`{"Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]},"Action":["kms:*"]}`),
		"Principal.RAM not an ARN":   doc(`{"Effect":"Allow","Principal":{"RAM":["bob"]},"Action":["kms:*"]}`),
		"Action without kms:":        doc(`{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["Encrypt"]}`),
		"Resource neither * nor ARN": doc(`{` + base + `,"Resource":["key/x"]}`),
		"Sid with a colon":           doc(`{"Sid":"a:b",` + base + `}`),
		"Sid of 129 characters":      doc(`{"Sid":"` + strings.Repeat("s", 129) + `",` + base + `}`),
		"over 32768 bytes":           big,
		"unknown field":              doc(`{` + base + `,"NotResource":["*"]}`),
	}
}

func catalogueValidationCases() []errCase {
	var cases []errCase
	add := func(cs ...errCase) { cases = append(cases, cs...) }
	long := func(n int) string { return strings.Repeat("a", n) }

	// CreateKey: specs, usages, origins, rotation, tags, policy, default key.
	ck := map[string]string{"DKMSInstanceId": "{INSTANCE}"}
	add(
		errCase{"CreateKey/EC_P256K for encryption", "CreateKey", with(ck, "KeySpec", "EC_P256K", "KeyUsage", "ENCRYPT/DECRYPT"), 400, invalidParam},
		errCase{"CreateKey/RSA_3072 with usage SIGN", "CreateKey", with(ck, "KeySpec", "RSA_3072", "KeyUsage", "SIGN"), 400, invalidParam},
		errCase{"CreateKey/usage in lower case", "CreateKey", with(ck, "KeySpec", "RSA_4096", "KeyUsage", "sign/verify"), 400, invalidParam},
		errCase{"CreateKey/Aliyun_AES_192 in software", "CreateKey", with(ck, "KeySpec", "Aliyun_AES_192"), 400, invalidParam},
		errCase{"CreateKey/KeySpec in lower case", "CreateKey", with(ck, "KeySpec", "rsa_2048"), 400, invalidParam},
		errCase{"CreateKey/Origin EXTERNAL for an EC key", "CreateKey", with(ck, "Origin", "EXTERNAL", "KeySpec", "EC_P256"), 400, invalidParam},
		errCase{"CreateKey/Origin EXTERNAL with rotation", "CreateKey", with(ck, "Origin", "EXTERNAL", "EnableAutomaticRotation", "true", "RotationInterval", "30d"), 400, invalidParam},
		errCase{"CreateKey/rotation of an EC_P256K key", "CreateKey", with(ck, "KeySpec", "EC_P256K", "EnableAutomaticRotation", "true", "RotationInterval", "30d"), 400, invalidParam},
		errCase{"CreateKey/ProtectionLevel unknown", "CreateKey", with(ck, "ProtectionLevel", "CLOUD"), 400, invalidParam},
		errCase{"CreateKey/21 Tags", "CreateKey", with(ck, "Tags", tagsJSON(21)), 400, invalidParam},
		errCase{"CreateKey/Tag key starting aliyun", "CreateKey", with(ck, "Tags", oneTag("aliyun:x", "v")), 400, invalidParam},
		errCase{"CreateKey/Tags not JSON", "CreateKey", with(ck, "Tags", `[{"TagKey":`), 400, invalidParam},
		errCase{"CreateKey/AliasName taken", "CreateKey", with(ck, "AliasName", catAlias), 400, "AliasAlreadyExists"},
		errCase{"CreateKey/AliasName reserved", "CreateKey", with(ck, "AliasName", "alias/acs/x"), 400, invalidParam},
		errCase{"CreateKey/default key of spec RSA_2048", "CreateKey", map[string]string{"KeySpec": "RSA_2048"}, 400, invalidParam},
		errCase{"CreateKey/default key of spec EC_P256", "CreateKey", map[string]string{"KeySpec": "EC_P256", "KeyUsage": "SIGN/VERIFY"}, 400, invalidParam},
		errCase{"CreateKey/second default key", "CreateKey", nil, 400, limitExceeded},
		errCase{"CreateKey/second default key, EXTERNAL", "CreateKey", map[string]string{"Origin": "EXTERNAL"}, 400, limitExceeded},
	)
	for name, p := range badPolicies() {
		add(errCase{"CreateKey/Policy " + name, "CreateKey", with(ck, "Policy", p), 400, invalidParam})
	}

	// ListKeys Filters.
	elevenFilters, _ := json.Marshal(make([]struct{ Key string }, 11))
	add(
		errCase{"ListKeys/Filters an object", "ListKeys", map[string]string{"Filters": `{"Key":"KeyState","Values":["Enabled"]}`}, 400, invalidParam},
		errCase{"ListKeys/Filters Values a string", "ListKeys", map[string]string{"Filters": `[{"Key":"KeyState","Values":"Enabled"}]`}, 400, invalidParam},
		errCase{"ListKeys/11 Filters", "ListKeys", map[string]string{"Filters": strings.ReplaceAll(string(elevenFilters), `{"Key":""}`, `{"Key":"KeyState","Values":["Enabled"]}`)}, 400, invalidParam},
		errCase{"ListKeys/11 Values", "ListKeys", map[string]string{"Filters": `[{"Key":"KeyState","Values":["a","b","c","d","e","f","g","h","i","j","k"]}]`}, 400, invalidParam},
	)

	// UpdateRotationPolicy.
	urp := map[string]string{"KeyId": "{SYM}", "EnableAutomaticRotation": "true", "RotationInterval": "30d"}
	add(catKeyRefCases("UpdateRotationPolicy", "KeyId", urp)...)
	add(
		errCase{"UpdateRotationPolicy/missing EnableAutomaticRotation", "UpdateRotationPolicy", without(urp, "EnableAutomaticRotation"), 400, missingParam},
		errCase{"UpdateRotationPolicy/EnableAutomaticRotation yes", "UpdateRotationPolicy", with(urp, "EnableAutomaticRotation", "yes"), 400, invalidParam},
		errCase{"UpdateRotationPolicy/missing RotationInterval", "UpdateRotationPolicy", without(urp, "RotationInterval"), 400, invalidParam},
		errCase{"UpdateRotationPolicy/RotationInterval 6d", "UpdateRotationPolicy", with(urp, "RotationInterval", "6d"), 400, invalidParam},
		errCase{"UpdateRotationPolicy/RotationInterval 366d", "UpdateRotationPolicy", with(urp, "RotationInterval", "366d"), 400, invalidParam},
		errCase{"UpdateRotationPolicy/RotationInterval 604799s", "UpdateRotationPolicy", with(urp, "RotationInterval", "604799s"), 400, invalidParam},
		errCase{"UpdateRotationPolicy/RotationInterval weekly", "UpdateRotationPolicy", with(urp, "RotationInterval", "weekly"), 400, invalidParam},
		errCase{"UpdateRotationPolicy/RSA key", "UpdateRotationPolicy", with(urp, "KeyId", "{RSAENC}"), 400, unsupportedOp},
		errCase{"UpdateRotationPolicy/EC key", "UpdateRotationPolicy", with(urp, "KeyId", "{EC}"), 400, unsupportedOp},
		errCase{"UpdateRotationPolicy/EXTERNAL key", "UpdateRotationPolicy", with(urp, "KeyId", "{EXT}"), 400, unsupportedOp},
		errCase{"UpdateRotationPolicy/key pending deletion", "UpdateRotationPolicy", with(urp, "KeyId", "{PENDING}"), 409, pendingDelCode},
	)

	// ScheduleKeyDeletion.
	skd := map[string]string{"KeyId": "{SYM}", "PendingWindowInDays": "7"}
	add(catKeyRefCases("ScheduleKeyDeletion", "KeyId", skd)...)
	for _, d := range []string{"6", "367", "0", "-7", "seven", "7.0"} {
		add(errCase{"ScheduleKeyDeletion/PendingWindowInDays " + d, "ScheduleKeyDeletion", with(skd, "PendingWindowInDays", d), 400, invalidParam})
	}
	add(
		errCase{"ScheduleKeyDeletion/missing PendingWindowInDays", "ScheduleKeyDeletion", without(skd, "PendingWindowInDays"), 400, missingParam},
		errCase{"ScheduleKeyDeletion/deletion protection", "ScheduleKeyDeletion", with(skd, "KeyId", "{PROT}"), 403, protectedCode},
		errCase{"ScheduleKeyDeletion/already pending", "ScheduleKeyDeletion", with(skd, "KeyId", "{PENDING}"), 409, pendingDelCode},
	)

	// CancelKeyDeletion.
	ckd := map[string]string{"KeyId": "{PENDING}"}
	add(catKeyRefCases("CancelKeyDeletion", "KeyId", ckd)...)
	add(
		errCase{"CancelKeyDeletion/Enabled key", "CancelKeyDeletion", with(ckd, "KeyId", "{SYM}"), 409, enabledCode},
		errCase{"CancelKeyDeletion/Disabled key", "CancelKeyDeletion", with(ckd, "KeyId", "{RSADIS}"), 409, disabledCode},
		errCase{"CancelKeyDeletion/PendingImport key", "CancelKeyDeletion", with(ckd, "KeyId", "{EXT}"), 409, pendingImpCode},
	)

	// SetDeletionProtection.
	sdp := map[string]string{"ProtectedResourceArn": "{SYMARN}", "EnableDeletionProtection": "true"}
	add(
		errCase{"SetDeletionProtection/missing ProtectedResourceArn", "SetDeletionProtection", without(sdp, "ProtectedResourceArn"), 400, missingParam},
		errCase{"SetDeletionProtection/missing EnableDeletionProtection", "SetDeletionProtection", without(sdp, "EnableDeletionProtection"), 400, missingParam},
		errCase{"SetDeletionProtection/EnableDeletionProtection on", "SetDeletionProtection", with(sdp, "EnableDeletionProtection", "on"), 400, invalidParam},
		errCase{"SetDeletionProtection/a key id, not an ARN", "SetDeletionProtection", with(sdp, "ProtectedResourceArn", "{SYM}"), 400, invalidParam},
		errCase{"SetDeletionProtection/an alias, not an ARN", "SetDeletionProtection", with(sdp, "ProtectedResourceArn", catAlias), 400, invalidParam},
		errCase{"SetDeletionProtection/ARN of an unknown key", "SetDeletionProtection", with(sdp, "ProtectedResourceArn", "acs:kms:local:{ACCOUNT}:key/"+uuid.NewString()), 404, keyNotFound},
		errCase{"SetDeletionProtection/ARN of another region", "SetDeletionProtection", with(sdp, "ProtectedResourceArn", "acs:kms:cn-hangzhou:{ACCOUNT}:key/{SYM}"), 404, keyNotFound},
		errCase{"SetDeletionProtection/description of 129 characters", "SetDeletionProtection", with(sdp, "DeletionProtectionDescription", long(129)), 400, invalidParam},
		errCase{"SetDeletionProtection/key pending deletion", "SetDeletionProtection", with(sdp, "ProtectedResourceArn", "{PENDINGARN}"), 409, pendingDelCode},
	)

	// GetKeyPolicy, SetKeyPolicy.
	gkp := map[string]string{"KeyId": "{SYM}", "PolicyName": "default"}
	add(catKeyRefCases("GetKeyPolicy", "KeyId", gkp)...)
	add(
		errCase{"GetKeyPolicy/missing PolicyName", "GetKeyPolicy", without(gkp, "PolicyName"), 400, missingParam},
		errCase{"GetKeyPolicy/PolicyName other", "GetKeyPolicy", with(gkp, "PolicyName", "other"), 400, invalidParam},
	)
	skp := with(gkp, "Policy", "{POLICY}")
	add(catKeyRefCases("SetKeyPolicy", "KeyId", skp)...)
	add(
		errCase{"SetKeyPolicy/missing PolicyName", "SetKeyPolicy", without(skp, "PolicyName"), 400, missingParam},
		errCase{"SetKeyPolicy/PolicyName other", "SetKeyPolicy", with(skp, "PolicyName", "other"), 400, invalidParam},
		errCase{"SetKeyPolicy/missing Policy", "SetKeyPolicy", without(skp, "Policy"), 400, missingParam},
	)
	for name, p := range badPolicies() {
		add(errCase{"SetKeyPolicy/Policy " + name, "SetKeyPolicy", with(skp, "Policy", p), 400, invalidParam})
	}

	// AsymmetricSign, AsymmetricVerify.
	as := map[string]string{"KeyId": "{RSASIGN}", "KeyVersionId": "{RSASIGNV}", "Algorithm": "RSA_PSS_SHA_256", "Digest": "{DIGEST}"}
	av := with(as, "Value", "{SIG}")
	for _, p := range []struct {
		action string
		base   map[string]string
	}{{"AsymmetricSign", as}, {"AsymmetricVerify", av}} {
		a, base := p.action, p.base
		add(catKeyRefCases(a, "KeyId", base)...)
		add(
			errCase{a + "/missing KeyVersionId", a, without(base, "KeyVersionId"), 400, missingParam},
			errCase{a + "/unknown KeyVersionId", a, with(base, "KeyVersionId", uuid.NewString()), 404, resourceAbsent},
			errCase{a + "/KeyVersionId of another key", a, with(base, "KeyVersionId", "{ECV}"), 404, resourceAbsent},
			errCase{a + "/missing Algorithm", a, without(base, "Algorithm"), 400, missingParam},
			errCase{a + "/ECDSA_SHA_256 for an RSA key", a, with(base, "Algorithm", "ECDSA_SHA_256"), 400, invalidParam},
			errCase{a + "/RSAES_OAEP_SHA_256 for signing", a, with(base, "Algorithm", "RSAES_OAEP_SHA_256"), 400, invalidParam},
			errCase{a + "/RSA_PSS_SHA_512", a, with(base, "Algorithm", "RSA_PSS_SHA_512"), 400, invalidParam},
			errCase{a + "/RSA_PSS_SHA_256 for an EC key", a, with(base, "KeyId", "{EC}", "KeyVersionId", "{ECV}"), 400, invalidParam},
			errCase{a + "/missing Digest", a, without(base, "Digest"), 400, missingParam},
			errCase{a + "/Digest not Base64", a, with(base, "Digest", "!!!"), 400, invalidParam},
			errCase{a + "/Digest of 31 bytes", a, with(base, "Digest", b64(randomBytes(31))), 400, invalidParam},
			errCase{a + "/Digest of 64 bytes", a, with(base, "Digest", b64(randomBytes(64))), 400, invalidParam},
			errCase{a + "/symmetric key", a, with(base, "KeyId", "{SYM}", "KeyVersionId", "{SYMV}"), 400, keyUsageCode},
			errCase{a + "/RSA key for encryption", a, with(base, "KeyId", "{RSAENC}", "KeyVersionId", "{RSAENCV}"), 400, keyUsageCode},
			errCase{a + "/disabled key", a, with(base, "KeyId", "{RSADIS}", "KeyVersionId", "{RSADISV}"), 409, disabledCode},
			errCase{a + "/DryRun true", a, with(base, "DryRun", "true"), 412, dryRunCode},
			errCase{a + "/DryRun perhaps", a, with(base, "DryRun", "perhaps"), 400, invalidParam},
		)
	}
	add(
		errCase{"AsymmetricVerify/missing Value", "AsymmetricVerify", without(av, "Value"), 400, missingParam},
		errCase{"AsymmetricVerify/Value not Base64", "AsymmetricVerify", with(av, "Value", "%%%"), 400, invalidParam},
	)

	// AsymmetricEncrypt, AsymmetricDecrypt.
	ae := map[string]string{"KeyId": "{RSAENC}", "KeyVersionId": "{RSAENCV}", "Algorithm": "RSAES_OAEP_SHA_256", "Plaintext": "{P190}"}
	ad := map[string]string{"KeyId": "{RSAENC}", "KeyVersionId": "{RSAENCV}", "Algorithm": "RSAES_OAEP_SHA_256", "CiphertextBlob": "{RSACT}"}
	for _, p := range []struct {
		action string
		base   map[string]string
	}{{"AsymmetricEncrypt", ae}, {"AsymmetricDecrypt", ad}} {
		a, base := p.action, p.base
		add(catKeyRefCases(a, "KeyId", base)...)
		add(
			errCase{a + "/missing KeyVersionId", a, without(base, "KeyVersionId"), 400, missingParam},
			errCase{a + "/unknown KeyVersionId", a, with(base, "KeyVersionId", uuid.NewString()), 404, resourceAbsent},
			errCase{a + "/KeyVersionId of another key", a, with(base, "KeyVersionId", "{RSASIGNV}"), 404, resourceAbsent},
			errCase{a + "/missing Algorithm", a, without(base, "Algorithm"), 400, missingParam},
			errCase{a + "/RSA_PSS_SHA_256", a, with(base, "Algorithm", "RSA_PSS_SHA_256"), 400, invalidParam},
			errCase{a + "/RSAES_PKCS1_V1_5", a, with(base, "Algorithm", "RSAES_PKCS1_V1_5"), 400, invalidParam},
			errCase{a + "/RSA key for signing", a, with(base, "KeyId", "{RSASIGN}", "KeyVersionId", "{RSASIGNV}"), 400, keyUsageCode},
			errCase{a + "/EC key", a, with(base, "KeyId", "{EC}", "KeyVersionId", "{ECV}"), 400, keyUsageCode},
			errCase{a + "/symmetric key", a, with(base, "KeyId", "{SYM}", "KeyVersionId", "{SYMV}"), 400, keyUsageCode},
			errCase{a + "/DryRun true", a, with(base, "DryRun", "true"), 412, dryRunCode},
		)
	}
	add(
		errCase{"AsymmetricEncrypt/missing Plaintext", "AsymmetricEncrypt", without(ae, "Plaintext"), 400, missingParam},
		errCase{"AsymmetricEncrypt/Plaintext not Base64", "AsymmetricEncrypt", with(ae, "Plaintext", "not base64!"), 400, invalidParam},
		errCase{"AsymmetricEncrypt/191 bytes with SHA-256", "AsymmetricEncrypt", with(ae, "Plaintext", "{P191}"), 400, invalidParam},
		errCase{"AsymmetricEncrypt/215 bytes with SHA-1", "AsymmetricEncrypt", with(ae, "Plaintext", "{P215}", "Algorithm", "RSAES_OAEP_SHA_1"), 400, invalidParam},
		errCase{"AsymmetricDecrypt/missing CiphertextBlob", "AsymmetricDecrypt", without(ad, "CiphertextBlob"), 400, missingParam},
		errCase{"AsymmetricDecrypt/CiphertextBlob not Base64", "AsymmetricDecrypt", with(ad, "CiphertextBlob", "!!"), 400, invalidParam},
		errCase{"AsymmetricDecrypt/tampered CiphertextBlob", "AsymmetricDecrypt", with(ad, "CiphertextBlob", "{RSACTBAD}"), 400, invalidCipher},
		errCase{"AsymmetricDecrypt/short CiphertextBlob", "AsymmetricDecrypt", with(ad, "CiphertextBlob", "AAAA"), 400, invalidCipher},
		errCase{"AsymmetricDecrypt/the other OAEP hash", "AsymmetricDecrypt", with(ad, "Algorithm", "RSAES_OAEP_SHA_1"), 400, invalidCipher},
	)

	// GetPublicKey.
	gpk := map[string]string{"KeyId": "{RSASIGN}", "KeyVersionId": "{RSASIGNV}"}
	add(catKeyRefCases("GetPublicKey", "KeyId", gpk)...)
	add(
		errCase{"GetPublicKey/missing KeyVersionId", "GetPublicKey", without(gpk, "KeyVersionId"), 400, missingParam},
		errCase{"GetPublicKey/unknown KeyVersionId", "GetPublicKey", with(gpk, "KeyVersionId", uuid.NewString()), 404, resourceAbsent},
		errCase{"GetPublicKey/KeyVersionId of another key", "GetPublicKey", with(gpk, "KeyVersionId", "{RSAENCV}"), 404, resourceAbsent},
		errCase{"GetPublicKey/symmetric key", "GetPublicKey", with(gpk, "KeyId", "{SYM}", "KeyVersionId", "{SYMV}"), 400, keyUsageCode},
		errCase{"GetPublicKey/disabled key", "GetPublicKey", with(gpk, "KeyId", "{RSADIS}", "KeyVersionId", "{RSADISV}"), 409, disabledCode},
		errCase{"GetPublicKey/DryRun true", "GetPublicKey", with(gpk, "DryRun", "true"), 412, dryRunCode},
		errCase{"GetPublicKey/DryRun perhaps", "GetPublicKey", with(gpk, "DryRun", "perhaps"), 400, invalidParam},
	)

	// GenerateAndExportDataKey, ExportDataKey.
	wrap := map[string]string{"PublicKeyBlob": "{WRAPPUB}", "WrappingKeySpec": "RSA_2048", "WrappingAlgorithm": "RSAES_OAEP_SHA_256"}
	gae := with(wrap, "KeyId", "{SYM}", "EncryptionContext", catContext)
	ed := with(wrap, "CiphertextBlob", "{SYMBLOB}", "EncryptionContext", catContext)
	for _, p := range []struct {
		action string
		base   map[string]string
	}{{"GenerateAndExportDataKey", gae}, {"ExportDataKey", ed}} {
		a, base := p.action, p.base
		add(
			errCase{a + "/missing PublicKeyBlob", a, without(base, "PublicKeyBlob"), 400, missingParam},
			errCase{a + "/PublicKeyBlob not Base64", a, with(base, "PublicKeyBlob", "#"), 400, invalidParam},
			errCase{a + "/PublicKeyBlob not a key", a, with(base, "PublicKeyBlob", b64([]byte("not a key"))), 400, invalidParam},
			errCase{a + "/PublicKeyBlob of RSA-3072", a, with(base, "PublicKeyBlob", "{WRAPPUB3072}"), 400, invalidParam},
			errCase{a + "/PublicKeyBlob of an EC key", a, with(base, "PublicKeyBlob", "{ECPUB}"), 400, invalidParam},
			errCase{a + "/missing WrappingKeySpec", a, without(base, "WrappingKeySpec"), 400, missingParam},
			errCase{a + "/WrappingKeySpec RSA_3072", a, with(base, "WrappingKeySpec", "RSA_3072"), 400, invalidParam},
			errCase{a + "/missing WrappingAlgorithm", a, without(base, "WrappingAlgorithm"), 400, missingParam},
			errCase{a + "/WrappingAlgorithm RSAES_PKCS1_V1_5", a, with(base, "WrappingAlgorithm", "RSAES_PKCS1_V1_5"), 400, invalidParam},
			errCase{a + "/DryRun true", a, with(base, "DryRun", "true"), 412, dryRunCode},
		)
		add(contextCases(a, "EncryptionContext", base)...)
	}
	add(catKeyRefCases("GenerateAndExportDataKey", "KeyId", gae)...)
	add(
		errCase{"GenerateAndExportDataKey/NumberOfBytes 191 with SHA-256", "GenerateAndExportDataKey", with(gae, "NumberOfBytes", "191"), 400, invalidParam},
		errCase{"GenerateAndExportDataKey/NumberOfBytes 215 with SHA-1", "GenerateAndExportDataKey", with(gae, "NumberOfBytes", "215", "WrappingAlgorithm", "RSAES_OAEP_SHA_1"), 400, invalidParam},
		errCase{"GenerateAndExportDataKey/NumberOfBytes 0", "GenerateAndExportDataKey", with(gae, "NumberOfBytes", "0"), 400, invalidParam},
		errCase{"GenerateAndExportDataKey/NumberOfBytes 1025", "GenerateAndExportDataKey", with(gae, "NumberOfBytes", "1025"), 400, invalidParam},
		errCase{"GenerateAndExportDataKey/KeySpec AES_512", "GenerateAndExportDataKey", with(gae, "KeySpec", "AES_512"), 400, invalidParam},
		errCase{"GenerateAndExportDataKey/key pending deletion", "GenerateAndExportDataKey", with(gae, "KeyId", "{PENDING}"), 409, pendingDelCode},
		errCase{"GenerateAndExportDataKey/key pending import", "GenerateAndExportDataKey", with(gae, "KeyId", "{EXT}"), 409, pendingImpCode},
		errCase{"GenerateAndExportDataKey/EC key", "GenerateAndExportDataKey", with(gae, "KeyId", "{EC}"), 400, keyUsageCode},
		errCase{"ExportDataKey/missing CiphertextBlob", "ExportDataKey", without(ed, "CiphertextBlob"), 400, missingParam},
		errCase{"ExportDataKey/CiphertextBlob not Base64", "ExportDataKey", with(ed, "CiphertextBlob", "!"), 400, invalidParam},
		errCase{"ExportDataKey/CiphertextBlob of random bytes", "ExportDataKey", with(ed, "CiphertextBlob", b64(randomBytes(80))), 400, invalidCipher},
		errCase{"ExportDataKey/wrong EncryptionContext", "ExportDataKey", with(ed, "EncryptionContext", `{"purpose":"other"}`), 400, invalidCipher},
		errCase{"ExportDataKey/missing EncryptionContext", "ExportDataKey", without(ed, "EncryptionContext"), 400, invalidCipher},
		errCase{"ExportDataKey/key pending deletion", "ExportDataKey", with(ed, "CiphertextBlob", "{PENDINGBLOB}"), 409, pendingDelCode},
	)

	// GetParametersForImport.
	gpi := map[string]string{"KeyId": "{EXT}", "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}
	add(catKeyRefCases("GetParametersForImport", "KeyId", gpi)...)
	add(
		errCase{"GetParametersForImport/missing WrappingAlgorithm", "GetParametersForImport", without(gpi, "WrappingAlgorithm"), 400, missingParam},
		errCase{"GetParametersForImport/WrappingAlgorithm RSAES_OAEP_SHA_512", "GetParametersForImport", with(gpi, "WrappingAlgorithm", "RSAES_OAEP_SHA_512"), 400, invalidParam},
		errCase{"GetParametersForImport/missing WrappingKeySpec", "GetParametersForImport", without(gpi, "WrappingKeySpec"), 400, missingParam},
		errCase{"GetParametersForImport/WrappingKeySpec RSA_4096", "GetParametersForImport", with(gpi, "WrappingKeySpec", "RSA_4096"), 400, invalidParam},
		errCase{"GetParametersForImport/key with generated material", "GetParametersForImport", with(gpi, "KeyId", "{SYM}"), 400, notExternalCode},
		errCase{"GetParametersForImport/key pending deletion", "GetParametersForImport", with(gpi, "KeyId", "{EXTDEL}"), 409, pendingDelCode},
	)

	// ImportKeyMaterial.
	ikm := map[string]string{"KeyId": "{EXT}", "EncryptedKeyMaterial": "{WRAPPED}", "ImportToken": "{TOKEN}"}
	add(catKeyRefCases("ImportKeyMaterial", "KeyId", ikm)...)
	add(
		errCase{"ImportKeyMaterial/missing EncryptedKeyMaterial", "ImportKeyMaterial", without(ikm, "EncryptedKeyMaterial"), 400, missingParam},
		errCase{"ImportKeyMaterial/EncryptedKeyMaterial not Base64", "ImportKeyMaterial", with(ikm, "EncryptedKeyMaterial", "*"), 400, invalidParam},
		errCase{"ImportKeyMaterial/missing ImportToken", "ImportKeyMaterial", without(ikm, "ImportToken"), 400, missingParam},
		errCase{"ImportKeyMaterial/garbled ImportToken", "ImportKeyMaterial", with(ikm, "ImportToken", "{TOKEN}x"), 400, badTokenCode},
		errCase{"ImportKeyMaterial/ImportToken of another key", "ImportKeyMaterial", with(ikm, "ImportToken", "{TOKEN2}"), 400, badTokenCode},
		errCase{"ImportKeyMaterial/material wrapped for another token", "ImportKeyMaterial", with(ikm, "EncryptedKeyMaterial", "{WRAPPEDX}"), 400, badMaterialCode},
		errCase{"ImportKeyMaterial/16 bytes of material", "ImportKeyMaterial", with(ikm, "EncryptedKeyMaterial", "{WRAPPED16}"), 400, badMaterialCode},
		errCase{"ImportKeyMaterial/random bytes", "ImportKeyMaterial", with(ikm, "EncryptedKeyMaterial", b64(randomBytes(256))), 400, badMaterialCode},
		errCase{"ImportKeyMaterial/KeyMaterialExpireUnix in the past", "ImportKeyMaterial", with(ikm, "KeyMaterialExpireUnix", "{PAST}"), 400, invalidParam},
		errCase{"ImportKeyMaterial/KeyMaterialExpireUnix negative", "ImportKeyMaterial", with(ikm, "KeyMaterialExpireUnix", "-1"), 400, invalidParam},
		errCase{"ImportKeyMaterial/KeyMaterialExpireUnix not a number", "ImportKeyMaterial", with(ikm, "KeyMaterialExpireUnix", "tomorrow"), 400, invalidParam},
		errCase{"ImportKeyMaterial/key with generated material", "ImportKeyMaterial", with(ikm, "KeyId", "{SYM}"), 400, notExternalCode},
		errCase{"ImportKeyMaterial/key pending deletion", "ImportKeyMaterial", with(ikm, "KeyId", "{EXTDEL}", "EncryptedKeyMaterial", "{WRAPPEDDEL}", "ImportToken", "{TOKENDEL}"), 409, pendingDelCode},
	)

	// DeleteKeyMaterial.
	dkm := map[string]string{"KeyId": "{EXT}"}
	add(catKeyRefCases("DeleteKeyMaterial", "KeyId", dkm)...)
	add(
		errCase{"DeleteKeyMaterial/key with generated material", "DeleteKeyMaterial", with(dkm, "KeyId", "{SYM}"), 400, notExternalCode},
		errCase{"DeleteKeyMaterial/key pending deletion", "DeleteKeyMaterial", with(dkm, "KeyId", "{EXTDEL}"), 409, pendingDelCode},
	)

	// ListKmsInstances, GetKmsInstance.
	add(pageCases("ListKmsInstances", nil)...)
	add(
		errCase{"GetKmsInstance/missing KmsInstanceId", "GetKmsInstance", nil, 400, missingParam},
		errCase{"GetKmsInstance/unknown KmsInstanceId", "GetKmsInstance", map[string]string{"KmsInstanceId": "kst-doesnotexist"}, 404, resourceAbsent},
	)
	return cases
}

// catalogueActions are the actions the catalogue issue added.
var catalogueActions = []string{
	"UpdateRotationPolicy", "ScheduleKeyDeletion", "CancelKeyDeletion", "SetDeletionProtection",
	"GetKeyPolicy", "SetKeyPolicy", "AsymmetricSign", "AsymmetricVerify", "AsymmetricEncrypt",
	"AsymmetricDecrypt", "GetPublicKey", "GenerateAndExportDataKey", "ExportDataKey",
	"GetParametersForImport", "ImportKeyMaterial", "DeleteKeyMaterial", "ListKmsInstances", "GetKmsInstance",
}

// TestCatalogue_ValidationErrors sends every invalid catalogue request and
// checks the status, the code, the error format, and that the catalogue
// (its hash, import tokens included) did not change.
func TestCatalogue_ValidationErrors(t *testing.T) {
	f := newCatFixture(t)
	cases := catalogueValidationCases()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			before := f.hash()
			_, err := f.call(t, tc.action, f.expand(tc.params))
			wantAPIError(t, err, tc.status, tc.code)
			if after := f.hash(); after != before {
				t.Errorf("the catalogue changed although the request was refused")
			}
		})
	}
	for _, a := range append(catalogueActions, "CreateKey", "ListKeys") {
		n := 0
		for _, tc := range cases {
			if tc.action == a {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no validation case for %s", a)
		}
	}
	t.Logf("%d validation cases", len(cases))
}
