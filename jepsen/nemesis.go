package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Nemesis kinds, as --nemesis spells them.
const (
	NemesisPartition  = "partition"
	NemesisKill       = "kill"
	NemesisPause      = "pause"
	NemesisMembership = "membership"
)

// AllNemeses in schedule order.
var AllNemeses = []string{NemesisPartition, NemesisKill, NemesisPause, NemesisMembership}

// Fault is one planned fault: drawn from the seed before the run starts,
// so the same seed gives the same sequence of faults, targets and timings.
// Targets are resolved when the fault starts ("the leader" is whoever leads
// then), with pick as the random choice among the nodes.
type Fault struct {
	At      time.Duration // start, from the beginning of the workload
	Hold    time.Duration // how long the fault lasts before it is healed
	Kind    string
	Variant string
	pick    []int // random numbers that choose the targets
}

func (f Fault) String() string {
	return fmt.Sprintf("%s %s at %s for %s", f.Kind, f.Variant, f.At.Round(100*time.Millisecond), f.Hold.Round(100*time.Millisecond))
}

var variants = map[string][]string{
	NemesisPartition:  {"isolate-one", "isolate-leader", "majority-minority", "bridge"},
	NemesisKill:       {"kill-one", "kill-leader", "kill-minority", "kill-all"},
	NemesisPause:      {"pause-one", "pause-leader", "pause-minority"},
	NemesisMembership: {"replace-one", "replace-leader"},
}

// Plan draws the fault schedule for a run of length limit. Faults do not
// overlap: quiet 2-4 s, a fault held 3-7 s, and so on; the last one ends a
// few seconds before the limit so the cluster recovers under load too.
func Plan(seed uint64, limit time.Duration, kinds []string) []Fault {
	if len(kinds) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x6e656d65736973))
	var out []Fault
	at := time.Duration(0)
	for {
		at += time.Duration(2000+rng.IntN(2000)) * time.Millisecond
		kind := kinds[rng.IntN(len(kinds))]
		vs := variants[kind]
		f := Fault{At: at, Kind: kind, Variant: vs[rng.IntN(len(vs))],
			Hold: time.Duration(3000+rng.IntN(4000)) * time.Millisecond}
		for i := 0; i < 8; i++ {
			f.pick = append(f.pick, rng.IntN(1<<30))
		}
		if at+f.Hold > limit-2*time.Second {
			break
		}
		out = append(out, f)
		at += f.Hold
	}
	return out
}

// Nemesis injects the planned faults into a cluster and heals them.
type Nemesis struct {
	cl     *Cluster
	rec    *Recorder
	log    func(string, ...any)
	events []NemesisEvent
	mu     sync.Mutex
	// fresh is set while a membership change removed a node and has not
	// added its replacement yet.
	pendingAdd bool
	join       func() []string
}

// NewNemesis works on cl; times are read from rec's clock.
func NewNemesis(cl *Cluster, rec *Recorder, log func(string, ...any)) *Nemesis {
	nm := &Nemesis{cl: cl, rec: rec, log: log}
	nm.join = func() []string {
		var j []string
		for _, n := range cl.Nodes() {
			j = append(j, n.GossipAddr())
		}
		return j
	}
	return nm
}

// Events returns the faults injected so far.
func (nm *Nemesis) Events() []NemesisEvent {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	return append([]NemesisEvent(nil), nm.events...)
}

func (nm *Nemesis) begin(kind, desc string, nodes []*Node) int {
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.events = append(nm.events, NemesisEvent{Kind: kind, Description: desc, Nodes: ids, Start: nm.rec.Since()})
	nm.log("nemesis: start %s: %s", kind, desc)
	return len(nm.events) - 1
}

func (nm *Nemesis) end(i int) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.events[i].End = nm.rec.Since()
	nm.log("nemesis: healed %s: %s", nm.events[i].Kind, nm.events[i].Description)
}

// Run executes the plan relative to start until ctx ends; a fault in
// progress when ctx ends is healed at once.
func (nm *Nemesis) Run(ctx context.Context, start time.Time, plan []Fault) {
	for _, f := range plan {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(f.At))):
		}
		nm.inject(ctx, f)
	}
}

