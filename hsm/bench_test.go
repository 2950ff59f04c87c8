//go:build cgo

package hsm

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"testing"

	"github.com/miekg/pkcs11"
)

// Benchmarks of operations through the Token API, next to the raw PKCS#11
// rate of the same token (one session, a session-object key, no pool, no
// cache, no checks) and Go in-process. Run with:
//
//	go test -run '^$' -bench . -benchtime 3s ./hsm/

type benchFixture struct {
	tok                *Token
	aes, p256, k1, rsa KeyRef
	aesMaterial        []byte
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	h := newSoftHSM(b, "bench")
	f := &benchFixture{tok: h.open(b, "bench")}
	key := randomBytes(b, 32)
	mustEnroll(b, f.tok, "prod", key)
	ctx := context.Background()
	gen := func(spec KeySpec, u Usage) KeyRef {
		g, err := f.tok.GenerateKey(ctx, "prod", spec, u)
		if err != nil {
			b.Fatal(err)
		}
		ref := g.Ref(string(spec))
		if err := f.tok.Unwrap(ctx, ref); err != nil {
			b.Fatal(err)
		}
		if spec == SpecAES256 {
			f.aesMaterial, _ = UnwrapKeyPad(key, g.Wrapped)
		}
		return ref
	}
	f.aes = gen(SpecAES256, "")
	f.p256 = gen(SpecECP256, "")
	f.k1 = gen(SpecECP256K, "")
	f.rsa = gen(SpecRSA2048, UsageSign)
	return f
}

func BenchmarkHSM_EncryptAESGCM64(b *testing.B) {
	f := newBenchFixture(b)
	iv, pt := randomBytes(b, 12), randomBytes(b, 64)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.tok.Encrypt(ctx, f.aes, iv, pt, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHSM_EncryptAESGCM64_Parallel(b *testing.B) {
	f := newBenchFixture(b)
	pt := randomBytes(b, 64)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		iv := randomBytes(b, 12)
		for pb.Next() {
			if _, err := f.tok.Encrypt(ctx, f.aes, iv, pt, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkHSM_DecryptAESGCM64(b *testing.B) {
	f := newBenchFixture(b)
	iv, pt := randomBytes(b, 12), randomBytes(b, 64)
	ctx := context.Background()
	ct, err := f.tok.Encrypt(ctx, f.aes, iv, pt, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.tok.Decrypt(ctx, f.aes, iv, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSign(b *testing.B, ref func(*benchFixture) KeyRef, alg SignAlgorithm, parallel bool) {
	f := newBenchFixture(b)
	r := ref(f)
	d := sha256.Sum256([]byte("message"))
	ctx := context.Background()
	b.ResetTimer()
	if !parallel {
		for b.Loop() {
			if _, err := f.tok.Sign(ctx, r, alg, d[:]); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.tok.Sign(ctx, r, alg, d[:]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkHSM_SignECDSAP256(b *testing.B) {
	benchSign(b, func(f *benchFixture) KeyRef { return f.p256 }, ECDSASHA256, false)
}

func BenchmarkHSM_SignECDSAP256_Parallel(b *testing.B) {
	benchSign(b, func(f *benchFixture) KeyRef { return f.p256 }, ECDSASHA256, true)
}

func BenchmarkHSM_SignECDSASecp256k1(b *testing.B) {
	benchSign(b, func(f *benchFixture) KeyRef { return f.k1 }, ECDSASHA256, false)
}

func BenchmarkHSM_SignRSA2048PSS(b *testing.B) {
	benchSign(b, func(f *benchFixture) KeyRef { return f.rsa }, RSAPSSSHA256, false)
}

func BenchmarkHSM_SignRSA2048PSS_Parallel(b *testing.B) {
	benchSign(b, func(f *benchFixture) KeyRef { return f.rsa }, RSAPSSSHA256, true)
}

// rawFixture: one extra session on the same token (logged in through the
// Token's keeper) with non-extractable session-object keys of its own.
type rawFixture struct {
	ctx                *pkcs11.Ctx
	sh                 pkcs11.SessionHandle
	aes, p256, rsaPriv pkcs11.ObjectHandle
}

func newRawFixture(b *testing.B) *rawFixture {
	f := newBenchFixture(b)
	t := f.tok
	s, err := t.mod.openSession(t.slot)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.mod.closeSession(s) })
	r := &rawFixture{ctx: t.ctx, sh: s.h}
	keep := []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false)}
	r.aes, err = t.ctx.GenerateKey(s.h, mech(pkcs11.CKM_AES_KEY_GEN, nil), append([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_VALUE_LEN, 32),
	}, append(keep, secretUsage(true, false)...)...))
	if err != nil {
		b.Fatal(err)
	}
	_, r.p256, err = t.ctx.GenerateKeyPair(s.h, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_EC_PARAMS, ecParamsP256)},
		append(keep, privateUsage(true, false)...))
	if err != nil {
		b.Fatal(err)
	}
	_, r.rsaPriv, err = t.ctx.GenerateKeyPair(s.h, mech(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
		[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_MODULUS_BITS, 2048), attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1})},
		append(keep, privateUsage(true, false)...))
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func BenchmarkRawPKCS11_EncryptAESGCM64(b *testing.B) {
	r := newRawFixture(b)
	iv, pt := randomBytes(b, 12), randomBytes(b, 64)
	b.ResetTimer()
	for b.Loop() {
		p := pkcs11.NewGCMParams(iv, nil, 128)
		if err := r.ctx.EncryptInit(r.sh, mech(pkcs11.CKM_AES_GCM, p), r.aes); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ctx.Encrypt(r.sh, pt); err != nil {
			b.Fatal(err)
		}
		p.Free()
	}
}

func BenchmarkRawPKCS11_SignECDSAP256(b *testing.B) {
	r := newRawFixture(b)
	d := sha256.Sum256([]byte("message"))
	b.ResetTimer()
	for b.Loop() {
		if err := r.ctx.SignInit(r.sh, mech(pkcs11.CKM_ECDSA, nil), r.p256); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ctx.Sign(r.sh, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawPKCS11_SignRSA2048PSS(b *testing.B) {
	r := newRawFixture(b)
	d := sha256.Sum256([]byte("message"))
	params := pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32)
	b.ResetTimer()
	for b.Loop() {
		if err := r.ctx.SignInit(r.sh, mech(pkcs11.CKM_RSA_PKCS_PSS, params), r.rsaPriv); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ctx.Sign(r.sh, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// For scale: the same AES-GCM seal in Go, in process.
func BenchmarkGo_EncryptAESGCM64(b *testing.B) {
	block, _ := aes.NewCipher(randomBytes(b, 32))
	gcm, _ := cipher.NewGCM(block)
	iv, pt := randomBytes(b, 12), randomBytes(b, 64)
	out := make([]byte, 0, 96)
	for b.Loop() {
		out = gcm.Seal(out[:0], iv, pt, nil)
	}
}
