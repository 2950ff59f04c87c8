package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/raftkms/raftkms/internal/mpdecode"
	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/transport"
)

// Result is the outcome of an applied command: the log index it was applied
// at and the FSM's response (nil or a domain error).
type Result struct {
	Index uint64
	Err   error
}

// defaultApplyTimeout bounds a write when the caller's context has no
// deadline.
const defaultApplyTimeout = 10 * time.Second

// Propose applies cmd through Raft, on this node if it leads, otherwise by
// forwarding it to the leader. When it returns without error the command is
// committed on a majority and applied on the node that applied it; the FSM's
// answer is in Result.Err.
//
// While there is no leader it waits (within ctx) for one, because a command
// that was never handed to a leader can be retried safely. Once a command
// may have reached a leader's log, failures are ErrUnknownOutcome and never
// retried here: retrying could apply it twice.
func (s *Store) Propose(ctx context.Context, cmd []byte) (Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultApplyTimeout)
		defer cancel()
	}
	start := time.Now()
	defer func() { s.m.applyDuration.Observe(time.Since(start).Seconds()) }()
	// A node cut off from the leader gives up after leaderWait rather than
	// hold the client for its whole deadline: the write was certainly not
	// applied, so the client may retry elsewhere at once. (Its context is
	// made at the first retry: most writes need none.)
	giveUp := start.Add(s.leaderWait())
	var wctx context.Context
	for {
		res, err := s.proposeOnce(ctx, cmd)
		if err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader)) {
			return res, err
		}
		if wctx == nil {
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, giveUp)
			defer cancel()
		}
		if werr := s.waitForLeaderChange(wctx); werr != nil {
			return Result{}, fmt.Errorf("%w: waited %s for a leader (%v)", ErrNoLeader, s.leaderWait(), werr)
		}
	}
}

// leaderWait bounds how long a write waits for a leader to appear: enough
// for a few elections to finish even on a loaded machine.
func (s *Store) leaderWait() time.Duration {
	d := 10 * s.cfg.Timing.ElectionTimeout
	if d < 5*time.Second {
		d = 5 * time.Second
	}
	return d
}

func (s *Store) proposeOnce(ctx context.Context, cmd []byte) (Result, error) {
	if s.IsLeader() {
		return s.applyLocal(ctx, cmd)
	}
	moved := s.leaderMovedCtx()
	addr, id := s.Leader()
	if addr == "" {
		return Result{}, ErrNoLeader
	}
	if moved.Err() != nil { // it moved between the two reads: not sent, look again
		return Result{}, ErrNotLeader
	}
	// A leader cut off mid-write never answers: once this node sees the
	// leader change, wait only a little longer for the answer (an old
	// leader that committed before stepping down still answers at once),
	// so the client hears within a failover, not after its whole deadline,
	// and retries against the new leader.
	// (A callback on the leader's change, not a goroutine per write.)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(moved, func() { time.AfterFunc(s.cfg.Timing.HeartbeatTimeout/5, cancel) })
	defer stop()
	resp, err := s.cfg.Transport.Call(fctx, addr, rpc.StoreApply, cmd)
	if err != nil {
		var re *transport.RemoteError
		switch {
		case errors.Is(err, transport.ErrUnreachable):
			return Result{}, ErrNoLeader // never delivered: safe to retry
		case ctx.Err() == nil && fctx.Err() != nil:
			return Result{}, fmt.Errorf("%w: the leader changed while the write was forwarded to %s and it did not answer; the write may or may not have been applied", ErrUnknownOutcome, addr)
		case errors.Is(err, transport.ErrUnknownMethod):
			// The leader runs a build without this RPC: nothing was applied.
			return Result{}, fmt.Errorf("leader %s cannot accept forwarded writes (version skew): %v", addr, err)
		case errors.As(err, &re):
			return Result{}, fmt.Errorf("leader %s: %s", addr, re.Message)
		default:
			return Result{}, fmt.Errorf("%w: forwarding to leader %s: %v", ErrUnknownOutcome, addr, err)
		}
	}
	var ar applyResponse
	if err := mpdecode.Unmarshal(resp, &ar); err != nil {
		return Result{}, fmt.Errorf("%w: bad answer from leader %s: %v", ErrUnknownOutcome, addr, err)
	}
	if ar.Status != "" {
		return Result{}, statusErr(ar.Status, ar.ErrMsg)
	}
	if ar.Term > 0 {
		// This node answers its client once its own FSM has applied the
		// entry: learn its commit now (commithint.go).
		s.trans.pump.learn(commitHint{Term: ar.Term, Index: ar.Index, LeaderID: raft.ServerID(id), LeaderAddr: raft.ServerAddress(addr)})
	}
	return Result{Index: ar.Index, Err: s.cfg.Errors.Decode(ar.ErrName, ar.ErrMsg)}, nil
}

