package cluster

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// m builds a member: "id/zone" alive, with a cluster address.
func mem(idZone, status string) Member {
	id, zone, _ := strings.Cut(idZone, "/")
	return Member{Meta: Meta{ID: id, Zone: zone, ClusterAddr: id + ":7000"}, Status: status}
}

func alive(idZones ...string) []Member {
	var out []Member
	for _, iz := range idZones {
		out = append(out, mem(iz, StatusAlive))
	}
	return out
}

func voters(ids ...string) []Server {
	var out []Server
	for _, id := range ids {
		out = append(out, Server{ID: id, Addr: id + ":7000", Voter: true})
	}
	return out
}

func nonvoters(ids ...string) []Server {
	var out []Server
	for _, id := range ids {
		out = append(out, Server{ID: id, Addr: id + ":7000"})
	}
	return out
}

func setOf(m map[string]bool) string {
	var ids []string
	for id, v := range m {
		if v {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

func TestDesiredVoters(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		current []Server
		want    string
	}{
		{"empty", nil, nil, ""},
		{"single node is the only voter", alive("a1/a"), nil, "a1"},
		{"two nodes keep an odd count: one voter", alive("a1/a", "b1/b"), nil, "a1"},
		{"two nodes keep the existing voter", alive("a1/a", "b1/b"), voters("b1"), "b1"},
		{"three zones, one each", alive("a1/a", "b1/b", "c1/c"), nil, "a1,b1,c1"},
		{"four nodes give three voters, one per zone", alive("a1/a", "a2/a", "b1/b", "c1/c"), nil, "a1,b1,c1"},
		{"zone spread beats keeping a same-zone voter",
			alive("a1/a", "a2/a", "b1/b", "c1/c"), voters("a1", "a2", "b1"), "a1,b1,c1"},
		{"within a zone the existing voter is kept",
			alive("a1/a", "a2/a", "b1/b", "c1/c"), voters("a2", "b1", "c1"), "a2,b1,c1"},
		{"stable with two zones: existing 2+1 split kept",
			alive("a1/a", "a2/a", "b1/b", "b2/b"), voters("a2", "b1", "b2"), "a2,b1,b2"},
		{"five across three zones: 2,2,1",
			alive("a1/a", "a2/a", "a3/a", "b1/b", "b2/b", "c1/c"), nil, "a1,a2,b1,b2,c1"},
		{"cap at five voters", alive("a1/a", "a2/a", "b1/b", "b2/b", "c1/c", "c2/c", "c3/c"), nil, "a1,a2,b1,b2,c1"},
		{"one zone only", alive("a1/a", "a2/a", "a3/a", "a4/a"), voters("a4"), "a1,a2,a4"},
		{"no zones set", alive("n1", "n2", "n3"), nil, "n1,n2,n3"},
		{"more zones than seats prefers existing voters' zones",
			alive("a1/a", "b1/b", "c1/c", "d1/d"), voters("b1", "c1", "d1"), "b1,c1,d1"},
		{"failed voter holds its seat until removed",
			append(alive("a1/a", "b1/b", "d1/a"), mem("c1/c", StatusFailed)), voters("a1", "b1", "c1"), "a1,b1,c1"},
		{"left voter holds its seat until removed",
			append(alive("a1/a", "b1/b", "d1/a"), mem("c1/c", StatusLeft)), voters("a1", "b1", "c1"), "a1,b1,c1"},
		{"voter unknown to gossip holds its seat",
			alive("a1/a", "b1/b", "d1/a"), voters("a1", "b1", "x9"), "a1,b1,x9"},
		{"failed nonvoter is not a candidate",
			append(alive("a1/a", "b1/b"), mem("c1/c", StatusFailed)), append(voters("a1"), nonvoters("c1")...), "a1"},
		{"after removal of a failed voter the nonvoter is promoted",
			alive("a1/a", "b1/b", "d1/a"), append(voters("a1", "b1"), nonvoters("d1")...), "a1,b1,d1"},
		{"members without a cluster address are ignored",
			append(alive("a1/a", "b1/b"), Member{Meta: Meta{ID: "z9", Zone: "c"}, Status: StatusAlive}), nil, "a1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := setOf(DesiredVoters(tt.members, tt.current))
			if got != tt.want {
				t.Fatalf("DesiredVoters = {%s}, want {%s}", got, tt.want)
			}
		})
	}
}

func TestDesiredVoters_AlwaysOddAndAtMostMax(t *testing.T) {
	zones := []string{"a", "b", "c"}
	var members []Member
	for n := 1; n <= 9; n++ {
		members = append(members, mem(string(rune('a'+n))+"/"+zones[n%3], StatusAlive))
		got := DesiredVoters(members, nil)
		if len(got)%2 != 1 || len(got) > MaxVoters {
			t.Fatalf("%d members: %d voters, want odd and <= %d", n, len(got), MaxVoters)
		}
		if want := min(n-(1-n%2), MaxVoters); len(got) != want {
			t.Fatalf("%d members: %d voters, want %d", n, len(got), want)
		}
	}
}

func TestDesiredVoters_IsAFixedPoint(t *testing.T) {
	// Feeding the result back as the configuration changes nothing: the
	// reconciler does not churn once it has converged.
	members := alive("a1/a", "a2/a", "a3/a", "b1/b", "b2/b", "c1/c", "c2/c")
	first := DesiredVoters(members, nil)
	var cfg []Server
	for _, m := range members {
		cfg = append(cfg, Server{ID: m.ID, Addr: m.ClusterAddr, Voter: first[m.ID]})
	}
	if again := DesiredVoters(members, cfg); setOf(again) != setOf(first) {
		t.Fatalf("not stable: {%s} then {%s}", setOf(first), setOf(again))
	}
}

func TestDesiredVoters_LeaderIsPinned(t *testing.T) {
	// Two alive voters must shrink to one; it must be the leader, even
	// though the other sorts first.
	got := desiredVoters(alive("a1/a", "b1/b"), voters("a1", "b1"), "b1")
	if setOf(got) != "b1" {
		t.Fatalf("got {%s}, want {b1}", setOf(got))
	}
}

func TestPlanRemovals(t *testing.T) {
	now := time.Unix(1000, 0)
	long := now.Add(-time.Minute)
	short := now.Add(-time.Second)
	down := func(idZone, status string, since time.Time) Member {
		m := mem(idZone, status)
		m.StatusSince = since
		return m
	}
	tests := []struct {
		name        string
		members     []Member
		servers     []Server
		missing     map[string]time.Time
		timeout     time.Duration
		wantRemove  []string
		wantBlocked []string
	}{
		{"failed voter past timeout is removed",
			append(alive("a1", "b1"), down("c1", StatusFailed, long)), voters("a1", "b1", "c1"), nil,
			10 * time.Second, []string{"c1"}, nil},
		{"failed voter within timeout stays",
			append(alive("a1", "b1"), down("c1", StatusFailed, short)), voters("a1", "b1", "c1"), nil,
			10 * time.Second, nil, nil},
		{"left voter past timeout is removed",
			append(alive("a1", "b1"), down("c1", StatusLeft, long)), voters("a1", "b1", "c1"), nil,
			10 * time.Second, []string{"c1"}, nil},
		{"server unknown to gossip past timeout is removed",
			alive("a1", "b1"), voters("a1", "b1", "x9"), map[string]time.Time{"x9": long},
			10 * time.Second, []string{"x9"}, nil},
		{"negative timeout disables removal",
			append(alive("a1", "b1"), down("c1", StatusFailed, long)), voters("a1", "b1", "c1"), nil,
			-1, nil, nil},
		{"self is never removed",
			[]Member{down("a1", StatusFailed, long), mem("b1", StatusAlive)}, voters("a1", "b1"), nil,
			10 * time.Second, nil, nil},
		{"nonvoters go first and are not quorum-guarded",
			[]Member{mem("a1", StatusAlive), down("b1", StatusFailed, long), down("c1", StatusFailed, long), down("n1", StatusFailed, long)},
			append(voters("a1", "b1", "c1"), nonvoters("n1")...), nil,
			10 * time.Second, []string{"n1"}, []string{"b1", "c1"}},
		{"quorum guard: leader alone in gossip removes nobody of five",
			[]Member{mem("a1", StatusAlive), down("b1", StatusFailed, long), down("c1", StatusFailed, long),
				down("d1", StatusFailed, long), down("e1", StatusFailed, long)},
			voters("a1", "b1", "c1", "d1", "e1"), nil,
			10 * time.Second, nil, []string{"b1", "c1", "d1", "e1"}},
		{"two of five failed: both removed (3 alive stay a majority of 4 then 3)",
			append(alive("a1", "b1", "c1"), down("d1", StatusFailed, long), down("e1", StatusFailed, long)),
			voters("a1", "b1", "c1", "d1", "e1"), nil,
			10 * time.Second, []string{"d1", "e1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, blocked := planRemovals("a1", tt.members, tt.servers, now, tt.timeout, tt.missing)
			var got []string
			for _, ch := range changes {
				if ch.kind != changeRemove {
					t.Fatalf("unexpected change %v", ch)
				}
				got = append(got, ch.id)
			}
			if !slices.Equal(got, tt.wantRemove) || !slices.Equal(blocked, tt.wantBlocked) {
				t.Fatalf("removed %v blocked %v, want removed %v blocked %v", got, blocked, tt.wantRemove, tt.wantBlocked)
			}
		})
	}
}

func TestPlanVoters(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		servers []Server
		want    []string // change.String()
	}{
		{"converged: nothing to do", alive("a1/a", "b1/b", "c1/c"), voters("a1", "b1", "c1"), nil},
		{"fourth node joins as nonvoter", alive("a1/a", "b1/b", "c1/c", "d1/a"), voters("a1", "b1", "c1"),
			[]string{"add_nonvoter d1"}},
		{"second node joins as nonvoter, third promotes it and joins as voter",
			alive("a1/a", "b1/b", "c1/c"), append(voters("a1"), nonvoters("b1")...),
			[]string{"promote b1", "add_voter c1"}},
		{"new zone: add it as voter before demoting the same-zone voter",
			alive("a1/a", "a2/a", "b1/b", "c1/c"), voters("a1", "a2", "b1"),
			[]string{"add_voter c1", "demote a2"}},
		{"leader is never demoted", alive("a1/a", "b1/b"), voters("a1", "b1"), []string{"demote b1"}},
		{"changed cluster address is updated",
			[]Member{mem("a1/a", StatusAlive), mem("b1/b", StatusAlive), {Meta: Meta{ID: "c1", Zone: "c", ClusterAddr: "c1:7001"}, Status: StatusAlive}},
			voters("a1", "b1", "c1"), []string{"update_address c1"}},
		{"failed voter is left alone (it keeps its seat)",
			append(alive("a1/a", "b1/b", "d1/a"), mem("c1/c", StatusFailed)), append(voters("a1", "b1", "c1"), nonvoters("d1")...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ch := range planVoters("a1", tt.members, tt.servers) {
				got = append(got, ch.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("planVoters = %v, want %v", got, tt.want)
			}
		})
	}
}
