package fsm

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// snapshotV1Bytes writes f's catalogue in the old format 1, whose trailer
// is a plain SHA-256, as builds before authenticated snapshots did.
func snapshotV1Bytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	f.mu.RLock()
	cat, idx := f.cat.shallowCopy(), f.applied
	f.mu.RUnlock()
	var out bytes.Buffer
	sum := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(&out, sum))
	bw.WriteString(snapshotMagic)
	binary.Write(bw, binary.BigEndian, uint16(snapshotFormatSHA256))
	hdr, err := msgpack.Marshal(SnapshotHeader{Format: snapshotFormatSHA256, LastIndex: idx, RootCheck: cat.rootCheck})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(bw, hdr); err != nil {
		t.Fatal(err)
	}
	if err := cat.writeRecords(bw); err != nil {
		t.Fatal(err)
	}
	bw.WriteByte(recEnd)
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	out.Write(sum.Sum(nil))
	return out.Bytes()
}

// withSHA256Trailer replaces data's trailer by the SHA-256 of the rest, as
// someone who edited the file would recompute it.
func withSHA256Trailer(data []byte) []byte {
	body := bytes.Clone(data[:len(data)-snapshotSumSize])
	sum := sha256.Sum256(body)
	return append(body, sum[:]...)
}

// withFormat rewrites the format version in the preamble (not the header).
func withFormat(data []byte, v uint16) []byte {
	out := bytes.Clone(data)
	binary.BigEndian.PutUint16(out[len(snapshotMagic):], v)
	return out
}

// policySnapshot is a catalogue whose key k1 has a restrictive policy, and
// its snapshot.
func policySnapshot(t *testing.T) (*harness, []byte) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "v1")
	h.mustApply(CmdSetKeyPolicy, KeyPolicyCmd{Now: 3000, KeyID: "k1", Policy: `{"Principal":{"RAM":["acs:ram::1234567890123456:root"]}}`})
	return h, snapshotBytes(t, h.f)
}

func TestSnapshot_WritesFormat2WithHMACTrailer(t *testing.T) {
	_, data := policySnapshot(t)
	if v := binary.BigEndian.Uint16(data[len(snapshotMagic):]); v != 2 {
		t.Fatalf("format version %d, want 2", v)
	}
	m := hmac.New(sha256.New, testSnapshotKey)
	m.Write(data[:len(data)-snapshotSumSize])
	if !bytes.Equal(m.Sum(nil), data[len(data)-snapshotSumSize:]) {
		t.Fatal("the trailer is not HMAC-SHA256 under the snapshot key of every preceding byte")
	}
}

// Issue 9, point 5: someone without the root key edits a key policy inside
// a snapshot and recomputes the old-style SHA-256 trailer (keeping the
// format, or also downgrading it to format 1). Every read path refuses the
// file and the catalogue stays as it was.
func TestSnapshot_RefusesEditedPolicyWithRecomputedChecksum(t *testing.T) {
	_, data := policySnapshot(t)
	orig := "acs:ram::1234567890123456:root"
	i := bytes.Index(data, []byte(orig))
	if i < 0 {
		t.Fatal("policy not found in the snapshot")
	}
	edited := bytes.Clone(data)
	copy(edited[i:], "acs:ram::6666666666666666:root")

	for _, c := range []struct {
		name   string
		bytes  []byte
		format int
	}{
		{"format 2 with a recomputed SHA-256", withSHA256Trailer(edited), 2},
		{"format 2 with the original MAC", edited, 2},
		{"downgraded to format 1 with a recomputed SHA-256", withSHA256Trailer(withFormat(edited, 1)), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newTestFSM()
			g.Restore(io.NopCloser(bytes.NewReader(data)))
			before, _ := g.Hash()
			if _, err := g.VerifySnapshot(bytes.NewReader(c.bytes), VerifyOptions{}); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("VerifySnapshot accepted the edited snapshot: %v", err)
			}
			if _, err := g.ResealSnapshot(bytes.NewReader(c.bytes), io.Discard, VerifyOptions{}); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("ResealSnapshot accepted the edited snapshot: %v", err)
			}
			if _, err := g.PrepareRestore(bytes.NewReader(c.bytes)); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("PrepareRestore accepted the edited snapshot: %v", err)
			}
			if c.format == 2 {
				if err := g.Restore(io.NopCloser(bytes.NewReader(c.bytes))); !errors.Is(err, ErrBadSnapshot) {
					t.Fatalf("Restore accepted the edited snapshot: %v", err)
				}
			}
			if after, _ := g.Hash(); after != before {
				t.Fatal("a refused snapshot changed the catalogue")
			}
			if k, _ := g.Key("k1"); !strings.Contains(k.Policy, orig) {
				t.Fatalf("policy now %q", k.Policy)
			}
		})
	}
}

