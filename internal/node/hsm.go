package node

import (
	"encoding/hex"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkms/raftkms/cluster"
	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/kms"
)

// openHSM opens the node's PKCS#11 token with its metrics on the node's
// registry. A token that cannot be opened, or that does not hold the
// domain's key (checked by kms.New), keeps the node from starting: an
// operator who attached an HSM wants to hear at once that it is not
// usable.
func openHSM(cfg Config, reg prometheus.Registerer, logger hclog.Logger) (*hsm.Token, error) {
	if cfg.HSMDomain == "" {
		return nil, fmt.Errorf("an HSM needs the HSM domain this node serves (--hsm-domain)")
	}
	c := *cfg.HSM
	c.Metrics = reg
	if c.Logger == nil {
		c.Logger = logger
	}
	tok, err := hsm.Open(c)
	if err != nil {
		return nil, fmt.Errorf("HSM (module %s, token %q): %w", c.ModulePath, c.TokenLabel, err)
	}
	return tok, nil
}

// hsmMeta is the gossip form of this node's HSM status.
func hsmMeta(st kms.HSMStatus) []cluster.HSMDomain {
	return []cluster.HSMDomain{{Domain: st.Domain, Health: st.Health, CheckValue: hex.EncodeToString(st.CheckValue)}}
}

// publishHSM puts a new HSM status into this node's gossip metadata, so
// other nodes stop (or start) routing the domain's keys here.
func (n *Node) publishHSM(st kms.HSMStatus) {
	if n.gossip == nil {
		return
	}
	if err := n.gossip.UpdateMeta(func(m *cluster.Meta) { m.HSM = hsmMeta(st) }); err != nil {
		n.log.Warn("could not advertise the HSM status", "health", st.Health, "error", err)
	}
}

// hsmPeers lists the alive members that advertise domain, as the service
// routes hardware keys to them.
func (n *Node) hsmPeers(domain string) []kms.HSMPeer {
	if n.gossip == nil {
		return nil
	}
	var out []kms.HSMPeer
	for _, m := range n.gossip.AliveWith(nil) {
		for _, d := range m.HSM {
			if d.Domain != domain {
				continue
			}
			kcv, err := hex.DecodeString(d.CheckValue)
			if err != nil {
				continue
			}
			out = append(out, kms.HSMPeer{ID: m.ID, ClusterAddr: m.ClusterAddr, Zone: m.Zone, Health: d.Health, CheckValue: kcv})
		}
	}
	return out
}

// closeHSM closes the token after everything that used it has stopped.
func (n *Node) closeHSM() {
	if n.hsm != nil {
		if err := n.hsm.Close(); err != nil {
			n.log.Warn("closing the HSM", "error", err)
		}
	}
}