// applyLocal applies on this node, which believes it leads.
func (s *Store) applyLocal(ctx context.Context, cmd []byte) (Result, error) {
	timeout := time.Until(deadline(ctx))
	if timeout <= 0 {
		return Result{}, ctx.Err()
	}
	f := s.raft.Apply(cmd, timeout)
	if err := s.await(f); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return Result{}, ErrNotLeader
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return Result{}, fmt.Errorf("%w: the leader was too busy to accept the write in time", ErrNoLeader)
		case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
			return Result{}, fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return Result{}, fmt.Errorf("%w: %v", ErrUnknownOutcome, ErrShutdown)
		}
		return Result{}, fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
	}
	s.noteCommitted()
	var ferr error
	if resp := f.Response(); resp != nil {
		e, ok := resp.(error)
		if !ok {
			return Result{}, fmt.Errorf("fsm returned %T, want error", resp)
		}
		ferr = e
	}
	return Result{Index: f.Index(), Err: ferr}, nil
}

// await waits for a future of Apply or Barrier, or for the store to stop.
// Both queue their entry in Raft's apply channel, which is buffered
// (BatchApplyCh), and hashicorp/raft never answers an entry still in that
// buffer when it shuts down: waiting on the future alone would then wait
// forever (a leader shut down right after it was elected left its term's
// barrier there, and Shutdown hung on watchLeadership). At a stop the
// waiting goroutine stays blocked on such a future; that is one goroutine
// per entry caught in the buffer, only at shutdown.
func (s *Store) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-s.stopCh:
		select {
		case err := <-done:
			return err
		default:
			return raft.ErrRaftShutdown
		}
	}
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(defaultApplyTimeout)
}

// waitForLeaderChange waits a little for a leader to appear (or change).
func (s *Store) waitForLeaderChange(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	before, _ := s.Leader()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopCh:
			return ErrShutdown
		case <-t.C:
		}
		now, _ := s.Leader()
		if s.IsLeader() || (now != "" && (now != before || i >= 5)) {
			return nil
		}
	}
}

// applyResponse is the wire answer of a forwarded write. Status carries a
// store-level failure (not leader, unknown outcome) so the proposer maps it
// back to the same sentinel.
type applyResponse struct {
	Index uint64 `msgpack:"i"`
	// Term is the entry's term: with Index, what the forwarding node needs
	// to learn the commit by itself (commithint.go). 0 from an older
	// leader, which nudges instead.
	Term    uint64 `msgpack:"t,omitempty"`
	ErrName string `msgpack:"en"`
	ErrMsg  string `msgpack:"em"`
	Status  string `msgpack:"s"`
}

func statusOf(err error) string {
	switch {
	case errors.Is(err, ErrNotLeader):
		return "not-leader"
	case errors.Is(err, ErrNoLeader):
		return "no-leader"
	case errors.Is(err, ErrUnknownOutcome):
		return "unknown"
	}
	return "error"
}

func statusErr(status, msg string) error {
	switch status {
	case "not-leader":
		return ErrNotLeader
	case "no-leader":
		return fmt.Errorf("%w: %s", ErrNoLeader, msg)
	case "unknown":
		return fmt.Errorf("%w: %s", ErrUnknownOutcome, msg)
	}
	return fmt.Errorf("%w: leader failed: %s", ErrUnknownOutcome, msg)
}

func (s *Store) handleApply(ctx context.Context, req []byte) ([]byte, error) {
	var ar applyResponse
	if !s.IsLeader() {
		ar.Status = statusOf(ErrNotLeader)
	} else if res, err := s.applyLocal(ctx, req); err != nil {
		ar.Status, ar.ErrMsg = statusOf(err), err.Error()
	} else {
		ar.Index = res.Index
		ar.ErrName, ar.ErrMsg = s.cfg.Errors.Encode(res.Err)
		// The forwarding follower answers its client once its own FSM
		// has applied the entry: the entry's term lets it learn the
		// commit from this answer (commithint.go). Without the term (the
		// entry already left the log) it gets a nudge at once, as does an
		// older follower after CommitNudgeDelay (applyLocal's
		// noteCommitted).
		var l raft.Log
		if err := s.logs.GetLog(res.Index, &l); err == nil {
			ar.Term = l.Term
		} else {
			s.nudgeFollowers()
		}
	}
	return msgpack.Marshal(&ar)
}

