package kms

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// AsymmetricResult carries an asymmetric operation's output and the key
// version that produced it.
type AsymmetricResult struct {
	KeyID        string
	KeyVersionID string
	Value        []byte // signature, ciphertext or plaintext
	Valid        bool   // AsymmetricVerify
	PublicKeyPEM string // GetPublicKey
}

// KeyVersionRef names one version of a key.
type KeyVersionRef struct {
	Key     string // id, alias or ARN
	Version string // the key version id; required by every asymmetric operation
}

// SignInput is a digest to sign with a version's private key.
type SignInput struct {
	KeyVersionRef
	Algorithm string // RSA_PSS_SHA_256, RSA_PKCS1_SHA_256 or ECDSA_SHA_256
	Digest    []byte // SHA-256, 32 bytes
}

// VerifyInput is a signature to check over a digest.
type VerifyInput struct {
	KeyVersionRef
	Algorithm string
	Digest    []byte
	Signature []byte
}

// AsymmetricEncryptInput is plaintext to encrypt to a version's public key.
type AsymmetricEncryptInput struct {
	KeyVersionRef
	Algorithm string // RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1
	Plaintext []byte
}

// AsymmetricDecryptInput is ciphertext to decrypt with a version's private
// key.
type AsymmetricDecryptInput struct {
	KeyVersionRef
	Algorithm  string
	Ciphertext []byte
}

// asymmetricVersion resolves the key and the version an asymmetric action
// names. The service requires KeyVersionId for these actions.
func (s *Service) asymmetricVersion(ctx context.Context, c Caller, ref, versionID, op, usage string) (*fsm.Key, *fsm.KeyVersion, error) {
	if versionID == "" {
		return nil, nil, missing(FieldKeyVersionID)
	}
	if err := s.fresh(ctx); err != nil {
		return nil, nil, err
	}
	k, err := s.keyFor(ctx, c, "kms:"+op, FieldKey, ref, nil)
	if err != nil {
		return nil, nil, err
	}
	if kcrypto.IsSymmetric(k.Spec) {
		return nil, nil, fmt.Errorf("%w: %s needs an asymmetric key; %s is %s", ErrKeyUsage, op, k.ID, k.Spec)
	}
	if usage != "" {
		if err := usable(k, op, usage); err != nil {
			return nil, nil, err
		}
	} else if k.State != fsm.StateEnabled {
		return nil, nil, fsm.NewKeyStateError(op, k.State)
	}
	v, ok := s.fsm.KeyVersion(versionID)
	if !ok || v.KeyID != k.ID {
		return nil, nil, fmt.Errorf("%w: version %s of key %s", ErrKeyVersionNotFound, versionID, k.ID)
	}
	noteKey(ctx, k.ID, v.ID)
	return k, v, nil
}

func checkSignAlgorithm(spec, alg string) error {
	if alg == "" {
		return missing(FieldAlgorithm)
	}
	ok := (kcrypto.IsRSA(spec) && (alg == kcrypto.AlgRSAPSSSHA256 || alg == kcrypto.AlgRSAPKCS1SHA256)) ||
		(kcrypto.IsEC(spec) && alg == kcrypto.AlgECDSASHA256)
	if !ok {
		return invalid(FieldAlgorithm, fmt.Sprintf("%s keys sign with %s", spec, signAlgorithms(spec)))
	}
	return nil
}

func signAlgorithms(spec string) string {
	if kcrypto.IsRSA(spec) {
		return "RSA_PSS_SHA_256 or RSA_PKCS1_SHA_256"
	}
	return "ECDSA_SHA_256"
}

func checkDigest(digest []byte) error {
	if len(digest) == 0 {
		return missing(FieldDigest)
	}
	if len(digest) != sha256.Size {
		return invalid(FieldDigest, fmt.Sprintf("the Base64 of a 32-byte SHA-256 digest is expected, got %d bytes", len(digest)))
	}
	return nil
}

// AsymmetricSign signs a SHA-256 digest.
func (s *Service) AsymmetricSign(ctx context.Context, c Caller, in SignInput) (AsymmetricResult, error) {
	ref, versionID, alg, digest := in.Key, in.Version, in.Algorithm, in.Digest
	if err := checkDigest(digest); err != nil {
		return AsymmetricResult{}, err
	}
	k, v, err := s.asymmetricVersion(ctx, c, ref, versionID, "AsymmetricSign", UsageSignVerify)
	if err != nil {
		return AsymmetricResult{}, err
	}
	if err := checkSignAlgorithm(k.Spec, alg); err != nil {
		return AsymmetricResult{}, err
	}
	if isDryRun(ctx) {
		return AsymmetricResult{}, ErrDryRun
	}
	sig, err := s.storeFor(v).Sign(ctx, k, v, alg, digest)
	if err != nil {
		return AsymmetricResult{}, err
	}
	return AsymmetricResult{KeyID: k.ID, KeyVersionID: v.ID, Value: sig}, nil
}

