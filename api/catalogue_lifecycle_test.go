package api_test

import (
	"strings"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// Key states, deletion and rotation driven by the injected service clock
// and the leader's scheduler run by the test (tick).

func (tn *testNode) keyUsed(t *testing.T, instance string) int {
	t.Helper()
	var raw struct{ KmsInstance struct{ KeyUsed int } }
	tn.must(t, "GetKmsInstance", map[string]string{"KmsInstanceId": instance}, &raw)
	return raw.KmsInstance.KeyUsed
}

func (tn *testNode) listedKeys(t *testing.T) map[string]bool {
	t.Helper()
	var out kmssdk.ListKeysResponseBody
	decodeStrict(t, tn.must(t, "ListKeys", map[string]string{"PageSize": "100"}, nil).Body, &out)
	ids := map[string]bool{}
	for _, k := range out.Keys.Key {
		ids[tea.StringValue(k.KeyId)] = true
	}
	return ids
}

func TestDeletion_WindowCancelProtectionAndLeaderDeletes(t *testing.T) {
	clock := newFakeClock()
	tn := startClockNode(t, clock)
	key := tea.StringValue(tn.newKey(t, map[string]string{"AliasName": "alias/doomed"}).KeyId)
	other := tea.StringValue(tn.newKey(t, nil).KeyId)
	var enc struct{ CiphertextBlob string }
	tn.must(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "c2VjcmV0", "EncryptionContext": `{"k":"v"}`}, &enc)
	var dk struct{ CiphertextBlob string }
	tn.must(t, "GenerateDataKey", map[string]string{"KeyId": key}, &dk)
	used := tn.keyUsed(t, tn.InstanceID)

	tn.must(t, "ScheduleKeyDeletion", map[string]string{"KeyId": key, "PendingWindowInDays": "7"}, nil)
	deleteAt := clock.Now().Add(7 * 24 * time.Hour)
	d := tn.describe(t, key)
	wantEq(t, "KeyState", tea.StringValue(d.KeyState), "PendingDeletion")
	wantEq(t, "DeleteDate", parseDate(t, "DeleteDate", tea.StringValue(d.DeleteDate)), deleteAt)

	// Crypto is refused while the key waits for deletion.
	crypto := []struct {
		action string
		params map[string]string
	}{
		{"Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="}},
		{"Decrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob, "EncryptionContext": `{"k":"v"}`}},
		{"Decrypt", map[string]string{"CiphertextBlob": dk.CiphertextBlob}},
		{"GenerateDataKey", map[string]string{"KeyId": "alias/doomed"}},
		{"GenerateDataKeyWithoutPlaintext", map[string]string{"KeyId": key}},
		{"ReEncrypt", map[string]string{"CiphertextBlob": dk.CiphertextBlob, "DestinationKeyId": other}},
		{"ReEncrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob, "SourceEncryptionContext": `{"k":"v"}`, "DestinationKeyId": other}},
		{"CreateKeyVersion", map[string]string{"KeyId": key}},
		{"EnableKey", map[string]string{"KeyId": key}},
		{"DisableKey", map[string]string{"KeyId": key}},
	}
	for _, c := range crypto {
		tn.refused(t, c.action, c.params, 409, pendingDelCode)
	}
	// Metadata stays readable and the key is still listed.
	if !tn.listedKeys(t)[key] {
		t.Error("a key pending deletion is not listed")
	}

	var cancel kmssdk.CancelKeyDeletionResponseBody
	tn.happy(t, "CancelKeyDeletion", map[string]string{"KeyId": key}, true, &cancel)
	d = tn.describe(t, key)
	wantEq(t, "KeyState after cancel", tea.StringValue(d.KeyState), "Enabled")
	wantEq(t, "DeleteDate after cancel", tea.StringValue(d.DeleteDate), "")
	tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob, "EncryptionContext": `{"k":"v"}`}, nil)

	// Deletion protection blocks scheduling until it is turned off.
	tn.must(t, "SetDeletionProtection", map[string]string{"ProtectedResourceArn": tn.keyArn(key), "EnableDeletionProtection": "true"}, nil)
	tn.refused(t, "ScheduleKeyDeletion", map[string]string{"KeyId": key, "PendingWindowInDays": "7"}, 403, protectedCode)
	tn.must(t, "SetDeletionProtection", map[string]string{"ProtectedResourceArn": tn.keyArn(key), "EnableDeletionProtection": "false"}, nil)

	tn.must(t, "ScheduleKeyDeletion", map[string]string{"KeyId": key, "PendingWindowInDays": "7"}, nil)
	deleteAt = clock.Now().Add(7 * 24 * time.Hour)
	clock.Advance(7*24*time.Hour - time.Second)
	if n := tn.tick(t); n != 0 {
		t.Fatalf("the scheduler made %d changes a second before DeleteDate", n)
	}
	wantEq(t, "KeyState a second before DeleteDate", tea.StringValue(tn.describe(t, key).KeyState), "PendingDeletion")
	if now := clock.Advance(time.Second); !now.Equal(deleteAt) {
		t.Fatalf("clock %v, DeleteDate %v", now, deleteAt)
	}
	if n := tn.tick(t); n != 1 {
		t.Fatalf("the scheduler made %d changes at DeleteDate, want 1", n)
	}
	if n := tn.tick(t); n != 0 {
		t.Fatalf("a second tick made %d changes", n)
	}

	tn.refused(t, "DescribeKey", map[string]string{"KeyId": key}, 404, keyNotFound)
	tn.refused(t, "DescribeKey", map[string]string{"KeyId": "alias/doomed"}, 404, aliasNotFound)
	tn.refused(t, "CancelKeyDeletion", map[string]string{"KeyId": key}, 404, keyNotFound)
	tn.refused(t, "Decrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob, "EncryptionContext": `{"k":"v"}`}, 400, invalidCipher)
	tn.refused(t, "Decrypt", map[string]string{"CiphertextBlob": dk.CiphertextBlob}, 400, invalidCipher)
	tn.refused(t, "ReEncrypt", map[string]string{"CiphertextBlob": dk.CiphertextBlob, "DestinationKeyId": other}, 400, invalidCipher)
	var aliases kmssdk.ListAliasesResponseBody
	decodeStrict(t, tn.must(t, "ListAliases", nil, nil).Body, &aliases)
	wantEq(t, "aliases after the deletion", tea.Int32Value(aliases.TotalCount), 0)
	if listed := tn.listedKeys(t); listed[key] || !listed[other] {
		t.Errorf("ListKeys after the deletion: %v", listed)
	}
	wantEq(t, "KeyUsed after the deletion", tn.keyUsed(t, tn.InstanceID), used-1)
	// The alias name is free again.
	tn.must(t, "CreateAlias", map[string]string{"AliasName": "alias/doomed", "KeyId": other}, nil)
}

