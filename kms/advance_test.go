package kms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

func TestAdvanceEncrypt_DecryptsWithoutKeyIdBeforeAndAfterRotation(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	cases := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"one byte, no aad", []byte{0}, nil},
		{"binary with aad", []byte{0xff, 0x00, 0x10, 'x'}, []byte("tenant=7")},
		{"largest plaintext", bytes.Repeat([]byte{7}, kcrypto.MaxPlaintextSize), bytes.Repeat([]byte{1}, MaxAADSize)},
	}
	var blobs [][]byte
	for _, c := range cases {
		sealed, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k.ID, Plaintext: c.plaintext, AAD: c.aad})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if sealed.KeyID != k.ID || sealed.KeyVersionID != k.PrimaryVersion || sealed.Algorithm != AlgorithmAESGCM || len(sealed.IV) != kcrypto.NonceSize {
			t.Fatalf("%s: answer %+v", c.name, sealed)
		}
		blobs = append(blobs, sealed.CiphertextBlob)
		opened, err := e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{Ciphertext: sealed.CiphertextBlob, AAD: c.aad, IV: sealed.IV, Key: k.ID})
		if err != nil || !bytes.Equal(opened.Plaintext, c.plaintext) || opened.KeyVersionID != k.PrimaryVersion {
			t.Fatalf("%s: decrypt = %+v, %v", c.name, opened.KeyVersionID, err)
		}
	}
	v2, _, err := e.svc.CreateKeyVersion(bg, e.caller, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		opened, err := e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{Ciphertext: blobs[i], AAD: c.aad})
		if err != nil || !bytes.Equal(opened.Plaintext, c.plaintext) || opened.KeyVersionID != k.PrimaryVersion {
			t.Errorf("%s after rotation: version %q, %v", c.name, opened.KeyVersionID, err)
		}
	}
	sealed, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k.ID, Plaintext: []byte("new")})
	if err != nil || sealed.KeyVersionID != v2.ID {
		t.Fatalf("after rotation sealed under %q (%v), want the new version %s", sealed.KeyVersionID, err, v2.ID)
	}
}

// The instance face's Encrypt/Decrypt carry Aad as the context entry
// "Aad"; Advance blobs and theirs open each other.
func TestAdvanceBlobs_OpenWithDecryptAndDecryptBlobsOpenWithAdvanceDecrypt(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	for _, aad := range [][]byte{nil, []byte("tenant\x00=7")} {
		var encCtx map[string]string
		if aad != nil {
			encCtx = map[string]string{"Aad": base64.StdEncoding.EncodeToString(aad)}
		}
		sealed, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k.ID, Plaintext: []byte("same format"), AAD: aad})
		if err != nil {
			t.Fatal(err)
		}
		opened, err := e.svc.Decrypt(bg, e.caller, DecryptInput{Ciphertext: sealed.CiphertextBlob, EncryptionContext: encCtx})
		if err != nil || string(opened.Plaintext) != "same format" {
			t.Fatalf("aad %q: Decrypt of an Advance blob = %q, %v", aad, opened.Plaintext, err)
		}
		plain, err := e.svc.Encrypt(bg, e.caller, EncryptInput{Key: k.ID, Plaintext: []byte("other way"), EncryptionContext: encCtx})
		if err != nil {
			t.Fatal(err)
		}
		back, err := e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{Ciphertext: plain.CiphertextBlob, AAD: aad, Key: k.ID})
		if err != nil || string(back.Plaintext) != "other way" {
			t.Fatalf("aad %q: AdvanceDecrypt of an Encrypt blob = %q, %v", aad, back.Plaintext, err)
		}
	}
}

