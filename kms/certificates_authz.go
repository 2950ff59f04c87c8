package kms

import (
	"context"

	"github.com/raftkms/raftkms/fsm"
)

// Authorization of certificates follows the secrets' (secrets_authz.go):
// RAM actions kms:<Action> on acs:kms:<region>:<account>:certificate/<id>;
// CreateCertificate is authorized on the ARN the new certificate will
// have. A certificate has no policy of its own: the default one (the
// account's root may do everything) stands for it, so RAM decides. Client
// keys (the instance API) have no certificate permission.
//
// System policies: FullAccess covers every certificate action (kms:*),
// ReadOnlyAccess DescribeCertificate and GetCertificate, CryptoUserAccess
// the four crypto actions (kms:Certificate*) — see authz.go.

// certificateCryptoActions are the crypto actions on certificates.
var certificateCryptoActions = []string{
	"kms:CertificatePrivateKeySign", "kms:CertificatePublicKeyVerify",
	"kms:CertificatePublicKeyEncrypt", "kms:CertificatePrivateKeyDecrypt",
}

// authorizeCertificate checks an action on a certificate. For one not
// created yet (CreateCertificate), pass the certificate it would be.
func (s *Service) authorizeCertificate(ctx context.Context, c Caller, action string, x *fsm.Certificate) error {
	if c.Client != nil {
		return denial(action, c)
	}
	return s.authorizeResource(ctx, c, action, x.AccountID, func() string { return s.CertificateArn(x) }, DefaultSecretPolicy(x.AccountID), nil)
}
