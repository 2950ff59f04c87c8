package kms

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// The catalogue's rules in the service core, over a directStore (no Raft)
// and a fake clock: specs and usages, quotas, the default key, the leader's
// scheduler (rotation, deletion, material and token expiry), import, key
// policies and ListKeys filters. The API tests cover the same actions over
// HTTP with the service's codes.

var bg = context.Background()

func TestCheckSpecUsage_EveryCombination(t *testing.T) {
	specs := []string{kcrypto.SpecAES256, kcrypto.SpecRSA2048, kcrypto.SpecRSA3072, kcrypto.SpecRSA4096, kcrypto.SpecECP256, kcrypto.SpecECP256K}
	allowed := map[string][]string{
		kcrypto.SpecAES256:  {UsageEncryptDecrypt},
		kcrypto.SpecRSA2048: {UsageEncryptDecrypt, UsageSignVerify},
		kcrypto.SpecRSA3072: {UsageEncryptDecrypt, UsageSignVerify},
		kcrypto.SpecRSA4096: {UsageEncryptDecrypt, UsageSignVerify},
		kcrypto.SpecECP256:  {UsageSignVerify},
		kcrypto.SpecECP256K: {UsageSignVerify},
	}
	defaults := map[string]string{
		kcrypto.SpecAES256: UsageEncryptDecrypt, kcrypto.SpecRSA2048: UsageEncryptDecrypt,
		kcrypto.SpecRSA3072: UsageEncryptDecrypt, kcrypto.SpecRSA4096: UsageEncryptDecrypt,
		kcrypto.SpecECP256: UsageSignVerify, kcrypto.SpecECP256K: UsageSignVerify,
	}
	for _, spec := range specs {
		for _, usage := range []string{UsageEncryptDecrypt, UsageSignVerify, "SIGN", "encrypt/decrypt"} {
			got, err := checkSpecUsage(spec, usage, false)
			ok := false
			for _, a := range allowed[spec] {
				ok = ok || a == usage
			}
			if ok && (err != nil || got != usage) {
				t.Errorf("%s %s refused: %v", spec, usage, err)
			}
			if !ok && !errors.Is(err, ErrInvalidParameter) {
				t.Errorf("%s %s: %q, %v; want ErrInvalidParameter", spec, usage, got, err)
			}
		}
		if got, err := checkSpecUsage(spec, "", false); err != nil || got != defaults[spec] {
			t.Errorf("%s without KeyUsage: %q, %v; want %s", spec, got, err, defaults[spec])
		}
	}
	for _, spec := range []string{kcrypto.SpecAES128, kcrypto.SpecAES192} {
		if _, err := checkSpecUsage(spec, "", false); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s in software: %v", spec, err)
		}
		if _, err := checkSpecUsage(spec, "", true); err != nil {
			t.Errorf("%s in an HSM: %v", spec, err)
		}
	}
	for _, spec := range []string{"", "Aliyun_AES_512", "RSA_1024", "EC_SM2", "rsa_2048"} {
		if _, err := checkSpecUsage(spec, "", false); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%q: %v", spec, err)
		}
	}
}

func TestCreateKey_EverySpecAndUsageMakesMatchingMaterial(t *testing.T) {
	e := newSvcEnv(t)
	for _, tc := range []struct{ spec, usage string }{
		{kcrypto.SpecAES256, UsageEncryptDecrypt},
		{kcrypto.SpecRSA2048, UsageEncryptDecrypt},
		{kcrypto.SpecRSA2048, UsageSignVerify},
		{kcrypto.SpecRSA3072, UsageSignVerify},
		{kcrypto.SpecECP256, UsageSignVerify},
		{kcrypto.SpecECP256K, UsageSignVerify},
	} {
		k := e.createKey(t, CreateKeyInput{KeySpec: tc.spec, KeyUsage: tc.usage})
		if k.Spec != tc.spec || k.Usage != tc.usage || k.State != fsm.StateEnabled || k.Origin != OriginKMS ||
			k.ProtectionLevel != ProtectionSoftware || k.InstanceID != e.inst || len(k.Versions) != 1 {
			t.Errorf("%s %s: key %+v", tc.spec, tc.usage, k)
		}
		v, _ := e.fsm.KeyVersion(k.PrimaryVersion)
		m, err := e.root.Unwrap(v.WrappedMaterial, kcrypto.MaterialAAD(k.ID, v.ID))
		if err != nil {
			t.Fatalf("%s: material does not unwrap: %v", tc.spec, err)
		}
		switch {
		case kcrypto.IsSymmetric(tc.spec):
			if len(m) != 32 || v.PublicKey != nil {
				t.Errorf("AES material %d bytes, public key %v", len(m), v.PublicKey != nil)
			}
		case tc.spec == kcrypto.SpecECP256K:
			if len(m) != 32 || len(v.PublicKey) == 0 {
				t.Errorf("EC_P256K material %d bytes, public key %d bytes", len(m), len(v.PublicKey))
			}
		default:
			priv, err := x509.ParsePKCS8PrivateKey(m)
			if err != nil {
				t.Fatalf("%s material is not PKCS#8: %v", tc.spec, err)
			}
			pub, err := x509.ParsePKIXPublicKey(v.PublicKey)
			if err != nil {
				t.Fatalf("%s public key: %v", tc.spec, err)
			}
			if !priv.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Errorf("%s: the stored public key is not the material's", tc.spec)
			}
		}
	}
}

func TestCreateKey_InstanceQuotaAndKeysUsed(t *testing.T) {
	e := newSvcEnv(t)
	small := fsm.Instance{ID: newInstanceID(), AccountID: e.caller.AccountID, Name: "small", Type: InstanceSoftware, KeyQuota: 2, CreatedAt: e.clock.Now().UnixMilli()}
	if _, err := e.svc.propose(bg, fsm.CmdCreateInstance, fsm.CreateInstanceCmd{Now: small.CreatedAt, Instance: small}); err != nil {
		t.Fatal(err)
	}
	a := e.createKey(t, CreateKeyInput{DKMSInstanceID: small.ID})
	e.createKey(t, CreateKeyInput{DKMSInstanceID: small.ID, KeySpec: kcrypto.SpecECP256})
	if in, _ := e.fsm.Instance(small.ID); in.KeysUsed != 2 {
		t.Fatalf("KeysUsed = %d, want 2", in.KeysUsed)
	}
	e.unchanged(t, "the third key", func() {
		_, _, err := e.svc.CreateKey(bg, e.caller, CreateKeyInput{DKMSInstanceID: small.ID})
		wantErr(t, "third key in a quota of 2", err, ErrLimitExceeded)
	})
	// Another instance is not affected, and the default key counts nowhere.
	e.createKey(t, CreateKeyInput{})
	e.createKey(t, CreateKeyInput{DKMSInstanceID: "-"})
	if in, _ := e.fsm.Instance(small.ID); in.KeysUsed != 2 {
		t.Fatalf("KeysUsed = %d after keys elsewhere, want 2", in.KeysUsed)
	}
	// Deleting a key frees its place.
	if _, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: a.ID, PendingWindowDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7*24*time.Hour + time.Second)
	if n := e.tick(t); n != 1 {
		t.Fatalf("tick made %d changes, want 1", n)
	}
	if in, _ := e.fsm.Instance(small.ID); in.KeysUsed != 1 {
		t.Fatalf("KeysUsed = %d after the deletion, want 1", in.KeysUsed)
	}
	e.createKey(t, CreateKeyInput{DKMSInstanceID: small.ID})
	_, _, err := e.svc.CreateKey(bg, e.caller, CreateKeyInput{DKMSInstanceID: "kst-doesnotexist"})
	wantErr(t, "unknown instance", err, fsm.ErrInstanceNotFound)
}

