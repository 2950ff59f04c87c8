package kms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// The envelope of a secret version: what the catalogue (and so the Raft log
// and every snapshot) holds instead of the value.
//
//	offset  size   field
//	0       1      format (0x01)
//	1       2      n, the length of the data key blob (big endian)
//	3       n      the data key blob: a ciphertext blob (docs/CIPHERTEXT.md)
//	               of the 32-byte data key, sealed by the encryption key's
//	               store (software or HSM) under the key's primary version,
//	               with the encryption context secretKeyContext
//	3+n     12     nonce, random
//	15+n    m+16   AES-256-GCM(data key, value) ‖ tag, associated data
//	               secretValueAAD: a label naming the format, then the
//	               account, name, version id and data type, each
//	               length-prefixed
//
// The data key blob names its key version, so a version sealed before the
// encryption key rotated still opens. Both layers bind the secret's
// account, name and version id: an envelope copied onto another secret or
// version does not open. The data key exists unwrapped only while a value
// is sealed or opened; nothing unwrapped is kept.
//
// The digest is HMAC-SHA256 under a key derived from the root key
// (crypto.LabelSecretDigest) of the same binding and the value: the
// catalogue can tell "the same VersionId with the same data" without the
// value, and equal values of two versions have unrelated digests.

const (
	secretEnvelopeV1 byte = 0x01
	secretDataKeyLen      = 32
	// secretMaxDataKeyBlob bounds the length field (a blob of a 32-byte
	// data key is 77 bytes).
	secretMaxDataKeyBlob = 1024
)

// Data types of a secret value.
const (
	SecretDataText   = "text"
	SecretDataBinary = "binary"
)

// Encryption context of a data key: it binds the key's blob to its secret
// version, and key policy conditions can name it
// (kms:EncryptionContext:raftkms:secret-name).
const (
	secretCtxAccount = "raftkms:secret-account"
	secretCtxName    = "raftkms:secret-name"
	secretCtxVersion = "raftkms:secret-version"
)

func secretKeyContext(accountID, name, versionID string) map[string]string {
	return map[string]string{secretCtxAccount: accountID, secretCtxName: name, secretCtxVersion: versionID}
}

