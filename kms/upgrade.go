package kms

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/raftkms/raftkms/fsm"
)

// ErrUpgrading means a write needs a log level (fsm/version.go) that some
// server of the Raft configuration does not run yet: proposing it would stop
// that server at the entry. Nothing was proposed; the client retries once
// every node runs a build of that level (API: 503
// ServiceUnavailable.Upgrading).
var ErrUpgrading = errors.New("the cluster is being upgraded")

// ServerLevel is one server of the Raft configuration and the log level its
// build advertises in gossip.
type ServerLevel struct {
	ID      string
	Version string // the build's version ("" when gossip does not know the server)
	Level   int    // fsm.BaseLevel for a build that advertises none, or a server gossip does not know
	Known   bool   // gossip knows the server
}

// UpgradeStatus is what /v1/status shows of a rolling upgrade.
type UpgradeStatus struct {
	// BuildLevel is this node's fsm.LogLevel; ClusterLevel the lowest level
	// among the Raft servers (writes above it are refused); FinalizedLevel
	// the level `kmsctl operator upgrade finalize` recorded (0: none).
	BuildLevel, ClusterLevel, FinalizedLevel int
	// Behind lists the servers below BuildLevel.
	Behind []ServerLevel
}

// serverLevels lists the Raft servers with their levels, lowest first.
func (s *Service) serverLevels() ([]ServerLevel, error) {
	if s.cfg.ServerLevels == nil {
		return []ServerLevel{{ID: s.cfg.NodeID, Level: fsm.LogLevel, Known: true}}, nil
	}
	out, err := s.cfg.ServerLevels()
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Level != out[j].Level {
			return out[i].Level < out[j].Level
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Upgrade reports the cluster's levels as this node sees them.
func (s *Service) Upgrade() (UpgradeStatus, error) {
	st := UpgradeStatus{BuildLevel: fsm.LogLevel, FinalizedLevel: s.fsm.FinalizedLevel()}
	servers, err := s.serverLevels()
	if err != nil {
		return st, err
	}
	st.ClusterLevel = fsm.LogLevel
	for _, sv := range servers {
		st.ClusterLevel = min(st.ClusterLevel, sv.Level)
		if sv.Level < fsm.LogLevel {
			st.Behind = append(st.Behind, sv)
		}
	}
	return st, nil
}

// requireLevel refuses with ErrUpgrading unless every Raft server runs a
// build of at least level; what names the write in the message.
func (s *Service) requireLevel(level int, what string) error {
	if level <= fsm.BaseLevel {
		return nil // every server applies level 1
	}
	servers, err := s.serverLevels()
	if err != nil {
		return err
	}
	var behind []string
	for _, sv := range servers {
		if sv.Level >= level {
			continue
		}
		switch {
		case !sv.Known:
			behind = append(behind, fmt.Sprintf("node %s (not seen by gossip, so its level is unknown)", sv.ID))
		case sv.Version != "":
			behind = append(behind, fmt.Sprintf("node %s runs kmsd %s (log level %d)", sv.ID, sv.Version, sv.Level))
		default:
			behind = append(behind, fmt.Sprintf("node %s runs log level %d", sv.ID, sv.Level))
		}
	}
	if len(behind) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; %s needs log level %d: retry when every node runs this build (kmsctl operator members shows each node's version and level)",
		ErrUpgrading, strings.Join(behind, ", "), what, level)
}

// gate refuses a command of a level some server cannot apply (propose
// calls it for every write, before wrapping it in a signature, which is
// level 1).
func (s *Service) gate(t fsm.CommandType) error {
	l, ok := fsm.CommandLevel(t)
	if !ok {
		return fmt.Errorf("%w: %d", fsm.ErrUnknownCommand, uint8(t))
	}
	if l <= fsm.BaseLevel {
		return nil // the hot path: no allocation
	}
	return s.requireLevel(l, "this write ("+t.String()+")")
}

// FinalizeUpgrade records in the replicated log that every server runs this
// build's level (kmsctl operator upgrade finalize). It is refused with
// ErrUpgrading while a server of a lower level remains. From then on the
// leader adds no server of a lower level (a rollback below it is no longer
// possible). The operator only.
func (s *Service) FinalizeUpgrade(ctx context.Context, c Caller) (int, uint64, error) {
	if err := s.requireOperator(c, "finalizing an upgrade"); err != nil {
		return 0, 0, err
	}
	if err := s.requireLevel(fsm.LogLevel, "finalizing the upgrade"); err != nil {
		return 0, 0, err
	}
	idx, err := s.propose(ctx, fsm.CmdFinalizeLevel, fsm.FinalizeLevelCmd{Now: s.nowMillis(), Level: fsm.LogLevel})
	return fsm.LogLevel, idx, err
}
