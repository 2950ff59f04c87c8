// Package kms is the service core: what each operation means. It validates
// input, checks that the caller may touch the key, resolves key ids, aliases
// and ARNs in the local catalogue, unwraps key material under the root key,
// runs the cryptography, and proposes writes through Raft.
//
// It knows nothing of HTTP. Errors are sentinels (this package's, fsm's,
// crypto's, store's) wrapped with context; the API maps them to the
// service's error codes in one table.
package kms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/store"
	"github.com/raftkms/raftkms/transport"
)

// Proposer is the Raft side the service needs (package store).
type Proposer interface {
	Propose(ctx context.Context, cmd []byte) (store.Result, error)
	Barrier(ctx context.Context) (uint64, error)
	IsLeader() bool
	Leader() (addr, id string)
	Restore(r io.Reader, size int64, index uint64, timeout time.Duration, applied func()) error
}

// Config configures a Service.
type Config struct {
	Region    string
	RootKey   *kcrypto.RootKey
	FSM       *fsm.FSM
	Store     Proposer
	Transport *transport.Transport // for forwarding restores to the leader
	Clock     func() time.Time
	Logger    hclog.Logger
	Metrics   prometheus.Registerer
	// MinIndexWait bounds how long a request waits for this node to apply
	// the index its client asked for (X-Kms-Min-Index).
	MinIndexWait time.Duration
	// DataDir is where uploaded snapshots are staged before a restore.
	DataDir string
	// Servers lists the cluster addresses of the Raft configuration's
	// members (to confirm that a revocation reached every node).
	Servers func() ([]string, error)
	// HSM is this node's PKCS#11 token (nil: no HSM attached) and HSMDomain
	// the HSM domain it serves for hardware keys; New checks that the token
	// holds the domain's key. The Service does not close the token.
	HSM       *hsm.Token
	HSMDomain string
	// HSMPeers lists the alive cluster members that advertise domain in
	// gossip (this node may be among them); hardware keys are forwarded to
	// them. nil: no peers.
	HSMPeers func(domain string) []HSMPeer
	// NodeID and Zone are this node's, for choosing HSM peers (same zone
	// first) and for the domain registration.
	NodeID string
	Zone   string
	// MaxStaleness bounds how old a follower's view may be when it serves a
	// cryptographic operation from its local catalogue: a follower that has
	// not heard from the leader for longer first catches up through a read
	// index, and refuses if it cannot. It is the bound on how long a key
	// state change (DisableKey) can go unseen (docs/CONSISTENCY.md).
	MaxStaleness time.Duration
	// FreshnessIdleAfter: the background renewal of the freshness
	// confirmation (Run) pauses once no request has needed it for this
	// long, and resumes with the next one (0: one minute). An idle cluster
	// then exchanges no read indexes; the first cryptographic request after
	// the pause waits for one read-index round trip.
	FreshnessIdleAfter time.Duration
	// Members lists the cluster's nodes as gossip advertises them (region,
	// zone, API endpoint), for DescribeRegions and the zones of
	// ConnectKmsInstance (cloud.go). nil: this node alone.
	Members func() []NodeInfo
	// ServerLevels lists the Raft configuration's servers with the log
	// level each advertises (upgrade.go): a write of a higher level than
	// the lowest is refused with ErrUpgrading. nil: this node alone.
	ServerLevels func() ([]ServerLevel, error)
}

// Service implements the KMS operations.
type Service struct {
	cfg       Config
	log       hclog.Logger
	fsm       *fsm.FSM
	store     Proposer
	root      *kcrypto.RootKey
	now       func() time.Time
	softStore *softStore // software keys: root-key-wrapped material and its cache
	secrets   *lru.Cache[string, cachedSecret]

	// restoring is what a restore running on this node is doing (nil
	// when none is).
	restoring atomic.Pointer[RestoreProgress]
	// uploads is the restore a follower is handing this leader in parts.
	uploads partUploads
	// saving is the latest snapshot save still running (nil when none is).
	saving atomic.Pointer[saveProgress]

	freshMu sync.Mutex
	freshAt time.Time // catalogue known current as of this time
	// freshUsed is when a request last needed freshness (unix ns, updated
	// at most every freshGrain); freshWake restarts Run's renewal while
	// freshPaused says it is paused.
	freshUsed   atomic.Int64
	freshGrain  int64
	freshPaused atomic.Bool
	freshWake   chan struct{}

	hsm        *hsmNode // nil without an HSM
	hsmRR      atomic.Uint64
	hsmMetrics *hsmMetrics

	peersRefuseRootKey atomic.Bool // see SetPeersRefuseRootKey (rootkey.go)
}

