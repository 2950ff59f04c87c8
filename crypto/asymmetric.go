package crypto

import (
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
	"fmt"
	"hash"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Key specs as the service names them.
const (
	SpecAES128  = "Aliyun_AES_128"
	SpecAES192  = "Aliyun_AES_192"
	SpecAES256  = "Aliyun_AES_256"
	SpecRSA2048 = "RSA_2048"
	SpecRSA3072 = "RSA_3072"
	SpecRSA4096 = "RSA_4096"
	SpecECP256  = "EC_P256"
	SpecECP256K = "EC_P256K"
)

// Algorithms of the asymmetric actions.
const (
	AlgRSAPSSSHA256   = "RSA_PSS_SHA_256"
	AlgRSAPKCS1SHA256 = "RSA_PKCS1_SHA_256"
	AlgECDSASHA256    = "ECDSA_SHA_256"
	AlgRSAOAEPSHA256  = "RSAES_OAEP_SHA_256"
	AlgRSAOAEPSHA1    = "RSAES_OAEP_SHA_1"
	AlgRSAPKCS1v15    = "RSAES_PKCS1_V1_5"
)

var (
	// ErrUnsupportedSpec means a key spec this build cannot generate.
	ErrUnsupportedSpec = errors.New("unsupported key spec")
	// ErrAlgorithm means the algorithm does not fit the key.
	ErrAlgorithm = errors.New("the algorithm does not fit the key")
	// ErrDecryption covers every asymmetric decryption failure, without
	// saying which check failed (a padding oracle must learn nothing).
	ErrDecryption = errors.New("the ciphertext cannot be decrypted with this key")
	// ErrBadPublicKey means a caller-supplied public key does not parse.
	ErrBadPublicKey = errors.New("the public key is not a DER SubjectPublicKeyInfo of a supported key")
)

// IsSymmetric reports whether spec is an AES spec.
func IsSymmetric(spec string) bool {
	return spec == SpecAES128 || spec == SpecAES192 || spec == SpecAES256
}

// IsRSA reports whether spec is an RSA spec.
func IsRSA(spec string) bool {
	return spec == SpecRSA2048 || spec == SpecRSA3072 || spec == SpecRSA4096
}

// IsEC reports whether spec is an elliptic-curve spec.
func IsEC(spec string) bool { return spec == SpecECP256 || spec == SpecECP256K }

// GenerateKeyMaterial makes new private material for spec. For AES it is
// the raw key; for RSA and P-256 a PKCS#8 DER private key; for secp256k1
// the 32-byte scalar (Go's x509 has no secp256k1). The public key is a DER
// SubjectPublicKeyInfo (nil for AES).
func GenerateKeyMaterial(spec string) (private, public []byte, err error) {
	switch spec {
	case SpecAES256:
		k, err := RandomBytes(32)
		return k, nil, err
	case SpecAES128:
		k, err := RandomBytes(16)
		return k, nil, err
	case SpecAES192:
		k, err := RandomBytes(24)
		return k, nil, err
	case SpecRSA2048, SpecRSA3072, SpecRSA4096:
		bits := map[string]int{SpecRSA2048: 2048, SpecRSA3072: 3072, SpecRSA4096: 4096}[spec]
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, nil, err
		}
		priv, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		return priv, pub, err
	case SpecECP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		priv, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		return priv, pub, err
	case SpecECP256K:
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, nil, err
		}
		pub, err := MarshalSecp256k1PublicKey(k.PubKey())
		return k.Serialize(), pub, err
	}
	return nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedSpec, spec)
}

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// MarshalSecp256k1PublicKey encodes a secp256k1 public key as a DER
// SubjectPublicKeyInfo (id-ecPublicKey with the secp256k1 named curve and
// an uncompressed point), the form OpenSSL reads.
func MarshalSecp256k1PublicKey(pub *secp256k1.PublicKey) ([]byte, error) {
	curve, err := asn1.Marshal(oidSecp256k1)
	if err != nil {
		return nil, err
	}
	point := pub.SerializeUncompressed()
	return asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey, Parameters: asn1.RawValue{FullBytes: curve}},
		PublicKey: asn1.BitString{Bytes: point, BitLength: 8 * len(point)},
	})
}

// PublicKeyPEM wraps a DER SubjectPublicKeyInfo in a PEM "PUBLIC KEY" block.
func PublicKeyPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Sign signs a SHA-256 digest with the version's private material.
// ECDSA signatures are DER; secp256k1 signatures are in low-S form.
func Sign(spec, alg string, private, digest []byte) ([]byte, error) {
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("%w: the digest of %s must be a 32-byte SHA-256 digest", ErrAlgorithm, alg)
	}
	switch {
	case IsRSA(spec):
		k, err := parseRSAPrivate(private)
		if err != nil {
			return nil, err
		}
		switch alg {
		case AlgRSAPSSSHA256:
			return rsa.SignPSS(rand.Reader, k, crypto.SHA256, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		case AlgRSAPKCS1SHA256:
			return rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest)
		}
	case spec == SpecECP256 && alg == AlgECDSASHA256:
		k, err := x509.ParsePKCS8PrivateKey(private)
		if err != nil {
			return nil, fmt.Errorf("parse EC private key: %w", err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("EC_P256 material is not an ECDSA key")
		}
		return ecdsa.SignASN1(rand.Reader, ek, digest)
	case spec == SpecECP256K && alg == AlgECDSASHA256:
		if len(private) != 32 {
			return nil, errors.New("EC_P256K material is not a 32-byte scalar")
		}
		k := secp256k1.PrivKeyFromBytes(private)
		// RFC 6979 nonces; Serialize always emits the canonical low-S form.
		return secpecdsa.Sign(k, digest).Serialize(), nil
	}
	return nil, fmt.Errorf("%w: %s cannot sign with %s", ErrAlgorithm, spec, alg)
}

