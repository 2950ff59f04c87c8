package store

import "github.com/hashicorp/raft"

// TransferLeadership hands leadership to another voter, if this node leads
// and another voter exists; otherwise it does nothing. toID/toAddr name the
// voter to hand it to ("" lets Raft pick the most up-to-date one). A
// gracefully stopping node calls it before asking to be removed from the
// configuration: a leader cannot remove itself without a gap in leadership.
func (s *Store) TransferLeadership(toID, toAddr string) error {
	if !s.IsLeader() {
		return nil
	}
	servers, err := s.Servers()
	if err != nil {
		return err
	}
	others := 0
	for _, sv := range servers {
		if sv.Voter && sv.ID != s.cfg.NodeID {
			others++
		}
	}
	if others == 0 {
		return nil
	}
	var f raft.Future
	if toID != "" {
		f = s.raft.LeadershipTransferToServer(raft.ServerID(toID), raft.ServerAddress(toAddr))
	} else {
		f = s.raft.LeadershipTransfer()
	}
	if err := mapRaftErr(f.Error()); err != nil {
		return err
	}
	s.log.Info("leadership transferred", "to", toID)
	return nil
}
