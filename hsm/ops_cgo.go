//go:build cgo

package hsm

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Encrypt seals plaintext with AES-GCM inside the token under the key ref
// names, with the caller's IV and additional data. The result is ct‖tag,
// byte for byte what Go's cipher.AEAD.Seal gives. The IV must be 12 fresh
// random bytes: SoftHSM accepts an empty IV without complaint and then
// every encryption under the key repeats, so anything else is refused here.
func (t *Token) Encrypt(ctx context.Context, ref KeyRef, iv, plaintext, aad []byte) ([]byte, error) {
	if !ref.Spec.IsSymmetric() {
		return nil, fmt.Errorf("%w: %s keys do not encrypt with AES-GCM", ErrInvalidParameter, ref.Spec)
	}
	if len(iv) != GCMIVSize {
		return nil, fmt.Errorf("%w: the GCM IV must be %d bytes, got %d", ErrInvalidParameter, GCMIVSize, len(iv))
	}
	var out []byte
	err := t.run(ctx, "encrypt", func(sh pkcs11.SessionHandle, _ uint64) error {
		k, err := t.pin(ref)
		if err != nil {
			return err
		}
		defer t.unpin(k)
		params := pkcs11.NewGCMParams(iv, aad, 8*GCMTagSize)
		defer params.Free()
		if err := t.ctx.EncryptInit(sh, mech(pkcs11.CKM_AES_GCM, params), k.h); err != nil {
			return err
		}
		out, err = t.ctx.Encrypt(sh, plaintext)
		return err
	})
	return out, err
}

// Decrypt opens ct‖tag made by Encrypt (or by Go's AES-GCM with the same
// key). Any authentication failure is ErrDecrypt.
func (t *Token) Decrypt(ctx context.Context, ref KeyRef, iv, ciphertext, aad []byte) ([]byte, error) {
	if !ref.Spec.IsSymmetric() {
		return nil, fmt.Errorf("%w: %s keys do not decrypt with AES-GCM", ErrInvalidParameter, ref.Spec)
	}
	if len(iv) != GCMIVSize {
		return nil, fmt.Errorf("%w: the GCM IV must be %d bytes, got %d", ErrInvalidParameter, GCMIVSize, len(iv))
	}
	if len(ciphertext) < GCMTagSize {
		return nil, fmt.Errorf("%w: shorter than a GCM tag", ErrDecrypt)
	}
	var out []byte
	err := t.run(ctx, "decrypt", func(sh pkcs11.SessionHandle, _ uint64) error {
		k, err := t.pin(ref)
		if err != nil {
			return err
		}
		defer t.unpin(k)
		params := pkcs11.NewGCMParams(iv, aad, 8*GCMTagSize)
		defer params.Free()
		if err := t.ctx.DecryptInit(sh, mech(pkcs11.CKM_AES_GCM, params), k.h); err != nil {
			return err
		}
		out, err = t.ctx.Decrypt(sh, ciphertext)
		if err != nil {
			return t.decryptFailure(sh, err)
		}
		return nil
	})
	return out, err
}

// decryptRefusals are what modules answer for a ciphertext that does not
// decrypt (besides SoftHSM's CKR_GENERAL_ERROR, see refused).
var decryptRefusals = []uint{
	pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
	pkcs11.CKR_DATA_INVALID, pkcs11.CKR_DATA_LEN_RANGE,
}

// decryptFailure turns a refused ciphertext into ErrDecrypt and leaves a
// failing token's error as it is (for recovery).
func (t *Token) decryptFailure(sh pkcs11.SessionHandle, err error) error {
	if t.refused(sh, err, decryptRefusals) {
		return ErrDecrypt
	}
	return err
}

