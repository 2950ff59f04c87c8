package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Member statuses.
const (
	StatusAlive = "alive"
	// StatusSuspect is reserved: memberlist v0.5.4 does not expose its
	// suspicion state (Node.State is never updated), so a suspected node is
	// reported alive until memberlist declares it dead.
	StatusSuspect = "suspect"
	StatusFailed  = "failed"
	StatusLeft    = "left"
)

// ErrShutdown is returned by operations on a Cluster after Shutdown.
var ErrShutdown = errors.New("cluster: shut down")

// Member is one node as seen by this node's gossip.
type Member struct {
	Meta
	GossipAddr  string    // memberlist host:port
	Status      string    // StatusAlive, StatusSuspect, StatusFailed or StatusLeft
	StatusSince time.Time // when this node observed the current Status
}

// Alive reports whether the member is usable (alive or only suspected).
func (m Member) Alive() bool { return m.Status == StatusAlive || m.Status == StatusSuspect }

// Config configures New.
type Config struct {
	// BindAddr is the gossip host:port, used for both TCP and UDP. Port 0
	// picks a free port; Addr reports the real one.
	BindAddr string
	// AdvertiseAddr is the host:port other nodes should use, if it differs
	// from BindAddr (NAT, 0.0.0.0 binds). Optional.
	AdvertiseAddr string
	// Meta is this node's initial metadata. Meta.ID is required and is the
	// memberlist node name, so it must be unique in the cluster.
	Meta Meta
	// Join lists gossip addresses of other nodes. Joining retries in the
	// background, with backoff, until another node is reached, so nodes may
	// start in any order. Listing this node's own address is harmless.
	Join []string
	// SecretKey enables gossip encryption (16, 24 or 32 bytes, AES). nil
	// means plaintext. All nodes must use the same key.
	SecretKey []byte
	Logger    hclog.Logger
	// Fast shrinks every timer for tests: probe ~100ms, gossip ~50ms, short
	// suspicion, so a crashed node is declared failed in well under 2s.
	Fast bool
	// ReapTimeout is how long failed and left members stay in Members()
	// before being forgotten. 0 means 72h.
	ReapTimeout time.Duration
	// Metrics, if set, receives this package's collectors.
	Metrics prometheus.Registerer
	// VerifyPeer, when set, must accept a member's cluster address before
	// the leader's reconciler adds the member to the Raft configuration (or
	// promotes it, or moves it to a new address), and before bootstrap-expect
	// counts it. The node checks that the member's cluster port proves the
	// same cluster key: gossip alone proves nothing about who a member is.
	// nil accepts every member (tests of gossip alone).
	VerifyPeer func(ctx context.Context, id, clusterAddr string) error
}

// timings are the package's own timers (memberlist's are in its Config).
type timings struct {
	joinMin, joinMax time.Duration // backoff while no other node is reachable
	reconnect        time.Duration // how often to retry a failed member / check for isolation
	updateWait       time.Duration // how long UpdateMeta waits for its broadcast
	leaveWait        time.Duration // Leave's default timeout
	poll             time.Duration // RunBootstrap's Raft-state poll
	reconcile        time.Duration // RunReconciler's default Interval
}

var (
	prodTimings = timings{joinMin: time.Second, joinMax: 30 * time.Second, reconnect: 30 * time.Second,
		updateWait: 2 * time.Second, leaveWait: 5 * time.Second, poll: time.Second, reconcile: 10 * time.Second}
	fastTimings = timings{joinMin: 50 * time.Millisecond, joinMax: 500 * time.Millisecond, reconnect: 500 * time.Millisecond,
		updateWait: 500 * time.Millisecond, leaveWait: 2 * time.Second, poll: 50 * time.Millisecond, reconcile: 100 * time.Millisecond}
)

// Cluster is this node's membership in the gossip pool.
type Cluster struct {
	id      string // == local.ID, immutable
	addr    string // advertised gossip address, fixed at New
	logger  hclog.Logger
	ml      *memberlist.Memberlist
	metrics *metrics
	t       timings
	join    []string
	bind    string
	reap    time.Duration

	verify func(ctx context.Context, id, clusterAddr string) error // Config.VerifyPeer

	metaMu sync.Mutex // serializes UpdateMeta/Leave meta changes; never taken by memberlist callbacks

	mu       sync.RWMutex
	local    Meta
	localEnc []byte
	members  map[string]Member // by ID, self included
	subs     map[uint64]chan struct{}
	nextSub  uint64

	lifeMu sync.Mutex // guards shut; serializes Leave and Shutdown (memberlist panics on Leave after Shutdown)
	shut   bool
	left   atomic.Bool
	stopCh chan struct{}
	wg     sync.WaitGroup
}