// noteCommitted runs on the leader each time a write it appended has
// committed. hashicorp/raft sends the commit index to followers only with
// its next AppendEntries: the next write's, or the commit tick's, which is
// long (Timing.CommitTimeout) so that an idle cluster sends nothing but
// heartbeats. So unless another entry is appended within CommitNudgeDelay
// (its AppendEntries, set up after this commit, carries the commit index),
// the leader tells the followers itself: a commit notice to each
// (noticeFollowers), or a no-op entry that carries the commit index when a
// follower takes no notices (nudgeFollowers). A client writing back to back
// never waits for either; the last write of a burst gets one.
func (s *Store) noteCommitted() {
	last := s.raft.LastIndex()
	s.nudgeMu.Lock()
	if last > s.nudgeAfter {
		s.nudgeAfter = last
	}
	if !s.nudgeArmed {
		s.nudgeArmed = true
		s.nudgeTimer.Reset(s.cfg.Timing.CommitNudgeDelay)
	}
	s.nudgeMu.Unlock()
}

// delayedNudge is noteCommitted's timer.
func (s *Store) delayedNudge() {
	s.nudgeMu.Lock()
	after := s.nudgeAfter
	s.nudgeArmed = false
	s.nudgeMu.Unlock()
	if s.raft.LastIndex() > after || s.alone() {
		return // a later entry carried the commit index, or there is no one to tell
	}
	if !s.noticeFollowers() {
		s.nudgeFollowers()
	}
}

// noticeFollowers tells every other server the leader's commit index by RPC
// instead of a nudge entry (no append, no fsync on any node). It reports
// false when a reachable follower could not be told (an older version
// without the RPC, no answer in time) or this node no longer leads: the
// caller nudges then, which tells everyone.
func (s *Store) noticeFollowers() bool {
	if !s.IsLeader() {
		return false
	}
	commit := s.raft.CommitIndex()
	var l raft.Log
	if err := s.logs.GetLog(commit, &l); err != nil {
		return false
	}
	body, err := msgpack.Marshal(&commitHint{Term: l.Term, Index: commit, LeaderID: raft.ServerID(s.cfg.NodeID), LeaderAddr: raft.ServerAddress(s.Addr())})
	if err != nil {
		return false
	}
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timing.HeartbeatTimeout)
	defer cancel()
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == s.cfg.NodeID {
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			// A follower that cannot be reached learns the commit from
			// Raft's AppendEntries when it is back, as it would a nudge.
			if _, err := s.cfg.Transport.Call(ctx, addr, rpc.StoreCommit, body); err != nil && !errors.Is(err, transport.ErrUnreachable) {
				failed.Store(true)
			}
		}(string(srv.Address))
	}
	wg.Wait()
	if failed.Load() {
		return false
	}
	s.m.notices.Inc()
	return true
}

// handleCommit takes the leader's commit notice (RPC store.commit, a
// msgpack commitHint): the hint pump hands its Raft the commit, as for a
// write this node forwarded.
func (s *Store) handleCommit(_ context.Context, body []byte) ([]byte, error) {
	var h commitHint
	if err := mpdecode.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("commit notice: %w", err)
	}
	if h.Term > 0 && h.Index > 0 && !s.IsLeader() {
		s.trans.pump.learn(h)
	}
	return nil, nil
}

// alone reports whether this node is the only server of the configuration
// (a dev node): it has no followers to nudge.
func (s *Store) alone() bool {
	f := s.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) <= 1
}

