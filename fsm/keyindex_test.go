package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func keyIDs(ks []*Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.ID
	}
	return out
}

// The key index lists an account's keys in creation order, pages them,
// filters, forgets deleted keys, finds the default key, and is rebuilt the
// same from a snapshot.
func TestKeyIndex_ListsPagesDeletesAndRestores(t *testing.T) {
	h := newHarness(t)
	h.init()
	var want []string
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("k%d", 9-i) // ids against creation order
		h.createKey(id, "v"+id)
		want = append(want, id)
	}
	if got := keyIDs(h.f.Keys(acct)); !reflect.DeepEqual(got, want) {
		t.Fatalf("Keys = %v, want %v", got, want)
	}
	page, total := h.f.KeysPage(acct, nil, 2, 3)
	if got := keyIDs(page); total != 7 || !reflect.DeepEqual(got, want[2:5]) {
		t.Fatalf("page 2..5 = %v of %d, want %v of 7", got, total, want[2:5])
	}
	if page, total := h.f.KeysPage(acct, nil, 7, 3); len(page) != 0 || total != 7 {
		t.Fatalf("a page past the end: %d keys of %d", len(page), total)
	}
	odd := func(k *Key) bool { return (k.ID[1]-'0')%2 == 1 }
	page, total = h.f.KeysPage(acct, odd, 1, 2)
	if got := keyIDs(page); total != 4 || !reflect.DeepEqual(got, []string{"k7", "k5"}) {
		t.Fatalf("filtered page = %v of %d, want [k7 k5] of 4", got, total)
	}
	if page, total := h.f.KeysPage("0000000000000000", nil, 0, 10); len(page) != 0 || total != 0 {
		t.Fatalf("another account: %d of %d", len(page), total)
	}

	// Delete a key from the middle.
	h.mustApply(CmdScheduleKeyDeletion, KeyDeletionCmd{Now: 3000, KeyID: "k6", DeleteDate: 4000})
	h.mustApply(CmdDeleteKey, KeyDeletionCmd{Now: 5000, KeyID: "k6"})
	want = []string{"k9", "k8", "k7", "k5", "k4", "k3"}
	if got := keyIDs(h.f.Keys(acct)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after deleting k6: %v, want %v", got, want)
	}

	// The default key: one per account, found without a scan.
	if _, ok := h.f.DefaultKey(acct); ok {
		t.Fatal("a default key before one was made")
	}
	h.mustApply(CmdCreateKey, CreateKeyCmd{Now: 2000,
		Key:     Key{ID: "kdef", AccountID: acct, Spec: "Aliyun_AES_256", Usage: "ENCRYPT/DECRYPT", Origin: "Aliyun_KMS", ProtectionLevel: "SOFTWARE", State: StateEnabled},
		Version: KeyVersion{ID: "vdef", WrappedMaterial: []byte("w")}})
	if k, ok := h.f.DefaultKey(acct); !ok || k.ID != "kdef" {
		t.Fatalf("DefaultKey = %v %v", k, ok)
	}
	err := h.apply(CmdCreateKey, CreateKeyCmd{Now: 2000,
		Key:     Key{ID: "kdef2", AccountID: acct, Spec: "Aliyun_AES_256", Usage: "ENCRYPT/DECRYPT", Origin: "Aliyun_KMS", ProtectionLevel: "SOFTWARE", State: StateEnabled},
		Version: KeyVersion{ID: "vdef2", WrappedMaterial: []byte("w")}})
	if !errors.Is(err, ErrDefaultKeyExists) {
		t.Fatalf("a second default key: %v", err)
	}
	want = append(want, "kdef")

	// A restored FSM lists the same, finds the same default key, and
	// persists the same bytes.
	data := snapshotBytes(t, h.f)
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got := keyIDs(g.Keys(acct)); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored: %v, want %v", got, want)
	}
	if k, ok := g.DefaultKey(acct); !ok || k.ID != "kdef" {
		t.Fatalf("restored DefaultKey = %v %v", k, ok)
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("the restored catalogue persists to other bytes")
	}
	if a, _ := h.f.Hash(); a != func() [32]byte { b, _ := g.Hash(); return b }() {
		t.Fatal("hashes differ after restore")
	}
}

