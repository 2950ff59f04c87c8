package kms

import (
	"context"
	"net/netip"

	"github.com/raftkms/raftkms/fsm"
)

// Client keys (the instance API) are authorized by their application access
// point's permission policies alone, as the reference does: RAM policies
// and key policies do not apply to them. A client key may perform a key
// operation when one of its AAP's policies
//
//   - covers the key's KMS instance,
//   - grants PermissionKeyUser (every cryptographic operation on a key),
//   - names the key as a resource: key/<KeyId> or a pattern matching it
//     (key/*), or alias/<name> when the request named the key by that alias
//     and the alias points to it,
//   - and, if it names network rules, lists the request's source address in
//     one of their address blocks.
//
// Anything that is not a key operation (management, account-wide actions)
// is refused to a client key.

// keyUserActions are the actions PermissionKeyUser grants.
var keyUserActions = cryptoActions

// authorizeClientKey decides action on k for a client-key caller.
func (s *Service) authorizeClientKey(ctx context.Context, c Caller, action string, k *fsm.Key) error {
	ev := newEvaluation(ctx)
	if !ev.anyGlob(keyUserActions, action) || k.AccountID != c.AccountID {
		if ev.stopped() {
			return ev.fail(action)
		}
		return denial(action, c)
	}
	resources := []string{"key/" + k.ID}
	if a := c.Client.NamedAlias; a != "" {
		if al, ok := s.fsm.Alias(k.AccountID, a); ok && al.KeyID == k.ID {
			resources = append(resources, a)
		}
	}
	return clientKeyGrant(ev, c, action, k.InstanceID, PermissionKeyUser, resources)
}

// clientKeyGrant is the common end of a client key's authorization: some
// policy of its AAP covers instance, grants permission, names one of
// resources (patterns allowed) and, if it names network rules, lists the
// request's source address.
func clientKeyGrant(ev *evaluation, c Caller, action, instance, permission string, resources []string) error {
	src, srcErr := netip.ParseAddr(c.SourceIP)
	for _, p := range c.Client.Policies {
		if p.KmsInstance != instance || !contains(p.Permissions, permission) {
			continue
		}
		covered := false
		for _, r := range resources {
			if ev.anyGlob(p.Resources, r) {
				covered = true
				break
			}
		}
		if ev.stopped() {
			return ev.fail(action)
		}
		if !covered {
			continue
		}
		if !p.Restricted {
			return nil
		}
		if srcErr != nil {
			continue
		}
		for _, pfx := range p.Sources {
			if pfx.Contains(src.Unmap()) {
				return nil
			}
		}
	}
	return denial(action, c)
}
