package cluster

import "sort"

// MaxVoters caps the number of Raft voters. Five voters survive two
// failures; more only slow down commits. Everyone else is a nonvoter.
const MaxVoters = 5

// DesiredVoters returns the set of server IDs that should be Raft voters
// (every value in the map is true; an absent ID should not be a voter),
// given the gossip members and the current Raft configuration.
//
// Rules, in order of strength:
//
//  1. Candidates are alive members with a ClusterAddr, plus current voters
//     that are failed, left or unknown to gossip: a voter keeps its seat until
//     the reconciler removes it after DeadServerTimeout, so a restart or a
//     short outage causes no configuration churn.
//  2. The voter count is odd (1, 3, 5) and at most MaxVoters: the largest odd
//     number not above the number of candidates.
//  3. Seats are spread across zones as evenly as possible (round robin over
//     zones; a zone gets a second seat only when every zone with candidates
//     left has one), so losing one zone loses as few voters as possible.
//  4. Among equal choices, existing voters are kept (alive ones before
//     failed ones), then new servers, each group by ID, so the result is
//     deterministic and stable.
//
// The reconciler additionally pins the leader (itself) as a voter.
func DesiredVoters(members []Member, current []Server) map[string]bool {
	return desiredVoters(members, current, "")
}

type seatCandidate struct {
	id   string
	zone string
	rank int // lower keeps its seat first
}

const (
	rankLeader = iota
	rankAliveVoter
	rankDownVoter
	rankNew
)

func desiredVoters(members []Member, current []Server, leader string) map[string]bool {
	isVoter := make(map[string]bool, len(current))
	for _, s := range current {
		if s.Voter {
			isVoter[s.ID] = true
		}
	}
	byID := make(map[string]Member, len(members))
	for _, m := range members {
		byID[m.ID] = m
	}

	var cands []seatCandidate
	seen := make(map[string]bool)
	for _, m := range members {
		if m.ID == "" || m.ClusterAddr == "" || seen[m.ID] {
			continue
		}
		switch {
		case m.ID == leader:
			cands = append(cands, seatCandidate{m.ID, m.Zone, rankLeader})
		case m.serving() && isVoter[m.ID]:
			cands = append(cands, seatCandidate{m.ID, m.Zone, rankAliveVoter})
		case m.serving():
			cands = append(cands, seatCandidate{m.ID, m.Zone, rankNew})
		case isVoter[m.ID]:
			cands = append(cands, seatCandidate{m.ID, m.Zone, rankDownVoter})
		default:
			continue
		}
		seen[m.ID] = true
	}
	for _, s := range current {
		if s.Voter && !seen[s.ID] {
			// A voter gossip does not know (yet, or any more): it holds its
			// seat; its zone is unknown.
			rank := rankDownVoter
			if s.ID == leader {
				rank = rankLeader
			}
			cands = append(cands, seatCandidate{s.ID, byID[s.ID].Zone, rank})
			seen[s.ID] = true
		}
	}

	n := min(len(cands), MaxVoters)
	if n%2 == 0 {
		n--
	}
	out := make(map[string]bool, max(n, 0))
	if n <= 0 {
		return out
	}

	// Per zone, candidates in keep-first order.
	zones := make(map[string][]seatCandidate)
	for _, c := range cands {
		zones[c.zone] = append(zones[c.zone], c)
	}
	names := make([]string, 0, len(zones))
	for z, cs := range zones {
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].rank != cs[j].rank {
				return cs[i].rank < cs[j].rank
			}
			return cs[i].id < cs[j].id
		})
		names = append(names, z)
	}
	sort.Strings(names)

	// Hand out seats one at a time: to the zone with the fewest seats so
	// far; ties go to the zone whose next candidate ranks best (keeps the
	// leader and existing voters), then to the zone name.
	taken := make(map[string]int, len(zones))
	for seat := 0; seat < n; seat++ {
		best := ""
		found := false
		for _, z := range names {
			if taken[z] >= len(zones[z]) {
				continue
			}
			if !found {
				best, found = z, true
				continue
			}
			if taken[z] != taken[best] {
				if taken[z] < taken[best] {
					best = z
				}
				continue
			}
			if zones[z][taken[z]].rank < zones[best][taken[best]].rank {
				best = z
			}
		}
		out[zones[best][taken[best]].id] = true
		taken[best]++
	}
	return out
}
