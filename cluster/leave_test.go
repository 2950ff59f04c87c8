package cluster

import (
	"slices"
	"testing"
	"time"
)

func leaving(idZone, status string) Member {
	m := mem(idZone, status)
	m.Leaving = true
	return m
}

func failedAt(id string, since time.Time) Member {
	m := mem(id, StatusFailed)
	m.StatusSince = since
	return m
}

// A member that announced its leave is removed at once, not after the dead
// server timeout — but never at the cost of quorum, and never self.
func TestPlanRemovals_LeavingMember(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name        string
		members     []Member
		servers     []Server
		timeout     time.Duration
		wantRemove  []string
		wantBlocked []string
	}{
		{"alive and leaving voter of three is removed at once",
			append(alive("a1", "b1"), leaving("c1", StatusAlive)), voters("a1", "b1", "c1"),
			time.Hour, []string{"c1"}, nil},
		{"left voter is removed at once",
			append(alive("a1", "b1"), leaving("c1", StatusLeft)), voters("a1", "b1", "c1"),
			time.Hour, []string{"c1"}, nil},
		{"leaving is honoured even with dead-server removal disabled",
			append(alive("a1", "b1"), leaving("c1", StatusAlive)), voters("a1", "b1", "c1"),
			-1, []string{"c1"}, nil},
		{"leaving nonvoter is removed",
			append(alive("a1", "b1", "c1"), leaving("d1", StatusAlive)), append(voters("a1", "b1", "c1"), nonvoters("d1")...),
			time.Hour, []string{"d1"}, nil},
		{"quorum guard: one voter of three just failed, the leaving one stays",
			[]Member{mem("a1", StatusAlive), failedAt("b1", now), leaving("c1", StatusAlive)}, voters("a1", "b1", "c1"),
			time.Hour, nil, []string{"c1"}},
		{"quorum guard: two leaving of three, both stay",
			[]Member{mem("a1", StatusAlive), leaving("b1", StatusAlive), leaving("c1", StatusAlive)}, voters("a1", "b1", "c1"),
			time.Hour, nil, []string{"b1", "c1"}},
		{"two leaving of five: both go, three voters stay",
			append(alive("a1", "b1", "c1"), leaving("d1", StatusAlive), leaving("e1", StatusAlive)), voters("a1", "b1", "c1", "d1", "e1"),
			time.Hour, []string{"d1", "e1"}, nil},
		{"self is never removed, leaving or not",
			[]Member{leaving("a1", StatusAlive), mem("b1", StatusAlive), mem("c1", StatusAlive)}, voters("a1", "b1", "c1"),
			time.Hour, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, blocked := planRemovals("a1", tt.members, tt.servers, now, tt.timeout, nil)
			var got []string
			for _, ch := range changes {
				got = append(got, ch.id)
			}
			if !slices.Equal(got, tt.wantRemove) || !slices.Equal(blocked, tt.wantBlocked) {
				t.Fatalf("removed %v blocked %v, want removed %v blocked %v", got, blocked, tt.wantRemove, tt.wantBlocked)
			}
		})
	}
}

// The reconciler never adds back, nor promotes, a member on its way out; a
// restarted node gossips without the flag and is added like any other.
func TestPlanVoters_DoesNotAddLeavingMember(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		servers []Server
		want    []string
	}{
		{"removed leaving member is not added back",
			append(alive("a1/a", "b1/b"), leaving("c1/c", StatusAlive)), voters("a1", "b1"), []string{"demote b1"}},
		{"leaving nonvoter is not promoted",
			append(alive("a1/a", "b1/b", "c1/c"), leaving("d1/d", StatusAlive)), append(voters("a1", "b1", "c1"), nonvoters("d1")...), nil},
		{"restarted member without the flag is added",
			alive("a1/a", "b1/b", "c1/c"), voters("a1", "b1"), []string{"add_voter c1"}},
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

// The leaving node's own check mirrors the leader's quorum guard, so a node
// whose removal would be refused does not wait for it.
func TestCanLeave(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		servers []Server
		want    bool
	}{
		{"voter of three, all alive", alive("a1", "b1", "c1"), voters("a1", "b1", "c1"), true},
		{"voter of three, one failed", []Member{mem("a1", StatusAlive), mem("b1", StatusAlive), mem("c1", StatusFailed)}, voters("a1", "b1", "c1"), false},
		{"voter of five, one failed", append(alive("a1", "b1", "c1", "d1"), mem("e1", StatusFailed)), voters("a1", "b1", "c1", "d1", "e1"), true},
		{"only voter", alive("a1", "b1"), append(voters("a1"), nonvoters("b1")...), false},
		{"nonvoter", alive("a1", "b1"), append(voters("b1"), nonvoters("a1")...), true},
		{"nonvoter whose only voter is down", []Member{mem("a1", StatusAlive), mem("b1", StatusFailed)}, append(voters("b1"), nonvoters("a1")...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canLeave("a1", tt.members, tt.servers); got != tt.want {
				t.Fatalf("canLeave = %v, want %v", got, tt.want)
			}
		})
	}
}

// A leaving leader hands leadership to a voter that is not leaving too.
func TestSuccessor_SkipsLeavingAndDownVoters(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		servers []Server
		want    string
	}{
		{"first serving voter", alive("a1", "b1", "c1"), voters("a1", "b1", "c1"), "b1"},
		{"skips a leaving voter", []Member{mem("a1", StatusAlive), leaving("b1", StatusAlive), mem("c1", StatusAlive)}, voters("a1", "b1", "c1"), "c1"},
		{"skips a failed voter and nonvoters", []Member{mem("a1", StatusAlive), mem("b1", StatusFailed), mem("c1", StatusAlive), mem("d1", StatusAlive)},
			append(voters("a1", "b1"), append(nonvoters("c1"), voters("d1")...)...), "d1"},
		{"none: Raft picks", []Member{mem("a1", StatusAlive), leaving("b1", StatusAlive)}, voters("a1", "b1"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := successor("a1", tt.members, tt.servers); got.ID != tt.want {
				t.Fatalf("successor = %q, want %q", got.ID, tt.want)
			}
		})
	}
}
