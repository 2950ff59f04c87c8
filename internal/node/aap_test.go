package node

import (
	"errors"
	"reflect"
	"testing"

	"github.com/raftkms/raftkms/kms"
)

// Deleting a client key, or changing a network rule, through one node has
// been applied by every node when the call returns: each node's own
// catalogue (what the instance face reads) already shows it, without a
// read-index round trip.
func TestCluster_ClientKeyDeletionAndRuleChangeAreEverywhereOnReturn(t *testing.T) {
	c := newTestCluster(t, 3)
	c.mustCall(0, "CreateNetworkRule", map[string]string{"Name": "office", "Type": "Private", "SourcePrivateIp": `["10.0.0.0/8"]`})
	c.mustCall(1, "CreatePolicy", map[string]string{"Name": "keys", "KmsInstance": c.creds.InstanceID,
		"Permissions": `["RbacPermission/Template/CryptoServiceKeyUser"]`, "Resources": `["key/*"]`,
		"AccessControlRules": `{"NetworkRules":["office"]}`})
	c.mustCall(2, "CreateApplicationAccessPoint", map[string]string{"Name": "app", "Policies": `["keys"]`})
	id := c.mustCall(0, "CreateClientKey", map[string]string{"AapName": "app", "Password": "Passw0rd-cluster"})["ClientKeyId"].(string)

	for i, n := range c.nodes {
		got, err := n.Service().ClientKey(ctxT(t), id)
		if err != nil || got.AAPName != "app" || len(got.Policies) != 1 {
			t.Fatalf("n%d resolves %+v, %v", i+1, got, err)
		}
	}

	c.mustCall(1, "UpdateNetworkRule", map[string]string{"Name": "office", "SourcePrivateIp": `["127.0.0.1"]`})
	for i, n := range c.nodes {
		r, ok := n.FSM().NetworkRule(c.creds.AccountID, "office")
		if !ok || !reflect.DeepEqual(r.SourcePrivateIP, []string{"127.0.0.1"}) {
			t.Errorf("n%d has not applied the rule change when UpdateNetworkRule returned: %+v", i+1, r)
		}
	}

	c.mustCall(2, "DeleteClientKey", map[string]string{"ClientKeyId": id})
	for i, n := range c.nodes {
		if _, ok := n.FSM().ClientKey(id); ok {
			t.Errorf("n%d still has the client key when DeleteClientKey returned", i+1)
		}
		if _, err := n.Service().ClientKey(ctxT(t), id); !errors.Is(err, kms.ErrClientKeyUnknown) {
			t.Errorf("n%d resolves a deleted client key: %v", i+1, err)
		}
	}
}