func TestSnapshot_RefusesAnotherSnapshotKey(t *testing.T) {
	_, data := policySnapshot(t)
	other := New(nil, WithSnapshotKey(bytes.Repeat([]byte{1}, 32)))
	_, err := other.VerifySnapshot(bytes.NewReader(data), VerifyOptions{AcceptUnauthenticated: true})
	if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "root key") {
		t.Fatalf("VerifySnapshot under another key: %v", err)
	}
	if err := other.Restore(io.NopCloser(bytes.NewReader(data))); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("Restore under another key: %v", err)
	}
	if ok, _ := other.Initialized(); ok {
		t.Fatal("a refused restore initialized the catalogue")
	}
}

func TestSnapshot_Format1OnlyWhenAcceptedAndResealedToFormat2(t *testing.T) {
	h, data := policySnapshot(t)
	old := snapshotV1Bytes(t, h.f)
	g := newTestFSM()

	_, err := g.VerifySnapshot(bytes.NewReader(old), VerifyOptions{})
	if !errors.Is(err, ErrUnauthenticatedSnapshot) || !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("format 1 by default: %v, want ErrUnauthenticatedSnapshot", err)
	}
	if _, err := g.PrepareRestore(bytes.NewReader(old)); !errors.Is(err, ErrUnauthenticatedSnapshot) {
		t.Fatalf("PrepareRestore of format 1: %v", err)
	}
	// A damaged format 1 file is refused even when accepted.
	bad := bytes.Clone(old)
	bad[len(bad)/2] ^= 1
	if _, err := g.VerifySnapshot(bytes.NewReader(bad), VerifyOptions{AcceptUnauthenticated: true}); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("damaged format 1: %v", err)
	}

	info, err := g.VerifySnapshot(bytes.NewReader(old), VerifyOptions{AcceptUnauthenticated: true})
	if err != nil || info.Format != 1 || info.Keys != 1 || string(info.RootCheck) != "check" {
		t.Fatalf("accepted format 1: %+v, %v", info, err)
	}
	var resealed bytes.Buffer
	if _, err := g.ResealSnapshot(bytes.NewReader(old), &resealed, VerifyOptions{AcceptUnauthenticated: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resealed.Bytes(), data) {
		t.Fatal("a resealed format 1 snapshot differs from the format 2 snapshot of the same state")
	}
	// A format 2 snapshot reseals to itself.
	resealed.Reset()
	if _, err := g.ResealSnapshot(bytes.NewReader(data), &resealed, VerifyOptions{}); err != nil || !bytes.Equal(resealed.Bytes(), data) {
		t.Fatalf("resealing format 2 changed it (%v)", err)
	}
}

// At an upgrade, Raft restores the node's own format 1 snapshot from disk
// through Restore, which accepts it; the next persisted snapshot is format 2.
func TestRestore_AcceptsFormat1FromRaftAtUpgrade(t *testing.T) {
	h, data := policySnapshot(t)
	old := snapshotV1Bytes(t, h.f)
	want, _ := h.f.Hash()
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Hash(); got != want {
		t.Fatal("restored catalogue differs")
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("the next persisted snapshot is not the format 2 one")
	}
}

