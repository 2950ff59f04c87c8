package crypto_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	kcrypto "github.com/raftkms/raftkms/crypto"
)

// The asymmetric primitives checked against independent implementations:
// Go's crypto/rsa, crypto/ecdsa and crypto/x509, decred's secp256k1, and
// the openssl command line tool. Everything that is parsed here is parsed
// without going through package crypto's own parsers.

// material caches one generated key per spec: RSA-4096 generation takes a
// while, and the tests only need one of each.
var (
	materialMu sync.Mutex
	materials  = map[string][2][]byte{}
)

func keyMaterial(t testing.TB, spec string) (private, public []byte) {
	t.Helper()
	materialMu.Lock()
	defer materialMu.Unlock()
	if m, ok := materials[spec]; ok {
		return m[0], m[1]
	}
	private, public, err := kcrypto.GenerateKeyMaterial(spec)
	if err != nil {
		t.Fatalf("GenerateKeyMaterial(%s): %v", spec, err)
	}
	materials[spec] = [2][]byte{private, public}
	return private, public
}

// spki is a SubjectPublicKeyInfo parsed with encoding/asn1 alone.
type spki struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// secp256k1Public parses a secp256k1 SubjectPublicKeyInfo independently of
// package crypto: id-ecPublicKey, the secp256k1 named curve, a point.
func secp256k1Public(t testing.TB, der []byte) *secp256k1.PublicKey {
	t.Helper()
	var info spki
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil || len(rest) != 0 {
		t.Fatalf("secp256k1 public key is not a DER SubjectPublicKeyInfo: %v (%d trailing bytes)", err, len(rest))
	}
	if !info.Algorithm.Algorithm.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}) {
		t.Fatalf("algorithm %v, want id-ecPublicKey", info.Algorithm.Algorithm)
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); err != nil || !curve.Equal(asn1.ObjectIdentifier{1, 3, 132, 0, 10}) {
		t.Fatalf("curve %v (%v), want secp256k1 1.3.132.0.10", curve, err)
	}
	pub, err := secp256k1.ParsePubKey(info.PublicKey.Bytes)
	if err != nil {
		t.Fatalf("secp256k1 point: %v", err)
	}
	return pub
}

// derSignature parses an ECDSA DER signature with encoding/asn1.
func derSignature(t testing.TB, sig []byte) (r, s *big.Int) {
	t.Helper()
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 {
		t.Fatalf("signature is not DER: %v (%d trailing bytes)", err, len(rest))
	}
	return v.R, v.S
}

// verifyIndependently checks sig over digest with an implementation that is
// not package crypto's.
func verifyIndependently(t testing.TB, spec, alg string, public, digest, sig []byte) bool {
	t.Helper()
	switch spec {
	case kcrypto.SpecRSA2048, kcrypto.SpecRSA3072, kcrypto.SpecRSA4096:
		k, err := x509.ParsePKIXPublicKey(public)
		if err != nil {
			t.Fatalf("x509 cannot parse the %s public key: %v", spec, err)
		}
		pub := k.(*rsa.PublicKey)
		switch alg {
		case kcrypto.AlgRSAPSSSHA256:
			// The service's PSS: salt as long as the hash (32 bytes).
			return rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}) == nil
		case kcrypto.AlgRSAPKCS1SHA256:
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) == nil
		}
	case kcrypto.SpecECP256:
		k, err := x509.ParsePKIXPublicKey(public)
		if err != nil {
			t.Fatalf("x509 cannot parse the EC_P256 public key: %v", err)
		}
		pub := k.(*ecdsa.PublicKey)
		if pub.Curve != elliptic.P256() {
			t.Fatalf("EC_P256 public key on curve %s", pub.Curve.Params().Name)
		}
		return ecdsa.VerifyASN1(pub, digest, sig)
	case kcrypto.SpecECP256K:
		pub := secp256k1Public(t, public)
		s, err := secpecdsa.ParseDERSignature(sig)
		if err != nil {
			return false
		}
		return s.Verify(digest, pub)
	}
	t.Fatalf("no independent verifier for %s/%s", spec, alg)
	return false
}

// secp256k1HalfOrder is N/2 of secp256k1.
var secp256k1HalfOrder = new(big.Int).Rsh(secp256k1.S256().N, 1)

type signCase struct{ spec, alg string }

