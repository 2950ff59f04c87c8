package kms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/mpdecode"
	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/store"
	"github.com/raftkms/raftkms/transport"
)

// restoreTimeout bounds the whole restore on the leader.
const restoreTimeout = 2 * time.Minute

// SaveSnapshot writes a consistent snapshot of the whole cluster state to
// w: this node first catches up with every write acknowledged before the
// call (a linearizable read), then writes its catalogue at one applied
// index. Key material and secrets in it are wrapped under the root key.
func (s *Service) SaveSnapshot(ctx context.Context, c Caller, w io.Writer) (uint64, error) {
	if err := s.requireOperator(c, "snapshot save"); err != nil {
		return 0, err
	}
	if err := s.LinearizableRead(ctx); err != nil {
		return 0, err
	}
	p := &saveProgress{w: w, started: time.Now()}
	s.saving.Store(p)
	defer s.saving.CompareAndSwap(p, nil)
	return s.fsm.WriteSnapshotTo(p)
}

// SaveProgress is what a snapshot save running on this node has done, for
// /v1/status (a million keys take seconds before the download starts).
type SaveProgress struct {
	Started time.Time
	Bytes   int64 // written so far
}

// SaveInProgress reports the latest snapshot save still running here.
func (s *Service) SaveInProgress() (SaveProgress, bool) {
	p := s.saving.Load()
	if p == nil {
		return SaveProgress{}, false
	}
	return SaveProgress{Started: p.started, Bytes: p.bytes.Load()}, true
}

// saveProgress counts what a save writes.
type saveProgress struct {
	w       io.Writer
	started time.Time
	bytes   atomic.Int64
}

func (p *saveProgress) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.bytes.Add(int64(n))
	return n, err
}

// RestoreProgress is what a restore running on this node is doing, for
// /v1/status (kmsctl shows it while it waits): a million keys take tens of
// seconds after the upload.
type RestoreProgress struct {
	Phase   string    // one of the Restore* phases
	Started time.Time // when the restore began on this node
	Since   time.Time // when this phase began
}

// The phases of a restore, on the node that runs it.
const (
	// RestoreVerifying: the MAC over the whole file, then every record
	// decoded and checked (the state is staged for the restore).
	RestoreVerifying = "verifying"
	// RestoreForwarded: handed to the leader, which restores it.
	RestoreForwarded = "forwarded"
	// RestoreStoring: Raft copies it into the leader's snapshot store and
	// installs it on the leader.
	RestoreStoring = "storing"
	// RestoreReplicating: the followers receive and install it; the
	// restore ends when a majority holds it.
	RestoreReplicating = "replicating"
)

// RestoreInProgress reports what a restore running on this node is doing.
func (s *Service) RestoreInProgress() (RestoreProgress, bool) {
	p := s.restoring.Load()
	if p == nil {
		return RestoreProgress{}, false
	}
	return *p, true
}

// restoreRun publishes one restore's progress on this node.
type restoreRun struct {
	s   *Service
	cur *RestoreProgress // nil until the first phase
}

// phase moves the restore to phase (the first call starts it).
func (r *restoreRun) phase(phase string) {
	now := time.Now()
	p := &RestoreProgress{Phase: phase, Started: now, Since: now}
	if r.cur == nil {
		r.s.restoring.Store(p)
	} else {
		p.Started = r.cur.Started
		r.s.restoring.CompareAndSwap(r.cur, p)
	}
	r.cur = p
}

// end clears the progress if it is still this restore's.
func (r *restoreRun) end() {
	if r.cur != nil {
		r.s.restoring.CompareAndSwap(r.cur, nil)
	}
}

// SnapshotSummary describes a restored snapshot.
type SnapshotSummary struct {
	fsm.SnapshotInfo
	Index uint64 // applied index after the restore
}

// RestoreOptions are the operator's choices for one restore.
type RestoreOptions struct {
	// AcceptUnauthenticated accepts a format 1 snapshot (from a build before
	// snapshots carried a MAC). Its checksum, contents and root key check
	// value are still verified; it is resealed in the current format before
	// Raft sees it.
	AcceptUnauthenticated bool
	// Decoder, when set, read the file as it was written (the API starts
	// one for an upload signed by the operator to a node that leads: it
	// saves the seconds a large snapshot takes to decode after the
	// upload). Its result is used when it decoded the whole file in the
	// current format; otherwise the file is verified as usual, MAC first.
	Decoder *StreamDecoder
}