func TestRotation_LeaderRotatesWithTheInjectedClock(t *testing.T) {
	clock := newFakeClock()
	tn := startClockNode(t, clock)
	created := clock.Now()
	m := tn.newKey(t, map[string]string{"EnableAutomaticRotation": "true", "RotationInterval": "7d"})
	key, v1 := tea.StringValue(m.KeyId), tea.StringValue(m.PrimaryKeyVersion)
	wantEq(t, "RotationInterval", tea.StringValue(m.RotationInterval), "604800s")
	wantEq(t, "LastRotationDate at creation", parseDate(t, "LastRotationDate", tea.StringValue(m.LastRotationDate)), created)
	wantEq(t, "NextRotationDate at creation", parseDate(t, "NextRotationDate", tea.StringValue(m.NextRotationDate)), created.Add(7*24*time.Hour))
	var old struct{ CiphertextBlob, KeyVersionId string }
	tn.must(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "b2xk"}, &old)
	wantEq(t, "Encrypt before rotation uses", old.KeyVersionId, v1)

	clock.Advance(6 * 24 * time.Hour)
	if n := tn.tick(t); n != 0 {
		t.Fatalf("rotated early (%d changes)", n)
	}
	rotatedAt := clock.Advance(3 * 24 * time.Hour) // two days overdue
	if n := tn.tick(t); n != 1 {
		t.Fatalf("the scheduler made %d changes, want 1", n)
	}
	if n := tn.tick(t); n != 0 {
		t.Fatalf("a second tick made %d changes", n)
	}
	d := tn.describe(t, key)
	v2 := tea.StringValue(d.PrimaryKeyVersion)
	if v2 == v1 {
		t.Fatal("PrimaryKeyVersion did not change")
	}
	last := parseDate(t, "LastRotationDate", tea.StringValue(d.LastRotationDate))
	next := parseDate(t, "NextRotationDate", tea.StringValue(d.NextRotationDate))
	wantEq(t, "LastRotationDate", last, rotatedAt)
	wantEq(t, "NextRotationDate - LastRotationDate", next.Sub(last), 7*24*time.Hour)
	var lv kmssdk.ListKeyVersionsResponseBody
	decodeStrict(t, tn.must(t, "ListKeyVersions", map[string]string{"KeyId": key}, nil).Body, &lv)
	wantEq(t, "versions", tea.Int32Value(lv.TotalCount), 2)

	var fresh struct{ CiphertextBlob, KeyVersionId string }
	tn.must(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "bmV3"}, &fresh)
	wantEq(t, "Encrypt after rotation uses", fresh.KeyVersionId, v2)
	var dec struct{ Plaintext, KeyVersionId string }
	tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": old.CiphertextBlob}, &dec)
	wantEq(t, "old ciphertext's Plaintext", dec.Plaintext, "b2xk")
	wantEq(t, "old ciphertext's KeyVersionId", dec.KeyVersionId, v1)

	// Keys that must not rotate automatically say so.
	for _, p := range []map[string]string{{"KeySpec": "EC_P256"}, {"KeySpec": "RSA_2048"}, {"Origin": "EXTERNAL"}} {
		id := tea.StringValue(tn.newKey(t, p).KeyId)
		before := tn.hash()
		_, err := tn.call(t, "UpdateRotationPolicy", map[string]string{"KeyId": id, "EnableAutomaticRotation": "true", "RotationInterval": "30d"})
		ae := wantAPIError(t, err, 400, unsupportedOp)
		if !strings.Contains(ae.Message, "symmetric") {
			t.Errorf("%v: the refusal does not say why: %q", p, ae.Message)
		}
		if tn.hash() != before {
			t.Errorf("%v: the catalogue changed", p)
		}
	}
}