func TestAdvanceDecrypt_RefusesTamperedOrMismatchedBlobs(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	other := e.createKey(t, CreateKeyInput{})
	aad := []byte("bound")
	sealed, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k.ID, Plaintext: []byte("secret"), AAD: aad})
	if err != nil {
		t.Fatal(err)
	}
	blob := sealed.CiphertextBlob
	flip := func(i int) []byte {
		b := append([]byte(nil), blob...)
		b[i] ^= 1
		return b
	}
	badIV := append([]byte(nil), sealed.IV...)
	badIV[0] ^= 1
	cases := []struct {
		name string
		in   AdvanceDecryptInput
	}{
		{"flipped tag", AdvanceDecryptInput{Ciphertext: flip(len(blob) - 1), AAD: aad}},
		{"flipped ciphertext", AdvanceDecryptInput{Ciphertext: flip(len(blob) - 17), AAD: aad}},
		{"flipped nonce", AdvanceDecryptInput{Ciphertext: flip(20), AAD: aad}},
		{"flipped version id", AdvanceDecryptInput{Ciphertext: flip(3), AAD: aad}},
		{"unknown format", AdvanceDecryptInput{Ciphertext: flip(0), AAD: aad}},
		{"truncated", AdvanceDecryptInput{Ciphertext: blob[:kcrypto.MinCiphertextSize-1], AAD: aad}},
		{"another aad", AdvanceDecryptInput{Ciphertext: blob, AAD: []byte("bounD")}},
		{"no aad", AdvanceDecryptInput{Ciphertext: blob}},
		{"another iv", AdvanceDecryptInput{Ciphertext: blob, AAD: aad, IV: badIV}},
		{"another key named", AdvanceDecryptInput{Ciphertext: blob, AAD: aad, Key: other.ID}},
	}
	for _, c := range cases {
		e.unchanged(t, c.name, func() {
			got, err := e.svc.AdvanceDecrypt(bg, e.caller, c.in)
			if !errors.Is(err, kcrypto.ErrInvalidCiphertext) || got.Plaintext != nil {
				t.Errorf("%s: %q, %v; want ErrInvalidCiphertext", c.name, got.Plaintext, err)
			}
		})
	}
}

// advanceOps calls each operation of this file on key with valid inputs.
var advanceOps = []struct {
	name string
	call func(s *Service, c Caller, key string) error
}{
	{"AdvanceEncrypt", func(s *Service, c Caller, key string) error {
		_, err := s.AdvanceEncrypt(bg, c, AdvanceEncryptInput{Key: key, Plaintext: []byte("x")})
		return err
	}},
	{"AdvanceGenerateDataKey", func(s *Service, c Caller, key string) error {
		_, err := s.AdvanceGenerateDataKey(bg, c, AdvanceDataKeyInput{Key: key})
		return err
	}},
	{"GenerateDataKeyPair", func(s *Service, c Caller, key string) error {
		_, err := s.GenerateDataKeyPair(bg, c, DataKeyPairInput{Key: key, KeyPairSpec: "EC_P256"})
		return err
	}},
	{"GenerateDataKeyPairWithoutPlaintext", func(s *Service, c Caller, key string) error {
		_, err := s.GenerateDataKeyPairWithoutPlaintext(bg, c, DataKeyPairInput{Key: key, KeyPairSpec: "EC_P256"})
		return err
	}},
	{"AdvanceGenerateDataKeyPair", func(s *Service, c Caller, key string) error {
		_, err := s.AdvanceGenerateDataKeyPair(bg, c, DataKeyPairInput{Key: key, KeyPairSpec: "EC_P256"})
		return err
	}},
	{"AdvanceGenerateDataKeyPairWithoutPlaintext", func(s *Service, c Caller, key string) error {
		_, err := s.AdvanceGenerateDataKeyPairWithoutPlaintext(bg, c, DataKeyPairInput{Key: key, KeyPairSpec: "EC_P256"})
		return err
	}},
}

