package kms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmihailenco/msgpack/v5"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/store"
	"github.com/raftkms/raftkms/transport"
)

// partsFrame is the cluster message size of these tests: a snapshot of a
// few dozen keys takes many parts.
const partsFrame = 2 << 10

func newPartsTransport(t *testing.T) *transport.Transport {
	t.Helper()
	tr, err := transport.New(transport.Config{BindAddr: "127.0.0.1:0", Logger: hclog.NewNullLogger(), MaxFrameSize: partsFrame, AuthKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// partsPair is a leader and a follower service joined by the cluster
// transport (both over directStores; the leader's restores succeed and
// keep the bytes Raft was given).
type partsPair struct {
	leader, follower *svcEnv
	leaderDir        string
	snap             []byte // a snapshot of the follower's catalogue, many frames long
}

func newPartsPair(t *testing.T) *partsPair {
	t.Helper()
	p := &partsPair{leaderDir: t.TempDir()}
	trL, trF := newPartsTransport(t), newPartsTransport(t)
	p.leader = newSvcEnvWith(t, func(c *Config) { c.Transport, c.DataDir = trL, p.leaderDir })
	p.leader.store.restore = func(applied func()) error { applied(); return nil }
	p.follower = newSvcEnvWith(t, func(c *Config) { c.Transport = trF })
	for range 40 {
		p.follower.createKey(t, CreateKeyInput{Description: "a key to make the snapshot many cluster messages long"})
	}
	var snap bytes.Buffer
	if _, err := p.follower.svc.SaveSnapshot(context.Background(), p.follower.caller, &snap); err != nil {
		t.Fatal(err)
	}
	p.snap = snap.Bytes()
	if len(p.snap) < 5*partsFrame {
		t.Fatalf("the snapshot is %d bytes: too small for the test", len(p.snap))
	}
	p.follower.store.setLeader(false)
	p.follower.store.leaderAddr = trL.Addr()
	return p
}

// leaderHoldsNothing fails the test when the leader still holds an upload
// or a file of one.
func (p *partsPair) leaderHoldsNothing(t *testing.T, when string) {
	t.Helper()
	if p.leader.svc.HoldsRestoreUpload() {
		t.Fatalf("%s: the leader still holds the upload", when)
	}
	if left, _ := os.ReadDir(p.leaderDir); len(left) != 0 {
		t.Fatalf("%s: the leader's data directory holds %v", when, left)
	}
	if p.leader.fsm.HoldsStagedRestore() {
		t.Fatalf("%s: the leader left a decoded catalogue staged", when)
	}
}

// Issue 16, a million keys: any node takes a restore. A follower hands the
// leader a snapshot larger than one cluster message in parts, and the
// leader restores exactly those bytes; nothing stays behind on either.
func TestRestore_ThroughAFollowerInParts(t *testing.T) {
	p := newPartsPair(t)
	ctx := context.Background()
	f := p.follower.svc
	target, err := f.RestoreTarget(ctx, &p.follower.caller)
	if err != nil || target.IsLeader || target.ForwardLimit != MaxSnapshotSize {
		t.Fatalf("the follower's restore target: %+v, %v; want a follower forwarding up to %d", target, err, MaxSnapshotSize)
	}
	if err := f.CheckRestoreSize(ctx, int64(len(p.snap))); err != nil {
		t.Fatalf("CheckRestoreSize(%d): %v", len(p.snap), err)
	}
	if err := f.CheckRestoreSize(ctx, MaxSnapshotSize); err != nil {
		t.Fatalf("CheckRestoreSize(MaxSnapshotSize): %v", err)
	}
	before, _ := p.follower.fsm.Hash()
	// The follower checks the MAC and hands the file on: only the leader
	// decodes it (a million keys are seconds and a gigabyte).
	followerStaged := true
	p.leader.store.restore = func(applied func()) error {
		followerStaged = p.follower.fsm.HoldsStagedRestore()
		applied()
		return nil
	}
	sum, err := f.RestoreSnapshot(ctx, &p.follower.caller, bytes.NewReader(p.snap))
	if err != nil {
		t.Fatalf("restore through the follower: %v", err)
	}
	if sum.Keys != 40 || sum.Versions != 40 || sum.Accounts != 1 || sum.Index == 0 {
		t.Fatalf("restore summary %+v; want the leader's count of 40 keys", sum)
	}
	if followerStaged {
		t.Fatal("the follower decoded and staged the snapshot it handed on")
	}
	if !bytes.Equal(p.leader.store.restored, p.snap) {
		t.Fatalf("the leader's Raft was given %d bytes, not the %d-byte snapshot", len(p.leader.store.restored), len(p.snap))
	}
	if after, _ := p.follower.fsm.Hash(); after != before {
		t.Fatal("the follower changed its own catalogue (only Raft replicates a restore)")
	}
	p.leaderHoldsNothing(t, "after the restore")
	if p.follower.fsm.HoldsStagedRestore() {
		t.Fatal("the follower left its decoded catalogue staged")
	}
	if _, ok := f.RestoreInProgress(); ok {
		t.Fatal("the follower still reports a restore in progress")
	}
}

// What the follower checks before it hands a file on — the MAC over the
// whole file, the root key its header names — refuses a damaged file or one
// made under another root key before any part is sent.
func TestRestore_InPartsRefusedByTheFollowerSendsNothing(t *testing.T) {
	p := newPartsPair(t)
	damaged := bytes.Clone(p.snap)
	damaged[len(damaged)/2] ^= 1
	// The header names another root key: with the MAC left as it was,
	// and with a MAC made again under this cluster's snapshot key.
	check := p.follower.root.CheckValue()
	at := bytes.Index(p.snap, check)
	if at < 0 {
		t.Fatal("the snapshot's header does not name its root key")
	}
	otherRoot := bytes.Clone(p.snap)
	for i := range check {
		otherRoot[at+i] ^= 0xff
	}
	remaced := bytes.Clone(otherRoot)
	m := hmac.New(sha256.New, p.follower.root.Derive(kcrypto.LabelSnapshotMAC))
	m.Write(remaced[:len(remaced)-sha256.Size])
	copy(remaced[len(remaced)-sha256.Size:], m.Sum(nil))
	sent := 0
	p.leader.store.restore = func(func()) error { sent++; return nil }
	for _, c := range []struct {
		name string
		file []byte
		want error
	}{
		{"damaged", damaged, fsm.ErrBadSnapshot},
		{"truncated", p.snap[:len(p.snap)-1], fsm.ErrBadSnapshot},
		{"another root key named, the MAC not verifying", otherRoot, ErrRootKeyMismatch},
		{"another root key named, the MAC verifying", remaced, ErrRootKeyMismatch},
	} {
		_, err := p.follower.svc.RestoreSnapshot(context.Background(), &p.follower.caller, bytes.NewReader(c.file))
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
		p.leaderHoldsNothing(t, c.name)
		if p.follower.fsm.HoldsStagedRestore() {
			t.Fatalf("%s: the follower left a catalogue staged", c.name)
		}
	}
	if sent != 0 {
		t.Fatalf("%d refused snapshots reached the leader's Raft", sent)
	}
}

// A leader lost while it restores (here: its cluster port closes once its
// Raft has the snapshot, so the last part is never answered) leaves the
// outcome unknown; a restore is idempotent, so the follower runs it again
// on the next leader, which takes it.
func TestRestore_InPartsRunsAgainOnTheNextLeader(t *testing.T) {
	p := newPartsPair(t)
	trNext := newPartsTransport(t)
	next := newSvcEnvWith(t, func(c *Config) { c.Transport = trNext })
	next.store.restore = func(applied func()) error { applied(); return nil }
	lost := p.leader.svc.cfg.Transport
	p.leader.store.restore = func(func()) error {
		p.follower.store.mu.Lock()
		p.follower.store.leaderAddr = trNext.Addr()
		p.follower.store.mu.Unlock()
		// Closed before this handler answers: the answer is lost.
		lost.Close()
		return nil
	}
	sum, err := p.follower.svc.RestoreSnapshot(context.Background(), &p.follower.caller, bytes.NewReader(p.snap))
	if err != nil {
		t.Fatalf("restore through the follower, its leader lost: %v", err)
	}
	if !bytes.Equal(next.store.restored, p.snap) || sum.Keys != 40 {
		t.Fatalf("the next leader's Raft was given %d bytes (want %d), summary %+v", len(next.store.restored), len(p.snap), sum)
	}
}

// A refusal by the leader (here: its Raft refuses the restore) reaches the
// operator through the follower, and the leader keeps nothing.
func TestRestore_InPartsRefusedByTheLeaderKeepsNothing(t *testing.T) {
	p := newPartsPair(t)
	p.leader.store.restore = func(func()) error { return errors.New("the leader's store refuses") }
	_, err := p.follower.svc.RestoreSnapshot(context.Background(), &p.follower.caller, bytes.NewReader(p.snap))
	if err == nil || !strings.Contains(err.Error(), "the leader's store refuses") {
		t.Fatalf("restore through the follower: %v; want the leader's refusal", err)
	}
	p.leaderHoldsNothing(t, "after the refusal")
}

// A leader of an earlier build knows only the one-message restore: the
// follower says so from the size alone (the API refuses the upload from its
// Content-Length, naming the leader's API address) and a restore larger
// than one message is refused with the same error, nothing sent.
func TestRestore_ALeaderWithoutPartsTakesOneMessage(t *testing.T) {
	old := newPartsTransport(t)
	var got int
	old.Handle(rpc.KMSRestore, func(context.Context, []byte) ([]byte, error) { got++; return nil, errors.New("not in this test") })
	e := newSvcEnvWith(t, func(c *Config) { c.Transport = newPartsTransport(t) })
	for range 40 {
		e.createKey(t, CreateKeyInput{Description: "a key to make the snapshot many cluster messages long"})
	}
	var snap bytes.Buffer
	if _, err := e.svc.SaveSnapshot(context.Background(), e.caller, &snap); err != nil {
		t.Fatal(err)
	}
	e.store.setLeader(false)
	e.store.leaderAddr = old.Addr()
	ctx := context.Background()
	frame := e.svc.restoreFrameLimit()
	if target, err := e.svc.RestoreTarget(ctx, &e.caller); err != nil || target.ForwardLimit != frame {
		t.Fatalf("restore target %+v, %v; want a limit of one message, %d", target, err, frame)
	}
	if err := e.svc.CheckRestoreSize(ctx, frame); err != nil {
		t.Fatalf("CheckRestoreSize of one message: %v", err)
	}
	if err := e.svc.CheckRestoreSize(ctx, frame+1); !errors.Is(err, ErrSnapshotTooLargeToForward) {
		t.Fatalf("CheckRestoreSize of one message and a byte: %v", err)
	}
	before, _ := e.fsm.Hash()
	_, err := e.svc.RestoreSnapshot(ctx, &e.caller, bytes.NewReader(snap.Bytes()))
	if !errors.Is(err, ErrSnapshotTooLargeToForward) {
		t.Fatalf("restore of %d bytes through a follower of an old leader: %v", snap.Len(), err)
	}
	if after, _ := e.fsm.Hash(); after != before || got != 0 || e.fsm.HoldsStagedRestore() {
		t.Fatalf("the refused restore changed something: catalogue changed %t, %d one-message restores sent, staged %t",
			after != before, got, e.fsm.HoldsStagedRestore())
	}
}

// callPart sends one part to the leader's handler as a follower would.
func callPart(t *testing.T, s *Service, p restorePart) error {
	t.Helper()
	req, _ := encodePart(nil, &p, len(p.Data))
	copy(req[len(req)-len(p.Data):], p.Data)
	resp, err := s.handleRestorePart(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var rep restoreReply
	if err := msgpack.Unmarshal(resp, &rep); err != nil {
		t.Fatal(err)
	}
	return DecodeError(rep.Err, rep.Msg)
}

// Parts that do not continue the upload they name are refused, the upload
// dropped (the follower starts over), the catalogue unchanged; a second
// upload waits for the first; an abandoned one is dropped after its idle
// time; a node that does not lead takes none.
func TestRestorePart_RefusalsKeepNothing(t *testing.T) {
	p := newPartsPair(t)
	l := p.leader.svc
	before, _ := p.leader.fsm.Hash()
	size := int64(len(p.snap))
	first := restorePart{ID: "a", Size: size, Data: p.snap[:100]}
	for _, c := range []struct {
		name string
		next restorePart
	}{
		{"a gap", restorePart{ID: "a", Off: 101, Size: size, Data: p.snap[101:200]}},
		{"an overlap", restorePart{ID: "a", Off: 50, Size: size, Data: p.snap[50:200]}},
		{"another size", restorePart{ID: "a", Off: 100, Size: size + 1, Data: p.snap[100:200]}},
		{"beyond the size", restorePart{ID: "a", Off: 100, Size: size, Data: append(bytes.Clone(p.snap[100:]), 0)}},
		{"a last part short of the size", restorePart{ID: "a", Off: 100, Size: size, Data: p.snap[100:200], Last: true}},
		{"another upload's id", restorePart{ID: "b", Off: 100, Size: size, Data: p.snap[100:200]}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := callPart(t, l, first); err != nil {
				t.Fatalf("first part: %v", err)
			}
			if err := callPart(t, l, c.next); !errors.Is(err, ErrInvalidParameter) {
				t.Fatalf("refusal = %v, want InvalidParameter", err)
			}
			if c.next.ID == "b" {
				// Not the upload it names: the one held is dropped
				// by its own follower or its idle time, not by
				// another's mistake.
				if err := callPart(t, l, restorePart{ID: "a", Abort: true}); err != nil {
					t.Fatal(err)
				}
			}
			p.leaderHoldsNothing(t, c.name)
		})
	}
	for _, size := range []int64{0, -1, MaxSnapshotSize + 1} {
		if err := callPart(t, l, restorePart{ID: "a", Size: size, Data: []byte("x")}); !errors.Is(err, ErrInvalidParameter) {
			t.Fatalf("an upload of %d bytes: %v, want InvalidParameter", size, err)
		}
		p.leaderHoldsNothing(t, "a refused size")
	}
	if _, err := l.handleRestorePart(context.Background(), []byte{0xc1}); err != nil {
		t.Fatal(err)
	}
	p.leaderHoldsNothing(t, "an undecodable part")

	// One upload at a time.
	if err := callPart(t, l, first); err != nil {
		t.Fatal(err)
	}
	if err := callPart(t, l, restorePart{ID: "b", Size: size, Data: p.snap[:100]}); !errors.Is(err, ErrRestoreInProgress) {
		t.Fatalf("a second upload: %v, want RestoreInProgress", err)
	}
	if !l.HoldsRestoreUpload() {
		t.Fatal("the second upload dropped the first")
	}
	// A node that stops leading drops it.
	p.leader.store.setLeader(false)
	if err := callPart(t, l, restorePart{ID: "a", Off: 100, Size: size, Data: p.snap[100:200]}); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("a part to a node that no longer leads: %v, want NotLeader", err)
	}
	p.leaderHoldsNothing(t, "leadership lost")
	p.leader.store.setLeader(true)

	// An abandoned upload is dropped after its idle time.
	l.uploads.mu.Lock()
	l.uploads.idle = 20 * time.Millisecond
	l.uploads.mu.Unlock()
	if err := callPart(t, l, first); err != nil {
		t.Fatal(err)
	}
	l.uploads.mu.Lock()
	u := l.uploads.cur
	l.uploads.mu.Unlock()
	select {
	case <-u.dec.done: // stopped when the upload is dropped, after its file
	case <-time.After(10 * time.Second):
		t.Fatal("an abandoned upload was kept 10 s past its 20 ms idle time")
	}
	p.leaderHoldsNothing(t, "abandoned")
	if after, _ := p.leader.fsm.Hash(); after != before {
		t.Fatal("a refused part changed the leader's catalogue")
	}
}

// A restore part from a peer is decoded and checked before anything is
// written: whatever the bytes, the leader answers (never panics), holds at
// most what the part's own size allows, and keeps no file once the upload
// is dropped.
func FuzzRestorePart(f *testing.F) {
	dir := f.TempDir()
	e := newSvcEnvWith(f, func(c *Config) { c.DataDir = dir })
	e.store.restore = func(func()) error { return errors.New("not in this test") }
	for _, p := range []restorePart{
		{ID: "a", Size: 10, Data: []byte("RAFTKMS")},
		{ID: "a", Size: 3, Data: []byte("abc"), Last: true},
		{ID: "a", Off: 5, Size: 10, Data: []byte("x")},
		{ID: "a", Abort: true},
		{Probe: true},
		{ID: "a", Size: MaxSnapshotSize + 1, Data: []byte("x")},
	} {
		b, _ := encodePart(nil, &p, len(p.Data))
		copy(b[len(b)-len(p.Data):], p.Data)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := e.svc.handleRestorePart(context.Background(), data)
		if err != nil {
			t.Fatal(err)
		}
		var rep restoreReply
		if err := msgpack.Unmarshal(resp, &rep); err != nil {
			t.Fatalf("undecodable answer: %v", err)
		}
		e.svc.uploads.mu.Lock()
		u := e.svc.uploads.cur
		e.svc.uploads.mu.Unlock()
		if u != nil {
			if u.written > u.size || u.size > MaxSnapshotSize || u.restores {
				t.Fatalf("held upload: %d of %d bytes, restoring %t", u.written, u.size, u.restores)
			}
			e.svc.dropUpload(u.id, false)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("left %v", left)
		}
	})
}

// The leader decodes an upload as its parts arrive: a snapshot that does
// not decode is refused at the part during which, or the first after which,
// the decoder refused it — before the rest is sent — and nothing is kept.
func TestRestorePart_DecodedAsThePartsArrive(t *testing.T) {
	p := newPartsPair(t)
	l := p.leader.svc
	bad := bytes.Clone(p.snap)
	copy(bad[len("RAFTKMS\x00")+2:], []byte{0xff, 0xff, 0xff, 0xff}) // the header's length
	size := int64(len(bad))
	err := callPart(t, l, restorePart{ID: "a", Size: size, Data: bad[:100]})
	if err == nil {
		// Accepted before the decoder read it: it refuses what it
		// has, and the next part says so.
		l.uploads.mu.Lock()
		u := l.uploads.cur
		l.uploads.mu.Unlock()
		select {
		case <-u.dec.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the decoder did not refuse the upload's first part in 10 s")
		}
		err = callPart(t, l, restorePart{ID: "a", Off: 100, Size: size, Data: bad[100:200]})
	}
	if !errors.Is(err, fsm.ErrBadSnapshot) {
		t.Fatalf("the first parts of a snapshot that does not decode: %v, want the decoder's refusal", err)
	}
	p.leaderHoldsNothing(t, "refused while it arrived")
}