// nudgeFollowers makes the leader send its commit index to every follower
// at once. hashicorp/raft sends the commit index with the next
// AppendEntries, which without further writes waits for the commit tick;
// appending an entry — Config.Noop, which every FSM applies as nothing and
// so counts in its applied index (a Raft barrier would not: a client
// waiting for the commit index would wait for the next real write) — sends
// one that carries the commit index right away. Nudges coalesce: at
// most one is in flight, and nudges wanted meanwhile get one more once it
// is done. Under load the writes' own AppendEntries carry the commit index
// and the nudges ride along with them.
//
// A nudge's own commit reaches the followers by a commit notice
// (noticeFollowers: no entry, so no further nudge), sent beside the nudges
// (it waits up to a heartbeat timeout for a follower that does not answer)
// and coalesced like them. A follower the notice misses (an older version,
// no answer in time) applies the nudge with the next entry or commit tick;
// read indexes skip nudges (lastCommandAtOrBelow), so no reader waits for
// one, but a client on a follower that waits for the leader's commit index
// (X-Kms-Min-Index from /v1/status) before the nudge has reached it waits
// for the nudge itself.
func (s *Store) nudgeFollowers() {
	s.nudger.trigger()
}

func (s *Store) nudgeOnce() {
	var f raft.Future
	if s.cfg.Noop != nil {
		f = s.raft.Apply(s.cfg.Noop, s.cfg.Timing.ElectionTimeout)
	} else {
		f = s.raft.Barrier(s.cfg.Timing.ElectionTimeout)
	}
	if err := s.await(f); err != nil {
		return // no longer leader, or shutting down: nothing to nudge
	}
	s.m.nudges.Inc()
	if !s.alone() {
		// Best effort: a follower not told learns the commit with the
		// next entry or commit tick, as before notices.
		s.noticer.trigger()
	}
}

// coalescer runs fn in a goroutine of its own, one run at a time: triggers
// that come while it runs get one more run once it is done, not one each.
type coalescer struct {
	fn              func()
	wanted, running atomic.Bool
}

func (c *coalescer) trigger() {
	c.wanted.Store(true)
	if c.running.CompareAndSwap(false, true) {
		go c.loop()
	}
}

func (c *coalescer) loop() {
	for {
		for c.wanted.Swap(false) {
			c.fn()
		}
		c.running.Store(false)
		// A trigger after the last Swap saw running still set and left it
		// to this loop: take it, unless another loop did.
		if !c.wanted.Load() || !c.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// ReadIndex returns an index such that a node that has applied it has seen
// every write acknowledged before the call started: the leader's commit
// index (as the last command at or below it), confirmed by a round of
// heartbeats to a quorum, taken after a barrier committed in the leader's
// current term. On a follower it asks the leader.
func (s *Store) ReadIndex(ctx context.Context) (uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultApplyTimeout)
		defer cancel()
	}
	wctx, cancel := context.WithTimeout(ctx, s.leaderWait())
	defer cancel()
	for {
		idx, err := s.readIndexOnce(ctx)
		if err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader)) {
			return idx, err
		}
		if werr := s.waitForLeaderChange(wctx); werr != nil {
			return 0, fmt.Errorf("%w: waited %s for a leader (%v)", ErrNoLeader, s.leaderWait(), werr)
		}
	}
}

func (s *Store) readIndexOnce(ctx context.Context) (uint64, error) {
	if s.IsLeader() {
		return s.leaderReadIndex(ctx)
	}
	addr, _ := s.Leader()
	if addr == "" {
		return 0, ErrNoLeader
	}
	// A leader that is paused or cut off must not hold the reader for its
	// whole deadline: a read index normally takes one round trip.
	cctx, cancel := context.WithTimeout(ctx, s.leaderWait())
	defer cancel()
	// The leader nudges when this node's commit index is below the read
	// index: the reader then waits a round trip, not a commit tick.
	req, err := msgpack.Marshal(&readIndexRequest{Commit: s.raft.CommitIndex()})
	if err != nil {
		return 0, err
	}
	resp, err := s.cfg.Transport.Call(cctx, addr, rpc.StoreReadIndex, req)
	if err != nil {
		return 0, fmt.Errorf("%w: read index from %s: %v", ErrNoLeader, addr, err)
	}
	var ri readIndexResponse
	if err := mpdecode.Unmarshal(resp, &ri); err != nil {
		return 0, fmt.Errorf("read index from %s: %w", addr, err)
	}
	if ri.Status != "" {
		return 0, statusErr(ri.Status, ri.ErrMsg)
	}
	return ri.Index, nil
}

func (s *Store) leaderReadIndex(ctx context.Context) (uint64, error) {
	term := s.raft.CurrentTerm()
	for {
		s.mu.Lock()
		ready, ch := s.readyTerm >= term, s.readyCh
		s.mu.Unlock()
		if ready {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: leader not ready: %v", ErrNoLeader, ctx.Err())
		case <-s.stopCh:
			return 0, ErrShutdown
		}
	}
	idx := s.lastCommandAtOrBelow(s.raft.CommitIndex())
	if err := s.raft.VerifyLeader().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, ErrNotLeader
		}
		return 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	if s.raft.CurrentTerm() != term {
		return 0, ErrNotLeader
	}
	return idx, nil
}

