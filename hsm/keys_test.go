//go:build cgo

package hsm

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/miekg/pkcs11"

	kmscrypto "github.com/raftkms/raftkms/crypto"
)

// domainFixture: tokens A and B enrolled with the same key for "prod", C
// enrolled with a different key for "prod" (another domain that happens to
// share the name), all in one SoftHSM (three slots).
type domainFixture struct {
	key     []byte
	a, b, c *Token
}

func newDomainFixture(t *testing.T) *domainFixture {
	h := newSoftHSM(t, "A", "B", "C")
	f := &domainFixture{key: randomBytes(t, 32), a: h.open(t, "A"), b: h.open(t, "B"), c: h.open(t, "C")}
	mustEnroll(t, f.a, "prod", f.key)
	mustEnroll(t, f.b, "prod", f.key)
	mustEnroll(t, f.c, "prod", randomBytes(t, 32))
	return f
}

// keyCase is one spec and usage to generate.
type keyCase struct {
	spec  KeySpec
	usage Usage
}

var allKeyCases = []keyCase{
	{SpecAES128, UsageEncrypt}, {SpecAES192, UsageEncrypt}, {SpecAES256, UsageEncrypt},
	{SpecRSA2048, UsageSign}, {SpecRSA2048, UsageEncrypt},
	{SpecRSA3072, UsageSign}, {SpecRSA3072, UsageEncrypt},
	{SpecRSA4096, UsageSign}, {SpecRSA4096, UsageEncrypt},
	{SpecECP256, UsageSign}, {SpecECP256K, UsageSign},
}

// TestDomain_GenerateInA_UseInB_RefusedInC is the heart of HSM domains:
// every spec is generated in token A, leaves it wrapped, is unwrapped and
// used in token B, and every result is checked with independent code (Go's
// crypto, decred's secp256k1, and the key material recovered in Go from the
// blob with the domain key). Token C, with another key for the same domain
// name, cannot unwrap the blob.
func TestDomain_GenerateInA_UseInB_RefusedInC(t *testing.T) {
	f := newDomainFixture(t)
	ctx := testCtx(t)
	for _, kc := range allKeyCases {
		t.Run(fmt.Sprintf("%s_%s", kc.spec, usageName(kc.usage)), func(t *testing.T) {
			g, err := f.a.GenerateKey(ctx, "prod", kc.spec, kc.usage)
			if err != nil {
				t.Fatalf("generate in A: %v", err)
			}
			if g.Spec != kc.spec || g.Usage != kc.usage || g.Domain != "prod" || len(g.Wrapped) == 0 {
				t.Fatalf("generated %+v", g)
			}
			ref := g.Ref("v-" + string(kc.spec) + usageName(kc.usage))
			// The blob opens in Go under the domain key: that is the
			// independent copy of the material every check compares with.
			material, err := UnwrapKeyPad(f.key, g.Wrapped)
			if err != nil {
				t.Fatalf("Go RFC 5649 unwrap of the token's blob: %v", err)
			}
			if err := f.b.Unwrap(ctx, ref); err != nil {
				t.Fatalf("unwrap in B: %v", err)
			}
			if err := f.c.Unwrap(ctx, ref); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("unwrap in C (other domain key): got %v, want ErrUnwrap", err)
			}
			switch {
			case kc.spec.IsSymmetric():
				checkAES(t, f, ref, material)
			case kc.spec.IsRSA():
				checkRSA(t, f, ref, g.PublicKey, material)
			case kc.spec == SpecECP256:
				checkP256(t, f, ref, g.PublicKey, material)
			default:
				checkSecp256k1(t, f, ref, g.PublicKey, material)
			}
		})
	}
}

func usageName(u Usage) string {
	if u == UsageSign {
		return "sign"
	}
	return "encrypt"
}

