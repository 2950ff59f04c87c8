package kms

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/raftkms/raftkms/fsm"
)

// keyFilterFields are the ListKeys filter keys and how each reads a key.
var keyFilterFields = map[string]func(*fsm.Key) string{
	"KeyState":        func(k *fsm.Key) string { return k.State },
	"KeySpec":         func(k *fsm.Key) string { return k.Spec },
	"KeyUsage":        func(k *fsm.Key) string { return k.Usage },
	"ProtectionLevel": func(k *fsm.Key) string { return k.ProtectionLevel },
	"CreatorType":     func(k *fsm.Key) string { return k.CreatorType },
	"DKMSInstanceId":  func(k *fsm.Key) string { return k.InstanceID },
}

// KeyFilter is one ListKeys filter: the key's field must be one of Values.
type KeyFilter struct {
	Key    string
	Values []string
}

// ParseKeyFilters parses ListKeys' Filters parameter: a JSON array of
// {"Key":…, "Values":[…]}, at most 10. Different keys are ANDed, the values
// of one key ORed.
func ParseKeyFilters(text string) ([]KeyFilter, error) {
	if text == "" {
		return nil, nil
	}
	var fs []KeyFilter
	if err := json.Unmarshal([]byte(text), &fs); err != nil {
		return nil, invalid(FieldFilters, `must be a JSON array like [{"Key":"KeyState","Values":["Enabled"]}]`)
	}
	if len(fs) > 10 {
		return nil, invalid(FieldFilters, "at most 10 filters")
	}
	for _, f := range fs {
		if _, ok := keyFilterFields[f.Key]; !ok {
			return nil, invalid(FieldFilters, fmt.Sprintf("%q is not a filter key (KeyState, KeySpec, KeyUsage, ProtectionLevel, CreatorType, DKMSInstanceId)", f.Key))
		}
		if len(f.Values) == 0 || len(f.Values) > 10 {
			return nil, invalid(FieldFilters, fmt.Sprintf("filter %s needs 1 to 10 Values", f.Key))
		}
	}
	return fs, nil
}

func matches(k *fsm.Key, fs []KeyFilter) bool {
	for _, f := range fs {
		v := keyFilterFields[f.Key](k)
		hit := false
		for _, want := range f.Values {
			if v == want {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// ListKeys returns one page of the caller's keys that pass the filters
// (oldest first) and the total count of those that pass.
func (s *Service) ListKeys(ctx context.Context, c Caller, p Page, filters []KeyFilter) (Listing[*fsm.Key], error) {
	p, err := p.normalize()
	if err != nil {
		return Listing[*fsm.Key]{}, err
	}
	if err := s.authorizeAccount(ctx, c, "kms:ListKeys"); err != nil {
		return Listing[*fsm.Key]{}, err
	}
	// One page is copied out of the FSM's ordered index: flat in the
	// number of keys without filters, one pass without sorting with them.
	var keep func(*fsm.Key) bool
	if len(filters) > 0 {
		keep = func(k *fsm.Key) bool { return matches(k, filters) }
	}
	page, total := s.fsm.KeysPage(c.AccountID, keep, p.offset(), p.Size)
	return Listing[*fsm.Key]{Items: page, Total: total, Page: p}, nil
}

// ListKmsInstances returns one page of the caller's KMS instances.
func (s *Service) ListKmsInstances(ctx context.Context, c Caller, p Page) (Listing[*fsm.Instance], error) {
	p, err := p.normalize()
	if err != nil {
		return Listing[*fsm.Instance]{}, err
	}
	if err := s.authorizeAccount(ctx, c, "kms:ListKmsInstances"); err != nil {
		return Listing[*fsm.Instance]{}, err
	}
	return listing(s.fsm.Instances(c.AccountID), p), nil
}

// GetKmsInstance returns one of the caller's KMS instances.
func (s *Service) GetKmsInstance(ctx context.Context, c Caller, id string) (*fsm.Instance, error) {
	if id == "" {
		return nil, missing(FieldInstanceID)
	}
	if err := s.authorizeAccount(ctx, c, "kms:GetKmsInstance"); err != nil {
		return nil, err
	}
	inst, ok := s.fsm.Instance(id)
	if !ok {
		if err := s.confirmAbsent(ctx, "the KMS instance"); err != nil {
			return nil, err
		}
		inst, ok = s.fsm.Instance(id)
	}
	if !ok || inst.AccountID != c.AccountID {
		return nil, fmt.Errorf("%w: %s", fsm.ErrInstanceNotFound, id)
	}
	return inst, nil
}

// InstanceArn is the ARN of a KMS instance.
func (s *Service) InstanceArn(in *fsm.Instance) string {
	return fmt.Sprintf("acs:kms:%s:%s:keystore/%s", s.cfg.Region, in.AccountID, in.ID)
}
