package kms

import (
	"bytes"
	"context"
	"testing"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/testutil"
)

// barrierCountingStore is a directStore that reports each read index
// (Barrier) the service asks for.
type barrierCountingStore struct {
	*directStore
	calls chan struct{}
}

func (b *barrierCountingStore) Barrier(ctx context.Context) (uint64, error) {
	select {
	case b.calls <- struct{}{}:
	default:
	}
	return b.directStore.Barrier(ctx)
}

// An idle node stops renewing its freshness confirmation in the background
// (each renewal is a read index: a round trip to the leader and a heartbeat
// round), and the first request that needs freshness again confirms it
// itself and restarts the renewal.
func TestFreshness_RenewalPausesWhenIdleAndResumesOnUse(t *testing.T) {
	root, err := kcrypto.NewRootKey(bytes.Repeat([]byte{0x42}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	f := fsm.New(nil, fsm.WithSnapshotKey(root.Derive(kcrypto.LabelSnapshotMAC)))
	st := &barrierCountingStore{directStore: &directStore{fsm: f, leader: true}, calls: make(chan struct{}, 1024)}
	const staleness, idleAfter = 40 * time.Millisecond, 200 * time.Millisecond
	svc, err := New(Config{RootKey: root, FSM: f, Store: st, MaxStaleness: staleness, FreshnessIdleAfter: idleAfter})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitCalls := func(n int, what string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for i := 0; i < n; i++ {
			select {
			case <-st.calls:
			case <-deadline:
				t.Fatalf("%s: %d of %d read indexes", what, i, n)
			}
		}
	}
	// A started node renews (every MaxStaleness/4) as if just used.
	waitCalls(3, "renewal after start")
	// Then, unused, it pauses: once idleAfter has passed, at most the
	// renewal under way finishes, and none follows for many periods.
	testutil.Eventually(t, "the idle threshold", 5*time.Second, func() bool { return svc.freshnessIdle(time.Now()) })
	drain := time.After(2 * staleness / 4)
	for drained := false; !drained; {
		select {
		case <-st.calls:
		case <-drain:
			drained = true
		}
	}
	select {
	case <-st.calls:
		t.Fatal("an idle node still renews its freshness in the background")
	case <-time.After(10 * staleness / 4):
	}
	// A request that needs freshness confirms it at once (the catalogue
	// is older than MaxStaleness), and the renewal resumes.
	if err := svc.fresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitCalls(1, "the request's own confirmation")
	waitCalls(3, "renewal after the request")
}
