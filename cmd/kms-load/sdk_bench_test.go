package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/alibabacloud-go/tea/tea"
	dkmsutil "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util"
)

// The per-request signature cost of the two sides of the instance API
// (docs/BENCHMARKS.md): the official SDK signs every request with the
// client key's RSA-2048 private key, re-parsing the PEM key each time
// (openapi-util SignString, what the SDK calls), and the server verifies
// with the public key.
const sdkStringToSign = "POST\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\napplication/x-protobuf\nSun, 06 Dec 2026 02:00:00 GMT\nx-kms-apiname:Encrypt\nx-kms-apiversion:dkms-gcs-0.2\n/"

func BenchmarkInstanceSDK_SignRequest(b *testing.B) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	key := tea.String(string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})))
	s := tea.String(sdkStringToSign)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := dkmsutil.SignString(s, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInstanceServer_VerifyRequestSignature(b *testing.B) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte(sdkStringToSign))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}
