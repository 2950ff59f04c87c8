package node

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
)

// The cloud-shaped actions on a real 3-node cluster: regions and zones come
// from what the nodes advertise in gossip, and a KMS instance bound to a
// network refuses, on every node, a request whose TCP source address
// (real sockets on 127.0.0.x) lies outside it.

func TestCloud_RegionsZonesAndBoundNetworksAcrossTheCluster(t *testing.T) {
	c := newTestCluster(t, 3)
	var endpoints []string
	for _, n := range c.nodes {
		endpoints = append(endpoints, n.HTTPAddr())
	}
	slices.Sort(endpoints)
	waitFor(t, "DescribeRegions to list every node's endpoint", 10*time.Second, func() bool {
		m, _, err := c.call(0, "DescribeRegions", nil)
		if err != nil {
			return false
		}
		regions := m["Regions"].(map[string]any)["Region"].([]any)
		if len(regions) != 1 {
			return false
		}
		r := regions[0].(map[string]any)
		var got []string
		for _, e := range r["Endpoints"].(map[string]any)["Endpoint"].([]any) {
			got = append(got, e.(string))
		}
		return r["RegionId"] == "local" && slices.Equal(got, endpoints)
	})

	key := c.createKey(0, "bound")
	c.mustCall(0, "CreateNetworkRule", map[string]string{"Name": "second-loopback", "Type": "Private", "SourcePrivateIp": `["127.0.0.2"]`})
	// zone-1 and zone-2 are the other nodes' (gossip), zone-9 nobody's.
	_, _, err := c.call(0, "ConnectKmsInstance", map[string]string{"KmsInstanceId": c.creds.InstanceID, "VpcId": "second-loopback", "ZoneIds": "zone-9"})
	if apiCode(err) != "InvalidParameter" {
		t.Fatalf("ConnectKmsInstance in zone-9: %v, want InvalidParameter", err)
	}
	_, resp, err := c.call(0, "ConnectKmsInstance", map[string]string{"KmsInstanceId": c.creds.InstanceID, "VpcId": "second-loopback", "ZoneIds": "zone-1,zone-2"})
	if err != nil {
		t.Fatalf("ConnectKmsInstance: %v", err)
	}
	after := client.WithMinIndex(resp.Index)

	// From 127.0.0.1: refused by every node once it has applied the binding.
	for i := range c.nodes {
		_, _, err := c.call(i, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk="}, after)
		if apiCode(err) != "Forbidden.NoPermission" {
			t.Fatalf("Encrypt from 127.0.0.1 on n%d: %v, want Forbidden.NoPermission", i+1, err)
		}
	}
	// From 127.0.0.2, inside the bound network: served.
	from2 := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	for i, n := range c.nodes {
		cl, err := client.New(n.Endpoint(), c.creds.AccessKeyID, c.creds.AccessKeySecret, client.WithHTTPClient(from2))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Call(ctxT(t), "Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk="}, after); err != nil {
			if strings.Contains(err.Error(), "assign requested address") {
				t.Fatalf("this host cannot bind 127.0.0.2: %v", err)
			}
			t.Fatalf("Encrypt from 127.0.0.2 on n%d: %v", i+1, err)
		}
	}
	m := c.mustCall(2, "GetKmsInstance", map[string]string{"KmsInstanceId": c.creds.InstanceID}, after)
	in := m["KmsInstance"].(map[string]any)
	if in["VpcId"] != "second-loopback" || in["ZoneIds"] != "zone-1,zone-2" || in["VpcNum"] != float64(1) {
		t.Fatalf("GetKmsInstance on n3: %v", in)
	}
}

// DescribeRegions groups the nodes by their --region: every node answers
// the same regions, each with the endpoints of its own nodes.
func TestCloud_DescribeRegionsGroupsNodesByRegion(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{regions: []string{"r-east", "r-west", "r-east"}})
	want := map[string][]string{
		"r-east": {c.nodes[0].HTTPAddr(), c.nodes[2].HTTPAddr()},
		"r-west": {c.nodes[1].HTTPAddr()},
	}
	for _, l := range want {
		slices.Sort(l)
	}
	for i := range c.nodes {
		waitFor(t, fmt.Sprintf("n%d lists both regions with their nodes", i+1), 10*time.Second, func() bool {
			m, _, err := c.call(i, "DescribeRegions", nil)
			if err != nil {
				return false
			}
			regions := m["Regions"].(map[string]any)["Region"].([]any)
			got := map[string][]string{}
			for _, r := range regions {
				r := r.(map[string]any)
				var eps []string
				for _, e := range r["Endpoints"].(map[string]any)["Endpoint"].([]any) {
					eps = append(eps, e.(string))
				}
				slices.Sort(eps)
				got[r["RegionId"].(string)] = eps
			}
			return fmt.Sprint(got) == fmt.Sprint(want)
		})
	}
}
