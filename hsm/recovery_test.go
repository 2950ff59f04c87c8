//go:build cgo

package hsm

import (
	"github.com/raftkms/raftkms/internal/testutil"

	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// oneTokenFixture: a token enrolled in "prod" with an AES and an EC key.
type oneTokenFixture struct {
	tok      *Token
	key      []byte
	aes, ec  KeyRef
	material []byte // the AES key, recovered in Go from its blob
}

func newOneToken(t *testing.T, tune func(*Config)) *oneTokenFixture {
	h := newSoftHSM(t, "A")
	cfg := h.config(t, "A")
	if tune != nil {
		tune(&cfg)
	}
	f := &oneTokenFixture{tok: h.openWith(t, cfg), key: randomBytes(t, 32)}
	mustEnroll(t, f.tok, "prod", f.key)
	ctx := testCtx(t)
	g, err := f.tok.GenerateKey(ctx, "prod", SpecAES256, "")
	if err != nil {
		t.Fatal(err)
	}
	f.aes = g.Ref("aes")
	if f.material, err = UnwrapKeyPad(f.key, g.Wrapped); err != nil {
		t.Fatal(err)
	}
	g, err = f.tok.GenerateKey(ctx, "prod", SpecECP256, "")
	if err != nil {
		t.Fatal(err)
	}
	f.ec = g.Ref("ec")
	return f
}

// roundTrip encrypts in the token and checks the result with Go.
func (f *oneTokenFixture) roundTrip(t testing.TB, ref KeyRef, material []byte) error {
	ctx := context.Background()
	iv, pt := randomBytes(t, 12), randomBytes(t, 64)
	ct, err := f.tok.Encrypt(ctx, ref, iv, pt, []byte(ref.ID))
	if err != nil {
		return err
	}
	block, _ := aes.NewCipher(material)
	gcm, _ := cipher.NewGCM(block)
	if want := gcm.Seal(nil, iv, pt, []byte(ref.ID)); !bytes.Equal(ct, want) {
		return fmt.Errorf("ciphertext under %s differs from Go's", ref.ID)
	}
	back, err := f.tok.Decrypt(ctx, ref, iv, ct, []byte(ref.ID))
	if err != nil {
		return err
	}
	if !bytes.Equal(back, pt) {
		return fmt.Errorf("decrypt under %s gave other bytes", ref.ID)
	}
	return nil
}

func (f *oneTokenFixture) sign(t *testing.T) error {
	d := sha256.Sum256([]byte("m"))
	_, err := f.tok.Sign(context.Background(), f.ec, ECDSASHA256, d[:])
	return err
}

// pullTheRug closes every session of the process on the token, as a module
// restart or a device reset would: the keeper, the pool, the login and all
// session objects are gone.
func pullTheRug(t *testing.T, tok *Token) {
	t.Helper()
	if err := tok.ctx.CloseAllSessions(tok.slot); err != nil {
		t.Fatal(err)
	}
}

// setUserPIN changes the user PIN from a fresh, not logged-in session.
func setUserPIN(t *testing.T, tok *Token, from, to string) {
	t.Helper()
	sh, err := tok.ctx.OpenSession(tok.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.ctx.CloseSession(sh)
	if err := tok.ctx.SetPIN(sh, from, to); err != nil {
		t.Fatalf("SetPIN: %v", err)
	}
}

func TestRecovery_OperationsSurviveLosingEverySession(t *testing.T) {
	f := newOneToken(t, nil)
	for range 3 {
		if err := f.roundTrip(t, f.aes, f.material); err != nil {
			t.Fatal(err)
		}
		if err := f.sign(t); err != nil {
			t.Fatal(err)
		}
		pullTheRug(t, f.tok)
	}
	// The first operation after each loss recovered it; the keys were
	// unwrapped again from their blobs.
	if err := f.roundTrip(t, f.aes, f.material); err != nil {
		t.Fatalf("after the loss: %v", err)
	}
	if err := f.sign(t); err != nil {
		t.Fatalf("after the loss: %v", err)
	}
	if got := metricValue(f.tok.m.recoveries.WithLabelValues("ok")); got != 3 {
		t.Fatalf("recoveries = %v, want 3", got)
	}
	if h := f.tok.Health(); h.State != HealthOK {
		t.Fatalf("health %+v", h)
	}
	// Enrollment state is on the token, so it survives too.
	if _, err := f.tok.DomainCheckValue(context.Background(), "prod"); err != nil {
		t.Fatal(err)
	}
}

// TestRecovery_OneLostSessionKeepsTheKeeperAndTheCache: when only an
// operation's session dies, the retry takes another session; the keeper,
// the login and the cached keys stay.
func TestRecovery_OneLostSessionKeepsTheKeeperAndTheCache(t *testing.T) {
	f := newOneToken(t, func(c *Config) { c.PoolSize = 1 })
	if err := f.roundTrip(t, f.aes, f.material); err != nil {
		t.Fatal(err)
	}
	ps, err := f.tok.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dead := ps.cur.h
	f.tok.release(ps, false)
	if err := f.tok.ctx.CloseSession(dead); err != nil {
		t.Fatal(err)
	}
	unwraps := metricValue(f.tok.m.unwraps)
	if err := f.roundTrip(t, f.aes, f.material); err != nil {
		t.Fatalf("after losing the pool session: %v", err)
	}
	if r := metricValue(f.tok.m.recoveries.WithLabelValues("ok")); r != 0 {
		t.Fatalf("%v keeper recoveries for one lost pool session", r)
	}
	if u := metricValue(f.tok.m.unwraps); u != unwraps {
		t.Fatalf("the key was unwrapped again (%v → %v): the cache was dropped", unwraps, u)
	}
}

func TestRecovery_DecryptDuringLossIsNotAnInvalidCiphertext(t *testing.T) {
	f := newOneToken(t, func(c *Config) { c.PoolSize = 1 })
	iv := randomBytes(t, 12)
	ct, err := f.tok.Encrypt(context.Background(), f.aes, iv, []byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Lose everything and make recovery impossible (the PIN changed): a
	// decrypt must fail as unavailable, never as ErrDecrypt, which the
	// service would answer with "your ciphertext is bad".
	pullTheRug(t, f.tok)
	setUserPIN(t, f.tok, testPIN, "99999")
	_, err = f.tok.Decrypt(context.Background(), f.aes, iv, ct, nil)
	if errors.Is(err, ErrDecrypt) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("decrypt while the token is lost: got %v, want ErrUnavailable", err)
	}
	setUserPIN(t, f.tok, "99999", testPIN)
	if err := f.tok.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pt, err := f.tok.Decrypt(context.Background(), f.aes, iv, ct, nil); err != nil || string(pt) != "hello" {
		t.Fatalf("after recovery: %q %v", pt, err)
	}
}

func TestHealth_BadWhileLoginFails_NoPINRetries_CheckRecovers(t *testing.T) {
	f := newOneToken(t, nil)
	pullTheRug(t, f.tok)
	setUserPIN(t, f.tok, testPIN, "99999")

	err := f.roundTrip(t, f.aes, f.material)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrLogin) {
		t.Fatalf("operation with the PIN changed: got %v, want ErrUnavailable and ErrLogin", err)
	}
	h := f.tok.Health()
	if h.State != HealthBad || !errors.Is(h.Err, ErrLogin) || h.Since.IsZero() {
		t.Fatalf("health %+v, want bad with ErrLogin", h)
	}
	if v := metricValue(f.tok.m.up); v != 0 {
		t.Fatalf("kms_hsm_up = %v", v)
	}
	// A wrong PIN is not retried by operations (a real HSM would lock the
	// PIN after a few attempts): further operations fail fast without a
	// login attempt.
	before := metricValue(f.tok.m.recoveries.WithLabelValues("error"))
	for range 5 {
		if err := f.sign(t); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("sign while bad: %v", err)
		}
	}
	if after := metricValue(f.tok.m.recoveries.WithLabelValues("error")); after != before {
		t.Fatalf("operations tried to log in again: %v attempts", after-before)
	}
	// The background probe does not retry it either.
	if err := f.tok.check(false); !errors.Is(err, ErrLogin) {
		t.Fatalf("background check: %v", err)
	}

	setUserPIN(t, f.tok, "99999", testPIN)
	if err := f.tok.Check(context.Background()); err != nil {
		t.Fatalf("Check after the PIN is back: %v", err)
	}
	if h := f.tok.Health(); h.State != HealthOK || h.Err != nil {
		t.Fatalf("health after Check: %+v", h)
	}
	if err := f.roundTrip(t, f.aes, f.material); err != nil {
		t.Fatal(err)
	}
}

