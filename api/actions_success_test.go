package api_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/google/uuid"

	"github.com/raftkms/raftkms/signature"
)

// happy performs a successful action, decodes its answer strictly into the
// SDK's response struct out, requires every field of out to be present
// (except optional ones), and checks RequestId and, for writes, X-Kms-Index.
func (tn *testNode) happy(t *testing.T, action string, params map[string]string, write bool, out any, optional ...string) {
	t.Helper()
	before := tn.canonical(t)
	resp := tn.must(t, action, params, nil)
	decodeStrict(t, resp.Body, out)
	requireSet(t, out, optional...)
	if resp.RequestID == "" {
		t.Errorf("%s: no RequestId", action)
	}
	if write && resp.Index == 0 {
		t.Errorf("%s: a write without %s", action, "X-Kms-Index")
	}
	if !write {
		if resp.Index != 0 {
			t.Errorf("%s: a read answered with X-Kms-Index %d", action, resp.Index)
		}
		if tn.canonical(t) != before {
			t.Errorf("%s changed the catalogue", action)
		}
	}
}

func checkDate(t *testing.T, name string, v *string) {
	t.Helper()
	if _, err := time.Parse(signature.TimeFormat, tea.StringValue(v)); err != nil {
		t.Errorf("%s = %q, want %s", name, tea.StringValue(v), signature.TimeFormat)
	}
}

func checkUUID(t *testing.T, name string, v *string) {
	t.Helper()
	if _, err := uuid.Parse(tea.StringValue(v)); err != nil {
		t.Errorf("%s = %q, want a UUID", name, tea.StringValue(v))
	}
}

func wantEq[T comparable](t *testing.T, name string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is not Base64: %v", s, err)
	}
	return b
}

