package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

const minute = int64(60 * 1000)

// signed wraps a CreateKeyVersion for key k1 in a signed write, as
// kms.propose does for a client's request.
func signedRotation(t testing.TB, nonce, version string, now, signedAt int64) []byte {
	t.Helper()
	inner, err := Encode(CmdCreateKeyVersion, CreateKeyVersionCmd{Now: now, Version: KeyVersion{ID: version, KeyID: "k1", CreatedAt: now}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodeSignedWrite(SignedWriteCmd{Now: now, AccessKeyID: "LTAIexample", Nonce: nonce, SignedAt: signedAt}, inner)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (h *harness) applyRaw(data []byte) error {
	h.t.Helper()
	h.index++
	resp := h.f.Apply(&raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: data})
	if resp == nil {
		return nil
	}
	return resp.(error)
}

func (h *harness) versions(key string) int {
	k, _ := h.f.Key(key)
	return len(k.Versions)
}

// The attack: one signed CreateKeyVersion applied twice (sent to a second
// node, or again after a restart) must add one version, not two.
func TestSignedWrite_ReplayedEntryRefusedAndChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "v1")
	base := 100 * minute

	if err := h.applyRaw(signedRotation(t, "n-1", "v2", base, base)); err != nil {
		t.Fatalf("first signed write: %v", err)
	}
	if n := h.versions("k1"); n != 2 {
		t.Fatalf("versions after the first write = %d, want 2", n)
	}
	before, _ := h.f.Hash()

	// The same request proposed again by another node: a new version id and
	// a later proposer time, the same signature.
	err := h.applyRaw(signedRotation(t, "n-1", "v3", base+minute, base))
	if !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("replayed signed write: %v, want ErrNonceUsed", err)
	}
	after, _ := h.f.Hash()
	if after != before || h.versions("k1") != 2 || h.f.NonceCount() != 1 {
		t.Fatalf("a refused replay changed the catalogue (versions %d)", h.versions("k1"))
	}
	if h.f.AppliedIndex() != h.index {
		t.Fatal("a refused replay did not advance the applied index")
	}
	// Another nonce of the same key is a new request.
	if err := h.applyRaw(signedRotation(t, "n-2", "v3", base+minute, base+minute)); err != nil {
		t.Fatalf("fresh nonce: %v", err)
	}
}

func TestSignedWrite_RefusedWhenOutsideTheWindow(t *testing.T) {
	base := 100 * minute
	tests := []struct {
		name     string
		now      int64
		signedAt int64
	}{
		{"signed more than a window before the proposer's time", base + 15*minute, base},
		{"signed more than a window after the proposer's time", base, base + 15*minute + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.init()
			h.createKey("k1", "v1")
			before, _ := h.f.Hash()
			err := h.applyRaw(signedRotation(t, "n-1", "v2", tt.now, tt.signedAt))
			if !errors.Is(err, ErrSignatureExpired) {
				t.Fatalf("got %v, want ErrSignatureExpired", err)
			}
			if after, _ := h.f.Hash(); after != before || h.f.NonceCount() != 0 {
				t.Fatal("a refused signed write changed the catalogue")
			}
		})
	}
}

// Pruning follows the proposers' times carried in the commands, and a
// pruned nonce still cannot come back: the cluster's clock has passed its
// window, so the write is refused as expired.
func TestSignedWrite_PrunedByCommandTimeNeverAcceptedAgain(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "v1")
	base := 100 * minute
	h.mustApplyRaw(signedRotation(t, "old", "v2", base, base))
	h.mustApplyRaw(signedRotation(t, "mid", "v3", base+10*minute, base+10*minute))
	if n := h.f.NonceCount(); n != 2 {
		t.Fatalf("nonces = %d, want 2", n)
	}
	// Unsigned writes carry no nonce and move nothing.
	h.mustApply(CmdUpdateKeyDescription, UpdateKeyDescriptionCmd{Now: base + 60*minute, KeyID: "k1", Description: "x"})
	if n := h.f.NonceCount(); n != 2 {
		t.Fatalf("an unsigned write pruned: nonces = %d", n)
	}
	// A signed write proposed at base+15min: "old" expires exactly then.
	h.mustApplyRaw(signedRotation(t, "new", "v4", base+15*minute, base+15*minute))
	if n := h.f.NonceCount(); n != 2 {
		t.Fatalf("after pruning nonces = %d, want 2 (mid, new)", n)
	}
	before, _ := h.f.Hash()
	err := h.applyRaw(signedRotation(t, "old", "v5", base+15*minute, base))
	if !errors.Is(err, ErrSignatureExpired) {
		t.Fatalf("pruned nonce replayed: %v, want ErrSignatureExpired", err)
	}
	if after, _ := h.f.Hash(); after != before || h.f.NonceCount() != 2 {
		t.Fatal("refused write changed the catalogue")
	}
	// A proposer with a slower clock does not move the cluster's clock back.
	err = h.applyRaw(signedRotation(t, "old", "v5", base, base))
	if !errors.Is(err, ErrSignatureExpired) {
		t.Fatalf("pruned nonce replayed through a slow proposer: %v, want ErrSignatureExpired", err)
	}
}

