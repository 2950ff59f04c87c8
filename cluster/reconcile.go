package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ReconcileConfig tunes RunReconciler.
type ReconcileConfig struct {
	// Interval between passes when membership does not change. 0 means 10s
	// (100ms with Config.Fast).
	Interval time.Duration
	// DeadServerTimeout: a server whose member has been failed or left (or
	// unknown to gossip) for longer than this is removed from the Raft
	// configuration. 0 means 5 minutes; negative disables that removal
	// (a member that announced its leave is still removed at once).
	DeadServerTimeout time.Duration
	// FinalizedLevel returns the log level the cluster has finalized (0:
	// none; the FSM's, kmsctl operator upgrade finalize). nil: 0.
	FinalizedLevel func() int
}

// DefaultDeadServerTimeout is used when ReconcileConfig.DeadServerTimeout is 0.
const DefaultDeadServerTimeout = 5 * time.Minute

// RunReconciler keeps the Raft configuration in line with gossip membership
// until ctx ends. It acts only while r.IsLeader(), after every membership
// change and every rc.Interval. Each pass:
//
//  1. removes servers failed/left/unknown for longer than DeadServerTimeout,
//     never the leader itself and never a voter whose removal would leave the
//     voters gossip sees alive short of a majority of the new configuration
//     (see planRemovals);
//  2. adds alive members missing from the configuration — only those whose
//     cluster port passes Config.VerifyPeer (see verified) — and promotes or
//     demotes servers to reach DesiredVoters (with this node pinned as a
//     voter), ordered so fault tolerance never drops below what it was:
//     demote down voters, promote, add, fix addresses, demote alive voters.
//
// Every change is logged. It never applies commands to the FSM.
func (c *Cluster) RunReconciler(ctx context.Context, r Raft, rc ReconcileConfig) {
	if rc.Interval <= 0 {
		rc.Interval = c.t.reconcile
	}
	if rc.DeadServerTimeout == 0 {
		rc.DeadServerTimeout = DefaultDeadServerTimeout
	}
	rec := &reconciler{c: c, r: r, rc: rc, ctx: ctx, missingSince: make(map[string]time.Time), levelRefused: map[string]int{}, check: newPeerCheck(c, "reconciler", rc.Interval, 30*time.Second)}
	ch, cancel := c.Subscribe()
	defer cancel()
	tick := time.NewTicker(rc.Interval)
	defer tick.Stop()
	for {
		if r.IsLeader() {
			rec.pass(time.Now())
		} else if rec.leading {
			rec.leading = false
			clear(rec.missingSince)
			rec.check.resetBackoff()
		}
		select {
		case <-ctx.Done():
			return
		case <-c.stopCh:
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

type reconciler struct {
	c            *Cluster
	r            Raft
	rc           ReconcileConfig
	ctx          context.Context
	check        *peerCheck // Config.VerifyPeer, refusals logged once
	leading      bool
	missingSince map[string]time.Time // Raft servers gossip has no member for, since when (this term)
	levelRefused map[string]int       // members kept out for their log level, logged once per level
	lastBlocked  string
}

// change is one Raft configuration change.
type change struct {
	kind   string // changeRemove, changeDemote, changePromote, changeAddVoter, changeAddNonvoter, changeAddress
	id     string
	addr   string
	voter  bool // changeAddress: keep as voter
	reason string
}

const (
	changeRemove      = "remove"
	changeDemote      = "demote"
	changePromote     = "promote"
	changeAddVoter    = "add_voter"
	changeAddNonvoter = "add_nonvoter"
	changeAddress     = "update_address"
)

func (ch change) String() string { return ch.kind + " " + ch.id }

func (rec *reconciler) pass(now time.Time) {
	c := rec.c
	if !rec.leading {
		rec.leading = true
		c.logger.Info("reconciler: leading; reconciling raft configuration with gossip")
	}
	servers, err := rec.r.Servers()
	if err != nil {
		c.logger.Warn("reconciler: cannot read raft configuration", "error", err)
		return
	}
	members := c.Members()
	rec.trackMissing(members, servers, now)

	removals, blocked := planRemovals(c.id, members, servers, now, rec.rc.DeadServerTimeout, rec.missingSince)
	if b := strings.Join(blocked, ","); b != rec.lastBlocked {
		rec.lastBlocked = b
		if b != "" {
			c.logger.Warn("reconciler: not removing dead voters: the voters gossip sees alive would not be a majority afterwards",
				"servers", blocked)
		}
	}
	if len(removals) > 0 {
		if !rec.apply(removals) {
			return
		}
		if servers, err = rec.r.Servers(); err != nil {
			c.logger.Warn("reconciler: cannot read raft configuration", "error", err)
			return
		}
	}
	rec.apply(planVoters(c.id, rec.verified(rec.levelled(members, servers), servers), servers))
}

// levelled drops from members those outside the Raft configuration whose
// log level is below the floor: the finalized level, and the lowest level
// among the configuration's servers that gossip knows. A server of a lower
// level would stop (panic) at the first entry of a level it does not know,
// and such entries may already be in the log once every server is above it
// (the propose gate, kms). Adding a server therefore never lowers the
// configuration's lowest level: during a rolling upgrade an old build is
// still added while an old server remains, and refused once none does.
func (rec *reconciler) levelled(members []Member, servers []Server) []Member {
	floor := 0
	if rec.rc.FinalizedLevel != nil {
		floor = rec.rc.FinalizedLevel()
	}
	byID := membersByID(members)
	inConfig := make(map[string]bool, len(servers))
	lowest := 0
	for _, s := range servers {
		inConfig[s.ID] = true
		if m, ok := byID[s.ID]; ok && (lowest == 0 || m.LogLevel() < lowest) {
			lowest = m.LogLevel()
		}
	}
	floor = max(floor, lowest)
	out := members[:0:0]
	for _, m := range members {
		if !inConfig[m.ID] && m.Alive() && m.LogLevel() < floor {
			if rec.levelRefused[m.ID] != m.LogLevel() {
				rec.levelRefused[m.ID] = m.LogLevel()
				rec.c.logger.Warn("reconciler: not adding a member whose build is older than the cluster's log: upgrade it",
					"id", m.ID, "version", m.Version, "level", m.LogLevel(), "cluster_level", floor)
			}
			continue
		}
		delete(rec.levelRefused, m.ID)
		out = append(out, m)
	}
	return out
}

// verified drops from members those that planVoters could add, promote or
// move to a new address but whose cluster port fails Config.VerifyPeer: a
// member that has not proven the cluster key never enters the Raft
// configuration, as voter or nonvoter. Dropping them before planning (rather
// than skipping their changes) keeps them out of the desired voter set, so
// no other server is demoted to make room for them. Voters already in the
// configuration at the same address are not re-checked.
func (rec *reconciler) verified(members []Member, servers []Server) []Member {
	inConfig := make(map[string]Server, len(servers))
	for _, s := range servers {
		inConfig[s.ID] = s
	}
	out := members[:0:0]
	for _, m := range members {
		s, in := inConfig[m.ID]
		settled := in && s.Voter && s.Addr == m.ClusterAddr
		if m.Alive() && m.ClusterAddr != "" && !settled && !rec.check.ok(rec.ctx, m) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// apply runs changes in order and stops at the first failure (the next pass
// recomputes from the new configuration) — except that a failed addition of
// a new member is skipped: additions are independent of each other, and one
// member that cannot be added (say, its TLS certificate is refused) must not
// keep every member after it out of Raft.
func (rec *reconciler) apply(changes []change) bool {
	c := rec.c
	ok := true
	for _, ch := range changes {
		if !rec.r.IsLeader() {
			return false
		}
		var err error
		switch ch.kind {
		case changeRemove:
			err = rec.r.RemoveServer(ch.id)
		case changeDemote:
			err = rec.r.DemoteVoter(ch.id)
		case changePromote, changeAddVoter:
			err = rec.r.AddVoter(ch.id, ch.addr)
		case changeAddNonvoter:
			err = rec.r.AddNonvoter(ch.id, ch.addr)
		case changeAddress:
			if ch.voter {
				err = rec.r.AddVoter(ch.id, ch.addr)
			} else {
				err = rec.r.AddNonvoter(ch.id, ch.addr)
			}
		default:
			err = fmt.Errorf("unknown change %q", ch.kind)
		}
		if err != nil {
			c.metrics.reconcileErrs.Inc()
			c.logger.Warn("reconciler: raft configuration change failed", "change", ch.kind, "id", ch.id,
				"addr", ch.addr, "reason", ch.reason, "error", err)
			if ch.kind == changeAddVoter || ch.kind == changeAddNonvoter {
				ok = false
				continue
			}
			return false
		}
		c.metrics.raftChanges.WithLabelValues(ch.kind).Inc()
		c.logger.Info("reconciler: raft configuration changed", "change", ch.kind, "id", ch.id,
			"addr", ch.addr, "reason", ch.reason)
	}
	return ok
}

func (rec *reconciler) trackMissing(members []Member, servers []Server, now time.Time) {
	known := make(map[string]bool, len(members))
	for _, m := range members {
		known[m.ID] = true
	}
	inConfig := make(map[string]bool, len(servers))
	for _, s := range servers {
		inConfig[s.ID] = true
		if known[s.ID] {
			delete(rec.missingSince, s.ID)
		} else if _, ok := rec.missingSince[s.ID]; !ok {
			rec.missingSince[s.ID] = now
		}
	}
	for id := range rec.missingSince {
		if !inConfig[id] {
			delete(rec.missingSince, id)
		}
	}
}

// planRemovals lists the servers to remove: failed or left (by gossip) or
// unknown to gossip (missingSince) for at least timeout, and at once those
// whose member announced its leave (Meta.Leaving); never self.
// Nonvoters go first; they never affect quorum.
//
// Quorum guard: a dead voter is removed only if the voters gossip reports
// alive (self included) are a majority of the configuration without it. A
// leader that is really leading already has a live majority of the old
// configuration, which is then also a majority of the smaller one, so the
// guard never blocks a legitimate cleanup. It bites when gossip disagrees
// with Raft — e.g. UDP gossip is broken while Raft's TCP still works and
// every peer looks failed: without it the leader would remove its healthy
// peers one by one (each removal commits fine) and end as a one-voter
// cluster. blocked lists the voters held back by the guard.
func planRemovals(self string, members []Member, servers []Server, now time.Time, timeout time.Duration,
	missingSince map[string]time.Time) (changes []change, blocked []string) {
	byID := membersByID(members)
	alive := func(id string) bool {
		m, ok := byID[id]
		return id == self || (ok && m.serving())
	}
	voters, aliveVoters := 0, 0
	for _, s := range servers {
		if s.Voter {
			voters++
			if alive(s.ID) {
				aliveVoters++
			}
		}
	}
	type cand struct {
		s      Server
		reason string
	}
	var cands []cand
	for _, s := range servers {
		if s.ID == self || alive(s.ID) {
			continue
		}
		var since time.Time
		var reason string
		if m, ok := byID[s.ID]; ok && m.Leaving {
			// It announced its leave (graceful stop, see leave.go): no
			// reason to wait, even with removal of the dead disabled.
			cands = append(cands, cand{s, "leaving (" + m.Status + ")"})
			continue
		} else if timeout < 0 {
			continue
		} else if ok {
			since, reason = m.StatusSince, m.Status
		} else if t, ok := missingSince[s.ID]; ok {
			since, reason = t, "unknown to gossip"
		} else {
			continue
		}
		if now.Sub(since) < timeout {
			continue
		}
		cands = append(cands, cand{s, fmt.Sprintf("%s for %s", reason, now.Sub(since).Round(time.Millisecond))})
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].s.Voter != cands[j].s.Voter {
			return !cands[i].s.Voter
		}
		return cands[i].s.ID < cands[j].s.ID
	})
	for _, cd := range cands {
		if cd.s.Voter {
			if aliveVoters < (voters-1)/2+1 {
				blocked = append(blocked, cd.s.ID)
				continue
			}
			voters--
		}
		changes = append(changes, change{kind: changeRemove, id: cd.s.ID, addr: cd.s.Addr, reason: cd.reason})
	}
	return changes, blocked
}

// planVoters lists the additions, promotions and demotions that move the
// configuration to desiredVoters (self pinned). Order keeps fault tolerance
// from dropping mid-way: demote voters that are down (shrinks the quorum
// with no loss of live votes), promote caught-up nonvoters, add missing
// servers, fix changed addresses, and only then demote alive voters.
func planVoters(self string, members []Member, servers []Server) []change {
	desired := desiredVoters(members, servers, self)
	byID := membersByID(members)
	inConfig := make(map[string]bool, len(servers))
	voters, aliveVoters := 0, 0
	for _, s := range servers {
		inConfig[s.ID] = true
		if s.Voter {
			voters++
			if m, ok := byID[s.ID]; s.ID == self || (ok && m.serving()) {
				aliveVoters++
			}
		}
	}
	var demoteDown, promote, add, addr, demoteAlive []change
	for _, s := range servers {
		m, known := byID[s.ID]
		alive := s.ID == self || (known && m.serving())
		switch {
		case s.Voter && !desired[s.ID] && s.ID != self:
			if alive {
				demoteAlive = append(demoteAlive, change{kind: changeDemote, id: s.ID, addr: s.Addr,
					reason: "voter set rebalanced (odd count, zone spread)"})
			} else if aliveVoters >= (voters-1)/2+1 { // same quorum guard as planRemovals
				voters--
				demoteDown = append(demoteDown, change{kind: changeDemote, id: s.ID, addr: s.Addr,
					reason: "down voter displaced"})
			}
		case !s.Voter && desired[s.ID] && alive && known && m.ClusterAddr != "":
			promote = append(promote, change{kind: changePromote, id: s.ID, addr: m.ClusterAddr,
				reason: "voter set rebalanced (odd count, zone spread)"})
			continue
		}
		if alive && known && m.ClusterAddr != "" && m.ClusterAddr != s.Addr {
			addr = append(addr, change{kind: changeAddress, id: s.ID, addr: m.ClusterAddr, voter: s.Voter,
				reason: "cluster address changed from " + s.Addr})
		}
	}
	for _, m := range members {
		if !m.serving() || m.ClusterAddr == "" || inConfig[m.ID] {
			continue
		}
		if desired[m.ID] {
			add = append(add, change{kind: changeAddVoter, id: m.ID, addr: m.ClusterAddr, reason: "alive member not in configuration"})
		} else {
			add = append(add, change{kind: changeAddNonvoter, id: m.ID, addr: m.ClusterAddr, reason: "alive member not in configuration"})
		}
	}
	return slices.Concat(demoteDown, promote, add, addr, demoteAlive)
}

func membersByID(members []Member) map[string]Member {
	out := make(map[string]Member, len(members))
	for _, m := range members {
		out[m.ID] = m
	}
	return out
}
