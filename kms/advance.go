package kms

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// The Advance* operations of the instance API seal into the project's own
// ciphertext blob (docs/CIPHERTEXT.md): it names the key version, so
// AdvanceDecrypt needs no KeyId and a blob outlives rotations of its key.
// The reference answers the blob, its IV and the key version as separate
// fields; here the IV is the blob's own nonce, reported for the caller's
// information (a caller that sends it back must send it unchanged).
//
// The instance API's Aad is raw bytes; the blob binds a canonical
// encryption context. The Aad is bound as the one context entry
// aadContextKey ("Aad") = Base64(Aad); without Aad the context is empty, so an
// Advance blob without Aad is exactly the blob Encrypt makes without a
// context and either face's Decrypt opens it.

// AlgorithmAESGCM is the only algorithm of Advance ciphertexts and of
// encrypted data key pairs.
const AlgorithmAESGCM = "AES_GCM"

// MaxAADSize bounds an instance call's Aad, as the reference does.
const MaxAADSize = 8192

// aadContextKey is the context entry that carries Aad: the instance face's
// Encrypt/Decrypt/GenerateDataKey bind Aad the same way, so their blobs and
// these open each other.
const aadContextKey = "Aad"

// AADContext is the encryption context that binds an instance call's Aad:
// nil without Aad, else the one entry "Aad" = Base64(Aad). Every instance
// action that takes Aad binds it through here (the face for Encrypt,
// Decrypt and GenerateDataKey; the Advance and data-key-pair methods
// themselves), so their blobs open each other. Aad over MaxAADSize is
// refused.
func AADContext(aad []byte) (map[string]string, error) {
	if len(aad) > MaxAADSize {
		return nil, invalid(FieldAAD, fmt.Sprintf("at most %d bytes", MaxAADSize))
	}
	if len(aad) == 0 {
		return nil, nil
	}
	return map[string]string{aadContextKey: base64.StdEncoding.EncodeToString(aad)}, nil
}

// checkGCM refuses an algorithm, an IV or a padding mode an Advance
// ciphertext cannot have: it is AES-GCM with an IV the service picks.
func checkGCM(alg string, iv []byte, padding string) error {
	if alg != "" && alg != AlgorithmAESGCM {
		return invalid(FieldAlgorithm, fmt.Sprintf("must be %s", AlgorithmAESGCM))
	}
	if len(iv) != 0 {
		return invalid(FieldIV, "the service picks the IV of an AES_GCM ciphertext; leave it empty")
	}
	if padding != "" {
		return invalid(FieldPaddingMode, "AES_GCM takes no padding; leave it empty")
	}
	return nil
}

// AdvanceEncryptInput is what AdvanceEncrypt seals and under which key.
type AdvanceEncryptInput struct {
	Key         string // id, alias or ARN of a symmetric ENCRYPT/DECRYPT key
	Plaintext   []byte // raw bytes, at most 6 KiB
	Algorithm   string // AES_GCM (the default)
	AAD         []byte // additional authenticated data, at most 8 KiB
	IV          []byte // must be empty: the service picks it
	PaddingMode string // must be empty
}

// AdvanceSealed is an Advance ciphertext: a self-describing blob, the
// nonce inside it, and the key version that made it.
type AdvanceSealed struct {
	Sealed
	IV        []byte
	Algorithm string // AES_GCM
}

// AdvanceEncrypt seals plaintext under the key's primary version into a
// ciphertext blob that AdvanceDecrypt opens without a KeyId, before and
// after the key rotates. Authorized as kms:Encrypt.
func (s *Service) AdvanceEncrypt(ctx context.Context, c Caller, in AdvanceEncryptInput) (AdvanceSealed, error) {
	if len(in.Plaintext) == 0 {
		return AdvanceSealed{}, missing(FieldPlaintext)
	}
	if len(in.Plaintext) > kcrypto.MaxPlaintextSize {
		return AdvanceSealed{}, invalid(FieldPlaintext, fmt.Sprintf("at most %d bytes; encrypt larger data with a data key (AdvanceGenerateDataKey)", kcrypto.MaxPlaintextSize))
	}
	if err := checkGCM(in.Algorithm, in.IV, in.PaddingMode); err != nil {
		return AdvanceSealed{}, err
	}
	return s.advanceSeal(ctx, c, "kms:Encrypt", "AdvanceEncrypt", in.Key, in.AAD, func() ([]byte, error) { return in.Plaintext, nil })
}

// advanceSeal resolves and authorizes the key, checks it may encrypt, then
// produces the plaintext (so nothing is generated for a refused call) and
// seals it with the Aad bound. The caller owns, and clears, what produce
// returns.
func (s *Service) advanceSeal(ctx context.Context, c Caller, action, op, ref string, aad []byte, produce func() ([]byte, error)) (AdvanceSealed, error) {
	encCtx, err := AADContext(aad)
	if err != nil {
		return AdvanceSealed{}, err
	}
	k, err := s.masterKey(ctx, c, action, op, ref, encCtx)
	if err != nil {
		return AdvanceSealed{}, err
	}
	pt, err := produce()
	if err != nil {
		return AdvanceSealed{}, err
	}
	sealed, err := s.seal(ctx, k, op, pt, encCtx)
	if err != nil {
		return AdvanceSealed{}, err
	}
	return AdvanceSealed{Sealed: sealed, IV: kcrypto.CiphertextNonce(sealed.CiphertextBlob), Algorithm: AlgorithmAESGCM}, nil
}

