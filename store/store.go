// Package store is the Raft node: it opens the log and stable store
// (raft-wal, or raft-boltdb in an older data dir) and the snapshot store on
// disk, bootstraps, applies commands with a deadline, forwards writes to the
// leader over the cluster transport, serves linearizable read indexes,
// changes membership and restores operator snapshots.
//
// It does not know what a key is: commands are opaque bytes and responses
// are errors, carried between nodes by the ErrorCodec it is given.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/transport"
)

// Errors a caller maps to answers. Only ErrUnknownOutcome leaves a write's
// fate open: the command may or may not be applied.
var (
	ErrNotLeader      = errors.New("this node is not the Raft leader")
	ErrNoLeader       = errors.New("the cluster has no leader (no quorum)")
	ErrUnknownOutcome = errors.New("the write's outcome is unknown: it may or may not have been applied")
	ErrShutdown       = errors.New("the Raft node is shutting down")
)

// FSM is what the store needs from the state machine besides raft.FSM.
type FSM interface {
	raft.FSM
	AppliedIndex() uint64
	WaitForIndex(ctx context.Context, index uint64) error
}

// ErrorCodec carries a command's response error between nodes when a write
// was forwarded to the leader.
type ErrorCodec struct {
	Encode func(error) (name, msg string)
	Decode func(name, msg string) error
}

// Timing holds the Raft timeouts. Tests shrink them.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is hashicorp/raft's commit tick: with no new entries,
	// the leader sends each follower an AppendEntries (its commit index, and
	// a retry for a follower that fell behind) every [CT, 2·CT). It used to
	// be what told followers about the last write of a burst, so it was
	// short (20–50 ms) and an idle cluster spent most of its CPU on it. The
	// store now tells followers itself (CommitNudgeDelay, nudgeFollowers),
	// so it is as long as a heartbeat timeout: it only bounds how long an
	// idle leader takes to retry a follower nobody asks anything of.
	CommitTimeout time.Duration
	// CommitNudgeDelay is how long the leader waits, after a write it
	// applied committed, for another entry to carry the commit index to the
	// followers before it appends a no-op that does (0: 10 ms). Followers
	// learn each write within about this plus a round trip.
	CommitNudgeDelay time.Duration
}

// defaultCommitNudgeDelay: long enough that one client writing back to back
// through the leader (a write every 1–2 ms) never waits for a nudge's fsync,
// short enough that followers learn a write sooner than the old 20–100 ms
// commit tick did.
const defaultCommitNudgeDelay = 10 * time.Millisecond

// DefaultTiming suits nodes on one LAN or across close zones.
func DefaultTiming() Timing {
	return Timing{HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout: time.Second, CommitNudgeDelay: defaultCommitNudgeDelay}
}

// FastTiming is for tests on loopback. Shorter still makes leaders step
// down spuriously when `go test` runs packages in parallel under the race
// detector on two cores. The commit tick is as long as in production (a
// heartbeat timeout), so tests exercise the nudges that replace it.
func FastTiming() Timing {
	return Timing{HeartbeatTimeout: 400 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond, LeaderLeaseTimeout: 200 * time.Millisecond,
		CommitTimeout: 400 * time.Millisecond, CommitNudgeDelay: 2 * time.Millisecond}
}

// Config configures a Store.
type Config struct {
	NodeID    string
	DataDir   string
	Transport *transport.Transport
	FSM       FSM
	Errors    ErrorCodec
	// Noop is a command the FSM applies as a no-op. The leader appends it
	// to tell followers at once that a write they forwarded is committed
	// (nudgeFollowers); unlike a Raft barrier it reaches the FSM, so every
	// replica's applied index reaches the commit index. Nil: a barrier.
	Noop    []byte
	Timing  Timing
	Logger  hclog.Logger
	Metrics prometheus.Registerer
	// SnapshotThreshold is how many log entries trigger a snapshot (0 =
	// Raft's default).
	SnapshotThreshold uint64
	// LogStore is the Raft log store for a data dir that has none yet:
	// LogStoreWAL (also when empty) or LogStoreBolt. A data dir keeps the
	// backend it has; asking for the other one is refused (logbackend.go).
	LogStore string
	// WALSegmentSize is the size of raft-wal's segment files (0:
	// DefaultWALSegmentSize). Each is preallocated; tests use small ones.
	WALSegmentSize int
	// PeerStopping reports whether the peer at a Raft address has announced
	// that it is stopping on purpose (gossip's leaving flag): Raft's failures
	// to reach it are then logged as warnings, not errors. Optional; called
	// only on those failures, from Raft's goroutines.
	PeerStopping func(addr string) bool
}

