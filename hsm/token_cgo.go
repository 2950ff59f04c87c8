//go:build cgo

package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/pkcs11"
)

// reloginInterval bounds how often operations try to reopen a lost keeper
// session; between attempts they fail fast with ErrUnavailable.
const reloginInterval = time.Second

// Token is one open PKCS#11 token. It is safe for concurrent use.
type Token struct {
	cfg     Config
	userPIN string
	mod     *module
	ctx     *pkcs11.Ctx
	slot    uint
	log     hclog.Logger
	m       *metrics

	// gen counts keeper sessions: it moves when the keeper is reopened,
	// which makes every pool session and cached handle of the previous
	// generation stale.
	gen atomic.Uint64
	// up mirrors keeperOK for the fast path of every operation.
	up atomic.Bool

	// kmu serializes use of the keeper session (PKCS#11 sessions are not
	// for concurrent calls) and guards the fields below. Lock order: a pool
	// session, then kmu, then the cache's lock.
	kmu      sync.Mutex
	keeper   *sess
	keeperOK bool
	domains  map[string]pkcs11.ObjectHandle // domain key handles, valid while the keeper lives
	lastTry  time.Time
	lastErr  error
	loginErr error // a PIN failure: sticky until Check

	hmu    sync.Mutex
	health Health

	pool  chan *poolSession
	cache *keyCache

	closed atomic.Bool
	stop   chan struct{}
	done   chan struct{}
}

// poolSession is a pool slot; cur is usable when it is set, not gone, and
// of the current keeper generation.
type poolSession struct {
	cur *sess
	gen uint64
}

// Open loads the module (once per process), finds the token by label, opens
// the keeper session and logs in. A wrong PIN fails here, with ErrLogin.
func Open(c Config) (*Token, error) {
	cfg := c.withDefaults()
	if cfg.TokenLabel == "" {
		return nil, errors.New("hsm: no token label")
	}
	pin, err := cfg.pin()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics, cfg.TokenLabel)
	if err != nil {
		return nil, fmt.Errorf("hsm: register metrics: %w", err)
	}
	mod, err := acquireModule(cfg.ModulePath)
	if err != nil {
		m.unregister(cfg.Metrics, cfg.TokenLabel)
		return nil, err
	}
	slot, err := mod.findSlot(cfg.TokenLabel)
	if err != nil {
		mod.release()
		m.unregister(cfg.Metrics, cfg.TokenLabel)
		return nil, err
	}
	t := &Token{
		cfg: cfg, userPIN: pin, mod: mod, ctx: mod.ctx, slot: slot, log: cfg.Logger, m: m,
		domains: map[string]pkcs11.ObjectHandle{},
		pool:    make(chan *poolSession, cfg.PoolSize),
		cache:   newKeyCache(cfg.KeyCacheSize),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	t.gen.Store(1)
	t.kmu.Lock()
	err = t.openKeeperLocked()
	t.kmu.Unlock()
	if err != nil {
		mod.release()
		m.unregister(cfg.Metrics, cfg.TokenLabel)
		return nil, err
	}
	mod.addLogin(slot)
	for range cfg.PoolSize {
		t.pool <- &poolSession{}
	}
	t.setHealth(nil)
	if cfg.HealthInterval > 0 {
		go t.healthLoop(cfg.HealthInterval)
	} else {
		close(t.done)
	}
	t.log.Info("token open", "label", cfg.TokenLabel, "slot", slot, "sessions", cfg.PoolSize)
	return t, nil
}

// Label is the token label the Token was opened with.
func (t *Token) Label() string { return t.cfg.TokenLabel }

// Health returns the last known state without touching the token.
func (t *Token) Health() Health {
	t.hmu.Lock()
	defer t.hmu.Unlock()
	return t.health
}

// Check probes the keeper session and, if it is gone or logged out, reopens
// it and logs in again — also after a PIN failure, which only Check retries.
// It updates Health and returns the reason the token is bad, if it is.
func (t *Token) Check(ctx context.Context) error {
	return t.check(true)
}

func (t *Token) check(force bool) error {
	if t.closed.Load() {
		return ErrClosed
	}
	t.kmu.Lock()
	if t.keeperOK && !t.keeper.gone.Load() {
		info, err := t.ctx.GetSessionInfo(t.keeper.h)
		if err == nil && (info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS) {
			t.kmu.Unlock()
			t.setHealth(nil)
			return nil
		}
		if err == nil {
			err = pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
		}
		t.log.Warn("keeper session lost", "error", err)
	} else if t.keeperOK {
		t.log.Warn("keeper session lost", "error", "its handle was given to a new session")
	}
	gen := t.gen.Load()
	t.kmu.Unlock()
	return t.recover(gen, force)
}

func (t *Token) healthLoop(every time.Duration) {
	defer close(t.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			_ = t.check(false)
		}
	}
}

