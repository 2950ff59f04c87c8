package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/raftkms/raftkms/internal/node"
)

// devInstanceAddr is where dev mode serves the instance API unless
// --instance-addr says otherwise: a free loopback port.
const devInstanceAddr = "127.0.0.1:0"

// checkInstance checks the instance API's flags and parses
// --instance-advertise.
func (c *config) checkInstance() error {
	if (c.instanceTLSCertFile == "") != (c.instanceTLSKeyFile == "") {
		return errors.New("--instance-tls-cert-file and --instance-tls-key-file go together")
	}
	if c.dev && c.instanceAddr == "" {
		c.instanceAddr = devInstanceAddr
	}
	if c.instanceAddr == "" {
		if c.instanceAdvertise != "" || c.instanceTLSCertFile != "" {
			return errors.New("--instance-advertise and --instance-tls-cert-file configure the instance API: give its address with --instance-addr HOST:PORT")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(c.instanceAddr); err != nil {
		return fmt.Errorf("--instance-addr %q: want HOST:PORT (%v)", c.instanceAddr, err)
	}
	names, err := parseInstanceNames(c.instanceAdvertise)
	if err != nil {
		return err
	}
	c.instanceNames = names
	return nil
}

// parseInstanceNames splits --instance-advertise: comma-separated host
// names and IP addresses (an IPv6 address may be in brackets).
func parseInstanceNames(v string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if b, ok := strings.CutPrefix(n, "["); ok {
			n = strings.TrimSuffix(b, "]")
		}
		if net.ParseIP(n) == nil && !isHostName(n) {
			return nil, fmt.Errorf("--instance-advertise: %q is neither an IP address nor a host name (letters, digits, '-' and '.'; no port)", n)
		}
		out = append(out, n)
	}
	if v != "" && len(out) == 0 {
		return nil, errors.New("--instance-advertise names nothing")
	}
	return out, nil
}

// isHostName accepts a DNS name: dot-separated labels of 1-63 letters,
// digits and inner hyphens, 253 characters at most.
func isHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	return true
}

// devInstance writes what a client of the dev node's instance API needs:
// the cluster's instance CA as <data-dir>/instance-ca.pem, and in the
// credentials file InstanceEndpoint (host:port, no scheme: what the SDK's
// Endpoint takes) and InstanceCaFile (the CA's absolute path). Other fields
// of the file are kept. The port is new at every start, so the file is
// updated every time.
func devInstance(ctx context.Context, n *node.Node, dataDir, credPath string) (endpoint, caPath string, err error) {
	svc := n.Service()
	// A cluster initialized by an older version gets its CA from the
	// leader (this node) shortly after it starts.
	var pem string
	for {
		var ok bool
		if pem, ok = svc.InstanceCAPEM(); ok {
			break
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("the dev node has no instance CA: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if caPath, err = filepath.Abs(filepath.Join(dataDir, "instance-ca.pem")); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(caPath, []byte(pem), 0o644); err != nil {
		return "", "", fmt.Errorf("write the instance CA: %w", err)
	}
	endpoint = dialable(n.InstanceAddr())
	fields := map[string]json.RawMessage{}
	if b, err := os.ReadFile(credPath); err == nil {
		if err := json.Unmarshal(b, &fields); err != nil {
			return "", "", fmt.Errorf("credentials file %s: %w", credPath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	fields["InstanceEndpoint"], _ = json.Marshal(endpoint)
	fields["InstanceCaFile"], _ = json.Marshal(caPath)
	b, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		return "", "", err
	}
	b = append(b, '\n')
	if old, err := os.ReadFile(credPath); err == nil && bytes.Equal(old, b) {
		return endpoint, caPath, nil // a restart on the same port: nothing to change
	}
	if err := writeFileAtomic(credPath, b, 0o600); err != nil {
		return "", "", fmt.Errorf("write credentials: %w", err)
	}
	return endpoint, caPath, nil
}

// previousDevInstanceAddr is the instance endpoint a dev node's credentials
// file names, when it is a loopback address that is free to listen on again
// (a restart on the same data dir), else a free loopback port.
func previousDevInstanceAddr(credPath string) string {
	var creds struct{ InstanceEndpoint string }
	b, err := os.ReadFile(credPath)
	if err != nil || json.Unmarshal(b, &creds) != nil || !isLoopback(creds.InstanceEndpoint) {
		return devInstanceAddr
	}
	ln, err := net.Listen("tcp", creds.InstanceEndpoint)
	if err != nil {
		return devInstanceAddr
	}
	ln.Close()
	return creds.InstanceEndpoint
}

// writeFileAtomic replaces path with data: a reader sees the old file or
// the new one, never half of it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
