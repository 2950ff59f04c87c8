package kms

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"
)

func TestAuthorizeRestore_OperatorOnlyOnceInitialized(t *testing.T) {
	e := newSvcEnv(t)
	other := Caller{AccountID: "9999999999999999", Principal: rootPrincipal("9999999999999999")}
	user := Caller{AccountID: e.caller.AccountID, Principal: "acs:ram::" + e.caller.AccountID + ":user/alice"}
	for _, c := range []struct {
		name   string
		caller *Caller
		want   error
	}{
		{"unauthenticated", nil, ErrNoPermission},
		{"another account's root", &other, ErrNoPermission},
		{"a user of the operator account", &user, ErrNoPermission},
		{"the operator's root", &e.caller, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := e.svc.AuthorizeRestore(c.caller, RestoreOptions{}); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("AuthorizeRestore = %v, want %v", err, c.want)
			}
			if _, err := e.svc.RestoreTarget(context.Background(), c.caller); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("RestoreTarget = %v, want %v", err, c.want)
			}
		})
	}
	e.createKey(t, CreateKeyInput{DKMSInstanceID: e.inst})
	got, err := e.svc.RestoreTarget(context.Background(), &e.caller)
	if err != nil || !got.Initialized || got.Keys != 1 || got.Accounts != 1 || got.AppliedIndex != e.fsm.AppliedIndex() {
		t.Fatalf("RestoreTarget = %+v, %v", got, err)
	}
}

// The resealed copy a restore stages in the data directory is removed, and
// the catalogue decoded from it dropped, whatever the outcome.
func TestRestore_LeavesNoStagingFileBehind(t *testing.T) {
	e := newSvcEnv(t)
	var snap bytes.Buffer
	if _, err := e.svc.SaveSnapshot(context.Background(), e.caller, &snap); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e.svc.cfg.DataDir = dir
	damaged := bytes.Clone(snap.Bytes())
	damaged[len(damaged)/2] ^= 1
	for name, b := range map[string][]byte{"a good snapshot (the store refuses)": snap.Bytes(), "a damaged snapshot": damaged} {
		if _, err := e.svc.RestoreSnapshotWith(context.Background(), &e.caller, bytes.NewReader(b), RestoreOptions{}); err == nil {
			t.Fatalf("%s: restored through a store that cannot restore", name)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("%s: left %v in the data directory", name, left)
		}
		if e.fsm.HoldsStagedRestore() {
			t.Fatalf("%s: left its decoded catalogue staged in memory", name)
		}
	}
}

// A restore tells what it is doing (RestoreInProgress, shown by /v1/status):
// verifying the file, then Raft storing it, then the followers installing
// it once it is in the leader's log; nothing once it has ended.
func TestRestore_ProgressFollowsThePhases(t *testing.T) {
	e := newSvcEnv(t)
	var snap bytes.Buffer
	if _, err := e.svc.SaveSnapshot(context.Background(), e.caller, &snap); err != nil {
		t.Fatal(err)
	}
	var phases []string
	phase := func() {
		p, ok := e.svc.RestoreInProgress()
		if !ok {
			phases = append(phases, "none")
			return
		}
		if p.Started.IsZero() || p.Since.Before(p.Started) {
			t.Errorf("phase %s: started %v, since %v", p.Phase, p.Started, p.Since)
		}
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	e.store.restore = func(applied func()) error {
		phase()
		applied()
		phase()
		return errors.New("the test's store stops here")
	}
	file := &observedSnapshot{Reader: bytes.NewReader(snap.Bytes()), read: phase}
	if _, err := e.svc.RestoreSnapshotWith(context.Background(), &e.caller, file, RestoreOptions{}); err == nil {
		t.Fatal("the test store's refusal was lost")
	}
	phase()
	want := []string{RestoreVerifying, RestoreStoring, RestoreReplicating, "none"}
	if !slices.Equal(phases, want) {
		t.Fatalf("phases %v, want %v", phases, want)
	}
}

// observedSnapshot calls read on each Read of the snapshot.
type observedSnapshot struct {
	*bytes.Reader
	read func()
}

func (o *observedSnapshot) Read(p []byte) (int, error) {
	o.read()
	return o.Reader.Read(p)
}

// A save tells how much it has written while it runs, and nothing after.
func TestSave_ProgressCountsTheBytesWritten(t *testing.T) {
	e := newSvcEnv(t)
	seen := int64(-1)
	w := writerFunc(func(b []byte) (int, error) {
		p, ok := e.svc.SaveInProgress()
		if !ok || p.Bytes < seen || p.Started.IsZero() {
			t.Errorf("during the save: %+v, %v (before: %d bytes)", p, ok, seen)
		}
		seen = p.Bytes
		return len(b), nil
	})
	if _, err := e.svc.SaveSnapshot(context.Background(), e.caller, w); err != nil {
		t.Fatal(err)
	}
	if seen < 0 {
		t.Fatal("the save wrote nothing")
	}
	if p, ok := e.svc.SaveInProgress(); ok {
		t.Fatalf("after the save: %+v", p)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
