//go:build cgo

package hsm

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"
)

// UsageCertificate: an RSA pair of a certificate signs and decrypts in a
// token of the domain (the two usages the certificate actions need); an
// EC key cannot have it.
func TestUsageCertificate_SignsAndDecrypts(t *testing.T) {
	f := newDomainFixture(t)
	ctx := testCtx(t)
	g, err := f.a.GenerateKey(ctx, "prod", SpecRSA2048, UsageCertificate)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	ref := g.Ref("cert-v1")
	pubAny, err := x509.ParsePKIXPublicKey(g.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := pubAny.(*rsa.PublicKey)
	digest := sha256.Sum256([]byte("certificate message"))
	sig, err := f.b.Sign(ctx, ref, RSAPKCS1SHA256, digest[:])
	if err != nil {
		t.Fatalf("sign in B: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("Go rejects the token's signature: %v", err)
	}
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("for the certificate"), nil)
	pt, err := f.b.DecryptAsymmetric(ctx, ref, RSAESOAEPSHA256, ct)
	if err != nil || string(pt) != "for the certificate" {
		t.Fatalf("decrypt in B: %q %v", pt, err)
	}
	if _, err := checkUsage(SpecECP256, UsageCertificate); err == nil {
		t.Error("an EC key accepted UsageCertificate")
	}
}