func TestCreateKey_DefaultKey(t *testing.T) {
	e := newSvcEnv(t)
	for _, in := range []CreateKeyInput{
		{DKMSInstanceID: "-", KeySpec: kcrypto.SpecRSA2048},
		{DKMSInstanceID: "-", KeySpec: kcrypto.SpecECP256},
		{DKMSInstanceID: "-", ProtectionLevel: ProtectionHSM},
		{DKMSInstanceID: "-", AliasName: "alias/acs/x"},
		{DKMSInstanceID: "-", AliasName: "bad"},
		{DKMSInstanceID: "-", Origin: "external"},
	} {
		e.unchanged(t, fmt.Sprintf("%+v", in), func() {
			in.DKMSInstanceID = ""
			_, _, err := e.svc.CreateKey(bg, e.caller, in)
			wantErr(t, fmt.Sprintf("default key %+v", in), err, ErrInvalidParameter)
		})
	}
	k := e.createKey(t, CreateKeyInput{DKMSInstanceID: "-", Origin: OriginExternal, AliasName: "alias/default", Description: "the default key"})
	if k.InstanceID != "" || k.Spec != kcrypto.SpecAES256 || k.ProtectionLevel != ProtectionSoftware || k.State != fsm.StatePendingImport || k.Origin != OriginExternal {
		t.Errorf("default key %+v", k)
	}
	if a, ok := e.fsm.Alias(e.caller.AccountID, "alias/default"); !ok || a.KeyID != k.ID {
		t.Errorf("alias chosen at creation: %+v %v", a, ok)
	}
	e.unchanged(t, "a second default key", func() {
		_, _, err := e.svc.CreateKey(bg, e.caller, CreateKeyInput{})
		wantErr(t, "second default key", err, ErrLimitExceeded)
	})
	// Once the default key is deleted, the account may make another.
	if _, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID, PendingWindowDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(8 * 24 * time.Hour)
	e.tick(t)
	if _, ok := e.fsm.Alias(e.caller.AccountID, "alias/default"); ok {
		t.Error("the deleted default key's alias survived")
	}
	e.createKey(t, CreateKeyInput{DKMSInstanceID: "-"})
}

func TestCreateKey_AutomaticRotationOnlyForGeneratedSymmetricKeys(t *testing.T) {
	e := newSvcEnv(t)
	for _, in := range []CreateKeyInput{
		{KeySpec: kcrypto.SpecRSA2048, EnableAutomaticRotation: true, RotationInterval: "30d"},
		{KeySpec: kcrypto.SpecECP256K, EnableAutomaticRotation: true, RotationInterval: "30d"},
		{Origin: OriginExternal, EnableAutomaticRotation: true, RotationInterval: "30d"},
		{EnableAutomaticRotation: true},
		{EnableAutomaticRotation: true, RotationInterval: "6d"},
		{RotationInterval: "1y"}, // validated even when rotation is off
	} {
		e.unchanged(t, "refused CreateKey", func() {
			in.DKMSInstanceID = e.inst
			_, _, err := e.svc.CreateKey(bg, e.caller, in)
			wantErr(t, fmt.Sprintf("%+v", in), err, ErrInvalidParameter)
		})
	}
	k := e.createKey(t, CreateKeyInput{EnableAutomaticRotation: true, RotationInterval: "604800s"})
	if k.RotationInterval != 7*86400 || k.LastRotation != e.clock.Now().UnixMilli() {
		t.Errorf("rotation %d s from %d", k.RotationInterval, k.LastRotation)
	}
	if got, want := NextRotation(k), e.clock.Now().Add(7*24*time.Hour); !got.Equal(want) {
		t.Errorf("NextRotation %v, want %v", got, want)
	}
	off := e.createKey(t, CreateKeyInput{RotationInterval: "30d"})
	if off.RotationInterval != 0 || !NextRotation(off).IsZero() {
		t.Errorf("rotation on without EnableAutomaticRotation: %d", off.RotationInterval)
	}
}

func TestSchedulerTick_RotatesDueKeysExactlyOnce(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{EnableAutomaticRotation: true, RotationInterval: "7d"})
	asym := e.createKey(t, CreateKeyInput{KeySpec: kcrypto.SpecECP256})
	plain := e.createKey(t, CreateKeyInput{})
	blob, err := e.svc.Encrypt(bg, e.caller, EncryptInput{Key: k.ID, Plaintext: []byte("before")})
	if err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(7*24*time.Hour - time.Second)
	if n := e.tick(t); n != 0 {
		t.Fatalf("a tick before NextRotationDate made %d changes", n)
	}
	now := e.clock.Advance(time.Second)
	if n := e.tick(t); n != 1 {
		t.Fatalf("the tick at NextRotationDate made %d changes, want 1", n)
	}
	r := e.key(t, k.ID)
	if len(r.Versions) != 2 || r.PrimaryVersion == k.PrimaryVersion || r.PrimaryVersion != r.Versions[1] {
		t.Fatalf("versions %v primary %s", r.Versions, r.PrimaryVersion)
	}
	if r.LastRotation != now.UnixMilli() || !NextRotation(r).Equal(now.Add(7*24*time.Hour)) {
		t.Errorf("LastRotation %v NextRotation %v, want %v and +7d", time.UnixMilli(r.LastRotation), NextRotation(r), now)
	}
	if n := e.tick(t); n != 0 {
		t.Fatalf("a second tick at the same time made %d changes", n)
	}
	// Overdue by several intervals: one rotation, not one per interval.
	e.clock.Advance(30 * 24 * time.Hour)
	if n := e.tick(t); n != 1 {
		t.Fatalf("overdue key: %d changes, want 1", n)
	}
	if n := e.tick(t); n != 0 {
		t.Fatalf("overdue key, second tick: %d changes", n)
	}
	if r := e.key(t, k.ID); len(r.Versions) != 3 {
		t.Fatalf("%d versions, want 3", len(r.Versions))
	}
	for _, other := range []string{asym.ID, plain.ID} {
		if len(e.key(t, other).Versions) != 1 {
			t.Errorf("key %s without rotation was rotated", other)
		}
	}
	// New encryptions use the new primary, old ciphertexts still open.
	enc, err := e.svc.Encrypt(bg, e.caller, EncryptInput{Key: k.ID, Plaintext: []byte("after")})
	if err != nil || enc.KeyVersionID != e.key(t, k.ID).PrimaryVersion {
		t.Fatalf("Encrypt after rotation: %v %s", err, enc.KeyVersionID)
	}
	if out, err := e.svc.Decrypt(bg, e.caller, DecryptInput{Ciphertext: blob.CiphertextBlob}); err != nil || string(out.Plaintext) != "before" || out.KeyVersionID != k.PrimaryVersion {
		t.Fatalf("old ciphertext: %v %+v", err, out)
	}
}