// Sign signs a SHA-256 digest (32 bytes; hash the message first — SoftHSM
// has no CKM_ECDSA_SHA256, and a digest keeps the message out of the HSM).
// RSA gives the raw signature, ECDSA a DER ECDSA-Sig-Value, low-S for
// EC_P256K.
func (t *Token) Sign(ctx context.Context, ref KeyRef, alg SignAlgorithm, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, fmt.Errorf("%w: a SHA-256 digest is 32 bytes, got %d", ErrInvalidParameter, len(digest))
	}
	var m []*pkcs11.Mechanism
	data := digest
	switch {
	case ref.Spec.IsRSA() && alg == RSAPSSSHA256:
		m = mech(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32))
	case ref.Spec.IsRSA() && alg == RSAPKCS1SHA256:
		m = mech(pkcs11.CKM_RSA_PKCS, nil)
		data = append(append([]byte{}, digestInfoSHA256...), digest...)
	case ref.Spec.IsEC() && alg == ECDSASHA256:
		m = mech(pkcs11.CKM_ECDSA, nil)
	default:
		return nil, fmt.Errorf("%w: %s keys cannot sign with %s", ErrInvalidParameter, ref.Spec, alg)
	}
	if ref.Spec.IsRSA() && !ref.Usage.Signs() {
		return nil, fmt.Errorf("%w: key usage %q cannot sign", ErrInvalidParameter, ref.Usage)
	}
	var sig []byte
	err := t.run(ctx, "sign", func(sh pkcs11.SessionHandle, _ uint64) error {
		k, err := t.pin(ref)
		if err != nil {
			return err
		}
		defer t.unpin(k)
		if err := t.ctx.SignInit(sh, m, k.h); err != nil {
			return err
		}
		sig, err = t.ctx.Sign(sh, data)
		return err
	})
	if err != nil {
		return nil, err
	}
	if ref.Spec.IsEC() {
		return ecdsaDER(sig, ref.Spec == SpecECP256K)
	}
	return sig, nil
}

// DecryptAsymmetric decrypts an RSA-OAEP ciphertext (MGF1 with the same
// hash, no label). OAEP-SHA-1 runs in the token. SoftHSM refuses OAEP with
// SHA-256 (CKR_ARGUMENTS_BAD), so for it the token does only the private-key
// operation (CKM_RSA_X_509) and the OAEP decoding — which needs no secret —
// runs here in constant time; the private key never leaves the token. A
// ciphertext that does not decode is ErrDecrypt.
func (t *Token) DecryptAsymmetric(ctx context.Context, ref KeyRef, alg EncryptAlgorithm, ciphertext []byte) ([]byte, error) {
	if !ref.Spec.IsRSA() || !ref.Usage.Decrypts() {
		return nil, fmt.Errorf("%w: %s key with usage %q cannot decrypt with RSA-OAEP", ErrInvalidParameter, ref.Spec, ref.Usage)
	}
	newHash, err := oaepHash(alg)
	if err != nil {
		return nil, err
	}
	k := ref.Spec.size() / 8
	if len(ciphertext) != k {
		return nil, fmt.Errorf("%w: an %s ciphertext is %d bytes, got %d", ErrDecrypt, ref.Spec, k, len(ciphertext))
	}
	var m []*pkcs11.Mechanism
	if alg == RSAESOAEPSHA1 {
		m = mech(pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))
	} else {
		m = mech(pkcs11.CKM_RSA_X_509, nil)
	}
	var out []byte
	err = t.run(ctx, "decrypt_asymmetric", func(sh pkcs11.SessionHandle, _ uint64) error {
		kh, err := t.pin(ref)
		if err != nil {
			return err
		}
		defer t.unpin(kh)
		if err := t.ctx.DecryptInit(sh, m, kh.h); err != nil {
			return err
		}
		out, err = t.ctx.Decrypt(sh, ciphertext)
		if err != nil {
			return t.decryptFailure(sh, err)
		}
		return nil
	})
	if err != nil || alg == RSAESOAEPSHA1 {
		return out, err
	}
	// The raw result may come without its leading zero bytes.
	em := out
	if len(em) > k {
		return nil, ErrDecrypt
	}
	if len(em) < k {
		em = make([]byte, k)
		copy(em[k-len(out):], out)
		clear(out)
	}
	defer clear(em)
	return oaepDecode(newHash, em)
}
