package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/mpdecode"
	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/store"
)

// A follower hands the leader a restore larger than one cluster message in
// parts (rpc.KMSRestorePart), so that an operator who reaches any one node
// can restore a snapshot of any size the API takes (issue 16: a million keys
// make ~900 MiB, the cluster port's messages are 64 MiB). The parts go one
// after another on the follower's connection to the leader; the leader
// writes them to a file in its data directory, decodes the file as it
// grows (fsm.DecodeStream: the follower checked the MAC, the decoder checks
// it again at the end) and, once the last part is in, restores from that
// file with the decoded state staged for it. One upload at a time per
// leader; an upload that stops sending is dropped after restorePartIdle.

// MaxSnapshotSize is the largest snapshot a node takes for a restore, from
// the operator's upload or from a follower, in bytes.
const MaxSnapshotSize = 1 << 30

// restorePartSize is the most file bytes one part carries: parts share the
// follower's one connection to the leader with forwarded writes and read
// indexes, which wait behind a part on the wire (a few ms on a LAN).
const restorePartSize = 4 << 20

// restorePartIdle is how long the leader keeps an upload that receives no
// part before it removes the file.
const restorePartIdle = time.Minute

// restorePartOverhead bounds a part's encoding beyond its data.
const restorePartOverhead = 4 + maxPartHeader

// ErrRestoreInProgress means another restore is being received or
// installed by the leader.
var ErrRestoreInProgress = errors.New("another snapshot restore is in progress")

// restorePart is one message of an upload: on the wire a uint32
// big-endian length, the msgpack of the fields below, then Data as it is
// (encodePart), so that neither side copies a part's bytes through an
// encoder.
type restorePart struct {
	ID   string `msgpack:"id"`
	Off  int64  `msgpack:"o"`
	Size int64  `msgpack:"s"` // the whole snapshot's size
	Data []byte `msgpack:"-"`
	// Last: the last part; once it is written the leader restores and
	// answers with a restoreReply.
	Last bool `msgpack:"l,omitempty"`
	// Abort drops the upload ID names (the follower gave up).
	Abort bool `msgpack:"a,omitempty"`
	// Probe asks only whether this node leads and takes parts.
	Probe bool `msgpack:"p,omitempty"`
}

// maxPartHeader bounds the msgpack of a part's fields.
const maxPartHeader = 256

// encodePart appends p's encoding to b: its header, then room for data
// bytes, which the caller fills (b[len(b)-data:]).
func encodePart(b []byte, p *restorePart, data int) ([]byte, error) {
	hdr, err := msgpack.Marshal(p)
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	// Room for the data, not zeroed: the caller overwrites all of it.
	return slices.Grow(b, data)[:len(b)+data], nil
}

// decodePart reads a part; its Data is a slice of b.
func decodePart(b []byte) (restorePart, error) {
	var p restorePart
	if len(b) < 4 {
		return p, errors.New("short")
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxPartHeader || int(n) > len(b)-4 {
		return p, fmt.Errorf("header of %d bytes", n)
	}
	if err := mpdecode.Unmarshal(b[4:4+n], &p); err != nil {
		return p, err
	}
	p.Data = b[4+n:]
	return p, nil
}

// partUpload is an upload the leader is receiving, decoded as it is
// written (dec).
type partUpload struct {
	id       string
	started  time.Time
	size     int64
	written  int64
	file     *os.File      // in the data directory, or
	buf      *bytes.Buffer // in memory for a service without one (tests)
	idle     *time.Timer
	restores bool // the last part is in: the restore runs
	dec      *StreamDecoder
}

// reader is the upload's bytes for the restore.
func (u *partUpload) reader() (fsm.SnapshotBytes, error) {
	if u.file == nil {
		return bytes.NewReader(u.buf.Bytes()), nil
	}
	if _, err := u.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return u.file, nil
}

func (u *partUpload) write(b []byte) error {
	if u.file == nil {
		u.buf.Write(b)
		return nil
	}
	_, err := u.file.Write(b)
	return err
}

func (u *partUpload) remove() {
	u.idle.Stop()
	if u.file != nil {
		// Unlinked before it is closed and before its decoder is
		// stopped: by the time the decoder ends, the file is gone.
		name := u.file.Name()
		err := os.Remove(name)
		u.file.Close()
		if err != nil { // a system that keeps an open file
			os.Remove(name)
		}
	}
	u.dec.Stop()
}

// partUploads is the leader's one upload slot.
type partUploads struct {
	mu  sync.Mutex
	cur *partUpload
	// idle replaces restorePartIdle when set (tests).
	idle time.Duration
}

// idleTime is how long an upload may go without a part (under mu).
func (p *partUploads) idleTime() time.Duration {
	if p.idle > 0 {
		return p.idle
	}
	return restorePartIdle
}

// HoldsRestoreUpload reports whether a forwarded upload is held (tests).
func (s *Service) HoldsRestoreUpload() bool {
	s.uploads.mu.Lock()
	defer s.uploads.mu.Unlock()
	return s.uploads.cur != nil
}

// handleRestorePart is the leader's side of rpc.KMSRestorePart.
func (s *Service) handleRestorePart(ctx context.Context, data []byte) ([]byte, error) {
	var rep restoreReply
	p, err := decodePart(data)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: an undecodable restore part: %v", ErrInvalidParameter, err)
	case p.Abort:
		s.dropUpload(p.ID, false)
	case !s.store.IsLeader():
		s.dropUpload(p.ID, false)
		err = fmt.Errorf("%w: not the leader any more; retry the restore", store.ErrNotLeader)
	case p.Probe:
	default:
		var info *fsm.SnapshotInfo
		info, rep.Index, err = s.takePart(ctx, &p)
		if err == nil {
			rep.Info = info
		}
	}
	if err != nil {
		rep.Err, rep.Msg = EncodeError(err)
	}
	return msgpack.Marshal(&rep)
}

