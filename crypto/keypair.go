package crypto

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Key-pair formats of GenerateDataKeyPair: DER (PKCS#8 private key, X.509
// SubjectPublicKeyInfo public key) or the same DER in PEM blocks
// ("PRIVATE KEY", "PUBLIC KEY").
const (
	KeyFormatDER = "DER"
	KeyFormatPEM = "PEM"
)

// IsDataKeyPairSpec reports whether spec is a key pair GenerateDataKeyPair
// makes: the asymmetric specs this build generates.
func IsDataKeyPairSpec(spec string) bool { return IsRSA(spec) || IsEC(spec) }

// GenerateDataKeyPair makes a key pair of spec for a caller to keep: the
// private key as PKCS#8 and the public key as SubjectPublicKeyInfo, both in
// format (KeyFormatDER or KeyFormatPEM). Unlike GenerateKeyMaterial, a
// secp256k1 private key is PKCS#8 too (id-ecPublicKey with the secp256k1
// curve), so the caller reads every spec the same way. The caller clears
// private when done.
func GenerateDataKeyPair(spec, format string) (private, public []byte, err error) {
	if format != KeyFormatDER && format != KeyFormatPEM {
		return nil, nil, fmt.Errorf("unknown key format %q", format)
	}
	if !IsDataKeyPairSpec(spec) {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedSpec, spec)
	}
	private, public, err = GenerateKeyMaterial(spec)
	if err != nil {
		return nil, nil, err
	}
	if spec == SpecECP256K {
		scalar := private
		private, err = marshalSecp256k1PKCS8(scalar)
		clear(scalar)
		if err != nil {
			return nil, nil, err
		}
	}
	if format == KeyFormatPEM {
		der := private
		private = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		clear(der)
		public = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: public})
	}
	return private, public, nil
}

// pkcs8 and ecPrivateKey are RFC 5208's PrivateKeyInfo and RFC 5915's
// ECPrivateKey (the curve is named in the algorithm identifier, so the
// inner structure leaves it out, as Go's x509 does for P-256).
type pkcs8 struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
}

type ecPrivateKey struct {
	Version    int
	PrivateKey []byte
	PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
}

func marshalSecp256k1PKCS8(scalar []byte) ([]byte, error) {
	k := secp256k1.PrivKeyFromBytes(scalar)
	defer k.Zero()
	pub := k.PubKey().SerializeUncompressed()
	inner, err := asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: scalar, PublicKey: asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}})
	if err != nil {
		return nil, err
	}
	defer clear(inner)
	curve, err := asn1.Marshal(oidSecp256k1)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey, Parameters: asn1.RawValue{FullBytes: curve}}, PrivateKey: inner})
}

// ParseSecp256k1PKCS8 reads the secp256k1 scalar out of a PKCS#8 private
// key that GenerateDataKeyPair made (Go's x509 does not know the curve).
func ParseSecp256k1PKCS8(der []byte) ([]byte, error) {
	var p pkcs8
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("not a PKCS#8 private key")
	}
	var curve asn1.ObjectIdentifier
	if !p.Algo.Algorithm.Equal(oidECPublicKey) {
		return nil, fmt.Errorf("not an EC private key")
	}
	if _, err := asn1.Unmarshal(p.Algo.Parameters.FullBytes, &curve); err != nil || !curve.Equal(oidSecp256k1) {
		return nil, fmt.Errorf("not a secp256k1 private key")
	}
	var ec ecPrivateKey
	if _, err := asn1.Unmarshal(p.PrivateKey, &ec); err != nil || len(ec.PrivateKey) != 32 {
		return nil, fmt.Errorf("bad EC private key")
	}
	return ec.PrivateKey, nil
}
