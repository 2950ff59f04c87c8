//go:build cgo

package hsm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/hsm/hsmtest"
)

// kmsd hsm init-token: a free SoftHSM token initialized with a random PIN
// written to a new 0600 file, opened with that file; running it again
// changes nothing; a PIN file without its token (or the reverse) is refused.
func TestInitToken_RandomPinInAFileAndIdempotent(t *testing.T) {
	h := hsmtest.New(t) // no token yet: one free slot
	pin := filepath.Join(t.TempDir(), "hsm.pin")
	existed, err := hsm.InitToken(h.Module, "node5", pin)
	if err != nil || existed {
		t.Fatalf("InitToken: existed=%v err=%v", existed, err)
	}
	fi, err := os.Stat(pin)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("PIN file: %v %v", fi, err)
	}
	first, _ := os.ReadFile(pin)
	if len(bytes.TrimSpace(first)) < 20 {
		t.Fatalf("PIN too short: %d characters", len(bytes.TrimSpace(first)))
	}
	tok, err := hsm.Open(hsm.Config{ModulePath: h.Module, TokenLabel: "node5", PinFile: pin})
	if err != nil {
		t.Fatalf("open the new token with the PIN file: %v", err)
	}
	tok.Close()

	existed, err = hsm.InitToken(h.Module, "node5", pin)
	if err != nil || !existed {
		t.Fatalf("second run: existed=%v err=%v", existed, err)
	}
	if again, _ := os.ReadFile(pin); !bytes.Equal(again, first) {
		t.Fatal("the PIN file changed on the second run")
	}

	other := filepath.Join(t.TempDir(), "other.pin")
	if _, err := hsm.InitToken(h.Module, "node5", other); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a token without its PIN file must be refused: %v", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatal("a PIN file was written for a refused run")
	}
	if _, err := hsm.InitToken(h.Module, "node6", pin); err == nil {
		t.Fatal("an existing PIN file for another label must be refused")
	}
}
