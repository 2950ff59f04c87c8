package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
)

const otherAcct = "6543210987654321"

// aapHarness is an initialized catalogue with a second account (and its
// own instance), a network rule, a policy naming it, an AAP naming the
// policy, and a client key of the AAP.
func aapHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.init()
	h.mustApply(CmdCreateAccount, CreateAccountCmd{Now: 1500, Account: Account{ID: otherAcct, Name: "other"},
		AccessKey: AccessKey{ID: "LTAIother", AccountID: otherAcct, Principal: "acs:ram::" + otherAcct + ":root", Status: "Active"}})
	h.mustApply(CmdCreateInstance, CreateInstanceCmd{Instance: Instance{ID: "kst-other", AccountID: otherAcct, Type: "software"}})
	h.mustApply(CmdCreateNetworkRule, NetworkRuleCmd{Now: 2000, Rule: NetworkRule{AccountID: acct, Name: "office", Type: "Private", SourcePrivateIP: []string{"10.0.0.0/8"}}})
	h.mustApply(CmdCreatePermissionPolicy, PermissionPolicyCmd{Now: 2001, Policy: PermissionPolicy{AccountID: acct, Name: "keys", KmsInstance: inst,
		Permissions: []string{"RbacPermission/Template/CryptoServiceKeyUser"}, Resources: []string{"key/*"}, NetworkRules: []string{"office"}}})
	h.mustApply(CmdCreateAAP, AAPCmd{Now: 2002, AAP: AAP{AccountID: acct, Name: "app", AuthenticationMethod: "ClientKey", Policies: []string{"keys"}}})
	h.mustApply(CmdCreateClientKey, ClientKeyCmd{Now: 2003, Key: ClientKey{ID: "KAAP.1", AccountID: acct, AAPName: "app", KeyAlgorithm: "RSA_2048",
		PublicKey: []byte("pub"), Certificate: []byte("cert"), NotBefore: 2003, NotAfter: 9000}})
	return h
}

