package kms

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// ImportTokenLifetime is how long GetParametersForImport's token is valid.
const ImportTokenLifetime = 24 * time.Hour

// Errors of material import.
var (
	ErrInvalidImportToken = errors.New("the import token is not valid for this key")
	ErrExpiredImportToken = errors.New("the import token has expired; call GetParametersForImport again")
	ErrInvalidKeyMaterial = errors.New("the key material is not valid")
)

// ImportParameters is GetParametersForImport's answer.
type ImportParameters struct {
	KeyID       string
	PublicKey   []byte // DER SubjectPublicKeyInfo of the RSA-2048 wrapping key
	ImportToken string
	ExpireAt    time.Time
	Index       uint64 // Raft index of the token's write
}

func tokenAAD(id string) []byte { return []byte("importtoken\x00" + id) }

// ImportParametersInput asks for an import token for a key.
type ImportParametersInput struct {
	Key               string // id, alias or ARN of an EXTERNAL key
	WrappingAlgorithm string // RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 or RSAES_PKCS1_V1_5
	WrappingKeySpec   string // RSA_2048
}

// GetParametersForImport makes a one-key, 24-hour import token: an RSA-2048
// wrapping key pair whose private half is kept only wrapped under the root
// key, and is refused after the token expires.
func (s *Service) GetParametersForImport(ctx context.Context, c Caller, in ImportParametersInput) (ImportParameters, error) {
	ref, alg, spec := in.Key, in.WrappingAlgorithm, in.WrappingKeySpec
	if alg == "" {
		return ImportParameters{}, missing(FieldWrappingAlgorithm)
	}
	if alg != kcrypto.AlgRSAOAEPSHA256 && alg != kcrypto.AlgRSAOAEPSHA1 && alg != kcrypto.AlgRSAPKCS1v15 {
		return ImportParameters{}, invalid(FieldWrappingAlgorithm, "must be RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 or RSAES_PKCS1_V1_5")
	}
	if spec == "" {
		return ImportParameters{}, missing(FieldWrappingKeySpec)
	}
	if spec != kcrypto.SpecRSA2048 {
		return ImportParameters{}, invalid(FieldWrappingKeySpec, "must be RSA_2048")
	}
	k, err := s.keyFor(ctx, c, "kms:GetParametersForImport", FieldKey, ref, nil)
	if err != nil {
		return ImportParameters{}, err
	}
	if k.Origin != OriginExternal {
		return ImportParameters{}, fmt.Errorf("%w: key %s", fsm.ErrNotExternal, k.ID)
	}
	if k.State != fsm.StatePendingImport && k.State != fsm.StateEnabled {
		return ImportParameters{}, fsm.NewKeyStateError("GetParametersForImport", k.State)
	}
	private, public, err := kcrypto.GenerateKeyMaterial(kcrypto.SpecRSA2048)
	if err != nil {
		return ImportParameters{}, err
	}
	defer clear(private)
	raw, err := kcrypto.RandomBytes(24)
	if err != nil {
		return ImportParameters{}, err
	}
	id := base64.RawURLEncoding.EncodeToString(raw)
	wrapped, err := s.root.Wrap(private, tokenAAD(id))
	if err != nil {
		return ImportParameters{}, err
	}
	now := s.now()
	expire := now.Add(ImportTokenLifetime)
	idx, err := s.propose(ctx, fsm.CmdCreateImportToken, fsm.ImportTokenCmd{Now: now.UnixMilli(), Token: fsm.ImportToken{
		ID: id, KeyID: k.ID, AccountID: c.AccountID, WrappingAlgorithm: alg, PublicKey: public,
		WrappedPrivateKey: wrapped, CreatedAt: now.UnixMilli(), ExpireAt: expire.UnixMilli(),
	}})
	if err != nil {
		return ImportParameters{}, err
	}
	return ImportParameters{KeyID: k.ID, PublicKey: public, ImportToken: id, ExpireAt: expire, Index: idx}, nil
}

// ImportMaterialInput is key material to import, wrapped with an import
// token's public key.
type ImportMaterialInput struct {
	Key               string // id, alias or ARN of an EXTERNAL key
	EncryptedMaterial []byte
	ImportToken       string
	ExpireUnix        int64 // when the material expires, Unix seconds; 0: never
}

