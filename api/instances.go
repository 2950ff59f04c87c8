package api

// Handlers of KMS instances as tenants see them.

func (s *Server) listKmsInstances(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	insts, err := s.cfg.Service.ListKmsInstances(c.ctx, c.caller, page)
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(insts.Items))
	for _, in := range insts.Items {
		list = append(list, map[string]any{"KmsInstanceId": in.ID, "KmsInstanceArn": s.cfg.Service.InstanceArn(in)})
	}
	return map[string]any{"KmsInstances": map[string]any{"KmsInstance": list}, "TotalCount": insts.Total, "PageNumber": insts.Page.Number, "PageSize": insts.Page.Size}, nil
}

func (s *Server) getKmsInstance(c *call) (any, error) {
	in, err := s.cfg.Service.GetKmsInstance(c.ctx, c.caller, c.p.str("KmsInstanceId"))
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"InstanceId": in.ID, "InstanceName": in.Name, "KeyNum": in.KeyQuota, "KeyUsed": in.KeysUsed,
		"Type": in.Type, "ProductType": in.Type, "Spec": 1000, "Status": "Connected", "SecretNum": "0",
		"CreateTime": isoTime(in.CreatedAt), "StartDate": isoTime(in.CreatedAt), "EndDate": "",
		"HsmDomain": in.HSMDomain,
	}
	s.instanceNetworkFields(in, out)
	// The CA that signs every node's instance endpoint certificate: a
	// client verifies the endpoint with it (the reference's field name).
	if ca, ok := s.cfg.Service.InstanceCAPEM(); ok {
		out["CaCertificateChainPem"] = ca
	}
	return map[string]any{"KmsInstance": out}, nil
}
