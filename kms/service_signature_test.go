package kms

import (
	"context"
	"testing"
	"time"
)

// Signature answers WithSignature's key with the same value WithSignature
// stores, and nothing when no signature was set (or the caller had none).
func TestSignature_LookupAsWithSignature(t *testing.T) {
	c := Caller{Signature: SignedRequest{AccessKeyID: "ak", Nonce: "n", Time: time.Unix(10, 0), Verified: time.Unix(11, 0)}}
	want := WithSignature(context.Background(), c).Value(signedRequestKey{}).(*signedWrites)
	var s Signature
	if _, ok := s.Lookup(signedRequestKey{}); ok {
		t.Fatal("unset Signature answered")
	}
	s.Set(Caller{})
	if _, ok := s.Lookup(signedRequestKey{}); ok {
		t.Fatal("a caller without a signature was recorded")
	}
	s.Set(c)
	got, ok := s.Lookup(signedRequestKey{})
	if !ok || got.(*signedWrites).req != want.req {
		t.Fatalf("Lookup %v %v, want %v", got, ok, want.req)
	}
	if _, ok := s.Lookup(dryRunKey{}); ok {
		t.Fatal("answered another key")
	}
}
