// Package node wires one raftkms node together: transport, Raft store,
// gossip, the service core and the HTTP API. cmd/kmsd turns flags into a
// Config; in-process cluster tests start several Nodes in one test.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/audit"
	"github.com/raftkms/raftkms/cluster"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/internal/autosnap"
	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
	"github.com/raftkms/raftkms/transport"
)

// Config configures a node. Addresses may use port 0 (tests).
type Config struct {
	// AdvertiseHost is the address other nodes and clients reach this node
	// at, when it listens on all interfaces (0.0.0.0) or behind NAT.
	AdvertiseHost string
	NodeID        string
	DataDir       string
	HTTPAddr      string
	ClusterAddr   string
	GossipAddr    string
	Join          []string
	// BootstrapExpect bootstraps Raft once this many servers see each other.
	BootstrapExpect int
	// Single runs a one-node cluster without gossip (dev mode): Raft is
	// bootstrapped with this node alone.
	Single     bool
	Zone       string
	Region     string
	Version    string
	RootKey    *kcrypto.RootKey
	Timing     store.Timing
	FastGossip bool
	// ClusterMaxFrame bounds one cluster RPC message (default the
	// transport's, 64 MiB); a follower hands an operator restore to the
	// leader in one.
	ClusterMaxFrame   int
	DeadServerTimeout time.Duration
	MaxStaleness      time.Duration
	// ConsoleIdleTimeout ends a browser console session unused for this
	// long (default kms.DefaultConsoleIdleTimeout).
	ConsoleIdleTimeout time.Duration
	SnapshotThreshold  uint64
	// RaftLogStore is the Raft log store of a new data dir (store.LogStoreWAL
	// when empty, or store.LogStoreBolt); a data dir keeps the one it has.
	RaftLogStore string
	// SchedulerInterval is how often the leader looks for due rotations,
	// deletions and expiries (default 1 s).
	SchedulerInterval time.Duration
	// Clock is the service clock (rotation, deletion windows, expiries);
	// tests inject one. Default time.Now.
	Clock  func() time.Time
	Logger hclog.Logger

	// HTTPTLS, when set, serves the API over HTTPS with it.
	HTTPTLS *tls.Config
	// HTTPLimits are the API's timeouts and connection cap (httpconns.go).
	HTTPLimits HTTPLimits
	// ClusterServerTLS and ClusterClientTLS put the cluster port (Raft and
	// internal RPC alike) under TLS: the first for connections this node
	// accepts (mutual TLS when it requires and verifies client
	// certificates), the second for those it makes. Both or neither. The
	// leader adds a gossip member to Raft only after the member's cluster
	// port has passed the handshake: TLS (with these) and, always, the
	// proof of the cluster key derived from RootKey.
	ClusterServerTLS *tls.Config
	ClusterClientTLS *tls.Config
	// GossipKey encrypts gossip (16, 24 or 32 bytes, memberlist's keyring);
	// nil leaves it in plaintext.
	GossipKey []byte
	// AuditLog, when set, is the file that gets one line per request
	// (package audit). A damaged file keeps the node from starting.
	AuditLog string

	// HSM, when set, attaches a PKCS#11 token (its Metrics are the node's
	// registry): the node serves the hardware keys of HSMDomain with it and
	// advertises the domain and the token's health in gossip. A token that
	// does not open or does not hold the domain's key stops Start.
	HSM       *hsm.Config
	HSMDomain string
	// HSMCheckInterval is how often the node re-checks its HSM's health and
	// the domain key the cluster recorded (default 1 s).
	HSMCheckInterval time.Duration

	// SnapshotInterval, when positive, has the leader write an automatic
	// snapshot into SnapshotDir at this interval (package autosnap),
	// keeping the newest SnapshotRetain (default 1) and running
	// SnapshotCommand with each new file's path.
	SnapshotInterval       time.Duration
	SnapshotDir            string
	SnapshotRetain         int
	SnapshotCommand        string
	SnapshotCommandTimeout time.Duration
	// SnapshotTicks, when set, replaces the SnapshotInterval ticker (tests).
	SnapshotTicks <-chan time.Time

	// InstanceAddr, when set, serves the instance API over HTTPS on it
	// (instance.go), with the API's timeouts and connection cap.
	InstanceAddr string
	// InstanceNames are the host names and IP addresses the node's instance
	// certificate names (--instance-advertise); empty: the advertise host,
	// else the listener's host, plus 127.0.0.1 and localhost when loopback.
	InstanceNames []string
	// InstanceTLSCert, when set, is the operator's certificate for the
	// instance endpoint (--instance-tls-cert-file/--instance-tls-key-file);
	// otherwise the node issues itself one from the cluster's instance CA.
	InstanceTLSCert *tls.Certificate
	// InstanceCertLifetime is how long an issued certificate is valid
	// (default kms.DefaultInstanceCertLifetime); it is renewed after two
	// thirds of it, by the service clock.
	InstanceCertLifetime time.Duration
}

