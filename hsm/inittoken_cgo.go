//go:build cgo

package hsm

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/miekg/pkcs11"
)

// InitToken initializes the first uninitialized token of the PKCS#11 module
// at modulePath with label and new random PINs, for a node whose token is
// made by a one-shot container (no shell to pass a PIN around). The user PIN
// is written to pinFile (mode 0600, created, never overwritten) before the
// token is touched; the SO PIN is not kept. When a token labelled label
// exists already and pinFile does too, nothing is done and existed is true,
// so the command may run again. A PIN is never printed.
func InitToken(modulePath, label, pinFile string) (existed bool, err error) {
	if label == "" || pinFile == "" {
		return false, errors.New("hsm: init-token needs a token label and a PIN file")
	}
	m, err := acquireModule(modulePath)
	if err != nil {
		return false, err
	}
	defer m.release()
	_, findErr := m.findSlot(label)
	_, statErr := os.Lstat(pinFile)
	switch {
	case findErr == nil && statErr == nil:
		return true, nil
	case findErr == nil:
		return false, fmt.Errorf("hsm: a token labelled %q exists but the PIN file %s does not; nothing was changed", label, pinFile)
	case !errors.Is(findErr, ErrTokenNotFound):
		return false, findErr
	case statErr == nil:
		return false, fmt.Errorf("hsm: %s exists but no token is labelled %q; nothing was changed", pinFile, label)
	case !errors.Is(statErr, os.ErrNotExist):
		return false, statErr
	}
	slot, err := m.freeSlot()
	if err != nil {
		return false, err
	}
	userPIN, err := randomPIN()
	if err != nil {
		return false, err
	}
	soPIN, err := randomPIN()
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile(pinFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fmt.Errorf("hsm: PIN file: %w", err)
	}
	_, werr := f.WriteString(userPIN + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(pinFile)
		return false, fmt.Errorf("hsm: PIN file: %w", werr)
	}
	if err := m.initToken(slot, soPIN, userPIN, label); err != nil {
		os.Remove(pinFile)
		return false, err
	}
	return false, nil
}

// freeSlot returns the first slot whose token is not initialized.
func (m *module) freeSlot() (uint, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("hsm: list slots: %w", err)
	}
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			return s, nil
		}
	}
	return 0, errors.New("hsm: the module has no uninitialized token")
}

// initToken runs C_InitToken on slot, then sets the user PIN as the SO.
func (m *module) initToken(slot uint, soPIN, userPIN, label string) error {
	if err := m.ctx.InitToken(slot, soPIN, label); err != nil {
		return fmt.Errorf("hsm: initialize the token: %w", err)
	}
	// SoftHSM moves a token it has just initialized to a new slot number.
	slot, err := m.findSlot(label)
	if err != nil {
		return err
	}
	sh, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("hsm: open a session: %w", err)
	}
	defer m.ctx.CloseSession(sh)
	if err := m.ctx.Login(sh, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("hsm: log in as SO: %w", err)
	}
	defer m.ctx.Logout(sh)
	if err := m.ctx.InitPIN(sh, userPIN); err != nil {
		return fmt.Errorf("hsm: set the user PIN: %w", err)
	}
	return nil
}

// randomPIN is 24 characters of base64url from 18 random bytes.
func randomPIN() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
