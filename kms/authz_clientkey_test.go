package kms

import (
	"errors"
	"net/netip"
	"testing"
)

// A client-key caller is decided by its AAP's policies alone: instance,
// permission, resource (key id, pattern, or the alias the request named),
// network rules; and it may do nothing but key operations.
func TestAuthorizeClientKey_OnlyWhatAPolicyCovers(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	other := e.createKey(t, CreateKeyInput{})
	inst2, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Name: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateAlias(bg, e.caller, AliasInput{Name: "alias/mine", Key: k.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateAlias(bg, e.caller, AliasInput{Name: "alias/theirs", Key: other.ID}); err != nil {
		t.Fatal(err)
	}
	pol := func(mod func(*ClientKeyPolicy)) ClientKeyPolicy {
		p := ClientKeyPolicy{Name: "p", KmsInstance: e.inst, Permissions: []string{PermissionKeyUser}, Resources: []string{"key/*"}}
		if mod != nil {
			mod(&p)
		}
		return p
	}
	caller := func(src, alias string, ps ...ClientKeyPolicy) Caller {
		return Caller{AccountID: e.caller.AccountID, Principal: "acs:kms::" + e.caller.AccountID + ":aap/app", Kind: "clientkey",
			AccessKeyID: "KAAP.test", SourceIP: src, Client: &ClientKeyCaller{ID: "KAAP.test", AAPName: "app", Policies: ps, NamedAlias: alias}}
	}
	for _, tc := range []struct {
		name   string
		c      Caller
		action string
		allow  bool
	}{
		{"key/* on the key's instance", caller("127.0.0.1", "", pol(nil)), "kms:Encrypt", true},
		{"no policy", caller("127.0.0.1", ""), "kms:Encrypt", false},
		{"another instance", caller("127.0.0.1", "", pol(func(p *ClientKeyPolicy) { p.KmsInstance = inst2.ID })), "kms:Encrypt", false},
		{"the secret permission only", caller("127.0.0.1", "", pol(func(p *ClientKeyPolicy) { p.Permissions = []string{PermissionSecretUser} })), "kms:Encrypt", false},
		{"the key by id", caller("127.0.0.1", "", pol(func(p *ClientKeyPolicy) { p.Resources = []string{"key/" + k.ID} })), "kms:Decrypt", true},
		{"another key by id", caller("127.0.0.1", "", pol(func(p *ClientKeyPolicy) { p.Resources = []string{"key/" + other.ID} })), "kms:Decrypt", false},
		{"the alias the request named", caller("127.0.0.1", "alias/mine", pol(func(p *ClientKeyPolicy) { p.Resources = []string{"alias/mine"} })), "kms:Encrypt", true},
		{"an alias resource, the key named by id", caller("127.0.0.1", "", pol(func(p *ClientKeyPolicy) { p.Resources = []string{"alias/mine"} })), "kms:Encrypt", false},
		{"an alias of another key", caller("127.0.0.1", "alias/theirs", pol(func(p *ClientKeyPolicy) { p.Resources = []string{"alias/theirs"} })), "kms:Encrypt", false},
		{"a network rule listing the source", caller("10.1.2.3", "", pol(func(p *ClientKeyPolicy) {
			p.Restricted, p.Sources = true, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})), "kms:Encrypt", true},
		{"a network rule not listing the source", caller("127.0.0.1", "", pol(func(p *ClientKeyPolicy) {
			p.Restricted, p.Sources = true, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})), "kms:Encrypt", false},
		{"network rules with no address", caller("127.0.0.1", "", pol(func(p *ClientKeyPolicy) { p.Restricted = true })), "kms:Encrypt", false},
		{"a second policy that covers", caller("127.0.0.1", "", pol(func(p *ClientKeyPolicy) { p.KmsInstance = inst2.ID }), pol(nil)), "kms:Encrypt", true},
		{"a management action", caller("127.0.0.1", "", pol(nil)), "kms:ScheduleKeyDeletion", false},
		{"reading metadata", caller("127.0.0.1", "", pol(nil)), "kms:DescribeKey", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.svc.authorizeKey(bg, tc.c, tc.action, e.key(t, k.ID), nil)
			if tc.allow && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.allow && !errors.Is(err, ErrNoPermission) {
				t.Fatalf("err = %v, want ErrNoPermission", err)
			}
		})
	}
	// Nothing account-wide either.
	if err := e.svc.authorizeAccount(bg, caller("127.0.0.1", "", pol(nil)), "kms:CreateKey"); !errors.Is(err, ErrNoPermission) {
		t.Fatalf("CreateKey by a client key: %v", err)
	}
	if _, _, err := e.svc.CreateKey(bg, caller("127.0.0.1", "", pol(nil)), CreateKeyInput{DKMSInstanceID: e.inst}); !errors.Is(err, ErrNoPermission) {
		t.Fatalf("CreateKey by a client key: %v", err)
	}
}
