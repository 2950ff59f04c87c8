package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// writeSnapshot stores data as a snapshot through the store's Create (what
// Raft does when it takes or installs one) and returns its id.
func writeSnapshot(t *testing.T, s raft.SnapshotStore, data []byte) string {
	t.Helper()
	sink, err := s.Create(raft.SnapshotVersionMax, 7, 3, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

func newTestSnapshotStore(t *testing.T) (*snapshotStore, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := newSnapshotStore(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func statePath(dir, id string) string { return filepath.Join(dir, "snapshots", id, "state.bin") }

// Open gives the bytes and the metadata Raft's own store gives.
func TestSnapshotStore_OpenReadsWhatRaftsStoreWrote(t *testing.T) {
	s, dir := newTestSnapshotStore(t)
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	id := writeSnapshot(t, s, data)

	meta, rc, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(data))
	}
	raftMeta, raftRC, err := s.FileSnapshotStore.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	raftRC.Close()
	if meta.ID != raftMeta.ID || meta.Index != 7 || meta.Term != 3 || meta.Size != int64(len(data)) || meta.ConfigurationIndex != 1 {
		t.Fatalf("meta %+v, Raft's store says %+v", meta, raftMeta)
	}
	if _, err := os.Stat(statePath(dir, id)); err != nil {
		t.Fatal(err)
	}
}

// A state file that no longer matches its CRC-64 is refused before its last
// bytes are handed out, as Raft's store refuses it before the first: a
// reader never sees the whole of a damaged snapshot end cleanly.
func TestSnapshotStore_DamagedStateRefusedBeforeItsEnd(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(b []byte) []byte
	}{
		{"flipped byte at the start", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"flipped byte at the end", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"extended", func(b []byte) []byte { return append(b, 0) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			s, dir := newTestSnapshotStore(t)
			data := make([]byte, 1<<20+5)
			rand.Read(data)
			id := writeSnapshot(t, s, data)
			p := statePath(dir, id)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, damage.do(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.FileSnapshotStore.Open(id); err == nil {
				t.Fatal("Raft's own store took the damaged file")
			}
			_, rc, err := s.Open(id)
			if err != nil {
				return // refused at once: as good
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err == nil {
				t.Fatalf("read the damaged snapshot to its end (%d bytes)", len(got))
			}
			if !errors.Is(err, errSnapshotCRC) {
				t.Fatalf("error %v, want %v", err, errSnapshotCRC)
			}
			if len(got) >= len(b)-1 {
				t.Fatalf("%d of %d bytes handed out before the refusal", len(got), len(b))
			}
		})
	}
}

// A snapshot whose metadata is unreadable is refused as Raft's store
// refuses it.
func TestSnapshotStore_MissingMetaRefused(t *testing.T) {
	s, dir := newTestSnapshotStore(t)
	id := writeSnapshot(t, s, []byte("state"))
	if err := os.Remove(filepath.Join(dir, "snapshots", id, "meta.json")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(id); err == nil {
		t.Fatal("opened a snapshot without its metadata")
	}
}

// Closing a reader before its end stops the check beside it.
func TestSnapshotStore_CloseEarly(t *testing.T) {
	s, _ := newTestSnapshotStore(t)
	data := make([]byte, 4<<20)
	id := writeSnapshot(t, s, data)
	_, rc, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	c := rc.(*crcCheckedFile)
	<-c.checked // the check ends (stopped or done) once the reader is closed
}