// AuthorizeRestore tells, before any byte of a snapshot is read, whether
// caller may restore one here: on an initialized cluster only the operator
// account's root; a cluster that was never initialized accepts a restore
// without credentials (that is how a lost cluster is rebuilt), but only of
// an authenticated snapshot: vouching for an unauthenticated one
// (AcceptUnauthenticated) takes the operator's credentials. caller is nil
// for an unauthenticated request.
func (s *Service) AuthorizeRestore(caller *Caller, opt RestoreOptions) error {
	if ok, _ := s.fsm.Initialized(); !ok {
		if caller == nil && opt.AcceptUnauthenticated {
			return fmt.Errorf("%w: accepting an unauthenticated snapshot takes the operator's credentials; "+
				"initialize this cluster (kmsctl operator init), then restore with its credentials", ErrNoPermission)
		}
		return nil
	}
	if caller == nil {
		return fmt.Errorf("%w: this cluster is initialized; restore with the operator's credentials", ErrNoPermission)
	}
	return s.requireOperator(*caller, "snapshot restore")
}

// RestoreTarget is what a restore would replace, for the operator to
// confirm: this node's view, not a linearizable one.
type RestoreTarget struct {
	Initialized  bool
	Accounts     int
	Keys         int
	AppliedIndex uint64
	// IsLeader says whether this node leads. A follower hands a restore
	// to the leader in one cluster message of at most ForwardLimit bytes
	// (0: it cannot forward); LeaderID and LeaderEndpoint (the leader's
	// API host:port) say where a larger one must go, when known.
	IsLeader       bool
	ForwardLimit   int64
	LeaderID       string
	LeaderEndpoint string
}

// RestoreTarget describes this cluster's state for a restore's
// confirmation. On an initialized cluster it needs the operator (it reveals
// counts); an uninitialized one has nothing to reveal.
func (s *Service) RestoreTarget(ctx context.Context, caller *Caller) (RestoreTarget, error) {
	if err := s.AuthorizeRestore(caller, RestoreOptions{}); err != nil {
		return RestoreTarget{}, err
	}
	sum := s.fsm.Summary()
	t := RestoreTarget{Initialized: sum.Initialized, Accounts: sum.Accounts, Keys: sum.Keys, AppliedIndex: sum.LastIndex,
		IsLeader: s.store.IsLeader()}
	if !t.IsLeader {
		t.ForwardLimit = s.RestoreForwardLimit(ctx)
		t.LeaderID, t.LeaderEndpoint = s.leaderEndpoint()
	}
	return t, nil
}

// IsLeader reports whether this node leads the cluster now.
func (s *Service) IsLeader() bool { return s.store.IsLeader() }

// leaderEndpoint is the leader's node id and API host:port as gossip
// advertises them; endpoint is empty when either is not known.
func (s *Service) leaderEndpoint() (id, endpoint string) {
	if _, id = s.store.Leader(); id == "" {
		return "", ""
	}
	for _, n := range s.nodes() {
		if n.ID == id {
			return id, n.Endpoint
		}
	}
	return id, ""
}

// CheckRestoreSize refuses, with ErrSnapshotTooLargeToForward naming the
// leader's API address, a restore of size bytes this node could not hand
// to the leader: it does not lead, the file is larger than one cluster
// message, and the leader runs a build that takes no restore in parts. The
// API calls it with the upload's Content-Length before any of the body is
// read; a size ≤ 0 (not known) passes.
func (s *Service) CheckRestoreSize(ctx context.Context, size int64) error {
	if size <= 0 || s.cfg.Transport == nil || s.store.IsLeader() || size <= s.restoreFrameLimit() {
		return nil
	}
	limit := s.RestoreForwardLimit(ctx)
	if size <= limit {
		return nil
	}
	return s.tooLargeToForward(size, limit)
}

func (s *Service) tooLargeToForward(size, limit int64) error {
	where := "the leader's API address (see `kmsctl operator members`)"
	if id, ep := s.leaderEndpoint(); ep != "" {
		where = fmt.Sprintf("the leader's API address, %s (node %s)", ep, id)
	}
	return fmt.Errorf("%w: this snapshot (%d bytes) is larger than this follower can hand to the leader, whose build takes at most one cluster message (%d); send the restore to %s — kmsctl does so itself",
		ErrSnapshotTooLargeToForward, size, limit, where)
}

