package api

import (
	"strconv"

	"github.com/raftkms/raftkms/kms"
)

// Handlers of the catalogue actions: rotation policy, deletion, policies,
// asymmetric keys, data key export, material import and KMS instances.

func (s *Server) updateRotationPolicy(c *call) (any, error) {
	enable, err := c.p.boolean("EnableAutomaticRotation")
	if err != nil {
		return nil, err
	}
	_, given := c.p["EnableAutomaticRotation"]
	idx, err := s.cfg.Service.UpdateRotationPolicy(c.ctx, c.caller, c.p.str("KeyId"), enable, c.p.str("RotationInterval"), given)
	c.index = idx
	return nil, err
}

func (s *Server) scheduleKeyDeletion(c *call) (any, error) {
	days, err := c.p.integer("PendingWindowInDays")
	if err != nil {
		return nil, err
	}
	_, given := c.p["PendingWindowInDays"]
	idx, err := s.cfg.Service.ScheduleKeyDeletion(c.ctx, c.caller, c.p.str("KeyId"), days, given)
	c.index = idx
	return nil, err
}

func (s *Server) cancelKeyDeletion(c *call) (any, error) {
	idx, err := s.cfg.Service.CancelKeyDeletion(c.ctx, c.caller, c.p.str("KeyId"))
	c.index = idx
	return nil, err
}

func (s *Server) setDeletionProtection(c *call) (any, error) {
	enable, err := c.p.boolean("EnableDeletionProtection")
	if err != nil {
		return nil, err
	}
	_, given := c.p["EnableDeletionProtection"]
	idx, err := s.cfg.Service.SetDeletionProtection(c.ctx, c.caller, c.p.str("ProtectedResourceArn"), enable, given, c.p.str("DeletionProtectionDescription"))
	c.index = idx
	return nil, err
}

func (s *Server) getKeyPolicy(c *call) (any, error) {
	doc, err := s.cfg.Service.GetKeyPolicy(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("PolicyName"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"Policy": doc}, nil
}

func (s *Server) setKeyPolicy(c *call) (any, error) {
	bypass, err := c.p.boolean("BypassPolicyLockoutSafetyCheck")
	if err != nil {
		return nil, err
	}
	idx, err := s.cfg.Service.SetKeyPolicy(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("PolicyName"), c.p.str("Policy"), bypass)
	c.index = idx
	return nil, err
}

func asymmetricAnswer(r kms.AsymmetricResult, field string, value any) map[string]any {
	return map[string]any{"KeyId": r.KeyID, "KeyVersionId": r.KeyVersionID, field: value}
}

func (s *Server) asymmetricSign(c *call) (any, error) {
	digest, err := c.p.base64Param("Digest")
	if err != nil {
		return nil, err
	}
	r, err := s.cfg.Service.AsymmetricSign(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("KeyVersionId"), c.p.str("Algorithm"), digest)
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
	r, err := s.cfg.Service.AsymmetricVerify(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("KeyVersionId"), c.p.str("Algorithm"), digest, sig)
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
	r, err := s.cfg.Service.AsymmetricEncrypt(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("KeyVersionId"), c.p.str("Algorithm"), pt)
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
	r, err := s.cfg.Service.AsymmetricDecrypt(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("KeyVersionId"), c.p.str("Algorithm"), ct)
	if err != nil {
		return nil, err
	}
	return asymmetricAnswer(r, "Plaintext", b64(r.Value)), nil
}

func (s *Server) getPublicKey(c *call) (any, error) {
	r, err := s.cfg.Service.GetPublicKey(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("KeyVersionId"))
	if err != nil {
		return nil, err
	}
	return asymmetricAnswer(r, "PublicKey", r.PublicKeyPEM), nil
}

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
	n, err := c.p.integer("NumberOfBytes")
	if err != nil {
		return nil, err
	}
	if c.p.str("NumberOfBytes") != "" && (n < 1 || n > 1024) {
		return nil, invalidParam("NumberOfBytes", "must be between 1 and 1024")
	}
	encCtx, err := c.p.context("EncryptionContext")
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.GenerateAndExportDataKey(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("KeySpec"), n, encCtx, in)
	if err != nil {
		return nil, err
	}
	m := sealedAnswer(out.Sealed)
	m["ExportedDataKey"] = b64(out.ExportedDataKey)
	return m, nil
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
	out, err := s.cfg.Service.ExportDataKey(c.ctx, c.caller, blob, encCtx, in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": out.KeyID, "KeyVersionId": out.KeyVersionID, "ExportedDataKey": b64(out.ExportedDataKey)}, nil
}

func (s *Server) getParametersForImport(c *call) (any, error) {
	p, err := s.cfg.Service.GetParametersForImport(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("WrappingAlgorithm"), c.p.str("WrappingKeySpec"))
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
	idx, err := s.cfg.Service.ImportKeyMaterial(c.ctx, c.caller, c.p.str("KeyId"), material, c.p.str("ImportToken"), expire)
	c.index = idx
	return nil, err
}

func (s *Server) deleteKeyMaterial(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteKeyMaterial(c.ctx, c.caller, c.p.str("KeyId"))
	c.index = idx
	return nil, err
}

func (s *Server) listKmsInstances(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	insts, total, page, err := s.cfg.Service.ListKmsInstances(c.ctx, c.caller, page)
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(insts))
	for _, in := range insts {
		list = append(list, map[string]any{"KmsInstanceId": in.ID, "KmsInstanceArn": s.cfg.Service.InstanceArn(in)})
	}
	return map[string]any{"KmsInstances": map[string]any{"KmsInstance": list}, "TotalCount": total, "PageNumber": page.Number, "PageSize": page.Size}, nil
}

func (s *Server) getKmsInstance(c *call) (any, error) {
	in, err := s.cfg.Service.GetKmsInstance(c.ctx, c.caller, c.p.str("KmsInstanceId"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"KmsInstance": map[string]any{
		"InstanceId": in.ID, "InstanceName": in.Name, "KeyNum": in.KeyQuota, "KeyUsed": in.KeysUsed,
		"Type": in.Type, "ProductType": in.Type, "Spec": 1000, "Status": "Connected", "SecretNum": "0",
		"CreateTime": isoTime(in.CreatedAt), "StartDate": isoTime(in.CreatedAt), "EndDate": "",
		"HsmDomain": in.HSMDomain,
	}}, nil
}