func TestSchedulerTick_SkipsDisabledKeysAndFollowers(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{EnableAutomaticRotation: true, RotationInterval: "7d"})
	if _, err := e.svc.SetKeyEnabled(bg, e.caller, k.ID, false); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(8 * 24 * time.Hour)
	if n := e.tick(t); n != 0 {
		t.Fatalf("a disabled key was rotated (%d changes)", n)
	}
	if _, err := e.svc.SetKeyEnabled(bg, e.caller, k.ID, true); err != nil {
		t.Fatal(err)
	}
	e.store.setLeader(false)
	if n := e.tick(t); n != 0 {
		t.Fatalf("a follower's tick made %d changes", n)
	}
	e.store.setLeader(true)
	if n := e.tick(t); n != 1 {
		t.Fatalf("the leader's tick made %d changes, want 1", n)
	}
}

// TestAutomaticRotation_StaleProposalChangesNothing: a rotation proposed by
// a leader that had not seen the previous one (a leader change) is refused
// by Apply, so a key is never rotated twice for one due date.
func TestAutomaticRotation_StaleProposalChangesNothing(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{EnableAutomaticRotation: true, RotationInterval: "7d"})
	now := e.clock.Advance(7 * 24 * time.Hour).UnixMilli()
	v1, err := e.svc.newKeyVersion(bg, k, now)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := e.svc.newKeyVersion(bg, k, now)
	if _, err := e.svc.propose(bg, fsm.CmdCreateKeyVersion, fsm.CreateKeyVersionCmd{Now: now, Version: v1, Automatic: true, ExpectPrimary: k.PrimaryVersion}); err != nil {
		t.Fatal(err)
	}
	e.unchanged(t, "the stale rotation", func() {
		_, err := e.svc.propose(bg, fsm.CmdCreateKeyVersion, fsm.CreateKeyVersionCmd{Now: now, Version: v2, Automatic: true, ExpectPrimary: k.PrimaryVersion})
		wantErr(t, "stale rotation", err, fsm.ErrPreconditionFailed)
	})
	// Rotation turned off meanwhile: the proposal is refused too.
	if _, err := e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: k.ID, Enable: no}); err != nil {
		t.Fatal(err)
	}
	e.unchanged(t, "rotation after the policy was turned off", func() {
		_, err := e.svc.propose(bg, fsm.CmdCreateKeyVersion, fsm.CreateKeyVersionCmd{Now: now, Version: v2, Automatic: true, ExpectPrimary: v1.ID})
		wantErr(t, "rotation of a key whose policy is off", err, fsm.ErrPreconditionFailed)
	})
}

func TestUpdateRotationPolicy_Rules(t *testing.T) {
	e := newSvcEnv(t)
	sym := e.createKey(t, CreateKeyInput{})
	rsaKey := e.createKey(t, CreateKeyInput{KeySpec: kcrypto.SpecRSA2048})
	ext := e.createKey(t, CreateKeyInput{Origin: OriginExternal})
	e.unchanged(t, "refusals", func() {
		_, err := e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: sym.ID, Enable: nil, Interval: "30d"})
		wantErr(t, "EnableAutomaticRotation absent", err, ErrMissingParameter)
		_, err = e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: sym.ID, Enable: yes})
		wantErr(t, "no interval", err, ErrInvalidParameter)
		_, err = e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: sym.ID, Enable: yes, Interval: "366d"})
		wantErr(t, "366d", err, ErrInvalidParameter)
		_, err = e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: rsaKey.ID, Enable: yes, Interval: "30d"})
		wantErr(t, "RSA key", err, ErrUnsupported)
		_, err = e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: ext.ID, Enable: yes, Interval: "30d"})
		wantErr(t, "EXTERNAL key", err, ErrUnsupported)
		_, err = e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: "", Enable: yes, Interval: "30d"})
		wantErr(t, "no KeyId", err, ErrMissingParameter)
	})
	// Turning rotation off is allowed for any key.
	if _, err := e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: rsaKey.ID, Enable: no}); err != nil {
		t.Errorf("turning rotation off on an RSA key: %v", err)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: sym.ID, Enable: yes, Interval: "30d"}); err != nil {
		t.Fatal(err)
	}
	k := e.key(t, sym.ID)
	if k.RotationInterval != 30*86400 || !NextRotation(k).Equal(e.clock.Now().Add(30*24*time.Hour)) {
		t.Errorf("after enabling: interval %d next %v", k.RotationInterval, NextRotation(k))
	}
	if _, err := e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: sym.ID, Enable: no}); err != nil {
		t.Fatal(err)
	}
	if k := e.key(t, sym.ID); k.RotationInterval != 0 {
		t.Errorf("after disabling: interval %d", k.RotationInterval)
	}
	if _, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: sym.ID, PendingWindowDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	e.unchanged(t, "policy of a key pending deletion", func() {
		_, err := e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: sym.ID, Enable: yes, Interval: "30d"})
		wantState(t, "pending deletion", err, fsm.StatePendingDeletion)
	})
}

