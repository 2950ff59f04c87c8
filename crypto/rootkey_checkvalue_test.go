package crypto

import (
	"bytes"
	"testing"
)

// HasCheckValue agrees with comparing CheckValue's copy.
func TestRootKey_HasCheckValue(t *testing.T) {
	a, err := NewRootKey(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRootKey(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if !a.HasCheckValue(a.CheckValue()) || a.HasCheckValue(b.CheckValue()) || a.HasCheckValue(nil) {
		t.Fatal("HasCheckValue disagrees with CheckValue")
	}
}
