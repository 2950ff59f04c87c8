package cluster

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// refusingRaft records configuration changes and refuses to add one id,
// as the node's TLS probe refuses a member with a foreign certificate.
type refusingRaft struct {
	Raft
	refuse string
	added  []string
}

func (r *refusingRaft) IsLeader() bool { return true }
func (r *refusingRaft) AddVoter(id, addr string) error {
	if id == r.refuse {
		return errors.New("refused")
	}
	r.added = append(r.added, id)
	return nil
}
func (r *refusingRaft) AddNonvoter(id, addr string) error { return r.AddVoter(id, addr) }

func TestApply_OneRefusedMemberDoesNotBlockTheOthers(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &refusingRaft{refuse: "b"}
	rec := &reconciler{c: &Cluster{logger: hclog.NewNullLogger(), metrics: m}, r: r}
	ok := rec.apply([]change{
		{kind: changeAddVoter, id: "a"},
		{kind: changeAddVoter, id: "b"},
		{kind: changeAddNonvoter, id: "c"},
	})
	if ok {
		t.Fatal("a pass with a refused change reported success")
	}
	if len(r.added) != 2 || r.added[0] != "a" || r.added[1] != "c" {
		t.Fatalf("added %v, want [a c]: the member after the refused one was kept out", r.added)
	}
}
