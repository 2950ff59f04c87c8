package store

import "github.com/hashicorp/raft"

// hashicorp/raft has every follower wait one heartbeat timeout (1–2 ×
// --raft-timeout, at random) without hearing from a leader before it
// campaigns. Two kinds of node need not wait, and campaign at once:
//
//   - the only voter of its configuration (a dev node, a single-node
//     cluster), at start and after its bootstrap: nobody else can lead. The
//     wait was most of a dev node's start (1.5 s of 1.9) and a second of
//     every single-node restart.
//   - a new cluster's first voter (the smallest id of the bootstrap list),
//     right after its bootstrap: no leader can exist yet but one elected by
//     members that bootstrapped before it, and a member that knows a leader
//     refuses both Raft's pre-vote and its vote to another candidate, so the
//     campaign cannot unseat that one. Only one member campaigns early, so
//     the first election is not split.
//
// A member of a larger configuration that restarts keeps the wait: a
// campaign at once there could disturb a leader it has not heard from yet.
// Nothing here is needed for safety: the election is Raft's, only sooner;
// when it fails the node campaigns after the timeout as before.

// campaignIfAlone campaigns at once when this node is the only voter of its
// configuration.
func (s *Store) campaignIfAlone() {
	if s.raft.State() != raft.Follower {
		return
	}
	f := s.raft.GetConfiguration()
	if f.Error() == nil && onlyVoter(f.Configuration().Servers, raft.ServerID(s.cfg.NodeID)) {
		s.campaignNow()
	}
}

// campaignAfterBootstrap campaigns at once when this node is the first
// voter of servers, the configuration it just bootstrapped.
func (s *Store) campaignAfterBootstrap(servers []Server) {
	if firstVoter(servers, s.cfg.NodeID) && s.raft.State() == raft.Follower {
		s.campaignNow()
	}
}

// campaignNow makes this follower campaign now rather than after its
// heartbeat timeout. Raft has no call for it, but it re-arms a follower's
// heartbeat timer at once when the heartbeat timeout is shortened
// (ReloadConfig), and the timer finds no contact with a leader: so the
// timeout is shortened by a nanosecond and set back.
func (s *Store) campaignNow() {
	rc := s.raft.ReloadableConfig()
	timeout := rc.HeartbeatTimeout
	rc.HeartbeatTimeout = timeout - 1
	if err := s.raft.ReloadConfig(rc); err != nil {
		s.log.Debug("early election not started", "error", err)
		return
	}
	rc.HeartbeatTimeout = timeout
	if err := s.raft.ReloadConfig(rc); err != nil {
		s.log.Warn("heartbeat timeout not restored after the early election", "error", err)
	}
}

// onlyVoter reports whether id is the one voter among servers.
func onlyVoter(servers []raft.Server, id raft.ServerID) bool {
	voters, self := 0, false
	for _, sv := range servers {
		if sv.Suffrage == raft.Voter {
			voters++
			self = self || sv.ID == id
		}
	}
	return voters == 1 && self
}

// firstVoter reports whether id is a voter of servers with the smallest id
// among the voters.
func firstVoter(servers []Server, id string) bool {
	self := false
	for _, sv := range servers {
		if !sv.Voter {
			continue
		}
		if sv.ID < id {
			return false
		}
		self = self || sv.ID == id
	}
	return self
}