// Every refusal Apply owns — references to what the account does not
// have, duplicates, deletions of what is still named, limits — is an
// error that changes nothing.
func TestAAPApply_RefusalsChangeNothing(t *testing.T) {
	h := aapHarness(t)
	perm := []string{"RbacPermission/Template/CryptoServiceKeyUser"}
	cases := []struct {
		name string
		typ  CommandType
		cmd  any
		want error
	}{
		{"rule of a missing account", CmdCreateNetworkRule, NetworkRuleCmd{Rule: NetworkRule{AccountID: "0000000000000000", Name: "r"}}, ErrAccountNotFound},
		{"rule twice", CmdCreateNetworkRule, NetworkRuleCmd{Rule: NetworkRule{AccountID: acct, Name: "office"}}, ErrNetworkRuleExists},
		{"update of a missing rule", CmdUpdateNetworkRule, NetworkRuleCmd{Rule: NetworkRule{AccountID: acct, Name: "nope"}, SetSources: true}, ErrNetworkRuleNotFound},
		{"update of another account's rule", CmdUpdateNetworkRule, NetworkRuleCmd{Rule: NetworkRule{AccountID: otherAcct, Name: "office"}, SetSources: true}, ErrNetworkRuleNotFound},
		{"delete of a rule a policy names", CmdDeleteNetworkRule, NetworkRuleCmd{Rule: NetworkRule{AccountID: acct, Name: "office"}}, ErrResourceInUse},
		{"delete of a missing rule", CmdDeleteNetworkRule, NetworkRuleCmd{Rule: NetworkRule{AccountID: acct, Name: "nope"}}, ErrNetworkRuleNotFound},
		{"policy on a missing instance", CmdCreatePermissionPolicy, PermissionPolicyCmd{Policy: PermissionPolicy{AccountID: acct, Name: "p", KmsInstance: "kst-nope", Permissions: perm}}, ErrInstanceNotFound},
		{"policy on another account's instance", CmdCreatePermissionPolicy, PermissionPolicyCmd{Policy: PermissionPolicy{AccountID: acct, Name: "p", KmsInstance: "kst-other", Permissions: perm}}, ErrInstanceNotFound},
		{"policy naming a missing rule", CmdCreatePermissionPolicy, PermissionPolicyCmd{Policy: PermissionPolicy{AccountID: acct, Name: "p", KmsInstance: inst, NetworkRules: []string{"nope"}}}, ErrNetworkRuleNotFound},
		{"policy naming another account's rule", CmdCreatePermissionPolicy, PermissionPolicyCmd{Policy: PermissionPolicy{AccountID: otherAcct, Name: "p", KmsInstance: "kst-other", NetworkRules: []string{"office"}}}, ErrNetworkRuleNotFound},
		{"policy twice", CmdCreatePermissionPolicy, PermissionPolicyCmd{Policy: PermissionPolicy{AccountID: acct, Name: "keys", KmsInstance: inst}}, ErrPermissionPolicyExists},
		{"policy update to a missing rule", CmdUpdatePermissionPolicy, PermissionPolicyCmd{Policy: PermissionPolicy{AccountID: acct, Name: "keys", NetworkRules: []string{"nope"}}, SetAccessControls: true}, ErrNetworkRuleNotFound},
		{"delete of a policy an AAP names", CmdDeletePermissionPolicy, PermissionPolicyCmd{Policy: PermissionPolicy{AccountID: acct, Name: "keys"}}, ErrResourceInUse},
		{"AAP naming a missing policy", CmdCreateAAP, AAPCmd{AAP: AAP{AccountID: acct, Name: "a2", Policies: []string{"nope"}}}, ErrPermissionPolicyNotFound},
		{"AAP naming another account's policy", CmdCreateAAP, AAPCmd{AAP: AAP{AccountID: otherAcct, Name: "a2", Policies: []string{"keys"}}}, ErrPermissionPolicyNotFound},
		{"AAP with four policies", CmdCreateAAP, AAPCmd{AAP: AAP{AccountID: acct, Name: "a2", Policies: []string{"keys", "keys", "keys", "keys"}}}, ErrAAPLimitExceeded},
		{"AAP twice", CmdCreateAAP, AAPCmd{AAP: AAP{AccountID: acct, Name: "app", Policies: []string{"keys"}}}, ErrAAPExists},
		{"AAP update to a missing policy", CmdUpdateAAP, AAPCmd{AAP: AAP{AccountID: acct, Name: "app", Policies: []string{"nope"}}, SetPolicies: true}, ErrPermissionPolicyNotFound},
		{"delete of an AAP with client keys", CmdDeleteAAP, AAPCmd{AAP: AAP{AccountID: acct, Name: "app"}}, ErrResourceInUse},
		{"client key of a missing AAP", CmdCreateClientKey, ClientKeyCmd{Key: ClientKey{ID: "KAAP.2", AccountID: acct, AAPName: "nope"}}, ErrAAPNotFound},
		{"client key of another account's AAP", CmdCreateClientKey, ClientKeyCmd{Key: ClientKey{ID: "KAAP.2", AccountID: otherAcct, AAPName: "app"}}, ErrAAPNotFound},
		{"client key id twice", CmdCreateClientKey, ClientKeyCmd{Key: ClientKey{ID: "KAAP.1", AccountID: acct, AAPName: "app"}}, ErrClientKeyExists},
		{"client key without id", CmdCreateClientKey, ClientKeyCmd{Key: ClientKey{AccountID: acct, AAPName: "app"}}, ErrPreconditionFailed},
		{"delete of another account's client key", CmdDeleteClientKey, ClientKeyCmd{Key: ClientKey{ID: "KAAP.1", AccountID: otherAcct}}, ErrClientKeyNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := h.f.Hash()
			if err := h.apply(tc.typ, tc.cmd); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if after, _ := h.f.Hash(); after != before {
				t.Fatal("a refused command changed the catalogue")
			}
		})
	}
}

func TestAAPApply_RefusesClientKeysBeyondTheLimit(t *testing.T) {
	h := aapHarness(t)
	for i := 2; i <= MaxClientKeysPerAAP; i++ {
		h.mustApply(CmdCreateClientKey, ClientKeyCmd{Key: ClientKey{ID: fmt.Sprint("KAAP.", i), AccountID: acct, AAPName: "app"}})
	}
	err := h.apply(CmdCreateClientKey, ClientKeyCmd{Key: ClientKey{ID: "KAAP.over", AccountID: acct, AAPName: "app"}})
	if !errors.Is(err, ErrAAPLimitExceeded) {
		t.Fatalf("client key %d: %v", MaxClientKeysPerAAP+1, err)
	}
}

