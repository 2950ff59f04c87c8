package crypto

import (
	"bytes"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func TestGenerateDataKeyPair_RefusesUnknownSpecsAndFormats(t *testing.T) {
	cases := []struct{ spec, format string }{
		{SpecAES256, KeyFormatDER}, {"EC_SM2", KeyFormatDER}, {"", KeyFormatPEM}, {SpecECP256, "JWK"}, {SpecECP256, ""},
	}
	for _, c := range cases {
		if priv, pub, err := GenerateDataKeyPair(c.spec, c.format); err == nil || priv != nil || pub != nil {
			t.Errorf("%s/%s: made a pair (%v)", c.spec, c.format, err)
		}
	}
	if _, _, err := GenerateDataKeyPair("EC_SM2", KeyFormatDER); !errors.Is(err, ErrUnsupportedSpec) {
		t.Errorf("EC_SM2: %v, want ErrUnsupportedSpec", err)
	}
}

func TestGenerateDataKeyPair_Secp256k1PrivateKeyIsPKCS8OfThePublicKey(t *testing.T) {
	for _, format := range []string{KeyFormatDER, KeyFormatPEM} {
		priv, pub, err := GenerateDataKeyPair(SpecECP256K, format)
		if err != nil {
			t.Fatal(err)
		}
		if format == KeyFormatPEM {
			b, _ := pem.Decode(priv)
			u, _ := pem.Decode(pub)
			if b == nil || u == nil || b.Type != "PRIVATE KEY" || u.Type != "PUBLIC KEY" {
				t.Fatalf("PEM blocks: %v %v", b, u)
			}
			priv, pub = b.Bytes, u.Bytes
		}
		scalar, err := ParseSecp256k1PKCS8(priv)
		if err != nil {
			t.Fatal(err)
		}
		want, err := MarshalSecp256k1PublicKey(secp256k1.PrivKeyFromBytes(scalar).PubKey())
		if err != nil || !bytes.Equal(want, pub) {
			t.Fatalf("%s: the private key's public key is not the answered one (%v)", format, err)
		}
	}
}

func TestParseSecp256k1PKCS8_RefusesOtherKeys(t *testing.T) {
	p256, _, err := GenerateDataKeyPair(SpecECP256, KeyFormatDER)
	if err != nil {
		t.Fatal(err)
	}
	for name, der := range map[string][]byte{"P-256": p256, "empty": nil, "garbage": []byte{0x30, 0x03, 0x02, 0x01}} {
		if _, err := ParseSecp256k1PKCS8(der); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