type cachedSecret struct {
	modifyIndex uint64
	secret      []byte
}

// New builds a Service.
func New(cfg Config) (*Service, error) {
	if cfg.RootKey == nil || cfg.FSM == nil || cfg.Store == nil {
		return nil, errors.New("kms: RootKey, FSM and Store are required")
	}
	if cfg.Region == "" {
		cfg.Region = "local"
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MinIndexWait == 0 {
		cfg.MinIndexWait = 5 * time.Second
	}
	if cfg.MaxStaleness == 0 {
		cfg.MaxStaleness = DefaultMaxStaleness
	}
	if cfg.FreshnessIdleAfter == 0 {
		cfg.FreshnessIdleAfter = time.Minute
	}
	soft, err := newSoftStore(cfg.RootKey)
	if err != nil {
		return nil, err
	}
	secrets, err := lru.New[string, cachedSecret](10000)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger.Named("kms"), fsm: cfg.FSM, store: cfg.Store, root: cfg.RootKey,
		now: cfg.Clock, softStore: soft, secrets: secrets, freshWake: make(chan struct{}, 1),
	}
	// A starting node renews as if just used: the first requests after a
	// start or a restart find the catalogue confirmed.
	s.freshUsed.Store(time.Now().UnixNano())
	s.freshGrain = int64(min(time.Second, cfg.FreshnessIdleAfter/4))
	if cfg.HSM != nil {
		if cfg.HSMDomain == "" {
			return nil, errors.New("kms: an HSM needs the HSM domain it serves")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		kcv, err := cfg.HSM.DomainCheckValue(ctx, cfg.HSMDomain)
		cancel()
		if err != nil {
			if errors.Is(err, hsm.ErrDomainNotEnrolled) {
				return nil, fmt.Errorf("HSM token %q holds no key for HSM domain %q: enroll it first (kmsd hsm enroll --domain %s ...): %w",
					cfg.HSM.Label(), cfg.HSMDomain, cfg.HSMDomain, err)
			}
			return nil, fmt.Errorf("HSM token %q, domain %q: %w", cfg.HSM.Label(), cfg.HSMDomain, err)
		}
		s.hsm = &hsmNode{tok: cfg.HSM, domain: cfg.HSMDomain}
		s.hsm.status = HSMStatus{Domain: cfg.HSMDomain, Health: HSMHealthOK, CheckValue: kcv}
	}
	s.hsmMetrics = newHSMMetrics(cfg.Metrics)
	if cfg.Transport != nil {
		cfg.Transport.Handle(rpc.KMSRestore, s.handleRestore)
		cfg.Transport.Handle(rpc.KMSRestorePart, s.handleRestorePart)
		cfg.Transport.Handle(rpc.KMSWaitIndex, s.handleWaitIndex)
		cfg.Transport.Handle(rpc.KMSHSM, s.handleHSM)
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(newKeyGauge(s.fsm))
	}
	return s, nil
}

// Region is the region name used in ARNs.
func (s *Service) Region() string { return s.cfg.Region }

// nowMillis is the proposer's clock, stamped into commands.
func (s *Service) nowMillis() int64 { return s.now().UnixMilli() }

// SignedRequest names a client request by its verified signature: the
// access key it was signed with, its signature nonce and its signed time.
// The zero value means "no signed request" (internal and scheduler writes).
type SignedRequest struct {
	AccessKeyID string
	Nonce       string
	Time        time.Time
	// Verified is when the receiving node checked the signature (its
	// clock, the one the skew window is measured on); it is the time the
	// write's replay check uses.
	Verified time.Time
}

type signedRequestKey struct{}

// signedWrites is a request's signature and how many writes it proposed.
type signedWrites struct {
	req SignedRequest
	seq atomic.Uint32
}

// WithSignature marks ctx as serving c's signed request: every write
// proposed under it is wrapped in an fsm.CmdSignedWrite carrying the
// signature, so that the catalogue refuses the same request applied twice,
// on any node and after restarts (fsm/DESIGN.md, docs/SECURITY.md). A
// caller without a signature leaves ctx as it is.
func WithSignature(ctx context.Context, c Caller) context.Context {
	if c.Signature.Nonce == "" || c.Signature.AccessKeyID == "" {
		return ctx
	}
	return context.WithValue(ctx, signedRequestKey{}, &signedWrites{req: c.Signature})
}

// Signature is WithSignature's value for a context type of the caller's
// own that answers Value with it (Lookup) rather than have another context
// wrapped around it: the API pipeline keeps it in its per-request context,
// with the deadline, in one allocation. The zero value carries no
// signature; it must not be copied after Set.
type Signature struct {
	sw  signedWrites
	set bool
}

// Set records c's signed request, as WithSignature does (a caller without
// a signature records nothing). Set it before the context is used by
// anything that may read it, once.
func (s *Signature) Set(c Caller) {
	if c.Signature.Nonce == "" || c.Signature.AccessKeyID == "" {
		return
	}
	s.sw.req, s.set = c.Signature, true
}

// Lookup is the context value for key, when key is WithSignature's and a
// signature was set.
func (s *Signature) Lookup(key any) (any, bool) {
	if _, ok := key.(signedRequestKey); ok && s.set {
		return &s.sw, true
	}
	return nil, false
}

// wrapSigned wraps a client request's write in its signature. Node duties
// (a restore's barrier, an HSM domain's registration) are not the client's
// write and are never wrapped, even when a request triggers them.
func (s *Service) wrapSigned(ctx context.Context, t fsm.CommandType, cmd []byte) ([]byte, error) {
	sw, _ := ctx.Value(signedRequestKey{}).(*signedWrites)
	if sw == nil || t == fsm.CmdNoop || t == fsm.CmdRegisterHSMDomain {
		return cmd, nil
	}
	// A request that proposes more than one write spends one nonce per
	// write, numbered in order: sent again, its first write is refused.
	seq := sw.seq.Add(1) - 1
	now := sw.req.Verified.UnixMilli()
	if sw.req.Verified.IsZero() {
		now = s.nowMillis()
	}
	return fsm.EncodeSignedWrite(fsm.SignedWriteCmd{
		Now:         now,
		AccessKeyID: sw.req.AccessKeyID,
		Nonce:       sw.req.Nonce,
		Seq:         seq,
		SignedAt:    sw.req.Time.UnixMilli(),
	}, cmd)
}

// propose is the one place that turns an FSM response back into an error:
// the command's log level is checked against the cluster's (gate, upgrade.go),
// the command is encoded (wrapped in the client's signature, when a signed
// request proposes it), applied through Raft (forwarded to the leader when
// needed), and the FSM's domain error, if any, is returned.
func (s *Service) propose(ctx context.Context, t fsm.CommandType, body any) (uint64, error) {
	if err := s.gate(t); err != nil {
		return 0, err
	}
	cmd, err := fsm.Encode(t, body)
	if err != nil {
		return 0, err
	}
	if cmd, err = s.wrapSigned(ctx, t, cmd); err != nil {
		return 0, err
	}
	res, err := s.store.Propose(ctx, cmd)
	if err != nil {
		return 0, err
	}
	// A write forwarded to the leader is applied there first. Waiting for
	// this node to apply it too means a client that writes and then reads
	// through the same node sees its write.
	if werr := s.fsm.WaitForIndex(ctx, res.Index); werr != nil {
		s.log.Warn("write committed but not yet applied on this node", "index", res.Index, "error", werr)
	}
	if res.Err != nil {
		return res.Index, res.Err
	}
	return res.Index, nil
}

// WaitForIndex serves read-your-writes: it waits (bounded) until this node
// has applied index.
func (s *Service) WaitForIndex(ctx context.Context, index uint64) error {
	if index == 0 || s.fsm.AppliedIndex() >= index {
		return nil
	}
	// An index that names one of Raft's own entries (a term's no-op, a
	// configuration change) is reached with the last command before it.
	if ci, ok := s.store.(interface{ CommandIndexAtOrBelow(uint64) uint64 }); ok {
		if c := ci.CommandIndexAtOrBelow(index); c < index {
			if index = c; s.fsm.AppliedIndex() >= index {
				return nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MinIndexWait)
	defer cancel()
	if err := s.fsm.WaitForIndex(ctx, index); err != nil {
		return fmt.Errorf("%w: this node has applied index %d, the request needs %d; retry, or send it to another node",
			ErrIndexNotReached, s.fsm.AppliedIndex(), index)
	}
	return nil
}

// LinearizableRead makes this node's catalogue reflect every write
// acknowledged before the call (read index from the leader, then wait for
// it locally).
func (s *Service) LinearizableRead(ctx context.Context) error {
	_, err := s.store.Barrier(ctx)
	return err
}

// DefaultMaxStaleness is the default bound on a follower's staleness for
// cryptographic operations.
const DefaultMaxStaleness = 5 * time.Second

// ErrStale means this node has lost contact with the leader for longer than
// the staleness bound and could not catch up: it may not know of a key that
// was disabled meanwhile, so it does not serve cryptographic operations.
var ErrStale = errors.New("this node has lost contact with the cluster leader")

// fresh makes sure this node's catalogue is recent enough to serve a
// cryptographic operation locally: its state must be confirmed current as of
// no more than MaxStaleness ago. A confirmation is a read index obtained from
// the leader (and applied here) by a request sent at time t: everything
// acknowledged before t is then in the catalogue. The background loop in Run
// renews it every MaxStaleness/4, so the normal path costs a clock read; a
// node cut off from the leader for longer catches up synchronously or
// refuses. This is the bound on how long a DisableKey can go unseen.
func (s *Service) fresh(ctx context.Context) error {
	now := time.Now()
	s.noteFreshUse(now)
	if now.Sub(s.freshAsOf()) <= s.cfg.MaxStaleness {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MaxStaleness)
	defer cancel()
	if err := s.confirmFresh(ctx); err != nil {
		return fmt.Errorf("%w for more than %s and could not catch up (%v); retry on another node", ErrStale, s.cfg.MaxStaleness, err)
	}
	return nil
}

// confirmFresh runs one read-index round trip and records when it started.
func (s *Service) confirmFresh(ctx context.Context) error {
	start := time.Now()
	if _, err := s.store.Barrier(ctx); err != nil {
		return err
	}
	s.freshMu.Lock()
	if start.After(s.freshAt) {
		s.freshAt = start
	}
	s.freshMu.Unlock()
	return nil
}

func (s *Service) freshAsOf() time.Time {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	return s.freshAt
}

// noteFreshUse records that a request needs freshness, and restarts the
// background renewal if it paused. Two atomic loads per request; a store at
// most once a second.
func (s *Service) noteFreshUse(now time.Time) {
	ns := now.UnixNano()
	if ns-s.freshUsed.Load() >= s.freshGrain {
		s.freshUsed.Store(ns)
	}
	if s.freshPaused.Load() {
		select {
		case s.freshWake <- struct{}{}:
		default:
		}
	}
}

// freshnessIdle reports whether no request has needed freshness for
// FreshnessIdleAfter.
func (s *Service) freshnessIdle(now time.Time) bool {
	return now.UnixNano()-s.freshUsed.Load() > int64(s.cfg.FreshnessIdleAfter)
}

// Run renews the freshness confirmation in the background until ctx ends,
// every MaxStaleness/4 while requests need it. After FreshnessIdleAfter
// without one it pauses (an idle node then sends no read index every
// second), and the next request that needs it confirms freshness itself and
// restarts the renewal.
func (s *Service) Run(ctx context.Context) {
	every := s.cfg.MaxStaleness / 4
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if s.freshnessIdle(time.Now()) {
			// Paused is set before idleness is read again, and a request
			// stores its use before it reads paused: one of the two sees
			// the other, so a request is never left without a renewal.
			s.freshPaused.Store(true)
			if s.freshnessIdle(time.Now()) {
				t.Stop()
				s.log.Debug("freshness renewal paused: no request needed it", "for", s.cfg.FreshnessIdleAfter)
				select {
				case <-ctx.Done():
					return
				case <-s.freshWake:
				}
				t.Reset(every)
			}
			s.freshPaused.Store(false)
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.MaxStaleness/2)
		if err := s.confirmFresh(cctx); err != nil && ctx.Err() == nil {
			s.log.Debug("freshness not confirmed", "error", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CatalogueHash is a digest of this node's whole catalogue and the applied
// index it was taken at.
func (s *Service) CatalogueHash() ([32]byte, uint64) { return s.fsm.Hash() }

// AppliedIndex is this node's applied index.
func (s *Service) AppliedIndex() uint64 { return s.fsm.AppliedIndex() }

// Initialized reports whether operator init has run, and whether the root
// key this node holds is the cluster's.
func (s *Service) Initialized() (initialized, rootKeyMatches bool) {
	ok, check := s.fsm.Initialized()
	if !ok {
		return false, true
	}
	return true, s.root.HasCheckValue(check)
}

// keyGauge reports kms_keys{state} from the catalogue at scrape time.
type keyGauge struct {
	fsm  *fsm.FSM
	desc *prometheus.Desc
}

func newKeyGauge(f *fsm.FSM) *keyGauge {
	return &keyGauge{fsm: f, desc: prometheus.NewDesc("kms_keys", "Keys in the catalogue by state.", []string{"state"}, nil)}
}

func (g *keyGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *keyGauge) Collect(ch chan<- prometheus.Metric) {
	counts := g.fsm.Counts()
	for _, st := range []string{fsm.StateEnabled, fsm.StateDisabled, fsm.StatePendingDeletion, fsm.StatePendingImport} {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}
