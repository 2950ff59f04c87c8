package kms

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// softStore keeps material in software: wrapped under the root key in the
// catalogue (AES-256-GCM, the key and version ids as associated data),
// unwrapped on first use into an in-memory LRU, the crypto done in Go.
type softStore struct {
	root      *kcrypto.RootKey
	materials *lru.Cache[string, *softMaterial] // unwrapped key material by version id
}

// softMaterial is one version's unwrapped material and, for AES, the
// material made ready for sealing (made on first use, dropped with it).
type softMaterial struct {
	m   []byte
	aes atomic.Pointer[kcrypto.AESKey]
}

// aesKey returns the version's prepared AES key.
func (sm *softMaterial) aesKey() (*kcrypto.AESKey, error) {
	if k := sm.aes.Load(); k != nil {
		return k, nil
	}
	k, err := kcrypto.NewAESKey(sm.m)
	if err != nil {
		return nil, err
	}
	sm.aes.CompareAndSwap(nil, k)
	return sm.aes.Load(), nil
}

func newSoftStore(root *kcrypto.RootKey) (*softStore, error) {
	materials, err := lru.New[string, *softMaterial](10000)
	if err != nil {
		return nil, err
	}
	return &softStore{root: root, materials: materials}, nil
}

// NewVersion generates fresh material for k's spec and wraps it for the
// catalogue; the plaintext is cleared before returning.
func (st *softStore) NewVersion(_ context.Context, k *fsm.Key, now int64) (fsm.KeyVersion, error) {
	v := fsm.KeyVersion{ID: newUUID(), KeyID: k.ID, CreatedAt: now}
	material, public, err := kcrypto.GenerateKeyMaterial(k.Spec)
	if err != nil {
		return v, err
	}
	defer clear(material)
	v.PublicKey = public
	if v.WrappedMaterial, err = st.root.Wrap(material, kcrypto.MaterialAAD(k.ID, v.ID)); err != nil {
		return v, err
	}
	return v, nil
}

func (st *softStore) Import(_ context.Context, k *fsm.Key, v *fsm.KeyVersion, material []byte) ([]byte, error) {
	return st.root.Wrap(material, kcrypto.MaterialAAD(k.ID, v.ID))
}

func (st *softStore) Seal(_ context.Context, _ *fsm.Key, v *fsm.KeyVersion, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	sm, err := st.entry(v)
	if err != nil {
		return nil, err
	}
	k, err := sm.aesKey()
	if err != nil {
		return nil, err
	}
	return k.Seal(v.ID, plaintext, kcrypto.CanonicalContext(encCtx))
}

func (st *softStore) Open(_ context.Context, _ *fsm.Key, v *fsm.KeyVersion, blob []byte, encCtx map[string]string) ([]byte, error) {
	sm, err := st.entry(v)
	if err != nil {
		return nil, err
	}
	k, err := sm.aesKey()
	if err != nil {
		return nil, err
	}
	return k.Open(blob, kcrypto.CanonicalContext(encCtx))
}

func (st *softStore) Sign(_ context.Context, k *fsm.Key, v *fsm.KeyVersion, alg string, digest []byte) ([]byte, error) {
	m, err := st.material(v)
	if err != nil {
		return nil, err
	}
	return kcrypto.Sign(k.Spec, alg, m, digest)
}

func (st *softStore) DecryptAsymmetric(_ context.Context, _ *fsm.Key, v *fsm.KeyVersion, alg string, ciphertext []byte) ([]byte, error) {
	m, err := st.material(v)
	if err != nil {
		return nil, err
	}
	pt, err := kcrypto.DecryptOAEP(alg, m, ciphertext)
	if err != nil {
		if errors.Is(err, kcrypto.ErrDecryption) {
			return nil, fmt.Errorf("%w: %v", kcrypto.ErrInvalidCiphertext, err)
		}
		return nil, err
	}
	return pt, nil
}

// Forget drops k's unwrapped material from memory.
func (st *softStore) Forget(k *fsm.Key) {
	for _, v := range k.Versions {
		st.materials.Remove(v)
	}
}

// purge drops every unwrapped material (a restore replaced the catalogue).
func (st *softStore) purge() { st.materials.Purge() }

// material returns a version's unwrapped material, from the cache or by
// unwrapping it under the root key.
func (st *softStore) material(v *fsm.KeyVersion) ([]byte, error) {
	sm, err := st.entry(v)
	if err != nil {
		return nil, err
	}
	return sm.m, nil
}

// entry is material's cache entry.
func (st *softStore) entry(v *fsm.KeyVersion) (*softMaterial, error) {
	if v.Domain != "" {
		// A hardware key's material never exists outside its tokens; every
		// path that reaches here for one is a bug, not a reason to try.
		return nil, fmt.Errorf("key version %s lives in HSM domain %q: its material is not available in software", v.ID, v.Domain)
	}
	if sm, ok := st.materials.Get(v.ID); ok {
		return sm, nil
	}
	m, err := st.root.Unwrap(v.WrappedMaterial, kcrypto.MaterialAAD(v.KeyID, v.ID))
	if err != nil {
		return nil, fmt.Errorf("key version %s: %w", v.ID, err)
	}
	sm := &softMaterial{m: m}
	st.materials.Add(v.ID, sm)
	return sm, nil
}
