//go:build cgo

package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/hsm/hsmtest"
)

// The service core with a real SoftHSM token (no Raft): the paths the
// cluster tests do not reach — material imported into an HSM key, the
// leader's automatic rotation of a hardware key, the watcher's verdicts.

type hsmEnv struct {
	*svcEnv
	tok       *hsm.Token
	domainKey []byte
	inst      string
}

func newHSMEnv(t *testing.T) *hsmEnv {
	t.Helper()
	soft := hsmtest.New(t, "k1")
	tok, err := hsm.Open(hsm.Config{ModulePath: soft.Module, TokenLabel: "k1", PIN: hsmtest.PIN, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	ctx := context.Background()
	if _, err := tok.Enroll(ctx, "d1", key); err != nil {
		t.Fatal(err)
	}
	e := newSvcEnv(t)
	// The same service, now with the token (New reads the domain's check
	// value from it).
	svc, err := New(Config{RootKey: e.root, FSM: e.fsm, Store: e.store, Clock: e.clock.Now, HSM: tok, HSMDomain: "d1", NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	st := svc.hsmTick(ctx)
	if st.Health != HSMHealthOK {
		t.Fatalf("first tick: %+v", st)
	}
	if d, ok := e.fsm.HSMDomain("d1"); !ok || d.RegisteredBy != "n1" {
		t.Fatalf("domain not registered by the first tick: %+v", d)
	}
	in, _, err := svc.CreateInstance(ctx, e.caller, InstanceInput{Type: InstanceHardware, HSMDomain: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	return &hsmEnv{svcEnv: e, tok: tok, domainKey: key, inst: in.ID}
}

func TestHSM_ImportedMaterialIsWrappedInTheToken(t *testing.T) {
	e := newHSMEnv(t)
	ctx := context.Background()
	k, _, err := e.svc.CreateKey(ctx, e.caller, CreateKeyInput{DKMSInstanceID: e.inst, KeySpec: "Aliyun_AES_192", Origin: OriginExternal})
	if err != nil {
		t.Fatal(err)
	}
	if k.State != fsm.StatePendingImport || k.ProtectionLevel != ProtectionHSM {
		t.Fatalf("key = %+v", k)
	}
	params, err := e.svc.GetParametersForImport(ctx, e.caller, ImportParametersInput{Key: k.ID, WrappingAlgorithm: kcrypto.AlgRSAOAEPSHA256, WrappingKeySpec: kcrypto.SpecRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(params.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	material := make([]byte, 24)
	rand.Read(material)
	enc, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ImportKeyMaterial(ctx, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: enc, ImportToken: params.ImportToken}); err != nil {
		t.Fatal(err)
	}
	v, _ := e.fsm.KeyVersion(k.PrimaryVersion)
	if v.Domain != "d1" {
		t.Fatalf("imported version = %+v", v)
	}
	if _, err := e.root.Unwrap(v.WrappedMaterial, kcrypto.MaterialAAD(k.ID, v.ID)); err == nil {
		t.Fatal("imported material is wrapped under the root key")
	}
	got, err := hsm.UnwrapKeyPad(e.domainKey, v.WrappedMaterial)
	if err != nil || !bytes.Equal(got, material) {
		t.Fatalf("the domain-wrapped blob does not hold the imported material: %v", err)
	}
	sealed, err := e.svc.Encrypt(ctx, e.caller, EncryptInput{Key: k.ID, Plaintext: []byte("aW1wb3J0ZWQ=")})
	if err != nil {
		t.Fatal(err)
	}
	// Made in the token, opens in Go with the imported material.
	opened, err := kcrypto.Open(material, sealed.CiphertextBlob, nil)
	if err != nil || string(opened) != "aW1wb3J0ZWQ=" {
		t.Fatalf("Go opens %q, %v", opened, err)
	}
	// And a blob made in Go with it opens in the token.
	blob, err := kcrypto.Seal(material, v.ID, []byte("Z28="), kcrypto.CanonicalContext(map[string]string{"a": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.Decrypt(ctx, e.caller, DecryptInput{Ciphertext: blob, EncryptionContext: map[string]string{"a": "b"}})
	if err != nil || string(out.Plaintext) != "Z28=" {
		t.Fatalf("Decrypt of a Go blob: %+v %v", out, err)
	}
	_, err = e.svc.Decrypt(ctx, e.caller, DecryptInput{Ciphertext: blob})
	wantErr(t, "wrong context", err, kcrypto.ErrInvalidCiphertext)
	// Only the same material may be imported again.
	other := make([]byte, 24)
	rand.Read(other)
	enc2, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), other, nil)
	_, err = e.svc.ImportKeyMaterial(ctx, e.caller, ImportMaterialInput{Key: k.ID, EncryptedMaterial: enc2, ImportToken: params.ImportToken})
	wantErr(t, "other material", err, ErrInvalidKeyMaterial)
}

func TestHSM_SchedulerRotatesHardwareKeys(t *testing.T) {
	e := newHSMEnv(t)
	ctx := context.Background()
	k, _, err := e.svc.CreateKey(ctx, e.caller, CreateKeyInput{DKMSInstanceID: e.inst, KeySpec: "Aliyun_AES_256", EnableAutomaticRotation: true, RotationInterval: "7d"})
	if err != nil {
		t.Fatal(err)
	}
	soft := e.createKey(t, CreateKeyInput{EnableAutomaticRotation: true, RotationInterval: "7d"})
	first := k.PrimaryVersion
	e.clock.Advance(7*24*time.Hour + time.Second)
	if n := e.tick(t); n != 2 {
		t.Fatalf("tick made %d changes, want 2", n)
	}
	k = e.key(t, k.ID)
	if k.PrimaryVersion == first || len(k.Versions) != 2 {
		t.Fatalf("not rotated: %+v", k)
	}
	if v, _ := e.fsm.KeyVersion(k.PrimaryVersion); v.Domain != "d1" {
		t.Fatalf("rotated version = %+v", v)
	}
	if e.key(t, soft.ID).PrimaryVersion == soft.PrimaryVersion {
		t.Fatal("software key not rotated")
	}

	// Without a token to make versions (the token is closed, no peer): the
	// software key still rotates, the hardware key waits for a later tick.
	e.tok.Close()
	e.clock.Advance(7*24*time.Hour + time.Second)
	n, err := e.svc.SchedulerTick(ctx)
	if n != 1 || !errors.Is(err, ErrHSMUnavailable) {
		t.Fatalf("tick without a token: %d changes, %v", n, err)
	}
}

func TestHSM_WatcherSeesAnotherKeyUnderTheName(t *testing.T) {
	e := newHSMEnv(t)
	ctx := context.Background()
	// Another token's value recorded first for a second domain this token
	// also holds: mismatch, with the reason.
	key2 := make([]byte, 32)
	rand.Read(key2)
	if _, err := e.tok.Enroll(ctx, "d2", key2); err != nil {
		t.Fatal(err)
	}
	register(t, e.svcEnv, "d2", []byte{0xaa, 0xbb, 0xcc})
	svc, err := New(Config{RootKey: e.root, FSM: e.fsm, Store: e.store, Clock: e.clock.Now, HSM: e.tok, HSMDomain: "d2", NodeID: "n2"})
	if err != nil {
		t.Fatal(err)
	}
	if st := svc.hsmTick(ctx); st.Health != HSMHealthMismatch || !bytes.Contains([]byte(st.Reason), []byte("aabbcc")) {
		t.Fatalf("status = %+v", st)
	}
	if svc.servesDomain("d2") {
		t.Fatal("a mismatched token serves the domain")
	}
	// A token that is not enrolled in the domain at all cannot be used.
	if _, err := New(Config{RootKey: e.root, FSM: e.fsm, Store: e.store, HSM: e.tok, HSMDomain: "d3"}); !errors.Is(err, hsm.ErrDomainNotEnrolled) {
		t.Fatalf("New with an unenrolled domain: %v", err)
	}
}

func TestHSM_AdvanceOpsWorkWithHardwareKeysAcrossRotation(t *testing.T) {
	e := newHSMEnv(t)
	ctx := context.Background()
	k, _, err := e.svc.CreateKey(ctx, e.caller, CreateKeyInput{DKMSInstanceID: e.inst, KeySpec: "Aliyun_AES_256"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := e.fsm.KeyVersion(k.PrimaryVersion); v.Domain != "d1" {
		t.Fatalf("not a hardware key: %+v", v)
	}
	aad := []byte("hsm")
	sealed, err := e.svc.AdvanceEncrypt(ctx, e.caller, AdvanceEncryptInput{Key: k.ID, Plaintext: []byte("in the token"), AAD: aad})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := e.svc.AdvanceGenerateDataKey(ctx, e.caller, AdvanceDataKeyInput{Key: k.ID, AAD: aad})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := e.svc.AdvanceGenerateDataKeyPair(ctx, e.caller, DataKeyPairInput{Key: k.ID, KeyPairSpec: "RSA_2048", KeyFormat: "DER", AAD: aad})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateKeyVersion(ctx, e.caller, k.ID); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		blob, want []byte
	}{
		{"AdvanceEncrypt", sealed.CiphertextBlob, []byte("in the token")},
		{"AdvanceGenerateDataKey", dk.CiphertextBlob, dk.Plaintext},
		{"AdvanceGenerateDataKeyPair", pair.PrivateKeyCiphertextBlob, pair.PrivateKeyPlaintext},
	}
	for _, c := range cases {
		opened, err := e.svc.AdvanceDecrypt(ctx, e.caller, AdvanceDecryptInput{Ciphertext: c.blob, AAD: aad})
		if err != nil || !bytes.Equal(opened.Plaintext, c.want) || opened.KeyVersionID != k.PrimaryVersion {
			t.Errorf("%s after rotation: %v", c.name, err)
		}
		tampered := append([]byte(nil), c.blob...)
		tampered[len(tampered)-1] ^= 1
		if _, err := e.svc.AdvanceDecrypt(ctx, e.caller, AdvanceDecryptInput{Ciphertext: tampered, AAD: aad}); !errors.Is(err, kcrypto.ErrInvalidCiphertext) {
			t.Errorf("%s tampered: %v, want ErrInvalidCiphertext", c.name, err)
		}
	}
	priv, err := x509.ParsePKCS8PrivateKey(pair.PrivateKeyPlaintext)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(pair.PublicKey)
	if err != nil || !priv.(*rsa.PrivateKey).PublicKey.Equal(pub) {
		t.Fatalf("the pair does not match (%v)", err)
	}
}
