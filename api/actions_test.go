package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// fixture is a node with a few known objects, named in the test tables by
// placeholders ($KEY, $BLOB, ...) that expand replaces.
type fixture struct {
	*testNode
	Key, Key2, Disabled string
	Version             string // Key's primary version
	Blob                string // "aGVsbG8=" under Key, with fixtureContext
	DisabledBlob        string // the same under Disabled, made before it was disabled
}

const (
	fixtureAlias         = "alias/fixture"
	fixtureDisabledAlias = "alias/fixture-disabled"
	fixturePlaintext     = "aGVsbG8="
	fixtureContext       = `{"purpose":"test"}`
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{testNode: startNode(t)}
	f.Key = f.createKey(t, "fixture key")
	f.Key2 = f.createKey(t, "second key")
	f.Disabled = f.createKey(t, "disabled key")
	f.must(t, "CreateAlias", map[string]string{"AliasName": fixtureAlias, "KeyId": f.Key}, nil)
	f.must(t, "CreateAlias", map[string]string{"AliasName": fixtureDisabledAlias, "KeyId": f.Disabled}, nil)
	var enc struct{ CiphertextBlob, KeyVersionId string }
	f.must(t, "Encrypt", map[string]string{"KeyId": f.Key, "Plaintext": fixturePlaintext, "EncryptionContext": fixtureContext}, &enc)
	f.Blob, f.Version = enc.CiphertextBlob, enc.KeyVersionId
	f.must(t, "Encrypt", map[string]string{"KeyId": f.Disabled, "Plaintext": fixturePlaintext, "EncryptionContext": fixtureContext}, &enc)
	f.DisabledBlob = enc.CiphertextBlob
	f.must(t, "DisableKey", map[string]string{"KeyId": f.Disabled}, nil)
	return f
}

// expand replaces the placeholders in the values of params.
func (f *fixture) expand(params map[string]string) map[string]string {
	r := strings.NewReplacer(
		"$KEY2", f.Key2,
		"$KEYARN", f.keyArn(f.Key),
		"$KEY", f.Key,
		"$ALIAS", fixtureAlias,
		"$DISABLED_ALIAS", fixtureDisabledAlias,
		"$DISABLED_BLOB", f.DisabledBlob,
		"$DISABLED", f.Disabled,
		"$VERSION", f.Version,
		"$BLOB", f.Blob,
		"$ACCOUNT", f.AccountID,
		"$INSTANCE", f.InstanceID,
	)
	out := make(map[string]string, len(params))
	for k, v := range params {
		out[k] = r.Replace(v)
	}
	return out
}

// with returns base plus the extra parameters (extra wins).
func with(base map[string]string, extra ...string) map[string]string {
	out := make(map[string]string, len(base)+len(extra)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = extra[i+1]
	}
	return out
}

// without returns base minus the named parameters.
func without(base map[string]string, names ...string) map[string]string {
	out := with(base)
	for _, n := range names {
		delete(out, n)
	}
	return out
}

type errCase struct {
	name   string
	action string
	params map[string]string
	status int
	code   string
}

// Codes and statuses as errors.go maps them.
const (
	missingParam   = "MissingParameter"
	invalidParam   = "InvalidParameter"
	keyNotFound    = "Forbidden.KeyNotFound"
	aliasNotFound  = "Forbidden.AliasNotFound"
	disabledCode   = "Rejected.Disabled"
	unsupportedOp  = "Rejected.UnsupportedOperation"
	invalidCipher  = "InvalidCiphertext"
	resourceAbsent = "Forbidden.ResourceNotFound"
	limitExceeded  = "Rejected.LimitExceeded"
	noPermission   = "Forbidden.NoPermission"
)