// hold waits for d or until ctx ends.
func hold(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// choose picks k distinct nodes using the fault's random numbers; with
// leaderFirst the current leader (if any) is the first.
func (nm *Nemesis) choose(ctx context.Context, f Fault, k int, leaderFirst bool) []*Node {
	nodes := nm.cl.Nodes()
	var out []*Node
	used := map[string]bool{}
	if leaderFirst {
		if l := nm.cl.Leader(ctx); l != nil {
			out = append(out, l)
			used[l.ID] = true
		}
	}
	for i := 0; len(out) < k && len(out) < len(nodes); i++ {
		n := nodes[f.pick[i%len(f.pick)]%len(nodes)]
		if i >= len(f.pick) {
			n = nodes[(f.pick[0]+i)%len(nodes)]
		}
		if !used[n.ID] {
			used[n.ID] = true
			out = append(out, n)
		}
	}
	return out
}

func ids(nodes []*Node) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.ID)
	}
	return strings.Join(s, ",")
}

func (nm *Nemesis) inject(ctx context.Context, f Fault) {
	nodes := nm.cl.Nodes()
	minority := (len(nodes) - 1) / 2
	switch f.Kind {
	case NemesisPartition:
		var blocked map[string][]string
		var desc string
		var touched []*Node
		switch f.Variant {
		case "isolate-one", "isolate-leader":
			touched = nm.choose(ctx, f, 1, f.Variant == "isolate-leader")
			blocked = cut(touched, others(nodes, touched))
			desc = fmt.Sprintf("%s: %s cut off from the rest", f.Variant, ids(touched))
		case "majority-minority":
			touched = nm.choose(ctx, f, minority, false)
			blocked = cut(touched, others(nodes, touched))
			desc = fmt.Sprintf("majority-minority: [%s] | [%s]", ids(touched), ids(others(nodes, touched)))
		case "bridge":
			all := nm.choose(ctx, f, len(nodes), false)
			bridge := all[0]
			rest := all[1:]
			a, b := rest[:len(rest)/2], rest[len(rest)/2:]
			blocked = cut(a, b)
			touched = all
			desc = fmt.Sprintf("bridge: [%s] | [%s], %s sees both", ids(a), ids(b), bridge.ID)
		}
		ev := nm.begin(f.Kind, desc, touched)
		if err := nm.cl.net.Partition(ctx, blocked); err != nil {
			nm.log("nemesis: partition: %v", err)
		}
		hold(ctx, f.Hold)
		if err := nm.cl.net.Heal(context.Background()); err != nil {
			nm.log("nemesis: heal: %v", err)
		}
		nm.end(ev)
	case NemesisKill, NemesisPause:
		k := 1
		switch {
		case strings.HasSuffix(f.Variant, "minority"):
			k = max(1, minority)
		case strings.HasSuffix(f.Variant, "-all"):
			k = len(nodes)
		}
		targets := nm.choose(ctx, f, k, strings.HasSuffix(f.Variant, "leader"))
		verb := map[string]string{NemesisKill: "SIGKILL, restart on the same data dir", NemesisPause: "SIGSTOP, then SIGCONT"}[f.Kind]
		ev := nm.begin(f.Kind, fmt.Sprintf("%s: %s (%s)", f.Variant, ids(targets), verb), targets)
		for _, n := range targets {
			if f.Kind == NemesisKill {
				nm.cl.Kill(n)
			} else {
				nm.cl.Pause(n)
			}
		}
		hold(ctx, f.Hold)
		for _, n := range targets {
			if f.Kind == NemesisKill {
				if err := nm.cl.Restart(n); err != nil {
					nm.log("nemesis: restart %s: %v", n.ID, err)
				}
			} else {
				nm.cl.Resume(n)
			}
		}
		nm.end(ev)
	case NemesisMembership:
		if len(nodes) < 3 {
			// Removing one of one or two voters loses the quorum that
			// would remove it: nothing to learn, only a stuck cluster.
			nm.log("nemesis: skipping %s %s: needs at least 3 nodes", f.Kind, f.Variant)
			return
		}
		targets := nm.choose(ctx, f, 1, f.Variant == "replace-leader")
		if len(targets) == 0 {
			return
		}
		old := targets[0]
		ev := nm.begin(f.Kind, fmt.Sprintf("%s: remove %s (killed, data wiped), then add a fresh node", f.Variant, old.ID), targets)
		nm.replace(ctx, old)
		nm.end(ev)
	}
}