// Node is one running raftkms node.
type Node struct {
	cfg      Config
	log      hclog.Logger
	Registry *prometheus.Registry
	trans    *transport.Transport
	fsm      *fsm.FSM
	store    *store.Store
	gossip   *cluster.Cluster
	// gossipRef is gossip for Raft's goroutines (the store's PeerStopping
	// hook), which run before gossip exists.
	gossipRef atomic.Pointer[cluster.Cluster]
	svc       *kms.Service
	http      *http.Server
	httpLn    net.Listener
	inst      *instanceEndpoint // nil without InstanceAddr
	audit     *audit.Writer
	hsm       *hsm.Token
	cancel    context.CancelFunc
	workers   sync.WaitGroup
	stopOnce  sync.Once
}

// releaseAfterLoadKeys is the size of a loaded catalogue after which the
// node returns the memory the load left behind to the system.
const releaseAfterLoadKeys = 50_000

// Start starts a node. On error everything started so far is stopped.
func Start(cfg Config) (_ *Node, err error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Region == "" {
		cfg.Region = "local"
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Timing == (store.Timing{}) {
		cfg.Timing = store.DefaultTiming()
	}
	logger := cfg.Logger
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n := &Node{cfg: cfg, log: logger, Registry: reg}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()

	if cfg.RootKey == nil {
		return nil, errors.New("a root key is required")
	}
	if (cfg.ClusterServerTLS == nil) != (cfg.ClusterClientTLS == nil) {
		return nil, errors.New("cluster TLS needs both a server and a client configuration")
	}
	if cfg.AuditLog != "" {
		// First: a damaged audit log stops the node before it serves.
		if n.audit, err = audit.Open(cfg.AuditLog, audit.Options{Registerer: reg}); err != nil {
			return nil, err
		}
	}
	// The API listener comes first so that its real address (port 0 in
	// tests) is what gossip advertises.
	n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http address %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.InstanceAddr != "" {
		if n.inst, err = listenInstance(cfg.InstanceAddr); err != nil {
			return nil, err
		}
	}
	n.trans, err = transport.New(transport.Config{
		BindAddr: cfg.ClusterAddr, AdvertiseAddr: advertise(cfg.AdvertiseHost, cfg.ClusterAddr),
		// Peers prove they hold the same root key before any Raft or RPC
		// traffic (transport/DESIGN.md).
		AuthKey: cfg.RootKey.Derive(kcrypto.LabelClusterAuth),
		Logger:  logger.Named("transport"), Metrics: reg,
		ServerTLS: cfg.ClusterServerTLS, ClientTLS: cfg.ClusterClientTLS,
		MaxFrameSize: cfg.ClusterMaxFrame,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster address %s: %w", cfg.ClusterAddr, err)
	}
	if cfg.RootKey == nil {
		return nil, errors.New("a node needs its root key")
	}
	n.trans.Handle(rpc.NodePing, func(context.Context, []byte) ([]byte, error) { return nil, nil })
	if err := n.registerRootKeyMetric(reg); err != nil {
		return nil, err
	}
	n.fsm = fsm.New(logger.Named("fsm"), fsm.WithSnapshotKey(cfg.RootKey.Derive(kcrypto.LabelSnapshotMAC)),
		// After loading a large catalogue, the memory of the decoding
		// and of the catalogue it replaced goes back to the system at
		// once (one collection; a million keys: ~1 GB).
		fsm.WithAfterLoad(releaseAfterLoadKeys, func() { go debug.FreeOSMemory() }))
	n.store, err = store.Open(store.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, Transport: n.trans, FSM: n.fsm, Timing: cfg.Timing,
		Errors: kms.WireErrors, Noop: fsm.NoopCommand(),
		Logger: logger, Metrics: reg, SnapshotThreshold: cfg.SnapshotThreshold, LogStore: cfg.RaftLogStore,
		PeerStopping: n.peerStopping,
	})
	if err != nil {
		return nil, err
	}
	hasState, err := n.store.HasState()
	if err != nil {
		return nil, err
	}
	if cfg.HSM != nil {
		if n.hsm, err = openHSM(cfg, reg, logger); err != nil {
			return nil, err
		}
	}
	n.svc, err = kms.New(kms.Config{
		Region: cfg.Region, RootKey: cfg.RootKey, FSM: n.fsm, Store: n.store, Transport: n.trans,
		Logger: logger, Metrics: reg, DataDir: cfg.DataDir, MaxStaleness: cfg.MaxStaleness,
		Clock: cfg.Clock, Servers: n.raftAddrs,
		HSM: n.hsm, HSMDomain: cfg.HSMDomain, HSMPeers: n.hsmPeers, NodeID: cfg.NodeID, Zone: cfg.Zone,
		Members: n.members, ServerLevels: n.serverLevels,
	})
	if err != nil {
		return nil, err
	}
	var hsmDomains []cluster.HSMDomain
	if st, ok := n.svc.HSMStatus(); ok {
		hsmDomains = hsmMeta(st)
	}

	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if cfg.Single {
		if !hasState {
			if err := n.store.BootstrapSelf(); err != nil {
				return nil, fmt.Errorf("bootstrap: %w", err)
			}
		}
	} else {
		n.gossip, err = cluster.New(cluster.Config{
			BindAddr: cfg.GossipAddr, AdvertiseAddr: advertise(cfg.AdvertiseHost, cfg.GossipAddr),
			Meta: cluster.Meta{
				ID: cfg.NodeID, Region: cfg.Region, Zone: cfg.Zone, Version: cfg.Version, Level: fsm.LogLevel,
				ClusterAddr: n.trans.Addr(), HTTPAddr: advertiseOr(cfg.AdvertiseHost, n.httpLn.Addr().String()),
				Bootstrapped: hasState, Expect: cfg.BootstrapExpect, HSM: hsmDomains,
			},
			Join:      cfg.Join,
			SecretKey: cfg.GossipKey,
			Logger:    logger.Named("gossip"),
			Fast:      cfg.FastGossip,
			Metrics:   reg,
			// Raft admits only members whose cluster port proves the
			// same root key (and passes mTLS when configured).
			VerifyPeer: n.verifyPeer,
		})
		if err != nil {
			return nil, fmt.Errorf("gossip address %s: %w", cfg.GossipAddr, err)
		}
		n.gossipRef.Store(n.gossip)
		r := raftAdapter{s: n.store}
		n.workers.Add(1)
		go func() {
			defer n.workers.Done()
			// Without --bootstrap-expect this only waits to be added by the
			// leader and then advertises Bootstrapped.
			if !hasState {
				if err := n.gossip.RunBootstrap(ctx, cfg.BootstrapExpect, r); err != nil && ctx.Err() == nil {
					logger.Error("bootstrap failed", "error", err)
				}
			}
			n.gossip.RunReconciler(ctx, r, cluster.ReconcileConfig{DeadServerTimeout: cfg.DeadServerTimeout,
				FinalizedLevel: n.fsm.FinalizedLevel})
		}()
	}

	var members api.Members
	if n.gossip != nil {
		members = n.gossip
	}
	apiCfg := api.Config{
		NodeID: cfg.NodeID, Service: n.svc, Raft: n.store, Members: members,
		Logger: logger, Registry: reg, Gatherer: reg, DataDir: cfg.DataDir,
		NonceCacheEntries: cfg.HTTPLimits.NonceCacheEntries, ConsoleIdleTimeout: cfg.ConsoleIdleTimeout,
	}
	if n.audit != nil {
		apiCfg.Audit = n.audit
	}
	apiSrv := api.New(apiCfg)
	var httpLn net.Listener
	n.http, httpLn = newHTTPServer(apiSrv, n.httpLn, cfg.HTTPLimits, reg)
	// TLS handshake failures and the like, in the node's log.
	n.http.ErrorLog = logger.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	go func() {
		var err error
		if cfg.HTTPTLS != nil {
			n.http.TLSConfig = cfg.HTTPTLS.Clone()
			err = n.http.ServeTLS(httpLn, "", "")
		} else {
			err = n.http.Serve(httpLn)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server stopped", "error", err)
		}
	}()
	if n.inst != nil {
		n.inst.serve(n, apiSrv.InstanceHandler(), reg)
	}
	var snaps *autosnap.Snapshotter
	if cfg.SnapshotInterval > 0 || cfg.SnapshotTicks != nil {
		retain := cfg.SnapshotRetain
		if retain == 0 {
			retain = 1
		}
		snaps, err = autosnap.New(autosnap.Config{
			Dir: cfg.SnapshotDir, Retain: retain, Command: cfg.SnapshotCommand, CommandTimeout: cfg.SnapshotCommandTimeout,
			Source: n.fsm, IsLeader: n.store.IsLeader, Logger: logger.Named("autosnap"), Registerer: reg,
		})
		if err != nil {
			return nil, err
		}
	}
	interval := cfg.SchedulerInterval
	if interval == 0 {
		interval = time.Second
	}
	n.workers.Add(4)
	go func() {
		defer n.workers.Done()
		n.watchRootKey(ctx)
	}()
	go func() {
		defer n.workers.Done()
		n.svc.RunHSM(ctx, cfg.HSMCheckInterval, n.publishHSM)
	}()
	go func() {
		defer n.workers.Done()
		n.svc.Run(ctx)
	}()
	go func() {
		defer n.workers.Done()
		n.svc.RunScheduler(ctx, interval)
	}()
	if snaps != nil {
		ticks := cfg.SnapshotTicks
		var stopTicker func()
		if ticks == nil {
			t := time.NewTicker(cfg.SnapshotInterval)
			ticks, stopTicker = t.C, t.Stop
		}
		n.workers.Add(1)
		go func() {
			defer n.workers.Done()
			if stopTicker != nil {
				defer stopTicker()
			}
			snaps.Run(ctx, ticks)
		}()
	}
	return n, nil
}

// raftAddrs lists the cluster addresses of the Raft configuration.
func (n *Node) raftAddrs() ([]string, error) {
	servers, err := n.store.Servers()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(servers))
	for i, sv := range servers {
		out[i] = sv.Addr
	}
	return out, nil
}

