package hsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// FuzzUnwrapKeyPad: any blob either opens to material that wraps back to
// the same blob, or is ErrUnwrap; it never panics.
func FuzzUnwrapKeyPad(f *testing.F) {
	kek := bytes.Repeat([]byte{7}, 32)
	for _, n := range []int{1, 7, 8, 9, 16, 32, 40} {
		w, _ := WrapKeyPad(kek, bytes.Repeat([]byte{byte(n)}, n))
		f.Add(w)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, blob []byte) {
		key, err := UnwrapKeyPad(kek, blob)
		if err != nil {
			if !errors.Is(err, ErrUnwrap) {
				t.Fatalf("error %v is not ErrUnwrap", err)
			}
			return
		}
		again, err := WrapKeyPad(kek, key)
		if err != nil || !bytes.Equal(again, blob) {
			t.Fatalf("opened blob does not wrap back: %v", err)
		}
	})
}

// FuzzOAEPDecode: the decoder meets the raw RSA result of an attacker's
// ciphertext. It must never panic and fail only with ErrDecrypt.
func FuzzOAEPDecode(f *testing.F) {
	f.Add(make([]byte, 256))
	f.Add(bytes.Repeat([]byte{1}, 256))
	f.Add(make([]byte, 65))
	f.Fuzz(func(t *testing.T, em []byte) {
		out, err := oaepDecode(sha256.New, em)
		if err != nil {
			if err != ErrDecrypt {
				t.Fatalf("error %v", err)
			}
			return
		}
		if len(out) > len(em)-2*sha256.Size-2 {
			t.Fatalf("%d bytes out of a %d-byte encoding", len(out), len(em))
		}
	})
}