// replace removes old for good, waits until the leader has dropped it from
// the Raft configuration (after --dead-server-timeout), and adds a fresh
// node with a new id, address and data dir that joins by gossip.
func (nm *Nemesis) replace(ctx context.Context, old *Node) {
	nm.mu.Lock()
	nm.pendingAdd = true
	nm.mu.Unlock()
	nm.cl.Remove(old)
	err := waitFor(ctx, nm.cl.cfg.DeadServerTimeout+30*time.Second, func() error {
		l := nm.cl.Leader(ctx)
		if l == nil {
			return fmt.Errorf("no leader")
		}
		s, err := nm.cl.Status(ctx, l, false)
		if err != nil {
			return err
		}
		for _, m := range s.Members {
			if m.NodeId == old.ID && m.RaftMember {
				return fmt.Errorf("%s is still in the Raft configuration", old.ID)
			}
		}
		return nil
	})
	if err != nil {
		nm.log("nemesis: %s not removed from Raft: %v (adding its replacement anyway)", old.ID, err)
	}
	nm.addFresh(context.WithoutCancel(ctx))
}

func (nm *Nemesis) addFresh(ctx context.Context) {
	n, err := nm.cl.AddNode(ctx, 0, nm.join())
	if err != nil {
		nm.log("nemesis: add a fresh node: %v", err)
		return
	}
	nm.mu.Lock()
	nm.pendingAdd = false
	nm.mu.Unlock()
	nm.log("nemesis: started fresh node %s (%s), joining", n.ID, n.IP)
	err = waitFor(ctx, 30*time.Second, func() error {
		s, err := nm.cl.Status(ctx, n, false)
		if err != nil {
			return err
		}
		for _, m := range s.Members {
			if m.NodeId == n.ID && m.RaftMember {
				return nil
			}
		}
		return fmt.Errorf("%s is not in the Raft configuration yet", n.ID)
	})
	if err != nil {
		nm.log("nemesis: fresh node %s: %v", n.ID, err)
	}
}

// HealAll undoes every fault: partitions removed, paused nodes continued,
// killed nodes restarted, a half-done replacement completed.
func (nm *Nemesis) HealAll(ctx context.Context) {
	if err := nm.cl.net.Heal(ctx); err != nil {
		nm.log("heal: %v", err)
	}
	for _, n := range nm.cl.Nodes() {
		switch n.State() {
		case nodePaused:
			nm.cl.Resume(n)
		case nodeKilled:
			if err := nm.cl.Restart(n); err != nil {
				nm.log("heal: restart %s: %v", n.ID, err)
			}
		}
	}
	nm.mu.Lock()
	pending := nm.pendingAdd
	nm.mu.Unlock()
	if pending {
		nm.addFresh(ctx)
	}
	nm.mu.Lock()
	for i := range nm.events {
		if nm.events[i].End == 0 {
			nm.events[i].End = nm.rec.Since()
		}
	}
	nm.mu.Unlock()
}

// cut blocks every node of a from every node of b, both ways.
func cut(a, b []*Node) map[string][]string {
	m := map[string][]string{}
	for _, x := range a {
		for _, y := range b {
			m[x.ID] = append(m[x.ID], y.ID)
			m[y.ID] = append(m[y.ID], x.ID)
		}
	}
	return m
}

func others(all, some []*Node) []*Node {
	skip := map[string]bool{}
	for _, n := range some {
		skip[n.ID] = true
	}
	var out []*Node
	for _, n := range all {
		if !skip[n.ID] {
			out = append(out, n)
		}
	}
	return out
}
