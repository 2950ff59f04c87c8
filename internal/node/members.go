package node

import (
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

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

// serverLevels lists the Raft configuration's servers with the log level
// gossip says each runs, for the service's upgrade gate. A member gossip
// remembers as failed or left keeps its last advertised level; a server
// gossip does not know at all counts as the base level (the safe side).
func (n *Node) serverLevels() ([]kms.ServerLevel, error) {
	servers, err := n.store.Servers()
	if err != nil {
		return nil, err
	}
	out := make([]kms.ServerLevel, 0, len(servers))
	for _, sv := range servers {
		l := kms.ServerLevel{ID: sv.ID, Level: fsm.BaseLevel}
		switch {
		case sv.ID == n.cfg.NodeID:
			l.Level, l.Version, l.Known = fsm.LogLevel, n.cfg.Version, true
		case n.gossip != nil:
			if m, ok := n.gossip.Member(sv.ID); ok {
				l.Level, l.Version, l.Known = m.LogLevel(), m.Version, true
			}
		}
		out = append(out, l)
	}
	return out, nil
}
