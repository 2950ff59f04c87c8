package cluster

import (
	"context"
	"time"
)

// verifyTimeout bounds one VerifyPeer call, so a member whose cluster port
// swallows packets cannot stall a reconciliation pass for long.
const verifyTimeout = 3 * time.Second

// peerCheck runs Config.VerifyPeer for the reconciler or the bootstrapper
// and remembers the members it refused, so that a refusal is logged once
// (and again only if the member moves or passes and later fails), not on
// every pass.
type peerCheck struct {
	c       *Cluster
	who     string            // "reconciler" or "bootstrap", for the log
	refused map[string]string // member id -> cluster address refused
}

func newPeerCheck(c *Cluster, who string) *peerCheck {
	return &peerCheck{c: c, who: who, refused: make(map[string]string)}
}

// ok reports whether member m's cluster port passes VerifyPeer. This node
// itself always passes.
func (p *peerCheck) ok(ctx context.Context, m Member) bool {
	if p.c.verify == nil || m.ID == p.c.id {
		return true
	}
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	err := p.c.verify(vctx, m.ID, m.ClusterAddr)
	cancel()
	if err != nil {
		p.c.metrics.peerRefused.Inc()
		if p.refused[m.ID] != m.ClusterAddr {
			p.refused[m.ID] = m.ClusterAddr
			p.c.logger.Warn(p.who+": member failed the cluster port check; it is kept out of the Raft configuration"+
				" (a node started with another root key, or not a raftkms node)",
				"id", m.ID, "addr", m.ClusterAddr, "error", err)
		}
		return false
	}
	if _, was := p.refused[m.ID]; was {
		delete(p.refused, m.ID)
		p.c.logger.Info(p.who+": member now passes the cluster port check", "id", m.ID, "addr", m.ClusterAddr)
	}
	return true
}
