package api

// Handlers of a key's lifecycle: automatic rotation, scheduled deletion and
// deletion protection.

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
