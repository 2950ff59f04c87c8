package kms

import (
	"context"
	"encoding/base64"
	"fmt"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// Sealed is the result of an encryption: the blob and the key version that
// made it.
type Sealed struct {
	CiphertextBlob []byte
	KeyID          string
	KeyVersionID   string
}

// Opened is the result of a decryption.
type Opened struct {
	Plaintext    []byte
	KeyID        string
	KeyVersionID string
}

// EncryptInput is what Encrypt seals and under which key.
type EncryptInput struct {
	Key               string // id, alias or ARN
	Plaintext         []byte // opaque text (clients usually send Base64), at most 6 KiB
	EncryptionContext map[string]string
}

// DecryptInput is a blob to open and the context it was sealed with.
type DecryptInput struct {
	Ciphertext        []byte // a ciphertext blob (docs/CIPHERTEXT.md)
	EncryptionContext map[string]string
}

// Encrypt seals plaintext under the key's primary version. The plaintext is
// the service's Plaintext parameter taken as opaque text (clients usually
// send Base64), at most 6 KiB; Decrypt returns exactly that text.
func (s *Service) Encrypt(ctx context.Context, c Caller, in EncryptInput) (Sealed, error) {
	ref, plaintext, encCtx := in.Key, in.Plaintext, in.EncryptionContext
	if len(plaintext) == 0 {
		return Sealed{}, missing(FieldPlaintext)
	}
	if len(plaintext) > kcrypto.MaxPlaintextSize {
		return Sealed{}, invalid(FieldPlaintext, fmt.Sprintf("at most %d bytes; encrypt larger data with a data key (GenerateDataKey)", kcrypto.MaxPlaintextSize))
	}
	if err := s.fresh(ctx); err != nil {
		return Sealed{}, err
	}
	k, err := s.keyFor(ctx, c, "kms:Encrypt", FieldKey, ref, encCtx)
	if err != nil {
		return Sealed{}, err
	}
	return s.seal(ctx, k, "Encrypt", plaintext, encCtx)
}

func (s *Service) seal(ctx context.Context, k *fsm.Key, op string, plaintext []byte, encCtx map[string]string) (Sealed, error) {
	if err := usable(k, op, UsageEncryptDecrypt); err != nil {
		return Sealed{}, err
	}
	if isDryRun(ctx) {
		return Sealed{}, ErrDryRun
	}
	v, ok := s.fsm.KeyVersion(k.PrimaryVersion)
	if !ok {
		return Sealed{}, fmt.Errorf("key %s: primary version %s missing from the catalogue", k.ID, k.PrimaryVersion)
	}
	noteKey(ctx, k.ID, v.ID)
	blob, err := s.storeFor(v).Seal(ctx, k, v, plaintext, encCtx)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{CiphertextBlob: blob, KeyID: k.ID, KeyVersionID: v.ID}, nil
}

// Decrypt opens a blob; the blob names its key version, so no KeyId is
// needed. Every way a blob can be wrong (damaged, wrong context, unknown
// version) is the same error.
func (s *Service) Decrypt(ctx context.Context, c Caller, in DecryptInput) (Opened, error) {
	return s.open(ctx, c, "Decrypt", "kms:Decrypt", in.Ciphertext, in.EncryptionContext)
}

// open opens a blob for op, authorized as action on the key of the version
// the blob names.
func (s *Service) open(ctx context.Context, c Caller, op, action string, blob []byte, encCtx map[string]string) (Opened, error) {
	if len(blob) == 0 {
		return Opened{}, missing(FieldCiphertext)
	}
	h, err := kcrypto.ParseCiphertext(blob)
	if err != nil {
		return Opened{}, err
	}
	noteKey(ctx, "", h.VersionID)
	if err := s.fresh(ctx); err != nil {
		return Opened{}, err
	}
	k, v, err := s.versionOf(ctx, c, action, h.VersionID, encCtx)
	if err != nil {
		return Opened{}, err
	}
	if !kcrypto.IsSymmetric(k.Spec) {
		// No symmetric blob can name an asymmetric key's version: it was
		// forged or damaged.
		return Opened{}, fmt.Errorf("%w: the blob names a version of an asymmetric key", kcrypto.ErrInvalidCiphertext)
	}
	if err := usable(k, op, UsageEncryptDecrypt); err != nil {
		return Opened{}, err
	}
	pt, err := s.storeFor(v).Open(ctx, k, v, blob, encCtx)
	if err != nil {
		return Opened{}, err
	}
	if isDryRun(ctx) && op != "ReEncrypt" {
		// Only after opening: a dry run must also refuse a damaged blob or
		// the wrong context, as the real call would.
		clear(pt)
		return Opened{}, ErrDryRun
	}
	return Opened{Plaintext: pt, KeyID: k.ID, KeyVersionID: v.ID}, nil
}

// DataKey is a generated data key: its plaintext (Base64 text, as the
// service returns it) and the same text sealed under a master key.
type DataKey struct {
	Plaintext string
	Sealed
}

// DataKeyInput is the data key to make and the key to seal it under.
type DataKeyInput struct {
	Key               string // id, alias or ARN
	KeySpec           string // AES_256 (the default) or AES_128
	NumberOfBytes     int    // 1 to 1024; 0: the size KeySpec names
	EncryptionContext map[string]string
}

// GenerateDataKey makes a random data key of NumberOfBytes (or the size
// KeySpec names: AES_256 32, AES_128 16) and seals its Base64 form under the
// key, so Decrypt of the blob returns the same Base64 text as Plaintext.
func (s *Service) GenerateDataKey(ctx context.Context, c Caller, in DataKeyInput) (DataKey, error) {
	return s.generateDataKey(ctx, c, "kms:GenerateDataKey", in.Key, in.KeySpec, in.NumberOfBytes, in.EncryptionContext)
}

// GenerateDataKeyWithoutPlaintext is GenerateDataKey under its own
// permission; the caller drops the plaintext from the answer.
func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, c Caller, in DataKeyInput) (DataKey, error) {
	return s.generateDataKey(ctx, c, "kms:GenerateDataKeyWithoutPlaintext", in.Key, in.KeySpec, in.NumberOfBytes, in.EncryptionContext)
}