func TestDeletion_WindowProtectionCancelAndLeaderDeletes(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	other := e.createKey(t, CreateKeyInput{})
	if _, err := e.svc.CreateAlias(bg, e.caller, AliasInput{Name: "alias/doomed", Key: k.ID}); err != nil {
		t.Fatal(err)
	}
	blob, err := e.svc.Encrypt(bg, e.caller, EncryptInput{Key: k.ID, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	e.unchanged(t, "bad windows", func() {
		for _, days := range []int{0, 6, 367, -7} {
			_, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID, PendingWindowDays: ptr(days)})
			wantErr(t, fmt.Sprintf("%d days", days), err, ErrInvalidParameter)
		}
		_, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID, PendingWindowDays: nil})
		wantErr(t, "no window", err, ErrMissingParameter)
	})

	// Protection blocks scheduling.
	arn := e.svc.KeyArn(k)
	if _, err := e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: arn, Enable: yes, Description: "keep"}); err != nil {
		t.Fatal(err)
	}
	if p := e.key(t, k.ID); !p.DeletionProtection || p.DeletionProtectionDescription != "keep" {
		t.Errorf("protection %v %q", p.DeletionProtection, p.DeletionProtectionDescription)
	}
	e.unchanged(t, "scheduling a protected key", func() {
		_, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID, PendingWindowDays: ptr(7)})
		wantErr(t, "protected key", err, fsm.ErrDeletionProtected)
	})
	if _, err := e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: arn, Enable: no}); err != nil {
		t.Fatal(err)
	}

	scheduledAt := e.clock.Now()
	if _, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID, PendingWindowDays: ptr(366)}); err != nil {
		t.Fatal(err)
	}
	p := e.key(t, k.ID)
	if p.State != fsm.StatePendingDeletion || p.DeleteDate != scheduledAt.Add(366*24*time.Hour).UnixMilli() {
		t.Fatalf("state %s delete date %v", p.State, time.UnixMilli(p.DeleteDate))
	}
	_, err = e.svc.Decrypt(bg, e.caller, DecryptInput{Ciphertext: blob.CiphertextBlob})
	wantState(t, "Decrypt while pending deletion", err, fsm.StatePendingDeletion)
	e.unchanged(t, "protection and scheduling while pending", func() {
		_, err := e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: arn, Enable: yes})
		wantState(t, "protect while pending", err, fsm.StatePendingDeletion)
		_, err = e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID, PendingWindowDays: ptr(7)})
		wantState(t, "schedule twice", err, fsm.StatePendingDeletion)
		_, err = e.svc.CancelKeyDeletion(bg, e.caller, other.ID)
		wantState(t, "cancel an enabled key", err, fsm.StateEnabled)
	})
	if _, err := e.svc.CancelKeyDeletion(bg, e.caller, k.ID); err != nil {
		t.Fatal(err)
	}
	if c := e.key(t, k.ID); c.State != fsm.StateEnabled || c.DeleteDate != 0 {
		t.Fatalf("after cancel: %s %d", c.State, c.DeleteDate)
	}

	if _, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID, PendingWindowDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7*24*time.Hour - time.Millisecond)
	if n := e.tick(t); n != 0 {
		t.Fatalf("deleted before DeleteDate (%d changes)", n)
	}
	// A deletion proposed too early (a leader with a fast clock) is refused
	// by Apply, which judges by the command's time.
	e.unchanged(t, "an early deletion", func() {
		_, err := e.svc.propose(bg, fsm.CmdDeleteKey, fsm.KeyDeletionCmd{Now: e.clock.Now().UnixMilli(), KeyID: k.ID})
		wantErr(t, "early deletion", err, fsm.ErrPreconditionFailed)
	})
	e.clock.Advance(time.Millisecond)
	if n := e.tick(t); n != 1 {
		t.Fatalf("the tick at DeleteDate made %d changes, want 1", n)
	}
	if _, ok := e.fsm.Key(k.ID); ok {
		t.Fatal("the key survived its DeleteDate")
	}
	for _, v := range k.Versions {
		if _, ok := e.fsm.KeyVersion(v); ok {
			t.Errorf("version %s (and its material) survived", v)
		}
	}
	if _, ok := e.fsm.Alias(e.caller.AccountID, "alias/doomed"); ok {
		t.Error("the alias survived")
	}
	_, err = e.svc.Decrypt(bg, e.caller, DecryptInput{Ciphertext: blob.CiphertextBlob})
	wantErr(t, "Decrypt after deletion", err, kcrypto.ErrInvalidCiphertext)
	_, err = e.svc.DescribeKey(bg, e.caller, k.ID)
	wantErr(t, "DescribeKey after deletion", err, fsm.ErrKeyNotFound)
	if _, ok := e.fsm.Key(other.ID); !ok {
		t.Error("another key was deleted")
	}
}

func TestSetDeletionProtection_Parameters(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	arn := e.svc.KeyArn(k)
	e.unchanged(t, "refusals", func() {
		_, err := e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: "", Enable: yes})
		wantErr(t, "no ARN", err, ErrMissingParameter)
		_, err = e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: arn, Enable: nil})
		wantErr(t, "no EnableDeletionProtection", err, ErrMissingParameter)
		_, err = e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: k.ID, Enable: yes})
		wantErr(t, "a key id instead of an ARN", err, ErrInvalidParameter)
		_, err = e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: arn, Enable: yes, Description: strings.Repeat("d", 129)})
		wantErr(t, "129-character description", err, ErrInvalidParameter)
		_, err = e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: strings.Replace(arn, k.ID, newUUID(), 1), Enable: yes})
		wantErr(t, "unknown key", err, fsm.ErrKeyNotFound)
	})
}