// takePart writes one part; after the last it restores and returns what
// the snapshot held and the restore's index.
func (s *Service) takePart(ctx context.Context, p *restorePart) (*fsm.SnapshotInfo, uint64, error) {
	u, err := s.receivePart(p)
	if err != nil || !p.Last {
		return nil, 0, err
	}
	defer s.dropUpload(p.ID, true)
	r, err := u.reader()
	if err != nil {
		return nil, 0, err
	}
	s.log.Info("restore received from a follower", "upload", u.id, "bytes", u.size, "took", time.Since(u.started).Round(time.Millisecond))
	// Decoded as the parts came in: staged for the file they were
	// written to, so the restore does not decode it again.
	decoded, _, err := u.dec.result(ctx)
	if err != nil {
		return nil, 0, s.explainRefusal(r, err)
	}
	s.fsm.StageDecoded(decoded, r, u.size)
	run := &restoreRun{s: s}
	defer run.end()
	defer s.fsm.Unstage(r)
	info, idx, err := s.restoreLocal(ctx, r, u.size, run)
	return &info, idx, err
}

// receivePart checks p against the upload it continues (or starts) and
// writes its data. Any refusal drops the upload: the follower starts over.
func (s *Service) receivePart(p *restorePart) (*partUpload, error) {
	s.uploads.mu.Lock()
	defer s.uploads.mu.Unlock()
	u := s.uploads.cur
	if p.Off == 0 {
		if u != nil {
			if u.restores {
				return nil, fmt.Errorf("%w: the leader is installing one; wait for it to finish, then retry", ErrRestoreInProgress)
			}
			return nil, fmt.Errorf("%w: another node is handing one to the leader; wait for it to finish (an abandoned one is dropped after %s), then retry",
				ErrRestoreInProgress, s.uploads.idleTime())
		}
		if p.Size <= 0 || p.Size > MaxSnapshotSize {
			return nil, fmt.Errorf("%w: a snapshot of %d bytes; at most %d", ErrInvalidParameter, p.Size, int64(MaxSnapshotSize))
		}
		var err error
		if u, err = s.newUpload(p); err != nil {
			return nil, err
		}
		s.uploads.cur = u
	} else if u == nil || u.id != p.ID || u.restores {
		return nil, fmt.Errorf("%w: the leader holds no upload %q at offset %d (dropped after %s without a part, or the leader changed); retry the restore",
			ErrInvalidParameter, p.ID, p.Off, s.uploads.idleTime())
	}
	if p.Off != u.written || p.Size != u.size || int64(len(p.Data)) > u.size-u.written || (p.Last && u.written+int64(len(p.Data)) != u.size) {
		s.uploads.cur = nil
		u.remove()
		return nil, fmt.Errorf("%w: restore part at %d of %d bytes (%d held, %d sent, last %t) does not continue the upload; retry the restore",
			ErrInvalidParameter, p.Off, p.Size, u.written, len(p.Data), p.Last)
	}
	if err := u.write(p.Data); err != nil {
		s.uploads.cur = nil
		u.remove()
		return nil, fmt.Errorf("store a restore part: %w", err)
	}
	u.written += int64(len(p.Data))
	u.dec.Wrote(u.written)
	if err := u.dec.failed(); err != nil && !p.Last {
		// Refused before the rest is sent (the last part reports it
		// with the restore's own explanation).
		s.uploads.cur = nil
		u.remove()
		return nil, err
	}
	if p.Last {
		u.restores = true
		u.idle.Stop()
	} else {
		u.idle.Reset(s.uploads.idleTime())
	}
	return u, nil
}