// New starts gossip on cfg.BindAddr and begins joining cfg.Join in the
// background. It returns once the local listeners are up.
func New(cfg Config) (*Cluster, error) {
	if cfg.Meta.ID == "" {
		return nil, errors.New("cluster: Meta.ID is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	logger = logger.Named("cluster")
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("cluster: metrics: %w", err)
	}
	enc, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		id:       cfg.Meta.ID,
		logger:   logger,
		metrics:  m,
		t:        prodTimings,
		bind:     cfg.BindAddr,
		reap:     cfg.ReapTimeout,
		local:    cfg.Meta.clone(),
		localEnc: enc,
		members:  make(map[string]Member),
		subs:     make(map[uint64]chan struct{}),
		stopCh:   make(chan struct{}),
		verify:   cfg.VerifyPeer,
	}
	if cfg.Fast {
		c.t = fastTimings
	}
	if c.reap <= 0 {
		c.reap = 72 * time.Hour
	}

	mc, err := c.memberlistConfig(cfg)
	if err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip: %w", err)
	}
	c.ml = ml
	// Read once: LocalNode returns a pointer into memberlist's state that
	// UpdateNode rewrites without a lock the caller could hold.
	c.addr = ml.LocalNode().Address()

	self := c.addr
	for _, a := range cfg.Join {
		if a != "" && a != self && a != cfg.BindAddr {
			c.join = append(c.join, a)
		}
	}
	c.logger.Info("gossip started", "id", cfg.Meta.ID, "addr", self, "zone", cfg.Meta.Zone,
		"join", c.join, "encrypted", len(cfg.SecretKey) > 0)

	c.wg.Add(1)
	go c.maintain()
	return c, nil
}

func (c *Cluster) memberlistConfig(cfg Config) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	if cfg.Fast {
		// Failure detection ≈ probe interval + probe timeout + suspicion
		// (SuspicionMult × interval, at most 2× that): well under 2s, with
		// enough slack that a loaded test machine (-race, parallel
		// packages) does not produce false failures.
		mc.ProbeInterval = 100 * time.Millisecond
		mc.ProbeTimeout = 80 * time.Millisecond
		mc.GossipInterval = 50 * time.Millisecond
		mc.PushPullInterval = time.Second
		mc.SuspicionMult = 4
		mc.SuspicionMaxTimeoutMult = 2
		mc.TCPTimeout = 500 * time.Millisecond
		mc.GossipToTheDeadTime = 2 * time.Second
		mc.DeadNodeReclaimTime = time.Second
		mc.AwarenessMaxMultiplier = 2
	} else {
		// Lets a node that comes back under the same ID on a new address
		// (rescheduled container) reclaim its name.
		mc.DeadNodeReclaimTime = 30 * time.Second
		idleLANTimers(mc)
	}
	mc.Name = cfg.Meta.ID
	host, port, err := splitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: BindAddr: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.AdvertiseAddr != "" {
		ahost, aport, err := splitHostPort(cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: AdvertiseAddr: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ahost, aport
	}
	if len(cfg.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), cfg.SecretKey...)
	}
	mc.Delegate = delegate{c}
	mc.Events = events{c}
	mc.LogOutput = nil
	mc.Logger = memberlistLogger(c.logger.Named("memberlist"))
	return mc, nil
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Addr is this node's advertised gossip host:port (the real port when
// BindAddr asked for port 0).
func (c *Cluster) Addr() string {
	return c.addr
}

// LocalMeta returns a copy of this node's current metadata.
func (c *Cluster) LocalMeta() Meta {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.local.clone()
}

// UpdateMeta changes this node's metadata and re-gossips it. fn must not
// change ID. It waits briefly for the broadcast to go out; if that takes
// longer the change still spreads by gossip, and no error is returned.
func (c *Cluster) UpdateMeta(fn func(*Meta)) error {
	err := c.updateMeta(fn, c.t.updateWait)
	if errors.Is(err, errNotBroadcast) {
		c.logger.Debug("metadata update not fully broadcast yet; gossip will carry it", "error", err)
		return nil
	}
	return err
}

