package node

import "github.com/raftkms/raftkms/kms"

// members lists the cluster's alive nodes as gossip advertises them
// (region, zone, API endpoint) for the service's DescribeRegions and zone
// checks; without gossip (Single), this node alone.
func (n *Node) members() []kms.NodeInfo {
	if n.gossip == nil {
		return []kms.NodeInfo{{ID: n.cfg.NodeID, Region: n.cfg.Region, Zone: n.cfg.Zone,
			Endpoint: advertiseOr(n.cfg.AdvertiseHost, n.httpLn.Addr().String())}}
	}
	var out []kms.NodeInfo
	for _, m := range n.gossip.AliveWith(nil) {
		out = append(out, kms.NodeInfo{ID: m.ID, Region: m.Region, Zone: m.Zone, Endpoint: m.HTTPAddr})
	}
	return out
}