// RestoreForwardLimit is the largest snapshot, in bytes, this node can
// hand to the leader when it does not lead: MaxSnapshotSize when the leader
// takes a restore in parts, else one cluster RPC frame (a leader of an
// earlier build, or none reachable now); 0 when it has no cluster
// transport to forward with.
func (s *Service) RestoreForwardLimit(ctx context.Context) int64 {
	if s.cfg.Transport == nil {
		return 0
	}
	if addr, _ := s.store.Leader(); addr != "" && s.leaderTakesParts(ctx, addr) {
		return MaxSnapshotSize
	}
	return s.restoreFrameLimit()
}

// restoreFrameLimit is the largest snapshot one cluster RPC frame carries.
func (s *Service) restoreFrameLimit() int64 {
	return int64(s.cfg.Transport.MaxRequest(rpc.KMSRestore))
}

// RestoreSnapshot is RestoreSnapshotWith with the default options.
func (s *Service) RestoreSnapshot(ctx context.Context, caller *Caller, file fsm.SnapshotBytes) (SnapshotSummary, error) {
	return s.RestoreSnapshotWith(ctx, caller, file, RestoreOptions{})
}

// RestoreSnapshotWith replaces the whole cluster state with the snapshot in
// file. It refuses, changing nothing, a damaged or altered file (its MAC
// under the root key's snapshot key does not match), an unauthenticated
// format 1 file unless opt accepts it, or one made under a different root
// key. Who may restore: see AuthorizeRestore.
func (s *Service) RestoreSnapshotWith(ctx context.Context, caller *Caller, file fsm.SnapshotBytes, opt RestoreOptions) (SnapshotSummary, error) {
	if err := s.AuthorizeRestore(caller, opt); err != nil {
		return SnapshotSummary{}, err
	}
	run := &restoreRun{s: s}
	run.phase(RestoreVerifying)
	defer run.end()
	t0 := time.Now()
	snap, info, err := s.checkForHandingOn(file)
	if errors.Is(err, errVerifyInFull) {
		snap, info, err = s.useDecoded(ctx, file, opt)
	}
	if errors.Is(err, errVerifyInFull) {
		snap, info, err = s.verifySnapshot(file, opt)
	}
	if err != nil {
		return SnapshotSummary{}, err
	}
	defer snap.close()
	s.log.Info("restore verified", "bytes", snap.size, "mac_only", snap.macOnly, "took", time.Since(t0).Round(time.Millisecond))
	// Every server must read it (fsm/DESIGN.md, Versions and upgrades);
	// the leader checks a snapshot it decodes for a follower.
	if !snap.macOnly {
		if err := s.requireLevel(info.NeedsLevel, "restoring this snapshot"); err != nil {
			return SnapshotSummary{}, err
		}
	}
	// A restore replaces the whole state with the same bytes, so it is
	// idempotent: when leadership moves during one (the leader's Raft loop
	// decodes the snapshot and sends no heartbeats meanwhile), it is simply
	// run again on the new leader.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			if err := s.LinearizableRead(ctx); err != nil {
				return SnapshotSummary{}, fmt.Errorf("%w (after: %v)", err, lastErr)
			}
		}
		got, idx, err := s.restoreOnce(ctx, snap, run)
		if err == nil {
			if got != nil { // what the node that decoded it counted
				info = *got
			}
			return SnapshotSummary{SnapshotInfo: info, Index: idx}, nil
		}
		lastErr = err
		if ctx.Err() != nil || !retryableRestore(err) {
			break
		}
		s.log.Warn("restore interrupted by a leadership change; retrying", "attempt", attempt+1, "error", err)
	}
	return SnapshotSummary{}, lastErr
}

// retryableRestore: the restore went to a node that no longer leads, or
// its leader was lost on the way (the connection dropped, or the leader
// could not be reached: a restore is idempotent, so one that may have run
// is run again on the next leader). A cluster key this node does not share
// with the leader is not retried.
func retryableRestore(err error) bool {
	msg := err.Error()
	return errors.Is(err, store.ErrNotLeader) || errors.Is(err, store.ErrUnknownOutcome) || errors.Is(err, store.ErrNoLeader) ||
		errors.Is(err, transport.ErrConnLost) || (errors.Is(err, transport.ErrUnreachable) && !errors.Is(err, transport.ErrPeerAuth)) ||
		strings.Contains(msg, "not the leader") || strings.Contains(msg, "outcome is unknown") || strings.Contains(msg, "leadership lost")
}

