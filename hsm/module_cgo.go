//go:build cgo

package hsm

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 library is one per process: dlopen returns the same copy for
// the same file, C_Initialize may run once (a second call is
// CKR_CRYPTOKI_ALREADY_INITIALIZED), and C_Login applies to every session
// of the process. So tokens opened through the same library share one
// module, counted by reference; the last Close finalizes it. That also lets
// SoftHSM start afresh (it reads SOFTHSM2_CONF and builds its slot list only
// in C_Initialize), which is what lets each test bring its own token dir.
type module struct {
	key  string
	ctx  *pkcs11.Ctx
	refs int
	// ownInit is false when someone else in the process had already
	// initialized the library; then it is theirs to finalize.
	ownInit bool
	// logins counts our open Tokens per slot: the login is shared, so a
	// second Token on the same token must not log it out.
	logins map[uint]int
}

var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

func acquireModule(path string) (*module, error) {
	if path == "" {
		return nil, errors.New("hsm: no PKCS#11 module path")
	}
	key := path
	if real, err := filepath.EvalSymlinks(path); err == nil {
		key = real
	}
	modules.Lock()
	defer modules.Unlock()
	if m := modules.m[key]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("hsm: cannot load PKCS#11 module %s", path)
	}
	own := true
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			ctx.Destroy()
			return nil, fmt.Errorf("hsm: initialize %s: %w", path, err)
		}
		own = false
	}
	m := &module{key: key, ctx: ctx, refs: 1, ownInit: own, logins: map[uint]int{}}
	modules.m[key] = m
	return m, nil
}

func (m *module) release() {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(modules.m, m.key)
	if m.ownInit {
		_ = m.ctx.Finalize()
	}
	m.ctx.Destroy()
}

// findSlot returns the slot holding the token labelled label.
func (m *module) findSlot(label string) (uint, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("hsm: list slots: %w", err)
	}
	var found []uint
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Label == label {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("%w: %q", ErrTokenNotFound, label)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("hsm: %d tokens are labelled %q; labels must be unique", len(found), label)
}

// login logs the process into the token if no Token of ours has. A token
// already logged in (by another Token on the same slot, or because login
// state outlived a reset) is fine.
func (m *module) login(slot uint, sh pkcs11.SessionHandle, pin string) error {
	err := m.ctx.Login(sh, pkcs11.CKU_USER, pin)
	if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		return err
	}
	return nil
}

func (m *module) addLogin(slot uint) {
	modules.Lock()
	m.logins[slot]++
	modules.Unlock()
}

// dropLogin reports whether the caller was the last Token on the slot.
func (m *module) dropLogin(slot uint) bool {
	modules.Lock()
	defer modules.Unlock()
	m.logins[slot]--
	if m.logins[slot] <= 0 {
		delete(m.logins, slot)
		return true
	}
	return false
}