// importWrap wraps material with an import token's public key as a
// customer would, with Go's crypto.
func importWrap(t testing.TB, public []byte, alg string, material []byte) []byte {
	t.Helper()
	k, err := x509.ParsePKIXPublicKey(public)
	if err != nil {
		t.Fatalf("the import public key is not a SubjectPublicKeyInfo: %v", err)
	}
	pub := k.(*rsa.PublicKey)
	if pub.N.BitLen() != 2048 {
		t.Fatalf("the wrapping key has %d bits, want 2048", pub.N.BitLen())
	}
	var out []byte
	switch alg {
	case kcrypto.AlgRSAOAEPSHA256:
		out, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, material, nil)
	case kcrypto.AlgRSAOAEPSHA1:
		out, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, material, nil)
	case kcrypto.AlgRSAPKCS1v15:
		out, err = rsa.EncryptPKCS1v15(rand.Reader, pub, material)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImport_EndToEndAndExpiry(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{Origin: OriginExternal})
	other := e.createKey(t, CreateKeyInput{Origin: OriginExternal})
	kmsKey := e.createKey(t, CreateKeyInput{})
	material := make([]byte, 32)
	rand.Read(material)

	e.unchanged(t, "GetParametersForImport refusals", func() {
		_, err := e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: "", WrappingKeySpec: kcrypto.SpecRSA2048})
		wantErr(t, "no algorithm", err, ErrMissingParameter)
		_, err = e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: "RSAES_OAEP_SHA_512", WrappingKeySpec: kcrypto.SpecRSA2048})
		wantErr(t, "unknown algorithm", err, ErrInvalidParameter)
		_, err = e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: kcrypto.AlgRSAOAEPSHA256, WrappingKeySpec: ""})
		wantErr(t, "no spec", err, ErrMissingParameter)
		_, err = e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: kcrypto.AlgRSAOAEPSHA256, WrappingKeySpec: kcrypto.SpecRSA3072})
		wantErr(t, "RSA_3072", err, ErrInvalidParameter)
		_, err = e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: kmsKey.ID, WrappingAlgorithm: kcrypto.AlgRSAOAEPSHA256, WrappingKeySpec: kcrypto.SpecRSA2048})
		wantErr(t, "key with generated material", err, fsm.ErrNotExternal)
	})

	for _, alg := range []string{kcrypto.AlgRSAOAEPSHA256, kcrypto.AlgRSAOAEPSHA1, kcrypto.AlgRSAPKCS1v15} {
		p, err := e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: alg, WrappingKeySpec: kcrypto.SpecRSA2048})
		if err != nil {
			t.Fatal(err)
		}
		if !p.ExpireAt.Equal(e.clock.Now().Add(24 * time.Hour)) {
			t.Errorf("token expires %v, want now+24h", p.ExpireAt)
		}
		tok, _ := e.fsm.ImportToken(p.ImportToken)
		if tok == nil || len(tok.WrappedPrivateKey) == 0 {
			t.Fatal("token not in the catalogue")
		}
		if _, err := x509.ParsePKCS8PrivateKey(tok.WrappedPrivateKey); err == nil {
			t.Fatal("the token's private key is stored unwrapped")
		}
		if _, err := e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: importWrap(t, p.PublicKey, alg, material), ImportToken: p.ImportToken}); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if got := e.key(t, k.ID); got.State != fsm.StateEnabled || got.MaterialExpireTime != 0 {
			t.Fatalf("%s: state %s", alg, got.State)
		}
	}
	enc, err := e.svc.Encrypt(bg, e.caller, EncryptInput{Key: k.ID, Plaintext: []byte("imported")})
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := kcrypto.Open(material, enc.CiphertextBlob, nil); err != nil || string(pt) != "imported" {
		t.Fatalf("the ciphertext does not open with the imported material: %v", err)
	}

	p, err := e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: kcrypto.AlgRSAOAEPSHA256, WrappingKeySpec: kcrypto.SpecRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	po, err := e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: other.ID, WrappingAlgorithm: kcrypto.AlgRSAOAEPSHA256, WrappingKeySpec: kcrypto.SpecRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := importWrap(t, p.PublicKey, kcrypto.AlgRSAOAEPSHA256, material)
	e.unchanged(t, "ImportKeyMaterial refusals", func() {
		different := make([]byte, 32)
		rand.Read(different)
		_, err := e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: importWrap(t, p.PublicKey, kcrypto.AlgRSAOAEPSHA256, different), ImportToken: p.ImportToken})
		wantErr(t, "different material", err, ErrInvalidKeyMaterial)
		_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: importWrap(t, p.PublicKey, kcrypto.AlgRSAOAEPSHA256, material[:16]), ImportToken: p.ImportToken})
		wantErr(t, "16 bytes", err, ErrInvalidKeyMaterial)
		_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: importWrap(t, po.PublicKey, kcrypto.AlgRSAOAEPSHA256, material), ImportToken: p.ImportToken})
		wantErr(t, "wrapped for another token", err, ErrInvalidKeyMaterial)
		_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: wrapped, ImportToken: po.ImportToken})
		wantErr(t, "another key's token", err, ErrInvalidImportToken)
		_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: wrapped, ImportToken: p.ImportToken + "x"})
		wantErr(t, "garbled token", err, ErrInvalidImportToken)
		_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: wrapped, ImportToken: p.ImportToken, ExpireUnix: e.clock.Now().Add(-time.Second).Unix()})
		wantErr(t, "expiry in the past", err, ErrInvalidParameter)
		_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: wrapped, ImportToken: p.ImportToken, ExpireUnix: -1})
		wantErr(t, "negative expiry", err, ErrInvalidParameter)
		_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: kmsKey.ID, EncryptedMaterial: wrapped, ImportToken: p.ImportToken})
		wantErr(t, "a key with generated material", err, fsm.ErrNotExternal)
	})

	// Material with an expiry: the leader's scheduler makes the key
	// unusable once it passes, and the same material brings it back.
	expire := e.clock.Now().Add(48 * time.Hour).Unix()
	if _, err := e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: wrapped, ImportToken: p.ImportToken, ExpireUnix: expire}); err != nil {
		t.Fatal(err)
	}
	if got := e.key(t, k.ID); got.MaterialExpireTime != expire*1000 {
		t.Fatalf("MaterialExpireTime %d, want %d", got.MaterialExpireTime, expire*1000)
	}
	e.clock.Advance(48*time.Hour - time.Second)
	e.tick(t) // collects the expired tokens only
	if got := e.key(t, k.ID); got.State != fsm.StateEnabled {
		t.Fatalf("material expired early: %s", got.State)
	}
	e.clock.Advance(time.Second)
	if n := e.tick(t); n != 1 {
		t.Fatalf("the tick at expiry made %d changes, want 1", n)
	}
	if got := e.key(t, k.ID); got.State != fsm.StatePendingImport || got.MaterialExpireTime != 0 {
		t.Fatalf("after expiry: %s, expiry %d", got.State, got.MaterialExpireTime)
	}
	_, err = e.svc.Decrypt(bg, e.caller, DecryptInput{Ciphertext: enc.CiphertextBlob})
	wantState(t, "Decrypt after expiry", err, fsm.StatePendingImport)
	p, err = e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: kcrypto.AlgRSAOAEPSHA1, WrappingKeySpec: kcrypto.SpecRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: importWrap(t, p.PublicKey, kcrypto.AlgRSAOAEPSHA1, material), ImportToken: p.ImportToken}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.svc.Decrypt(bg, e.caller, DecryptInput{Ciphertext: enc.CiphertextBlob}); err != nil || string(out.Plaintext) != "imported" {
		t.Fatalf("Decrypt after re-import: %v", err)
	}

	// DeleteKeyMaterial, and its refusals.
	if _, err := e.svc.DeleteKeyMaterial(bg, e.caller, k.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.key(t, k.ID); got.State != fsm.StatePendingImport {
		t.Fatalf("after DeleteKeyMaterial: %s", got.State)
	}
	if v, _ := e.fsm.KeyVersion(got(e, t, k.ID).PrimaryVersion); len(v.WrappedMaterial) != 0 {
		t.Fatal("the material is still in the catalogue after DeleteKeyMaterial")
	}
	e.unchanged(t, "DeleteKeyMaterial of a key with generated material", func() {
		_, err := e.svc.DeleteKeyMaterial(bg, e.caller, kmsKey.ID)
		wantErr(t, "generated material", err, fsm.ErrNotExternal)
	})
}

func got(e *svcEnv, t testing.TB, id string) *fsm.Key { return e.key(t, id) }