// restoreOnce restores on this node if it leads, else hands the verified
// bytes to the leader. It returns what the snapshot holds as the node that
// decoded it counted (nil from a leader of an earlier build) and the
// restore's index.
func (s *Service) restoreOnce(ctx context.Context, snap *verifiedSnapshot, run *restoreRun) (*fsm.SnapshotInfo, uint64, error) {
	if s.store.IsLeader() {
		r, err := snap.reader()
		if err != nil {
			return nil, 0, err
		}
		info, idx, err := s.restoreLocal(ctx, r, snap.size, run)
		return &info, idx, err
	}
	addr, _ := s.store.Leader()
	if addr == "" || s.cfg.Transport == nil {
		return nil, 0, fmt.Errorf("%w: no leader to restore on; retry when the cluster has one", ErrNoLeaderForRestore)
	}
	// A verified file larger than one cluster-port frame travels to the
	// leader in parts; a leader of an earlier build takes one frame only
	// (the API refuses most such restores from their Content-Length before
	// the upload).
	if snap.size > s.restoreFrameLimit() {
		run.phase(RestoreForwarded)
		rep, err := s.forwardInParts(ctx, addr, snap)
		if errors.Is(err, transport.ErrUnknownMethod) {
			return nil, 0, s.tooLargeToForward(snap.size, s.restoreFrameLimit())
		}
		return rep.Info, rep.Index, err
	}
	data, err := snap.bytes()
	if err != nil {
		return nil, 0, err
	}
	run.phase(RestoreForwarded)
	resp, err := s.cfg.Transport.Call(ctx, addr, rpc.KMSRestore, data)
	if err != nil {
		return nil, 0, fmt.Errorf("forward restore to leader %s: %w", addr, err)
	}
	var rep restoreReply
	if err := mpdecode.Unmarshal(resp, &rep); err != nil {
		// A leader of the previous version answers the index as text.
		if _, serr := fmt.Sscan(string(resp), &rep.Index); serr != nil {
			return nil, 0, fmt.Errorf("leader %s answered the restore with something undecodable: %v", addr, err)
		}
	}
	if rep.Err != "" || rep.Msg != "" {
		return nil, 0, fmt.Errorf("restore on leader %s: %w", addr, DecodeError(rep.Err, rep.Msg))
	}
	return rep.Info, rep.Index, nil
}

// restoreReply is the leader's answer to a forwarded restore: the index of
// the restore's follow-up write, or the refusal by name (wire_errors.go).
type restoreReply struct {
	Index uint64 `msgpack:"i"`
	Err   string `msgpack:"en"`
	Msg   string `msgpack:"em"`
	// Info is what the leader decoded (builds from 2026-12-07 on).
	Info *fsm.SnapshotInfo `msgpack:"info,omitempty"`
}

// ErrNoLeaderForRestore means a restore found no leader to run on.
var ErrNoLeaderForRestore = errors.New("no leader")

// ErrSnapshotTooLargeToForward means a follower cannot hand a snapshot this
// large to the leader; the restore must be sent to the leader itself.
var ErrSnapshotTooLargeToForward = errors.New("snapshot too large to restore through a follower")

// verifiedSnapshot is a snapshot that passed every check, resealed in the
// current authenticated format: the bytes Raft will store and install. It
// is a file in the data directory, so a large snapshot is not held in
// memory a second time beside the catalogue decoded from it; a service
// without a data directory (tests) keeps it in memory.
type verifiedSnapshot struct {
	// src holds the bytes: the caller's file when it was in the current
	// format already (not copied; the caller owns and removes it), else
	// the resealed copy, in file or in memory.
	src  fsm.SnapshotBytes
	file *os.File // the resealed copy's file, removed by close
	size int64
	// unstage drops the decoded state the FSM holds for src.
	unstage func()
	// macOnly: only the MAC and the root key were checked here (a
	// follower hands the file on; the leader decodes and checks it all).
	macOnly bool
}

func (v *verifiedSnapshot) reader() (fsm.SnapshotBytes, error) {
	if _, err := v.src.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return v.src, nil
}

