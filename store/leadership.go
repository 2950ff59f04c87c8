package store

// TransferLeadership hands leadership to another voter, if this node leads
// and another voter exists; otherwise it does nothing. A gracefully stopping
// node calls it before asking to be removed from the configuration: a leader
// cannot remove itself without a gap in leadership.
func (s *Store) TransferLeadership() error {
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
	if err := mapRaftErr(s.raft.LeadershipTransfer().Error()); err != nil {
		return err
	}
	s.log.Info("leadership transferred")
	return nil
}