// AsymmetricVerify checks a signature over a SHA-256 digest.
func (s *Service) AsymmetricVerify(ctx context.Context, c Caller, in VerifyInput) (AsymmetricResult, error) {
	ref, versionID, alg, digest, sig := in.Key, in.Version, in.Algorithm, in.Digest, in.Signature
	if err := checkDigest(digest); err != nil {
		return AsymmetricResult{}, err
	}
	if len(sig) == 0 {
		return AsymmetricResult{}, missing(FieldSignature)
	}
	k, v, err := s.asymmetricVersion(ctx, c, ref, versionID, "AsymmetricVerify", UsageSignVerify)
	if err != nil {
		return AsymmetricResult{}, err
	}
	if err := checkSignAlgorithm(k.Spec, alg); err != nil {
		return AsymmetricResult{}, err
	}
	if isDryRun(ctx) {
		return AsymmetricResult{}, ErrDryRun
	}
	ok, err := kcrypto.Verify(k.Spec, alg, v.PublicKey, digest, sig)
	if err != nil {
		return AsymmetricResult{}, err
	}
	return AsymmetricResult{KeyID: k.ID, KeyVersionID: v.ID, Valid: ok}, nil
}

func checkOAEP(spec, alg string) error {
	if alg == "" {
		return missing(FieldAlgorithm)
	}
	if !kcrypto.IsRSA(spec) || (alg != kcrypto.AlgRSAOAEPSHA256 && alg != kcrypto.AlgRSAOAEPSHA1) {
		return invalid(FieldAlgorithm, fmt.Sprintf("%s keys encrypt with RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1", spec))
	}
	return nil
}

// AsymmetricEncrypt encrypts with a version's RSA public key.
func (s *Service) AsymmetricEncrypt(ctx context.Context, c Caller, in AsymmetricEncryptInput) (AsymmetricResult, error) {
	ref, versionID, alg, plaintext := in.Key, in.Version, in.Algorithm, in.Plaintext
	if len(plaintext) == 0 {
		return AsymmetricResult{}, missing(FieldPlaintext)
	}
	k, v, err := s.asymmetricVersion(ctx, c, ref, versionID, "AsymmetricEncrypt", UsageEncryptDecrypt)
	if err != nil {
		return AsymmetricResult{}, err
	}
	if err := checkOAEP(k.Spec, alg); err != nil {
		return AsymmetricResult{}, err
	}
	max, _ := kcrypto.MaxOAEPPlaintext(k.Spec, alg)
	if len(plaintext) > max {
		return AsymmetricResult{}, invalid(FieldPlaintext, fmt.Sprintf("%s with %s takes at most %d bytes", k.Spec, alg, max))
	}
	if isDryRun(ctx) {
		return AsymmetricResult{}, ErrDryRun
	}
	ct, err := kcrypto.EncryptOAEP(alg, v.PublicKey, plaintext)
	if err != nil {
		return AsymmetricResult{}, err
	}
	return AsymmetricResult{KeyID: k.ID, KeyVersionID: v.ID, Value: ct}, nil
}

// AsymmetricDecrypt decrypts with a version's RSA private key.
func (s *Service) AsymmetricDecrypt(ctx context.Context, c Caller, in AsymmetricDecryptInput) (AsymmetricResult, error) {
	ref, versionID, alg, ciphertext := in.Key, in.Version, in.Algorithm, in.Ciphertext
	if len(ciphertext) == 0 {
		return AsymmetricResult{}, missing(FieldCiphertext)
	}
	k, v, err := s.asymmetricVersion(ctx, c, ref, versionID, "AsymmetricDecrypt", UsageEncryptDecrypt)
	if err != nil {
		return AsymmetricResult{}, err
	}
	if err := checkOAEP(k.Spec, alg); err != nil {
		return AsymmetricResult{}, err
	}
	// A dry run decrypts too, as Decrypt does: it refuses a bad ciphertext
	// like the real call, then answers DryRunOperationError.
	pt, err := s.storeFor(v).DecryptAsymmetric(ctx, k, v, alg, ciphertext)
	if err != nil {
		return AsymmetricResult{}, err
	}
	if isDryRun(ctx) {
		clear(pt)
		return AsymmetricResult{}, ErrDryRun
	}
	return AsymmetricResult{KeyID: k.ID, KeyVersionID: v.ID, Value: pt}, nil
}

// GetPublicKey returns a version's public key as PEM.
func (s *Service) GetPublicKey(ctx context.Context, c Caller, ref KeyVersionRef) (AsymmetricResult, error) {
	k, v, err := s.asymmetricVersion(ctx, c, ref.Key, ref.Version, "GetPublicKey", "")
	if err != nil {
		return AsymmetricResult{}, err
	}
	if isDryRun(ctx) {
		return AsymmetricResult{}, ErrDryRun
	}
	return AsymmetricResult{KeyID: k.ID, KeyVersionID: v.ID, PublicKeyPEM: kcrypto.PublicKeyPEM(v.PublicKey)}, nil
}