var signCases = []signCase{
	{kcrypto.SpecRSA2048, kcrypto.AlgRSAPSSSHA256},
	{kcrypto.SpecRSA2048, kcrypto.AlgRSAPKCS1SHA256},
	{kcrypto.SpecRSA3072, kcrypto.AlgRSAPSSSHA256},
	{kcrypto.SpecRSA3072, kcrypto.AlgRSAPKCS1SHA256},
	{kcrypto.SpecRSA4096, kcrypto.AlgRSAPSSSHA256},
	{kcrypto.SpecRSA4096, kcrypto.AlgRSAPKCS1SHA256},
	{kcrypto.SpecECP256, kcrypto.AlgECDSASHA256},
	{kcrypto.SpecECP256K, kcrypto.AlgECDSASHA256},
}

func TestSign_VerifiedByIndependentImplementations(t *testing.T) {
	for _, tc := range signCases {
		t.Run(tc.spec+"/"+tc.alg, func(t *testing.T) {
			private, public := keyMaterial(t, tc.spec)
			for i := range 8 {
				digest := sha256.Sum256([]byte{byte(i), 'm', 's', 'g'})
				sig, err := kcrypto.Sign(tc.spec, tc.alg, private, digest[:])
				if err != nil {
					t.Fatal(err)
				}
				if !verifyIndependently(t, tc.spec, tc.alg, public, digest[:], sig) {
					t.Fatalf("signature %d does not verify with an independent implementation", i)
				}
				if ok, err := kcrypto.Verify(tc.spec, tc.alg, public, digest[:], sig); !ok || err != nil {
					t.Fatalf("Verify of its own signature: %v, %v", ok, err)
				}
				other := sha256.Sum256([]byte("another message"))
				if verifyIndependently(t, tc.spec, tc.alg, public, other[:], sig) {
					t.Fatal("the signature verifies for another digest")
				}
				if tc.spec == kcrypto.SpecECP256K {
					_, s := derSignature(t, sig)
					if s.Cmp(secp256k1HalfOrder) > 0 {
						t.Fatalf("signature %d has a high S", i)
					}
				}
				if tc.spec == kcrypto.SpecECP256 {
					derSignature(t, sig) // DER, not r‖s
				}
			}
		})
	}
}

// TestVerify_AcceptsSignaturesMadeOutside: signatures made with the private
// key by Go's and decred's own signers verify; tampered ones do not.
func TestVerify_AcceptsSignaturesMadeOutside(t *testing.T) {
	for _, tc := range signCases {
		t.Run(tc.spec+"/"+tc.alg, func(t *testing.T) {
			private, public := keyMaterial(t, tc.spec)
			digest := sha256.Sum256([]byte("made outside"))
			var sig []byte
			var err error
			switch {
			case tc.spec == kcrypto.SpecECP256K:
				if len(private) != 32 {
					t.Fatalf("EC_P256K material is %d bytes, want the 32-byte scalar", len(private))
				}
				sig = secpecdsa.Sign(secp256k1.PrivKeyFromBytes(private), digest[:]).Serialize()
			default:
				k, perr := x509.ParsePKCS8PrivateKey(private)
				if perr != nil {
					t.Fatalf("material is not PKCS#8: %v", perr)
				}
				switch k := k.(type) {
				case *rsa.PrivateKey:
					if tc.alg == kcrypto.AlgRSAPSSSHA256 {
						sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: 32})
					} else {
						sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
					}
				case *ecdsa.PrivateKey:
					sig, err = ecdsa.SignASN1(rand.Reader, k, digest[:])
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := kcrypto.Verify(tc.spec, tc.alg, public, digest[:], sig); !ok || err != nil {
				t.Fatalf("a signature made outside: %v, %v", ok, err)
			}
			bad := append([]byte(nil), sig...)
			bad[len(bad)/2] ^= 0x01
			if ok, err := kcrypto.Verify(tc.spec, tc.alg, public, digest[:], bad); ok || err != nil {
				t.Fatalf("a tampered signature: %v, %v (want false, nil)", ok, err)
			}
			if ok, err := kcrypto.Verify(tc.spec, tc.alg, public, digest[:], []byte("garbage")); ok || err != nil {
				t.Fatalf("garbage as a signature: %v, %v (want false, nil)", ok, err)
			}
		})
	}
}

