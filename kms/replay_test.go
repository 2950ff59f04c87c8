package kms

import (
	"context"
	"errors"
	"testing"

	"github.com/raftkms/raftkms/fsm"
)

// signedCaller is the root caller as authentication leaves it after
// verifying a request signed with nonce.
func (e *svcEnv) signedCaller(nonce string) Caller {
	c := e.caller
	now := e.clock.Now()
	c.Signature = SignedRequest{AccessKeyID: c.AccessKeyID, Nonce: nonce, Time: now, Verified: now}
	return c
}

func TestPropose_SignedRequestAppliedOnceWhateverTheContext(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	c := e.signedCaller("nonce-1")
	if _, _, err := e.svc.CreateKeyVersion(WithSignature(context.Background(), c), c, k.ID); err != nil {
		t.Fatal(err)
	}
	// The same request again, as another node (or this one after a
	// restart) would serve it: a fresh context from the same signature.
	_, _, err := e.svc.CreateKeyVersion(WithSignature(context.Background(), c), c, k.ID)
	if !errors.Is(err, fsm.ErrNonceUsed) {
		t.Fatalf("replayed CreateKeyVersion: %v, want fsm.ErrNonceUsed", err)
	}
	if got, _ := e.fsm.Key(k.ID); len(got.Versions) != 2 {
		t.Fatalf("versions = %d, want 2", len(got.Versions))
	}
}

func TestPropose_OnlySignedRequestsSpendNonces(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	if n := e.fsm.NonceCount(); n != 0 {
		t.Fatalf("unsigned writes recorded %d nonces", n)
	}
	// A caller without a signature (internal use) leaves ctx unmarked.
	if _, err := e.svc.UpdateKeyDescription(WithSignature(context.Background(), e.caller), e.caller, k.ID, "x"); err != nil {
		t.Fatal(err)
	}
	if n := e.fsm.NonceCount(); n != 0 {
		t.Fatalf("a write without signature recorded %d nonces", n)
	}
	// One request that proposes twice spends one nonce per write, in
	// order; sent again, its first write is refused.
	c := e.signedCaller("nonce-2")
	ctx := WithSignature(context.Background(), c)
	for _, d := range []string{"a", "b"} {
		if _, err := e.svc.UpdateKeyDescription(ctx, c, k.ID, d); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fsm.NonceCount(); n != 2 {
		t.Fatalf("nonces = %d, want 2", n)
	}
	if _, err := e.svc.UpdateKeyDescription(WithSignature(context.Background(), c), c, k.ID, "c"); !errors.Is(err, fsm.ErrNonceUsed) {
		t.Fatalf("replay: %v, want fsm.ErrNonceUsed", err)
	}
	if got, _ := e.fsm.Key(k.ID); got.Description != "b" {
		t.Fatalf("description = %q, want b", got.Description)
	}
}
