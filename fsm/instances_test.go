package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// The instance limit is enforced in Apply against the catalogue's own
// count, survives a snapshot, and a limit of 0 in a record (a snapshot
// written before the field existed) means the default.
func TestCreateInstance_LimitEnforcedInApply(t *testing.T) {
	h := newHarness(t)
	h.init() // the account's first instance
	for i := 1; i < DefaultMaxInstances; i++ {
		h.mustApply(CmdCreateInstance, CreateInstanceCmd{Instance: Instance{ID: fmt.Sprint("kst-", i), AccountID: acct, Type: "software"}})
	}
	before, _ := h.f.Hash()
	err := h.apply(CmdCreateInstance, CreateInstanceCmd{Instance: Instance{ID: "kst-over", AccountID: acct, Type: "software"}})
	if !errors.Is(err, ErrInstanceLimitExceeded) {
		t.Fatalf("instance %d: %v", DefaultMaxInstances+1, err)
	}
	if after, _ := h.f.Hash(); after != before {
		t.Fatal("a refused instance changed the catalogue")
	}
	if err := h.apply(CmdSetInstanceLimit, InstanceLimitCmd{AccountID: acct, MaxInstances: 0}); err == nil {
		t.Fatal("a limit of 0 was applied")
	}
	if err := h.apply(CmdSetInstanceLimit, InstanceLimitCmd{AccountID: "0000000000000000", MaxInstances: 5}); !errors.Is(err, ErrAccountNotFound) {
		t.Fatalf("an unknown account: %v", err)
	}
	h.mustApply(CmdSetInstanceLimit, InstanceLimitCmd{AccountID: acct, MaxInstances: DefaultMaxInstances + 1})

	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
		t.Fatal(err)
	}
	if a, _ := g.Account(acct); MaxInstancesOf(a) != DefaultMaxInstances+1 {
		t.Fatalf("restored limit = %d", MaxInstancesOf(a))
	}
	h.mustApply(CmdCreateInstance, CreateInstanceCmd{Instance: Instance{ID: "kst-11", AccountID: acct, Type: "software"}})
	if err := h.apply(CmdCreateInstance, CreateInstanceCmd{Instance: Instance{ID: "kst-12", AccountID: acct, Type: "software"}}); !errors.Is(err, ErrInstanceLimitExceeded) {
		t.Fatalf("past the raised limit: %v", err)
	}
}