func (s *Service) generateDataKey(ctx context.Context, c Caller, action, ref, keySpec string, numberOfBytes int, encCtx map[string]string) (DataKey, error) {
	n := numberOfBytes
	if n == 0 {
		switch keySpec {
		case "", "AES_256":
			n = 32
		case "AES_128":
			n = 16
		default:
			return DataKey{}, invalid(FieldDataKeySpec, "must be AES_256 or AES_128")
		}
	} else if n < 1 || n > 1024 {
		return DataKey{}, invalid(FieldNumberOfBytes, "must be between 1 and 1024")
	} else if keySpec != "" && keySpec != "AES_256" && keySpec != "AES_128" {
		return DataKey{}, invalid(FieldDataKeySpec, "must be AES_256 or AES_128")
	}
	if err := s.fresh(ctx); err != nil {
		return DataKey{}, err
	}
	k, err := s.keyFor(ctx, c, action, FieldKey, ref, encCtx)
	if err != nil {
		return DataKey{}, err
	}
	raw, err := kcrypto.RandomBytes(n)
	if err != nil {
		return DataKey{}, err
	}
	text := base64.StdEncoding.EncodeToString(raw)
	clear(raw)
	sealed, err := s.seal(ctx, k, "GenerateDataKey", []byte(text), encCtx)
	if err != nil {
		return DataKey{}, err
	}
	return DataKey{Plaintext: text, Sealed: sealed}, nil
}

// ReEncrypted is ReEncrypt's result.
type ReEncrypted struct {
	Sealed
	SourceKeyID        string
	SourceKeyVersionID string
}

// ReEncryptInput is a blob to open and the key to seal its plaintext under.
type ReEncryptInput struct {
	Ciphertext         []byte
	SourceContext      map[string]string // the blob's encryption context
	DestinationKey     string            // id, alias or ARN
	DestinationContext map[string]string
}

// ReEncrypt opens a blob and seals its plaintext under another key (or the
// same key's current primary version) without the plaintext leaving the
// service.
func (s *Service) ReEncrypt(ctx context.Context, c Caller, in ReEncryptInput) (ReEncrypted, error) {
	blob, destRef, srcCtx, dstCtx := in.Ciphertext, in.DestinationKey, in.SourceContext, in.DestinationContext
	if destRef == "" {
		return ReEncrypted{}, missing(FieldDestinationKey)
	}
	opened, err := s.open(ctx, c, "ReEncrypt", "kms:ReEncrypt", blob, srcCtx)
	if err != nil {
		return ReEncrypted{}, err
	}
	defer clear(opened.Plaintext)
	dest, err := s.keyFor(ctx, c, "kms:ReEncrypt", FieldDestinationKey, destRef, dstCtx)
	if err != nil {
		return ReEncrypted{}, err
	}
	sealed, err := s.seal(ctx, dest, "ReEncrypt", opened.Plaintext, dstCtx)
	if err != nil {
		return ReEncrypted{}, err
	}
	return ReEncrypted{Sealed: sealed, SourceKeyID: opened.KeyID, SourceKeyVersionID: opened.KeyVersionID}, nil
}
