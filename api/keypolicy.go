package api

import "github.com/raftkms/raftkms/kms"

// Handlers of a key's policy document.

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
	idx, err := s.cfg.Service.SetKeyPolicy(c.ctx, c.caller, kms.KeyPolicyInput{
		Key: c.p.str("KeyId"), PolicyName: c.p.str("PolicyName"), Policy: c.p.str("Policy"), BypassLockoutCheck: bypass,
	})
	c.index = idx
	return nil, err
}
