package kms

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
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

// The client public key memo parses a stored key once, hands the same key
// to every later lookup, and refuses what it refused before.
func TestPublicKeyCache_ParsesOnce(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pc := publicKeyCache{m: map[string]*rsa.PublicKey{}}
	a, err := pc.get(der)
	if err != nil || !a.Equal(&priv.PublicKey) {
		t.Fatalf("get: %v", err)
	}
	if b, _ := pc.get(bytes.Clone(der)); b != a {
		t.Fatal("a second lookup parsed the key again")
	}
	if _, err := pc.get([]byte("not DER")); err == nil {
		t.Fatal("garbage parsed")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if _, err := pc.get(ecDER); err == nil || !strings.Contains(err.Error(), "not RSA") {
		t.Fatalf("an EC key: %v", err)
	}
}