// masterKey resolves and authorizes the key a data key or an Advance
// ciphertext is sealed under, and checks that it may encrypt now: before
// anything is generated for the call. encCtx (the Aad's) is seen by the key
// policy's conditions as Encrypt's context is.
func (s *Service) masterKey(ctx context.Context, c Caller, action, op, ref string, encCtx map[string]string) (*fsm.Key, error) {
	if ref == "" {
		return nil, missing(FieldKey)
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	k, err := s.keyFor(ctx, c, action, FieldKey, ref, encCtx)
	if err != nil {
		return nil, err
	}
	if err := usable(k, op, UsageEncryptDecrypt); err != nil {
		return nil, err
	}
	if isDryRun(ctx) {
		return nil, ErrDryRun
	}
	return k, nil
}

// AdvanceDecryptInput is an Advance ciphertext to open.
type AdvanceDecryptInput struct {
	Ciphertext  []byte // the blob AdvanceEncrypt (or Encrypt) made
	Key         string // optional: if given, it must name the blob's key
	Algorithm   string // AES_GCM (the default)
	AAD         []byte // the Aad it was sealed with
	IV          []byte // optional: if given, the IV AdvanceEncrypt answered
	PaddingMode string // must be empty
}

// AdvanceDecrypt opens an Advance ciphertext: the blob names its key
// version, so the key may have rotated since. Every way the blob can be
// wrong (damaged, another Aad, unknown version, another IV) is
// crypto.ErrInvalidCiphertext. Authorized as kms:Decrypt on the blob's key.
func (s *Service) AdvanceDecrypt(ctx context.Context, c Caller, in AdvanceDecryptInput) (Opened, error) {
	if len(in.Ciphertext) == 0 {
		return Opened{}, missing(FieldCiphertext)
	}
	if err := checkGCM(in.Algorithm, nil, in.PaddingMode); err != nil {
		return Opened{}, err
	}
	encCtx, err := AADContext(in.AAD)
	if err != nil {
		return Opened{}, err
	}
	if len(in.IV) != 0 {
		if _, err := kcrypto.ParseCiphertext(in.Ciphertext); err != nil {
			return Opened{}, err
		}
		if !bytes.Equal(kcrypto.CiphertextNonce(in.Ciphertext), in.IV) {
			return Opened{}, fmt.Errorf("%w: the IV is not the ciphertext's", kcrypto.ErrInvalidCiphertext)
		}
	}
	opened, err := s.open(ctx, c, "AdvanceDecrypt", "kms:Decrypt", in.Ciphertext, encCtx)
	if err != nil {
		return Opened{}, err
	}
	if in.Key != "" {
		named, err := s.resolveKey(ctx, c, FieldKey, in.Key)
		if err != nil && !errors.Is(err, errForeignKeyUnknown) {
			clear(opened.Plaintext)
			return Opened{}, err
		}
		if err != nil || named.ID != opened.KeyID {
			clear(opened.Plaintext)
			return Opened{}, fmt.Errorf("%w: the ciphertext was not made with that key", kcrypto.ErrInvalidCiphertext)
		}
	}
	return opened, nil
}

// AdvanceDataKeyInput is the data key AdvanceGenerateDataKey makes.
type AdvanceDataKeyInput struct {
	Key           string // id, alias or ARN of a symmetric ENCRYPT/DECRYPT key
	NumberOfBytes int    // 1 to 1024; 0: 32
	AAD           []byte
}

// AdvanceDataKey is a data key in raw bytes and sealed as an Advance
// ciphertext.
type AdvanceDataKey struct {
	Plaintext []byte
	AdvanceSealed
}

// AdvanceGenerateDataKey makes NumberOfBytes random bytes (32 by default)
// and seals them, raw, as an Advance ciphertext: AdvanceDecrypt of the blob
// returns the same bytes. Authorized as kms:GenerateDataKey.
func (s *Service) AdvanceGenerateDataKey(ctx context.Context, c Caller, in AdvanceDataKeyInput) (AdvanceDataKey, error) {
	n := in.NumberOfBytes
	if n == 0 {
		n = 32
	} else if n < 1 || n > 1024 {
		return AdvanceDataKey{}, invalid(FieldNumberOfBytes, "must be between 1 and 1024")
	}
	var raw []byte
	sealed, err := s.advanceSeal(ctx, c, "kms:GenerateDataKey", "AdvanceGenerateDataKey", in.Key, in.AAD, func() ([]byte, error) {
		var err error
		raw, err = kcrypto.RandomBytes(n)
		return raw, err
	})
	if err != nil {
		clear(raw)
		return AdvanceDataKey{}, err
	}
	return AdvanceDataKey{Plaintext: raw, AdvanceSealed: sealed}, nil
}
