package cluster

import (
	"context"
	"time"
)

// verifyTimeout bounds one VerifyPeer call, so a member whose cluster port
// swallows packets cannot stall a reconciliation pass for long.
const verifyTimeout = 3 * time.Second

// peerCheck runs Config.VerifyPeer for the reconciler or the bootstrapper.
// It remembers the members it refused, so that a refusal is logged once
// (and again only if the member moves), not on every pass, and checks a
// refused member again only after a backoff (doubling from base up to max):
// every check is a connection the member logs as a failed authentication.
type peerCheck struct {
	c         *Cluster
	who       string // "reconciler" or "bootstrap", for the log
	base, max time.Duration
	refused   map[string]*refusal // by member id
}

type refusal struct {
	addr    string
	wait    time.Duration
	retryAt time.Time
}

func newPeerCheck(c *Cluster, who string, base, max time.Duration) *peerCheck {
	return &peerCheck{c: c, who: who, base: base, max: max, refused: make(map[string]*refusal)}
}

// ok reports whether member m's cluster port passes VerifyPeer. This node
// itself always passes; a member refused at the same address less than its
// backoff ago fails without being checked again.
func (p *peerCheck) ok(ctx context.Context, m Member) bool {
	if p.c.verify == nil || m.ID == p.c.id {
		return true
	}
	r := p.refused[m.ID]
	if r != nil && r.addr == m.ClusterAddr && time.Now().Before(r.retryAt) {
		return false
	}
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	err := p.c.verify(vctx, m.ID, m.ClusterAddr)
	cancel()
	if err != nil {
		p.c.metrics.peerRefused.Inc()
		if r == nil || r.addr != m.ClusterAddr {
			r = &refusal{addr: m.ClusterAddr, wait: p.base}
			p.refused[m.ID] = r
			p.c.logger.Warn(p.who+": member failed the cluster port check; it is kept out of the Raft configuration"+
				" (a node started with another root key, or not a raftkms node)",
				"id", m.ID, "addr", m.ClusterAddr, "error", err)
		} else {
			r.wait = min(2*r.wait, p.max)
		}
		r.retryAt = time.Now().Add(r.wait)
		return false
	}
	if r != nil {
		delete(p.refused, m.ID)
		p.c.logger.Info(p.who+": member now passes the cluster port check", "id", m.ID, "addr", m.ClusterAddr)
	}
	return true
}

// resetBackoff makes every refused member due for a check at the next pass
// (a node that leads again checks at once), while remembering which ones it
// has already warned about at which address: a member refused before an
// election is not reported a second time.
func (p *peerCheck) resetBackoff() {
	for _, r := range p.refused {
		r.wait, r.retryAt = p.base, time.Time{}
	}
}