// secretBinding is the length-prefixed account, name, version id and data
// type: the associated data of the value and the prefix of its digest.
func secretBinding(label string, accountID, name, versionID, dataType string) []byte {
	b := make([]byte, 0, len(label)+16+len(accountID)+len(name)+len(versionID)+len(dataType))
	b = append(b, label...)
	for _, f := range []string{accountID, name, versionID, dataType} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func secretValueAAD(accountID, name, versionID, dataType string) []byte {
	return secretBinding("raftkms secret value v1\x00", accountID, name, versionID, dataType)
}

// secretDigest is the keyed digest of a version's value.
func (s *Service) secretDigest(accountID, name, versionID, dataType, data string) []byte {
	key := s.root.Derive(kcrypto.LabelSecretDigest)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write(secretBinding("raftkms secret digest v1\x00", accountID, name, versionID, dataType))
	m.Write([]byte(data))
	return m.Sum(nil)
}

// sealSecretVersion seals data as version versionID of secret (account,
// name) under encryption key keyID: a fresh data key sealed under the key,
// the value under the data key, and the keyed digest of the value.
// Authorization is the caller's business; the key must be a symmetric
// ENCRYPT/DECRYPT key, enabled.
func (s *Service) sealSecretVersion(ctx context.Context, accountID, name, keyID, versionID, dataType, data string) (fsm.SecretVersion, error) {
	k, ok := s.fsm.Key(keyID)
	if !ok || k.AccountID != accountID {
		return fsm.SecretVersion{}, fmt.Errorf("%w: the secret's encryption key %s", fsm.ErrKeyNotFound, keyID)
	}
	if err := usable(k, "Sealing a secret value with encryption key "+k.ID, UsageEncryptDecrypt); err != nil {
		return fsm.SecretVersion{}, err
	}
	kv, ok := s.fsm.KeyVersion(k.PrimaryVersion)
	if !ok {
		return fsm.SecretVersion{}, fmt.Errorf("key %s: primary version %s missing from the catalogue", k.ID, k.PrimaryVersion)
	}
	noteKey(ctx, k.ID, kv.ID)
	dk, err := kcrypto.RandomBytes(secretDataKeyLen)
	if err != nil {
		return fsm.SecretVersion{}, err
	}
	defer clear(dk)
	dkBlob, err := s.storeFor(kv).Seal(ctx, k, kv, dk, secretKeyContext(accountID, name, versionID))
	if err != nil {
		return fsm.SecretVersion{}, err
	}
	if len(dkBlob) > secretMaxDataKeyBlob {
		return fsm.SecretVersion{}, fmt.Errorf("secret envelope: a data key blob of %d bytes", len(dkBlob))
	}
	aead, err := secretAEAD(dk)
	if err != nil {
		return fsm.SecretVersion{}, err
	}
	nonce, err := kcrypto.RandomBytes(kcrypto.NonceSize)
	if err != nil {
		return fsm.SecretVersion{}, err
	}
	env := make([]byte, 0, 3+len(dkBlob)+len(nonce)+len(data)+kcrypto.TagSize)
	env = append(env, secretEnvelopeV1)
	env = binary.BigEndian.AppendUint16(env, uint16(len(dkBlob)))
	env = append(env, dkBlob...)
	env = append(env, nonce...)
	env = aead.Seal(env, nonce, []byte(data), secretValueAAD(accountID, name, versionID, dataType))
	return fsm.SecretVersion{
		ID:        versionID,
		CreatedAt: s.nowMillis(),
		DataType:  dataType,
		Envelope:  env,
		Digest:    s.secretDigest(accountID, name, versionID, dataType, data),
	}, nil
}

// openSecretVersion opens a version sealed by sealSecretVersion. A disabled
// or pending-deletion encryption key refuses with the key state's error.
// Authorization (kms:Decrypt on the key) is the caller's business.
func (s *Service) openSecretVersion(ctx context.Context, sec *fsm.Secret, v fsm.SecretVersion) (string, error) {
	dkBlob, sealed, err := splitSecretEnvelope(v.Envelope)
	if err != nil {
		return "", fmt.Errorf("secret %s version %s: %w", sec.Name, v.ID, err)
	}
	h, err := kcrypto.ParseCiphertext(dkBlob)
	if err != nil {
		return "", fmt.Errorf("secret %s version %s: %w", sec.Name, v.ID, err)
	}
	kv, ok := s.fsm.KeyVersion(h.VersionID)
	var k *fsm.Key
	if ok {
		k, ok = s.fsm.Key(kv.KeyID)
	}
	if !ok {
		return "", fmt.Errorf("%w: the encryption key of secret %s (%s) no longer exists", fsm.ErrKeyNotFound, sec.Name, sec.EncryptionKeyID)
	}
	noteKey(ctx, k.ID, kv.ID)
	if k.ID != sec.EncryptionKeyID || k.AccountID != sec.AccountID {
		// Only a damaged or forged catalogue entry gets here.
		return "", fmt.Errorf("secret %s version %s: %w: the envelope names another key", sec.Name, v.ID, kcrypto.ErrInvalidCiphertext)
	}
	if err := usable(k, "Reading a secret sealed with encryption key "+k.ID, UsageEncryptDecrypt); err != nil {
		return "", err
	}
	dk, err := s.storeFor(kv).Open(ctx, k, kv, dkBlob, secretKeyContext(sec.AccountID, sec.Name, v.ID))
	if err != nil {
		return "", fmt.Errorf("secret %s version %s: %w", sec.Name, v.ID, err)
	}
	defer clear(dk)
	aead, err := secretAEAD(dk)
	if err != nil {
		return "", err
	}
	nonce, ct := sealed[:kcrypto.NonceSize], sealed[kcrypto.NonceSize:]
	pt, err := aead.Open(nil, nonce, ct, secretValueAAD(sec.AccountID, sec.Name, v.ID, v.DataType))
	if err != nil {
		return "", fmt.Errorf("secret %s version %s: %w", sec.Name, v.ID, kcrypto.ErrInvalidCiphertext)
	}
	data := string(pt)
	clear(pt)
	return data, nil
}

// splitSecretEnvelope returns an envelope's data key blob and the sealed
// value (nonce ‖ ciphertext ‖ tag).
func splitSecretEnvelope(env []byte) (dkBlob, sealed []byte, err error) {
	if len(env) < 3 || env[0] != secretEnvelopeV1 {
		return nil, nil, fmt.Errorf("%w: not a secret envelope", kcrypto.ErrInvalidCiphertext)
	}
	n := int(binary.BigEndian.Uint16(env[1:3]))
	if n > secretMaxDataKeyBlob || len(env) < 3+n+kcrypto.NonceSize+kcrypto.TagSize {
		return nil, nil, fmt.Errorf("%w: a truncated secret envelope", kcrypto.ErrInvalidCiphertext)
	}
	return env[3 : 3+n], env[3+n:], nil
}

func secretAEAD(dk []byte) (cipher.AEAD, error) {
	if len(dk) != secretDataKeyLen {
		return nil, fmt.Errorf("%w: a data key of %d bytes", kcrypto.ErrInvalidCiphertext, len(dk))
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
