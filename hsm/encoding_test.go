package hsm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"hash"
	"math/big"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The two examples of RFC 5649 §6.
func TestWrapKeyPad_RFC5649Vectors(t *testing.T) {
	kek := unhex(t, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	cases := []struct{ key, wrapped string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	}
	for _, c := range cases {
		got, err := WrapKeyPad(kek, unhex(t, c.key))
		if err != nil || hex.EncodeToString(got) != c.wrapped {
			t.Fatalf("WrapKeyPad(%s) = %x, %v; want %s", c.key, got, err, c.wrapped)
		}
		back, err := UnwrapKeyPad(kek, got)
		if err != nil || hex.EncodeToString(back) != c.key {
			t.Fatalf("UnwrapKeyPad = %x, %v; want %s", back, err, c.key)
		}
	}
}

func TestWrapKeyPad_RoundTripsAndRefusesTampering(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	for n := 1; n <= 80; n++ {
		key := make([]byte, n)
		rand.Read(key)
		w, err := WrapKeyPad(kek, key)
		if err != nil {
			t.Fatal(err)
		}
		if want := 8 + 8*((n+7)/8); len(w) != want {
			t.Fatalf("%d bytes wrapped to %d, want %d", n, len(w), want)
		}
		back, err := UnwrapKeyPad(kek, w)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("round trip of %d bytes: %v", n, err)
		}
		for i := range w {
			bad := bytes.Clone(w)
			bad[i] ^= 0x01
			if _, err := UnwrapKeyPad(kek, bad); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("%d bytes, flipped byte %d: got %v, want ErrUnwrap", n, i, err)
			}
		}
		other := bytes.Clone(kek)
		other[0] ^= 1
		if _, err := UnwrapKeyPad(other, w); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("other KEK: %v", err)
		}
	}
	for _, l := range []int{0, 8, 15, 17} {
		if _, err := UnwrapKeyPad(kek, make([]byte, l)); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("%d-byte blob: %v", l, err)
		}
	}
	if _, err := WrapKeyPad(kek, nil); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := WrapKeyPad(kek[:7], []byte("k")); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("7-byte KEK: %v", err)
	}
}

func TestKeyCheckValue_KnownAnswer(t *testing.T) {
	// AES-256 of the zero block under the zero key is dc95c078….
	got, err := KeyCheckValue(make([]byte, 32))
	if err != nil || hex.EncodeToString(got) != "dc95c0" {
		t.Fatalf("KCV(0^32) = %x, %v", got, err)
	}
	// AES-128: 66e94bd4….
	got, _ = KeyCheckValue(make([]byte, 16))
	if hex.EncodeToString(got) != "66e94b" {
		t.Fatalf("KCV(0^16) = %x", got)
	}
	if _, err := KeyCheckValue(make([]byte, 31)); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("31-byte key: %v", err)
	}
}

// rawRSADecrypt is textbook RSA, standing in for the token's CKM_RSA_X_509.
func rawRSADecrypt(k *rsa.PrivateKey, ct []byte) []byte {
	m := new(big.Int).Exp(new(big.Int).SetBytes(ct), k.D, k.N)
	return m.FillBytes(make([]byte, k.Size()))
}

func TestOAEPDecode_AgreesWithGo(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []func() hash.Hash{sha1.New, sha256.New} {
		maxLen := k.Size() - 2*h().Size() - 2
		for _, n := range []int{0, 1, 16, maxLen} {
			pt := make([]byte, n)
			rand.Read(pt)
			ct, err := rsa.EncryptOAEP(h(), rand.Reader, &k.PublicKey, pt, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := oaepDecode(h, rawRSADecrypt(k, ct))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("decode of %d bytes: %v", n, err)
			}
			// Every kind of damage gives the one error.
			em := rawRSADecrypt(k, ct)
			for _, i := range []int{0, 1, h().Size() + 1, len(em) - 1} {
				bad := bytes.Clone(em)
				bad[i] ^= 0x01
				if _, err := oaepDecode(h, bad); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("flipped byte %d: got %v", i, err)
				}
			}
		}
	}
	// A label-bearing ciphertext does not decode with the empty label.
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte("x"), []byte("label"))
	if _, err := oaepDecode(sha256.New, rawRSADecrypt(k, ct)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("labelled ciphertext: %v", err)
	}
	if _, err := oaepDecode(sha256.New, make([]byte, 60)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("too short: %v", err)
	}
}

func TestECDSADER_LowS(t *testing.T) {
	r := big.NewInt(12345)
	high := new(big.Int).Sub(secp256k1N, big.NewInt(7)) // n-7 > n/2
	raw := append(r.FillBytes(make([]byte, 32)), high.FillBytes(make([]byte, 32))...)
	var sig struct{ R, S *big.Int }
	der, err := ecdsaDER(raw, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(der, &sig); err != nil || sig.R.Cmp(r) != 0 || sig.S.Int64() != 7 {
		t.Fatalf("low-S of n-7: r=%v s=%v %v", sig.R, sig.S, err)
	}
	der, _ = ecdsaDER(raw, false)
	asn1.Unmarshal(der, &sig)
	if sig.S.Cmp(high) != 0 {
		t.Fatal("S changed without lowS")
	}
	if _, err := ecdsaDER(raw[:63], true); err == nil {
		t.Fatal("odd-length raw signature accepted")
	}
}

func TestECSPKI_P256MatchesGoAndSecp256k1ChecksTheCurve(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	point := elliptic.Marshal(elliptic.P256(), k.X, k.Y) //nolint:staticcheck // the raw point is what the token gives
	got, err := ecSPKI(SpecECP256, point)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if !bytes.Equal(got, want) {
		t.Fatalf("P-256 SPKI\n got %x\nwant %x", got, want)
	}
	// The secp256k1 generator is on the curve; a nudged point is not.
	g := unhex(t, "0479BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8")
	if _, err := ecSPKI(SpecECP256K, g); err != nil {
		t.Fatalf("generator: %v", err)
	}
	g[64] ^= 1
	if _, err := ecSPKI(SpecECP256K, g); err == nil {
		t.Fatal("off-curve secp256k1 point accepted")
	}
	if _, err := ecSPKI(SpecECP256, g); err == nil {
		t.Fatal("off-curve P-256 point accepted")
	}
	// CKA_EC_POINT comes as a DER OCTET STRING; a bare point is accepted too.
	wrapped, _ := asn1.Marshal(point)
	for _, in := range [][]byte{wrapped, point} {
		if p, err := ecPoint(in); err != nil || !bytes.Equal(p, point) {
			t.Fatalf("ecPoint: %v", err)
		}
	}
}

func TestReadDomainKeyFileAndPinFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := writeFile(p, body); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := ReadDomainKeyFile(write("ok", "  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	if err != nil || len(key) != 32 {
		t.Fatalf("good key file: %v", err)
	}
	for _, body := range []string{"", "AAAA", "!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="} {
		if _, err := ReadDomainKeyFile(write("bad", body)); err == nil {
			t.Fatalf("key file %q accepted", body)
		}
	}
	if pin, err := ReadPinFile(write("pin", "1234\n")); err != nil || pin != "1234" {
		t.Fatalf("pin %q %v", pin, err)
	}
	if _, err := ReadPinFile(write("empty", "\n")); err == nil {
		t.Fatal("empty PIN file accepted")
	}
}