func (h *harness) mustApplyRaw(data []byte) {
	h.t.Helper()
	if err := h.applyRaw(data); err != nil {
		h.t.Fatal(err)
	}
}

// A nonce is spent when its write is applied, even when the inner command
// is refused: the same request sent again is a replay, not a retry (a
// retry signs again with a fresh nonce).
func TestSignedWrite_InnerDomainErrorStillSpendsTheNonce(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "v1")
	h.mustApply(CmdSetKeyState, SetKeyStateCmd{Now: 1, KeyID: "k1", State: StateDisabled})
	base := 100 * minute
	if err := h.applyRaw(signedRotation(t, "n-1", "v2", base, base)); !errors.Is(err, ErrKeyState) {
		t.Fatalf("rotation of a disabled key: %v", err)
	}
	h.mustApply(CmdSetKeyState, SetKeyStateCmd{Now: 2, KeyID: "k1", State: StateEnabled})
	if err := h.applyRaw(signedRotation(t, "n-1", "v2", base+minute, base)); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("the refused request replayed once the key is enabled: %v, want ErrNonceUsed", err)
	}
	if n := h.versions("k1"); n != 1 {
		t.Fatalf("versions = %d, want 1", n)
	}
}

// The catalogue's hash stands for its content: a write the catalogue
// refuses leaves it unchanged although the nonce is spent.
func TestHash_LeavesOutTheNonceTable(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "v1")
	h.mustApply(CmdSetKeyState, SetKeyStateCmd{Now: 1, KeyID: "k1", State: StateDisabled})
	before, _ := h.f.Hash()
	if err := h.applyRaw(signedRotation(t, "n-1", "v2", 100*minute, 100*minute)); !errors.Is(err, ErrKeyState) {
		t.Fatalf("rotation of a disabled key: %v", err)
	}
	if after, _ := h.f.Hash(); after != before || h.f.NonceCount() != 1 {
		t.Fatalf("hash changed by a refused write, or the nonce was not spent (%d)", h.f.NonceCount())
	}
}

func TestSignedWrite_MalformedWrapperRefusedEverywhere(t *testing.T) {
	inner, _ := Encode(CmdNoop, NoopCmd{})
	nested, _ := EncodeSignedWrite(SignedWriteCmd{Now: 1, AccessKeyID: "a", Nonce: "n", SignedAt: 1}, inner)
	tests := []struct {
		name string
		w    SignedWriteCmd
		in   []byte
	}{
		{"no inner command", SignedWriteCmd{Now: 1, AccessKeyID: "a", Nonce: "n", SignedAt: 1}, nil},
		{"nested signed write", SignedWriteCmd{Now: 1, AccessKeyID: "a", Nonce: "n2", SignedAt: 1}, nested},
		{"no nonce", SignedWriteCmd{Now: 1, AccessKeyID: "a", SignedAt: 1}, inner},
		{"no access key", SignedWriteCmd{Now: 1, Nonce: "n", SignedAt: 1}, inner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.init()
			data, err := EncodeSignedWrite(tt.w, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := h.f.Hash()
			if err := h.applyRaw(data); err == nil {
				t.Fatal("malformed signed write applied")
			}
			if after, _ := h.f.Hash(); after != before || h.f.NonceCount() != 0 {
				t.Fatal("malformed signed write changed the catalogue")
			}
		})
	}
}

