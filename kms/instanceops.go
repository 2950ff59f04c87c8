package kms

import (
	"context"
	"errors"
	"fmt"

	kcrypto "github.com/raftkms/raftkms/crypto"
)

// Operations of the instance API (the reference's KMS Instance SDK) that the
// RPC API's do not cover as they are: binary data keys, random bytes, and
// asymmetric operations on a key's current version. Each authorizes through
// keyFor/versionOf (authorizeKey), like every crypto operation.

// MaxRandomLength bounds GenerateRandom.
const MaxRandomLength = 1024

// GenerateRandom returns n random bytes. Any authenticated caller may ask;
// no key is involved.
func (s *Service) GenerateRandom(ctx context.Context, c Caller, n int) ([]byte, error) {
	if n < 1 || n > MaxRandomLength {
		return nil, invalid(FieldNumberOfBytes, fmt.Sprintf("must be between 1 and %d", MaxRandomLength))
	}
	if isDryRun(ctx) {
		return nil, ErrDryRun
	}
	return kcrypto.RandomBytes(n)
}

// RawDataKey is a binary data key and the same bytes sealed under a master
// key (Decrypt of the blob returns exactly Plaintext).
type RawDataKey struct {
	Plaintext []byte
	Sealed
}

// GenerateRawDataKey makes n random bytes (1 to 1024; 0: 32) and seals them
// as they are under the key, under the GenerateDataKey permission. Unlike
// GenerateDataKey (the RPC API's), the sealed plaintext is the raw bytes,
// not their Base64 text.
func (s *Service) GenerateRawDataKey(ctx context.Context, c Caller, ref string, n int, encCtx map[string]string) (RawDataKey, error) {
	if n == 0 {
		n = 32
	}
	if n < 1 || n > 1024 {
		return RawDataKey{}, invalid(FieldNumberOfBytes, "must be between 1 and 1024")
	}
	if err := s.fresh(ctx); err != nil {
		return RawDataKey{}, err
	}
	k, err := s.keyFor(ctx, c, "kms:GenerateDataKey", FieldKey, ref, encCtx)
	if err != nil {
		return RawDataKey{}, err
	}
	raw, err := kcrypto.RandomBytes(n)
	if err != nil {
		return RawDataKey{}, err
	}
	sealed, err := s.seal(ctx, k, "GenerateDataKey", raw, encCtx)
	if err != nil {
		clear(raw)
		return RawDataKey{}, err
	}
	return RawDataKey{Plaintext: raw, Sealed: sealed}, nil
}

// DecryptForKey is Decrypt for a caller that also names the key: a blob
// sealed under another key is refused like any blob that does not open.
func (s *Service) DecryptForKey(ctx context.Context, c Caller, ref string, in DecryptInput) (Opened, error) {
	if ref == "" {
		return s.Decrypt(ctx, c, in)
	}
	if err := s.fresh(ctx); err != nil {
		return Opened{}, err
	}
	// Another account's key that does not exist names no key the blob can
	// be under: refused like a blob sealed under another key (as
	// AdvanceDecrypt does), so the answer does not tell whether it exists.
	k, err := s.resolveKey(ctx, c, FieldKey, ref)
	foreignUnknown := errors.Is(err, errForeignKeyUnknown)
	if err != nil && !foreignUnknown {
		return Opened{}, err
	}
	out, err := s.Decrypt(ctx, c, in)
	if err != nil {
		return Opened{}, err
	}
	if foreignUnknown || out.KeyID != k.ID {
		clear(out.Plaintext)
		return Opened{}, fmt.Errorf("%w: the blob was not sealed under the key the request names", kcrypto.ErrInvalidCiphertext)
	}
	return out, nil
}

// CurrentVersion resolves a key's primary version id, for the asymmetric
// operations of a face that names no version (the instance API): the
// caller must be allowed op on the key.
func (s *Service) CurrentVersion(ctx context.Context, c Caller, ref, op string) (string, error) {
	if err := s.fresh(ctx); err != nil {
		return "", err
	}
	k, err := s.keyFor(ctx, c, "kms:"+op, FieldKey, ref, nil)
	if err != nil {
		return "", err
	}
	return k.PrimaryVersion, nil
}
