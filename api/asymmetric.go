package api

import "github.com/raftkms/raftkms/kms"

// Handlers of asymmetric keys: sign, verify, encrypt, decrypt, public key.

// versionRef is the key version an action names (KeyId, KeyVersionId).
func (c *call) versionRef() kms.KeyVersionRef {
	return kms.KeyVersionRef{Key: c.p.str("KeyId"), Version: c.p.str("KeyVersionId")}
}

func asymmetricAnswer(r kms.AsymmetricResult, field string, value any) map[string]any {
	return map[string]any{"KeyId": r.KeyID, "KeyVersionId": r.KeyVersionID, field: value}
}

func (s *Server) asymmetricSign(c *call) (any, error) {
	digest, err := c.p.base64Param("Digest")
	if err != nil {
		return nil, err
	}
	r, err := s.cfg.Service.AsymmetricSign(c.ctx, c.caller, kms.SignInput{KeyVersionRef: c.versionRef(), Algorithm: c.p.str("Algorithm"), Digest: digest})
	if err != nil {
		return nil, err
	}
	return asymmetricAnswer(r, "Value", b64(r.Value)), nil
}

func (s *Server) asymmetricVerify(c *call) (any, error) {
	digest, err := c.p.base64Param("Digest")
	if err != nil {
		return nil, err
	}
	sig, err := c.p.base64Param("Value")
	if err != nil {
		return nil, err
	}
	r, err := s.cfg.Service.AsymmetricVerify(c.ctx, c.caller, kms.VerifyInput{
		KeyVersionRef: c.versionRef(), Algorithm: c.p.str("Algorithm"), Digest: digest, Signature: sig,
	})
	if err != nil {
		return nil, err
	}
	return asymmetricAnswer(r, "Value", r.Valid), nil
}

func (s *Server) asymmetricEncrypt(c *call) (any, error) {
	pt, err := c.p.base64Param("Plaintext")
	if err != nil {
		return nil, err
	}
	r, err := s.cfg.Service.AsymmetricEncrypt(c.ctx, c.caller, kms.AsymmetricEncryptInput{KeyVersionRef: c.versionRef(), Algorithm: c.p.str("Algorithm"), Plaintext: pt})
	if err != nil {
		return nil, err
	}
	return asymmetricAnswer(r, "CiphertextBlob", b64(r.Value)), nil
}

func (s *Server) asymmetricDecrypt(c *call) (any, error) {
	ct, err := c.p.base64Param("CiphertextBlob")
	if err != nil {
		return nil, err
	}
	r, err := s.cfg.Service.AsymmetricDecrypt(c.ctx, c.caller, kms.AsymmetricDecryptInput{KeyVersionRef: c.versionRef(), Algorithm: c.p.str("Algorithm"), Ciphertext: ct})
	if err != nil {
		return nil, err
	}
	return asymmetricAnswer(r, "Plaintext", b64(r.Value)), nil
}

func (s *Server) getPublicKey(c *call) (any, error) {
	r, err := s.cfg.Service.GetPublicKey(c.ctx, c.caller, c.versionRef())
	if err != nil {
		return nil, err
	}
	return asymmetricAnswer(r, "PublicKey", r.PublicKeyPEM), nil
}