// errNotBroadcast: the new metadata is in effect locally but memberlist had
// not finished broadcasting it when the wait ran out.
var errNotBroadcast = errors.New("cluster: metadata broadcast still in progress")

func (c *Cluster) updateMeta(fn func(*Meta), wait time.Duration) error {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	if c.isShutdown() {
		return ErrShutdown
	}
	c.mu.RLock()
	m := c.local.clone()
	c.mu.RUnlock()
	fn(&m)
	if m.ID != c.id {
		return errors.New("cluster: UpdateMeta may not change ID")
	}
	enc, err := encodeMeta(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.local, c.localEnc = m, enc
	c.mu.Unlock()
	c.notify()
	// Must not hold c.mu: UpdateNode calls back into the event delegate.
	if err := c.ml.UpdateNode(wait); err != nil {
		return fmt.Errorf("%w: %v", errNotBroadcast, err)
	}
	return nil
}

// Members returns every known member sorted by ID, self included. Failed
// and left members are kept (with their status) until ReapTimeout.
func (c *Cluster) Members() []Member {
	c.mu.RLock()
	out := make([]Member, 0, len(c.members)+1)
	sawSelf := false
	for id, m := range c.members {
		if id == c.id {
			m.Meta = c.local
			sawSelf = true
		}
		m.Meta = m.Meta.clone()
		out = append(out, m)
	}
	if !sawSelf {
		out = append(out, Member{Meta: c.local.clone(), Status: StatusAlive})
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member returns one member by ID.
func (c *Cluster) Member(id string) (Member, bool) {
	for _, m := range c.Members() {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// AliveWith returns the alive members for which pred returns true (all alive
// members if pred is nil), sorted by ID. It is the routing helper for
// HSM-pinned keys: e.g. members advertising a healthy domain.
func (c *Cluster) AliveWith(pred func(Member) bool) []Member {
	var out []Member
	for _, m := range c.Members() {
		if m.Alive() && (pred == nil || pred(m)) {
			out = append(out, m)
		}
	}
	return out
}

// Subscribe returns a channel that receives a value after any membership
// change (join, failure, leave, metadata update, including our own).
// Notifications are coalesced: the channel holds at most one pending value,
// so a reader that re-reads Members() after each receive never misses a
// change. The channel is never closed; call cancel to unsubscribe.
func (c *Cluster) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	id := c.nextSub
	c.nextSub++
	c.subs[id] = ch
	c.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs, id)
			c.mu.Unlock()
		})
	}
}

func (c *Cluster) notify() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Leave marks this node as leaving in its metadata, then broadcasts a
// memberlist leave, so that peers record it as "left" rather than "failed".
// Gossip keeps running until Shutdown. timeout bounds the whole call (<= 0
// means a default of a few seconds).
//
// Peers must learn the Leaving flag before the leave broadcast: memberlist
// ignores metadata for a node it already considers dead. So besides
// gossiping the flag, Leave pushes its state to the alive peers directly
// (a TCP push/pull, as a join does; at most maxLeavePush of them).
func (c *Cluster) Leave(timeout time.Duration) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.shut {
		return ErrShutdown
	}
	if timeout <= 0 {
		timeout = c.t.leaveWait
	}
	deadline := time.Now().Add(timeout)
	c.left.Store(true)
	c.logger.Info("leaving cluster")
	var errs []error
	if err := c.announceLeaving(timeout / 4); err != nil {
		errs = append(errs, err)
	}
	remaining := time.Until(deadline)
	if remaining < 10*time.Millisecond {
		remaining = 10 * time.Millisecond
	}
	if err := c.ml.Leave(remaining); err != nil {
		errs = append(errs, fmt.Errorf("cluster: leave: %w", err))
	}
	return errors.Join(errs...)
}

// AnnounceStop tells the peers that this node is stopping on purpose (the
// Leaving flag, pushed to them directly) while it still runs Raft: a node
// that stops as a member of the Raft configuration (LeaveRaft refused or
// timed out) calls it before it stops Raft, so that the peers log their
// failures to reach it as expected, not as faults. Leave does it again.
func (c *Cluster) AnnounceStop(timeout time.Duration) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.shut {
		return ErrShutdown
	}
	return c.announceLeaving(timeout)
}