func TestSign_RefusesWrongDigestAndAlgorithm(t *testing.T) {
	rsaPriv, _ := keyMaterial(t, kcrypto.SpecRSA2048)
	ecPriv, _ := keyMaterial(t, kcrypto.SpecECP256)
	digest := sha256.Sum256([]byte("x"))
	cases := []struct {
		name           string
		spec, alg      string
		private, input []byte
	}{
		{"RSA with ECDSA", kcrypto.SpecRSA2048, kcrypto.AlgECDSASHA256, rsaPriv, digest[:]},
		{"EC with PSS", kcrypto.SpecECP256, kcrypto.AlgRSAPSSSHA256, ecPriv, digest[:]},
		{"RSA with OAEP", kcrypto.SpecRSA2048, kcrypto.AlgRSAOAEPSHA256, rsaPriv, digest[:]},
		{"digest of 31 bytes", kcrypto.SpecRSA2048, kcrypto.AlgRSAPSSSHA256, rsaPriv, digest[:31]},
		{"digest of 33 bytes", kcrypto.SpecECP256, kcrypto.AlgECDSASHA256, ecPriv, append(digest[:], 0)},
	}
	for _, tc := range cases {
		if _, err := kcrypto.Sign(tc.spec, tc.alg, tc.private, tc.input); !errors.Is(err, kcrypto.ErrAlgorithm) {
			t.Errorf("%s: err %v, want ErrAlgorithm", tc.name, err)
		}
	}
}

func TestMaxOAEPPlaintext_ServiceLimits(t *testing.T) {
	cases := []struct {
		spec, alg string
		want      int
	}{
		{kcrypto.SpecRSA2048, kcrypto.AlgRSAOAEPSHA256, 190},
		{kcrypto.SpecRSA2048, kcrypto.AlgRSAOAEPSHA1, 214},
		{kcrypto.SpecRSA3072, kcrypto.AlgRSAOAEPSHA256, 318},
		{kcrypto.SpecRSA3072, kcrypto.AlgRSAOAEPSHA1, 342},
		{kcrypto.SpecRSA4096, kcrypto.AlgRSAOAEPSHA256, 446},
		{kcrypto.SpecRSA4096, kcrypto.AlgRSAOAEPSHA1, 470},
	}
	for _, tc := range cases {
		got, err := kcrypto.MaxOAEPPlaintext(tc.spec, tc.alg)
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %d, %v; want %d", tc.spec, tc.alg, got, err, tc.want)
		}
	}
	if _, err := kcrypto.MaxOAEPPlaintext(kcrypto.SpecECP256, kcrypto.AlgRSAOAEPSHA256); !errors.Is(err, kcrypto.ErrAlgorithm) {
		t.Errorf("EC_P256: %v", err)
	}
	if _, err := kcrypto.MaxOAEPPlaintext(kcrypto.SpecRSA2048, kcrypto.AlgRSAPKCS1v15); !errors.Is(err, kcrypto.ErrAlgorithm) {
		t.Errorf("PKCS#1 v1.5 is not an OAEP algorithm: %v", err)
	}
}

func oaepHash(alg string) crypto.Hash {
	if alg == kcrypto.AlgRSAOAEPSHA1 {
		return crypto.SHA1
	}
	return crypto.SHA256
}

