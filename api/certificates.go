package api

import (
	"encoding/base64"
	"strings"

	"github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/kms"
)

// Handlers of certificates. The answers use the field names and types of
// the official SDK's response models (kms-20160120/v3,
// CreateCertificateResponseBody and the others): Base64 for signatures,
// ciphertexts and plaintexts, PEM for requests and certificates, times as
// the key actions write them.

func (s *Server) createCertificate(c *call) (any, error) {
	exportable, err := c.p.boolean("ExportablePrivateKey")
	if err != nil {
		return nil, err
	}
	x, idx, err := s.cfg.Service.CreateCertificate(c.ctx, c.caller, kms.CertificateInput{
		KeySpec:    c.p.str("KeySpec"),
		Subject:    c.p.str("Subject"),
		SANs:       c.p.str("SubjectAlternativeNames"),
		Exportable: exportable,
		InstanceID: c.p.str("DKMSInstanceId"),
	})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"Arn":           s.cfg.Service.CertificateArn(x),
		"CertificateId": x.ID,
		"Csr":           kms.CSRPEM(x.CSR),
	}, nil
}

func (s *Server) uploadCertificate(c *call) (any, error) {
	idx, err := s.cfg.Service.UploadCertificate(c.ctx, c.caller, c.p.str("CertificateId"), c.p.str("Certificate"), c.p.str("CertificateChain"))
	c.index = idx
	return nil, err
}

func (s *Server) getCertificate(c *call) (any, error) {
	x, err := s.cfg.Service.GetCertificate(c.ctx, c.caller, c.p.str("CertificateId"))
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"CertificateId":    x.ID,
		"Csr":              kms.CSRPEM(x.CSR),
		"Certificate":      kms.CertificatePEM(x.Cert),
		"CertificateChain": x.Chain,
	}, nil
}

func (s *Server) describeCertificate(c *call) (any, error) {
	x, info, err := s.cfg.Service.DescribeCertificate(c.ctx, c.caller, c.p.str("CertificateId"))
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		"Arn":                     s.cfg.Service.CertificateArn(x),
		"CertificateId":           x.ID,
		"CreatedAt":               isoTime(x.CreatedAt),
		"UpdatedAt":               isoTime(x.UpdatedAt),
		"ExportablePrivateKey":    x.Exportable,
		"KeySpec":                 x.KeySpec,
		"Status":                  x.Status,
		"Subject":                 info.Subject,
		"Issuer":                  info.Issuer,
		"Serial":                  info.Serial,
		"SignatureAlgorithm":      info.SignatureAlgorithm,
		"SubjectKeyIdentifier":    info.SubjectKeyID,
		"SubjectPublicKey":        crypto.PublicKeyPEM(info.PublicKey),
		"SubjectAlternativeNames": nonNil(info.SANs),
		"Tags":                    secretTagsJSON(x.Tags),
		"NotBefore":               "",
		"NotAfter":                "",
	}
	if !info.NotBefore.IsZero() {
		m["NotBefore"] = isoTime(info.NotBefore.UnixMilli())
		m["NotAfter"] = isoTime(info.NotAfter.UnixMilli())
	}
	return m, nil
}

func (s *Server) updateCertificateStatus(c *call) (any, error) {
	idx, err := s.cfg.Service.UpdateCertificateStatus(c.ctx, c.caller, c.p.str("CertificateId"), strings.ToUpper(c.p.str("Status")))
	c.index = idx
	return nil, err
}

func (s *Server) deleteCertificate(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteCertificate(c.ctx, c.caller, c.p.str("CertificateId"))
	c.index = idx
	return nil, err
}

func (s *Server) certificatePrivateKeySign(c *call) (any, error) {
	msg, err := c.p.base64Param("Message")
	if err != nil {
		return nil, err
	}
	id := c.p.str("CertificateId")
	sig, err := s.cfg.Service.CertificatePrivateKeySign(c.ctx, c.caller, kms.CertificateSignInput{
		ID: id, Algorithm: c.p.str("Algorithm"), Message: msg, MessageType: c.p.str("MessageType")})
	if err != nil {
		return nil, err
	}
	return map[string]any{"CertificateId": id, "SignatureValue": base64.StdEncoding.EncodeToString(sig)}, nil
}

func (s *Server) certificatePublicKeyVerify(c *call) (any, error) {
	msg, err := c.p.base64Param("Message")
	if err != nil {
		return nil, err
	}
	sig, err := c.p.base64Param("SignatureValue")
	if err != nil {
		return nil, err
	}
	id := c.p.str("CertificateId")
	ok, err := s.cfg.Service.CertificatePublicKeyVerify(c.ctx, c.caller, kms.CertificateSignInput{
		ID: id, Algorithm: c.p.str("Algorithm"), Message: msg, MessageType: c.p.str("MessageType"), Signature: sig})
	if err != nil {
		return nil, err
	}
	return map[string]any{"CertificateId": id, "SignatureValid": ok}, nil
}

func (s *Server) certificatePublicKeyEncrypt(c *call) (any, error) {
	pt, err := c.p.base64Param("Plaintext")
	if err != nil {
		return nil, err
	}
	id := c.p.str("CertificateId")
	ct, err := s.cfg.Service.CertificatePublicKeyEncrypt(c.ctx, c.caller, kms.CertificateCryptInput{ID: id, Algorithm: c.p.str("Algorithm"), Data: pt})
	if err != nil {
		return nil, err
	}
	return map[string]any{"CertificateId": id, "CiphertextBlob": base64.StdEncoding.EncodeToString(ct)}, nil
}

func (s *Server) certificatePrivateKeyDecrypt(c *call) (any, error) {
	ct, err := c.p.base64Param("CiphertextBlob")
	if err != nil {
		return nil, err
	}
	id := c.p.str("CertificateId")
	pt, err := s.cfg.Service.CertificatePrivateKeyDecrypt(c.ctx, c.caller, kms.CertificateCryptInput{ID: id, Algorithm: c.p.str("Algorithm"), Data: ct})
	if err != nil {
		return nil, err
	}
	return map[string]any{"CertificateId": id, "Plaintext": base64.StdEncoding.EncodeToString(pt)}, nil
}