// HTTPAddr is the address the API listens on.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// Endpoint is the API's base URL (https when the API has TLS).
func (n *Node) Endpoint() string {
	if n.cfg.HTTPTLS != nil {
		return "https://" + n.HTTPAddr()
	}
	return "http://" + n.HTTPAddr()
}

// GossipAddr is the gossip address ("" for a single node).
func (n *Node) GossipAddr() string {
	if n.gossip == nil {
		return ""
	}
	return n.gossip.Addr()
}

// ClusterAddr is the Raft/RPC address.
func (n *Node) ClusterAddr() string { return n.trans.Addr() }

// ID is the node id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Service is the node's service core.
func (n *Node) Service() *kms.Service { return n.svc }

// Store is the node's Raft store.
func (n *Node) Store() *store.Store { return n.store }

// FSM is the node's catalogue.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Gossip is the node's membership (nil for a single node).
func (n *Node) Gossip() *cluster.Cluster { return n.gossip }

// peerStopping is the store's PeerStopping hook: gossip says the peer at
// this Raft address announced its stop.
func (n *Node) peerStopping(addr string) bool {
	g := n.gossipRef.Load()
	return g != nil && g.PeerStopping(addr)
}

// leaveTimeout bounds how long Stop waits for the leader to take this node
// out of the Raft configuration.
const leaveTimeout = 5 * time.Second