// Verify checks a signature over a SHA-256 digest with a DER
// SubjectPublicKeyInfo. It reports false, not an error, for a bad signature.
func Verify(spec, alg string, public, digest, sig []byte) (bool, error) {
	if len(digest) != sha256.Size {
		return false, fmt.Errorf("%w: the digest of %s must be a 32-byte SHA-256 digest", ErrAlgorithm, alg)
	}
	switch {
	case IsRSA(spec):
		pub, err := parseRSAPublic(public)
		if err != nil {
			return false, err
		}
		switch alg {
		case AlgRSAPSSSHA256:
			return rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil, nil
		case AlgRSAPKCS1SHA256:
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) == nil, nil
		}
	case spec == SpecECP256 && alg == AlgECDSASHA256:
		k, err := x509.ParsePKIXPublicKey(public)
		if err != nil {
			return false, err
		}
		ek, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return false, ErrBadPublicKey
		}
		return ecdsa.VerifyASN1(ek, digest, sig), nil
	case spec == SpecECP256K && alg == AlgECDSASHA256:
		pub, err := parseSecp256k1Public(public)
		if err != nil {
			return false, err
		}
		s, err := secpecdsa.ParseDERSignature(sig)
		if err != nil {
			return false, nil
		}
		return s.Verify(digest, pub), nil
	}
	return false, fmt.Errorf("%w: %s cannot verify %s", ErrAlgorithm, spec, alg)
}

func parseSecp256k1Public(der []byte) (*secp256k1.PublicKey, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) > 0 {
		return nil, ErrBadPublicKey
	}
	return secp256k1.ParsePubKey(spki.PublicKey.Bytes)
}

// OAEPHash returns the hash of an OAEP algorithm.
func OAEPHash(alg string) (hash.Hash, error) {
	switch alg {
	case AlgRSAOAEPSHA256:
		return sha256.New(), nil
	case AlgRSAOAEPSHA1:
		return sha1.New(), nil
	}
	return nil, fmt.Errorf("%w: %s is not RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1", ErrAlgorithm, alg)
}

// MaxOAEPPlaintext is the largest plaintext OAEP with alg fits into a key of
// the given modulus size: k - 2·hLen - 2 (RSA_2048: 190 with SHA-256, 214
// with SHA-1).
func MaxOAEPPlaintext(spec, alg string) (int, error) {
	h, err := OAEPHash(alg)
	if err != nil {
		return 0, err
	}
	bits := map[string]int{SpecRSA2048: 2048, SpecRSA3072: 3072, SpecRSA4096: 4096}[spec]
	if bits == 0 {
		return 0, fmt.Errorf("%w: %s does not encrypt with %s", ErrAlgorithm, spec, alg)
	}
	return bits/8 - 2*h.Size() - 2, nil
}

// EncryptOAEP encrypts to a DER SubjectPublicKeyInfo RSA key.
func EncryptOAEP(alg string, public, plaintext []byte) ([]byte, error) {
	h, err := OAEPHash(alg)
	if err != nil {
		return nil, err
	}
	pub, err := parseRSAPublic(public)
	if err != nil {
		return nil, err
	}
	return rsa.EncryptOAEP(h, rand.Reader, pub, plaintext, nil)
}

// DecryptOAEP decrypts with RSA private material.
func DecryptOAEP(alg string, private, ciphertext []byte) ([]byte, error) {
	h, err := OAEPHash(alg)
	if err != nil {
		return nil, err
	}
	k, err := parseRSAPrivate(private)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) != k.Size() {
		return nil, ErrDecryption
	}
	pt, err := rsa.DecryptOAEP(h, nil, k, ciphertext, nil)
	if err != nil {
		return nil, ErrDecryption
	}
	return pt, nil
}

// DecryptImport unwraps imported key material with an import token's RSA
// private key, under one of the three wrapping algorithms of
// GetParametersForImport.
func DecryptImport(alg string, private, ciphertext []byte) ([]byte, error) {
	if alg == AlgRSAPKCS1v15 {
		k, err := parseRSAPrivate(private)
		if err != nil {
			return nil, err
		}
		if len(ciphertext) != k.Size() {
			return nil, ErrDecryption
		}
		pt, err := rsa.DecryptPKCS1v15(nil, k, ciphertext)
		if err != nil {
			return nil, ErrDecryption
		}
		return pt, nil
	}
	return DecryptOAEP(alg, private, ciphertext)
}

// ParseRSAPublicKey accepts a caller's RSA public key: DER
// SubjectPublicKeyInfo, or PKCS#1 DER.
func ParseRSAPublicKey(der []byte) ([]byte, int, error) {
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, 0, ErrBadPublicKey
		}
		return der, rk.N.BitLen(), nil
	}
	rk, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, 0, ErrBadPublicKey
	}
	spki, err := x509.MarshalPKIXPublicKey(rk)
	if err != nil {
		return nil, 0, ErrBadPublicKey
	}
	return spki, rk.N.BitLen(), nil
}

func parseRSAPrivate(der []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse RSA private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("RSA material is not an RSA key")
	}
	return rk, nil
}

func parseRSAPublic(der []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, ErrBadPublicKey
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, ErrBadPublicKey
	}
	return rk, nil
}

// MaterialMAC fingerprints imported key material, so that only the same
// material can be imported into a key again, without keeping anything that
// helps recover it: HMAC-SHA256 under a key derived from the root key.
func (k *RootKey) MaterialMAC(material []byte) []byte {
	return k.mac("raftkms imported material fingerprint v1", material)
}