// TestOAEP_InteroperatesWithGo: what EncryptOAEP makes, Go's DecryptOAEP
// opens (with the hash the algorithm names, for SHA-1 the MGF1 hash too),
// and the other way round, up to the size limit.
func TestOAEP_InteroperatesWithGo(t *testing.T) {
	for _, spec := range []string{kcrypto.SpecRSA2048, kcrypto.SpecRSA3072} {
		private, public := keyMaterial(t, spec)
		k, err := x509.ParsePKCS8PrivateKey(private)
		if err != nil {
			t.Fatal(err)
		}
		priv := k.(*rsa.PrivateKey)
		for _, alg := range []string{kcrypto.AlgRSAOAEPSHA256, kcrypto.AlgRSAOAEPSHA1} {
			t.Run(spec+"/"+alg, func(t *testing.T) {
				max, _ := kcrypto.MaxOAEPPlaintext(spec, alg)
				msg := bytes.Repeat([]byte{0xa5}, max)
				ct, err := kcrypto.EncryptOAEP(alg, public, msg)
				if err != nil {
					t.Fatal(err)
				}
				pt, err := priv.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: oaepHash(alg), MGFHash: oaepHash(alg)})
				if err != nil || !bytes.Equal(pt, msg) {
					t.Fatalf("Go cannot decrypt it: %v", err)
				}
				goCT, err := rsa.EncryptOAEP(oaepHash(alg).New(), rand.Reader, &priv.PublicKey, msg, nil)
				if err != nil {
					t.Fatal(err)
				}
				pt, err = kcrypto.DecryptOAEP(alg, private, goCT)
				if err != nil || !bytes.Equal(pt, msg) {
					t.Fatalf("DecryptOAEP of Go's ciphertext: %v", err)
				}
				if _, err := kcrypto.EncryptOAEP(alg, public, append(msg, 0)); err == nil {
					t.Fatalf("%d bytes encrypted, the limit is %d", max+1, max)
				}
				other := kcrypto.AlgRSAOAEPSHA1
				if alg == other {
					other = kcrypto.AlgRSAOAEPSHA256
				}
				if _, err := kcrypto.DecryptOAEP(other, private, goCT); !errors.Is(err, kcrypto.ErrDecryption) {
					t.Fatalf("decrypting with the other hash: %v, want ErrDecryption", err)
				}
				bad := append([]byte(nil), goCT...)
				bad[10] ^= 1
				if _, err := kcrypto.DecryptOAEP(alg, private, bad); !errors.Is(err, kcrypto.ErrDecryption) {
					t.Fatalf("tampered ciphertext: %v, want ErrDecryption", err)
				}
			})
		}
	}
}

// TestDecryptImport_EveryWrappingAlgorithm: material wrapped by Go with each
// of GetParametersForImport's algorithms unwraps to the same bytes.
func TestDecryptImport_EveryWrappingAlgorithm(t *testing.T) {
	private, _ := keyMaterial(t, kcrypto.SpecRSA2048)
	k, _ := x509.ParsePKCS8PrivateKey(private)
	pub := &k.(*rsa.PrivateKey).PublicKey
	material := make([]byte, 32)
	rand.Read(material)
	wrap := map[string]func() ([]byte, error){
		kcrypto.AlgRSAOAEPSHA256: func() ([]byte, error) { return rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, material, nil) },
		kcrypto.AlgRSAOAEPSHA1:   func() ([]byte, error) { return rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, material, nil) },
		kcrypto.AlgRSAPKCS1v15:   func() ([]byte, error) { return rsa.EncryptPKCS1v15(rand.Reader, pub, material) },
	}
	for alg, fn := range wrap {
		ct, err := fn()
		if err != nil {
			t.Fatal(err)
		}
		got, err := kcrypto.DecryptImport(alg, private, ct)
		if err != nil || !bytes.Equal(got, material) {
			t.Errorf("%s: %v", alg, err)
		}
		if _, err := kcrypto.DecryptImport(alg, private, ct[1:]); !errors.Is(err, kcrypto.ErrDecryption) {
			t.Errorf("%s, truncated: %v, want ErrDecryption", alg, err)
		}
	}
}

func TestParseRSAPublicKey_FormsAndRefusals(t *testing.T) {
	_, public := keyMaterial(t, kcrypto.SpecRSA2048)
	k, _ := x509.ParsePKIXPublicKey(public)
	pkcs1 := x509.MarshalPKCS1PublicKey(k.(*rsa.PublicKey))
	for name, der := range map[string][]byte{"SubjectPublicKeyInfo": public, "PKCS#1": pkcs1} {
		spkiDER, bits, err := kcrypto.ParseRSAPublicKey(der)
		if err != nil || bits != 2048 {
			t.Errorf("%s: %d bits, %v", name, bits, err)
			continue
		}
		if _, err := x509.ParsePKIXPublicKey(spkiDER); err != nil {
			t.Errorf("%s: the returned key is not a SubjectPublicKeyInfo: %v", name, err)
		}
	}
	_, ecPublic := keyMaterial(t, kcrypto.SpecECP256)
	_, k1Public := keyMaterial(t, kcrypto.SpecECP256K)
	for name, der := range map[string][]byte{"an EC_P256 key": ecPublic, "an EC_P256K key": k1Public, "garbage": []byte("not a key"), "empty": nil} {
		if _, _, err := kcrypto.ParseRSAPublicKey(der); !errors.Is(err, kcrypto.ErrBadPublicKey) {
			t.Errorf("%s: %v, want ErrBadPublicKey", name, err)
		}
	}
}