// TestImportKeyMaterial_ExpiredTokenIsReportedAsExpired: a token used after
// its 24 hours must answer ErrExpiredImportToken (ExpiredImportToken), also
// once the leader's scheduler has run. The scheduler deletes expired tokens
// (kms/scheduler.go, the ImportTokens loop) and ImportKeyMaterial then no
// longer finds the token and answers ErrInvalidImportToken
// (kms/importing.go, ImportKeyMaterial): with the scheduler running every
// second, ExpiredImportToken is answered only in the first second after
// expiry.
func TestImportKeyMaterial_ExpiredTokenIsReportedAsExpired(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{Origin: OriginExternal})
	p, err := e.svc.GetParametersForImport(bg, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: kcrypto.AlgRSAOAEPSHA256, WrappingKeySpec: kcrypto.SpecRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	material := make([]byte, 32)
	rand.Read(material)
	wrapped := importWrap(t, p.PublicKey, kcrypto.AlgRSAOAEPSHA256, material)
	e.clock.Advance(25 * time.Hour)
	_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: wrapped, ImportToken: p.ImportToken})
	wantErr(t, "before the scheduler ran", err, ErrExpiredImportToken)
	e.tick(t)
	_, err = e.svc.ImportKeyMaterial(bg, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: wrapped, ImportToken: p.ImportToken})
	wantErr(t, "after the scheduler ran", err, ErrExpiredImportToken)
	if got := e.key(t, k.ID); got.State != fsm.StatePendingImport {
		t.Errorf("an expired token imported material: %s", got.State)
	}
}

func TestValidatePolicy(t *testing.T) {
	const acct = "1234567890123456"
	stmt := func(s string) string { return `{"Version":"1","Statement":[` + s + `]}` }
	base := `"Effect":"Allow","Principal":{"RAM":["acs:ram::` + acct + `:*"]},"Action":["kms:*"],"Resource":["*"]`
	valid := []string{
		stmt(`{` + base + `}`),
		stmt(`{"Sid":"AllowUse_1/+=.@-",` + base + `}`),
		stmt(`{"Sid":"` + strings.Repeat("s", 128) + `",` + base + `}`),
		stmt(`{"Effect":"Deny","Principal":{"RAM":"acs:ram::` + acct + `:user/alice"},"Action":"kms:Decrypt"}`),
		stmt(`{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + acct + `:role/app","acs:ram::` + acct + `:root","acs:ram::9876543210987654:*"]},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":["acs:kms:cn-hangzhou:` + acct + `:key/*"],"Condition":{"StringEquals":{"kms:EncryptionContext/app":["x"]}}}`),
		stmt(`{` + base + `},{"Effect":"Deny","Principal":{"RAM":["*"]},"Action":["kms:ScheduleKeyDeletion"]}`),
	}
	for _, doc := range valid {
		if err := ValidatePolicy(doc); err != nil {
			t.Errorf("refused %s: %v", doc, err)
		}
	}
	invalid := map[string]string{
		"not JSON":              `{"Version":"1",`,
		"a JSON array":          `[]`,
		"trailing data":         stmt(`{`+base+`}`) + `{}`,
		"Version 2":             `{"Version":"2","Statement":[{` + base + `}]}`,
		"Version missing":       `{"Statement":[{` + base + `}]}`,
		"Version a number":      `{"Version":1,"Statement":[{` + base + `}]}`,
		"no Statement":          `{"Version":"1"}`,
		"empty Statement":       `{"Version":"1","Statement":[]}`,
		"unknown top field":     `{"Version":"1","Statement":[{` + base + `}],"Id":"x"}`,
		"unknown statement key": stmt(`{` + base + `,"NotAction":["kms:Encrypt"]}`),
		"Effect Permit":         stmt(`{"Effect":"Permit","Principal":{"RAM":["*"]},"Action":["kms:*"]}`),
		"Effect lower case":     stmt(`{"Effect":"allow","Principal":{"RAM":["*"]},"Action":["kms:*"]}`),
		"no Principal":          stmt(`{"Effect":"Allow","Action":["kms:*"]}`),
		"Service principal":     stmt(`{"Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]},"Action":["kms:*"]}`),
		"empty RAM list":        stmt(`{"Effect":"Allow","Principal":{"RAM":[]},"Action":["kms:*"]}`),
		"RAM not an ARN":        stmt(`{"Effect":"Allow","Principal":{"RAM":["alice"]},"Action":["kms:*"]}`),
		"RAM of a group":        stmt(`{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + acct + `:group/g"]},"Action":["kms:*"]}`),
		"no Action":             stmt(`{"Effect":"Allow","Principal":{"RAM":["*"]}}`),
		"Action without kms:":   stmt(`{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["Encrypt"]}`),
		"Action kms: alone":     stmt(`{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:"]}`),
		"Action of ecs":         stmt(`{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["ecs:*"]}`),
		"Action a number":       stmt(`{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":[1]}`),
		"Resource not an ARN":   stmt(`{` + base + `,"Resource":["key/1"]}`),
		"Resource of oss":       stmt(`{` + base + `,"Resource":["acs:oss:*:*:bucket"]}`),
		// (A Sid with spaces is valid: the default policy's Sid is
		// "Enable User Permissions".)
		"Condition operator unknown": stmt(`{` + base + `,"Condition":{"StringSoundsLike":{"x":"y"}}}`),
		"Sid with a colon":           stmt(`{"Sid":"a:b",` + base + `}`),
		"Sid of 129":                 stmt(`{"Sid":"` + strings.Repeat("s", 129) + `",` + base + `}`),
		"empty Condition":            stmt(`{` + base + `,"Condition":{"StringEquals":{}}}`),
		"Condition number":           stmt(`{` + base + `,"Condition":{"NumericEquals":{"x":1}}}`),
		"over 32768 bytes":           stmt(`{"Sid":"big",` + base + `},` + strings.Repeat(`{`+base+`},`, 400) + `{` + base + `}`),
	}
	for name, doc := range invalid {
		if name == "over 32768 bytes" && len(doc) <= MaxPolicySize {
			t.Fatalf("the oversized document is only %d bytes", len(doc))
		}
		if err := ValidatePolicy(doc); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s accepted: %v", name, err)
		}
	}
	// Exactly 32768 bytes is allowed.
	pad := stmt(`{"Sid":"pad",` + base + `}`)
	exact := pad[:len(pad)-1] + strings.Repeat(" ", MaxPolicySize-len(pad)) + "}"
	if len(exact) != MaxPolicySize {
		t.Fatalf("test document is %d bytes", len(exact))
	}
	if err := ValidatePolicy(exact); err != nil {
		t.Errorf("a document of exactly %d bytes refused: %v", MaxPolicySize, err)
	}
}

func TestKeyPolicy_GetSetAndCreate(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	doc, err := e.svc.GetKeyPolicy(bg, e.caller, k.ID, "default")
	if err != nil || doc != DefaultPolicy(e.caller.AccountID) {
		t.Fatalf("default policy %q, %v", doc, err)
	}
	custom := `{"Version":"1","Statement":[{"Sid":"Admins","Effect":"Allow","Principal":{"RAM":["acs:ram::` + e.caller.AccountID + `:role/admin"]},"Action":["kms:Describe*","kms:List*"],"Resource":["*"]}]}`
	withPolicy := e.createKey(t, CreateKeyInput{Policy: custom})
	if doc, _ := e.svc.GetKeyPolicy(bg, e.caller, withPolicy.ID, "default"); doc != custom {
		t.Errorf("CreateKey's Policy: got %q", doc)
	}
	if _, err := e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: custom}); err != nil {
		t.Fatal(err)
	}
	if doc, _ := e.svc.GetKeyPolicy(bg, e.caller, k.ID, "default"); doc != custom {
		t.Errorf("after SetKeyPolicy: %q", doc)
	}
	e.unchanged(t, "refusals", func() {
		_, err := e.svc.GetKeyPolicy(bg, e.caller, k.ID, "")
		wantErr(t, "Get without PolicyName", err, ErrMissingParameter)
		_, err = e.svc.GetKeyPolicy(bg, e.caller, k.ID, "other")
		wantErr(t, "Get of another policy name", err, ErrInvalidParameter)
		_, err = e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: ""})
		wantErr(t, "Set without Policy", err, ErrMissingParameter)
		_, err = e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "Default", Policy: custom})
		wantErr(t, "Set of PolicyName Default", err, ErrInvalidParameter)
		_, err = e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: `{"Version":"1","Statement":[]}`})
		wantErr(t, "Set of an empty statement list", err, ErrInvalidParameter)
		_, _, err = e.svc.CreateKey(bg, e.caller, CreateKeyInput{DKMSInstanceID: e.inst, Policy: `{"Version":"1"}`})
		wantErr(t, "CreateKey with a bad policy", err, ErrInvalidParameter)
	})
}