// ImportKeyMaterial imports material wrapped with an import token's public
// key into an EXTERNAL key, which becomes Enabled.
func (s *Service) ImportKeyMaterial(ctx context.Context, c Caller, in ImportMaterialInput) (uint64, error) {
	ref, encrypted, token, expireUnix := in.Key, in.EncryptedMaterial, in.ImportToken, in.ExpireUnix
	if len(encrypted) == 0 {
		return 0, missing(FieldEncryptedMaterial)
	}
	if token == "" {
		return 0, missing(FieldImportToken)
	}
	now := s.now()
	const maxExpireUnix = 253402300799 // 9999-12-31T23:59:59Z
	if expireUnix < 0 || expireUnix > maxExpireUnix || (expireUnix > 0 && time.Unix(expireUnix, 0).Before(now)) {
		return 0, invalid(FieldMaterialExpiry, "must be 0 (never expires) or a time in the future, in Unix seconds")
	}
	k, err := s.keyFor(ctx, c, "kms:ImportKeyMaterial", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	if k.Origin != OriginExternal {
		return 0, fmt.Errorf("%w: key %s", fsm.ErrNotExternal, k.ID)
	}
	tok, ok := s.fsm.ImportToken(token)
	if !ok {
		if err := s.confirmAbsent(ctx, "the import token"); err != nil {
			return 0, err
		}
		tok, ok = s.fsm.ImportToken(token)
	}
	if !ok || tok.KeyID != k.ID || tok.AccountID != c.AccountID {
		return 0, fmt.Errorf("%w (key %s)", ErrInvalidImportToken, k.ID)
	}
	if now.UnixMilli() >= tok.ExpireAt {
		return 0, ErrExpiredImportToken
	}
	private, err := s.root.Unwrap(tok.WrappedPrivateKey, tokenAAD(tok.ID))
	if err != nil {
		return 0, fmt.Errorf("import token: %w", err)
	}
	defer clear(private)
	material, err := kcrypto.DecryptImport(tok.WrappingAlgorithm, private, encrypted)
	if err != nil {
		return 0, fmt.Errorf("%w: it does not decrypt with the import token's key and %s", ErrInvalidKeyMaterial, tok.WrappingAlgorithm)
	}
	defer clear(material)
	want := map[string]int{kcrypto.SpecAES256: 32, kcrypto.SpecAES192: 24, kcrypto.SpecAES128: 16}[k.Spec]
	if len(material) != want {
		return 0, fmt.Errorf("%w: %s needs %d bytes of material, got %d", ErrInvalidKeyMaterial, k.Spec, want, len(material))
	}
	// The key's one version names its store (a hardware key's names its
	// HSM domain from the start).
	v, ok := s.fsm.KeyVersion(k.PrimaryVersion)
	if !ok {
		v = &fsm.KeyVersion{ID: k.PrimaryVersion, KeyID: k.ID}
	}
	wrapped, err := s.storeFor(v).Import(ctx, k, v, material)
	if err != nil {
		return 0, err
	}
	var expire int64
	if expireUnix > 0 {
		expire = expireUnix * 1000
	}
	s.forgetKey(k)
	idx, err := s.propose(ctx, fsm.CmdImportKeyMaterial, fsm.ImportKeyMaterialCmd{
		Now: now.UnixMilli(), KeyID: k.ID, WrappedMaterial: wrapped, Fingerprint: s.root.MaterialMAC(material), ExpireTime: expire,
	})
	if errors.Is(err, fsm.ErrMaterialMismatch) {
		return idx, fmt.Errorf("%w: %v", ErrInvalidKeyMaterial, err)
	}
	return idx, err
}

// DeleteKeyMaterial removes an EXTERNAL key's material; the key goes back to
// PendingImport and only the same material can be imported again.
func (s *Service) DeleteKeyMaterial(ctx context.Context, c Caller, ref string) (uint64, error) {
	k, err := s.keyFor(ctx, c, "kms:DeleteKeyMaterial", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	s.forgetKey(k)
	return s.propose(ctx, fsm.CmdDeleteKeyMaterial, fsm.DeleteKeyMaterialCmd{Now: s.nowMillis(), KeyID: k.ID})
}