// Stop shuts down gracefully, in reverse start order: the API stops taking
// requests, a leader hands leadership over, the leader removes this node
// from the Raft configuration (graceful leave, cluster.LeaveRaft), Raft
// stops, the node leaves gossip (peers see "left", not "failed"), and the
// transport closes.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		if n.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n.http.Shutdown(ctx)
			cancel()
		} else if n.httpLn != nil {
			n.httpLn.Close()
		}
		n.inst.stop(true)
		if n.gossip != nil && n.store != nil {
			ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
			err := n.gossip.LeaveRaft(ctx, raftAdapter{s: n.store})
			cancel()
			switch {
			case errors.Is(err, cluster.ErrClusterStopping):
				n.log.Info("every other voter is stopping too: stopping as a member of the raft configuration; the cluster serves again when a quorum of its voters starts")
			case errors.Is(err, cluster.ErrLeaveBlocked):
				n.log.Warn("staying in the raft configuration: removing this node now would cost the cluster its quorum; the leader removes it after --dead-server-timeout")
			case err != nil:
				n.log.Warn("graceful leave: the leader did not remove this node from the raft configuration", "error", err)
			}
			// Still a member: tell the peers this stop is on purpose
			// before Raft stops, so that they do not log failing to reach
			// it as a fault.
			if err != nil {
				if err := n.gossip.AnnounceStop(time.Second); err != nil {
					n.log.Warn("announcing the stop to the peers", "error", err)
				}
			}
		}
		if n.cancel != nil {
			n.cancel()
		}
		n.workers.Wait()
		if n.store != nil {
			if err := n.store.Shutdown(); err != nil {
				n.log.Warn("raft shutdown", "error", err)
			}
		}
		if n.gossip != nil {
			if err := n.gossip.Leave(5 * time.Second); err != nil {
				n.log.Warn("gossip leave", "error", err)
			}
			n.gossip.Shutdown()
		}
		if n.trans != nil {
			n.trans.Close()
		}
		n.closeHSM()
		n.closeAudit()
	})
}

