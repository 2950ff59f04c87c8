package hsm

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// KeyCheckValue computes the key check value of an AES key the way PKCS#11
// tokens report CKA_CHECK_VALUE: the first 3 bytes of AES-ECB(key, 0^16). It
// identifies a key (to compare two tokens' domain keys) without revealing it.
func KeyCheckValue(key []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: key check value: %v", ErrInvalidParameter, err)
	}
	var out [aes.BlockSize]byte
	block.Encrypt(out[:], out[:])
	return out[:3:3], nil
}

// rfc5649AIV is the first half of RFC 5649's alternative initial value.
var rfc5649AIV = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// WrapKeyPad wraps key material under kek with AES Key Wrap with Padding
// (RFC 5649), the Go twin of the token's CKM_AES_KEY_WRAP_PAD. A blob made
// here unwraps in any token of the domain whose key is kek: it is the import
// path for external material when the caller holds the domain key (tests,
// offline tooling).
func WrapKeyPad(kek, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("%w: wrapping key: %v", ErrInvalidParameter, err)
	}
	if len(plaintext) == 0 || uint64(len(plaintext)) > 1<<32-1 {
		return nil, fmt.Errorf("%w: cannot wrap %d bytes", ErrInvalidParameter, len(plaintext))
	}
	n := (len(plaintext) + 7) / 8 // 64-bit blocks after padding
	out := make([]byte, 8+8*n)
	copy(out[:4], rfc5649AIV[:])
	binary.BigEndian.PutUint32(out[4:8], uint32(len(plaintext)))
	copy(out[8:], plaintext) // the padding is the zeros make left
	if n == 1 {
		// One block: AIV‖P is encrypted with the plain block cipher.
		block.Encrypt(out, out)
		return out, nil
	}
	// RFC 3394's wrapping process W with the AIV as A.
	var b [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(b[:8], out[:8])
			copy(b[8:], out[8*i:8*i+8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(out[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(out[8*i:8*i+8], b[8:])
		}
	}
	return out, nil
}

// UnwrapKeyPad reverses WrapKeyPad. Any integrity failure is ErrUnwrap.
func UnwrapKeyPad(kek, wrapped []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("%w: wrapping key: %v", ErrInvalidParameter, err)
	}
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not an RFC 5649 blob", ErrUnwrap, len(wrapped))
	}
	n := len(wrapped)/8 - 1
	buf := make([]byte, len(wrapped))
	copy(buf, wrapped)
	if n == 1 {
		block.Decrypt(buf, buf)
	} else {
		var b [16]byte
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(buf[:8])^t)
				copy(b[8:], buf[8*i:8*i+8])
				block.Decrypt(b[:], b[:])
				copy(buf[:8], b[:8])
				copy(buf[8*i:8*i+8], b[8:])
			}
		}
	}
	// One error for every failure: the AIV, the length, the zero padding.
	// A forged or foreign blob decrypts to pseudorandom bytes, so which check
	// fails tells nothing; compare the AIV in constant time anyway.
	ok := subtle.ConstantTimeCompare(buf[:4], rfc5649AIV[:])
	mli := int(binary.BigEndian.Uint32(buf[4:8]))
	if ok != 1 || mli <= 8*(n-1) || mli > 8*n {
		clear(buf)
		return nil, ErrUnwrap
	}
	var pad byte
	for _, c := range buf[8+mli:] {
		pad |= c
	}
	if pad != 0 {
		clear(buf)
		return nil, ErrUnwrap
	}
	out := make([]byte, mli)
	copy(out, buf[8:8+mli])
	clear(buf)
	return out, nil
}
