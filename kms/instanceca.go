package kms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// The instance endpoint's certificates. The cluster has one instance CA
// (fsm/instanceca.go): an ECDSA P-256 certificate, its private key stored
// only wrapped under the root key. Each node issues itself a short-lived
// serving certificate signed by it, in memory, and renews it before it
// expires; a client trusts every node with the CA alone (GetKmsInstance's
// CaCertificateChainPem). P-256 because every TLS stack the reference's
// SDKs use verifies it (the Go SDK verifies with crypto/tls and the CA as
// its only root).

const (
	// DefaultInstanceCertLifetime is how long a node's serving certificate
	// is valid; it is renewed after two thirds of it.
	DefaultInstanceCertLifetime = 30 * 24 * time.Hour
	// instanceCAValidity is the CA's own validity. Rotating the CA is not
	// supported yet (docs/SECURITY.md).
	instanceCAValidity = 10 * 365 * 24 * time.Hour
	// certBackdate starts a certificate's validity a little before its
	// issuer's clock, for clients whose clocks lag.
	certBackdate = 5 * time.Minute
)

// ErrInstanceCertUnavailable means a node has no serving certificate for the
// instance endpoint yet: the cluster is not initialized, or its instance CA
// has not reached this node. The TLS handshake fails with it.
var ErrInstanceCertUnavailable = errors.New("the instance endpoint has no certificate yet: the cluster is not initialized (kmsctl operator init), or its instance CA has not reached this node")

// newInstanceCA makes an instance CA: a self-signed P-256 certificate and its
// private key wrapped under the root key, bound to the certificate.
func newInstanceCA(root *kcrypto.RootKey, now time.Time, nodeID string) (fsm.InstanceCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fsm.InstanceCA{}, err
	}
	serial, err := randomSerial()
	if err != nil {
		return fsm.InstanceCA{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			// The serial tells one cluster's CA from another's in a trust store.
			CommonName:   "raftkms instance CA " + hex.EncodeToString(serial.Bytes()[:4]),
			Organization: []string{"raftkms"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(instanceCAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fsm.InstanceCA{}, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fsm.InstanceCA{}, err
	}
	defer clear(pk)
	wrapped, err := root.Wrap(pk, kcrypto.InstanceCAAAD(der))
	if err != nil {
		return fsm.InstanceCA{}, err
	}
	return fsm.InstanceCA{CertDER: der, WrappedKey: wrapped, CreatedAt: now.UnixMilli(), CreatedBy: nodeID}, nil
}

// randomSerial is a 128-bit positive serial number whose first byte is not
// zero (so its first four bytes name it).
func randomSerial() (*big.Int, error) {
	b, err := kcrypto.RandomBytes(16)
	if err != nil {
		return nil, err
	}
	b[0] |= 0x40
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b), nil
}

// InstanceCAPEM is the PEM of the cluster's instance CA, the one certificate
// a client of the instance endpoint trusts; false while the cluster has
// none.
func (s *Service) InstanceCAPEM() (string, bool) {
	ca, ok := s.fsm.InstanceCA()
	if !ok {
		return "", false
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.CertDER})), true
}

// ensureInstanceCA is the leader's duty for a cluster initialized before the
// instance endpoint existed: it makes the instance CA once. Concurrent
// proposals (a leadership change in between) are harmless: the first one
// applied wins, the others are refused with fsm.ErrInstanceCAExists.
func (s *Service) ensureInstanceCA(ctx context.Context, now time.Time) error {
	if initialized, rootMatches := s.Initialized(); !initialized || !rootMatches {
		return nil
	}
	if _, ok := s.fsm.InstanceCA(); ok {
		return nil
	}
	ca, err := newInstanceCA(s.root, now, s.cfg.NodeID)
	if err != nil {
		return err
	}
	_, err = s.propose(ctx, fsm.CmdSetInstanceCA, fsm.SetInstanceCACmd{Now: now.UnixMilli(), CA: ca})
	switch {
	case err == nil:
		s.log.Info("created the cluster's instance CA (the cluster had none)")
	case errors.Is(err, fsm.ErrInstanceCAExists):
		err = nil
	}
	return err
}

