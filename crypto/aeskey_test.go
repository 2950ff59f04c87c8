package crypto

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

// A prepared AESKey seals and opens exactly what Seal and Open with the
// raw material do, concurrently, and refuses what they refuse.
func TestAESKey_InteroperatesWithSealAndOpen(t *testing.T) {
	material := bytes.Repeat([]byte{7}, 32)
	const version = "3f1b4c2e-8a9d-4e6f-9b1a-2c3d4e5f6a7b"
	k, err := NewAESKey(material)
	if err != nil {
		t.Fatal(err)
	}
	ctx := []byte(`{"a":"b"}`)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				pt := []byte{byte(g), byte(i), 1, 2, 3}
				blob, err := k.Seal(version, pt, ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := Open(material, blob, ctx); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Open of AESKey.Seal: %q, %v", got, err)
					return
				}
				blob2, _ := Seal(material, version, pt, nil)
				if got, err := k.Open(blob2, nil); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("AESKey.Open of Seal: %q, %v", got, err)
					return
				}
				if _, err := k.Open(blob, nil); !errors.Is(err, ErrInvalidCiphertext) {
					t.Errorf("wrong context: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, err := k.Open([]byte{FormatGCMv1, 1, 2}, nil); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("short blob: %v", err)
	}
	if _, err := NewAESKey(make([]byte, 20)); err == nil {
		t.Fatal("20 bytes of AES material accepted")
	}
}
