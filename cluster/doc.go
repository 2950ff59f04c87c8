// Package cluster owns gossip membership for raftkms: who the nodes are,
// where they live (zone, region, addresses), what they can do (HSM domains),
// whether they are alive, and — on the Raft leader — keeping the Raft
// configuration in line with that membership.
//
// It is built on hashicorp/memberlist. Each node gossips a small Meta
// (msgpack, under memberlist's 512-byte limit). On top of it:
//
//   - RunBootstrap implements --bootstrap-expect N: the first N servers that
//     see each other and agree on the same list bootstrap one Raft cluster;
//     a node that sees an existing cluster never bootstraps.
//   - RunReconciler, on the leader only, adds alive members to Raft, keeps an
//     odd number of voters (at most MaxVoters) spread across zones, and
//     removes servers that stayed failed or left past a timeout.
//   - AliveWith is the routing helper for HSM-pinned keys.
//
// The package talks to Raft only through the small Raft interface (package
// store implements it) and changes only the Raft configuration. It must not
// apply commands to the FSM. See DESIGN.md for the reasoning behind the
// bootstrap and reconciliation rules.
package cluster