// keyRefCases are the ways a KeyId-like parameter can be wrong, for an
// action whose other parameters (base) are valid.
func keyRefCases(action, param string, base map[string]string) []errCase {
	otherAccount := "acs:kms:local:1999999999999999:key/$KEY"
	otherRegion := "acs:kms:cn-hangzhou:$ACCOUNT:key/$KEY"
	return []errCase{
		{action + "/missing " + param, action, without(base, param), 400, missingParam},
		{action + "/unknown key id", action, with(base, param, uuid.NewString()), 404, keyNotFound},
		{action + "/unknown alias", action, with(base, param, "alias/no-such-alias"), 404, aliasNotFound},
		// Another account's keys: a denial that does not say whether the
		// key exists (issue 5).
		{action + "/ARN of another account", action, with(base, param, otherAccount), 403, noPermission},
		{action + "/ARN of another region", action, with(base, param, otherRegion), 404, keyNotFound},
		{action + "/ARN of another account's alias", action, with(base, param, "acs:kms:local:1999999999999999:"+fixtureAlias), 403, noPermission},
		{action + "/malformed ARN", action, with(base, param, "acs:kms:local"), 400, invalidParam},
		{action + "/ARN naming neither key nor alias", action, with(base, param, "acs:kms:local:$ACCOUNT:secret/x"), 400, invalidParam},
	}
}

// pageCases are the ways PageNumber and PageSize can be wrong.
func pageCases(action string, base map[string]string) []errCase {
	return []errCase{
		{action + "/PageSize not an integer", action, with(base, "PageSize", "ten"), 400, invalidParam},
		{action + "/PageSize 0", action, with(base, "PageSize", "0"), 400, invalidParam},
		{action + "/PageSize 101", action, with(base, "PageSize", "101"), 400, invalidParam},
		{action + "/PageSize negative", action, with(base, "PageSize", "-1"), 400, invalidParam},
		{action + "/PageNumber 0", action, with(base, "PageNumber", "0"), 400, invalidParam},
		{action + "/PageNumber not an integer", action, with(base, "PageNumber", "1.5"), 400, invalidParam},
	}
}

// contextCases are the ways an encryption context parameter can be wrong.
func contextCases(action, param string, base map[string]string) []errCase {
	return []errCase{
		{action + "/" + param + " not JSON", action, with(base, param, `{"purpose":`), 400, invalidParam},
		{action + "/" + param + " a JSON array", action, with(base, param, `["a"]`), 400, invalidParam},
		{action + "/" + param + " with a number value", action, with(base, param, `{"n":1}`), 400, invalidParam},
		{action + "/" + param + " null", action, with(base, param, `null`), 400, invalidParam},
		{action + "/" + param + " two objects", action, with(base, param, `{"a":"b"}{"c":"d"}`), 400, invalidParam},
		{action + "/" + param + " over 8192 characters", action, with(base, param, `{"a":"`+strings.Repeat("x", 8192)+`"}`), 400, invalidParam},
	}
}

