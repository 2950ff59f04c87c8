// Command kmsd is the raftkms server: one node of a Raft-replicated key
// management service that speaks the Alibaba Cloud KMS OpenAPI.
//
// It holds flags and wiring only; the logic lives in the packages it
// starts (transport, store, cluster, kms, api).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
)

type config struct {
	dev               bool
	snapshot          snapshotFlags
	nodeID            string
	dataDir           string
	httpAddr          string
	clusterAddr       string
	advertise         string
	gossipAddr        string
	join              string
	bootstrapExpect   int
	zone              string
	region            string
	rootKeyFile       string
	logLevel          string
	logJSON           bool
	raftTimeout       time.Duration
	raftLogStore      string
	deadServerTimeout time.Duration
	maxStaleness      time.Duration
	consoleIdle       time.Duration
	fastGossip        bool

	auditLog        string
	tlsCertFile     string
	tlsKeyFile      string
	clusterCAFile   string
	clusterCertFile string
	clusterKeyFile  string
	gossipKeyFile   string
	insecure        bool

	strictPermissions bool

	httpReadHeaderTimeout time.Duration
	httpReadTimeout       time.Duration
	httpWriteTimeout      time.Duration
	httpIdleTimeout       time.Duration
	maxConnections        int

	hsm hsmConfig

	instanceAddr        string
	instanceAdvertise   string
	instanceNames       []string // parsed from instanceAdvertise
	instanceTLSCertFile string
	instanceTLSKeyFile  string

	nonceCacheEntries int
	debugAddr         string
	gcPercent         int
	memoryLimit       string
	gcHeadroom        string

	showVersion bool
}

// errShowVersion is parseFlags' answer to --version.
var errShowVersion = errors.New("show version")