// Store is one Raft node.
type Store struct {
	cfg     Config
	log     hclog.Logger
	raft    *raft.Raft
	backend *logBackend   // the log and stable store on disk (logbackend.go)
	logs    raft.LogStore // the backend's log behind the cache of the newest entries
	snaps   *snapshotStore
	trans   *guardedTransport
	fsm     FSM
	m       *metrics
	stopCh  chan struct{}
	wg      sync.WaitGroup

	mu         sync.Mutex
	readyTerm  uint64        // term in which this leader's barrier committed
	readyCh    chan struct{} // closed when readyTerm is set for the current term
	leaderTerm uint64
	// leaderMoved is canceled (and replaced) whenever this node's idea of
	// the leader changes, including to "none": a write forwarded to the
	// old leader stops waiting for its answer (proposeOnce).
	leaderMoved     context.Context
	leaderMovedDone context.CancelFunc

	// nudgeFollowers' nudges, and the commit notices after them.
	nudger, noticer coalescer
	// The delayed nudge after a write (noteCommitted): the last index the
	// log had when a write committed, and whether the timer is armed.
	nudgeMu    sync.Mutex
	nudgeAfter uint64
	nudgeArmed bool
	nudgeTimer *time.Timer
}

// Open opens (or creates) the node's Raft state under DataDir/raft.
func Open(cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming()
	}
	if cfg.Timing.CommitNudgeDelay <= 0 {
		cfg.Timing.CommitNudgeDelay = defaultCommitNudgeDelay
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	backend, err := openLogBackend(dir, cfg.LogStore, cfg.WALSegmentSize, cfg.Logger)
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("raft log store", "backend", backend.name, "dir", dir)
	snaps, err := newSnapshotStore(dir, cfg.Logger.Named("snapshot"))
	if err != nil {
		backend.Close()
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	trans := &guardedTransport{NetworkTransport: raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  cfg.Transport.StreamLayer(),
		MaxPool: 5,
		Timeout: 10 * time.Second,
		Logger:  raftLogger{Logger: cfg.Logger.Named("raft-net"), stopping: cfg.PeerStopping},
	})}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = raftLogger{Logger: cfg.Logger.Named("raft"), stopping: cfg.PeerStopping}
	rc.HeartbeatTimeout = cfg.Timing.HeartbeatTimeout
	rc.ElectionTimeout = cfg.Timing.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.Timing.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.Timing.CommitTimeout
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
		rc.TrailingLogs = cfg.SnapshotThreshold
	}
	// Concurrent writes share one append and one fsync (Raft's group
	// commit); a buffered apply channel lets more of them gather while the
	// previous append is on disk.
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = maxAppendEntries
	perAppend := newEntriesPerAppend()
	// The newest entries stay in memory: the leader reads each entry back
	// to send it to the followers, a follower reads each back to apply it,
	// and both were bbolt reads (6 % of a node's CPU under CreateKey load).
	// The cache and the counter pass IsMonotonic through: raft-wal allows
	// no gap in its indexes, so after a restore or an installed snapshot
	// Raft must empty the log instead of leaving one.
	logs, err := raft.NewLogCache(logCacheEntries, countingLogStore{LogStore: backend.logs, entries: perAppend})
	if err != nil {
		trans.Close()
		backend.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	r, err := raft.NewRaft(rc, cfg.FSM, logs, backend.stable, snaps, trans)
	if err != nil {
		trans.Close()
		backend.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	commitIndex := r.CommitIndex
	trans.pump.commitIndex.Store(&commitIndex)
	s := &Store{
		cfg: cfg, log: cfg.Logger.Named("store"), raft: r, backend: backend, logs: logs, snaps: snaps, trans: trans,
		fsm: cfg.FSM, stopCh: make(chan struct{}), readyCh: make(chan struct{}),
	}
	s.leaderMoved, s.leaderMovedDone = context.WithCancel(context.Background())
	s.m = newMetrics(cfg.Metrics, s, perAppend)
	s.nudgeTimer = time.AfterFunc(time.Hour, s.delayedNudge)
	s.nudgeTimer.Stop()
	s.nudger.fn, s.noticer.fn = s.nudgeOnce, func() { s.noticeFollowers() }
	cfg.Transport.Handle(rpc.StoreApply, s.handleApply)
	cfg.Transport.Handle(rpc.StoreReadIndex, s.handleReadIndex)
	cfg.Transport.Handle(rpc.StoreCommit, s.handleCommit)
	s.wg.Add(2)
	go s.watchLeadership()
	go s.watchLeader()
	s.campaignIfAlone()
	return s, nil
}

// watchLeader cancels leaderMoved at every change of the leader this node
// knows (Raft's LeaderObservation: a new leader, or none after a heartbeat
// timeout).
func (s *Store) watchLeader() {
	defer s.wg.Done()
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(obs)
	defer s.raft.DeregisterObserver(obs)
	for {
		select {
		case <-s.stopCh:
			return
		case <-ch:
			s.mu.Lock()
			s.leaderMovedDone()
			s.leaderMoved, s.leaderMovedDone = context.WithCancel(context.Background())
			s.mu.Unlock()
		}
	}
}

// leaderMovedCtx is canceled at the next change of leader.
func (s *Store) leaderMovedCtx() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaderMoved
}

