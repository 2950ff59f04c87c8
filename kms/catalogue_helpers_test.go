package kms

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/store"
)

// fakeClock is the service clock of these tests: it moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// directStore applies proposals straight to the FSM, one index after the
// other, as a single-voter Raft would: the service core without Raft.
type directStore struct {
	mu     sync.Mutex
	fsm    *fsm.FSM
	index  uint64
	leader bool
	// restore, when set, is what Restore does (tests), after it read the
	// snapshot into restored.
	restore  func(applied func()) error
	restored []byte
	// leaderAddr is the leader's cluster address Leader names ("local"
	// when empty).
	leaderAddr string
}

func (d *directStore) Propose(_ context.Context, cmd []byte) (store.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.index++
	res := d.fsm.Apply(&raft.Log{Index: d.index, Type: raft.LogCommand, Data: cmd})
	var err error
	if e, ok := res.(error); ok {
		err = e
	}
	return store.Result{Index: d.index, Err: err}, nil
}

func (d *directStore) Barrier(context.Context) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.index, nil
}

func (d *directStore) IsLeader() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.leader
}

func (d *directStore) setLeader(v bool) {
	d.mu.Lock()
	d.leader = v
	d.mu.Unlock()
}

func (d *directStore) Leader() (string, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.leaderAddr != "" {
		return d.leaderAddr, "n1"
	}
	return "local", "n1"
}

func (d *directStore) Restore(r io.Reader, _ int64, _ uint64, _ time.Duration, applied func()) error {
	if d.restore != nil {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.restored = b
		d.mu.Unlock()
		return d.restore(applied)
	}
	return errors.New("not supported by directStore")
}

// svcEnv is an initialized service over a directStore with a fake clock.
type svcEnv struct {
	svc    *Service
	fsm    *fsm.FSM
	store  *directStore
	clock  *fakeClock
	root   *kcrypto.RootKey
	caller Caller
	inst   string
}

func newSvcEnv(t testing.TB) *svcEnv {
	t.Helper()
	return newSvcEnvWith(t, nil)
}

// newSvcEnvWith is newSvcEnv with the service's Config changed by set
// first.
func newSvcEnvWith(t testing.TB, set func(*Config)) *svcEnv {
	t.Helper()
	root, err := kcrypto.NewRootKey(bytes.Repeat([]byte{0x42}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	f := fsm.New(nil, fsm.WithSnapshotKey(root.Derive(kcrypto.LabelSnapshotMAC)))
	st := &directStore{fsm: f, leader: true}
	clock := newFakeClock()
	cfg := Config{RootKey: root, FSM: f, Store: st, Clock: clock.Now}
	if set != nil {
		set(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &svcEnv{
		svc: svc, fsm: f, store: st, clock: clock, root: root, inst: res.InstanceID,
		caller: rootCaller(res.AccountID, res.AccessKeyID),
	}
}

// rootCaller is the account's root identity, as authentication makes it
// for the access key operator init hands out. The access work gives Caller
// a Kind ("root" for this identity); it is set by name when the field
// exists, so these tests build with and without it.
func rootCaller(account, accessKeyID string) Caller {
	c := Caller{AccountID: account, Principal: rootPrincipal(account), AccessKeyID: accessKeyID}
	if f := reflect.ValueOf(&c).Elem().FieldByName("Kind"); f.IsValid() && f.Kind() == reflect.String {
		f.SetString("root")
	}
	return c
}

func (e *svcEnv) createKey(t testing.TB, in CreateKeyInput) *fsm.Key {
	t.Helper()
	if in.DKMSInstanceID == "-" {
		in.DKMSInstanceID = ""
	} else if in.DKMSInstanceID == "" {
		in.DKMSInstanceID = e.inst
	}
	k, _, err := e.svc.CreateKey(context.Background(), e.caller, in)
	if err != nil {
		t.Fatalf("CreateKey %+v: %v", in, err)
	}
	return k
}

func (e *svcEnv) key(t testing.TB, id string) *fsm.Key {
	t.Helper()
	k, ok := e.fsm.Key(id)
	if !ok {
		t.Fatalf("key %s is not in the catalogue", id)
	}
	return k
}

func (e *svcEnv) tick(t testing.TB) int {
	t.Helper()
	n, err := e.svc.SchedulerTick(context.Background())
	if err != nil {
		t.Fatalf("SchedulerTick: %v", err)
	}
	return n
}

// unchanged runs fn and fails if the catalogue's hash changed.
func (e *svcEnv) unchanged(t testing.TB, what string, fn func()) {
	t.Helper()
	before, _ := e.fsm.Hash()
	fn()
	if after, _ := e.fsm.Hash(); after != before {
		t.Errorf("%s changed the catalogue", what)
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func wantState(t testing.TB, what string, err error, state string) {
	t.Helper()
	if got, ok := fsm.KeyStateOf(err); !ok || got != state {
		t.Errorf("%s: err = %v, want a state error for %s", what, err, state)
	}
}

// Optional inputs of the typed calls.
var (
	yes = ptr(true)
	no  = ptr(false)
)

func ptr[T any](v T) *T { return &v }