func TestGenerateKeyMaterial_SizesAndForms(t *testing.T) {
	for spec, n := range map[string]int{kcrypto.SpecAES256: 32, kcrypto.SpecAES192: 24, kcrypto.SpecAES128: 16} {
		priv, pub, err := kcrypto.GenerateKeyMaterial(spec)
		if err != nil || len(priv) != n || pub != nil {
			t.Errorf("%s: %d bytes, public %v, %v", spec, len(priv), pub != nil, err)
		}
	}
	for spec, bits := range map[string]int{kcrypto.SpecRSA2048: 2048, kcrypto.SpecRSA3072: 3072, kcrypto.SpecRSA4096: 4096} {
		priv, pub := keyMaterial(t, spec)
		k, err := x509.ParsePKCS8PrivateKey(priv)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		rk := k.(*rsa.PrivateKey)
		if rk.N.BitLen() != bits {
			t.Errorf("%s: %d bits", spec, rk.N.BitLen())
		}
		pk, _ := x509.ParsePKIXPublicKey(pub)
		if !rk.PublicKey.Equal(pk) {
			t.Errorf("%s: the public key is not the private key's", spec)
		}
	}
	priv, pub := keyMaterial(t, kcrypto.SpecECP256K)
	if !secp256k1.PrivKeyFromBytes(priv).PubKey().IsEqual(secp256k1Public(t, pub)) {
		t.Error("EC_P256K: the public key is not the scalar's")
	}
	if _, _, err := kcrypto.GenerateKeyMaterial("RSA_1024"); !errors.Is(err, kcrypto.ErrUnsupportedSpec) {
		t.Errorf("RSA_1024: %v", err)
	}
}

// TestPublicKeyPEM_ParsedByOpenSSL: every spec's public key, as PEM, is read
// by openssl (and by Go's x509 where Go knows the curve).
func TestPublicKeyPEM_ParsedByOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed: install it (make deps)")
	}
	want := map[string]string{
		kcrypto.SpecRSA2048: "Public-Key: (2048 bit)",
		kcrypto.SpecRSA3072: "Public-Key: (3072 bit)",
		kcrypto.SpecRSA4096: "Public-Key: (4096 bit)",
		kcrypto.SpecECP256:  "prime256v1",
		kcrypto.SpecECP256K: "secp256k1",
	}
	for spec, text := range want {
		_, public := keyMaterial(t, spec)
		p := kcrypto.PublicKeyPEM(public)
		block, rest := pem.Decode([]byte(p))
		if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 || !bytes.Equal(block.Bytes, public) {
			t.Fatalf("%s: not one PUBLIC KEY block of the DER: %q", spec, p)
		}
		out := opensslPublicKey(t, p)
		if !strings.Contains(out, text) {
			t.Errorf("%s: openssl output does not mention %q:\n%s", spec, text, out)
		}
		if spec != kcrypto.SpecECP256K {
			if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
				t.Errorf("%s: x509: %v", spec, err)
			}
		}
	}
}

func opensslPublicKey(t *testing.T, pemText string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(path, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkey", "-pubin", "-in", path, "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkey refuses the key: %v\n%s", err, out)
	}
	return string(out)
}

func TestMaterialMAC_DeterministicAndBound(t *testing.T) {
	a, _ := kcrypto.NewRootKey(bytes.Repeat([]byte{1}, kcrypto.RootKeySize))
	b, _ := kcrypto.NewRootKey(bytes.Repeat([]byte{2}, kcrypto.RootKeySize))
	m1 := bytes.Repeat([]byte{7}, 32)
	m2 := bytes.Repeat([]byte{8}, 32)
	if !bytes.Equal(a.MaterialMAC(m1), a.MaterialMAC(m1)) {
		t.Error("the same material gives two fingerprints")
	}
	if bytes.Equal(a.MaterialMAC(m1), a.MaterialMAC(m2)) {
		t.Error("two materials give one fingerprint")
	}
	if bytes.Equal(a.MaterialMAC(m1), b.MaterialMAC(m1)) {
		t.Error("the fingerprint does not depend on the root key")
	}
	if bytes.Contains(a.MaterialMAC(m1), m1[:8]) {
		t.Error("the fingerprint carries the material")
	}
}