// ID is this node's Raft server id.
func (s *Store) ID() string { return s.cfg.NodeID }

// Addr is this node's Raft (cluster) address.
func (s *Store) Addr() string { return s.cfg.Transport.Addr() }

// HasState reports whether this node has any Raft state on disk (it has been
// part of a cluster before).
func (s *Store) HasState() (bool, error) {
	return raft.HasExistingState(s.backend.logs, s.backend.stable, s.snaps)
}

// Bootstrap starts a new cluster with the given servers. Every member of the
// initial set may call it with the same list.
func (s *Store) Bootstrap(servers []Server) error {
	cfg := raft.Configuration{}
	for _, sv := range servers {
		suffrage := raft.Voter
		if !sv.Voter {
			suffrage = raft.Nonvoter
		}
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(sv.ID), Address: raft.ServerAddress(sv.Addr), Suffrage: suffrage})
	}
	err := s.raft.BootstrapCluster(cfg).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil // already has state: nothing to do
	}
	if err == nil {
		s.campaignAfterBootstrap(servers)
	}
	return err
}

// BootstrapSelf starts a single-node cluster (dev mode).
func (s *Store) BootstrapSelf() error {
	return s.Bootstrap([]Server{{ID: s.cfg.NodeID, Addr: s.Addr(), Voter: true}})
}

// Server is one member of the Raft configuration.
type Server struct {
	ID, Addr string
	Voter    bool
}

// Servers returns the current Raft configuration.
func (s *Store) Servers() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Server
	for _, sv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(sv.ID), Addr: string(sv.Address), Voter: sv.Suffrage == raft.Voter})
	}
	return out, nil
}

// IsLeader reports whether this node is the leader.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's address and id, empty when unknown.
func (s *Store) Leader() (addr, id string) {
	a, i := s.raft.LeaderWithID()
	return string(a), string(i)
}

// State is the Raft role name: Leader, Follower, Candidate, Shutdown.
func (s *Store) State() string { return s.raft.State().String() }

// AppliedIndex is the FSM's applied index.
func (s *Store) AppliedIndex() uint64 { return s.fsm.AppliedIndex() }

// CommitIndex is the highest index this node knows to be committed.
func (s *Store) CommitIndex() uint64 { return s.raft.CommitIndex() }