func checkAES(t *testing.T, f *domainFixture, ref KeyRef, material []byte) {
	ctx := testCtx(t)
	if len(material) != ref.Spec.size() {
		t.Fatalf("unwrapped %d bytes for %s", len(material), ref.Spec)
	}
	block, _ := aes.NewCipher(material)
	gcm, _ := cipher.NewGCM(block)
	for _, n := range []int{0, 1, 64, 4096} {
		iv, pt, aad := randomBytes(t, 12), randomBytes(t, n), randomBytes(t, 20)
		ct, err := f.b.Encrypt(ctx, ref, iv, pt, aad)
		if err != nil {
			t.Fatalf("encrypt %d bytes in B: %v", n, err)
		}
		if want := gcm.Seal(nil, iv, pt, aad); !bytes.Equal(ct, want) {
			t.Fatalf("token ciphertext of %d bytes differs from Go's AES-GCM", n)
		}
		// The other direction: Go seals, the token opens, also in A.
		goCT := gcm.Seal(nil, iv, pt, nil)
		for _, tok := range []*Token{f.a, f.b} {
			got, err := tok.Decrypt(ctx, ref, iv, goCT, nil)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("decrypt Go's ciphertext in %s: %v", tok.Label(), err)
			}
		}
		// Tampering anywhere is ErrDecrypt, and the session stays usable.
		bad := bytes.Clone(ct)
		bad[len(bad)-1] ^= 1
		if _, err := f.b.Decrypt(ctx, ref, iv, bad, aad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("tampered tag: got %v, want ErrDecrypt", err)
		}
		if _, err := f.b.Decrypt(ctx, ref, iv, ct, append(bytes.Clone(aad), 0)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrong AAD: got %v, want ErrDecrypt", err)
		}
		if _, err := f.b.Decrypt(ctx, ref, randomBytes(t, 12), ct, aad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrong IV: got %v, want ErrDecrypt", err)
		}
		if n > 0 {
			bad = bytes.Clone(ct)
			bad[0] ^= 0x80
			if _, err := f.b.Decrypt(ctx, ref, iv, bad, aad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("tampered ciphertext: got %v, want ErrDecrypt", err)
			}
		}
	}
	if _, err := f.b.Decrypt(ctx, ref, randomBytes(t, 12), randomBytes(t, 15), nil); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("ciphertext shorter than a tag: %v", err)
	}
	for _, iv := range [][]byte{nil, {}, randomBytes(t, 8), randomBytes(t, 16)} {
		if _, err := f.b.Encrypt(ctx, ref, iv, []byte("x"), nil); !errors.Is(err, ErrInvalidParameter) {
			t.Fatalf("encrypt with a %d-byte IV: got %v, want ErrInvalidParameter", len(iv), err)
		}
	}
	if _, err := f.b.Sign(ctx, ref, ECDSASHA256, make([]byte, 32)); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("sign with an AES key: %v", err)
	}
}