func TestSnapshot_KeepsTheNonceTable(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "v1")
	base := 100 * minute
	h.mustApplyRaw(signedRotation(t, "n-1", "v2", base, base))
	h.mustApplyRaw(signedRotation(t, "n-2", "v3", base+5*minute, base+5*minute))
	data := snapshotBytes(t, h.f)
	wantHash, _ := h.f.Hash()

	restore := func() *harness {
		g := &harness{t: t, f: newTestFSM(), index: h.index}
		if err := g.f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := restore()
	if got, _ := g.f.Hash(); got != wantHash || g.f.NonceCount() != 2 {
		t.Fatalf("restored nonce table differs (%d nonces)", g.f.NonceCount())
	}
	if !bytes.Equal(snapshotBytes(t, g.f), data) {
		t.Fatal("re-persisted snapshot differs")
	}
	// The restored replica refuses the replay, and keeps the clock: a write
	// older than the clock's window is refused as expired.
	if err := g.applyRaw(signedRotation(t, "n-1", "v9", base+6*minute, base)); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("replay after restore: %v, want ErrNonceUsed", err)
	}
	if err := g.applyRaw(signedRotation(t, "other", "v9", base, base+5*minute-nonceWindowMs)); !errors.Is(err, ErrSignatureExpired) {
		t.Fatalf("write older than the restored clock's window: %v, want ErrSignatureExpired", err)
	}
	// A replica restored from the snapshot and the one that applied the log
	// prune the same way: the same next write leaves the same state.
	r := restore()
	next := signedRotation(t, "n-3", "v4", base+21*minute, base+21*minute)
	h.mustApplyRaw(next)
	r.mustApplyRaw(next)
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, r.f)) || r.f.NonceCount() != 1 {
		t.Fatalf("replicas diverged after pruning (nonces %d vs %d)", h.f.NonceCount(), r.f.NonceCount())
	}
}

// A snapshot from before replay protection has no replay records; a
// catalogue that never applied a signed write still writes none, so its
// bytes are what older versions wrote, and it loads with an empty table.
func TestSnapshot_WithoutReplayRecordsLoads(t *testing.T) {
	h := buildCatalogue(t, 5)
	data := snapshotBytes(t, h.f)
	for _, marker := range [][]byte{[]byte("\xa5clock"), []byte("\xa5nonce")} {
		if bytes.Contains(data, marker) {
			t.Fatalf("snapshot without signed writes carries %q", marker[1:])
		}
	}
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if g.NonceCount() != 0 {
		t.Fatalf("nonces = %d", g.NonceCount())
	}
	gh := &harness{t: t, f: g, index: g.AppliedIndex()}
	gh.createKey("k1", "v1")
	gh.mustApplyRaw(signedRotation(t, "n-1", "v2", 100*minute, 100*minute))
}

func TestSnapshot_RefusesDuplicateNonceRecords(t *testing.T) {
	c := newCatalogue()
	rec := []byte("\x84\xa2ak\xa1a\xa5nonce\xa1n\xa3seq\x00\xa3exp\x01")
	if err := c.loadRecord(recSignedNonce, rec); err != nil {
		t.Fatal(err)
	}
	if err := c.loadRecord(recSignedNonce, rec); err == nil {
		t.Fatal("duplicate nonce record accepted")
	}
}

// FuzzReplayRecords feeds the nonce-table records of a snapshot (which an
// operator uploads, so they are untrusted bytes) to their decoder. Whatever
// loads must persist and load again to the same table; nothing panics.
func FuzzReplayRecords(f *testing.F) {
	g := newReplayGuard()
	for i, n := range []string{"a", "b", "c"} {
		if err := g.admit(&SignedWriteCmd{Now: 100 * minute, AccessKeyID: "LTAIexample", Nonce: n, Seq: uint32(i), SignedAt: 100 * minute}); err != nil {
			f.Fatal(err)
		}
	}
	var seed bytes.Buffer
	if err := g.writeRecords(&seed, g.sortedKeys()); err != nil {
		f.Fatal(err)
	}
	f.Add(seed.Bytes())
	f.Add([]byte{recSignedNonce, 0, 0, 0, 1, 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		loaded := newReplayGuard()
		r := bytes.NewReader(data)
		for r.Len() > 0 {
			typ, _ := r.ReadByte()
			body, err := readFrame(r)
			if err != nil {
				return
			}
			handled, err := loaded.loadRecord(typ, body)
			if !handled || err != nil {
				return
			}
		}
		var out bytes.Buffer
		if err := loaded.writeRecords(&out, loaded.sortedKeys()); err != nil {
			t.Fatal(err)
		}
		again := newReplayGuard()
		r = bytes.NewReader(out.Bytes())
		for r.Len() > 0 {
			typ, _ := r.ReadByte()
			body, err := readFrame(r)
			if err != nil {
				t.Fatalf("re-persisted records do not frame: %v", err)
			}
			if _, err := again.loadRecord(typ, body); err != nil {
				t.Fatalf("re-persisted records do not load: %v", err)
			}
		}
		if again.clock != loaded.clock || len(again.seen) != len(loaded.seen) {
			t.Fatalf("round trip changed the table: clock %d→%d, %d→%d nonces", loaded.clock, again.clock, len(loaded.seen), len(again.seen))
		}
		// The pruning queue holds exactly the table.
		if again.queue.Len() != len(again.seen) {
			t.Fatalf("queue %d entries for %d nonces", again.queue.Len(), len(again.seen))
		}
	})
}
