package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/store"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func run(cfg config, stdout io.Writer) error {
	logger := newLogger(cfg.logLevel, cfg.logJSON, os.Stderr)
	raiseOpenFileLimit(logger)
	if err := applyGC(cfg.gcPercent, cfg.memoryLimit, logger); err != nil {
		return err
	}
	if headroom, _ := parseSize(cfg.gcHeadroom); headroom > 0 && os.Getenv("GOGC") == "" {
		defer startGCHeadroom(cfg.gcPercent, headroom, logger)()
	}
	if cfg.dev && cfg.dataDir == "" {
		dir, err := os.MkdirTemp("", "raftkms-dev-*")
		if err != nil {
			return err
		}
		cfg.dataDir = dir
		// A throwaway node: its state, root key and credentials go with it.
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				logger.Warn("could not remove the dev data dir", "dir", dir, "error", err)
			}
		}()
	}
	if err := prepareDataDir(cfg.dataDir, cfg.strictPermissions, logger); err != nil {
		return err
	}
	root, err := loadRootKey(cfg, logger)
	if err != nil {
		return err
	}
	sec, err := loadSecurity(cfg, logger)
	if err != nil {
		return err
	}
	warnPlaintext(cfg, logger)
	if cfg.dev && cfg.instanceAddr == devInstanceAddr {
		// A restarted dev node keeps its instance endpoint when it can.
		cfg.instanceAddr = previousDevInstanceAddr(filepath.Join(cfg.dataDir, "credentials.json"))
	}
	if cfg.debugAddr != "" {
		_, stopDebug, err := startDebug(cfg.debugAddr, logger)
		if err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
		defer stopDebug()
	}
	n, err := node.Start(node.Config{
		NodeID: cfg.nodeID, DataDir: cfg.dataDir,
		HTTPAddr: cfg.httpAddr, ClusterAddr: cfg.clusterAddr, GossipAddr: cfg.gossipAddr, AdvertiseHost: cfg.advertise,
		Join: cfg.joinAddrs(), BootstrapExpect: cfg.bootstrapExpect, Single: cfg.dev,
		Zone: cfg.zone, Region: cfg.region, Version: version, RootKey: root,
		Timing: store.Timing{
			HeartbeatTimeout: cfg.raftTimeout, ElectionTimeout: cfg.raftTimeout,
			LeaderLeaseTimeout: cfg.raftTimeout / 2, CommitTimeout: cfg.raftTimeout,
		},
		RaftLogStore: cfg.raftLogStore,
		FastGossip:   cfg.fastGossip, DeadServerTimeout: cfg.deadServerTimeout,
		MaxStaleness: cfg.maxStaleness, ConsoleIdleTimeout: cfg.consoleIdle, Logger: logger,
		HTTPTLS: sec.api, HTTPLimits: cfg.httpLimits(), ClusterServerTLS: sec.clusterServer, ClusterClientTLS: sec.clusterClient,
		GossipKey: sec.gossipKey, AuditLog: cfg.auditLog,
		HSM: cfg.hsm.tokenConfig(), HSMDomain: cfg.hsm.domain,
		InstanceAddr: cfg.instanceAddr, InstanceNames: cfg.instanceNames, InstanceTLSCert: sec.instance,
		SnapshotInterval: cfg.snapshot.interval, SnapshotDir: cfg.snapshot.dir, SnapshotRetain: cfg.snapshot.retain,
		SnapshotCommand: cfg.snapshot.command, SnapshotCommandTimeout: cfg.snapshot.commandTimeout,
	})
	if err != nil {
		return err
	}
	if cfg.dev {
		if err := devInit(n, cfg.dataDir, stdout); err != nil {
			n.Stop()
			return err
		}
	} else {
		fmt.Fprintf(stdout, "kmsd %s: node %s serving the API on %s (cluster %s, gossip %s) and the console on %s/console/\n",
			version, cfg.nodeID, n.Endpoint(), n.ClusterAddr(), n.GossipAddr(), n.Endpoint())
		if a := n.InstanceAddr(); a != "" {
			fmt.Fprintf(stdout, "kmsd %s: node %s serving the instance API on https://%s\n", version, cfg.nodeID, a)
		}
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
	n.Stop()
	logger.Info("stopped")
	return nil
}

func loadRootKey(cfg config, logger hclog.Logger) (*kcrypto.RootKey, error) {
	if cfg.hsm.seal == sealPKCS11 {
		return loadSealedRootKey(cfg, logger)
	}
	path := cfg.rootKeyFile
	if cfg.dev && path == "" {
		path = filepath.Join(cfg.dataDir, "root.key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			logger.Info("dev mode: generating a root key", "path", path)
			return kcrypto.GenerateRootKeyFile(path)
		}
	}
	if err := checkRootKeyFile(path, cfg.strictPermissions, logger); err != nil {
		return nil, err
	}
	return kcrypto.LoadRootKeyFile(path)
}

// devInit waits for the single dev node to lead, initializes the cluster on
// first start, writes the credentials and says how to use them.
func devInit(n *node.Node, dataDir string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc := n.Service()
	if err := svc.LinearizableRead(ctx); err != nil {
		return fmt.Errorf("dev node did not become leader: %w", err)
	}
	credPath := filepath.Join(dataDir, "credentials.json")
	scheme, _, _ := strings.Cut(n.Endpoint(), "://")
	endpoint := scheme + "://" + dialable(n.HTTPAddr())
	if init, _ := svc.Initialized(); !init {
		res, err := svc.Init(ctx)
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
	instanceLine := ""
	if n.InstanceAddr() != "" {
		ep, caPath, err := devInstance(ctx, n, dataDir, credPath)
		if err != nil {
			return err
		}
		instanceLine = fmt.Sprintf("  Instance API:  %s (https; CA: %s)\n", ep, caPath)
	}
	instance := "<InstanceId from the credentials file>"
	if b, err := os.ReadFile(credPath); err == nil {
		var c struct{ InstanceId string }
		if json.Unmarshal(b, &c) == nil && c.InstanceId != "" {
			instance = c.InstanceId
		}
	}
	fmt.Fprintf(stdout, `raftkms dev node is ready.

  API endpoint:  %s
  Console:       %s/console/ (sign in with the AccessKeyId and AccessKeySecret of the credentials file)
%s  Data dir:      %s
  Credentials:   %s

Try it (from the repository root):
  export KMS_CREDENTIALS=%s
  bin/kmsctl CreateKey --DKMSInstanceId %s --Description demo
  bin/kmsctl Encrypt --KeyId <KeyId from above> --Plaintext "$(echo -n hello | base64)"
  bin/kmsctl Decrypt --CiphertextBlob <CiphertextBlob from above>

Stop with Ctrl-C. Without --data-dir the state is thrown away when the process ends.
`, endpoint, endpoint, instanceLine, dataDir, credPath, credPath, instance)
	return nil
}

func (c config) httpLimits() node.HTTPLimits {
	return node.HTTPLimits{
		ReadHeaderTimeout: c.httpReadHeaderTimeout, ReadTimeout: c.httpReadTimeout,
		WriteTimeout: c.httpWriteTimeout, IdleTimeout: c.httpIdleTimeout, MaxConnections: c.maxConnections,
		NonceCacheEntries: c.nonceCacheEntries,
	}
}

// dialable turns a bind address into one a client can dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