func checkRSA(t *testing.T, f *domainFixture, ref KeyRef, spki, material []byte) {
	ctx := testCtx(t)
	pubAny, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	pub := pubAny.(*rsa.PublicKey)
	if pub.N.BitLen() != ref.Spec.size() || pub.E != 65537 {
		t.Fatalf("public key of %d bits, e=%d", pub.N.BitLen(), pub.E)
	}
	priv := parsePKCS8(t, material).(*rsa.PrivateKey)
	if !priv.PublicKey.Equal(pub) {
		t.Fatal("the wrapped private key does not belong to the public key")
	}
	digest := sha256.Sum256([]byte("message " + ref.ID))
	if ref.Usage == UsageSign {
		sig, err := f.b.Sign(ctx, ref, RSAPSSSHA256, digest[:])
		if err != nil {
			t.Fatalf("PSS sign in B: %v", err)
		}
		if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
			t.Fatalf("Go rejects the token's PSS signature (salt 32): %v", err)
		}
		assertServiceVerifies(t, ref.Spec, RSAPSSSHA256, spki, digest[:], sig)
		sig, err = f.b.Sign(ctx, ref, RSAPKCS1SHA256, digest[:])
		if err != nil {
			t.Fatalf("PKCS1 sign in B: %v", err)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("Go rejects the token's PKCS #1 v1.5 signature: %v", err)
		}
		assertServiceVerifies(t, ref.Spec, RSAPKCS1SHA256, spki, digest[:], sig)
		if _, err := f.b.DecryptAsymmetric(ctx, ref, RSAESOAEPSHA256, make([]byte, ref.Spec.size()/8)); !errors.Is(err, ErrInvalidParameter) {
			t.Fatalf("decrypt with a signing key: %v", err)
		}
		// The token enforces the usage too, not only the Go checks: the
		// same blob unwrapped for ENCRYPT/DECRYPT gets a key that cannot
		// sign.
		other := KeyRef{ID: ref.ID + "-x", Domain: ref.Domain, Spec: ref.Spec, Usage: UsageEncrypt, Wrapped: ref.Wrapped}
		k, err := f.b.pin(other)
		if err != nil {
			t.Fatal(err)
		}
		defer f.b.unpin(k)
		ps, err := f.b.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer f.b.release(ps, false)
		if err := f.b.ctx.SignInit(ps.cur.h, mech(pkcs11.CKM_RSA_PKCS, nil), k.h); !isRV(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
			t.Fatalf("signing with the decrypt-only copy: got %v, want CKR_KEY_FUNCTION_NOT_PERMITTED", err)
		}
		return
	}
	for _, alg := range []EncryptAlgorithm{RSAESOAEPSHA1, RSAESOAEPSHA256} {
		newHash := sha256.New
		if alg == RSAESOAEPSHA1 {
			newHash = sha1.New
		}
		maxLen := ref.Spec.size()/8 - 2*newHash().Size() - 2
		for _, n := range []int{0, 1, 32, maxLen} {
			pt := randomBytes(t, n)
			ct, err := rsa.EncryptOAEP(newHash(), rand.Reader, pub, pt, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.b.DecryptAsymmetric(ctx, ref, alg, ct)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s decrypt of %d bytes in B: %v", alg, n, err)
			}
			if n == 32 {
				// Tampered, and encrypted under the other hash: ErrDecrypt.
				bad := bytes.Clone(ct)
				bad[len(bad)/2] ^= 1
				if _, err := f.b.DecryptAsymmetric(ctx, ref, alg, bad); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("%s tampered: got %v, want ErrDecrypt", alg, err)
				}
				other := RSAESOAEPSHA1
				if alg == RSAESOAEPSHA1 {
					other = RSAESOAEPSHA256
				}
				if _, err := f.b.DecryptAsymmetric(ctx, ref, other, ct); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("%s ciphertext decrypted as %s: got %v, want ErrDecrypt", alg, other, err)
				}
				// A ciphertext ≥ the modulus is refused the same way.
				huge := bytes.Repeat([]byte{0xff}, len(ct))
				if _, err := f.b.DecryptAsymmetric(ctx, ref, alg, huge); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("%s ciphertext above the modulus: got %v, want ErrDecrypt", alg, err)
				}
				if _, err := f.b.DecryptAsymmetric(ctx, ref, alg, ct[1:]); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("%s short ciphertext: got %v, want ErrDecrypt", alg, err)
				}
			}
		}
	}
	if _, err := f.b.Sign(ctx, ref, RSAPSSSHA256, digest[:]); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("sign with an encryption key: %v", err)
	}
}

func checkP256(t *testing.T, f *domainFixture, ref KeyRef, spki, material []byte) {
	ctx := testCtx(t)
	pubAny, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	pub := pubAny.(*ecdsa.PublicKey)
	priv := parsePKCS8(t, material).(*ecdsa.PrivateKey)
	if !priv.PublicKey.Equal(pub) {
		t.Fatal("the wrapped private key does not belong to the public key")
	}
	again, _ := x509.MarshalPKIXPublicKey(pub)
	if !bytes.Equal(again, spki) {
		t.Fatal("hand-built P-256 SubjectPublicKeyInfo differs from Go's encoding")
	}
	for i := range 8 {
		digest := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
		sig, err := f.b.Sign(ctx, ref, ECDSASHA256, digest[:])
		if err != nil {
			t.Fatalf("sign in B: %v", err)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatal("Go rejects the token's P-256 signature")
		}
		assertServiceVerifies(t, ref.Spec, ECDSASHA256, spki, digest[:], sig)
	}
	if _, err := f.b.Sign(ctx, ref, ECDSASHA256, make([]byte, 20)); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("20-byte digest: %v", err)
	}
	if _, err := f.b.Sign(ctx, ref, RSAPSSSHA256, make([]byte, 32)); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("PSS with an EC key: %v", err)
	}
}

