package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Layout of a symmetric ciphertext blob (docs/CIPHERTEXT.md is the
// normative description, with a test vector):
//
//	offset  size  field
//	0       1     format (0x01: AES-GCM under a key version's material)
//	1       16    key version id (the UUID's 16 bytes)
//	17      12    nonce, random per encryption
//	29      n+16  AES-GCM ciphertext ‖ tag
//
// The associated data is the 17-byte header followed by the canonical
// encryption context, so neither the version id nor the context can be
// changed without the tag failing.
const (
	FormatGCMv1 byte = 0x01
	NonceSize        = 12
	TagSize          = 16
	headerSize       = 1 + 16
	// MinCiphertextSize is the size of a blob that seals an empty plaintext.
	MinCiphertextSize = headerSize + NonceSize + TagSize
	// MaxPlaintextSize is the largest plaintext Encrypt accepts (6 KiB).
	MaxPlaintextSize = 6 * 1024
	// MaxContextSize bounds the JSON text of an encryption context.
	MaxContextSize = 8192
)

var (
	// ErrInvalidCiphertext covers every way a blob can fail to open: bad
	// format, truncation, wrong key, wrong encryption context, tampering. One
	// error for all of them, so a caller learns nothing from which it was.
	ErrInvalidCiphertext = errors.New("the ciphertext is invalid or the encryption context does not match")
	// ErrInvalidContext means an encryption context is not a JSON object of
	// strings, or is too long.
	ErrInvalidContext = errors.New("EncryptionContext must be a JSON object whose values are strings, at most 8192 characters")
)

// Header is the cleartext part of a ciphertext blob.
type Header struct {
	Format    byte
	VersionID string
}

// ParseCiphertext reads the header of a blob without opening it. Blobs come
// from clients, so this is the decoder that meets untrusted bytes first.
func ParseCiphertext(blob []byte) (Header, error) {
	if len(blob) < MinCiphertextSize {
		return Header{}, fmt.Errorf("%w: too short", ErrInvalidCiphertext)
	}
	if blob[0] != FormatGCMv1 {
		return Header{}, fmt.Errorf("%w: unknown format", ErrInvalidCiphertext)
	}
	id, err := uuid.FromBytes(blob[1:headerSize])
	if err != nil {
		return Header{}, fmt.Errorf("%w: bad version id", ErrInvalidCiphertext)
	}
	return Header{Format: blob[0], VersionID: id.String()}, nil
}

// Seal encrypts plaintext under one key version's AES material and returns
// the blob. ctx is the canonical encryption context (CanonicalContext).
func Seal(material []byte, versionID string, plaintext, ctx []byte) ([]byte, error) {
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	return seal(aead, versionID, nil, plaintext, ctx)
}

// AESKey is one key version's AES material made ready for Seal and Open
// once (the AES key schedule and the GCM state), for a caller that seals
// and opens under the same version many times. Safe for concurrent use.
type AESKey struct{ aead cipher.AEAD }

// NewAESKey prepares 16, 24 or 32 bytes of AES material.
func NewAESKey(material []byte) (*AESKey, error) {
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	return &AESKey{aead: aead}, nil
}

// Seal is the package's Seal under k.
func (k *AESKey) Seal(versionID string, plaintext, ctx []byte) ([]byte, error) {
	return seal(k.aead, versionID, nil, plaintext, ctx)
}

// Open is the package's Open under k.
func (k *AESKey) Open(blob, ctx []byte) ([]byte, error) {
	return open(k.aead, blob, ctx)
}

// sealWithNonce exists for the published test vector; a nonce must never be
// reused with the same material.
func sealWithNonce(material []byte, versionID string, nonce, plaintext, ctx []byte) ([]byte, error) {
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	return seal(aead, versionID, nonce, plaintext, ctx)
}

// seal is Seal with a fresh nonce from crypto/rand, read straight into the
// blob, when nonce is nil.
func seal(aead cipher.AEAD, versionID string, nonce, plaintext, ctx []byte) ([]byte, error) {
	id, err := uuid.Parse(versionID)
	if err != nil {
		return nil, fmt.Errorf("seal: bad version id: %w", err)
	}
	out := make([]byte, headerSize+NonceSize, headerSize+NonceSize+len(plaintext)+TagSize)
	out[0] = FormatGCMv1
	copy(out[1:headerSize], id[:])
	if nonce == nil {
		if _, err := io.ReadFull(rand.Reader, out[headerSize:headerSize+NonceSize]); err != nil {
			return nil, err
		}
	} else {
		copy(out[headerSize:], nonce)
	}
	// The nonce lies within out's length, so Seal's appending does not
	// touch it.
	return aead.Seal(out, out[headerSize:headerSize+NonceSize], plaintext, blobAAD(out[:headerSize], ctx)), nil
}

// Open decrypts a blob with the material of the version its header names.
func Open(material []byte, blob, ctx []byte) ([]byte, error) {
	if err := checkCiphertext(blob); err != nil {
		return nil, err
	}
	aead, err := newGCM(material)
	if err != nil {
		return nil, err
	}
	return open(aead, blob, ctx)
}

// checkCiphertext is ParseCiphertext's check without building the Header
// (16 header bytes always make a UUID).
func checkCiphertext(blob []byte) error {
	if len(blob) < MinCiphertextSize {
		return fmt.Errorf("%w: too short", ErrInvalidCiphertext)
	}
	if blob[0] != FormatGCMv1 {
		return fmt.Errorf("%w: unknown format", ErrInvalidCiphertext)
	}
	return nil
}

func open(aead cipher.AEAD, blob, ctx []byte) ([]byte, error) {
	if err := checkCiphertext(blob); err != nil {
		return nil, err
	}
	aad := blob[:headerSize] // Open's dst is nil: the blob may be the AAD
	if len(ctx) > 0 {
		aad = blobAAD(blob[:headerSize], ctx)
	}
	pt, err := aead.Open(nil, blob[headerSize:headerSize+NonceSize], blob[headerSize+NonceSize:], aad)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return pt, nil
}

func blobAAD(header, ctx []byte) []byte {
	aad := make([]byte, 0, len(header)+len(ctx))
	return append(append(aad, header...), ctx...)
}

func newGCM(material []byte) (cipher.AEAD, error) {
	switch len(material) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("AES material must be 16, 24 or 32 bytes, not %d", len(material))
	}
	block, err := aes.NewCipher(material)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ParseContext parses the EncryptionContext parameter: empty text means no
// context.
func ParseContext(text string) (map[string]string, error) {
	if text == "" {
		return nil, nil
	}
	if len(text) > MaxContextSize || !utf8.ValidString(text) {
		return nil, ErrInvalidContext
	}
	var m map[string]string
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, ErrInvalidContext
	}
	return m, nil
}

// CanonicalContext is the byte form of an encryption context bound into a
// ciphertext: keys sorted, compact JSON without HTML escaping; an empty or
// absent context is the empty string. Order of keys in the request therefore
// does not matter.
func CanonicalContext(m map[string]string) []byte {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeJSONString(&buf, k)
		buf.WriteByte(':')
		writeJSONString(&buf, m[k])
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	buf.Truncate(buf.Len() - 1)
}

// CiphertextNonce returns the nonce (the AES-GCM IV) a blob carries in the
// clear, or nil when blob is not a blob this package reads. The instance
// API reports it as the ciphertext's Iv.
func CiphertextNonce(blob []byte) []byte {
	if _, err := ParseCiphertext(blob); err != nil {
		return nil
	}
	return append([]byte(nil), blob[headerSize:headerSize+NonceSize]...)
}
