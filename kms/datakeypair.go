package kms

import (
	"context"
	"errors"
	"strings"

	kcrypto "github.com/raftkms/raftkms/crypto"
)

// DataKeyPairInput is the key pair to make and the key to seal its private
// key under.
type DataKeyPairInput struct {
	Key         string // id, alias or ARN of a symmetric ENCRYPT/DECRYPT key
	KeyPairSpec string // RSA_2048, RSA_3072, RSA_4096, EC_P256 or EC_P256K
	KeyFormat   string // PEM (the default) or DER
	Algorithm   string // of the private key's encryption: AES_GCM (the default)
	AAD         []byte // bound into the encrypted private key
}

// DataKeyPair is a generated key pair. PublicKey is an X.509
// SubjectPublicKeyInfo, PrivateKeyPlaintext a PKCS#8 private key (nil for
// the WithoutPlaintext operations), both DER or PEM as KeyFormat says.
// PrivateKeyCiphertextBlob is that same private key, as it is in
// PrivateKeyPlaintext, sealed as an Advance ciphertext (AdvanceDecrypt, or
// Decrypt, with the same Aad opens it); IV is the nonce inside it.
type DataKeyPair struct {
	KeyID                    string // the key that sealed the private key
	KeyVersionID             string // and its version
	KeyPairSpec              string
	KeyFormat                string
	PublicKey                []byte
	PrivateKeyPlaintext      []byte
	PrivateKeyCiphertextBlob []byte
	IV                       []byte // the nonce inside PrivateKeyCiphertextBlob
	Algorithm                string // AES_GCM
}

// GenerateDataKeyPair makes a key pair and answers the public key, the
// private key, and the private key sealed under the key. Authorized as
// kms:GenerateDataKeyPair.
func (s *Service) GenerateDataKeyPair(ctx context.Context, c Caller, in DataKeyPairInput) (DataKeyPair, error) {
	return s.generateDataKeyPair(ctx, c, "kms:GenerateDataKeyPair", "GenerateDataKeyPair", in, true)
}

// GenerateDataKeyPairWithoutPlaintext is GenerateDataKeyPair without the
// private key in plaintext, under its own permission.
func (s *Service) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, c Caller, in DataKeyPairInput) (DataKeyPair, error) {
	return s.generateDataKeyPair(ctx, c, "kms:GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyPairWithoutPlaintext", in, false)
}

// AdvanceGenerateDataKeyPair is GenerateDataKeyPair whose answer also names
// the key version (the face reports KeyVersionID); the encrypted private
// key is the same self-describing blob. Authorized as kms:GenerateDataKeyPair.
func (s *Service) AdvanceGenerateDataKeyPair(ctx context.Context, c Caller, in DataKeyPairInput) (DataKeyPair, error) {
	return s.generateDataKeyPair(ctx, c, "kms:GenerateDataKeyPair", "AdvanceGenerateDataKeyPair", in, true)
}

// AdvanceGenerateDataKeyPairWithoutPlaintext is AdvanceGenerateDataKeyPair
// without the private key in plaintext. Authorized as
// kms:GenerateDataKeyPairWithoutPlaintext.
func (s *Service) AdvanceGenerateDataKeyPairWithoutPlaintext(ctx context.Context, c Caller, in DataKeyPairInput) (DataKeyPair, error) {
	return s.generateDataKeyPair(ctx, c, "kms:GenerateDataKeyPairWithoutPlaintext", "AdvanceGenerateDataKeyPairWithoutPlaintext", in, false)
}

func (s *Service) generateDataKeyPair(ctx context.Context, c Caller, action, op string, in DataKeyPairInput, withPlaintext bool) (DataKeyPair, error) {
	if in.KeyPairSpec == "" {
		return DataKeyPair{}, missing(FieldKeyPairSpec)
	}
	if !kcrypto.IsDataKeyPairSpec(in.KeyPairSpec) {
		return DataKeyPair{}, invalid(FieldKeyPairSpec, "must be one of "+strings.Join(DataKeyPairSpecs, ", "))
	}
	format := in.KeyFormat
	if format == "" {
		format = kcrypto.KeyFormatPEM
	}
	if format != kcrypto.KeyFormatPEM && format != kcrypto.KeyFormatDER {
		return DataKeyPair{}, invalid(FieldKeyFormat, "must be PEM or DER")
	}
	if err := checkGCM(in.Algorithm, nil, ""); err != nil {
		return DataKeyPair{}, err
	}
	var private, public []byte
	sealed, err := s.advanceSeal(ctx, c, action, op, in.Key, in.AAD, func() ([]byte, error) {
		var err error
		private, public, err = kcrypto.GenerateDataKeyPair(in.KeyPairSpec, format)
		return private, err
	})
	if err != nil {
		clear(private)
		if errors.Is(err, kcrypto.ErrUnsupportedSpec) {
			return DataKeyPair{}, invalid(FieldKeyPairSpec, "must be one of "+strings.Join(DataKeyPairSpecs, ", "))
		}
		return DataKeyPair{}, err
	}
	if !withPlaintext {
		clear(private)
		private = nil
	}
	return DataKeyPair{
		KeyID: sealed.KeyID, KeyVersionID: sealed.KeyVersionID,
		KeyPairSpec: in.KeyPairSpec, KeyFormat: format,
		PublicKey: public, PrivateKeyPlaintext: private,
		PrivateKeyCiphertextBlob: sealed.CiphertextBlob, IV: sealed.IV, Algorithm: sealed.Algorithm,
	}, nil
}

// DataKeyPairSpecs are the key pair specs GenerateDataKeyPair makes.
var DataKeyPairSpecs = []string{kcrypto.SpecRSA2048, kcrypto.SpecRSA3072, kcrypto.SpecRSA4096, kcrypto.SpecECP256, kcrypto.SpecECP256K}