const usage = `kmsd — a raftkms node.

Quick start (one node, everything generated):
  kmsd --dev

A node of a cluster:
  kmsd --node-id n1 --data-dir /var/lib/raftkms --root-key-file root.key \
       --http-addr 10.0.0.1:9700 --cluster-addr 10.0.0.1:9701 --gossip-addr 10.0.0.1:9702 \
       --bootstrap-expect 3 --join 10.0.0.2:9702,10.0.0.3:9702

Make a root key (every node of a cluster uses the same one):
  head -c 32 /dev/urandom | base64 > root.key && chmod 600 root.key

Attach an HSM (PKCS#11) to serve the keys of hardware KMS instances
(see: kmsd hsm --help for enrolling tokens in a domain and sealing the root key):
  kmsd ... --hsm-module /usr/lib/softhsm/libsofthsm2.so --hsm-token-label node1 \
       --hsm-pin-file pin.txt --hsm-domain prod [--seal pkcs11]

Serve the instance API (what the KMS Instance SDK speaks; HTTPS with a certificate
from the cluster's own CA, which GetKmsInstance returns as CaCertificateChainPem):
  kmsd ... --instance-addr 10.0.0.1:9443 [--instance-advertise kms1.example,10.0.0.1]

Secure a cluster (HTTPS API, mutual TLS between nodes, encrypted gossip):
  kmsctl operator tls create-ca tls
  kmsctl operator tls create-cert --ca tls --name n1 --ip 10.0.0.1 tls
  head -c 32 /dev/urandom | base64 > gossip.key && chmod 600 gossip.key
  kmsd ... --tls-cert-file tls/n1.crt --tls-key-file tls/n1.key \
       --cluster-ca-file tls/ca.crt --cluster-cert-file tls/n1.crt --cluster-key-file tls/n1.key \
       --gossip-key-file gossip.key --audit-log /var/log/raftkms/audit.log

Flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("kmsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	host, _ := os.Hostname()
	fs.BoolVar(&c.dev, "dev", false, "run a single development node: Raft bootstrapped, root key generated, cluster initialized, credentials written to <data-dir>/credentials.json")
	fs.StringVar(&c.nodeID, "node-id", "", "unique id of this node (default: the host name; \"dev\" in dev mode)")
	fs.StringVar(&c.dataDir, "data-dir", "", "directory for the Raft log, snapshots and node state (dev mode: a fresh temporary directory)")
	fs.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:9700", "address of the client API (HTTP)")
	fs.StringVar(&c.clusterAddr, "cluster-addr", "127.0.0.1:9701", "address for Raft and internal RPC between nodes")
	fs.StringVar(&c.advertise, "advertise-addr", "", "host or IP other nodes and clients use to reach this node, when it listens on 0.0.0.0 or behind NAT")
	fs.StringVar(&c.gossipAddr, "gossip-addr", "127.0.0.1:9702", "address for gossip membership (TCP and UDP)")
	fs.StringVar(&c.join, "join", "", "gossip addresses of other nodes, host:port[,host:port...]")
	fs.IntVar(&c.bootstrapExpect, "bootstrap-expect", 0, "bootstrap a new Raft cluster once this many servers see each other")
	fs.StringVar(&c.zone, "zone", "", "availability zone of this node (voters are spread across zones)")
	fs.StringVar(&c.region, "region", "local", "region name used in ARNs")
	fs.StringVar(&c.rootKeyFile, "root-key-file", "", "file holding base64 of the 32-byte cluster root key (dev mode: generated in the data dir)")
	fs.StringVar(&c.logLevel, "log-level", "info", "trace, debug, info, warn or error")
	fs.BoolVar(&c.logJSON, "log-json", false, "write logs as JSON lines")
	fs.DurationVar(&c.raftTimeout, "raft-timeout", time.Second, "Raft heartbeat and election timeout (failover takes about this long)")
	fs.StringVar(&c.raftLogStore, "raft-log-store", "", "Raft log store of a new data dir: wal (append-only segments, one fsync per append) or boltdb; default wal; a data dir keeps the one it has (docs/OPERATIONS.md, \"The Raft log store\")")
	fs.DurationVar(&c.deadServerTimeout, "dead-server-timeout", 0, "remove a server from Raft after it has been failed or gone this long (default 5m)")
	fs.DurationVar(&c.maxStaleness, "max-staleness", 5*time.Second, "a follower that has not heard from the leader for this long catches up before serving encrypt/decrypt, or refuses (the bound on how long a disabled key can still be used)")
	fs.DurationVar(&c.consoleIdle, "console-idle-timeout", kms.DefaultConsoleIdleTimeout, "the browser console (https://<http-addr>/console/) signs a person out after this long without a request (1m to 12h; a session ends after 12h whatever its use)")
	fs.BoolVar(&c.fastGossip, "fast-gossip", false, "use short gossip probe intervals (tests, loopback clusters)")
	fs.StringVar(&c.auditLog, "audit-log", "", "append one hash-chained JSON line per request to this file (check it with: kmsctl operator audit verify FILE)")
	fs.StringVar(&c.tlsCertFile, "tls-cert-file", "", "PEM certificate (chain) for the API: serve HTTPS")
	fs.StringVar(&c.tlsKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&c.clusterCAFile, "cluster-ca-file", "", "PEM CA certificate for the cluster port: peers must present a certificate it signed (mutual TLS for Raft and internal RPC)")
	fs.StringVar(&c.clusterCertFile, "cluster-cert-file", "", "PEM certificate of this node on the cluster port (server and client), signed by --cluster-ca-file")
	fs.StringVar(&c.clusterKeyFile, "cluster-key-file", "", "PEM private key of --cluster-cert-file")
	fs.StringVar(&c.gossipKeyFile, "gossip-key-file", "", "file holding base64 of a 16, 24 or 32-byte key that encrypts gossip (the same on every node): head -c 32 /dev/urandom | base64")
	fs.BoolVar(&c.insecure, "insecure", false, "allow the API or cluster port on a non-loopback address without TLS (traffic, including credentials' use and key material between nodes, is then readable on the network)")
	fs.DurationVar(&c.httpReadHeaderTimeout, "http-read-header-timeout", node.DefaultHTTPReadHeaderTimeout, "API: time a client has to send a request's headers")
	fs.DurationVar(&c.httpReadTimeout, "http-read-timeout", node.DefaultHTTPReadTimeout, "API: time a client has to send a whole request, headers and body (a body trickled slowly is cut off)")
	fs.DurationVar(&c.httpWriteTimeout, "http-write-timeout", node.DefaultHTTPWriteTimeout, "API: time from the end of a request's headers to the end of its answer; keep it above --http-read-timeout plus 30s (the request timeout)")
	fs.DurationVar(&c.httpIdleTimeout, "http-idle-timeout", node.DefaultHTTPIdleTimeout, "API: close a keep-alive connection after it has waited this long for its next request")
	fs.IntVar(&c.maxConnections, "max-connections", node.DefaultHTTPMaxConnections, "API: connections held at most; at the cap a new one displaces the longest-idle (then the oldest silent) connection, and is refused only when every held connection is running a request")
	fs.IntVar(&c.nonceCacheEntries, "nonce-cache-entries", api.DefaultNonceCacheEntries, "API: signature nonces remembered at most (11–21 bytes each, outside the Go heap); a node refuses signed requests with 429 rather than forget a nonce still inside the ±15 min signature window, so size it to the signed requests per second this node serves × 1,150")
	fs.IntVar(&c.gcPercent, "gc-percent", DefaultGCPercent, "garbage collector target (Go's GOGC; the GOGC variable wins when set): heap growth between collections, in percent; higher spends less CPU on collection for more memory")
	fs.StringVar(&c.gcHeadroom, "gc-headroom", DefaultGCHeadroom, "how far the heap may grow past the live heap between collections on a large catalogue: the percent is lowered from --gc-percent, down to 50, once the live heap is above a quarter of this; e.g. 1GiB; 0: off")
	fs.StringVar(&c.memoryLimit, "memory-limit", "", "soft limit of the Go heap (GOMEMLIMIT; the variable wins when set), e.g. 2GiB; default 60% of the cgroup's or the machine's memory; 0: none")
	fs.StringVar(&c.debugAddr, "debug-addr", "", "serve Go's profiler (pprof) at http://ADDR/debug/pprof/ for performance work; off by default; loopback only unless --insecure")
	fs.BoolVar(&c.strictPermissions, "strict-permissions", false, "refuse to start when the root key file is readable or writable by group or others (default: a warning), or when the data dir cannot be tightened to 0700")
	fs.StringVar(&c.instanceAddr, "instance-addr", "", "address of the instance API (HTTPS, what the KMS Instance SDK speaks); empty: off (dev mode: a free loopback port)")
	fs.StringVar(&c.instanceAdvertise, "instance-advertise", "", "host names and IP addresses, comma-separated, that this node's instance API certificate names (default: the --advertise-addr host, else the --instance-addr host; plus 127.0.0.1 and localhost when loopback)")
	fs.StringVar(&c.instanceTLSCertFile, "instance-tls-cert-file", "", "PEM certificate (chain) for the instance API, instead of one issued by the cluster's instance CA")
	fs.StringVar(&c.instanceTLSKeyFile, "instance-tls-key-file", "", "PEM private key of --instance-tls-cert-file")
	c.hsm.addFlags(fs)
	c.snapshot.addFlags(fs)
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.showVersion {
		return c, errShowVersion
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if err := checkLogLevel(c.logLevel); err != nil {
		return c, err
	}
	if c.nodeID == "" {
		c.nodeID = host
		if c.dev {
			c.nodeID = "dev"
		}
	}
	if !c.dev {
		if c.dataDir == "" {
			return c, fmt.Errorf("--data-dir is required (or use --dev for a throwaway node)")
		}
		if c.rootKeyFile == "" && c.hsm.seal != sealPKCS11 {
			return c, fmt.Errorf("--root-key-file is required; make one with: head -c 32 /dev/urandom | base64 > root.key")
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--http-read-header-timeout", c.httpReadHeaderTimeout}, {"--http-read-timeout", c.httpReadTimeout},
		{"--http-write-timeout", c.httpWriteTimeout}, {"--http-idle-timeout", c.httpIdleTimeout},
	} {
		if d.v <= 0 {
			return c, fmt.Errorf("%s must be a positive duration such as 30s", d.flag)
		}
	}
	if c.debugAddr != "" && !isLoopback(c.debugAddr) && !c.insecure {
		return c, fmt.Errorf("--debug-addr %s is not a loopback address: the profiler has no authentication; use 127.0.0.1:PORT (or --insecure)", c.debugAddr)
	}
	if c.gcPercent < 10 {
		return c, fmt.Errorf("--gc-percent must be at least 10 (Go's default is 100; kmsd's %d)", DefaultGCPercent)
	}
	if _, err := memoryLimit(c.memoryLimit); err != nil {
		return c, err
	}
	if c.gcHeadroom != "0" {
		if _, err := parseSize(c.gcHeadroom); err != nil {
			return c, fmt.Errorf("--gc-headroom %q is not a size such as 512MiB or 0 (off)", c.gcHeadroom)
		}
	}
	if c.nonceCacheEntries < 1024 {
		return c, fmt.Errorf("--nonce-cache-entries must be at least 1024")
	}
	if c.maxConnections < 1 {
		return c, fmt.Errorf("--max-connections must be 1 or more")
	}
	if c.bootstrapExpect < 0 {
		return c, fmt.Errorf("--bootstrap-expect must be 0 or more")
	}
	if c.consoleIdle < kms.MinConsoleIdleTimeout || c.consoleIdle > kms.MaxConsoleIdleTimeout {
		return c, fmt.Errorf("--console-idle-timeout must be between %s and %s", kms.MinConsoleIdleTimeout, kms.MaxConsoleIdleTimeout)
	}
	if c.raftTimeout < 50*time.Millisecond {
		return c, fmt.Errorf("--raft-timeout must be at least 50ms")
	}
	if c.raftLogStore != "" && c.raftLogStore != store.LogStoreWAL && c.raftLogStore != store.LogStoreBolt {
		return c, fmt.Errorf("--raft-log-store must be %s or %s", store.LogStoreWAL, store.LogStoreBolt)
	}
	if err := c.checkSecurity(); err != nil {
		return c, err
	}
	if err := c.checkInstance(); err != nil {
		return c, err
	}
	if err := c.hsm.check(&c); err != nil {
		return c, err
	}
	if err := c.snapshot.check(); err != nil {
		return c, err
	}
	return c, nil
}

func (c config) joinAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hsm" {
		os.Exit(runHSMCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err == flag.ErrHelp {
		os.Exit(0)
	}
	if err == errShowVersion {
		// The log level says which builds it can replace and be replaced
		// by in a rolling upgrade (docs/OPERATIONS.md).
		fmt.Printf("kmsd %s (log level %d)\n", version, fsm.LogLevel)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsd:", err)
		os.Exit(2)
	}
	if err := run(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kmsd:", err)
		os.Exit(1)
	}
}