// LastContact is when a follower last heard from the leader.
func (s *Store) LastContact() time.Time { return s.raft.LastContact() }

// Stats exposes Raft's own counters for the status page.
func (s *Store) Stats() map[string]string { return s.raft.Stats() }

// AddVoter adds or promotes a voter (leader only).
func (s *Store) AddVoter(id, addr string) error {
	return mapRaftErr(s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error())
}

// AddNonvoter adds a non-voting member (leader only).
func (s *Store) AddNonvoter(id, addr string) error {
	return mapRaftErr(s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error())
}

// DemoteVoter turns a voter into a non-voter (leader only).
func (s *Store) DemoteVoter(id string) error {
	return mapRaftErr(s.raft.DemoteVoter(raft.ServerID(id), 0, 10*time.Second).Error())
}

// RemoveServer removes a member (leader only).
func (s *Store) RemoveServer(id string) error {
	return mapRaftErr(s.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error())
}

func mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	}
	return err
}

// watchLeadership commits a barrier at the start of each term this node
// leads. Until it has, the leader's commit index may lag entries committed by
// the previous leader, so read indexes wait for it (STYLE: "a barrier
// committed in the current term").
func (s *Store) watchLeadership() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stopCh:
			return
		case isLeader := <-s.raft.LeaderCh():
			if !isLeader {
				continue
			}
			term := s.raft.CurrentTerm()
			if err := s.await(s.raft.Barrier(30 * time.Second)); err != nil {
				s.log.Warn("leader barrier failed", "term", term, "error", err)
				continue
			}
			s.mu.Lock()
			if term > s.readyTerm {
				s.readyTerm = term
				close(s.readyCh)
				s.readyCh = make(chan struct{})
			}
			s.mu.Unlock()
			// Entries the previous leader committed, and this term's
			// own, are known committed here; tell the followers now
			// rather than at the next commit tick.
			if !s.alone() {
				s.nudgeFollowers()
			}
			s.log.Info("leadership established", "term", term, "index", s.fsm.AppliedIndex())
		}
	}
}

// Shutdown stops the node. A leader first hands leadership to another voter
// so the cluster does not wait an election timeout.
func (s *Store) Shutdown() error {
	if s.IsLeader() {
		servers, _ := s.Servers()
		voters := 0
		for _, sv := range servers {
			if sv.Voter {
				voters++
			}
		}
		if voters > 1 {
			if err := s.raft.LeadershipTransfer().Error(); err != nil {
				s.log.Warn("leadership transfer failed", "error", err)
			} else {
				s.log.Info("leadership transferred")
			}
		}
	}
	err := s.stopRaft()
	if cerr := s.backend.Close(); err == nil {
		err = cerr
	}
	return err
}

// Snapshot forces a Raft snapshot now (log compaction).
func (s *Store) Snapshot() error {
	return s.raft.Snapshot().Error()
}

// Restore replaces the cluster's state with an operator snapshot (leader
// only). The caller must have verified the snapshot completely: Raft panics
// if the FSM refuses it halfway. index is the applied index recorded in the
// snapshot; Raft places the restored state above both it and its own last
// index, so the FSM's applied index never runs ahead of Raft's. applied,
// when not nil, is called once the restore is in the leader's log and state
// (what remains is the followers' install), at most once and never after
// Restore returns. Restore returns when a majority holds the restore.
func (s *Store) Restore(r io.Reader, size int64, index uint64, timeout time.Duration, applied func()) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size, Index: index}
	rr := &restoreReader{r: r, s: s, read: make(chan struct{})}
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		s.afterRestore(rr, done, !s.alone(), applied)
	}()
	err := s.raft.Restore(meta, rr, timeout)
	close(done)
	<-ended // applied is never called after Restore returns
	return mapRaftErr(err)
}

// restoreNudgeDelays space the entries afterRestore appends.
var restoreNudgeDelays = []time.Duration{10 * time.Millisecond, 40 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond}

