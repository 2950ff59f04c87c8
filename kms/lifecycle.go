package kms

import (
	"context"
	"fmt"
	"strings"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// Deletion window bounds (days).
const (
	MinPendingWindowDays = 7
	MaxPendingWindowDays = 366
)

// RotationPolicyInput is what UpdateRotationPolicy changes.
type RotationPolicyInput struct {
	Key      string // id, alias or ARN
	Enable   *bool  // automatic rotation on or off; nil is refused (FieldAutomaticRotation)
	Interval string // between rotations, e.g. 30d or 2592000s; needed when Enable
}

// UpdateRotationPolicy turns automatic rotation on (with an interval) or
// off. Only symmetric keys with KMS-generated material rotate automatically.
func (s *Service) UpdateRotationPolicy(ctx context.Context, c Caller, in RotationPolicyInput) (uint64, error) {
	if in.Enable == nil {
		return 0, missing(FieldAutomaticRotation)
	}
	enable := *in.Enable
	var secs int64
	if enable {
		var err error
		if secs, err = parseRotationInterval(in.Interval); err != nil {
			return 0, err
		}
	}
	k, err := s.keyFor(ctx, c, "kms:UpdateRotationPolicy", FieldKey, in.Key, nil)
	if err != nil {
		return 0, err
	}
	if enable && (!kcrypto.IsSymmetric(k.Spec) || k.Origin != OriginKMS) {
		return 0, fmt.Errorf("%w: only symmetric keys with KMS-generated material rotate automatically; %s is %s with origin %s",
			ErrUnsupported, k.ID, k.Spec, k.Origin)
	}
	return s.propose(ctx, fsm.CmdUpdateRotationPolicy, fsm.RotationPolicyCmd{Now: s.nowMillis(), KeyID: k.ID, IntervalSec: secs})
}

// KeyDeletionInput is what ScheduleKeyDeletion needs.
type KeyDeletionInput struct {
	Key               string // id, alias or ARN
	PendingWindowDays *int   // MinPendingWindowDays to MaxPendingWindowDays; nil is refused
}

// ScheduleKeyDeletion puts a key in PendingDeletion; the leader deletes it
// (and all its material) once the window has passed.
func (s *Service) ScheduleKeyDeletion(ctx context.Context, c Caller, in KeyDeletionInput) (uint64, error) {
	if in.PendingWindowDays == nil {
		return 0, missing(FieldPendingWindowDays)
	}
	days := *in.PendingWindowDays
	if days < MinPendingWindowDays || days > MaxPendingWindowDays {
		return 0, invalid(FieldPendingWindowDays, fmt.Sprintf("must be between %d and %d", MinPendingWindowDays, MaxPendingWindowDays))
	}
	k, err := s.keyFor(ctx, c, "kms:ScheduleKeyDeletion", FieldKey, in.Key, nil)
	if err != nil {
		return 0, err
	}
	now := s.now()
	deleteAt := now.Add(time.Duration(days) * 24 * time.Hour)
	s.forgetKey(k)
	return s.propose(ctx, fsm.CmdScheduleKeyDeletion, fsm.KeyDeletionCmd{Now: now.UnixMilli(), KeyID: k.ID, DeleteDate: deleteAt.UnixMilli()})
}

// CancelKeyDeletion takes a key out of PendingDeletion.
func (s *Service) CancelKeyDeletion(ctx context.Context, c Caller, ref string) (uint64, error) {
	k, err := s.keyFor(ctx, c, "kms:CancelKeyDeletion", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdCancelKeyDeletion, fsm.KeyDeletionCmd{Now: s.nowMillis(), KeyID: k.ID})
}

// DeletionProtectionInput is what SetDeletionProtection changes.
type DeletionProtectionInput struct {
	KeyArn      string // the protected key, by ARN only, as the service does
	Enable      *bool  // protection on or off; nil is refused (FieldDeletionProtection)
	Description string // why the key is protected, at most 128 characters
}

// SetDeletionProtection turns deletion protection on or off for the key
// named by its ARN.
func (s *Service) SetDeletionProtection(ctx context.Context, c Caller, in DeletionProtectionInput) (uint64, error) {
	arn, desc := in.KeyArn, in.Description
	if arn == "" {
		return 0, missing(FieldProtectedResource)
	}
	if in.Enable == nil {
		return 0, missing(FieldDeletionProtection)
	}
	enable := *in.Enable
	if !strings.HasPrefix(arn, "acs:kms:") {
		return 0, invalid(FieldProtectedResource, "the key's ARN is expected: acs:kms:<region>:<account>:key/<key id>")
	}
	if len([]rune(desc)) > 128 {
		return 0, invalid(FieldProtectionReason, "at most 128 characters")
	}
	k, err := s.keyFor(ctx, c, "kms:SetDeletionProtection", FieldProtectedResource, arn, nil)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdSetDeletionProtection, fsm.DeletionProtectionCmd{Now: s.nowMillis(), KeyID: k.ID, Enabled: enable, Description: desc})
}