// bytes is the whole snapshot in memory, for the one RPC frame that
// carries it to the leader.
func (v *verifiedSnapshot) bytes() ([]byte, error) {
	b := make([]byte, v.size)
	if _, err := v.src.ReadAt(b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

func (v *verifiedSnapshot) close() {
	if v.unstage != nil {
		v.unstage()
	}
	if v.file != nil {
		v.file.Close()
		os.Remove(v.file.Name())
	}
}

// errVerifyInFull: checkForHandingOn leaves the file to verifySnapshot.
var errVerifyInFull = errors.New("verify the snapshot in full")

// checkForHandingOn checks only the MAC and the root key of a snapshot this
// node will hand to the leader in parts (it does not lead, and the file is
// larger than one cluster message), in the current format: the leader
// decodes and checks every record, so decoding here too would cost seconds
// and a catalogue's memory for a million keys. Anything else — this node
// leads, a small file, an old format 1 file to reseal — gets
// errVerifyInFull.
func (s *Service) checkForHandingOn(r fsm.SnapshotBytes) (*verifiedSnapshot, fsm.SnapshotInfo, error) {
	if s.cfg.Transport == nil || s.store.IsLeader() {
		return nil, fsm.SnapshotInfo{}, errVerifyInFull
	}
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fsm.SnapshotInfo{}, err
	}
	if size <= s.restoreFrameLimit() {
		return nil, fsm.SnapshotInfo{}, errVerifyInFull
	}
	hdr, err := s.fsm.CheckSnapshotMAC(r)
	if errors.Is(err, fsm.ErrUnauthenticatedSnapshot) {
		return nil, fsm.SnapshotInfo{}, errVerifyInFull
	}
	if err != nil {
		return nil, fsm.SnapshotInfo{}, s.explainRefusal(r, err)
	}
	if !bytes.Equal(hdr.RootCheck, s.root.CheckValue()) {
		return nil, fsm.SnapshotInfo{}, fmt.Errorf("%w: start this cluster with the root key file of the cluster that saved it", ErrRootKeyMismatch)
	}
	return &verifiedSnapshot{src: r, size: size, macOnly: true}, fsm.SnapshotInfo{SnapshotHeader: hdr}, nil
}

// useDecoded stages what opt.Decoder decoded from file as it was written,
// when it decoded all of it; anything else gets errVerifyInFull (a refusal
// is explained by the full verification, MAC first).
func (s *Service) useDecoded(ctx context.Context, file fsm.SnapshotBytes, opt RestoreOptions) (*verifiedSnapshot, fsm.SnapshotInfo, error) {
	if opt.Decoder == nil || opt.AcceptUnauthenticated {
		return nil, fsm.SnapshotInfo{}, errVerifyInFull
	}
	d, info, err := opt.Decoder.result(ctx)
	if err != nil {
		return nil, fsm.SnapshotInfo{}, errVerifyInFull
	}
	size, err := file.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fsm.SnapshotInfo{}, err
	}
	if size != opt.Decoder.size {
		return nil, fsm.SnapshotInfo{}, errVerifyInFull
	}
	if err := s.checkSnapshotInfo(info); err != nil {
		return nil, info, err
	}
	s.fsm.StageDecoded(d, file, size)
	return &verifiedSnapshot{src: file, size: size, unstage: func() { s.fsm.Unstage(file) }}, info, nil
}

// verifySnapshot checks the snapshot in r and returns it resealed in the
// current authenticated format: r itself when it is in that format (the
// caller keeps r until the snapshot is closed), else a copy. The FSM holds
// the state decoded from it until the snapshot is closed.
func (s *Service) verifySnapshot(r fsm.SnapshotBytes, opt RestoreOptions) (*verifiedSnapshot, fsm.SnapshotInfo, error) {
	v := &verifiedSnapshot{}
	newWriter := func() (io.Writer, error) {
		if s.cfg.DataDir == "" {
			return new(bytes.Buffer), nil
		}
		f, err := os.CreateTemp(s.cfg.DataDir, "snapshot-resealed-*")
		if err != nil {
			return nil, err
		}
		v.file = f
		return f, nil
	}
	ok := false
	defer func() {
		if !ok {
			v.close()
		}
	}()
	// Staged too: the leader's PrepareRestore then recognises the resealed
	// bytes instead of decoding them again (issue 16: a million keys).
	info, resealed, err := s.fsm.ResealAndStage(r, newWriter, fsm.VerifyOptions{AcceptUnauthenticated: opt.AcceptUnauthenticated})
	if resealed != nil {
		v.src = resealed
		v.unstage = func() { s.fsm.Unstage(resealed) }
	}
	if err != nil {
		return nil, info, s.explainRefusal(r, err)
	}
	if err := s.checkSnapshotInfo(info); err != nil {
		return nil, info, err
	}
	if v.size, err = v.src.Seek(0, io.SeekEnd); err != nil {
		return nil, info, err
	}
	if !info.Authenticated() {
		s.log.Warn("restoring an unauthenticated format 1 snapshot, accepted by the operator", "format", info.Format, "index", info.LastIndex)
	}
	ok = true
	return v, info, nil
}