// afterRestore calls applied once an operator restore has taken effect on
// the leader and, with nudge (there are followers), wakes the replicators. The restore leaves the leader's log starting
// past every follower's next entry, so the first AppendEntries after it
// fails; hashicorp/raft's replicator then drops from pipeline mode to its
// RPC loop, which sends the restored snapshot only at the next new entry or
// commit tick (Timing.CommitTimeout, 1 s by default, up to twice that): a
// second or two of an operator restore spent waiting (issue 16). A few
// no-op entries shortly after the restore, when that failure has happened,
// wake it; raft.Restore returns only when its own no-op, after the
// restore, has committed, so no more are needed after that.
func (s *Store) afterRestore(rr *restoreReader, done <-chan struct{}, nudge bool, applied func()) {
	select {
	case <-rr.read: // raft's leader loop has read the whole snapshot
	case <-done:
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.raft.LastIndex() <= rr.before.Load() { // the restore not yet in the log
		select {
		case <-tick.C:
		case <-done:
			return
		}
	}
	if applied != nil {
		applied()
	}
	if !nudge {
		return
	}
	for _, d := range restoreNudgeDelays {
		select {
		case <-time.After(d):
		case <-done:
			return
		}
		// Not waited for: the entry commits only once a follower has
		// installed the restored snapshot.
		if s.cfg.Noop != nil {
			s.raft.Apply(s.cfg.Noop, s.cfg.Timing.ElectionTimeout)
		} else {
			s.raft.Barrier(s.cfg.Timing.ElectionTimeout)
		}
		s.m.nudges.Inc()
	}
}

// restoreReader is the snapshot handed to raft.Restore: it notes the
// leader's last index when raft starts reading it (inside raft's leader
// loop, which appends nothing else until the restore is done) and closes
// read at its end.
type restoreReader struct {
	r      io.Reader
	s      *Store
	began  bool
	before atomic.Uint64
	read   chan struct{}
	ended  bool
}

func (rr *restoreReader) Read(p []byte) (int, error) {
	if !rr.began {
		rr.began = true
		rr.before.Store(rr.s.raft.LastIndex())
	}
	n, err := rr.r.Read(p)
	if err == io.EOF && !rr.ended {
		rr.ended = true
		close(rr.read)
	}
	return n, err
}

// caughtUpLag is how far behind its known commit index a node may be and
// still call itself caught up: under a stream of writes the applied index
// trails by a batch, and health must not flap with every batch.
const caughtUpLag = 256

// maxAppendEntries bounds the entries of one log append on the leader and
// of one AppendEntries RPC (Raft's default is 64): enough for every write
// of a few hundred concurrent clients to share one fsync.
const maxAppendEntries = 256

// logCacheEntries is how many of the newest log entries stay in memory
// (two full appends; Consul keeps 512 too): ~0.5 MB of CreateKey entries.
const logCacheEntries = 512

// CaughtUp reports whether this node has applied (nearly) every entry it
// knows to be committed: false while it replays a backlog after a restart.
func (s *Store) CaughtUp() bool { return s.raft.AppliedIndex()+caughtUpLag >= s.raft.CommitIndex() }

// Kill stops Raft without a leadership transfer, as a crash would (tests).
func (s *Store) Kill() {
	s.stopRaft()
	s.backend.Close()
}

// stopRaft stops Raft and its transport; the log store closes after it.
// The transport first stops handing heartbeats to Raft directly (its fast
// path runs Raft's heartbeat handling on the connection's goroutine, which
// Raft's shutdown does not wait for: a heartbeat carrying a new term then
// wrote the term to a log store already closed, and Raft panics on that):
// from then on a heartbeat waits for Raft's main loop like any other RPC
// and is refused once the transport closes — and stopRaft waits for the
// heartbeats still being handled on the fast path (guardedTransport), which
// the handler's removal alone did not: one caught there at a stop still
// reached the closed log store.
func (s *Store) stopRaft() error {
	close(s.stopCh)
	s.nudgeTimer.Stop()
	s.trans.SetHeartbeatHandler(nil)
	s.trans.stopHeartbeats()
	err := s.raft.Shutdown().Error()
	s.wg.Wait()
	s.trans.Close()
	return err
}