// InstanceCerts is a node's serving certificate for the instance endpoint,
// issued by the cluster's instance CA for the node's names and addresses.
// Its GetCertificate goes in the listener's tls.Config: each handshake gets
// the current certificate, and the first handshake after two thirds of its
// lifetime (by the service clock) gets a new one, so renewal needs no
// restart. The certificate and its key live only in memory.
type InstanceCerts struct {
	s        *Service
	dns      []string
	ips      []net.IP
	lifetime time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	caDER   []byte    // the CA certificate that signed cert
	renewAt time.Time // by the service clock
}

// InstanceCertificates returns the issuer of this node's serving
// certificates for names (host names and IP addresses), valid for lifetime
// (0: DefaultInstanceCertLifetime).
func (s *Service) InstanceCertificates(names []string, lifetime time.Duration) *InstanceCerts {
	if lifetime <= 0 {
		lifetime = DefaultInstanceCertLifetime
	}
	ic := &InstanceCerts{s: s, lifetime: lifetime}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ic.ips = append(ic.ips, ip)
		} else if n != "" {
			ic.dns = append(ic.dns, n)
		}
	}
	return ic
}

// GetCertificate is the listener's tls.Config.GetCertificate.
func (ic *InstanceCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return ic.Current()
}

// Current returns the serving certificate, issuing one when there is none,
// when it is due for renewal, or when the cluster's CA is not the one that
// signed it (a snapshot restore). Without a CA it is
// ErrInstanceCertUnavailable.
func (ic *InstanceCerts) Current() (*tls.Certificate, error) {
	ca, ok := ic.s.fsm.InstanceCA()
	if !ok {
		return nil, ErrInstanceCertUnavailable
	}
	now := ic.s.now()
	ic.mu.Lock()
	defer ic.mu.Unlock()
	sameCA := ic.cert != nil && bytes.Equal(ic.caDER, ca.CertDER)
	if sameCA && now.Before(ic.renewAt) {
		return ic.cert, nil
	}
	cert, err := ic.issue(ca, now)
	if err != nil {
		if sameCA && now.Before(ic.cert.Leaf.NotAfter) {
			// Still valid: serve it and try again at the next handshake.
			ic.s.log.Warn("could not renew the instance endpoint's certificate; serving the current one until it expires",
				"not_after", ic.cert.Leaf.NotAfter, "error", err)
			return ic.cert, nil
		}
		ic.s.log.Error("could not issue the instance endpoint's certificate", "error", err)
		return nil, err
	}
	life := cert.Leaf.NotAfter.Sub(now)
	ic.cert, ic.caDER, ic.renewAt = cert, ca.CertDER, now.Add(life*2/3)
	ic.s.log.Info("issued the instance endpoint's certificate", "dns", ic.dns, "ips", ic.ips,
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339), "renew_at", ic.renewAt.UTC().Format(time.RFC3339))
	return cert, nil
}

// issue signs a new serving certificate with the CA, whose key is unwrapped
// for this and dropped after.
func (ic *InstanceCerts) issue(ca *fsm.InstanceCA, now time.Time) (*tls.Certificate, error) {
	caCert, err := x509.ParseCertificate(ca.CertDER)
	if err != nil {
		return nil, fmt.Errorf("the cluster's instance CA certificate: %w", err)
	}
	pk, err := ic.s.root.Unwrap(ca.WrappedKey, kcrypto.InstanceCAAAD(ca.CertDER))
	if err != nil {
		return nil, fmt.Errorf("the cluster's instance CA key: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(pk)
	clear(pk)
	if err != nil {
		return nil, fmt.Errorf("the cluster's instance CA key does not parse")
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the cluster's instance CA key cannot sign")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(ic.lifetime)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("the cluster's instance CA expired on %s", caCert.NotAfter.UTC().Format(time.RFC3339))
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: ic.s.cfg.NodeID, Organization: []string{"raftkms"}},
		NotBefore:    now.Add(-certBackdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     ic.dns,
		IPAddresses:  ic.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.CertDER}, PrivateKey: key, Leaf: leaf}, nil
}
