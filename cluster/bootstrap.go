package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Raft is what the bootstrapper and the reconciler need from the local Raft
// node (package store implements it). Membership calls are only made while
// IsLeader reports true; they may still fail if leadership is lost.
type Raft interface {
	HasState() (bool, error) // any existing Raft state (log, stable store or snapshot)
	Bootstrap(servers []Server) error
	IsLeader() bool
	Servers() ([]Server, error) // current (latest) configuration
	AddVoter(id, addr string) error
	AddNonvoter(id, addr string) error
	DemoteVoter(id string) error
	RemoveServer(id string) error
}

// Server is one entry of the Raft configuration.
type Server struct {
	ID, Addr string
	Voter    bool
}

// RunBootstrap implements --bootstrap-expect. It returns nil once this node
// has Raft state — because it already had some, because it bootstrapped,
// or because the leader of an existing cluster added it — after marking
// itself Bootstrapped in its gossiped Meta. It returns ctx.Err() if ctx ends
// first. It may run before RunReconciler in the same goroutine (a node
// without Raft state cannot be leader, so its reconciler has nothing to do
// yet); a node joining an existing cluster gets state when the leader's
// reconciler adds it.
//
// With expect <= 0 it never bootstraps; it only waits to be added.
//
// A new cluster is bootstrapped only when all of these hold:
//   - no known member (any status, self included) reports Bootstrapped: one
//     that does means a cluster exists, and a fresh node waits to be added;
//   - no alive member advertises a different non-zero Expect (a
//     misconfiguration; logged, and nothing happens until it is fixed);
//   - at least expect alive members advertise Expect == expect and a
//     ClusterAddr, and pass Config.VerifyPeer (members with Expect 0 are not
//     counted: they did not ask to form a cluster, and the reconciler adds
//     them afterwards; a member whose cluster port does not prove the
//     cluster key is not counted and never listed);
//   - this node is among the expect lowest IDs of those members — that list
//     is the initial configuration, all voters;
//   - every member of that list advertises the same BootstrapProposal (a hash
//     of the list). Each node publishes the list it would use; requiring all
//     of them to agree keeps two nodes with different partial views (more
//     than expect nodes starting at once) from bootstrapping two different
//     configurations. Identical concurrent bootstraps are harmless in Raft.
func (c *Cluster) RunBootstrap(ctx context.Context, expect int, r Raft) error {
	if expect > 0 && c.LocalMeta().Expect != expect {
		if err := c.UpdateMeta(func(m *Meta) { m.Expect = expect }); err != nil {
			return err
		}
	}
	ch, cancel := c.Subscribe()
	defer cancel()
	tick := time.NewTicker(c.t.poll)
	defer tick.Stop()
	b := &bootstrapper{c: c, expect: expect, r: r, ctx: ctx, check: newPeerCheck(c, "bootstrap", c.t.poll, 5*time.Second)}
	for {
		done, err := b.step()
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stopCh:
			return ErrShutdown
		case <-ch:
		case <-tick.C:
		}
	}
}

type bootstrapper struct {
	c       *Cluster
	expect  int
	r       Raft
	ctx     context.Context
	check   *peerCheck // Config.VerifyPeer, refusals logged once
	lastWhy string     // last "waiting because" message, logged once per change
}

func (b *bootstrapper) wait(why string, kv ...any) {
	if why != b.lastWhy {
		b.lastWhy = why
		b.c.logger.Info("bootstrap: waiting: "+why, kv...)
	}
}

// step makes one decision; done means RunBootstrap should return err.
func (b *bootstrapper) step() (done bool, err error) {
	c := b.c
	has, err := b.r.HasState()
	if err != nil {
		c.logger.Error("bootstrap: cannot read raft state", "error", err)
		return false, nil
	}
	if has {
		return true, b.markBootstrapped()
	}
	if b.expect <= 0 {
		b.wait("no --bootstrap-expect; waiting to be added to a cluster by its leader")
		return false, nil
	}

	members := c.Members()
	for _, m := range members {
		if m.Bootstrapped {
			b.propose("")
			b.wait("a cluster already exists; waiting to be added by its leader", "bootstrapped_member", m.ID)
			return false, nil
		}
	}
	var eligible []Member
	for _, m := range members {
		if !m.Alive() {
			continue
		}
		if m.Expect != 0 && m.Expect != b.expect {
			b.propose("")
			b.wait("conflicting --bootstrap-expect values; all servers must use the same value",
				"member", m.ID, "member_expect", m.Expect, "expect", b.expect)
			return false, nil
		}
		if m.Expect == b.expect && m.ClusterAddr != "" && b.check.ok(b.ctx, m) {
			eligible = append(eligible, m)
		}
	}
	if len(eligible) < b.expect {
		b.propose("")
		b.wait(fmt.Sprintf("%d of %d expected servers seen", len(eligible), b.expect), "seen", ids(eligible))
		return false, nil
	}

	chosen := eligible[:b.expect] // Members() is sorted by ID
	servers := make([]Server, len(chosen))
	for i, m := range chosen {
		servers[i] = Server{ID: m.ID, Addr: m.ClusterAddr, Voter: true}
	}
	proposal := proposalOf(servers)
	b.propose(proposal)
	if !containsID(chosen, c.id) {
		b.wait("this node is not among the initial servers; waiting to be added", "initial", ids(chosen))
		return false, nil
	}
	for _, m := range chosen {
		if cur, ok := c.Member(m.ID); !ok || cur.BootstrapProposal != proposal {
			b.wait("waiting for the initial servers to agree on the configuration", "initial", ids(chosen))
			return false, nil
		}
	}

	c.logger.Info("bootstrap: bootstrapping new cluster", "servers", servers)
	if err := b.r.Bootstrap(servers); err != nil {
		// Another path may have created state meanwhile (e.g. raft's
		// ErrCantBootstrap); the next step's HasState decides.
		c.logger.Warn("bootstrap: bootstrap call failed; will re-check", "error", err)
		return false, nil
	}
	return true, b.markBootstrapped()
}

func (b *bootstrapper) propose(p string) {
	if b.c.LocalMeta().BootstrapProposal == p {
		return
	}
	if err := b.c.UpdateMeta(func(m *Meta) { m.BootstrapProposal = p }); err != nil {
		b.c.logger.Warn("bootstrap: cannot publish proposal", "error", err)
	}
}

func (b *bootstrapper) markBootstrapped() error {
	m := b.c.LocalMeta()
	if m.Bootstrapped && m.BootstrapProposal == "" {
		return nil
	}
	b.c.logger.Info("bootstrap: node has raft state; marking bootstrapped")
	return b.c.UpdateMeta(func(m *Meta) { m.Bootstrapped = true; m.BootstrapProposal = "" })
}

// proposalOf is a short, order-independent digest of a server list.
func proposalOf(servers []Server) string {
	parts := make([]string, len(servers))
	for i, s := range servers {
		parts[i] = s.ID + "=" + s.Addr
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:8])
}

func ids(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func containsID(ms []Member, id string) bool {
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}
