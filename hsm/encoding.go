package hsm

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
)

// DER encodings of the named-curve OIDs, as CKA_EC_PARAMS holds them.
var (
	ecParamsP256      = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // 1.2.840.10045.3.1.7
	ecParamsSecp256k1 = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}                   // 1.3.132.0.10
	oidECPublicKey    = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
)

// secp256k1 domain parameters (SEC 2): field prime, group order.
var (
	secp256k1P, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F", 16)
	secp256k1N, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	secp256k1H    = new(big.Int).Rsh(secp256k1N, 1)
)

func ecParams(spec KeySpec) []byte {
	switch spec {
	case SpecECP256:
		return ecParamsP256
	case SpecECP256K:
		return ecParamsSecp256k1
	}
	return nil
}

// ecPoint extracts the uncompressed point 04‖X‖Y from CKA_EC_POINT, which
// PKCS#11 defines (and SoftHSM returns) as a DER OCTET STRING around it.
// Some modules return the bare point; both are accepted.
func ecPoint(attr []byte) ([]byte, error) {
	var inner []byte
	if rest, err := asn1.Unmarshal(attr, &inner); err == nil && len(rest) == 0 && len(inner) == 65 && inner[0] == 4 {
		return inner, nil
	}
	if len(attr) == 65 && attr[0] == 4 {
		return attr, nil
	}
	return nil, errors.New("hsm: CKA_EC_POINT is not an uncompressed 256-bit point")
}

// ecSPKI builds the DER SubjectPublicKeyInfo of an EC public key by hand
// (id-ecPublicKey with the named curve), after checking the point is on the
// curve. Go's x509 cannot marshal secp256k1, so both curves go this way; for
// P-256 the bytes equal x509.MarshalPKIXPublicKey's.
func ecSPKI(spec KeySpec, point []byte) ([]byte, error) {
	switch spec {
	case SpecECP256:
		if _, err := ecdh.P256().NewPublicKey(point); err != nil {
			return nil, fmt.Errorf("hsm: P-256 public key from the token: %w", err)
		}
	case SpecECP256K:
		if !onSecp256k1(point) {
			return nil, errors.New("hsm: secp256k1 public key from the token is not on the curve")
		}
	default:
		return nil, fmt.Errorf("%w: %s is not an EC spec", ErrInvalidParameter, spec)
	}
	return asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey, Parameters: asn1.RawValue{FullBytes: ecParams(spec)}},
		PublicKey: asn1.BitString{Bytes: point, BitLength: 8 * len(point)},
	})
}

// onSecp256k1 checks y² = x³ + 7 (mod p) for an uncompressed point.
func onSecp256k1(point []byte) bool {
	if len(point) != 65 || point[0] != 4 {
		return false
	}
	x := new(big.Int).SetBytes(point[1:33])
	y := new(big.Int).SetBytes(point[33:])
	if x.Cmp(secp256k1P) >= 0 || y.Cmp(secp256k1P) >= 0 {
		return false
	}
	lhs := new(big.Int).Mul(y, y)
	lhs.Mod(lhs, secp256k1P)
	rhs := new(big.Int).Mul(x, x)
	rhs.Mul(rhs, x)
	rhs.Add(rhs, big.NewInt(7))
	rhs.Mod(rhs, secp256k1P)
	return lhs.Cmp(rhs) == 0
}

// rsaSPKI builds the DER SubjectPublicKeyInfo of an RSA public key from
// CKA_MODULUS and CKA_PUBLIC_EXPONENT.
func rsaSPKI(modulus, exponent []byte) ([]byte, error) {
	e := new(big.Int).SetBytes(exponent)
	if !e.IsInt64() || e.Int64() > 1<<31-1 {
		return nil, errors.New("hsm: RSA public exponent out of range")
	}
	return x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(modulus), E: int(e.Int64())})
}

// ecdsaDER turns CKM_ECDSA's raw r‖s into the DER ECDSA-Sig-Value. With
// lowS, s is replaced by n−s when it is in the upper half of the order:
// secp256k1 consumers (Bitcoin, Ethereum) reject high-S signatures and
// SoftHSM does not normalize.
func ecdsaDER(raw []byte, lowS bool) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("hsm: ECDSA signature of %d bytes from the token", len(raw))
	}
	half := len(raw) / 2
	r := new(big.Int).SetBytes(raw[:half])
	s := new(big.Int).SetBytes(raw[half:])
	if lowS && s.Cmp(secp256k1H) > 0 {
		s.Sub(secp256k1N, s)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}

// digestInfoSHA256 is the DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2):
// CKM_RSA_PKCS signs DigestInfo‖digest for RSASSA-PKCS1-v1_5.
var digestInfoSHA256 = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// oaepDecode decodes an EME-OAEP encoded message (RFC 8017 §7.1.2 step 3)
// with MGF1 over the same hash and an empty label, in time that depends only
// on len(em): the raw RSA result of a chosen ciphertext must not leak where
// decoding failed (Manger's attack). em is the RSA output left-padded to the
// modulus length k. Every failure is ErrDecrypt.
func oaepDecode(newHash func() hash.Hash, em []byte) ([]byte, error) {
	h := newHash()
	hLen := h.Size()
	k := len(em)
	if k < 2*hLen+2 {
		return nil, ErrDecrypt
	}
	lHash := h.Sum(nil) // hash of the empty label
	buf := make([]byte, k)
	copy(buf, em)
	defer clear(buf)

	firstByteIsZero := subtle.ConstantTimeByteEq(buf[0], 0)
	seed := buf[1 : 1+hLen]
	db := buf[1+hLen:]
	mgf1XOR(seed, newHash, db)
	mgf1XOR(db, newHash, seed)
	lHashGood := subtle.ConstantTimeCompare(lHash, db[:hLen])

	// After lHash: zero or more 0x00, one 0x01, then the message. Scan all
	// of it, remembering the first 0x01 and whether a non-zero byte came
	// before it, without branching on the bytes.
	rest := db[hLen:]
	lookingForIndex, index, invalid := 1, 0, 0
	for i := range rest {
		equals0 := subtle.ConstantTimeByteEq(rest[i], 0)
		equals1 := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(lookingForIndex&equals1, i, index)
		lookingForIndex = subtle.ConstantTimeSelect(equals1, 0, lookingForIndex)
		invalid = subtle.ConstantTimeSelect(lookingForIndex&^equals0, 1, invalid)
	}
	if firstByteIsZero&lHashGood&^invalid&^lookingForIndex != 1 {
		return nil, ErrDecrypt
	}
	return bytes.Clone(rest[index+1:]), nil
}

// mgf1XOR XORs out with MGF1(seed) (RFC 8017 §B.2.1).
func mgf1XOR(out []byte, newHash func() hash.Hash, seed []byte) {
	h := newHash()
	var counter [4]byte
	var digest []byte
	done := 0
	for done < len(out) {
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		digest = h.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		for i := 3; i >= 0; i-- {
			counter[i]++
			if counter[i] != 0 {
				break
			}
		}
	}
}

// oaepHash maps an OAEP algorithm to its hash.
func oaepHash(alg EncryptAlgorithm) (func() hash.Hash, error) {
	switch alg {
	case RSAESOAEPSHA1:
		return sha1.New, nil
	case RSAESOAEPSHA256:
		return sha256.New, nil
	}
	return nil, fmt.Errorf("%w: unsupported encryption algorithm %q", ErrInvalidParameter, alg)
}
