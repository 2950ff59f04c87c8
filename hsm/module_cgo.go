//go:build cgo

package hsm

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

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

	// smu makes opening and closing sessions atomic with owners, the
	// sessions of ours that hold each handle number.
	smu    sync.Mutex
	owners map[pkcs11.SessionHandle]*sess
}

// sess is a session this process opened. PKCS#11 lets a module give a
// closed session's number to the next session opened, on any slot
// (SoftHSM 2.6 happens not to: sessions and objects share one counter that
// never goes back; other modules number sessions by a table index). After
// the module drops sessions (a device reset, C_CloseAllSessions) a stale
// handle could then name somebody else's new session, and closing it would
// close theirs. So every open and close goes through the module, which
// knows which sess owns a number: a number handed out again marks its
// previous owner gone, and a gone sess is never closed.
type sess struct {
	h    pkcs11.SessionHandle
	gone atomic.Bool
}

// openSession opens a read/write session on slot.
func (m *module) openSession(slot uint) (*sess, error) {
	m.smu.Lock()
	defer m.smu.Unlock()
	h, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, err
	}
	if prev := m.owners[h]; prev != nil {
		prev.gone.Store(true)
	}
	s := &sess{h: h}
	m.owners[h] = s
	return s, nil
}

// closeSession closes s unless its number already belongs to another.
func (m *module) closeSession(s *sess) {
	m.smu.Lock()
	defer m.smu.Unlock()
	if s.gone.Load() || m.owners[s.h] != s {
		return
	}
	delete(m.owners, s.h)
	s.gone.Store(true)
	_ = m.ctx.CloseSession(s.h)
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
	m := &module{key: key, ctx: ctx, refs: 1, ownInit: own, logins: map[uint]int{}, owners: map[pkcs11.SessionHandle]*sess{}}
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