func TestAdvanceOps_RefuseKeysTheyMayNotUse(t *testing.T) {
	e := newSvcEnv(t)
	disabled := e.createKey(t, CreateKeyInput{})
	sealed, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: disabled.ID, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetKeyEnabled(bg, e.caller, disabled.ID, false); err != nil {
		t.Fatal(err)
	}
	rsaKey := e.createKey(t, CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: UsageEncryptDecrypt})
	signKey := e.createKey(t, CreateKeyInput{KeySpec: "EC_P256", KeyUsage: "SIGN/VERIFY"})
	mine := e.createKey(t, CreateKeyInput{})
	stranger := e.otherAccount(t)
	for _, op := range advanceOps {
		e.unchanged(t, op.name, func() {
			wantState(t, op.name+" with a disabled key", op.call(e.svc, e.caller, disabled.ID), fsm.StateDisabled)
			wantErr(t, op.name+" with an RSA key", op.call(e.svc, e.caller, rsaKey.ID), ErrKeyUsage)
			wantErr(t, op.name+" with a signing key", op.call(e.svc, e.caller, signKey.ID), ErrKeyUsage)
			wantErr(t, op.name+" with another account's key", op.call(e.svc, stranger, e.svc.KeyArn(mine)), ErrNoPermission)
			wantErr(t, op.name+" with no key", op.call(e.svc, e.caller, ""), ErrMissingParameter)
			wantErr(t, op.name+" with an unknown key", op.call(e.svc, e.caller, "00000000-0000-4000-8000-000000000000"), fsm.ErrKeyNotFound)
		})
	}
	_, err = e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{Ciphertext: sealed.CiphertextBlob})
	wantState(t, "AdvanceDecrypt under a disabled key", err, fsm.StateDisabled)
	other, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: mine.ID, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AdvanceDecrypt(bg, stranger, AdvanceDecryptInput{Ciphertext: other.CiphertextBlob})
	wantErr(t, "AdvanceDecrypt of another account's blob", err, ErrNoPermission)
}

func TestAdvanceOps_RefuseBadInputsWithTheirField(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{}).ID
	sealed, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	bigAAD := make([]byte, MaxAADSize+1)
	pair := func(in DataKeyPairInput) error {
		in.Key = k
		_, err := e.svc.GenerateDataKeyPair(bg, e.caller, in)
		return err
	}
	cases := []struct {
		name  string
		call  func() error
		field Field
		want  error
	}{
		{"no plaintext", func() error {
			_, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k})
			return err
		}, FieldPlaintext, ErrMissingParameter},
		{"plaintext over 6 KiB", func() error {
			_, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k, Plaintext: make([]byte, kcrypto.MaxPlaintextSize+1)})
			return err
		}, FieldPlaintext, ErrInvalidParameter},
		{"AES_CBC", func() error {
			_, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k, Plaintext: []byte("x"), Algorithm: "AES_CBC"})
			return err
		}, FieldAlgorithm, ErrInvalidParameter},
		{"caller's IV", func() error {
			_, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k, Plaintext: []byte("x"), IV: make([]byte, 12)})
			return err
		}, FieldIV, ErrInvalidParameter},
		{"padding", func() error {
			_, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k, Plaintext: []byte("x"), PaddingMode: "PKCS7_PADDING"})
			return err
		}, FieldPaddingMode, ErrInvalidParameter},
		{"aad over 8 KiB", func() error {
			_, err := e.svc.AdvanceEncrypt(bg, e.caller, AdvanceEncryptInput{Key: k, Plaintext: []byte("x"), AAD: bigAAD})
			return err
		}, FieldAAD, ErrInvalidParameter},
		{"no ciphertext", func() error {
			_, err := e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{})
			return err
		}, FieldCiphertext, ErrMissingParameter},
		{"decrypt with AES_CTR", func() error {
			_, err := e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{Ciphertext: sealed.CiphertextBlob, Algorithm: "AES_CTR"})
			return err
		}, FieldAlgorithm, ErrInvalidParameter},
		{"decrypt with aad over 8 KiB", func() error {
			_, err := e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{Ciphertext: sealed.CiphertextBlob, AAD: bigAAD})
			return err
		}, FieldAAD, ErrInvalidParameter},
		{"data key of 1025 bytes", func() error {
			_, err := e.svc.AdvanceGenerateDataKey(bg, e.caller, AdvanceDataKeyInput{Key: k, NumberOfBytes: 1025})
			return err
		}, FieldNumberOfBytes, ErrInvalidParameter},
		{"data key of -1 bytes", func() error {
			_, err := e.svc.AdvanceGenerateDataKey(bg, e.caller, AdvanceDataKeyInput{Key: k, NumberOfBytes: -1})
			return err
		}, FieldNumberOfBytes, ErrInvalidParameter},
		{"no key pair spec", func() error { return pair(DataKeyPairInput{}) }, FieldKeyPairSpec, ErrMissingParameter},
		{"symmetric key pair spec", func() error { return pair(DataKeyPairInput{KeyPairSpec: "Aliyun_AES_256"}) }, FieldKeyPairSpec, ErrInvalidParameter},
		{"EC_SM2 key pair spec", func() error { return pair(DataKeyPairInput{KeyPairSpec: "EC_SM2"}) }, FieldKeyPairSpec, ErrInvalidParameter},
		{"lower-case key pair spec", func() error { return pair(DataKeyPairInput{KeyPairSpec: "rsa_2048"}) }, FieldKeyPairSpec, ErrInvalidParameter},
		{"JWK key format", func() error { return pair(DataKeyPairInput{KeyPairSpec: "EC_P256", KeyFormat: "JWK"}) }, FieldKeyFormat, ErrInvalidParameter},
		{"key pair with AES_CBC", func() error { return pair(DataKeyPairInput{KeyPairSpec: "EC_P256", Algorithm: "AES_CBC"}) }, FieldAlgorithm, ErrInvalidParameter},
		{"key pair with aad over 8 KiB", func() error { return pair(DataKeyPairInput{KeyPairSpec: "EC_P256", AAD: bigAAD}) }, FieldAAD, ErrInvalidParameter},
	}
	for _, c := range cases {
		e.unchanged(t, c.name, func() {
			err := c.call()
			wantErr(t, c.name, err, c.want)
			wantField(t, c.name, err, c.field)
		})
	}
}