func TestSnapshot_WithoutKeyRefusesToPersistOrRead(t *testing.T) {
	h, data := policySnapshot(t)
	f := New(nil)
	f.Restore(io.NopCloser(bytes.NewReader(data)))
	if ok, _ := f.Initialized(); ok {
		t.Fatal("an FSM without a snapshot key restored a snapshot")
	}
	if _, err := f.VerifySnapshot(bytes.NewReader(data), VerifyOptions{}); !errors.Is(err, ErrNoSnapshotKey) {
		t.Fatalf("VerifySnapshot without key: %v", err)
	}
	snap, _ := h.f.Snapshot()
	snap.(*snapshot).key = nil
	sink := &memSink{}
	if err := snap.Persist(sink); !errors.Is(err, ErrNoSnapshotKey) || !sink.cancelled {
		t.Fatalf("Persist without key: %v, cancelled %v", err, sink.cancelled)
	}
	if _, err := f.WriteSnapshotTo(io.Discard); !errors.Is(err, ErrNoSnapshotKey) {
		t.Fatalf("WriteSnapshotTo without key: %v", err)
	}
}

func TestSnapshot_RefusesHeaderFormatDisagreeingWithPreamble(t *testing.T) {
	h, _ := policySnapshot(t)
	old := snapshotV1Bytes(t, h.f)
	// Preamble says 2, header says 1, trailer a valid MAC.
	body := withFormat(old[:len(old)-snapshotSumSize], 2)
	m := hmac.New(sha256.New, testSnapshotKey)
	m.Write(body)
	forged := append(body, m.Sum(nil)...)
	if _, err := h.f.VerifySnapshot(bytes.NewReader(forged), VerifyOptions{}); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("format disagreement: %v", err)
	}
}

// The MAC check a follower runs before handing a snapshot on: a snapshot of
// the current format whose MAC verifies gives its header; any byte changed,
// a truncated file, another snapshot key or the old format is refused.
func TestCheckSnapshotMAC(t *testing.T) {
	h := buildCatalogue(t, 3)
	good := snapshotBytes(t, h.f)
	hdr, err := h.f.CheckSnapshotMAC(bytes.NewReader(good))
	info, verr := h.f.VerifySnapshot(bytes.NewReader(good), VerifyOptions{})
	if err != nil || verr != nil || hdr.Format != snapshotFormat || hdr.LastIndex != info.LastIndex || !bytes.Equal(hdr.RootCheck, info.RootCheck) {
		t.Fatalf("CheckSnapshotMAC = %+v, %v; VerifySnapshot = %+v, %v", hdr, err, info.SnapshotHeader, verr)
	}
	for _, at := range []int{len(snapshotMagic) + 2, len(snapshotMagic) + 8, len(good) / 2, len(good) - snapshotSumSize - 1, len(good) - 1} {
		bad := bytes.Clone(good)
		bad[at] ^= 1
		if _, err := h.f.CheckSnapshotMAC(bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("a byte changed at %d of %d: %v", at, len(good), err)
		}
	}
	for _, n := range []int{0, 9, len(good) / 2, len(good) - 1} {
		if _, err := h.f.CheckSnapshotMAC(bytes.NewReader(good[:n])); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if _, err := h.f.CheckSnapshotMAC(bytes.NewReader(append(bytes.Clone(good), 0))); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("a byte appended: %v", err)
	}
	other := New(nil, WithSnapshotKey(bytes.Repeat([]byte{9}, 32)))
	if _, err := other.CheckSnapshotMAC(bytes.NewReader(good)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("another snapshot key: %v", err)
	}
	if _, err := h.f.CheckSnapshotMAC(bytes.NewReader(snapshotV1Bytes(t, h.f))); !errors.Is(err, ErrUnauthenticatedSnapshot) {
		t.Fatalf("format 1: %v, want ErrUnauthenticatedSnapshot", err)
	}
}