func (t *Token) setHealth(err error) {
	state := HealthOK
	if err != nil {
		state = HealthBad
	}
	t.hmu.Lock()
	prev := t.health.State
	if prev != state {
		t.health.Since = time.Now()
	}
	t.health.State, t.health.Err = state, err
	t.hmu.Unlock()
	if state == HealthOK {
		t.m.up.Set(1)
	} else {
		t.m.up.Set(0)
	}
	switch {
	case prev != HealthBad && state == HealthBad:
		t.log.Error("token unhealthy", "label", t.cfg.TokenLabel, "error", err)
	case prev == HealthBad && state == HealthOK:
		t.log.Info("token healthy again", "label", t.cfg.TokenLabel)
	}
}

// openKeeperLocked opens the keeper session and logs in. kmu is held.
func (t *Token) openKeeperLocked() error {
	t.lastTry = time.Now()
	ks, err := t.mod.openSession(t.slot)
	if err != nil {
		t.lastErr = fmt.Errorf("%w: open session on %q: %w", ErrUnavailable, t.cfg.TokenLabel, err)
		return t.lastErr
	}
	if err := t.mod.login(t.slot, ks.h, t.userPIN); err != nil {
		t.mod.closeSession(ks)
		if isPINError(err) {
			t.loginErr = fmt.Errorf("%w: %q: %w", ErrLogin, t.cfg.TokenLabel, err)
			t.lastErr = fmt.Errorf("%w: %w", ErrUnavailable, t.loginErr)
		} else {
			t.lastErr = fmt.Errorf("%w: login to %q: %w", ErrUnavailable, t.cfg.TokenLabel, err)
		}
		return t.lastErr
	}
	t.keeper, t.keeperOK, t.loginErr, t.lastErr = ks, true, nil, nil
	t.up.Store(true)
	return nil
}

// recover replaces the keeper session of generation gen: every cached
// handle and pool session goes with it. If another goroutine already did,
// there is nothing to do. Without force, a sticky PIN failure is not
// retried and attempts are spaced by reloginInterval.
func (t *Token) recover(gen uint64, force bool) error {
	t.kmu.Lock()
	defer t.kmu.Unlock()
	if t.gen.Load() != gen {
		if t.keeperOK {
			return nil
		}
		return t.lastErr
	}
	if !force && !t.keeperOK {
		if t.loginErr != nil {
			return t.lastErr
		}
		if time.Since(t.lastTry) < reloginInterval && t.lastErr != nil {
			return t.lastErr
		}
	}
	t.gen.Add(1)
	t.cache.purge() // the session objects die with the keeper
	t.m.cached.Set(0)
	clear(t.domains)
	if t.keeperOK {
		t.mod.closeSession(t.keeper)
		t.keeperOK = false
		t.up.Store(false)
	}
	err := t.openKeeperLocked()
	if err != nil {
		t.m.recoveries.WithLabelValues("error").Inc()
		t.setHealth(err)
		return err
	}
	t.m.recoveries.WithLabelValues("ok").Inc()
	t.log.Warn("keeper session reopened", "label", t.cfg.TokenLabel)
	t.setHealth(nil)
	return nil
}

// keeperLocked reports whether the keeper session is there to use. kmu is
// held.
func (t *Token) keeperLocked() bool { return t.keeperOK && !t.keeper.gone.Load() }

// ready makes sure there is a keeper session before an operation.
func (t *Token) ready() error {
	if t.closed.Load() {
		return ErrClosed
	}
	if t.up.Load() {
		return nil
	}
	return t.recover(t.gen.Load(), false)
}

