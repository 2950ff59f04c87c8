package kms

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// hsmStore keeps material in the tokens of an HSM domain: the catalogue
// holds it wrapped under the domain key, and every operation is a token
// operation routed by hsmDo (this node's token when it serves the domain,
// else a healthy peer's).
type hsmStore struct {
	s      *Service
	domain string
}

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

func (h hsmStore) Seal(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, plaintext []byte, encCtx map[string]string) ([]byte, error) {
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
	res, err := h.s.hsmDo(ctx, req)
	if err != nil {
		return nil, err
	}
	blob := make([]byte, 0, len(header)+len(iv)+len(res.Out))
	return append(append(append(blob, header...), iv...), res.Out...), nil
}

func (h hsmStore) Open(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, blob []byte, encCtx map[string]string) ([]byte, error) {
	if len(blob) < kcrypto.MinCiphertextSize {
		return nil, fmt.Errorf("%w: too short", kcrypto.ErrInvalidCiphertext)
	}
	req := versionRequest(hsmOpDecrypt, v, k)
	req.IV = blob[blobHeaderSize : blobHeaderSize+kcrypto.NonceSize]
	req.Data = blob[blobHeaderSize+kcrypto.NonceSize:]
	req.AAD = append(append([]byte(nil), blob[:blobHeaderSize]...), kcrypto.CanonicalContext(encCtx)...)
	res, err := h.s.hsmDo(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Out, nil
}

func (h hsmStore) Sign(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, alg string, digest []byte) ([]byte, error) {
	req := versionRequest(hsmOpSign, v, k)
	req.Alg, req.Data = alg, digest
	res, err := h.s.hsmDo(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Out, nil
}

func (h hsmStore) DecryptAsymmetric(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, alg string, ciphertext []byte) ([]byte, error) {
	req := versionRequest(hsmOpDecryptAsym, v, k)
	req.Alg, req.Data = alg, ciphertext
	res, err := h.s.hsmDo(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Out, nil
}

// NewVersion generates a key version inside a token of the domain.
func (h hsmStore) NewVersion(ctx context.Context, k *fsm.Key, now int64) (fsm.KeyVersion, error) {
	v := fsm.KeyVersion{ID: newUUID(), KeyID: k.ID, CreatedAt: now, Domain: h.domain}
	res, err := h.s.hsmDo(ctx, hsmRequest{Op: hsmOpGenerate, Domain: h.domain, Spec: k.Spec, Usage: k.Usage})
	if err != nil {
		return v, err
	}
	v.WrappedMaterial, v.PublicKey = res.Out, res.Public
	return v, nil
}

// Import has a token of the domain take the material in and give it back
// wrapped under the domain key; that blob is all the catalogue keeps.
func (h hsmStore) Import(ctx context.Context, k *fsm.Key, _ *fsm.KeyVersion, material []byte) ([]byte, error) {
	res, err := h.s.hsmDo(ctx, hsmRequest{Op: hsmOpImport, Domain: h.domain, Spec: k.Spec, Usage: k.Usage, Data: material})
	if err != nil {
		return nil, err
	}
	return res.Out, nil
}

// Forget drops this node's token's working copies of k's versions (a node
// without a token has none).
func (h hsmStore) Forget(k *fsm.Key) {
	if h.s.hsm == nil {
		return
	}
	for _, v := range k.Versions {
		h.s.hsm.tok.Forget(v)
	}
}