// TestDefaultPolicy_CanBeSetBack: the policy a key gets without one must be
// a valid policy document, so that GetKeyPolicy → SetKeyPolicy round-trips.
// DefaultPolicy (kms/policy.go) uses the Sid "Enable User Permissions",
// whose spaces sidPattern (same file) refuses.
func TestDefaultPolicy_CanBeSetBack(t *testing.T) {
	if err := ValidatePolicy(DefaultPolicy("1234567890123456")); err != nil {
		t.Errorf("the default policy is not a valid policy: %v", err)
	}
}

func TestParseKeyFilters(t *testing.T) {
	fs, err := ParseKeyFilters(`[{"Key":"KeyState","Values":["Enabled","Disabled"]},{"Key":"KeySpec","Values":["RSA_2048"]}]`)
	if err != nil || len(fs) != 2 || len(fs[0].Values) != 2 {
		t.Fatalf("%+v %v", fs, err)
	}
	if fs, err := ParseKeyFilters(""); fs != nil || err != nil {
		t.Errorf("empty: %v %v", fs, err)
	}
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	for name, text := range map[string]string{
		"not JSON":       `KeyState=Enabled`,
		"an object":      `{"Key":"KeyState","Values":["Enabled"]}`,
		"unknown key":    `[{"Key":"Color","Values":["red"]}]`,
		"no values":      `[{"Key":"KeyState","Values":[]}]`,
		"values absent":  `[{"Key":"KeyState"}]`,
		"values string":  `[{"Key":"KeyState","Values":"Enabled"}]`,
		"11 filters":     `[` + many(11, func(int) string { return `{"Key":"KeyState","Values":["Enabled"]}` }) + `]`,
		"11 values":      `[{"Key":"KeyState","Values":[` + many(11, func(i int) string { return fmt.Sprintf(`"v%d"`, i) }) + `]}]`,
		"key lower case": `[{"Key":"keystate","Values":["Enabled"]}]`,
	} {
		if _, err := ParseKeyFilters(text); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestListKeys_FiltersAndAcrossKeysOrAcrossValues(t *testing.T) {
	e := newSvcEnv(t)
	second, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Type: "software", Name: "second"})
	if err != nil {
		t.Fatal(err)
	}
	aes := e.createKey(t, CreateKeyInput{})
	rsaEnc := e.createKey(t, CreateKeyInput{KeySpec: kcrypto.SpecRSA2048})
	rsaSign := e.createKey(t, CreateKeyInput{KeySpec: kcrypto.SpecRSA2048, KeyUsage: UsageSignVerify, DKMSInstanceID: second.ID})
	ec := e.createKey(t, CreateKeyInput{KeySpec: kcrypto.SpecECP256K, DKMSInstanceID: second.ID})
	ext := e.createKey(t, CreateKeyInput{Origin: OriginExternal})
	def := e.createKey(t, CreateKeyInput{DKMSInstanceID: "-"})
	if _, err := e.svc.SetKeyEnabled(bg, e.caller, aes.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: rsaEnc.ID, PendingWindowDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	ids := func(filters string) []string {
		t.Helper()
		fs, err := ParseKeyFilters(filters)
		if err != nil {
			t.Fatal(err)
		}
		l, err := e.svc.ListKeys(bg, e.caller, Page{Size: 100}, fs)
		keys, total := l.Items, l.Total
		if err != nil || total != len(keys) {
			t.Fatalf("%s: %d of %d, %v", filters, len(keys), total, err)
		}
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}
	same := func(name string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	same("no filter", ids(""), aes.ID, rsaEnc.ID, rsaSign.ID, ec.ID, ext.ID, def.ID)
	same("KeyState Enabled", ids(`[{"Key":"KeyState","Values":["Enabled"]}]`), rsaSign.ID, ec.ID, def.ID)
	same("KeyState OR", ids(`[{"Key":"KeyState","Values":["Disabled","PendingDeletion","PendingImport"]}]`), aes.ID, rsaEnc.ID, ext.ID)
	same("KeySpec", ids(`[{"Key":"KeySpec","Values":["RSA_2048"]}]`), rsaEnc.ID, rsaSign.ID)
	same("KeyUsage", ids(`[{"Key":"KeyUsage","Values":["SIGN/VERIFY"]}]`), rsaSign.ID, ec.ID)
	same("DKMSInstanceId", ids(`[{"Key":"DKMSInstanceId","Values":["`+second.ID+`"]}]`), rsaSign.ID, ec.ID)
	same("ProtectionLevel HSM", ids(`[{"Key":"ProtectionLevel","Values":["HSM"]}]`))
	same("ProtectionLevel SOFTWARE", ids(`[{"Key":"ProtectionLevel","Values":["SOFTWARE"]}]`), aes.ID, rsaEnc.ID, rsaSign.ID, ec.ID, ext.ID, def.ID)
	same("CreatorType User", ids(`[{"Key":"CreatorType","Values":["User"]}]`), aes.ID, rsaEnc.ID, rsaSign.ID, ec.ID, ext.ID, def.ID)
	same("AND across keys", ids(`[{"Key":"KeySpec","Values":["RSA_2048","Aliyun_AES_256"]},{"Key":"KeyState","Values":["Enabled","PendingImport"]}]`), rsaSign.ID, ext.ID, def.ID)
	same("AND with nothing in common", ids(`[{"Key":"KeySpec","Values":["EC_P256K"]},{"Key":"KeyUsage","Values":["ENCRYPT/DECRYPT"]}]`))
	// Paging applies after filtering.
	fs, _ := ParseKeyFilters(`[{"Key":"KeyState","Values":["Enabled"]}]`)
	l, err := e.svc.ListKeys(bg, e.caller, Page{Number: 2, Size: 2}, fs)
	page, total := l.Items, l.Total
	if err != nil || total != 3 || len(page) != 1 || page[0].ID != def.ID {
		t.Errorf("page 2 of 2: %d keys of %d, %v", len(page), total, err)
	}
}

func TestKmsInstances_ListAndGet(t *testing.T) {
	e := newSvcEnv(t)
	second, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Name: "second"})
	if err != nil || second.Type != InstanceSoftware || second.KeyQuota != DefaultKeyQuota {
		t.Fatalf("CreateInstance: %+v %v", second, err)
	}
	e.createKey(t, CreateKeyInput{DKMSInstanceID: second.ID})
	l, err := e.svc.ListKmsInstances(bg, e.caller, Page{})
	list, total := l.Items, l.Total
	if err != nil || total != 2 || len(list) != 2 {
		t.Fatalf("ListKmsInstances: %d of %d, %v", len(list), total, err)
	}
	in, err := e.svc.GetKmsInstance(bg, e.caller, second.ID)
	if err != nil || in.KeysUsed != 1 || in.Name != "second" {
		t.Fatalf("GetKmsInstance: %+v %v", in, err)
	}
	if arn := e.svc.InstanceArn(in); arn != "acs:kms:local:"+e.caller.AccountID+":keystore/"+second.ID {
		t.Errorf("ARN %s", arn)
	}
	_, err = e.svc.GetKmsInstance(bg, e.caller, "")
	wantErr(t, "no id", err, ErrMissingParameter)
	_, err = e.svc.GetKmsInstance(bg, e.caller, "kst-nosuch")
	wantErr(t, "unknown id", err, fsm.ErrInstanceNotFound)
	_, err = e.svc.GetKmsInstance(bg, rootCaller("1999999999999999", ""), second.ID)
	wantErr(t, "another account's instance", err, fsm.ErrInstanceNotFound)
	_, _, err = e.svc.CreateInstance(bg, e.caller, InstanceInput{Type: "hardware"})
	wantErr(t, "hardware instance", err, ErrInvalidParameter)
	_, err = e.svc.ListKmsInstances(bg, e.caller, Page{Size: 101})
	wantErr(t, "page size 101", err, ErrInvalidParameter)
}