// Shared strings change no value: a key's tags stay its own to change,
// and records read before a change keep their values.
func TestKeyIndex_SharedRecordsStayImmutable(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "v1")
	h.createKey("k2", "v2")
	before, _ := h.f.Key("k2")
	h.mustApply(CmdTagResource, TagCmd{Now: 3000, KeyID: "k1", Tags: map[string]string{"a": "b"}})
	h.mustApply(CmdSetKeyState, SetKeyStateCmd{Now: 3000, KeyID: "k2", State: StateDisabled})
	k1, _ := h.f.Key("k1")
	k2, _ := h.f.Key("k2")
	if k1.Tags["a"] != "b" || len(k2.Tags) != 0 || k2.Tags == nil {
		t.Fatalf("tags: k1 %v, k2 %v", k1.Tags, k2.Tags)
	}
	if before.State != StateEnabled || k2.State != StateDisabled || len(before.Tags) != 0 {
		t.Fatalf("a record read before a change changed: %+v", before)
	}
}

// An operator restore decodes the snapshot once: ResealAndStage stages
// what it decoded, PrepareRestore recognises the resealed bytes, and
// Restore swaps in the staged state, which lists and hashes as the source.
func TestResealAndStage_RestoresWithoutDecodingAgain(t *testing.T) {
	h := newHarness(t)
	h.init()
	for i := 0; i < 5; i++ {
		h.createKey(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	data := snapshotBytes(t, h.f)
	g := newTestFSM()
	// A snapshot in the current format is its own resealed form: nothing
	// is copied.
	src := bytes.NewReader(data)
	info, resealed, err := g.ResealAndStage(src, func() (io.Writer, error) {
		t.Fatal("ResealAndStage asked for a writer to copy a current-format snapshot")
		return nil, nil
	}, VerifyOptions{})
	if err != nil || info.Keys != 5 || resealed != SnapshotBytes(src) {
		t.Fatalf("ResealAndStage: %+v resealed=%T %v", info, resealed, err)
	}
	info2 := restoreStaged(t, g, resealed, h.f)
	if info2.Keys != 5 || info2.LastIndex != info.LastIndex || len(g.Keys(acct)) != 5 {
		t.Fatalf("PrepareRestore: %+v, %d keys restored", info2, len(g.Keys(acct)))
	}
	// Other bytes are decoded as before.
	if _, err := g.PrepareRestore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// dutyIDs is what KeysWithDuties returns, and what a scan of every key
// finds, as sorted ids.
func dutyIDs(t *testing.T, f *FSM) (indexed, scanned []string) {
	t.Helper()
	for _, k := range f.KeysWithDuties() {
		indexed = append(indexed, k.ID)
	}
	for _, k := range f.AllKeys() {
		if hasDuty(k) {
			scanned = append(scanned, k.ID)
		}
	}
	slices.Sort(indexed)
	slices.Sort(scanned)
	return indexed, scanned
}

// The scheduler's duty index follows every change that gives a key a duty
// or takes it away, deletion and a snapshot load included.
func TestKeyIndex_DutiesFollowTheKeys(t *testing.T) {
	h := newHarness(t)
	h.init()
	for _, id := range []string{"k1", "k2", "k3", "k4"} {
		h.createKey(id, "v-"+id)
	}
	check := func(step string, want ...string) {
		t.Helper()
		indexed, scanned := dutyIDs(t, h.f)
		if !slices.Equal(indexed, scanned) || !slices.Equal(indexed, want) {
			t.Fatalf("%s: indexed %v, scanned %v, want %v", step, indexed, scanned, want)
		}
	}
	check("created")
	h.mustApply(CmdUpdateRotationPolicy, RotationPolicyCmd{Now: 3000, KeyID: "k1", IntervalSec: 7 * 86400})
	h.mustApply(CmdScheduleKeyDeletion, KeyDeletionCmd{Now: 3000, KeyID: "k2", DeleteDate: 9000})
	h.mustApply(CmdScheduleKeyDeletion, KeyDeletionCmd{Now: 3000, KeyID: "k3", DeleteDate: 9000})
	check("rotation and deletions", "k1", "k2", "k3")
	h.mustApply(CmdCancelKeyDeletion, KeyDeletionCmd{Now: 3100, KeyID: "k2"})
	h.mustApply(CmdUpdateRotationPolicy, RotationPolicyCmd{Now: 3100, KeyID: "k1", IntervalSec: 0})
	check("cancelled, rotation off", "k3")
	h.mustApply(CmdUpdateRotationPolicy, RotationPolicyCmd{Now: 3200, KeyID: "k4", IntervalSec: 7 * 86400})
	h.mustApply(CmdDeleteKey, KeyDeletionCmd{Now: 9500, KeyID: "k3"})
	check("deleted", "k4")

	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
		t.Fatal(err)
	}
	h.f = g
	check("restored", "k4")
}

// A format 1 snapshot is encoded again into the writer ResealAndStage asks
// for, and what is staged is the digest of those new bytes: PrepareRestore
// recognises them (not the old file), and Restore installs the state.
func TestResealAndStage_Format1IsEncodedAgainAndStaged(t *testing.T) {
	h, data := policySnapshot(t)
	old := snapshotV1Bytes(t, h.f)
	g := newTestFSM()
	var resealed bytes.Buffer
	asked := 0
	src := bytes.NewReader(old)
	info, back, err := g.ResealAndStage(src, func() (io.Writer, error) {
		asked++
		return &resealed, nil
	}, VerifyOptions{AcceptUnauthenticated: true})
	if err != nil || back == SnapshotBytes(src) || asked != 1 || info.Format != 1 {
		t.Fatalf("ResealAndStage of format 1: %+v resealed=%T asked=%d %v", info, back, asked, err)
	}
	if !bytes.Equal(resealed.Bytes(), data) {
		t.Fatal("the resealed format 1 snapshot differs from the format 2 snapshot of the same state")
	}
	if got, _ := io.ReadAll(back); !bytes.Equal(got, data) {
		t.Fatal("the resealed bytes ResealAndStage returned are not the ones it wrote")
	}
	restoreStaged(t, g, back, h.f)
}

// restoreStaged restores resealed into g as the leader does after
// ResealAndStage, and fails unless the staged catalogue is the one
// restored: PrepareRestore recognised the bytes without decoding them
// again, and Restore found Raft's copy of them equal to the staged ones.
// g must then hold src's state. It returns what PrepareRestore said.
func restoreStaged(t *testing.T, g *FSM, resealed SnapshotBytes, src *FSM) SnapshotInfo {
	t.Helper()
	g.stagedMu.Lock()
	staged := g.staged.cat
	g.stagedMu.Unlock()
	info, err := g.PrepareRestore(resealed)
	if err != nil {
		t.Fatalf("PrepareRestore: %v", err)
	}
	g.stagedMu.Lock()
	same := g.staged != nil && g.staged.cat == staged
	g.stagedMu.Unlock()
	if !same {
		t.Fatal("PrepareRestore decoded the resealed bytes again")
	}
	if _, err := resealed.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	raftCopy, err := io.ReadAll(resealed)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader(raftCopy))); err != nil {
		t.Fatal(err)
	}
	g.mu.RLock()
	used := g.cat == staged
	g.mu.RUnlock()
	if !used {
		t.Fatal("Restore decoded Raft's copy of the staged bytes instead of using the staged catalogue")
	}
	a, _ := src.Hash()
	b, _ := g.Hash()
	if a != b {
		t.Fatal("the restored state differs from the source")
	}
	return info
}

// The key index's radix sort orders a large list exactly as comparing
// would: by create index, then id, with repeated create indexes (keys made
// by one entry) and create indexes of any size.
func TestSortIndexEntries_SameOrderAsComparing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		n   int
		max uint64
	}{{10, 5}, {5000, 3000}, {20000, 1 << 20}, {20000, 1 << 63}, {9000, 1}} {
		es := make([]indexEntry, c.n)
		for i := range es {
			es[i] = indexEntry{ci: rng.Uint64N(c.max + 1), id: fmt.Sprintf("key-%08x", rng.Uint32())}
		}
		want := slices.Clone(es)
		slices.SortFunc(want, compareIndexEntries)
		sortIndexEntries(es)
		if !slices.Equal(es, want) {
			t.Fatalf("n=%d max=%d: the radix sort's order differs from comparing", c.n, c.max)
		}
	}
}