func TestAdvanceGenerateDataKey_BlobDecryptsToThePlaintext(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	cases := []struct {
		numberOfBytes, want int
		aad                 []byte
	}{{0, 32, nil}, {1, 1, []byte("a")}, {16, 16, nil}, {1024, 1024, []byte("ctx")}}
	for _, c := range cases {
		dk, err := e.svc.AdvanceGenerateDataKey(bg, e.caller, AdvanceDataKeyInput{Key: k.ID, NumberOfBytes: c.numberOfBytes, AAD: c.aad})
		if err != nil {
			t.Fatalf("%d bytes: %v", c.numberOfBytes, err)
		}
		if len(dk.Plaintext) != c.want || dk.KeyVersionID != k.PrimaryVersion || len(dk.IV) != kcrypto.NonceSize {
			t.Fatalf("%d bytes: %d-byte key, version %q", c.numberOfBytes, len(dk.Plaintext), dk.KeyVersionID)
		}
		opened, err := e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{Ciphertext: dk.CiphertextBlob, AAD: c.aad})
		if err != nil || !bytes.Equal(opened.Plaintext, dk.Plaintext) {
			t.Fatalf("%d bytes: the blob opens to another key (%v)", c.numberOfBytes, err)
		}
	}
}

type keyPairOp func(s *Service, ctx context.Context, c Caller, in DataKeyPairInput) (DataKeyPair, error)