// TestAsymmetric_KeyVersionIdSelectsTheVersion: signing and public keys are
// per version, and the version must be named.
func TestAsymmetric_KeyVersionIdSelectsTheVersion(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{KeySpec: kcrypto.SpecECP256})
	v1 := k.PrimaryVersion
	v2, _, err := e.svc.CreateKeyVersion(bg, e.caller, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("versions"))
	_, err = e.svc.AsymmetricSign(bg, e.caller, SignInput{KeyVersionRef: KeyVersionRef{Key: k.ID, Version: ""}, Algorithm: kcrypto.AlgECDSASHA256, Digest: digest[:]})
	wantErr(t, "no KeyVersionId", err, ErrMissingParameter)
	sig, err := e.svc.AsymmetricSign(bg, e.caller, SignInput{KeyVersionRef: KeyVersionRef{Key: k.ID, Version: v1}, Algorithm: kcrypto.AlgECDSASHA256, Digest: digest[:]})
	if err != nil || sig.KeyVersionID != v1 {
		t.Fatalf("sign with v1: %v %s", err, sig.KeyVersionID)
	}
	for v, want := range map[string]bool{v1: true, v2.ID: false} {
		r, err := e.svc.AsymmetricVerify(bg, e.caller, VerifyInput{KeyVersionRef: KeyVersionRef{Key: k.ID, Version: v}, Algorithm: kcrypto.AlgECDSASHA256, Digest: digest[:], Signature: sig.Value})
		if err != nil || r.Valid != want {
			t.Errorf("verify v1's signature with %s: %v %v, want %v", v, r.Valid, err, want)
		}
	}
	p1, _ := e.svc.GetPublicKey(bg, e.caller, KeyVersionRef{Key: k.ID, Version: v1})
	p2, _ := e.svc.GetPublicKey(bg, e.caller, KeyVersionRef{Key: k.ID, Version: v2.ID})
	if p1.PublicKeyPEM == "" || p1.PublicKeyPEM == p2.PublicKeyPEM {
		t.Error("the versions share a public key")
	}
	other := e.createKey(t, CreateKeyInput{KeySpec: kcrypto.SpecECP256})
	_, err = e.svc.AsymmetricSign(bg, e.caller, SignInput{KeyVersionRef: KeyVersionRef{Key: other.ID, Version: v1}, Algorithm: kcrypto.AlgECDSASHA256, Digest: digest[:]})
	wantErr(t, "another key's version", err, ErrKeyVersionNotFound)
	_, err = e.svc.GetPublicKey(bg, e.caller, KeyVersionRef{Key: k.ID, Version: base64.StdEncoding.EncodeToString([]byte("x"))})
	wantErr(t, "unknown version", err, ErrKeyVersionNotFound)
}

// TestAutomaticRotation_ContinuesPastFiftyVersions: the 50-version limit is
// CreateKeyVersion's (manual rotation, /work/shared/notes: "Manual
// CreateKeyVersion: at most 50 versions"); automatic rotation must go on,
// or a key rotated every 7 days stops rotating within a year. Apply's
// applyCreateKeyVersion (fsm/catalogue.go) refuses every new version past
// MaxVersionsPerKey, automatic ones included, so the scheduler's rotation
// fails with ErrVersionLimit on every tick from the 50th version on.
func TestAutomaticRotation_ContinuesPastFiftyVersions(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{EnableAutomaticRotation: true, RotationInterval: "7d"})
	for i := range fsm.MaxVersionsPerKey + 5 {
		e.clock.Advance(7 * 24 * time.Hour)
		n, err := e.svc.SchedulerTick(bg)
		if err != nil || n != 1 {
			t.Fatalf("rotation %d (week %d): %d changes, %v", i+1, 7*(i+1), n, err)
		}
	}
	if got := len(e.key(t, k.ID).Versions); got != fsm.MaxVersionsPerKey+6 {
		t.Errorf("%d versions after %d automatic rotations", got, fsm.MaxVersionsPerKey+5)
	}
}