// TestActions_HappyPath runs every action once with valid parameters and
// checks the answer against the SDK's response structs and the service's
// semantics.
func TestActions_HappyPath(t *testing.T) {
	tn := startNode(t)
	covered := map[string]bool{}
	run := func(action string, fn func(t *testing.T)) {
		covered[action] = true
		t.Run(action, fn)
	}
	var key, key2 string

	run("CreateKey", func(t *testing.T) {
		var out kmssdk.CreateKeyResponseBody
		tn.happy(t, "CreateKey", map[string]string{
			"DKMSInstanceId": tn.InstanceID, "Description": "happy path ü " + strings.Repeat("x", 8000),
			"KeySpec": "Aliyun_AES_256", "KeyUsage": "ENCRYPT/DECRYPT", "Origin": "Aliyun_KMS", "ProtectionLevel": "SOFTWARE",
			"EnableAutomaticRotation": "true", "RotationInterval": "30d",
		}, true, &out)
		m := out.KeyMetadata
		key = tea.StringValue(m.KeyId)
		checkUUID(t, "KeyId", m.KeyId)
		wantEq(t, "Arn", tea.StringValue(m.Arn), tn.keyArn(key))
		wantEq(t, "KeyState", tea.StringValue(m.KeyState), "Enabled")
		wantEq(t, "KeySpec", tea.StringValue(m.KeySpec), "Aliyun_AES_256")
		wantEq(t, "KeyUsage", tea.StringValue(m.KeyUsage), "ENCRYPT/DECRYPT")
		wantEq(t, "Origin", tea.StringValue(m.Origin), "Aliyun_KMS")
		wantEq(t, "ProtectionLevel", tea.StringValue(m.ProtectionLevel), "SOFTWARE")
		wantEq(t, "DKMSInstanceId", tea.StringValue(m.DKMSInstanceId), tn.InstanceID)
		wantEq(t, "Creator", tea.StringValue(m.Creator), tn.AccountID)
		wantEq(t, "AutomaticRotation", tea.StringValue(m.AutomaticRotation), "Enabled")
		wantEq(t, "RotationInterval", tea.StringValue(m.RotationInterval), "2592000s")
		wantEq(t, "Description", tea.StringValue(m.Description), "happy path ü "+strings.Repeat("x", 8000))
		checkUUID(t, "PrimaryKeyVersion", m.PrimaryKeyVersion)
		checkDate(t, "CreationDate", m.CreationDate)
		checkDate(t, "LastRotationDate", m.LastRotationDate)
		checkDate(t, "NextRotationDate", m.NextRotationDate)
		created, _ := time.Parse(signature.TimeFormat, tea.StringValue(m.CreationDate))
		next, _ := time.Parse(signature.TimeFormat, tea.StringValue(m.NextRotationDate))
		wantEq(t, "NextRotationDate - CreationDate", next.Sub(created).Round(time.Second), 30*24*time.Hour)

		// Defaults, and the account's default key (no instance).
		var def kmssdk.CreateKeyResponseBody
		tn.happy(t, "CreateKey", nil, true, &def)
		wantEq(t, "default KeySpec", tea.StringValue(def.KeyMetadata.KeySpec), "Aliyun_AES_256")
		wantEq(t, "default DKMSInstanceId", tea.StringValue(def.KeyMetadata.DKMSInstanceId), "")
		wantEq(t, "default AutomaticRotation", tea.StringValue(def.KeyMetadata.AutomaticRotation), "Disabled")
		wantEq(t, "default RotationInterval", tea.StringValue(def.KeyMetadata.RotationInterval), "")

		// A description of exactly 8192 characters is accepted.
		var limit kmssdk.CreateKeyResponseBody
		tn.happy(t, "CreateKey", map[string]string{"DKMSInstanceId": tn.InstanceID, "Description": strings.Repeat("é", 8192)}, true, &limit)
		key2 = tea.StringValue(limit.KeyMetadata.KeyId)
	})
	if key == "" || key2 == "" {
		t.Fatal("no keys to continue with")
	}

	run("DescribeKey", func(t *testing.T) {
		var out kmssdk.DescribeKeyResponseBody
		tn.happy(t, "DescribeKey", map[string]string{"KeyId": key}, false, &out)
		wantEq(t, "KeyId", tea.StringValue(out.KeyMetadata.KeyId), key)
		wantEq(t, "DeletionProtection", tea.StringValue(out.KeyMetadata.DeletionProtection), "Disabled")
	})

	run("ListKeys", func(t *testing.T) {
		var out kmssdk.ListKeysResponseBody
		tn.happy(t, "ListKeys", map[string]string{"PageNumber": "2", "PageSize": "1"}, false, &out)
		wantEq(t, "TotalCount", tea.Int32Value(out.TotalCount), 3)
		wantEq(t, "PageNumber", tea.Int32Value(out.PageNumber), 2)
		wantEq(t, "PageSize", tea.Int32Value(out.PageSize), 1)
		if len(out.Keys.Key) != 1 {
			t.Fatalf("page of size 1 holds %d keys", len(out.Keys.Key))
		}
		k := out.Keys.Key[0]
		wantEq(t, "KeyArn", tea.StringValue(k.KeyArn), tn.keyArn(tea.StringValue(k.KeyId)))

		// Defaults, and a page past the end.
		var all kmssdk.ListKeysResponseBody
		tn.happy(t, "ListKeys", nil, false, &all)
		wantEq(t, "default PageNumber", tea.Int32Value(all.PageNumber), 1)
		wantEq(t, "default PageSize", tea.Int32Value(all.PageSize), 10)
		wantEq(t, "keys on the default page", len(all.Keys.Key), 3)
		var past kmssdk.ListKeysResponseBody
		decodeStrict(t, tn.must(t, "ListKeys", map[string]string{"PageNumber": "9", "PageSize": "100"}, nil).Body, &past)
		if past.Keys == nil || len(past.Keys.Key) != 0 || tea.Int32Value(past.TotalCount) != 3 {
			t.Errorf("page past the end: %+v", past)
		}
	})

	run("UpdateKeyDescription", func(t *testing.T) {
		var out kmssdk.UpdateKeyDescriptionResponseBody
		tn.happy(t, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": "renamed"}, true, &out)
		var d struct{ KeyMetadata struct{ Description string } }
		tn.must(t, "DescribeKey", map[string]string{"KeyId": key}, &d)
		wantEq(t, "Description", d.KeyMetadata.Description, "renamed")
		// An empty description is a value, not a missing parameter.
		tn.happy(t, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": ""}, true, &out)
		tn.must(t, "DescribeKey", map[string]string{"KeyId": key}, &d)
		wantEq(t, "Description", d.KeyMetadata.Description, "")
	})

	run("DisableKey", func(t *testing.T) {
		var out kmssdk.DisableKeyResponseBody
		tn.happy(t, "DisableKey", map[string]string{"KeyId": key2}, true, &out)
		var d struct{ KeyMetadata struct{ KeyState string } }
		tn.must(t, "DescribeKey", map[string]string{"KeyId": key2}, &d)
		wantEq(t, "KeyState", d.KeyMetadata.KeyState, "Disabled")
	})

	run("EnableKey", func(t *testing.T) {
		var out kmssdk.EnableKeyResponseBody
		tn.happy(t, "EnableKey", map[string]string{"KeyId": key2}, true, &out)
		var d struct{ KeyMetadata struct{ KeyState string } }
		tn.must(t, "DescribeKey", map[string]string{"KeyId": key2}, &d)
		wantEq(t, "KeyState", d.KeyMetadata.KeyState, "Enabled")
	})

	// A blob made under the first version, to decrypt after rotation.
	var oldBlob, oldVersion string
	{
		var e struct{ CiphertextBlob, KeyVersionId string }
		tn.must(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "b2xk"}, &e)
		oldBlob, oldVersion = e.CiphertextBlob, e.KeyVersionId
	}
	var newVersion string

	run("CreateKeyVersion", func(t *testing.T) {
		var out kmssdk.CreateKeyVersionResponseBody
		tn.happy(t, "CreateKeyVersion", map[string]string{"KeyId": key}, true, &out)
		newVersion = tea.StringValue(out.KeyVersion.KeyVersionId)
		checkUUID(t, "KeyVersionId", out.KeyVersion.KeyVersionId)
		wantEq(t, "KeyId", tea.StringValue(out.KeyVersion.KeyId), key)
		checkDate(t, "CreationDate", out.KeyVersion.CreationDate)
		var d struct {
			KeyMetadata struct{ PrimaryKeyVersion string }
		}
		tn.must(t, "DescribeKey", map[string]string{"KeyId": key}, &d)
		wantEq(t, "PrimaryKeyVersion", d.KeyMetadata.PrimaryKeyVersion, newVersion)
	})

	run("ListKeyVersions", func(t *testing.T) {
		var out kmssdk.ListKeyVersionsResponseBody
		tn.happy(t, "ListKeyVersions", map[string]string{"KeyId": key, "PageSize": "100"}, false, &out)
		wantEq(t, "TotalCount", tea.Int32Value(out.TotalCount), 2)
		if len(out.KeyVersions.KeyVersion) != 2 {
			t.Fatalf("%d versions listed", len(out.KeyVersions.KeyVersion))
		}
		wantEq(t, "oldest first", tea.StringValue(out.KeyVersions.KeyVersion[0].KeyVersionId), oldVersion)
		wantEq(t, "newest last", tea.StringValue(out.KeyVersions.KeyVersion[1].KeyVersionId), newVersion)
	})

	run("DescribeKeyVersion", func(t *testing.T) {
		var out kmssdk.DescribeKeyVersionResponseBody
		tn.happy(t, "DescribeKeyVersion", map[string]string{"KeyId": key, "KeyVersionId": oldVersion}, false, &out)
		wantEq(t, "KeyVersionId", tea.StringValue(out.KeyVersion.KeyVersionId), oldVersion)
		wantEq(t, "KeyId", tea.StringValue(out.KeyVersion.KeyId), key)
	})

	var blob string
	maxPlain := base64.StdEncoding.EncodeToString(randomBytes(4608)) // 6144 characters
	run("Encrypt", func(t *testing.T) {
		var out kmssdk.EncryptResponseBody
		tn.happy(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": maxPlain, "EncryptionContext": `{"b":"2","a":"1"}`}, false, &out)
		blob = tea.StringValue(out.CiphertextBlob)
		wantEq(t, "KeyId", tea.StringValue(out.KeyId), key)
		wantEq(t, "KeyVersionId (the primary)", tea.StringValue(out.KeyVersionId), newVersion)
		decodeB64(t, blob)
	})

	run("Decrypt", func(t *testing.T) {
		var out kmssdk.DecryptResponseBody
		// The context's key order does not matter.
		tn.happy(t, "Decrypt", map[string]string{"CiphertextBlob": blob, "EncryptionContext": `{"a":"1","b":"2"}`}, false, &out)
		wantEq(t, "Plaintext round trip", tea.StringValue(out.Plaintext), maxPlain)
		wantEq(t, "KeyId", tea.StringValue(out.KeyId), key)
		wantEq(t, "KeyVersionId", tea.StringValue(out.KeyVersionId), newVersion)
		// A blob of the previous version still opens after rotation.
		var old kmssdk.DecryptResponseBody
		tn.happy(t, "Decrypt", map[string]string{"CiphertextBlob": oldBlob}, false, &old)
		wantEq(t, "old Plaintext", tea.StringValue(old.Plaintext), "b2xk")
		wantEq(t, "old KeyVersionId", tea.StringValue(old.KeyVersionId), oldVersion)
	})

	run("GenerateDataKey", func(t *testing.T) {
		for _, tc := range []struct {
			params map[string]string
			size   int
		}{
			{nil, 32},
			{map[string]string{"KeySpec": "AES_128"}, 16},
			{map[string]string{"KeySpec": "AES_256"}, 32},
			{map[string]string{"NumberOfBytes": "1"}, 1},
			{map[string]string{"NumberOfBytes": "1024", "KeySpec": "AES_128"}, 1024},
		} {
			p := with(tc.params, "KeyId", key, "EncryptionContext", `{"dk":"1"}`)
			var out kmssdk.GenerateDataKeyResponseBody
			tn.happy(t, "GenerateDataKey", p, false, &out)
			if got := len(decodeB64(t, tea.StringValue(out.Plaintext))); got != tc.size {
				t.Errorf("%v: data key of %d bytes, want %d", tc.params, got, tc.size)
			}
			wantEq(t, "KeyId", tea.StringValue(out.KeyId), key)
			var d struct{ Plaintext string }
			tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": tea.StringValue(out.CiphertextBlob), "EncryptionContext": `{"dk":"1"}`}, &d)
			wantEq(t, "Decrypt(CiphertextBlob)", d.Plaintext, tea.StringValue(out.Plaintext))
		}
	})

	run("GenerateDataKeyWithoutPlaintext", func(t *testing.T) {
		var out kmssdk.GenerateDataKeyWithoutPlaintextResponseBody
		resp := tn.must(t, "GenerateDataKeyWithoutPlaintext", map[string]string{"KeyId": key, "NumberOfBytes": "24"}, nil)
		decodeStrict(t, resp.Body, &out)
		requireSet(t, &out)
		var raw map[string]any
		json.Unmarshal(resp.Body, &raw)
		if _, ok := raw["Plaintext"]; ok {
			t.Error("the answer carries Plaintext")
		}
		var d struct{ Plaintext string }
		tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": tea.StringValue(out.CiphertextBlob)}, &d)
		if got := len(decodeB64(t, d.Plaintext)); got != 24 {
			t.Errorf("data key of %d bytes, want 24", got)
		}
	})

	run("ReEncrypt", func(t *testing.T) {
		var out kmssdk.ReEncryptResponseBody
		tn.happy(t, "ReEncrypt", map[string]string{
			"CiphertextBlob": blob, "SourceEncryptionContext": `{"a":"1","b":"2"}`,
			"DestinationKeyId": key2, "DestinationEncryptionContext": `{"to":"key2"}`,
		}, false, &out)
		wantEq(t, "KeyId", tea.StringValue(out.KeyId), key2)
		var d struct{ Plaintext, KeyId string }
		tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": tea.StringValue(out.CiphertextBlob), "EncryptionContext": `{"to":"key2"}`}, &d)
		wantEq(t, "Plaintext after ReEncrypt", d.Plaintext, maxPlain)
		wantEq(t, "KeyId after ReEncrypt", d.KeyId, key2)
	})

	longAlias := "alias/" + strings.Repeat("a", 250) + "_/-Z9"
	run("CreateAlias", func(t *testing.T) {
		var out kmssdk.CreateAliasResponseBody
		tn.happy(t, "CreateAlias", map[string]string{"AliasName": longAlias, "KeyId": key}, true, &out)
		tn.happy(t, "CreateAlias", map[string]string{"AliasName": "alias/second", "KeyId": key}, true, &out)
		var e struct{ KeyId string }
		tn.must(t, "Encrypt", map[string]string{"KeyId": longAlias, "Plaintext": "eA=="}, &e)
		wantEq(t, "Encrypt by the new alias: KeyId", e.KeyId, key)
	})

	run("ListAliases", func(t *testing.T) {
		var out kmssdk.ListAliasesResponseBody
		tn.happy(t, "ListAliases", nil, false, &out)
		wantEq(t, "TotalCount", tea.Int32Value(out.TotalCount), 2)
		a := out.Aliases.Alias[0]
		wantEq(t, "AliasArn", tea.StringValue(a.AliasArn), "acs:kms:local:"+tn.AccountID+":"+tea.StringValue(a.AliasName))
		wantEq(t, "KeyId", tea.StringValue(a.KeyId), key)
	})

	run("UpdateAlias", func(t *testing.T) {
		var out kmssdk.UpdateAliasResponseBody
		tn.happy(t, "UpdateAlias", map[string]string{"AliasName": "alias/second", "KeyId": key2}, true, &out)
		var e struct{ KeyId string }
		tn.must(t, "Encrypt", map[string]string{"KeyId": "alias/second", "Plaintext": "eA=="}, &e)
		wantEq(t, "Encrypt by the moved alias: KeyId", e.KeyId, key2)
	})

	run("ListAliasesByKeyId", func(t *testing.T) {
		var out kmssdk.ListAliasesByKeyIdResponseBody
		tn.happy(t, "ListAliasesByKeyId", map[string]string{"KeyId": key2}, false, &out)
		wantEq(t, "TotalCount", tea.Int32Value(out.TotalCount), 1)
		wantEq(t, "AliasName", tea.StringValue(out.Aliases.Alias[0].AliasName), "alias/second")
	})

	run("DeleteAlias", func(t *testing.T) {
		var out kmssdk.DeleteAliasResponseBody
		tn.happy(t, "DeleteAlias", map[string]string{"AliasName": "alias/second"}, true, &out)
		_, err := tn.call(t, "DescribeKey", map[string]string{"KeyId": "alias/second"})
		wantAPIError(t, err, 404, aliasNotFound)
		// The key itself is untouched.
		tn.must(t, "DescribeKey", map[string]string{"KeyId": key2}, nil)
	})

	edgeKey := "Team/A\\b_c-d.e+f=g:h@i ü" + strings.Repeat("k", 104)
	edgeValue := strings.Repeat("v", 128)
	run("TagResource", func(t *testing.T) {
		if n := len([]rune(edgeKey)); n != 128 {
			t.Fatalf("edge key has %d characters", n)
		}
		var out kmssdk.TagResourceResponseBody
		tn.happy(t, "TagResource", map[string]string{"KeyId": key, "Tags": `[{"TagKey":"env","TagValue":"prod"},{"TagKey":"empty"}]`}, true, &out)
		tn.happy(t, "TagResource", map[string]string{"KeyId": key, "Tags": oneTag(edgeKey, edgeValue)}, true, &out)
		tn.happy(t, "TagResource", map[string]string{"KeyId": key, "Tags": oneTag("env", "staging")}, true, &out)
	})

	run("ListResourceTags", func(t *testing.T) {
		var out kmssdk.ListResourceTagsResponseBody
		tn.happy(t, "ListResourceTags", map[string]string{"KeyId": key}, false, &out)
		got := map[string]string{}
		for _, tag := range out.Tags.Tag {
			got[tea.StringValue(tag.TagKey)] = tea.StringValue(tag.TagValue)
			wantEq(t, "Tag.KeyId", tea.StringValue(tag.KeyId), key)
		}
		want := map[string]string{"env": "staging", "empty": "", edgeKey: edgeValue}
		if len(got) != len(want) {
			t.Errorf("tags %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("tag %q = %q, want %q", k, got[k], v)
			}
		}
	})

	run("UntagResource", func(t *testing.T) {
		var out kmssdk.UntagResourceResponseBody
		tn.happy(t, "UntagResource", map[string]string{"KeyId": key, "TagKeys": `["env","not-there"]`}, true, &out)
		var lt struct {
			Tags struct{ Tag []struct{ TagKey string } }
		}
		tn.must(t, "ListResourceTags", map[string]string{"KeyId": key}, &lt)
		if len(lt.Tags.Tag) != 2 {
			t.Errorf("tags after untag: %+v", lt.Tags.Tag)
		}
		for _, tag := range lt.Tags.Tag {
			if tag.TagKey == "env" {
				t.Error("env is still there")
			}
		}
	})

	for _, a := range allActions {
		if !covered[a] {
			t.Errorf("no happy path for %s", a)
		}
	}
}

// TestActions_KeyIdForms: every parameter that names a key accepts the key
// id, an alias, the key's ARN and the alias's ARN, and acts on that key.
func TestActions_KeyIdForms(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "forms")
	other := tn.createKey(t, "other")
	tn.must(t, "CreateAlias", map[string]string{"AliasName": "alias/forms", "KeyId": key}, nil)
	var e struct{ CiphertextBlob, KeyVersionId string }
	tn.must(t, "Encrypt", map[string]string{"KeyId": other, "Plaintext": "eA=="}, &e)
	forms := []struct{ name, ref string }{
		{"key id", key},
		{"alias", "alias/forms"},
		{"key ARN", tn.keyArn(key)},
		{"alias ARN", "acs:kms:local:" + tn.AccountID + ":alias/forms"},
	}
	type action struct {
		name, param string
		params      func(form int) map[string]string
		write       bool
	}
	actions := []action{
		{"DescribeKey", "KeyId", nil, false},
		{"UpdateKeyDescription", "KeyId", func(int) map[string]string { return map[string]string{"Description": "d"} }, true},
		{"DisableKey", "KeyId", nil, true},
		{"EnableKey", "KeyId", nil, true},
		{"CreateKeyVersion", "KeyId", nil, true},
		{"ListKeyVersions", "KeyId", nil, false},
		{"Encrypt", "KeyId", func(int) map[string]string { return map[string]string{"Plaintext": "eA=="} }, false},
		{"GenerateDataKey", "KeyId", nil, false},
		{"GenerateDataKeyWithoutPlaintext", "KeyId", nil, false},
		{"ReEncrypt", "DestinationKeyId", func(int) map[string]string { return map[string]string{"CiphertextBlob": e.CiphertextBlob} }, false},
		{"CreateAlias", "KeyId", func(i int) map[string]string {
			return map[string]string{"AliasName": "alias/form-" + string(rune('a'+i))}
		}, true},
		{"UpdateAlias", "KeyId", func(i int) map[string]string {
			return map[string]string{"AliasName": "alias/form-" + string(rune('a'+i))}
		}, true},
		{"ListAliasesByKeyId", "KeyId", nil, false},
		{"TagResource", "KeyId", func(int) map[string]string { return map[string]string{"Tags": oneTag("t", "v")} }, true},
		{"UntagResource", "KeyId", func(int) map[string]string { return map[string]string{"TagKeys": `["t"]`} }, true},
		{"ListResourceTags", "KeyId", nil, false},
	}
	for _, a := range actions {
		for i, f := range forms {
			t.Run(a.name+"/"+f.name, func(t *testing.T) {
				p := map[string]string{}
				if a.params != nil {
					p = a.params(i)
				}
				if a.name == "UpdateAlias" {
					// Point the alias elsewhere first, so the update is seen.
					tn.must(t, "UpdateAlias", map[string]string{"AliasName": p["AliasName"], "KeyId": other}, nil)
				}
				p[a.param] = f.ref
				resp := tn.must(t, a.name, p, nil)
				// Every KeyId in the answer is the real key id.
				var ids []string
				collectKeyIDs(resp.Body, &ids)
				for _, id := range ids {
					if id != key {
						t.Errorf("answer names KeyId %s, want %s", id, key)
					}
				}
				if a.write {
					k, _ := tn.FSM().Key(key)
					switch a.name {
					case "CreateAlias", "UpdateAlias":
						al, ok := tn.FSM().Alias(tn.AccountID, p["AliasName"])
						if !ok || al.KeyID != key || al.ModifyIndex != resp.Index {
							t.Errorf("alias %s: %+v, want key %s at index %d", p["AliasName"], al, key, resp.Index)
						}
					default:
						if k.ModifyIndex != resp.Index {
							t.Errorf("key ModifyIndex %d, want the write's index %d", k.ModifyIndex, resp.Index)
						}
					}
				}
			})
		}
	}
	// DescribeKeyVersion names the key and one of its versions.
	k, _ := tn.FSM().Key(key)
	for _, f := range forms {
		t.Run("DescribeKeyVersion/"+f.name, func(t *testing.T) {
			var out struct {
				KeyVersion struct{ KeyId, KeyVersionId string }
			}
			tn.must(t, "DescribeKeyVersion", map[string]string{"KeyId": f.ref, "KeyVersionId": k.Versions[0]}, &out)
			wantEq(t, "KeyId", out.KeyVersion.KeyId, key)
		})
	}
}

// collectKeyIDs gathers every "KeyId" string in a JSON document.
func collectKeyIDs(body []byte, out *[]string) {
	var v any
	json.Unmarshal(body, &v)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "KeyId" {
					*out = append(*out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}