func TestHealth_BackgroundProbeRecoversALostKeeper(t *testing.T) {
	f := newOneToken(t, func(c *Config) { c.HealthInterval = 10 * time.Millisecond })
	pullTheRug(t, f.tok)
	waitFor(t, 5*time.Second, func() bool {
		return metricValue(f.tok.m.recoveries.WithLabelValues("ok")) >= 1
	})
	if h := f.tok.Health(); h.State != HealthOK {
		t.Fatalf("health %+v", h)
	}
	if err := f.roundTrip(t, f.aes, f.material); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, "the condition", within, cond)
}

// TestCache_ConcurrentOperationsWithEvictions runs many goroutines over more
// keys than the cache holds and fewer sessions than goroutines: every
// result is checked with Go, no operation may fail, and at the end the
// token holds exactly the cached keys.
func TestCache_ConcurrentOperationsWithEvictions(t *testing.T) {
	f := newOneToken(t, func(c *Config) { c.KeyCacheSize = 2; c.PoolSize = 3 })
	ctx := testCtx(t)
	type key struct {
		ref      KeyRef
		material []byte
	}
	var keys []key
	for i := range 6 {
		g, err := f.tok.GenerateKey(ctx, "prod", SpecAES128, "")
		if err != nil {
			t.Fatal(err)
		}
		m, err := UnwrapKeyPad(f.key, g.Wrapped)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key{g.Ref(fmt.Sprintf("k%d", i)), m})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := range 40 {
				k := keys[(w+i)%len(keys)]
				if err := f.roundTrip(t, k.ref, k.material); err != nil {
					errs <- err
					return
				}
				if i%13 == 0 {
					f.tok.Forget(k.ref.ID)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.tok.cache.len(); n > 2 {
		t.Fatalf("cache holds %d keys, limit 2", n)
	}
	if n := countObjects(t, f.tok); n != 1+f.tok.cache.len() {
		t.Fatalf("%d objects in the token, want the domain key and %d cached keys", n, f.tok.cache.len())
	}
	if u := metricValue(f.tok.m.unwraps); u <= 6 {
		t.Fatalf("only %v unwraps: the cache never evicted", u)
	}
}

func TestCache_NewBlobUnderAKnownIDReplacesTheKey(t *testing.T) {
	f := newOneToken(t, nil)
	ctx := testCtx(t)
	g, err := f.tok.GenerateKey(ctx, "prod", SpecAES256, "")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := UnwrapKeyPad(f.key, g.Wrapped)
	if err := f.roundTrip(t, f.aes, f.material); err != nil {
		t.Fatal(err)
	}
	// Same ID, other blob: the token must use the other key.
	if err := f.roundTrip(t, KeyRef{ID: f.aes.ID, Domain: "prod", Spec: SpecAES256, Wrapped: g.Wrapped}, other); err != nil {
		t.Fatal(err)
	}
	if n := countObjects(t, f.tok); n != 2 {
		t.Fatalf("%d objects, want the domain key and one cached key", n)
	}
}

func TestPool_WaitHonoursTheContext(t *testing.T) {
	f := newOneToken(t, func(c *Config) { c.PoolSize = 1 })
	s, err := f.tok.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := f.tok.Encrypt(ctx, f.aes, randomBytes(t, 12), []byte("x"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the only session taken: %v", err)
	}
	f.tok.release(s, false)
	if err := f.roundTrip(t, f.aes, f.material); err != nil {
		t.Fatal(err)
	}
}

func TestClose_WaitsForOperationsThenRefuses(t *testing.T) {
	f := newOneToken(t, func(c *Config) { c.PoolSize = 1 })
	s, err := f.tok.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		f.tok.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while an operation held a session")
	case <-time.After(50 * time.Millisecond):
	}
	f.tok.release(s, false)
	<-closed
	if err := f.roundTrip(t, f.aes, f.material); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := f.tok.Check(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Check after Close: %v", err)
	}
	if err := f.tok.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