func TestGenerateDataKeyPair_PrivateKeyMatchesPublicKeyAndBlob(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	ops := []struct {
		name          string
		op            keyPairOp
		withPlaintext bool
	}{
		{"GenerateDataKeyPair", (*Service).GenerateDataKeyPair, true},
		{"GenerateDataKeyPairWithoutPlaintext", (*Service).GenerateDataKeyPairWithoutPlaintext, false},
		{"AdvanceGenerateDataKeyPair", (*Service).AdvanceGenerateDataKeyPair, true},
		{"AdvanceGenerateDataKeyPairWithoutPlaintext", (*Service).AdvanceGenerateDataKeyPairWithoutPlaintext, false},
	}
	specs := []struct{ spec, format string }{
		{"RSA_2048", "DER"}, {"RSA_2048", "PEM"}, {"EC_P256", "DER"}, {"EC_P256", ""}, {"EC_P256K", "DER"}, {"EC_P256K", "PEM"},
	}
	for _, op := range ops {
		for _, sp := range specs {
			name := op.name + " " + sp.spec + " " + sp.format
			aad := []byte(name)
			pair, err := op.op(e.svc, bg, e.caller, DataKeyPairInput{Key: k.ID, KeyPairSpec: sp.spec, KeyFormat: sp.format, AAD: aad})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			wantFormat := sp.format
			if wantFormat == "" {
				wantFormat = "PEM"
			}
			if pair.KeyPairSpec != sp.spec || pair.KeyFormat != wantFormat || pair.KeyID != k.ID || pair.KeyVersionID != k.PrimaryVersion || pair.Algorithm != AlgorithmAESGCM {
				t.Fatalf("%s: answer %s %s %s %s %s", name, pair.KeyPairSpec, pair.KeyFormat, pair.KeyID, pair.KeyVersionID, pair.Algorithm)
			}
			if (pair.PrivateKeyPlaintext != nil) != op.withPlaintext {
				t.Fatalf("%s: plaintext private key present = %v", name, pair.PrivateKeyPlaintext != nil)
			}
			opened, err := e.svc.AdvanceDecrypt(bg, e.caller, AdvanceDecryptInput{Ciphertext: pair.PrivateKeyCiphertextBlob, AAD: aad, IV: pair.IV})
			if len(pair.IV) != kcrypto.NonceSize {
				t.Fatalf("%s: IV of %d bytes", name, len(pair.IV))
			}
			if err != nil {
				t.Fatalf("%s: the encrypted private key does not open: %v", name, err)
			}
			if op.withPlaintext && !bytes.Equal(opened.Plaintext, pair.PrivateKeyPlaintext) {
				t.Fatalf("%s: the encrypted private key is not the plaintext one", name)
			}
			checkKeyPair(t, name, sp.spec, wantFormat, opened.Plaintext, pair.PublicKey)
		}
	}
	// The larger RSA specs, once each.
	for _, spec := range []string{"RSA_3072"} {
		pair, err := e.svc.GenerateDataKeyPair(bg, e.caller, DataKeyPairInput{Key: k.ID, KeyPairSpec: spec, KeyFormat: "DER"})
		if err != nil {
			t.Fatal(err)
		}
		checkKeyPair(t, spec, spec, "DER", pair.PrivateKeyPlaintext, pair.PublicKey)
	}
}

// checkKeyPair signs with the private key and verifies with the public
// key, with Go's crypto where it knows the curve.
func checkKeyPair(t *testing.T, name, spec, format string, private, public []byte) {
	t.Helper()
	if format == "PEM" {
		pb, rest := pem.Decode(private)
		if pb == nil || pb.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("%s: private key is not one PEM PRIVATE KEY block", name)
		}
		private = pb.Bytes
		ub, rest := pem.Decode(public)
		if ub == nil || ub.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("%s: public key is not one PEM PUBLIC KEY block", name)
		}
		public = ub.Bytes
	}
	digest := sha256.Sum256([]byte("message of " + name))
	if spec == "EC_P256K" {
		scalar, err := kcrypto.ParseSecp256k1PKCS8(private)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sig, err := kcrypto.Sign(spec, kcrypto.AlgECDSASHA256, scalar, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := kcrypto.Verify(spec, kcrypto.AlgECDSASHA256, public, digest[:], sig); !ok || err != nil {
			t.Fatalf("%s: the public key does not verify the private key's signature (%v)", name, err)
		}
		return
	}
	priv, err := x509.ParsePKCS8PrivateKey(private)
	if err != nil {
		t.Fatalf("%s: private key: %v", name, err)
	}
	pub, err := x509.ParsePKIXPublicKey(public)
	if err != nil {
		t.Fatalf("%s: public key: %v", name, err)
	}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if !strings.HasPrefix(spec, "RSA_") || !p.PublicKey.Equal(pub) {
			t.Fatalf("%s: RSA private key does not match the public key", name)
		}
		sig, err := rsa.SignPKCS1v15(rand.Reader, p, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	case *ecdsa.PrivateKey:
		if spec != "EC_P256" || !p.PublicKey.Equal(pub) {
			t.Fatalf("%s: EC private key does not match the public key", name)
		}
		sig, err := ecdsa.SignASN1(rand.Reader, p, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatalf("%s: signature does not verify", name)
		}
	default:
		t.Fatalf("%s: private key of type %T", name, priv)
	}
}