// Updates change only the fields their flags name; deletions in the order
// references allow leave nothing behind.
func TestAAPApply_UpdatesAndDeletions(t *testing.T) {
	h := aapHarness(t)
	h.mustApply(CmdUpdateNetworkRule, NetworkRuleCmd{Now: 3000, Rule: NetworkRule{AccountID: acct, Name: "office", SourcePrivateIP: []string{"192.168.1.7"}, Description: "ignored"}, SetSources: true})
	r, _ := h.f.NetworkRule(acct, "office")
	if !reflect.DeepEqual(r.SourcePrivateIP, []string{"192.168.1.7"}) || r.Description != "" || r.UpdatedAt != 3000 || r.CreatedAt != 2000 {
		t.Fatalf("rule after update: %+v", r)
	}
	h.mustApply(CmdUpdatePermissionPolicy, PermissionPolicyCmd{Now: 3001, Policy: PermissionPolicy{AccountID: acct, Name: "keys", Resources: []string{"alias/*"}, Description: "d"}, SetResources: true, SetDescription: true})
	p, _ := h.f.PermissionPolicy(acct, "keys")
	if !reflect.DeepEqual(p.Resources, []string{"alias/*"}) || p.Description != "d" || len(p.Permissions) != 1 || !reflect.DeepEqual(p.NetworkRules, []string{"office"}) {
		t.Fatalf("policy after update: %+v", p)
	}
	h.mustApply(CmdUpdateAAP, AAPCmd{Now: 3002, AAP: AAP{AccountID: acct, Name: "app", Description: "x"}, SetDescription: true})
	if a, _ := h.f.AAP(acct, "app"); a.Description != "x" || !reflect.DeepEqual(a.Policies, []string{"keys"}) {
		t.Fatalf("AAP after update: %+v", a)
	}
	if got := h.f.ClientKeys(acct, "app"); len(got) != 1 || got[0].ID != "KAAP.1" {
		t.Fatalf("ClientKeys = %v", got)
	}
	if got := h.f.ClientKeys(otherAcct, ""); len(got) != 0 {
		t.Fatalf("another account sees %d client keys", len(got))
	}
	h.mustApply(CmdDeleteClientKey, ClientKeyCmd{Key: ClientKey{ID: "KAAP.1", AccountID: acct}})
	if _, ok := h.f.ClientKey("KAAP.1"); ok {
		t.Fatal("deleted client key still there")
	}
	h.mustApply(CmdDeleteAAP, AAPCmd{AAP: AAP{AccountID: acct, Name: "app"}})
	h.mustApply(CmdDeletePermissionPolicy, PermissionPolicyCmd{Policy: PermissionPolicy{AccountID: acct, Name: "keys"}})
	h.mustApply(CmdDeleteNetworkRule, NetworkRuleCmd{Rule: NetworkRule{AccountID: acct, Name: "office"}})
	if len(h.f.AAPs(acct))+len(h.f.PermissionPolicies(acct))+len(h.f.NetworkRules(acct)) != 0 {
		t.Fatal("objects left after deleting them all")
	}
}

// Each record type survives a snapshot: the restored catalogue has the
// same hash and the same records.
func TestAAPSnapshot_RoundTripsEveryRecordType(t *testing.T) {
	h := aapHarness(t)
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
		t.Fatal(err)
	}
	if a, b := fmt.Sprint(h.f.Hash()), fmt.Sprint(g.Hash()); a != b {
		t.Fatalf("hash %s, restored %s", a, b)
	}
	checks := []struct {
		name      string
		orig, got any
	}{
		{"network rule", first(h.f.NetworkRule(acct, "office")), first(g.NetworkRule(acct, "office"))},
		{"permission policy", first(h.f.PermissionPolicy(acct, "keys")), first(g.PermissionPolicy(acct, "keys"))},
		{"AAP", first(h.f.AAP(acct, "app")), first(g.AAP(acct, "app"))},
		{"client key", first(h.f.ClientKey("KAAP.1")), first(g.ClientKey("KAAP.1"))},
	}
	for _, c := range checks {
		if reflect.ValueOf(c.got).IsNil() || !reflect.DeepEqual(c.orig, c.got) {
			t.Errorf("%s: restored %+v, want %+v", c.name, c.got, c.orig)
		}
	}
}

func first[T any](v T, _ bool) T { return v }

// A catalogue without application access objects writes none of their
// records, so its snapshot is what builds before them wrote.
func TestAAPSnapshot_NoObjectsNoRecords(t *testing.T) {
	h := newHarness(t)
	h.init()
	var buf bytes.Buffer
	if err := h.f.cat.aap.writeRecords(&buf); err != nil || buf.Len() != 0 {
		t.Fatalf("empty state wrote %d bytes (%v)", buf.Len(), err)
	}
}

// A snapshot whose objects name what it does not hold is refused before
// anything is applied.
func TestAAPSnapshot_RefusesDanglingReferences(t *testing.T) {
	cases := map[string]func(c *catalogue){
		"client key of a missing AAP": func(c *catalogue) { delete(c.aap.aaps, objectKey(acct, "app")) },
		"AAP naming a missing policy": func(c *catalogue) {
			delete(c.aap.clientKeys, "KAAP.1")
			delete(c.aap.policies, objectKey(acct, "keys"))
		},
		"policy naming a missing rule": func(c *catalogue) { delete(c.aap.rules, objectKey(acct, "office")) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			h := aapHarness(t)
			cat := h.f.cat.shallowCopy()
			damage(cat)
			var buf bytes.Buffer
			if err := writeSnapshot(&buf, cat, 99, testSnapshotKey); err != nil {
				t.Fatal(err)
			}
			g := newTestFSM()
			before, _ := g.Hash()
			if err := g.Restore(io.NopCloser(&buf)); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("restore: %v, want ErrBadSnapshot", err)
			}
			if after, _ := g.Hash(); after != before {
				t.Fatal("a refused snapshot changed the catalogue")
			}
		})
	}
}
