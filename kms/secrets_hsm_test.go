//go:build cgo

package kms

import (
	"context"
	"testing"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
)

// A secret sealed under a hardware key: the data key is sealed in the
// SoftHSM token under the key's domain-wrapped material, the value opens
// again through the token, and the envelope is the documented format (the
// data key blob opens with the key's material, the value with the data
// key).
func TestSecrets_HSMEncryptionKey(t *testing.T) {
	e := newHSMEnv(t)
	ctx := context.Background()
	k, _, err := e.svc.CreateKey(ctx, e.caller, CreateKeyInput{DKMSInstanceID: e.inst})
	if err != nil {
		t.Fatal(err)
	}
	if k.ProtectionLevel != ProtectionHSM {
		t.Fatalf("key = %+v", k)
	}
	value := secretValue(t)
	sec, _, err := e.svc.CreateSecret(ctx, e.caller, SecretInput{Name: "hw/secret", Data: value, VersionID: "v1", EncryptionKey: k.ID, InstanceID: e.inst})
	if err != nil {
		t.Fatal(err)
	}
	if sec.InstanceID != e.inst || sec.EncryptionKeyID != k.ID {
		t.Fatalf("secret = %+v", sec)
	}
	got, err := e.svc.GetSecretValue(ctx, e.caller, SecretValueInput{Name: "hw/secret"})
	if err != nil || got.Data != value {
		t.Fatalf("GetSecretValue = %+v, %v", got, err)
	}

	v, _ := e.fsm.Secret(e.caller.AccountID, "hw/secret")
	sv, _ := v.Version("v1")
	dkBlob, sealed, err := splitSecretEnvelope(sv.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	h, err := kcrypto.ParseCiphertext(dkBlob)
	if err != nil {
		t.Fatal(err)
	}
	kv, _ := e.fsm.KeyVersion(h.VersionID)
	if kv.KeyID != k.ID || kv.Domain != "d1" {
		t.Fatalf("the data key is sealed under %+v", kv)
	}
	material, err := hsm.UnwrapKeyPad(e.domainKey, kv.WrappedMaterial)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := kcrypto.Open(material, dkBlob, kcrypto.CanonicalContext(secretKeyContext(e.caller.AccountID, "hw/secret", "v1")))
	if err != nil {
		t.Fatalf("the data key blob does not open with the key's material: %v", err)
	}
	aead, err := secretAEAD(dk)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := aead.Open(nil, sealed[:kcrypto.NonceSize], sealed[kcrypto.NonceSize:], secretValueAAD(e.caller.AccountID, "hw/secret", "v1", SecretDataText))
	if err != nil || string(pt) != value {
		t.Fatalf("the value does not open with the data key: %v", err)
	}

	// The hardware key's state governs as a software key's does.
	if _, err := e.svc.SetKeyEnabled(ctx, e.caller, k.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetSecretValue(ctx, e.caller, SecretValueInput{Name: "hw/secret"})
	wantState(t, "a disabled hardware key", err, fsm.StateDisabled)
	if _, err := e.svc.SetKeyEnabled(ctx, e.caller, k.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.PutSecretValue(ctx, e.caller, PutSecretValueInput{Name: "hw/secret", VersionID: "v2", Data: "two"}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.GetSecretValue(ctx, e.caller, SecretValueInput{Name: "hw/secret"}); err != nil || got.Data != "two" {
		t.Fatalf("after EnableKey and a put: %+v %v", got, err)
	}
}
