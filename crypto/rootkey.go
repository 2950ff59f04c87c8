// Package crypto is raftkms's software cryptography: the root key and the
// wrapping of key material under it, the symmetric ciphertext blob, the
// canonical form of encryption contexts, and data keys.
//
// It keeps no state: every function takes the keys it needs. Plaintext key
// material it returns lives only in the caller's memory; nothing here logs,
// and no error message carries key bytes.
package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// RootKeySize is the size of the cluster root key in bytes (AES-256).
const RootKeySize = 32

// RootKey is the 256-bit key that protects every piece of key material the
// cluster stores. It never leaves the process.
type RootKey struct {
	aead   cipher.AEAD
	kcv    []byte
	macKey []byte // derived, for fingerprints; never the root key itself
	prk    []byte // HKDF-Extract of the root key: the base for Derive
}

var (
	// ErrBadRootKeyFile means the root key file is not base64 of 32 bytes.
	ErrBadRootKeyFile = errors.New("root key file must hold base64 of 32 random bytes")
	// ErrUnwrap means a wrapped blob does not open under this root key with
	// this associated data: the wrong root key, the wrong owner, or tampering.
	ErrUnwrap = errors.New("wrapped material does not open under the root key")
)

// NewRootKey builds a RootKey from 32 raw bytes.
func NewRootKey(raw []byte) (*RootKey, error) {
	if len(raw) != RootKeySize {
		return nil, fmt.Errorf("%w: got %d bytes", ErrBadRootKeyFile, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte("raftkms root key check value v1"))
	kcv := mac.Sum(nil)[:16]
	mac = hmac.New(sha256.New, raw)
	mac.Write([]byte("raftkms fingerprint key v1"))
	prk, err := hkdf.Extract(sha256.New, raw, []byte("raftkms root key derivation v1"))
	if err != nil {
		return nil, err
	}
	return &RootKey{aead: aead, kcv: kcv, macKey: mac.Sum(nil), prk: prk}, nil
}

// Derivation labels: each use of a key derived from the root key has its own
// label, so a key for one purpose is useless for every other.
const (
	// LabelClusterAuth derives the key with which cluster-port peers prove
	// they hold the same root key (transport's challenge–response).
	LabelClusterAuth = "raftkms cluster authentication v1"
	// LabelSnapshotMAC derives the key that authenticates snapshot files.
	LabelSnapshotMAC = "raftkms snapshot mac v1"
	// LabelSecretDigest derives the key of the keyed digest the catalogue
	// keeps of each secret version's value (to tell "the same VersionId
	// with the same data" apart without the value).
	LabelSecretDigest = "raftkms secret digest v1"
	// LabelConsoleCSRF derives the key of the console's CSRF tokens: a
	// token is the HMAC-SHA256 of the session's id under it, so any node
	// can check it and none has to store it.
	LabelConsoleCSRF = "raftkms console csrf v1"
)

// Derive returns a 32-byte key for one purpose: HKDF-SHA256 (RFC 5869) of the
// root key with the purpose's label as info. The result is key material:
// callers keep it in memory only.
func (k *RootKey) Derive(label string) []byte {
	out, err := hkdf.Expand(sha256.New, k.prk, label, 32)
	if err != nil {
		// Expand fails only for lengths above 255*32 bytes.
		panic(err)
	}
	return out
}

func (k *RootKey) mac(label string, data []byte) []byte {
	m := hmac.New(sha256.New, k.macKey)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

// LoadRootKeyFile reads a root key file: base64 of 32 bytes, surrounding
// whitespace allowed (`head -c 32 /dev/urandom | base64 > root.key`).
func LoadRootKeyFile(path string) (*RootKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read root key file: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrBadRootKeyFile, path)
	}
	rk, err := NewRootKey(raw)
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return rk, nil
}

// GenerateRootKeyFile writes a fresh random root key to path with mode 0600
// and returns it. It refuses to overwrite an existing file.
func GenerateRootKeyFile(path string) (*RootKey, error) {
	raw := make([]byte, RootKeySize)
	defer clear(raw)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create root key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return NewRootKey(raw)
}

// CheckValue identifies the root key without revealing it: an HMAC of a fixed
// label. Snapshots and the catalogue carry it so that a restore into, or a
// node joining, a cluster with a different root key is refused up front.
func (k *RootKey) CheckValue() []byte {
	return bytes.Clone(k.kcv)
}

// HasCheckValue says whether kcv is this key's check value, without the
// copy CheckValue makes (every API request asks).
func (k *RootKey) HasCheckValue(kcv []byte) bool {
	return bytes.Equal(k.kcv, kcv)
}

// wrapFormatV1 is the first byte of a wrapped blob: AES-256-GCM under the
// root key, then a 12-byte nonce, then ciphertext‖tag.
const wrapFormatV1 = 0x01

// Wrap seals plaintext under the root key. The associated data binds the blob
// to its owner (for key material: the key id and version id), so a blob
// copied onto another record does not open.
func (k *RootKey) Wrap(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+NonceSize, 1+NonceSize+len(plaintext)+TagSize)
	out[0] = wrapFormatV1
	if _, err := io.ReadFull(rand.Reader, out[1:1+NonceSize]); err != nil {
		return nil, err
	}
	return k.aead.Seal(out, out[1:1+NonceSize], plaintext, wrapAAD(out[0], aad)), nil
}

// Unwrap opens a blob made by Wrap with the same associated data.
func (k *RootKey) Unwrap(blob, aad []byte) ([]byte, error) {
	if len(blob) < 1+NonceSize+TagSize || blob[0] != wrapFormatV1 {
		return nil, ErrUnwrap
	}
	pt, err := k.aead.Open(nil, blob[1:1+NonceSize], blob[1+NonceSize:], wrapAAD(blob[0], aad))
	if err != nil {
		return nil, ErrUnwrap
	}
	return pt, nil
}

func wrapAAD(format byte, aad []byte) []byte {
	out := make([]byte, 0, len(aad)+len("raftkms-wrap")+1)
	out = append(out, "raftkms-wrap"...)
	out = append(out, format)
	return append(out, aad...)
}

// MaterialAAD is the associated data that binds wrapped key material to its
// key and version.
func MaterialAAD(keyID, versionID string) []byte {
	return []byte("material\x00" + keyID + "\x00" + versionID)
}

// SecretAAD binds a wrapped access key secret to its access key id.
func SecretAAD(accessKeyID string) []byte {
	return []byte("secret\x00" + accessKeyID)
}

// RandomBytes returns n bytes from the system CSPRNG.
func RandomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return nil, err
	}
	return b, nil
}

// InstanceCAAAD binds the wrapped private key of the cluster's instance CA
// to the CA certificate it belongs to (by the certificate's SHA-256), so a
// wrapped key cannot be paired with another certificate.
func InstanceCAAAD(certDER []byte) []byte {
	sum := sha256.Sum256(certDER)
	return append([]byte("instance-ca\x00"), sum[:]...)
}
