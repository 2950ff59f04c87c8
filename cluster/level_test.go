package cluster

import (
	"slices"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestMeta_LevelRoundTripsAndDefaultsToBase(t *testing.T) {
	b, err := encodeMeta(Meta{ID: "n1", Version: "v0.2.0", Level: 2})
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMeta(b)
	if err != nil || m.LogLevel() != 2 || m.Version != "v0.2.0" {
		t.Fatalf("decoded %+v, %v", m, err)
	}
	if (Meta{ID: "old"}).LogLevel() != BaseLevel {
		t.Fatal("a member advertising no level must count as BaseLevel")
	}
}

// The reconciler never adds a member whose level is below the lowest level
// of the configuration's servers, nor below the finalized level; members
// already in the configuration stay candidates whatever their level.
func TestReconciler_AddsNoMemberBelowTheConfigurationsLevel(t *testing.T) {
	member := func(id string, level int) Member {
		return Member{Meta: Meta{ID: id, ClusterAddr: id + ":1", Level: level}, Status: StatusAlive}
	}
	ids := func(ms []Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name      string
		servers   []string
		members   []Member
		finalized int
		want      []string
	}{
		{"old server present: an old member is added", []string{"a", "b"},
			[]Member{member("a", 0), member("b", 2), member("c", 0)}, 0, []string{"a", "b", "c"}},
		{"every server new: an old member is not added", []string{"a", "b"},
			[]Member{member("a", 2), member("b", 2), member("c", 0), member("d", 2)}, 0, []string{"a", "b", "d"}},
		{"finalized: an old member is not added", []string{"a"},
			[]Member{member("a", 1), member("c", 1)}, 2, []string{"a"}},
		{"a newer member is always added", []string{"a"},
			[]Member{member("a", 2), member("c", 3)}, 2, []string{"a", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &reconciler{c: &Cluster{logger: hclog.NewNullLogger()}, levelRefused: map[string]int{},
				rc: ReconcileConfig{FinalizedLevel: func() int { return tc.finalized }}}
			var servers []Server
			for _, id := range tc.servers {
				servers = append(servers, Server{ID: id, Addr: id + ":1", Voter: true})
			}
			if got := ids(rec.levelled(tc.members, servers)); !slices.Equal(got, tc.want) {
				t.Fatalf("candidates %v, want %v", got, tc.want)
			}
		})
	}
}
