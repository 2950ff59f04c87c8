package kms

import (
	"context"
	"fmt"

	"github.com/raftkms/raftkms/fsm"
)

// Classes of requests for rate limits: an account's limit is set per class,
// and each face sorts its actions into them.
const (
	ClassSymmetric  = "symmetric"  // symmetric crypto: encrypt, decrypt, data keys
	ClassAsymmetric = "asymmetric" // asymmetric crypto and public keys
	ClassRead       = "read"       // management reads
	ClassWrite      = "write"      // management writes
)

// RateLimitInput is an account's per-node rate limit for one class.
type RateLimitInput struct {
	AccountID string
	Class     string  // ClassSymmetric, ClassAsymmetric, ClassRead or ClassWrite
	Rate      float64 // requests per second; 0 removes the limit
}

// SetRateLimit sets an account's per-node rate limit for one action class.
// Only the operator may.
func (s *Service) SetRateLimit(ctx context.Context, c Caller, in RateLimitInput) (uint64, error) {
	accountID, class, rate := in.AccountID, in.Class, in.Rate
	if !s.IsOperator(c) {
		return 0, fmt.Errorf("%w: rate limits are set by the operator account's root", ErrNoPermission)
	}
	if accountID == "" {
		return 0, missing(FieldAccountID)
	}
	switch class {
	case ClassSymmetric, ClassAsymmetric, ClassRead, ClassWrite:
	case "":
		return 0, missing(FieldRateClass)
	default:
		return 0, invalid(FieldRateClass, "must be symmetric, asymmetric, read or write")
	}
	if rate < 0 || rate > 1e6 {
		return 0, invalid(FieldRate, "requests per second, 0 (no limit) to 1000000")
	}
	ok, err := s.found(ctx, func() bool { _, ok := s.fsm.Account(accountID); return ok })
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: %s", fsm.ErrAccountNotFound, accountID)
	}
	return s.propose(ctx, fsm.CmdSetRateLimit, fsm.RateLimitCmd{Now: s.nowMillis(), AccountID: accountID, Class: class, Rate: rate})
}

// RateLimit returns an account's limit for a class (0: none).
func (s *Service) RateLimit(accountID, class string) float64 {
	a, ok := s.fsm.Account(accountID)
	if !ok {
		return 0
	}
	return a.RateLimits[class]
}

// RateLimits returns all of an account's limits.
func (s *Service) RateLimits(ctx context.Context, c Caller, accountID string) (map[string]float64, error) {
	if accountID == "" {
		accountID = c.AccountID
	}
	if accountID != c.AccountID && !s.IsOperator(c) {
		return nil, fmt.Errorf("%w: only the operator reads other accounts' limits", ErrNoPermission)
	}
	a, ok := s.fsm.Account(accountID)
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrAccountNotFound, accountID)
	}
	out := map[string]float64{}
	for k, v := range a.RateLimits {
		out[k] = v
	}
	return out, nil
}
