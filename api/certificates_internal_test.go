package api

import (
	"testing"

	"github.com/raftkms/raftkms/kms"
)

// The certificate actions' rate-limit classes: the crypto ones are
// asymmetric cryptography, reads are reads, the rest writes.
func TestRPCClass_Certificates(t *testing.T) {
	for action, want := range map[string]string{
		"CertificatePrivateKeySign": kms.ClassAsymmetric, "CertificatePublicKeyVerify": kms.ClassAsymmetric,
		"CertificatePublicKeyEncrypt": kms.ClassAsymmetric, "CertificatePrivateKeyDecrypt": kms.ClassAsymmetric,
		"GetCertificate": kms.ClassRead, "DescribeCertificate": kms.ClassRead,
		"CreateCertificate": kms.ClassWrite, "UploadCertificate": kms.ClassWrite,
		"UpdateCertificateStatus": kms.ClassWrite, "DeleteCertificate": kms.ClassWrite,
	} {
		if got := rpcClass(action); got != want {
			t.Errorf("rpcClass(%s) = %s, want %s", action, got, want)
		}
	}
}