func checkSecp256k1(t *testing.T, f *domainFixture, ref KeyRef, spki, material []byte) {
	ctx := testCtx(t)
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(spki, &info); err != nil || len(rest) != 0 {
		t.Fatalf("SubjectPublicKeyInfo: %v", err)
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); err != nil ||
		!info.Algorithm.Algorithm.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}) ||
		!curve.Equal(asn1.ObjectIdentifier{1, 3, 132, 0, 10}) {
		t.Fatalf("algorithm %v curve %v, want id-ecPublicKey secp256k1", info.Algorithm.Algorithm, curve)
	}
	pub, err := secp256k1.ParsePubKey(info.PublicKey.Bytes)
	if err != nil {
		t.Fatalf("decred parses the public key: %v", err)
	}
	priv := secp256k1.PrivKeyFromBytes(parseSecp256k1PKCS8(t, material))
	if !priv.PubKey().IsEqual(pub) {
		t.Fatal("the wrapped private key does not belong to the public key")
	}
	halfOrder := new(big.Int).Rsh(secp256k1.S256().N, 1)
	// SoftHSM gives high S about half the time; 32 signatures would all be
	// low by chance once in 4 billion runs.
	for i := range 32 {
		digest := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
		der, err := f.b.Sign(ctx, ref, ECDSASHA256, digest[:])
		if err != nil {
			t.Fatalf("sign in B: %v", err)
		}
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
			t.Fatalf("signature is not DER: %v", err)
		}
		if rs.S.Cmp(halfOrder) > 0 {
			t.Fatalf("signature %d has high S", i)
		}
		sig, err := secpecdsa.ParseDERSignature(der)
		if err != nil {
			t.Fatalf("decred parses the signature: %v", err)
		}
		if !sig.Verify(digest[:], pub) {
			t.Fatal("decred rejects the token's secp256k1 signature")
		}
		assertServiceVerifies(t, ref.Spec, ECDSASHA256, spki, digest[:], der)
	}
}

// assertServiceVerifies checks the signature with the software crypto the
// service verifies with, so that the two agree on encodings.
func assertServiceVerifies(t *testing.T, spec KeySpec, alg SignAlgorithm, spki, digest, sig []byte) {
	t.Helper()
	ok, err := kmscrypto.Verify(string(spec), string(alg), spki, digest, sig)
	if err != nil || !ok {
		t.Fatalf("crypto.Verify(%s, %s) = %v, %v", spec, alg, ok, err)
	}
}

// parsePKCS8 parses a PKCS #8 key from the token, which pads it with zero
// bytes to a multiple of 8 (and counts them in the RFC 5649 length).
func parsePKCS8(t *testing.T, material []byte) any {
	t.Helper()
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(material, &raw); err != nil {
		t.Fatalf("PKCS #8: %v", err)
	}
	if tail := material[len(raw.FullBytes):]; len(tail) >= 8 || !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Fatalf("PKCS #8 followed by %x", tail)
	}
	k, err := x509.ParsePKCS8PrivateKey(raw.FullBytes)
	if err != nil {
		t.Fatalf("PKCS #8: %v", err)
	}
	return k
}