// Kill stops the node abruptly, like a crash: no leadership transfer, no
// gossip leave. The data dir stays as a crash leaves it.
func (n *Node) Kill() {
	n.stopOnce.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		if n.http != nil {
			n.http.Close()
		} else if n.httpLn != nil {
			n.httpLn.Close()
		}
		n.inst.stop(false)
		if n.gossip != nil {
			n.gossip.Shutdown()
		}
		if n.trans != nil {
			n.trans.Close()
		}
		n.workers.Wait()
		if n.store != nil {
			n.store.Kill()
		}
		// The process would have died and released the file (and its
		// PKCS#11 sessions); a restart in this process must be able to open
		// them again.
		n.closeHSM()
		n.closeAudit()
	})
}

func (n *Node) closeAudit() {
	if n.audit != nil {
		if err := n.audit.Close(); err != nil {
			n.log.Warn("closing the audit log", "error", err)
		}
	}
}

// raftAdapter lets the gossip layer drive Raft membership through the store.
type raftAdapter struct {
	s *store.Store
}

func (a raftAdapter) HasState() (bool, error)      { return a.s.HasState() }
func (a raftAdapter) IsLeader() bool               { return a.s.IsLeader() }
func (a raftAdapter) DemoteVoter(id string) error  { return a.s.DemoteVoter(id) }
func (a raftAdapter) RemoveServer(id string) error { return a.s.RemoveServer(id) }
func (a raftAdapter) TransferLeadership(toID, toAddr string) error {
	return a.s.TransferLeadership(toID, toAddr)
}

func (a raftAdapter) LeaderID() string {
	_, id := a.s.Leader()
	return id
}

func (a raftAdapter) AddVoter(id, addr string) error    { return a.s.AddVoter(id, addr) }
func (a raftAdapter) AddNonvoter(id, addr string) error { return a.s.AddNonvoter(id, addr) }

func (a raftAdapter) Bootstrap(servers []cluster.Server) error {
	out := make([]store.Server, len(servers))
	for i, s := range servers {
		out[i] = store.Server{ID: s.ID, Addr: s.Addr, Voter: s.Voter}
	}
	return a.s.Bootstrap(out)
}

func (a raftAdapter) Servers() ([]cluster.Server, error) {
	servers, err := a.s.Servers()
	if err != nil {
		return nil, err
	}
	out := make([]cluster.Server, len(servers))
	for i, s := range servers {
		out[i] = cluster.Server{ID: s.ID, Addr: s.Addr, Voter: s.Voter}
	}
	return out, nil
}

// advertise is host with the port of bind ("" when host is empty: the bind
// address is advertised as it is).
func advertise(host, bind string) string {
	if host == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(bind)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, port)
}

func advertiseOr(host, addr string) string {
	if a := advertise(host, addr); a != "" {
		return a
	}
	return addr
}
