package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Graceful leave. A node that stops on purpose (kmsd on SIGTERM) asks to be
// taken out of the Raft configuration before it stops Raft, so that the
// leader does not keep replicating to a peer that is gone (raft logs an
// error for every failed heartbeat until DeadServerTimeout):
//
//  1. a leader hands leadership over first (it cannot remove itself without
//     a gap in leadership), and waits until another node leads;
//  2. it sets Meta.Leaving and gossips it;
//  3. the leader's reconciler removes a member that announced its leave at
//     once, under the same quorum guard as a dead server (planRemovals),
//     never adds it back while the flag is set (serving), and the leaving
//     node waits until its own copy of the configuration no longer lists it;
//  4. only then it stops Raft and leaves gossip (Cluster.Leave).
//
// A node started again (same data dir) gossips a Meta without Leaving and
// is added back like any new member.

// LeavingRaft is what LeaveRaft needs of the local Raft node.
type LeavingRaft interface {
	Servers() ([]Server, error)
	// TransferLeadership hands leadership to the voter toID (any voter
	// when "") if this node leads (a no-op otherwise).
	TransferLeadership(toID, toAddr string) error
	// Leader is the id of the leader this node knows ("" if none).
	LeaderID() string
}

// ErrLeaveBlocked: removing this node now would leave the cluster without a
// majority of alive voters (or without any other voter), so it stays in the
// configuration and the leader removes it after DeadServerTimeout instead.
var ErrLeaveBlocked = errors.New("cluster: leaving the raft configuration would lose quorum")

// ErrClusterStopping: every other voter has announced that it is stopping
// too (the whole cluster is being shut down), so no leader will remain to
// remove this node: it stops as a member of the configuration, and the
// cluster resumes when a quorum of its voters starts again.
var ErrClusterStopping = errors.New("cluster: every other voter is stopping too")

// serving reports whether a member can hold a Raft seat: alive, and not on
// its way out.
func (m Member) serving() bool { return m.Alive() && !m.Leaving }

// LeaveRaft takes this node out of the Raft configuration before it stops:
// see the steps above. It returns nil once the configuration no longer lists
// this node (or never did), ErrLeaveBlocked when its removal would cost the
// cluster its quorum, or ctx's error when the leader did not remove it in
// time. In every case the caller goes on stopping.
func (c *Cluster) LeaveRaft(ctx context.Context, r LeavingRaft) error {
	servers, err := r.Servers()
	if err != nil {
		return fmt.Errorf("cluster: leave raft: %w", err)
	}
	if !hasServer(servers, c.id) {
		return nil
	}
	if othersStopping(c.id, c.Members(), servers) {
		return ErrClusterStopping
	}
	if !canLeave(c.id, c.Members(), servers) {
		return ErrLeaveBlocked
	}
	// Hand leadership to a voter that is not leaving itself: when several
	// nodes stop at once, one that is on its way out would only have to
	// hand it on again.
	to := successor(c.id, c.Members(), servers)
	if err := r.TransferLeadership(to.ID, to.Addr); err != nil {
		return fmt.Errorf("cluster: leave raft: leadership transfer: %w", err)
	}
	// The new leader's reconciler must see the flag while it leads: it
	// reconciles on membership changes, and a flag that arrived while it
	// was still a candidate would wait for its next periodic pass.
	if err := c.waitUntil(ctx, func() (bool, error) {
		id := r.LeaderID()
		return id != "" && id != c.id, nil
	}); err != nil {
		return fmt.Errorf("cluster: leave raft: waiting for another leader: %w", err)
	}
	if err := c.UpdateMeta(func(m *Meta) { m.Leaving = true }); err != nil {
		return fmt.Errorf("cluster: leave raft: %w", err)
	}
	c.logger.Info("leaving: asked the leader to remove this node from the raft configuration")
	if err := c.waitUntil(ctx, func() (bool, error) {
		servers, err := r.Servers()
		if err != nil {
			return false, nil
		}
		if !hasServer(servers, c.id) {
			return true, nil
		}
		// The others announced their stop meanwhile (a whole cluster
		// stopped at once): nobody will remove this node.
		if othersStopping(c.id, c.Members(), servers) {
			return false, ErrClusterStopping
		}
		return false, nil
	}); errors.Is(err, ErrClusterStopping) {
		return err
	} else if err != nil {
		return fmt.Errorf("cluster: leave raft: waiting for the leader to remove this node: %w", err)
	}
	c.logger.Info("leaving: removed from the raft configuration")
	return nil
}

// canLeave applies planRemovals' quorum guard from the leaving node's side:
// another voter must exist, and if self is a voter, the voters gossip sees
// serving (self excluded) must be a majority of the configuration without
// self.
func canLeave(self string, members []Member, servers []Server) bool {
	byID := membersByID(members)
	voters, serving, selfVoter := 0, 0, false
	for _, s := range servers {
		if !s.Voter {
			continue
		}
		if s.ID == self {
			selfVoter = true
			continue
		}
		voters++
		if m, ok := byID[s.ID]; ok && m.serving() {
			serving++
		}
	}
	if voters == 0 || serving == 0 {
		return false
	}
	return !selfVoter || serving >= voters/2+1
}

// othersStopping reports whether the configuration has another voter and
// every other voter has announced its stop (Leaving) or has left gossip.
func othersStopping(self string, members []Member, servers []Server) bool {
	byID := membersByID(members)
	others := 0
	for _, s := range servers {
		if !s.Voter || s.ID == self {
			continue
		}
		others++
		m, ok := byID[s.ID]
		if !ok || !(m.Leaving || m.Status == StatusLeft) {
			return false
		}
	}
	return others > 0
}

// PeerStopping reports whether the member at this cluster (Raft) address
// has announced that it is stopping on purpose, or has left gossip. The
// store logs failures to reach such a peer as warnings.
func (c *Cluster) PeerStopping(clusterAddr string) bool {
	for _, m := range c.Members() {
		if m.ClusterAddr == clusterAddr {
			return m.Leaving || m.Status == StatusLeft
		}
	}
	return false
}

// successor is a voter other than self that gossip sees serving (the first
// in the configuration), or the zero Server when there is none (Raft then
// picks).
func successor(self string, members []Member, servers []Server) Server {
	byID := membersByID(members)
	for _, s := range servers {
		if m, ok := byID[s.ID]; ok && s.Voter && s.ID != self && m.serving() {
			return s
		}
	}
	return Server{}
}

func hasServer(servers []Server, id string) bool {
	for _, s := range servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

// leavePoll is how often LeaveRaft re-checks the Raft state.
const leavePoll = 20 * time.Millisecond

func (c *Cluster) waitUntil(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(leavePoll)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stopCh:
			return ErrShutdown
		case <-t.C:
		}
	}
}