// announceLeaving sets Meta.Leaving, gossips it, and pushes this node's
// state to (at most maxLeavePush) alive peers directly. Holds lifeMu.
func (c *Cluster) announceLeaving(timeout time.Duration) error {
	var err error
	if e := c.updateMeta(func(m *Meta) { m.Leaving = true }, timeout); e != nil && !errors.Is(e, errNotBroadcast) {
		err = e
	}
	var peers []string
	for _, m := range c.Members() {
		if m.ID != c.id && m.Alive() && m.GossipAddr != "" {
			peers = append(peers, m.GossipAddr)
		}
	}
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	if len(peers) > maxLeavePush {
		peers = peers[:maxLeavePush]
	}
	if len(peers) > 0 {
		if _, e := c.ml.Join(peers); e != nil {
			c.logger.Warn("leave: could not push leaving state to some peers", "error", e)
		}
	}
	return err
}

// maxLeavePush bounds the direct state pushes Leave makes; beyond that the
// Leaving flag spreads by gossip only.
const maxLeavePush = 16

// Shutdown stops gossip without a leave broadcast: peers will detect this
// node as failed. Safe to call more than once.
func (c *Cluster) Shutdown() error {
	c.lifeMu.Lock()
	if c.shut {
		c.lifeMu.Unlock()
		return nil
	}
	c.shut = true
	close(c.stopCh)
	c.lifeMu.Unlock()
	err := c.ml.Shutdown()
	c.wg.Wait()
	c.logger.Info("gossip stopped")
	return err
}

func (c *Cluster) isShutdown() bool {
	select {
	case <-c.stopCh:
		return true
	default:
		return false
	}
}

// maintain joins the cluster (retrying with backoff while no other node is
// reachable), tries to reconnect to failed members the way serf does (a
// node cut off for longer than memberlist remembers the dead would
// otherwise never merge back), and forgets members past ReapTimeout.
func (c *Cluster) maintain() {
	defer c.wg.Done()
	backoff := c.t.joinMin
	attempt := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-c.stopCh:
			return
		case <-timer.C:
		}
		c.reapMembers()
		wait := c.t.reconnect
		if !c.left.Load() {
			if c.ml.NumMembers() <= 1 {
				if targets := c.joinTargets(); len(targets) > 0 {
					attempt++
					n, err := c.ml.Join(targets)
					if err == nil && c.ml.NumMembers() > 1 {
						c.metrics.joins.WithLabelValues("ok").Inc()
						c.logger.Info("joined cluster", "contacted", n, "attempt", attempt)
						attempt, backoff = 0, c.t.joinMin
					} else {
						c.metrics.joins.WithLabelValues("error").Inc()
						if err == nil {
							err = errors.New("no other node reachable")
						}
						c.logger.Warn("join failed; will retry", "targets", targets, "attempt", attempt,
							"retry_in", backoff, "error", err)
						wait = backoff
						backoff = min(2*backoff, c.t.joinMax)
					}
				}
			} else {
				attempt, backoff = 0, c.t.joinMin
				if addr := c.randomFailedAddr(); addr != "" {
					if _, err := c.ml.Join([]string{addr}); err == nil {
						c.logger.Debug("reconnected to failed member", "addr", addr)
					}
				}
			}
		}
		timer.Reset(wait)
	}
}

func (c *Cluster) joinTargets() []string {
	seen := make(map[string]bool)
	var out []string
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, a := range c.join {
		add(a)
	}
	for _, m := range c.Members() {
		if m.Status == StatusFailed && m.ID != c.id {
			add(m.GossipAddr)
		}
	}
	return out
}

func (c *Cluster) randomFailedAddr() string {
	var addrs []string
	for _, m := range c.Members() {
		if m.Status == StatusFailed && m.GossipAddr != "" {
			addrs = append(addrs, m.GossipAddr)
		}
	}
	if len(addrs) == 0 {
		return ""
	}
	return addrs[rand.IntN(len(addrs))]
}

func (c *Cluster) reapMembers() {
	cutoff := time.Now().Add(-c.reap)
	reaped := false
	c.mu.Lock()
	for id, m := range c.members {
		if id != c.id && !m.Alive() && m.StatusSince.Before(cutoff) {
			delete(c.members, id)
			c.logger.Info("forgetting member", "id", id, "status", m.Status, "since", m.StatusSince)
			reaped = true
		}
	}
	if reaped {
		c.updateGaugesLocked()
	}
	c.mu.Unlock()
	if reaped {
		c.notify()
	}
}

