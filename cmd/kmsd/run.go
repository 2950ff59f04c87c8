package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/cluster"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
	"github.com/raftkms/raftkms/transport"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// node is one running kmsd and everything it started, in start order.
type node struct {
	cfg     config
	log     hclog.Logger
	trans   *transport.Transport
	store   *store.Store
	gossip  *cluster.Cluster
	svc     *kms.Service
	http    *http.Server
	httpLn  net.Listener
	cancel  context.CancelFunc
	workers chan struct{}
}

func run(cfg config, stdout io.Writer) error {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "kmsd",
		Level:      hclog.LevelFromString(cfg.logLevel),
		JSONFormat: cfg.logJSON,
		Output:     os.Stderr,
	})
	if cfg.dev && cfg.dataDir == "" {
		dir, err := os.MkdirTemp("", "raftkms-dev-*")
		if err != nil {
			return err
		}
		cfg.dataDir = dir
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	root, err := loadRootKey(cfg, logger)
	if err != nil {
		return err
	}

	n, err := start(cfg, root, logger)
	if err != nil {
		return err
	}
	if cfg.dev {
		if err := n.devInit(stdout); err != nil {
			n.stop()
			return err
		}
	} else {
		fmt.Fprintf(stdout, "kmsd %s: node %s serving the API on http://%s (cluster %s, gossip %s)\n",
			version, cfg.nodeID, cfg.httpAddr, n.trans.Addr(), n.gossip.Addr())
	}

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	logger.Info("shutting down", "signal", s.String())
	go func() {
		// A second signal skips the graceful path.
		<-sig
		logger.Warn("second signal: exiting now")
		os.Exit(1)
	}()
	n.stop()
	return nil
}

func loadRootKey(cfg config, logger hclog.Logger) (*kcrypto.RootKey, error) {
	path := cfg.rootKeyFile
	if cfg.dev && path == "" {
		path = filepath.Join(cfg.dataDir, "root.key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			logger.Info("dev mode: generating a root key", "path", path)
			return kcrypto.GenerateRootKeyFile(path)
		}
	}
	return kcrypto.LoadRootKeyFile(path)
}

func start(cfg config, root *kcrypto.RootKey, logger hclog.Logger) (*node, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n := &node{cfg: cfg, log: logger, workers: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.stop()
		}
	}()

	var err error
	n.trans, err = transport.New(transport.Config{BindAddr: cfg.clusterAddr, Logger: logger.Named("transport"), Metrics: reg})
	if err != nil {
		return nil, fmt.Errorf("cluster address %s: %w", cfg.clusterAddr, err)
	}
	f := fsm.New(logger.Named("fsm"))
	timing := store.Timing{
		HeartbeatTimeout: cfg.raftTimeout, ElectionTimeout: cfg.raftTimeout,
		LeaderLeaseTimeout: cfg.raftTimeout / 2, CommitTimeout: 20 * time.Millisecond,
	}
	n.store, err = store.Open(store.Config{
		NodeID: cfg.nodeID, DataDir: cfg.dataDir, Transport: n.trans, FSM: f, Timing: timing,
		Errors: store.ErrorCodec{Encode: fsm.EncodeError, Decode: fsm.DecodeError},
		Logger: logger, Metrics: reg,
	})
	if err != nil {
		return nil, err
	}
	hasState, err := n.store.HasState()
	if err != nil {
		return nil, err
	}
	n.svc, err = kms.New(kms.Config{
		Region: cfg.region, RootKey: root, FSM: f, Store: n.store, Transport: n.trans,
		Logger: logger, Metrics: reg, DataDir: cfg.dataDir,
	})
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if cfg.dev {
		if !hasState {
			if err := n.store.BootstrapSelf(); err != nil {
				return nil, fmt.Errorf("bootstrap: %w", err)
			}
		}
		close(n.workers)
	} else {
		n.gossip, err = cluster.New(cluster.Config{
			BindAddr: cfg.gossipAddr,
			Meta: cluster.Meta{
				ID: cfg.nodeID, Region: cfg.region, Zone: cfg.zone, Version: version,
				ClusterAddr: n.trans.Addr(), HTTPAddr: cfg.httpAddr,
				Bootstrapped: hasState, Expect: cfg.bootstrapExpect,
			},
			Join:    cfg.joinAddrs(),
			Logger:  logger.Named("gossip"),
			Fast:    cfg.fastGossip,
			Metrics: reg,
		})
		if err != nil {
			return nil, fmt.Errorf("gossip address %s: %w", cfg.gossipAddr, err)
		}
		r := raftAdapter{n.store}
		go func() {
			defer close(n.workers)
			if cfg.bootstrapExpect > 0 && !hasState {
				if err := n.gossip.RunBootstrap(ctx, cfg.bootstrapExpect, r); err != nil && ctx.Err() == nil {
					logger.Error("bootstrap failed", "error", err)
				}
			}
			n.gossip.RunReconciler(ctx, r, cluster.ReconcileConfig{DeadServerTimeout: cfg.deadServerTimeout})
		}()
	}

	var members api.Members
	if n.gossip != nil {
		members = n.gossip
	}
	handler := api.New(api.Config{
		NodeID: cfg.nodeID, Service: n.svc, Raft: n.store, Members: members,
		Logger: logger, Registry: reg, Gatherer: reg, DataDir: cfg.dataDir,
	})
	n.httpLn, err = net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("http address %s: %w", cfg.httpAddr, err)
	}
	n.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := n.http.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server stopped", "error", err)
		}
	}()
	go n.watchRootKey(ctx)
	ok = true
	return n, nil
}

