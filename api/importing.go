package api

import (
	"strconv"

	"github.com/raftkms/raftkms/kms"
)

// Handlers of imported key material (BYOK): import parameters, import,
// deletion of the material.

func (s *Server) getParametersForImport(c *call) (any, error) {
	p, err := s.cfg.Service.GetParametersForImport(c.ctx, c.caller, kms.ImportParametersInput{
		Key: c.p.str("KeyId"), WrappingAlgorithm: c.p.str("WrappingAlgorithm"), WrappingKeySpec: c.p.str("WrappingKeySpec"),
	})
	c.index = p.Index
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"KeyId": p.KeyID, "PublicKey": b64(p.PublicKey), "ImportToken": p.ImportToken,
		"TokenExpireTime": p.ExpireAt.UTC().Format("2006-01-02T15:04:05Z"),
	}, nil
}

func (s *Server) importKeyMaterial(c *call) (any, error) {
	material, err := c.p.base64Param("EncryptedKeyMaterial")
	if err != nil {
		return nil, err
	}
	var expire int64
	if v := c.p.str("KeyMaterialExpireUnix"); v != "" {
		if expire, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, invalidParam("KeyMaterialExpireUnix", "must be Unix seconds (0: never expires)")
		}
	}
	idx, err := s.cfg.Service.ImportKeyMaterial(c.ctx, c.caller, kms.ImportMaterialInput{
		Key: c.p.str("KeyId"), EncryptedMaterial: material, ImportToken: c.p.str("ImportToken"), ExpireUnix: expire,
	})
	c.index = idx
	return nil, err
}

func (s *Server) deleteKeyMaterial(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteKeyMaterial(c.ctx, c.caller, c.p.str("KeyId"))
	c.index = idx
	return nil, err
}