// observe records a memberlist event. It runs inside memberlist's callbacks,
// which hold memberlist's node lock: it must not call back into memberlist.
// status "" means the node died or left; which one is read from its Meta.
func (c *Cluster) observe(n *memberlist.Node, status string) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		c.logger.Warn("ignoring undecodable member metadata", "node", n.Name, "error", err)
		meta = Meta{}
	}
	if meta.ID != n.Name {
		meta.ID = n.Name
	}
	if status == "" {
		status = StatusFailed
		if meta.Leaving {
			status = StatusLeft
		}
	}
	now := time.Now()
	m := Member{Meta: meta, GossipAddr: n.Address(), Status: status, StatusSince: now}

	c.mu.Lock()
	old, known := c.members[n.Name]
	if known && old.Status == status {
		m.StatusSince = old.StatusSince
	}
	changed := !known || old.Status != status || old.GossipAddr != m.GossipAddr || !reflect.DeepEqual(old.Meta, meta)
	c.members[n.Name] = m
	c.updateGaugesLocked()
	c.mu.Unlock()

	switch {
	case !known:
		c.logger.Info("member joined", "id", m.ID, "gossip", m.GossipAddr, "zone", m.Zone,
			"cluster_addr", m.ClusterAddr, "status", status)
	case old.Status != status:
		c.logger.Info("member status changed", "id", m.ID, "from", old.Status, "to", status)
	case changed:
		c.logger.Debug("member updated", "id", m.ID)
	}
	if changed {
		c.notify()
	}
}

func (c *Cluster) updateGaugesLocked() {
	counts := map[string]float64{StatusAlive: 0, StatusSuspect: 0, StatusFailed: 0, StatusLeft: 0}
	for _, m := range c.members {
		counts[m.Status]++
	}
	for s, n := range counts {
		c.metrics.members.WithLabelValues(s).Set(n)
	}
}

// delegate serves our metadata to memberlist.
type delegate struct{ c *Cluster }

func (d delegate) NodeMeta(limit int) []byte {
	d.c.mu.RLock()
	defer d.c.mu.RUnlock()
	if len(d.c.localEnc) > limit {
		// encodeMeta already enforces MaxMetaSize; this is memberlist's own check.
		return nil
	}
	return append([]byte(nil), d.c.localEnc...)
}
func (delegate) NotifyMsg([]byte)                           {}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

// events turns memberlist notifications into member statuses.
type events struct{ c *Cluster }

func (e events) NotifyJoin(n *memberlist.Node)   { e.c.observe(n, StatusAlive) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.c.observe(n, StatusAlive) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.c.observe(n, "") }

// Production gossip timers: memberlist's LAN defaults, slowed where a small
// server cluster gains nothing from the speed (docs/BENCHMARKS.md, "An idle
// cluster"). Every tick wakes an otherwise idle process; probes also cost a
// UDP round trip.
const (
	// prodProbeInterval: each node probes one member this often (LAN
	// default 1s); some peer probes a given member about once per interval.
	// A probe that fails waits the whole interval (indirect probes, TCP
	// fallback) before the member is suspected, and the suspicion window
	// is SuspicionMult (4, unchanged) × this interval × max(1, log10 n):
	// 8s below ten nodes, up to 6× that until other members confirm.
	// Nothing waits on gossip's verdict in seconds: Raft detects a dead
	// leader by itself (--raft-timeout), the reconciler removes a dead
	// server only after --dead-server-timeout (5m), and HSM routing moves
	// on to the next member when one is unreachable.
	prodProbeInterval = 2 * time.Second
	// prodGossipInterval: how often queued broadcasts (alive, suspect,
	// dead, metadata updates) go out besides riding on probes (LAN default
	// 200ms). With nothing queued a tick sends nothing.
	prodGossipInterval = 500 * time.Millisecond
)

// idleLANTimers applies the production gossip timers to a LAN config.
// A crashed member of a 3-node cluster is declared failed after ≈ the wait
// for the first probe (≈1s on average) + one probe interval (2s) + the
// suspicion window (8s): ≈11s, at worst ≈14s (≈5.5s and ≈7s with the LAN
// defaults).
func idleLANTimers(mc *memberlist.Config) {
	mc.ProbeInterval = prodProbeInterval
	mc.GossipInterval = prodGossipInterval
}
