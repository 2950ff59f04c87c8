package api

import "github.com/raftkms/raftkms/kms"

// Handlers that export a data key under a caller's RSA public key.

func (c *call) exportInput() (kms.ExportInput, error) {
	pub, err := c.p.base64Param("PublicKeyBlob")
	if err != nil {
		return kms.ExportInput{}, err
	}
	return kms.ExportInput{PublicKeyBlob: pub, WrappingKeySpec: c.p.str("WrappingKeySpec"), WrappingAlgorithm: c.p.str("WrappingAlgorithm")}, nil
}

func (s *Server) generateAndExportDataKey(c *call) (any, error) {
	in, err := c.exportInput()
	if err != nil {
		return nil, err
	}
	dk, err := c.dataKeyInput()
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.GenerateAndExportDataKey(c.ctx, c.caller, dk, in)
	if err != nil {
		return nil, err
	}
	return c.sealedAnswer(out.Sealed).b64("ExportedDataKey", out.ExportedDataKey), nil
}

func (s *Server) exportDataKey(c *call) (any, error) {
	in, err := c.exportInput()
	if err != nil {
		return nil, err
	}
	blob, err := c.p.base64Param("CiphertextBlob")
	if err != nil {
		return nil, err
	}
	encCtx, err := c.p.context("EncryptionContext")
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.ExportDataKey(c.ctx, c.caller, kms.DecryptInput{Ciphertext: blob, EncryptionContext: encCtx}, in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": out.KeyID, "KeyVersionId": out.KeyVersionID, "ExportedDataKey": b64(out.ExportedDataKey)}, nil
}