// acquire takes a pool session, reopening it if it belongs to an older
// keeper generation, was closed after an error, or lost its handle.
func (t *Token) acquire(ctx context.Context) (*poolSession, error) {
	var ps *poolSession
	select {
	case ps = <-t.pool:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if t.closed.Load() {
		t.pool <- ps
		return nil, ErrClosed
	}
	gen := t.gen.Load()
	if ps.cur != nil && (ps.gen != gen || ps.cur.gone.Load()) {
		t.mod.closeSession(ps.cur)
		ps.cur = nil
	}
	if ps.cur == nil {
		s, err := t.mod.openSession(t.slot)
		if err != nil {
			t.pool <- ps
			return nil, fmt.Errorf("open session: %w", err)
		}
		ps.cur, ps.gen = s, gen
		// A session is opened after an error or a recovery. If the keeper
		// is gone, so are the cached keys: a module that reuses object
		// numbers could give a stale cached number to a key generated in
		// this new session. Recover first.
		if err := t.keeperAlive(); err != nil {
			t.pool <- ps
			return nil, err
		}
	}
	return ps, nil
}

// keeperAlive asks the module whether the keeper session is still open and
// logged in.
func (t *Token) keeperAlive() error {
	t.kmu.Lock()
	defer t.kmu.Unlock()
	if !t.keeperLocked() {
		return errKeeperLost
	}
	info, err := t.ctx.GetSessionInfo(t.keeper.h)
	if err != nil || (info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS) {
		return errKeeperLost
	}
	return nil
}

// release returns a pool session; after a session-class error it is
// closed (if it is still ours) and reopened on the next acquire.
func (t *Token) release(ps *poolSession, bad bool) {
	if bad && ps.cur != nil {
		t.mod.closeSession(ps.cur)
		ps.cur = nil
	}
	t.pool <- ps
}

// run performs one operation on a pool session, with one retry after
// recovering from a lost session or a lost object (the retry unwraps the
// key again). fn must not keep handles across calls.
func (t *Token) run(ctx context.Context, op string, fn func(sh pkcs11.SessionHandle, gen uint64) error) (err error) {
	start := time.Now()
	defer func() { t.m.observe(op, start, err) }()
	for attempt := 0; ; attempt++ {
		if err := t.ready(); err != nil {
			return err
		}
		ps, err := t.acquire(ctx)
		var gen uint64
		if err == nil {
			gen = ps.gen
			err = fn(ps.cur.h, gen)
			t.release(ps, classify(err) == classSession)
		} else {
			gen = t.gen.Load()
		}
		if err == nil {
			return nil
		}
		class := classify(err)
		if class == classNone || attempt > 0 || ctx.Err() != nil {
			if class != classNone {
				err = fmt.Errorf("hsm %s: %w", op, err)
				// a second failure in a row: make sure the keeper is still
				// good, so Health tells the truth.
				_ = t.check(false)
			}
			return err
		}
		if class == classSession && t.keeperAlive() == nil {
			// Only this session failed; it is closed already and the
			// retry opens another. The keeper and its keys stay.
			t.log.Warn("operation lost its session; retrying on another", "op", op, "error", err)
			continue
		}
		t.log.Warn("operation lost its session or key; recovering the keeper", "op", op, "error", err)
		if rerr := t.recover(gen, false); rerr != nil {
			return rerr
		}
	}
}

// Close waits for operations in flight, closes every session and releases
// the module (finalizing it after the last Token of the process).
func (t *Token) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(t.stop)
	<-t.done
	for range t.cfg.PoolSize {
		ps := <-t.pool
		if ps.cur != nil {
			t.mod.closeSession(ps.cur)
		}
	}
	t.kmu.Lock()
	t.cache.purge()
	last := t.mod.dropLogin(t.slot)
	if t.keeperOK {
		if last && !t.keeper.gone.Load() {
			_ = t.ctx.Logout(t.keeper.h)
		}
		t.mod.closeSession(t.keeper)
		t.keeperOK = false
		t.up.Store(false)
	}
	t.kmu.Unlock()
	t.m.unregister(t.cfg.Metrics, t.cfg.TokenLabel)
	t.mod.release()
	t.log.Info("token closed", "label", t.cfg.TokenLabel)
	return nil
}

// Error classes decide what run does after a failure.
type errClass int

const (
	classNone    errClass = iota // the operation's own result
	classSession                 // sessions are gone or the device failed: reopen
	classObject                  // a handle vanished: the keeper lost its objects
)

// errKeeperLost is returned when the keeper went away between the check
// and its use; run treats it like a lost session.
var errKeeperLost = errors.New("keeper session lost")

func classify(err error) errClass {
	if err == nil {
		return classNone
	}
	if errors.Is(err, errKeeperLost) {
		return classSession
	}
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return classNone
	}
	switch uint(e) {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_SESSION_COUNT,
		pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_OPERATION_ACTIVE,
		pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED:
		return classSession
	case pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID,
		pkcs11.CKR_WRAPPING_KEY_HANDLE_INVALID, pkcs11.CKR_UNWRAPPING_KEY_HANDLE_INVALID:
		return classObject
	}
	return classNone
}

func isPINError(err error) bool {
	for _, rv := range []uint{pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE,
		pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LOCKED} {
		if errors.Is(err, pkcs11.Error(rv)) {
			return true
		}
	}
	return false
}

// refused tells an input the token refused from a failing token. Besides
// the listed return values, SoftHSM reports a GCM tag mismatch and a failed
// RFC 5649 integrity check as CKR_GENERAL_ERROR — the code it also uses for
// real trouble; if the session still answers, logged in, it was the input.
func (t *Token) refused(sh pkcs11.SessionHandle, err error, rvs []uint) bool {
	if isRV(err, rvs...) {
		return true
	}
	if isRV(err, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED) {
		info, serr := t.ctx.GetSessionInfo(sh)
		return serr == nil && (info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS)
	}
	return false
}

// isRV reports whether err is one of the listed return values.
func isRV(err error, rvs ...uint) bool {
	for _, rv := range rvs {
		if errors.Is(err, pkcs11.Error(rv)) {
			return true
		}
	}
	return false
}