func (s *Service) newUpload(p *restorePart) (*partUpload, error) {
	u := &partUpload{id: p.ID, size: p.Size, started: time.Now()}
	if s.cfg.DataDir == "" {
		u.buf = new(bytes.Buffer)
	} else {
		f, err := os.CreateTemp(s.cfg.DataDir, "snapshot-forwarded-*")
		if err != nil {
			return nil, fmt.Errorf("stage a forwarded restore: %w", err)
		}
		u.file = f
	}
	u.dec = s.NewStreamDecoder(u.file, u.buf, u.size)
	id, idle := p.ID, s.uploads.idleTime()
	u.idle = time.AfterFunc(idle, func() {
		if s.dropUpload(id, false) {
			s.log.Warn("dropped a restore upload that stopped sending parts", "upload", id, "idle", idle)
		}
	})
	return u, nil
}

// dropUpload removes the upload id if it is held, and reports whether it
// was; one whose restore runs only when restoring says so (its restore
// reads the file).
func (s *Service) dropUpload(id string, restoring bool) bool {
	s.uploads.mu.Lock()
	defer s.uploads.mu.Unlock()
	u := s.uploads.cur
	if u == nil || u.id != id || u.restores != restoring {
		return false
	}
	s.uploads.cur = nil
	u.remove()
	return true
}

// forwardInParts hands the verified snapshot to the leader at addr part by
// part and returns the leader's answer to the last.
func (s *Service) forwardInParts(ctx context.Context, addr string, snap *verifiedSnapshot) (restoreReply, error) {
	var idb [16]byte
	rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	n := min(restorePartSize, s.cfg.Transport.MaxRequest(rpc.KMSRestorePart)-restorePartOverhead)
	if n < 1 {
		return restoreReply{}, fmt.Errorf("cluster messages of %d bytes are too small to hand a restore on", s.cfg.Transport.MaxRequest(rpc.KMSRestorePart))
	}
	req := make([]byte, 0, n+restorePartOverhead)
	answered := false
	defer func() {
		if !answered {
			// The leader drops an upload it refused or restored itself;
			// one it may not have seen the end of is aborted (best
			// effort: it is dropped after restorePartIdle anyway).
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			b, _ := encodePart(nil, &restorePart{ID: id, Abort: true}, 0)
			s.cfg.Transport.Call(actx, addr, rpc.KMSRestorePart, b)
		}
	}()
	for off := int64(0); ; {
		k := int(min(int64(n), snap.size-off))
		p := restorePart{ID: id, Off: off, Size: snap.size, Last: off+int64(k) == snap.size}
		req, err := encodePart(req[:0], &p, k)
		if err != nil {
			return restoreReply{}, err
		}
		if got, err := snap.src.ReadAt(req[len(req)-k:], off); err != nil && !(err == io.EOF && got == k) {
			return restoreReply{}, err
		}
		resp, err := s.cfg.Transport.Call(ctx, addr, rpc.KMSRestorePart, req)
		if err != nil {
			return restoreReply{}, fmt.Errorf("forward restore to leader %s: %w", addr, err)
		}
		var rep restoreReply
		if err := mpdecode.Unmarshal(resp, &rep); err != nil {
			return restoreReply{}, fmt.Errorf("leader %s answered a restore part with something undecodable: %v", addr, err)
		}
		if rep.Err != "" || rep.Msg != "" {
			answered = true
			return restoreReply{}, fmt.Errorf("restore on leader %s: %w", addr, DecodeError(rep.Err, rep.Msg))
		}
		if p.Last {
			answered = true
			return rep, nil
		}
		off += int64(k)
	}
}

// leaderTakesParts asks the leader at addr whether it takes a restore in
// parts (builds before it answer ErrUnknownMethod).
func (s *Service) leaderTakesParts(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, _ := encodePart(nil, &restorePart{Probe: true}, 0)
	resp, err := s.cfg.Transport.Call(ctx, addr, rpc.KMSRestorePart, b)
	if err != nil {
		return false
	}
	var rep restoreReply
	return mpdecode.Unmarshal(resp, &rep) == nil && rep.Err == "" && rep.Msg == ""
}
