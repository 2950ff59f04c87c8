package api

import "github.com/raftkms/raftkms/kms"

// Handlers of a key's lifecycle: automatic rotation, scheduled deletion and
// deletion protection.

func (s *Server) updateRotationPolicy(c *call) (any, error) {
	enable, err := c.p.optBoolean("EnableAutomaticRotation")
	if err != nil {
		return nil, err
	}
	idx, err := s.cfg.Service.UpdateRotationPolicy(c.ctx, c.caller, kms.RotationPolicyInput{
		Key: c.p.str("KeyId"), Enable: enable, Interval: c.p.str("RotationInterval"),
	})
	c.index = idx
	return nil, err
}

func (s *Server) scheduleKeyDeletion(c *call) (any, error) {
	days, err := c.p.optInteger("PendingWindowInDays")
	if err != nil {
		return nil, err
	}
	idx, err := s.cfg.Service.ScheduleKeyDeletion(c.ctx, c.caller, kms.KeyDeletionInput{Key: c.p.str("KeyId"), PendingWindowDays: days})
	c.index = idx
	return nil, err
}

func (s *Server) cancelKeyDeletion(c *call) (any, error) {
	idx, err := s.cfg.Service.CancelKeyDeletion(c.ctx, c.caller, c.p.str("KeyId"))
	c.index = idx
	return nil, err
}

func (s *Server) setDeletionProtection(c *call) (any, error) {
	enable, err := c.p.optBoolean("EnableDeletionProtection")
	if err != nil {
		return nil, err
	}
	idx, err := s.cfg.Service.SetDeletionProtection(c.ctx, c.caller, kms.DeletionProtectionInput{
		KeyArn: c.p.str("ProtectedResourceArn"), Enable: enable, Description: c.p.str("DeletionProtectionDescription"),
	})
	c.index = idx
	return nil, err
}
