package kms

import (
	"context"

	"github.com/raftkms/raftkms/fsm"
)

// keyStore is where a key version's material lives, and so where every
// operation on that material runs. The decision is made once, from the
// version (storeFor) or, for a version not made yet, from the key's
// instance (storeForKey); the operations above it (validation, resolution,
// authorization, state and usage checks, dry runs) are the same for every
// store.
//
// Two stores exist: software (softStore: material wrapped under the root
// key, unwrapped into an in-memory cache, the crypto in Go) and hardware
// (hsmStore: material wrapped under an HSM domain key, every operation run
// by a token of the domain — this node's, or a peer's over RPC kms.hsm).
type keyStore interface {
	// NewVersion makes a new version of k's material.
	NewVersion(ctx context.Context, k *fsm.Key, now int64) (fsm.KeyVersion, error)
	// Import takes material imported into version v of k and returns
	// what the catalogue keeps of it (the material wrapped).
	Import(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, material []byte) ([]byte, error)
	// Seal encrypts plaintext into a ciphertext blob (docs/CIPHERTEXT.md).
	Seal(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, plaintext []byte, encCtx map[string]string) ([]byte, error)
	// Open decrypts a blob Seal made; every way it can be wrong is
	// crypto.ErrInvalidCiphertext.
	Open(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, blob []byte, encCtx map[string]string) ([]byte, error)
	// Sign signs a SHA-256 digest with alg.
	Sign(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, alg string, digest []byte) ([]byte, error)
	// DecryptAsymmetric decrypts an RSA-OAEP ciphertext; a ciphertext that
	// does not decrypt is crypto.ErrInvalidCiphertext.
	DecryptAsymmetric(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, alg string, ciphertext []byte) ([]byte, error)
	// Forget drops this node's working copies of k's versions (disable,
	// delete, new material).
	Forget(k *fsm.Key)
}

// storeFor is the store that holds version v's material.
func (s *Service) storeFor(v *fsm.KeyVersion) keyStore { return s.storeForDomain(v.Domain) }

// storeForKey is the store a new version of k goes to: the HSM domain of a
// hardware instance's key, software otherwise.
func (s *Service) storeForKey(k *fsm.Key) keyStore {
	return s.storeForDomain(s.instanceDomain(k.InstanceID))
}

func (s *Service) storeForDomain(domain string) keyStore {
	if domain != "" {
		return hsmStore{s: s, domain: domain}
	}
	return s.softStore
}

// newKeyVersion makes a new version of k's material in the key's store.
func (s *Service) newKeyVersion(ctx context.Context, k *fsm.Key, now int64) (fsm.KeyVersion, error) {
	return s.storeForKey(k).NewVersion(ctx, k, now)
}

// forgetKey drops a key's working copies from this node's stores (disable,
// delete, new material).
func (s *Service) forgetKey(k *fsm.Key) {
	s.softStore.Forget(k)
	hsmStore{s: s}.Forget(k)
}
