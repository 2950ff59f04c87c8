package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TagResources is all or none: a resource that fails leaves every other
// resource of the command as it was.
func TestTagResourcesApply_AllOrNone(t *testing.T) {
	h := secretHarness(t)
	h.createKey("k2", "k2v1")
	h.mustApply(CmdTagResources, TagResourcesCmd{Now: 4000, AccountID: acct, KeyIDs: []string{"k1", "k2"}, Secrets: []string{"s"}, Tags: map[string]string{"env": "prod"}})
	tagsOf := func() string {
		k1, _ := h.f.Key("k1")
		k2, _ := h.f.Key("k2")
		return fmt.Sprint(k1.Tags, k2.Tags, h.secret("s").Tags)
	}
	if got := tagsOf(); got != "map[env:prod] map[env:prod] map[env:prod]" {
		t.Fatalf("after TagResources: %s", got)
	}
	many := map[string]string{}
	for i := range MaxTagsPerKey - 1 {
		many[fmt.Sprint("t", i)] = "v"
	}
	h.mustApply(CmdTagResources, TagResourcesCmd{AccountID: acct, KeyIDs: []string{"k2"}, Tags: many})
	before := tagsOf()
	for _, tc := range []struct {
		what string
		cmd  TagResourcesCmd
		want error
	}{
		{"a missing key", TagResourcesCmd{AccountID: acct, KeyIDs: []string{"k1", "nope"}, Tags: map[string]string{"a": "b"}}, ErrKeyNotFound},
		{"another account's key", TagResourcesCmd{AccountID: "other", KeyIDs: []string{"k1"}, Tags: map[string]string{"a": "b"}}, ErrKeyNotFound},
		{"a 21st tag on the second key", TagResourcesCmd{AccountID: acct, KeyIDs: []string{"k1", "k2"}, Tags: map[string]string{"a": "b"}}, ErrTagLimit},
		{"a missing secret after a key", TagResourcesCmd{AccountID: acct, KeyIDs: []string{"k1"}, Secrets: []string{"gone"}, Remove: []string{"env"}}, ErrSecretNotFound},
	} {
		if err := h.apply(CmdTagResources, tc.cmd); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.what, err, tc.want)
		}
		if got := tagsOf(); got != before {
			t.Errorf("%s changed tags: %s, was %s", tc.what, got, before)
		}
	}
	h.mustApply(CmdTagResources, TagResourcesCmd{AccountID: acct, KeyIDs: []string{"k1", "k2"}, Secrets: []string{"s"}, All: true})
	if got := tagsOf(); got != "map[] map[] map[]" {
		t.Fatalf("after All: %s", got)
	}
}

// An instance without networks encodes as before the fields existed.
func TestInstance_NetworkFieldsLeaveOldRecordsUnchanged(t *testing.T) {
	in := Instance{ID: inst, AccountID: acct, Type: "software", KeyQuota: 1000}
	b, err := msgpack.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"vpc", "vsw", "zones", "bind"} {
		if _, ok := m[k]; ok {
			t.Errorf("an unbound instance encodes %q", k)
		}
	}
}

func TestConnectInstanceApply_NamesRulesOfTheAccount(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.mustApply(CmdCreateNetworkRule, NetworkRuleCmd{Now: 2000, Rule: NetworkRule{AccountID: acct, Name: "office", Type: "Private", SourcePrivateIP: []string{"10.0.0.0/8"}}})
	h.refused("a missing rule", ErrNetworkRuleNotFound, CmdConnectInstance, ConnectInstanceCmd{AccountID: acct, InstanceID: inst, VpcID: "lab"})
	h.refused("a vSwitch outside the rule", ErrPreconditionFailed, CmdConnectInstance, ConnectInstanceCmd{AccountID: acct, InstanceID: inst, VpcID: "office", VSwitchIDs: []string{"192.168.0.0/16"}})
	h.refused("another account's instance", ErrInstanceNotFound, CmdConnectInstance, ConnectInstanceCmd{AccountID: "other", InstanceID: inst, VpcID: "office"})
	h.mustApply(CmdConnectInstance, ConnectInstanceCmd{AccountID: acct, InstanceID: inst, VpcID: "office", VSwitchIDs: []string{"10.0.0.0/8"}, ZoneIDs: []string{"a"}})
	h.mustApply(CmdBindInstanceVpcs, BindInstanceVpcsCmd{AccountID: acct, InstanceID: inst, Vpcs: []InstanceVpc{{VpcID: "office"}}})
	in, _ := h.f.Instance(inst)
	if got := in.BoundNetworks(); len(got) != 1 || got[0] != "office" {
		t.Fatalf("BoundNetworks = %v", got)
	}
	h.refused("deleting a bound rule", ErrResourceInUse, CmdDeleteNetworkRule, NetworkRuleCmd{Rule: NetworkRule{AccountID: acct, Name: "office"}})

	// The binding survives a snapshot.
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
		t.Fatal(err)
	}
	got, _ := g.Instance(inst)
	if got.VpcID != "office" || len(got.VSwitchIDs) != 1 || len(got.ZoneIDs) != 1 || len(got.BindVpcs) != 1 {
		t.Fatalf("restored instance: %+v", got)
	}
}