// parseSecp256k1PKCS8 extracts the private scalar from a secp256k1 PKCS #8
// (Go's x509 refuses the curve).
func parseSecp256k1PKCS8(t *testing.T, material []byte) []byte {
	t.Helper()
	var p8 struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(material, &p8); err != nil {
		t.Fatalf("PKCS #8: %v", err)
	}
	var ecKey struct {
		Version    int
		PrivateKey []byte
		Rest       asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(p8.PrivateKey, &ecKey); err != nil {
		t.Fatalf("ECPrivateKey: %v", err)
	}
	return ecKey.PrivateKey
}

func TestUnwrap_RefusesWrongSpecUnknownDomainAndGarbage(t *testing.T) {
	f := newDomainFixture(t)
	ctx := testCtx(t)
	aes128, err := f.a.GenerateKey(ctx, "prod", SpecAES128, "")
	if err != nil {
		t.Fatal(err)
	}
	ec, err := f.a.GenerateKey(ctx, "prod", SpecECP256, "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ref  KeyRef
		want error
	}{
		{"AES-128 blob named AES-256", KeyRef{ID: "1", Domain: "prod", Spec: SpecAES256, Wrapped: aes128.Wrapped}, ErrUnwrap},
		{"P-256 blob named secp256k1", KeyRef{ID: "2", Domain: "prod", Spec: SpecECP256K, Wrapped: ec.Wrapped}, ErrUnwrap},
		{"P-256 blob named RSA", KeyRef{ID: "3", Domain: "prod", Spec: SpecRSA2048, Usage: UsageSign, Wrapped: ec.Wrapped}, ErrUnwrap},
		{"AES blob named P-256", KeyRef{ID: "4", Domain: "prod", Spec: SpecECP256, Wrapped: aes128.Wrapped}, ErrUnwrap},
		{"flipped bit", KeyRef{ID: "5", Domain: "prod", Spec: SpecAES128, Wrapped: flip(aes128.Wrapped)}, ErrUnwrap},
		{"truncated", KeyRef{ID: "6", Domain: "prod", Spec: SpecAES128, Wrapped: aes128.Wrapped[:len(aes128.Wrapped)-8]}, ErrUnwrap},
		{"not a multiple of 8", KeyRef{ID: "7", Domain: "prod", Spec: SpecAES128, Wrapped: aes128.Wrapped[:len(aes128.Wrapped)-1]}, ErrUnwrap},
		{"unknown domain", KeyRef{ID: "8", Domain: "dev", Spec: SpecAES128, Wrapped: aes128.Wrapped}, ErrDomainNotEnrolled},
		{"no ID", KeyRef{Domain: "prod", Spec: SpecAES128, Wrapped: aes128.Wrapped}, ErrInvalidParameter},
		{"RSA without usage", KeyRef{ID: "9", Domain: "prod", Spec: SpecRSA2048, Wrapped: aes128.Wrapped}, ErrInvalidParameter},
		{"AES with sign usage", KeyRef{ID: "10", Domain: "prod", Spec: SpecAES128, Usage: UsageSign, Wrapped: aes128.Wrapped}, ErrInvalidParameter},
		{"unknown spec", KeyRef{ID: "11", Domain: "prod", Spec: "DES", Wrapped: aes128.Wrapped}, ErrInvalidParameter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := f.b.Unwrap(ctx, c.ref); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if n := f.b.cache.len(); n != 0 {
		t.Fatalf("%d refused keys stayed in the cache", n)
	}
	if _, err := f.a.GenerateKey(ctx, "dev", SpecAES256, ""); !errors.Is(err, ErrDomainNotEnrolled) {
		t.Fatalf("generate for an unknown domain: %v", err)
	}
	if _, err := f.a.GenerateKey(ctx, "prod", SpecECP256, UsageEncrypt); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("EC key for encryption: %v", err)
	}
}

func flip(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 1
	return c
}

// TestUnwrap_WorkingKeysAreSensitiveNonExtractableSingleUse reads the
// attributes of every kind of unwrapped key: nothing can be read out or
// wrapped again, and only the key's own usage is on.
func TestUnwrap_WorkingKeysAreSensitiveNonExtractableSingleUse(t *testing.T) {
	f := newDomainFixture(t)
	ctx := testCtx(t)
	for _, kc := range []keyCase{{SpecAES256, UsageEncrypt}, {SpecRSA2048, UsageSign}, {SpecRSA2048, UsageEncrypt}, {SpecECP256K, UsageSign}} {
		t.Run(string(kc.spec)+"_"+usageName(kc.usage), func(t *testing.T) {
			g, err := f.a.GenerateKey(ctx, "prod", kc.spec, kc.usage)
			if err != nil {
				t.Fatal(err)
			}
			ref := g.Ref("k")
			k, err := f.b.pin(ref)
			if err != nil {
				t.Fatal(err)
			}
			defer f.b.unpin(k)
			f.b.kmu.Lock()
			defer f.b.kmu.Unlock()
			want := map[uint]bool{
				pkcs11.CKA_TOKEN: false, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true,
				pkcs11.CKA_EXTRACTABLE: false,
				pkcs11.CKA_UNWRAP:      false, pkcs11.CKA_DERIVE: false,
			}
			switch {
			case kc.spec.IsSymmetric():
				want[pkcs11.CKA_ENCRYPT], want[pkcs11.CKA_DECRYPT] = true, true
				want[pkcs11.CKA_SIGN], want[pkcs11.CKA_VERIFY], want[pkcs11.CKA_WRAP] = false, false, false
				assertValueRefused(t, f.b, k.h, pkcs11.CKA_VALUE)
			case kc.spec.IsRSA():
				want[pkcs11.CKA_SIGN] = kc.usage == UsageSign
				want[pkcs11.CKA_DECRYPT] = kc.usage == UsageEncrypt
				want[pkcs11.CKA_SIGN_RECOVER] = false
				assertValueRefused(t, f.b, k.h, pkcs11.CKA_PRIVATE_EXPONENT)
				assertValueRefused(t, f.b, k.h, pkcs11.CKA_PRIME_1)
			default:
				want[pkcs11.CKA_SIGN], want[pkcs11.CKA_DECRYPT] = true, false
				assertValueRefused(t, f.b, k.h, pkcs11.CKA_VALUE)
			}
			assertBoolAttrs(t, f.b, k.h, want)
			dk, err := f.b.domainKeyLocked("prod")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.b.ctx.WrapKey(f.b.keeper.h, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), dk, k.h); !isRV(err, pkcs11.CKR_KEY_UNEXTRACTABLE) {
				t.Fatalf("wrapping the working key: got %v, want CKR_KEY_UNEXTRACTABLE", err)
			}
			err = f.b.ctx.SetAttributeValue(f.b.keeper.h, k.h, []*pkcs11.Attribute{attr(pkcs11.CKA_EXTRACTABLE, true)})
			if err == nil {
				t.Fatal("the working key could be made extractable")
			}
		})
	}
}

// TestGenerateKey_LeavesNoObjectsBehind counts the objects the application
// can see: generating creates nothing lasting, unwrapping creates one
// session object, Forget destroys it.
func TestGenerateKey_LeavesNoObjectsBehind(t *testing.T) {
	f := newDomainFixture(t)
	ctx := testCtx(t)
	before := countObjects(t, f.a)
	if before != 1 {
		t.Fatalf("%d objects after enrolling, want 1 (the domain key)", before)
	}
	var refs []KeyRef
	for _, kc := range []keyCase{{SpecAES128, ""}, {SpecRSA2048, UsageEncrypt}, {SpecECP256, ""}, {SpecECP256K, ""}} {
		g, err := f.a.GenerateKey(ctx, "prod", kc.spec, kc.usage)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, g.Ref(string(kc.spec)))
	}
	imported, err := f.a.ImportKey(ctx, "prod", SpecAES256, randomBytes(t, 32))
	if err != nil {
		t.Fatal(err)
	}
	refs = append(refs, imported.Ref("imported"))
	if n := countObjects(t, f.a); n != before {
		t.Fatalf("%d objects after generating and importing, want %d", n, before)
	}
	for _, r := range refs {
		if err := f.a.Unwrap(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n := countObjects(t, f.a); n != before+len(refs) {
		t.Fatalf("%d objects after unwrapping %d keys, want %d", n, len(refs), before+len(refs))
	}
	for _, r := range refs {
		f.a.Forget(r.ID)
	}
	if n := countObjects(t, f.a); n != before {
		t.Fatalf("%d objects after Forget, want %d", n, before)
	}
	// Token objects on disk: only the domain key.
	f.a.kmu.Lock()
	defer f.a.kmu.Unlock()
	hs, err := f.a.findLocked([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, true)})
	if err != nil || len(hs) != 1 {
		t.Fatalf("%d token objects, %v", len(hs), err)
	}
}

func countObjects(t *testing.T, tok *Token) int {
	t.Helper()
	tok.kmu.Lock()
	defer tok.kmu.Unlock()
	hs, err := tok.findLocked(nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(hs)
}

func TestImportKey_MatchesGoAndRefusesAsymmetric(t *testing.T) {
	f := newDomainFixture(t)
	ctx := testCtx(t)
	material := randomBytes(t, 16)
	g, err := f.a.ImportKey(ctx, "prod", SpecAES128, material)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnwrapKeyPad(f.key, g.Wrapped)
	if err != nil || !bytes.Equal(back, material) {
		t.Fatalf("imported blob opens to other material: %v", err)
	}
	// A blob wrapped in Go under the domain key is as good as the token's.
	goBlob, err := WrapKeyPad(f.key, material)
	if err != nil {
		t.Fatal(err)
	}
	iv := randomBytes(t, 12)
	c1, err := f.b.Encrypt(ctx, g.Ref("token-wrapped"), iv, []byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := f.b.Encrypt(ctx, KeyRef{ID: "go-wrapped", Domain: "prod", Spec: SpecAES128, Wrapped: goBlob}, iv, []byte("hello"), nil)
	if err != nil || !bytes.Equal(c1, c2) {
		t.Fatalf("Go-wrapped import differs: %v", err)
	}
	if _, err := f.a.ImportKey(ctx, "prod", SpecAES256, material); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("16 bytes as AES-256: %v", err)
	}
	if _, err := f.a.ImportKey(ctx, "prod", SpecECP256, material); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("EC import: %v", err)
	}
}
