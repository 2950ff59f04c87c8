package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkms/raftkms/kms"
)

// instanceEndpoint is the node's HTTPS listener for the instance API
// (Config.InstanceAddr): the API's timeouts and connection cap, its own
// connection metrics, and a certificate issued by the cluster's instance CA
// (renewed at a handshake once due, kms.InstanceCerts) or given by the
// operator. TLS client certificates are requested, never required nor
// verified: the SDK presents its client key's certificate, and requests are
// authenticated by their signature.
type instanceEndpoint struct {
	ln    net.Listener
	srv   *http.Server
	certs *kms.InstanceCerts // nil with an operator's certificate
}

func listenInstance(addr string) (*instanceEndpoint, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("instance address %s: %w", addr, err)
	}
	return &instanceEndpoint{ln: ln}, nil
}

// serve starts the HTTPS server with handler h.
func (e *instanceEndpoint) serve(n *Node, h http.Handler, reg prometheus.Registerer) {
	cfg := n.cfg
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}
	if cfg.InstanceTLSCert != nil {
		tlsCfg.Certificates = []tls.Certificate{*cfg.InstanceTLSCert}
	} else {
		names := instanceNames(cfg.InstanceNames, cfg.AdvertiseHost, e.ln.Addr().String())
		e.certs = n.svc.InstanceCertificates(names, cfg.InstanceCertLifetime)
		// Before the cluster has its CA the handshake fails, saying so.
		tlsCfg.GetCertificate = e.certs.GetCertificate
	}
	var ln net.Listener
	e.srv, ln = newLimitedServer(h, e.ln, cfg.HTTPLimits, reg, instanceConnMetrics)
	e.srv.TLSConfig = tlsCfg
	e.srv.ErrorLog = n.log.Named("instance").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	go func() {
		if err := e.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("instance API server stopped", "error", err)
		}
	}()
}

// stop shuts the listener down: gracefully (in-flight requests finish) or
// at once. Nil-safe.
func (e *instanceEndpoint) stop(graceful bool) {
	switch {
	case e == nil:
	case e.srv == nil:
		e.ln.Close()
	case graceful:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.srv.Shutdown(ctx)
		cancel()
	default:
		e.srv.Close()
	}
}

// InstanceAddr is the address the instance API listens on ("" when off).
func (n *Node) InstanceAddr() string {
	if n.inst == nil {
		return ""
	}
	return n.inst.ln.Addr().String()
}

// instanceNames is what the node's instance certificate names: the given
// names, else the advertise host (or the listener's host, or this machine's
// name when it listens on every interface), plus 127.0.0.1, ::1 and
// localhost when that is a loopback name or the listener is on every
// interface.
func instanceNames(given []string, advertiseHost, listenAddr string) []string {
	if len(given) > 0 {
		return given
	}
	listenHost, _, _ := net.SplitHostPort(listenAddr)
	host := advertiseHost
	if host == "" {
		host = listenHost
	}
	var names []string
	loopback := isLoopbackHost(host)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			names = append(names, h)
		}
		loopback = true
	} else {
		names = append(names, host)
	}
	if loopback {
		names = append(names, "127.0.0.1", "::1", "localhost")
	}
	out := names[:0]
	seen := map[string]bool{}
	for _, n := range names {
		if k := strings.ToLower(n); !seen[k] {
			seen[k] = true
			out = append(out, n)
		}
	}
	return out
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