// watchRootKey warns, once the catalogue is known, when this node was
// started with a root key other than the cluster's: it can serve nothing.
func (n *node) watchRootKey(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if init, match := n.svc.Initialized(); init {
			if !match {
				n.log.Error("this node's root key is not the cluster's: restart it with the cluster's --root-key-file; until then it reports unhealthy")
			}
			return
		}
	}
}

// stop shuts down in reverse start order. A leader hands leadership over
// first; the node then leaves gossip so peers see "left", not "failed".
func (n *node) stop() {
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.http.Shutdown(ctx)
		cancel()
	}
	if n.cancel != nil {
		n.cancel()
		<-n.workers
	}
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
}

// devInit waits for the single dev node to lead, initializes the cluster
// on first start, and writes and prints the credentials.
func (n *node) devInit(stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.svc.LinearizableRead(ctx); err != nil {
		return fmt.Errorf("dev node did not become leader: %w", err)
	}
	credPath := filepath.Join(n.cfg.dataDir, "credentials.json")
	endpoint := "http://" + advertisedHTTP(n.cfg.httpAddr)
	if init, _ := n.svc.Initialized(); !init {
		res, err := n.svc.Init(ctx)
		if err != nil {
			return fmt.Errorf("initialize: %w", err)
		}
		creds := map[string]string{
			"AccessKeyId": res.AccessKeyID, "AccessKeySecret": res.AccessKeySecret,
			"Endpoint": endpoint, "InstanceId": res.InstanceID,
		}
		b, _ := json.MarshalIndent(creds, "", "  ")
		if err := os.WriteFile(credPath, append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("write credentials: %w", err)
		}
	}
	fmt.Fprintf(stdout, `raftkms dev node is ready.

  API endpoint:  %s
  Data dir:      %s
  Credentials:   %s

Try it:
  export KMS_CREDENTIALS=%s
  bin/kmsctl CreateKey --DKMSInstanceId "$(jq -r .InstanceId %s)" --Description demo
  bin/kmsctl Encrypt --KeyId <KeyId> --Plaintext "$(echo -n hello | base64)"

Stop with Ctrl-C. Without --data-dir the state is thrown away when the process ends.
`, endpoint, n.cfg.dataDir, credPath, credPath, credPath)
	return nil
}

// advertisedHTTP turns a bind address into one a client can dial.
func advertisedHTTP(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// raftAdapter lets the gossip layer drive Raft membership through the store.
type raftAdapter struct{ s *store.Store }

func (a raftAdapter) HasState() (bool, error) { return a.s.HasState() }
func (a raftAdapter) IsLeader() bool          { return a.s.IsLeader() }
func (a raftAdapter) AddVoter(id, addr string) error {
	return a.s.AddVoter(id, addr)
}
func (a raftAdapter) AddNonvoter(id, addr string) error { return a.s.AddNonvoter(id, addr) }
func (a raftAdapter) DemoteVoter(id string) error       { return a.s.DemoteVoter(id) }
func (a raftAdapter) RemoveServer(id string) error      { return a.s.RemoveServer(id) }

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
