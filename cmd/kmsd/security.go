package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// checkSecurity checks the TLS flags that go together, and refuses
// plaintext on a non-loopback address unless --insecure (or --dev) says so.
func (c config) checkSecurity() error {
	if (c.tlsCertFile == "") != (c.tlsKeyFile == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	set := 0
	for _, f := range []string{c.clusterCAFile, c.clusterCertFile, c.clusterKeyFile} {
		if f != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("mutual TLS on the cluster port needs all three of --cluster-ca-file, --cluster-cert-file and --cluster-key-file")
	}
	if c.dev || c.insecure {
		return nil
	}
	if plain := c.plaintextExposed(); len(plain) > 0 {
		return fmt.Errorf(`refusing to start: %s would listen without TLS on a non-loopback address, where anyone on the network could read and change the traffic.
Do one of:
  - use TLS: make a CA and a certificate per node with
        kmsctl operator tls create-ca DIR
        kmsctl operator tls create-cert --ca DIR --name NODE --ip IP OUTDIR
    then pass --tls-cert-file/--tls-key-file (API) and --cluster-ca-file/--cluster-cert-file/--cluster-key-file (cluster port);
  - bind to a loopback address (127.0.0.1);
  - or accept plaintext on the network with --insecure`, strings.Join(plain, " and "))
	}
	return nil
}

// plaintextExposed lists the API and cluster listeners that would carry
// plaintext on a non-loopback address.
func (c config) plaintextExposed() []string {
	var out []string
	if c.tlsCertFile == "" && !isLoopback(c.httpAddr) {
		out = append(out, "the API (--http-addr "+c.httpAddr+")")
	}
	if c.clusterCAFile == "" && !isLoopback(c.clusterAddr) {
		out = append(out, "the cluster port (--cluster-addr "+c.clusterAddr+")")
	}
	return out
}

// isLoopback reports whether a listen address stays on this machine. An
// empty host or 0.0.0.0 listens on every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// warnPlaintext logs a warning for every listener that carries plaintext
// beyond this machine (allowed by --insecure or --dev).
func warnPlaintext(c config, logger hclog.Logger) {
	for _, what := range c.plaintextExposed() {
		logger.Warn("INSECURE: " + what + " listens without TLS on a non-loopback address (--insecure); use TLS, see kmsd --help")
	}
	if c.gossipKeyFile == "" && !c.dev && !isLoopback(c.gossipAddr) {
		logger.Warn("gossip on a non-loopback address is not encrypted; anyone on the network can read membership and join; use --gossip-key-file", "gossip_addr", c.gossipAddr)
	}
}

// security is what the TLS and gossip flags load to.
type security struct {
	api           *tls.Config
	clusterServer *tls.Config
	clusterClient *tls.Config
	gossipKey     []byte
	// instance is the operator's certificate for the instance API (nil:
	// issued by the cluster's instance CA).
	instance *tls.Certificate
}

func loadSecurity(c config, logger hclog.Logger) (security, error) {
	var s security
	if c.tlsCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCertFile, c.tlsKeyFile)
		if err != nil {
			return s, fmt.Errorf("--tls-cert-file/--tls-key-file: %w", err)
		}
		s.api = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if c.clusterCAFile != "" {
		var err error
		if s.clusterServer, s.clusterClient, err = loadClusterTLS(c, logger); err != nil {
			return s, err
		}
	}
	if c.instanceTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.instanceTLSCertFile, c.instanceTLSKeyFile)
		if err != nil {
			return s, fmt.Errorf("--instance-tls-cert-file/--instance-tls-key-file: %w", err)
		}
		s.instance = &cert
	}
	if c.gossipKeyFile != "" {
		k, err := loadGossipKey(c.gossipKeyFile)
		if err != nil {
			return s, err
		}
		s.gossipKey = k
	}
	return s, nil
}

// loadClusterTLS builds mutual TLS for the cluster port: the server
// requires a client certificate signed by the CA, the client checks the
// server's against the same CA (and the address it dialed). TLS 1.3 only:
// every node runs this binary.
func loadClusterTLS(c config, logger hclog.Logger) (server, client *tls.Config, err error) {
	pem, err := os.ReadFile(c.clusterCAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--cluster-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("--cluster-ca-file %s: no PEM certificate in it", c.clusterCAFile)
	}
	cert, err := tls.LoadX509KeyPair(c.clusterCertFile, c.clusterKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--cluster-cert-file/--cluster-key-file: %w", err)
	}
	// Mistakes that would otherwise show up only as refused handshakes
	// later. Warnings, not errors: the peers decide.
	if leaf, perr := x509.ParseCertificate(cert.Certificate[0]); perr == nil {
		inter := x509.NewCertPool()
		for _, der := range cert.Certificate[1:] {
			if ic, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(ic)
			}
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				logger.Warn("the cluster certificate does not verify against --cluster-ca-file: peers that trust that CA will refuse this node",
					"cert", c.clusterCertFile, "error", err)
				break
			}
		}
		if host, _, err := net.SplitHostPort(c.clusterAddr); err == nil && host != "" {
			if err := leaf.VerifyHostname(host); err != nil {
				logger.Warn("the cluster certificate does not name this node's cluster address: peers that dial it will refuse the connection; add it with create-cert --ip",
					"cert", c.clusterCertFile, "host", host)
			}
		}
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client, nil
}

// loadGossipKey reads base64 of a 16, 24 or 32-byte AES key.
func loadGossipKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--gossip-key-file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("--gossip-key-file %s: not base64; make a key with: head -c 32 /dev/urandom | base64", path)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("--gossip-key-file %s: the key is %d bytes, it must be 16, 24 or 32; make one with: head -c 32 /dev/urandom | base64", path, len(key))
}

// prepareDataDir creates the data dir with mode 0700, or tightens one that
// exists to 0700: it holds the Raft log and snapshots (key material wrapped
// under the root key, the catalogue), the dev credentials and, in dev mode,
// the root key itself. A dir that cannot be tightened is a warning, or an
// error with --strict-permissions.
func prepareDataDir(dir string, strict bool, logger hclog.Logger) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		// The umask may have taken bits away (0700 stays 0700 or less);
		// make it exactly 0700.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data dir %s: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("data dir: %w", err)
	case !info.IsDir():
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	mode := info.Mode().Perm()
	if mode&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(dir, mode&0o700|0o700); err != nil {
		msg := fmt.Sprintf("the data dir %s is open to group or others (mode %04o) and could not be tightened: %v; run: chmod 700 %s", dir, mode, err, dir)
		if strict {
			return errors.New(msg + " (refusing to start: --strict-permissions)")
		}
		logger.Warn(msg)
		return nil
	}
	logger.Warn("tightened the data dir's permissions to 0700 (it holds the catalogue and credentials)", "dir", dir, "was", fmt.Sprintf("%04o", mode))
	return nil
}

// checkRootKeyFile warns, or with --strict-permissions refuses, when the
// root key file can be read or written by group or others: whoever reads
// it can unwrap every key of the cluster.
func checkRootKeyFile(path string, strict bool, logger hclog.Logger) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("root key file: %w", err)
	}
	mode := info.Mode().Perm()
	if mode&0o077 == 0 {
		return nil
	}
	msg := fmt.Sprintf("the root key file %s is accessible by group or others (mode %04o); whoever reads it can unwrap every key; run: chmod 600 %s", path, mode, path)
	if strict {
		return errors.New(msg + " (refusing to start: --strict-permissions)")
	}
	logger.Warn(msg)
	return nil
}
