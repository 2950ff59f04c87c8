package kms

import (
	"bytes"
	"context"
	"testing"
)

// A restore given a decoder that read the file as it was written (the API
// starts one for an upload signed by the operator to the leader) stages
// what it decoded: the file is not read while the restore verifies it, and
// Raft is given exactly the file. A decoder that stopped, or that read
// other bytes than the file's, leaves the file to the usual verification.
func TestRestore_UsesWhatTheUploadsDecoderDecoded(t *testing.T) {
	e := newSvcEnv(t)
	for range 5 {
		e.createKey(t, CreateKeyInput{Description: "a key in the snapshot"})
	}
	var snap bytes.Buffer
	if _, err := e.svc.SaveSnapshot(context.Background(), e.caller, &snap); err != nil {
		t.Fatal(err)
	}
	e.store.restore = func(applied func()) error { applied(); return nil }
	size := int64(snap.Len())
	for _, c := range []struct {
		name        string
		dec         func() *StreamDecoder
		wantDecoded bool
	}{
		{"decoded as written", func() *StreamDecoder {
			d := e.svc.NewStreamDecoder(nil, bytes.NewBuffer(bytes.Clone(snap.Bytes())), size)
			d.Wrote(size)
			return d
		}, true},
		{"stopped before the end", func() *StreamDecoder {
			d := e.svc.NewStreamDecoder(nil, bytes.NewBuffer(bytes.Clone(snap.Bytes())), size)
			d.Wrote(size / 2)
			d.Stop()
			return d
		}, false},
		{"a byte short of the file", func() *StreamDecoder {
			d := e.svc.NewStreamDecoder(nil, bytes.NewBuffer(bytes.Clone(snap.Bytes()[:size-1])), size-1)
			d.Wrote(size - 1)
			return d
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			verifyReads := 0
			file := &observedSnapshot{Reader: bytes.NewReader(snap.Bytes()), read: func() {
				if p, ok := e.svc.RestoreInProgress(); ok && p.Phase == RestoreVerifying {
					verifyReads++
				}
			}}
			sum, err := e.svc.RestoreSnapshotWith(context.Background(), &e.caller, file, RestoreOptions{Decoder: c.dec()})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if sum.Keys != 5 || !bytes.Equal(e.store.restored, snap.Bytes()) {
				t.Fatalf("summary %+v; Raft given %d bytes of %d", sum, len(e.store.restored), size)
			}
			if decoded := verifyReads == 0; decoded != c.wantDecoded {
				t.Fatalf("the file was read %d times while verified; want the decoder's result used: %t", verifyReads, c.wantDecoded)
			}
			if e.fsm.HoldsStagedRestore() {
				t.Fatal("the restore left a catalogue staged")
			}
		})
	}
}