// tagsJSON renders n tags.
func tagsJSON(n int) string {
	tags := make([]map[string]string, n)
	for i := range tags {
		tags[i] = map[string]string{"TagKey": fmt.Sprintf("k%02d", i), "TagValue": "v"}
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

func oneTag(key, value string) string {
	b, _ := json.Marshal([]map[string]string{{"TagKey": key, "TagValue": value}})
	return string(b)
}

func validationCases() []errCase {
	var cases []errCase
	add := func(cs ...errCase) { cases = append(cases, cs...) }
	long := func(n int) string { return strings.Repeat("a", n) }

	// CreateKey.
	ck := map[string]string{"DKMSInstanceId": "$INSTANCE"}
	add(
		errCase{"CreateKey/Description over 8192 characters", "CreateKey", with(ck, "Description", long(8193)), 400, invalidParam},
		errCase{"CreateKey/Description of 8192 multi-byte characters plus one", "CreateKey", with(ck, "Description", strings.Repeat("é", 8193)), 400, invalidParam},
		errCase{"CreateKey/KeySpec unknown", "CreateKey", with(ck, "KeySpec", "Aliyun_AES_512"), 400, invalidParam},
		errCase{"CreateKey/KeyUsage SIGN/VERIFY for AES", "CreateKey", with(ck, "KeyUsage", "SIGN/VERIFY"), 400, invalidParam},
		errCase{"CreateKey/Origin lower case", "CreateKey", with(ck, "Origin", "aliyun_kms"), 400, invalidParam},
		errCase{"CreateKey/Origin EXTERNAL for an RSA key", "CreateKey", with(ck, "Origin", "EXTERNAL", "KeySpec", "RSA_2048"), 400, invalidParam},
		errCase{"CreateKey/EC key for encryption", "CreateKey", with(ck, "KeySpec", "EC_P256", "KeyUsage", "ENCRYPT/DECRYPT"), 400, invalidParam},
		errCase{"CreateKey/AES_128 outside an HSM", "CreateKey", with(ck, "KeySpec", "Aliyun_AES_128"), 400, invalidParam},
		errCase{"CreateKey/rotation of an RSA key", "CreateKey", with(ck, "KeySpec", "RSA_2048", "EnableAutomaticRotation", "true", "RotationInterval", "30d"), 400, invalidParam},
		errCase{"CreateKey/Policy not a document", "CreateKey", with(ck, "Policy", `{"Version":"2"}`), 400, invalidParam},
		errCase{"CreateKey/ProtectionLevel HSM without instance", "CreateKey", map[string]string{"ProtectionLevel": "HSM"}, 400, invalidParam},
		errCase{"CreateKey/EnableAutomaticRotation not a boolean", "CreateKey", with(ck, "EnableAutomaticRotation", "yes"), 400, invalidParam},
		errCase{"CreateKey/rotation without RotationInterval", "CreateKey", with(ck, "EnableAutomaticRotation", "true"), 400, invalidParam},
		errCase{"CreateKey/RotationInterval 6d", "CreateKey", with(ck, "EnableAutomaticRotation", "true", "RotationInterval", "6d"), 400, invalidParam},
		errCase{"CreateKey/RotationInterval 366d", "CreateKey", with(ck, "EnableAutomaticRotation", "true", "RotationInterval", "366d"), 400, invalidParam},
		errCase{"CreateKey/RotationInterval not a duration", "CreateKey", with(ck, "EnableAutomaticRotation", "true", "RotationInterval", "weekly"), 400, invalidParam},
		errCase{"CreateKey/unknown DKMSInstanceId", "CreateKey", with(ck, "DKMSInstanceId", "kst-nosuchinstance"), 404, resourceAbsent},
	)

	// DescribeKey, EnableKey, DisableKey, ListResourceTags: KeyId only.
	for _, a := range []string{"DescribeKey", "EnableKey", "DisableKey", "ListResourceTags", "CreateKeyVersion"} {
		add(keyRefCases(a, "KeyId", map[string]string{"KeyId": "$KEY"})...)
	}

	// ListKeys, ListAliases.
	add(pageCases("ListKeys", nil)...)
	add(errCase{"ListKeys/Filters unknown key", "ListKeys", map[string]string{"Filters": `[{"Key":"Color","Values":["red"]}]`}, 400, invalidParam})
	add(errCase{"ListKeys/Filters not JSON", "ListKeys", map[string]string{"Filters": `KeyState=Enabled`}, 400, invalidParam})
	add(errCase{"ListKeys/Filters without values", "ListKeys", map[string]string{"Filters": `[{"Key":"KeyState","Values":[]}]`}, 400, invalidParam})
	add(pageCases("ListAliases", nil)...)

	// UpdateKeyDescription.
	ukd := map[string]string{"KeyId": "$KEY", "Description": "new"}
	add(keyRefCases("UpdateKeyDescription", "KeyId", ukd)...)
	add(
		errCase{"UpdateKeyDescription/missing Description", "UpdateKeyDescription", without(ukd, "Description"), 400, missingParam},
		errCase{"UpdateKeyDescription/Description over 8192 characters", "UpdateKeyDescription", with(ukd, "Description", long(8193)), 400, invalidParam},
	)

	// CreateKeyVersion on a disabled key.
	add(
		errCase{"CreateKeyVersion/disabled key", "CreateKeyVersion", map[string]string{"KeyId": "$DISABLED"}, 409, disabledCode},
		errCase{"CreateKeyVersion/disabled key by alias", "CreateKeyVersion", map[string]string{"KeyId": "$DISABLED_ALIAS"}, 409, disabledCode},
	)

	// ListKeyVersions.
	lkv := map[string]string{"KeyId": "$KEY"}
	add(keyRefCases("ListKeyVersions", "KeyId", lkv)...)
	add(pageCases("ListKeyVersions", lkv)...)

	// DescribeKeyVersion.
	dkv := map[string]string{"KeyId": "$KEY", "KeyVersionId": "$VERSION"}
	add(keyRefCases("DescribeKeyVersion", "KeyId", dkv)...)
	add(
		errCase{"DescribeKeyVersion/missing KeyVersionId", "DescribeKeyVersion", without(dkv, "KeyVersionId"), 400, missingParam},
		errCase{"DescribeKeyVersion/unknown KeyVersionId", "DescribeKeyVersion", with(dkv, "KeyVersionId", uuid.NewString()), 404, resourceAbsent},
		errCase{"DescribeKeyVersion/version of another key", "DescribeKeyVersion", with(dkv, "KeyId", "$KEY2"), 404, resourceAbsent},
	)

	// Encrypt.
	enc := map[string]string{"KeyId": "$KEY", "Plaintext": fixturePlaintext, "EncryptionContext": fixtureContext}
	add(keyRefCases("Encrypt", "KeyId", enc)...)
	add(contextCases("Encrypt", "EncryptionContext", enc)...)
	add(
		errCase{"Encrypt/missing Plaintext", "Encrypt", without(enc, "Plaintext"), 400, missingParam},
		errCase{"Encrypt/Plaintext of 6145 bytes", "Encrypt", with(enc, "Plaintext", long(6145)), 400, invalidParam},
		errCase{"Encrypt/disabled key", "Encrypt", with(enc, "KeyId", "$DISABLED"), 409, disabledCode},
		errCase{"Encrypt/disabled key by alias", "Encrypt", with(enc, "KeyId", "$DISABLED_ALIAS"), 409, disabledCode},
		errCase{"Encrypt/DryRun not a boolean", "Encrypt", with(enc, "DryRun", "perhaps"), 400, invalidParam},
		errCase{"Encrypt/DryRun true", "Encrypt", with(enc, "DryRun", "true"), 412, "DryRunOperationError"},
	)

	// Decrypt.
	dec := map[string]string{"CiphertextBlob": "$BLOB", "EncryptionContext": fixtureContext}
	add(contextCases("Decrypt", "EncryptionContext", dec)...)
	add(
		errCase{"Decrypt/missing CiphertextBlob", "Decrypt", without(dec, "CiphertextBlob"), 400, missingParam},
		errCase{"Decrypt/CiphertextBlob not Base64", "Decrypt", with(dec, "CiphertextBlob", "!!not base64!!"), 400, invalidParam},
		errCase{"Decrypt/CiphertextBlob of one Base64 character", "Decrypt", with(dec, "CiphertextBlob", "Q"), 400, invalidParam},
		errCase{"Decrypt/CiphertextBlob too short", "Decrypt", with(dec, "CiphertextBlob", "AAAA"), 400, invalidCipher},
		errCase{"Decrypt/CiphertextBlob of random bytes", "Decrypt", with(dec, "CiphertextBlob", base64.StdEncoding.EncodeToString(randomBytes(80))), 400, invalidCipher},
		errCase{"Decrypt/wrong EncryptionContext", "Decrypt", with(dec, "EncryptionContext", `{"purpose":"other"}`), 400, invalidCipher},
		errCase{"Decrypt/missing EncryptionContext", "Decrypt", without(dec, "EncryptionContext"), 400, invalidCipher},
		errCase{"Decrypt/key disabled", "Decrypt", with(dec, "CiphertextBlob", "$DISABLED_BLOB"), 409, disabledCode},
		errCase{"Decrypt/DryRun true", "Decrypt", with(dec, "DryRun", "true"), 412, "DryRunOperationError"},
	)

	// GenerateDataKey and GenerateDataKeyWithoutPlaintext.
	for _, a := range []string{"GenerateDataKey", "GenerateDataKeyWithoutPlaintext"} {
		gdk := map[string]string{"KeyId": "$KEY", "EncryptionContext": fixtureContext}
		add(keyRefCases(a, "KeyId", gdk)...)
		add(contextCases(a, "EncryptionContext", gdk)...)
		add(
			errCase{a + "/NumberOfBytes 0", a, with(gdk, "NumberOfBytes", "0"), 400, invalidParam},
			errCase{a + "/NumberOfBytes 1025", a, with(gdk, "NumberOfBytes", "1025"), 400, invalidParam},
			errCase{a + "/NumberOfBytes not an integer", a, with(gdk, "NumberOfBytes", "32 bytes"), 400, invalidParam},
			errCase{a + "/KeySpec unknown", a, with(gdk, "KeySpec", "AES_512"), 400, invalidParam},
			errCase{a + "/KeySpec unknown with NumberOfBytes", a, with(gdk, "KeySpec", "AES_512", "NumberOfBytes", "16"), 400, invalidParam},
			errCase{a + "/disabled key", a, with(gdk, "KeyId", "$DISABLED"), 409, disabledCode},
			errCase{a + "/DryRun true", a, with(gdk, "DryRun", "true"), 412, "DryRunOperationError"},
		)
	}

	// ReEncrypt.
	re := map[string]string{"CiphertextBlob": "$BLOB", "SourceEncryptionContext": fixtureContext, "DestinationKeyId": "$KEY2", "DestinationEncryptionContext": `{"to":"key2"}`}
	add(keyRefCases("ReEncrypt", "DestinationKeyId", re)...)
	add(contextCases("ReEncrypt", "SourceEncryptionContext", re)...)
	add(contextCases("ReEncrypt", "DestinationEncryptionContext", re)...)
	add(
		errCase{"ReEncrypt/missing CiphertextBlob", "ReEncrypt", without(re, "CiphertextBlob"), 400, missingParam},
		errCase{"ReEncrypt/CiphertextBlob not Base64", "ReEncrypt", with(re, "CiphertextBlob", "%%%"), 400, invalidParam},
		errCase{"ReEncrypt/wrong SourceEncryptionContext", "ReEncrypt", with(re, "SourceEncryptionContext", `{"purpose":"other"}`), 400, invalidCipher},
		errCase{"ReEncrypt/source key disabled", "ReEncrypt", with(re, "CiphertextBlob", "$DISABLED_BLOB"), 409, disabledCode},
		errCase{"ReEncrypt/destination key disabled", "ReEncrypt", with(re, "DestinationKeyId", "$DISABLED"), 409, disabledCode},
		errCase{"ReEncrypt/SourceKeyId (asymmetric source)", "ReEncrypt", with(re, "SourceKeyId", "$KEY"), 400, unsupportedOp},
		errCase{"ReEncrypt/SourceEncryptionAlgorithm", "ReEncrypt", with(re, "SourceEncryptionAlgorithm", "RSAES_OAEP_SHA_256"), 400, unsupportedOp},
		errCase{"ReEncrypt/DryRun true", "ReEncrypt", with(re, "DryRun", "true"), 412, "DryRunOperationError"},
	)

	// Alias names, for CreateAlias, UpdateAlias and DeleteAlias.
	badAliases := []struct{ name, alias string }{
		{"reserved prefix alias/acs/", "alias/acs/x"},
		{"alias/ alone", "alias/"},
		{"256 characters after alias/", "alias/" + long(256)},
		{"no alias/ prefix", "fixture"},
		{"upper-case prefix", "ALIAS/x"},
		{"a space", "alias/a b"},
		{"a dot", "alias/a.b"},
		{"a colon", "alias/a:b"},
		{"non-ASCII letter", "alias/ключ"},
		{"a newline", "alias/a\nb"},
	}
	ca := map[string]string{"AliasName": "alias/new-alias", "KeyId": "$KEY"}
	add(keyRefCases("CreateAlias", "KeyId", ca)...)
	add(
		errCase{"CreateAlias/missing AliasName", "CreateAlias", without(ca, "AliasName"), 400, missingParam},
		errCase{"CreateAlias/duplicate alias", "CreateAlias", with(ca, "AliasName", fixtureAlias, "KeyId", "$KEY2"), 400, "AliasAlreadyExists"},
		errCase{"CreateAlias/duplicate alias for the same key", "CreateAlias", with(ca, "AliasName", fixtureAlias), 400, "AliasAlreadyExists"},
	)
	ua := map[string]string{"AliasName": fixtureAlias, "KeyId": "$KEY2"}
	add(keyRefCases("UpdateAlias", "KeyId", ua)...)
	add(
		errCase{"UpdateAlias/missing AliasName", "UpdateAlias", without(ua, "AliasName"), 400, missingParam},
		errCase{"UpdateAlias/AliasName unknown", "UpdateAlias", with(ua, "AliasName", "alias/no-such-alias"), 404, aliasNotFound},
	)
	da := map[string]string{"AliasName": fixtureAlias}
	add(
		errCase{"DeleteAlias/missing AliasName", "DeleteAlias", nil, 400, missingParam},
		errCase{"DeleteAlias/AliasName unknown", "DeleteAlias", with(da, "AliasName", "alias/no-such-alias"), 404, aliasNotFound},
	)
	for _, b := range badAliases {
		add(
			errCase{"CreateAlias/AliasName " + b.name, "CreateAlias", with(ca, "AliasName", b.alias), 400, invalidParam},
			errCase{"UpdateAlias/AliasName " + b.name, "UpdateAlias", with(ua, "AliasName", b.alias), 400, invalidParam},
			errCase{"DeleteAlias/AliasName " + b.name, "DeleteAlias", with(da, "AliasName", b.alias), 400, invalidParam},
		)
	}

	// ListAliasesByKeyId.
	lab := map[string]string{"KeyId": "$KEY"}
	add(keyRefCases("ListAliasesByKeyId", "KeyId", lab)...)
	add(pageCases("ListAliasesByKeyId", lab)...)

	// TagResource.
	tr := map[string]string{"KeyId": "$KEY", "Tags": oneTag("env", "prod")}
	add(keyRefCases("TagResource", "KeyId", tr)...)
	badTags := []struct{ name, tags string }{
		{"not JSON", `[{"TagKey":"env"`},
		{"an object, not an array", `{"TagKey":"env","TagValue":"prod"}`},
		{"an array of strings", `["env"]`},
		{"21 tags", tagsJSON(21)},
		{"a tag without TagKey", `[{"TagValue":"prod"}]`},
		{"an empty TagKey", oneTag("", "prod")},
		{"key starting aliyun", oneTag("aliyun-owner", "x")},
		{"key starting Aliyun", oneTag("Aliyun", "x")},
		{"key starting acs:", oneTag("acs:owner", "x")},
		{"key starting ACS:", oneTag("ACS:owner", "x")},
		{"key of 129 characters", oneTag(long(129), "x")},
		{"value of 129 characters", oneTag("env", long(129))},
		{"key with #", oneTag("env#1", "x")},
		{"key with a comma", oneTag("a,b", "x")},
		{"value with <", oneTag("env", "<script>")},
		{"value with a quote", oneTag("env", `"`)},
		{"value with a newline", oneTag("env", "a\nb")},
	}
	add(errCase{"TagResource/missing Tags", "TagResource", without(tr, "Tags"), 400, missingParam})
	add(errCase{"TagResource/empty tag array", "TagResource", with(tr, "Tags", "[]"), 400, missingParam})
	for _, b := range badTags {
		add(errCase{"TagResource/Tags " + b.name, "TagResource", with(tr, "Tags", b.tags), 400, invalidParam})
	}

	// UntagResource.
	ut := map[string]string{"KeyId": "$KEY", "TagKeys": `["env"]`}
	add(keyRefCases("UntagResource", "KeyId", ut)...)
	add(
		errCase{"UntagResource/missing TagKeys", "UntagResource", without(ut, "TagKeys"), 400, missingParam},
		errCase{"UntagResource/TagKeys not JSON", "UntagResource", with(ut, "TagKeys", `["env"`), 400, invalidParam},
		errCase{"UntagResource/TagKeys an object", "UntagResource", with(ut, "TagKeys", `{"env":1}`), 400, invalidParam},
		errCase{"UntagResource/21 TagKeys", "UntagResource", with(ut, "TagKeys", `["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]`), 400, invalidParam},
		errCase{"UntagResource/an empty TagKey", "UntagResource", with(ut, "TagKeys", `[""]`), 400, invalidParam},
		errCase{"UntagResource/TagKey of 129 characters", "UntagResource", with(ut, "TagKeys", `["`+long(129)+`"]`), 400, invalidParam},
	)

	// The action itself.
	add(
		errCase{"unknown action", "CreateCertificateAuthority", map[string]string{"Subject": "CN=x"}, 404, "InvalidAction.NotFound"},
		errCase{"action of another API version's name in lower case", "encrypt", enc, 404, "InvalidAction.NotFound"},
	)
	return cases
}

// TestActions_ValidationErrors sends every invalid request in the table and
// checks the answer's status, code and format, and that the catalogue did not
// change at all.
func TestActions_ValidationErrors(t *testing.T) {
	f := newFixture(t)
	cases := validationCases()
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
	// Every action in the table has at least one error case.
	for _, a := range allActions {
		found := false
		for _, tc := range cases {
			found = found || tc.action == a
		}
		if !found {
			t.Errorf("no validation case for %s", a)
		}
	}
}

// allActions is api.actionTable's key set; TestActions_HappyPath fails if
// an action is missing from it (an unknown action answers 404).
var allActions = []string{
	"CreateKey", "DescribeKey", "ListKeys", "UpdateKeyDescription", "EnableKey", "DisableKey",
	"CreateKeyVersion", "ListKeyVersions", "DescribeKeyVersion",
	"Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt",
	"CreateAlias", "UpdateAlias", "DeleteAlias", "ListAliases", "ListAliasesByKeyId",
	"TagResource", "UntagResource", "ListResourceTags",
}

// TestActions_StateLimits covers the limits only reachable through state:
// the 21st tag on a key, the 51st version, a second default key. The key
// carries 20 tags, for which FSM.Hash is unstable, so "nothing changed" is
// checked on the canonical catalogue instead.
func TestActions_StateLimits(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "limits")

	t.Run("21st tag", func(t *testing.T) {
		tn.must(t, "TagResource", map[string]string{"KeyId": key, "Tags": tagsJSON(20)}, nil)
		before := tn.canonical(t)
		_, err := tn.call(t, "TagResource", map[string]string{"KeyId": key, "Tags": oneTag("one-more", "x")})
		wantAPIError(t, err, 400, limitExceeded)
		if tn.canonical(t) != before {
			t.Error("the catalogue changed")
		}
		// Overwriting an existing tag's value is not a new tag.
		tn.must(t, "TagResource", map[string]string{"KeyId": key, "Tags": oneTag("k00", "new")}, nil)
	})

	t.Run("51st version", func(t *testing.T) {
		for range 49 {
			tn.must(t, "CreateKeyVersion", map[string]string{"KeyId": key}, nil)
		}
		before := tn.canonical(t)
		_, err := tn.call(t, "CreateKeyVersion", map[string]string{"KeyId": key})
		wantAPIError(t, err, 400, limitExceeded)
		if tn.canonical(t) != before {
			t.Error("the catalogue changed")
		}
	})

	t.Run("second default key", func(t *testing.T) {
		tn.must(t, "CreateKey", nil, nil)
		before := tn.canonical(t)
		_, err := tn.call(t, "CreateKey", nil)
		wantAPIError(t, err, 400, limitExceeded)
		if tn.canonical(t) != before {
			t.Error("the catalogue changed")
		}
	})
}

// TestActions_MissingAction: a signed request that names no action.
func TestActions_MissingAction(t *testing.T) {
	tn := startNode(t)
	before := tn.hash()
	_, err := tn.call(t, "", nil)
	wantAPIError(t, err, 400, missingParam)
	if tn.hash() != before {
		t.Error("the catalogue changed")
	}
}

// TestActions_UnsignedUnknownAction: authentication comes first, so an
// unsigned request learns nothing about which actions exist.
func TestActions_UnsignedUnknownAction(t *testing.T) {
	tn := startNode(t)
	resp, err := http.Post(tn.Endpoint()+"/?Action=CreateCertificate", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 400 || body.Code != "IncompleteSignature" {
		t.Errorf("got HTTP %d %s, want 400 IncompleteSignature", resp.StatusCode, body.Code)
	}
}
