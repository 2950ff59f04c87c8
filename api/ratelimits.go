package api

import (
	"strconv"

	"github.com/raftkms/raftkms/kms"
)

// rateLimits reads an account's per-node rate limits (GET
// /v1/operator/ratelimits, AccountId).
func (s *Server) rateLimits(c *call) (any, error) {
	limits, err := s.cfg.Service.RateLimits(c.ctx, c.caller, c.p.str("AccountId"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"RateLimits": limits}, nil
}

// setRateLimit sets an account's per-node rate limit for a class (POST
// /v1/operator/ratelimits, AccountId, Class, Rate); for the operator
// account's root.
func (s *Server) setRateLimit(c *call) (any, error) {
	rate, perr := strconv.ParseFloat(c.p.str("Rate"), 64)
	if perr != nil {
		return nil, invalidParam("Rate", "requests per second, e.g. 100 or 0.5 (0 removes the limit)")
	}
	idx, err := s.cfg.Service.SetRateLimit(c.ctx, c.caller, kms.RateLimitInput{AccountID: c.p.str("AccountId"), Class: c.p.str("Class"), Rate: rate})
	if err != nil {
		return nil, err
	}
	c.index = idx
	return map[string]any{}, nil
}

// instanceLimits reads how many KMS instances an account may have (GET
// /v1/operator/instance-limits, AccountId); an account's root reads its
// own.
func (s *Server) instanceLimits(c *call) (any, error) {
	max, used, err := s.cfg.Service.InstanceLimit(c.ctx, c.caller, c.p.str("AccountId"))
	if err != nil {
		return nil, err
	}
	account := c.p.str("AccountId")
	if account == "" {
		account = c.caller.AccountID
	}
	return map[string]any{"AccountId": account, "MaxInstances": max, "Instances": used}, nil
}

// setInstanceLimit sets how many KMS instances an account may have (POST
// /v1/operator/instance-limits, AccountId, MaxInstances); for the operator
// account's root.
func (s *Server) setInstanceLimit(c *call) (any, error) {
	max, err := strconv.Atoi(c.p.str("MaxInstances"))
	if err != nil {
		return nil, invalidParam("MaxInstances", "a whole number of instances, e.g. 20")
	}
	idx, err := s.cfg.Service.SetInstanceLimit(c.ctx, c.caller, c.p.str("AccountId"), max)
	if err != nil {
		return nil, err
	}
	c.index = idx
	return map[string]any{}, nil
}