// ExportInput names the public key a data key is exported to.
type ExportInput struct {
	PublicKeyBlob     []byte // DER SubjectPublicKeyInfo or PKCS#1 of an RSA key
	WrappingKeySpec   string // RSA_2048
	WrappingAlgorithm string // RSAES_OAEP_SHA_256 | RSAES_OAEP_SHA_1
}

// ExportedDataKey is a data key sealed under a master key and encrypted to
// a caller's public key.
type ExportedDataKey struct {
	Sealed
	ExportedDataKey []byte
}

func (in ExportInput) check() ([]byte, error) {
	if len(in.PublicKeyBlob) == 0 {
		return nil, missing(FieldPublicKey)
	}
	if in.WrappingKeySpec == "" {
		return nil, missing(FieldWrappingKeySpec)
	}
	if in.WrappingKeySpec != kcrypto.SpecRSA2048 {
		return nil, invalid(FieldWrappingKeySpec, "must be RSA_2048")
	}
	if in.WrappingAlgorithm == "" {
		return nil, missing(FieldWrappingAlgorithm)
	}
	if in.WrappingAlgorithm != kcrypto.AlgRSAOAEPSHA256 && in.WrappingAlgorithm != kcrypto.AlgRSAOAEPSHA1 {
		return nil, invalid(FieldWrappingAlgorithm, "must be RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1")
	}
	spki, bits, err := kcrypto.ParseRSAPublicKey(in.PublicKeyBlob)
	if err != nil {
		return nil, invalid(FieldPublicKey, "the Base64 of a DER-encoded RSA public key is expected")
	}
	if bits != 2048 {
		return nil, invalid(FieldPublicKey, fmt.Sprintf("the key has %d bits; %s RSA_2048 needs 2048", bits, FieldWrappingKeySpec.Ref()))
	}
	return spki, nil
}

// GenerateAndExportDataKey makes a data key, seals it under the master key
// (as GenerateDataKey does) and encrypts its raw bytes to the caller's RSA
// public key.
func (s *Service) GenerateAndExportDataKey(ctx context.Context, c Caller, dk DataKeyInput, in ExportInput) (ExportedDataKey, error) {
	ref, keySpec, numberOfBytes, encCtx := dk.Key, dk.KeySpec, dk.NumberOfBytes, dk.EncryptionContext
	spki, err := in.check()
	if err != nil {
		return ExportedDataKey{}, err
	}
	max, _ := kcrypto.MaxOAEPPlaintext(kcrypto.SpecRSA2048, in.WrappingAlgorithm)
	if numberOfBytes > max {
		return ExportedDataKey{}, invalid(FieldNumberOfBytes, fmt.Sprintf("RSA_2048 with %s carries at most %d bytes", in.WrappingAlgorithm, max))
	}
	key, err := s.generateDataKey(ctx, c, "kms:GenerateAndExportDataKey", ref, keySpec, numberOfBytes, encCtx)
	if err != nil {
		return ExportedDataKey{}, err
	}
	raw, _ := base64.StdEncoding.DecodeString(key.Plaintext)
	defer clear(raw)
	exported, err := kcrypto.EncryptOAEP(in.WrappingAlgorithm, spki, raw)
	if err != nil {
		return ExportedDataKey{}, err
	}
	return ExportedDataKey{Sealed: key.Sealed, ExportedDataKey: exported}, nil
}

// ExportDataKey decrypts a data key's CiphertextBlob and encrypts the data
// key to the caller's RSA public key.
func (s *Service) ExportDataKey(ctx context.Context, c Caller, dk DecryptInput, in ExportInput) (ExportedDataKey, error) {
	blob, encCtx := dk.Ciphertext, dk.EncryptionContext
	spki, err := in.check()
	if err != nil {
		return ExportedDataKey{}, err
	}
	opened, err := s.open(ctx, c, "ExportDataKey", "kms:ExportDataKey", blob, encCtx)
	if err != nil {
		return ExportedDataKey{}, err
	}
	defer clear(opened.Plaintext)
	raw, err := base64.StdEncoding.DecodeString(string(opened.Plaintext))
	if err != nil {
		// Not a data key from GenerateDataKey: export the bytes as they are.
		raw = append([]byte(nil), opened.Plaintext...)
	}
	defer clear(raw)
	if max, _ := kcrypto.MaxOAEPPlaintext(kcrypto.SpecRSA2048, in.WrappingAlgorithm); len(raw) > max {
		return ExportedDataKey{}, invalid(FieldCiphertext, fmt.Sprintf("the data key is %d bytes; RSA_2048 with %s carries at most %d", len(raw), in.WrappingAlgorithm, max))
	}
	exported, err := kcrypto.EncryptOAEP(in.WrappingAlgorithm, spki, raw)
	if err != nil {
		return ExportedDataKey{}, err
	}
	return ExportedDataKey{Sealed: Sealed{KeyID: opened.KeyID, KeyVersionID: opened.KeyVersionID}, ExportedDataKey: exported}, nil
}