// lastCommandAtOrBelow maps a Raft index to the index of the last command
// entry at or below it. The FSM only sees command entries (Raft keeps no-ops,
// barriers and configuration changes to itself), so its applied index counts
// commands; a reader that waited for the raw commit index could wait for an
// entry its FSM never receives.
// CommandIndexAtOrBelow is the index a node must have applied to have
// applied everything up to index: the last FSM command at or below it when
// this node's log already holds index (Raft's own entries — a new term's
// no-op, configuration changes, barriers — never reach the FSM, so its
// applied index can stay below such an index until the next write), and
// index itself when it does not yet.
//
// The caller says index is committed. This node may not know it yet: the
// leader does not push the commit of its own trailing no-ops (nudges) to the
// followers. Its log up to index is nevertheless the committed one when its
// entry at index is of the current term (Raft's log matching: that entry
// came from this term's leader, whose log holds every committed entry), so
// the mapping holds then too.
func (s *Store) CommandIndexAtOrBelow(index uint64) uint64 {
	if index == 0 || s.raft.LastIndex() < index {
		return index
	}
	if s.raft.CommitIndex() < index {
		var l raft.Log
		if err := s.logs.GetLog(index, &l); err != nil || l.Term != s.raft.CurrentTerm() {
			return index
		}
	}
	return s.lastCommandAtOrBelow(index)
}

// lastCommandAtOrBelow skips the no-op command too (Config.Noop: the
// leader's nudges, and any other no-op write, such as the one after an
// operator restore): it changes nothing, so the state at it is the state at
// the last command before it, and a follower learns a nudge's own commit
// only from its notice, a round trip after the commit (or, when the notice
// misses it, with the next entry or commit tick), so a read index that named
// one would make a follower wait for that.
func (s *Store) lastCommandAtOrBelow(index uint64) uint64 {
	const maxScan = 1024
	var l raft.Log
	for i := index; i > 0 && index-i < maxScan; i-- {
		if err := s.logs.GetLog(i, &l); err != nil {
			// Compacted into a snapshot, or the hole an operator restore
			// leaves: everything below was applied by this leader's FSM.
			return min(index, s.fsm.AppliedIndex())
		}
		if l.Type == raft.LogCommand && !s.isNudge(l.Data) {
			return i
		}
	}
	return min(index, s.fsm.AppliedIndex())
}

func (s *Store) isNudge(data []byte) bool {
	return s.cfg.Noop != nil && bytes.Equal(data, s.cfg.Noop)
}

// readIndexRequest is a follower's read-index request: its commit index.
// Older nodes sent an empty body (no nudge then).
type readIndexRequest struct {
	Commit uint64 `msgpack:"c"`
}

type readIndexResponse struct {
	Index  uint64 `msgpack:"i"`
	Status string `msgpack:"s"`
	ErrMsg string `msgpack:"em"`
}

func (s *Store) handleReadIndex(ctx context.Context, body []byte) ([]byte, error) {
	var ri readIndexResponse
	if !s.IsLeader() {
		ri.Status = statusOf(ErrNotLeader)
	} else if idx, err := s.leaderReadIndex(ctx); err != nil {
		ri.Status, ri.ErrMsg = statusOf(err), err.Error()
	} else {
		ri.Index = idx
		// A follower that does not know idx is committed (it missed the
		// last nudge, it is catching up after a restart or a partition,
		// or a new leader's commit has not reached it) would otherwise
		// wait for the commit tick: an appended entry also makes Raft
		// send it whatever it lacks at once.
		var req readIndexRequest
		if len(body) > 0 && mpdecode.Unmarshal(body, &req) == nil && req.Commit < idx {
			s.nudgeFollowers()
		}
	}
	return msgpack.Marshal(&ri)
}

// Barrier makes this node's FSM reflect every write committed before the
// call: it obtains a read index and waits until the local FSM has applied it.
func (s *Store) Barrier(ctx context.Context) (uint64, error) {
	idx, err := s.ReadIndex(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.fsm.WaitForIndex(ctx, idx); err != nil {
		return 0, err
	}
	return idx, nil
}
