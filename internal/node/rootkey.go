package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/transport"
)

// verifyPeer checks that member id's cluster port at addr completes the
// handshake with this node: it proves the cluster key derived from this
// node's root key, and, with cluster TLS, its certificate comes from the
// cluster's CA and it accepts this node's. Gossip alone proves nothing
// about a member, so the reconciler and bootstrap-expect admit to Raft only
// members that pass (cluster.Config.VerifyPeer).
func (n *Node) verifyPeer(ctx context.Context, id, addr string) error {
	// rpc.NodePing answers every caller that got through the cluster
	// port's handshake (TLS when configured, and the proof of the cluster
	// key).
	_, err := n.trans.Call(ctx, addr, rpc.NodePing, nil)
	if err != nil && !errors.Is(err, transport.ErrUnknownMethod) {
		return fmt.Errorf("the cluster port of %s at %s did not complete the handshake with this node: %w", id, addr, err)
	}
	return nil
}

// rootKeyCheckInterval is how often watchRootKey looks; once the cluster
// refuses this node, it probes the peers only every refusedProbeInterval.
const (
	rootKeyCheckInterval = time.Second
	refusedProbeInterval = 15 * time.Second
)

// watchRootKey finds out whether this node holds a root key other than the
// cluster's, and tells the service (which then answers every API request
// with ServiceUnavailable.RootKeyMismatch). Two ways:
//
//   - the catalogue it applied was written under another key (it was a
//     member and restarted with another key file);
//   - the cluster refuses it: this node has no Raft leader (it is in no
//     working configuration) and, of the alive gossip members it tries, none
//     accepts its cluster-port proof and most fail it with ErrPeerAuth.
//
// A node with a leader is never flagged, whatever one bad peer does: it is
// demonstrably part of a working cluster.
func (n *Node) watchRootKey(ctx context.Context) {
	t := time.NewTicker(rootKeyCheckInterval)
	defer t.Stop()
	var catalogueLogged, refused bool
	var nextProbe time.Time
	for {
		if init, match := n.svc.Initialized(); init && !match && !catalogueLogged {
			catalogueLogged = true
			n.log.Error("this node's root key is not the cluster's: restart it with the cluster's --root-key-file; until then it answers every request with ServiceUnavailable.RootKeyMismatch")
		}
		// Each probe of a refusing cluster is a failed connection that
		// every peer logs: once refused, probe only now and then. Finding
		// a leader needs no probe and is noticed at once.
		_, leader := n.store.Leader()
		if !refused || leader != "" || !time.Now().Before(nextProbe) {
			r := n.peersRefuse(ctx)
			if ctx.Err() != nil {
				return
			}
			if r != refused {
				refused = r
				n.svc.SetPeersRefuseRootKey(r)
				if r {
					n.log.Error("the cluster's nodes refuse this node's root key (cluster-port authentication failed): restart it with the cluster's --root-key-file; until then it answers every request with ServiceUnavailable.RootKeyMismatch")
				} else {
					n.log.Info("the cluster accepts this node's root key again")
				}
			}
			nextProbe = time.Now().Add(refusedProbeInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// peersRefuse reports whether the cluster refuses this node's key (see
// watchRootKey).
func (n *Node) peersRefuse(ctx context.Context) bool {
	if n.gossip == nil {
		return false
	}
	if _, id := n.store.Leader(); id != "" {
		return false
	}
	tried, refused := 0, 0
	for _, m := range n.gossip.Members() {
		if m.ID == n.cfg.NodeID || !m.Alive() || m.ClusterAddr == "" {
			continue
		}
		tried++
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := n.verifyPeer(cctx, m.ID, m.ClusterAddr)
		cancel()
		switch {
		case err == nil:
			return false // one peer shares the key: not a key problem
		case errors.Is(err, transport.ErrPeerAuth):
			refused++
		}
	}
	return refused > 0 && 2*refused > tried
}

// registerRootKeyMetric exposes the mismatch on /metrics, which keeps
// answering on such a node.
func (n *Node) registerRootKeyMetric(reg prometheus.Registerer) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kms_node_root_key_mismatch",
		Help: "1 when this node's root key is known not to be the cluster's (it then answers ServiceUnavailable.RootKeyMismatch), else 0.",
	}, func() float64 {
		if n.svc != nil && n.svc.RootKeyMismatch() != nil {
			return 1
		}
		return 0
	}))
}
