package kms

import (
	"context"

	"github.com/raftkms/raftkms/fsm"
)

// newKeyVersion makes a new version of k's material: in a token of the
// key's HSM domain for a hardware key, in software otherwise.
func (s *Service) newKeyVersion(ctx context.Context, k *fsm.Key, now int64) (fsm.KeyVersion, error) {
	if domain := s.instanceDomain(k.InstanceID); domain != "" {
		return s.hsmVersion(ctx, k.ID, k.Spec, k.Usage, domain, now)
	}
	return s.newVersion(k.ID, k.Spec, now)
}