// explainRefusal turns a MAC failure on a snapshot whose header names
// another root key into ErrRootKeyMismatch: the likely cause, and refused
// either way.
func (s *Service) explainRefusal(r io.ReadSeeker, err error) error {
	if errors.Is(err, fsm.ErrUnauthenticatedSnapshot) {
		return fmt.Errorf("%w; nothing proves it unaltered since it was saved. If you kept it where nobody could change it, "+
			"restore it with `kmsctl operator snapshot restore --accept-unauthenticated` (AcceptUnauthenticated=true)", err)
	}
	if !errors.Is(err, fsm.ErrBadSnapshot) {
		return err
	}
	if _, serr := r.Seek(0, io.SeekStart); serr != nil {
		return err
	}
	hdr, herr := fsm.PeekSnapshotHeader(r)
	if herr != nil || len(hdr.RootCheck) == 0 || bytes.Equal(hdr.RootCheck, s.root.CheckValue()) {
		return err
	}
	return fmt.Errorf("%w: the snapshot's MAC does not verify and its header names another root key than this cluster's: "+
		"it was made under another root key (start this cluster with the root key file of the cluster that saved it), or altered", ErrRootKeyMismatch)
}

func (s *Service) checkSnapshotInfo(info fsm.SnapshotInfo) error {
	if !info.Initialized {
		return fmt.Errorf("%w: the snapshot holds a cluster that was never initialized", fsm.ErrBadSnapshot)
	}
	if !bytes.Equal(info.RootCheck, s.root.CheckValue()) {
		return fmt.Errorf("%w: start this cluster with the root key file of the cluster that saved it", ErrRootKeyMismatch)
	}
	return nil
}

// noopAfterRestoreTimeout bounds the write that follows a restore.
const noopAfterRestoreTimeout = time.Minute

// restoreLocal restores, on the leader, a snapshot in the current format.
// It is verified and decoded here, outside Raft's leader loop (see
// fsm.Restore), and checked again: a forwarded one comes from another node.
func (s *Service) restoreLocal(ctx context.Context, r fsm.SnapshotBytes, size int64, run *restoreRun) (fsm.SnapshotInfo, uint64, error) {
	info, err := s.fsm.PrepareRestore(r)
	if err != nil {
		return info, 0, s.explainRefusal(r, err)
	}
	if err := s.checkSnapshotInfo(info); err != nil {
		return info, 0, err
	}
	if err := s.requireLevel(info.NeedsLevel, "restoring this snapshot"); err != nil {
		return info, 0, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return info, 0, err
	}
	run.phase(RestoreStoring)
	// applied runs on another goroutine, never after Restore returns.
	applied := func() { run.phase(RestoreReplicating) }
	if err := s.store.Restore(r, size, info.LastIndex, restoreTimeout, applied); err != nil {
		return info, 0, fmt.Errorf("restore: %w", err)
	}
	s.softStore.purge()
	s.secrets.Purge()
	// A command every replica applies moves their applied index past the
	// restore, so read-your-writes and read indexes work at once.
	// It gets its own time: a large restore may have used up the
	// caller's budget, and the restore is applied already (issue 16: a
	// million keys took minutes on a small node).
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noopAfterRestoreTimeout)
	defer cancel()
	idx, err := s.propose(nctx, fsm.CmdNoop, fsm.NoopCmd{})
	if err != nil {
		return info, 0, fmt.Errorf("restore applied; the follow-up write failed: %w", err)
	}
	s.log.Info("snapshot restored", "keys", info.Keys, "accounts", info.Accounts, "index", idx)
	return info, idx, nil
}

// handleRestore is the leader's side of a restore forwarded by a follower,
// which resealed the file: only the current, authenticated format is
// accepted here.
func (s *Service) handleRestore(ctx context.Context, data []byte) ([]byte, error) {
	var rep restoreReply
	var err error
	if !s.store.IsLeader() {
		err = fmt.Errorf("%w: not the leader any more; retry the restore", store.ErrNotLeader)
	} else {
		r := bytes.NewReader(data)
		run := &restoreRun{s: s}
		var info fsm.SnapshotInfo
		info, rep.Index, err = s.restoreLocal(ctx, r, int64(len(data)), run)
		if err == nil {
			rep.Info = &info
		}
		s.fsm.Unstage(r)
		run.end()
	}
	if err != nil {
		rep.Err, rep.Msg = EncodeError(err)
	}
	return msgpack.Marshal(&rep)
}
