package kms

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// Blobs of hardware keys have the layout of docs/CIPHERTEXT.md: format
// byte, version id, 12-byte IV, ct‖tag, with header ‖ canonical context as
// the additional data. The service picks a fresh random IV for every
// encryption (SoftHSM would accept an empty one and repeat it).
const blobHeaderSize = 1 + 16

func blobHeader(versionID string) ([]byte, error) {
	id, err := uuid.Parse(versionID)
	if err != nil {
		return nil, fmt.Errorf("seal: bad version id: %w", err)
	}
	h := make([]byte, blobHeaderSize)
	h[0] = kcrypto.FormatGCMv1
	copy(h[1:], id[:])
	return h, nil
}

func (s *Service) sealHSM(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	header, err := blobHeader(v.ID)
	if err != nil {
		return nil, err
	}
	iv, err := kcrypto.RandomBytes(kcrypto.NonceSize)
	if err != nil {
		return nil, err
	}
	req := versionRequest(hsmOpEncrypt, v, k)
	req.IV, req.Data, req.AAD = iv, plaintext, append(append([]byte(nil), header...), kcrypto.CanonicalContext(encCtx)...)
	res, err := s.hsmDo(ctx, req)
	if err != nil {
		return nil, err
	}
	blob := make([]byte, 0, len(header)+len(iv)+len(res.Out))
	return append(append(append(blob, header...), iv...), res.Out...), nil
}

func (s *Service) openHSM(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, blob []byte, encCtx map[string]string) ([]byte, error) {
	if len(blob) < kcrypto.MinCiphertextSize {
		return nil, fmt.Errorf("%w: too short", kcrypto.ErrInvalidCiphertext)
	}
	req := versionRequest(hsmOpDecrypt, v, k)
	req.IV = blob[blobHeaderSize : blobHeaderSize+kcrypto.NonceSize]
	req.Data = blob[blobHeaderSize+kcrypto.NonceSize:]
	req.AAD = append(append([]byte(nil), blob[:blobHeaderSize]...), kcrypto.CanonicalContext(encCtx)...)
	res, err := s.hsmDo(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Out, nil
}

// hsmVersion generates a key version inside a token of domain.
func (s *Service) hsmVersion(ctx context.Context, keyID, spec, usage, domain string, now int64) (fsm.KeyVersion, error) {
	v := fsm.KeyVersion{ID: newUUID(), KeyID: keyID, CreatedAt: now, Domain: domain}
	res, err := s.hsmDo(ctx, hsmRequest{Op: hsmOpGenerate, Domain: domain, Spec: spec, Usage: usage})
	if err != nil {
		return v, err
	}
	v.WrappedMaterial, v.PublicKey = res.Out, res.Public
	return v, nil
}
