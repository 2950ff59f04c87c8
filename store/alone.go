package store

import "github.com/hashicorp/raft"

// campaignIfAlone starts this node's election at once when it is the only
// voter of its configuration (a dev node, a single-node cluster), at start
// and after a bootstrap. hashicorp/raft has every follower wait one
// heartbeat timeout (1–2 × --raft-timeout, at random) without hearing from
// a leader before it campaigns; when no other member can vote, nobody can
// lead but this node, and the wait was most of a dev node's start (1.5 s
// of 1.9) and a second of every single-node restart.
//
// Raft has no call for it, but it re-arms a follower's heartbeat timer at
// once when its heartbeat timeout is shortened (ReloadConfig), and the
// timer finds no contact with a leader: so the timeout is shortened by a
// nanosecond and set back. A member of a larger configuration keeps the
// wait (campaigning at once there would disrupt a leader it has not heard
// from yet). Nothing here is needed for safety: Raft's election is the
// same, only sooner; when it fails the node campaigns after the timeout as
// before.
func (s *Store) campaignIfAlone() {
	if s.raft.State() != raft.Follower {
		return
	}
	f := s.raft.GetConfiguration()
	if f.Error() != nil || !onlyVoter(f.Configuration().Servers, raft.ServerID(s.cfg.NodeID)) {
		return
	}
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
