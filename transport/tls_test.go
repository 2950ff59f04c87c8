package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var serial atomic.Int64

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a node certificate valid for 127.0.0.1, as server and client.
func (ca *testCA) issue(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// mTLS configures a node: its certificate comes from certCA, and it trusts
// peers whose certificates come from trustCA.
func mTLS(t *testing.T, certCA, trustCA *testCA, name string) func(*Config) {
	cert := certCA.issue(t, name)
	return func(c *Config) {
		c.ServerTLS = &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    trustCA.pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS13,
		}
		c.ClientTLS = &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      trustCA.pool,
			MinVersion:   tls.VersionTLS13,
		}
	}
}

func TestTLS_MutualRPCAndRaft(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	srv, cli := pair(t, map[string]Handler{"echo": echo}, mTLS(t, ca, ca, "node"))
	got, err := cli.Call(context.Background(), srv.Addr(), "echo", []byte("over mTLS"))
	if err != nil || string(got) != "over mTLS" {
		t.Fatalf("Call over mTLS: %q, %v", got, err)
	}

	nodes := newRaftCluster(t, 3, func(i int, c *Config) { mTLS(t, ca, ca, "raft-node")(c) })
	waitForLeader(t, nodes)
	applyAndCompare(t, nodes, 5)
}

// A node whose certificate comes from another CA is refused, on both
// protocols, and the refusal reads as "not delivered".
func TestTLS_ForeignCAClientIsRefused(t *testing.T) {
	ca, rogueCA := newTestCA(t, "cluster CA"), newTestCA(t, "rogue CA")
	var ran atomic.Int32
	srv := newTestTransport(t, mTLS(t, ca, ca, "server"))
	srv.Handle("echo", func(ctx context.Context, req []byte) ([]byte, error) { ran.Add(1); return req, nil })
	// The rogue trusts the cluster CA, so only the server's check can fail.
	rogue := newTestTransport(t, mTLS(t, rogueCA, ca, "rogue"))

	_, err := rogue.Call(context.Background(), srv.Addr(), "echo", nil)
	assertKind(t, err, ErrUnreachable)
	if ran.Load() != 0 {
		t.Fatal("handler ran for a refused client")
	}

	if c, err := rogue.StreamLayer().Dial(raft.ServerAddress(srv.Addr()), 5*time.Second); err == nil {
		c.Close()
		t.Fatal("raft stream from a foreign-CA node was accepted")
	}
	// The refused stream never reaches raft: the next accepted stream is a
	// legitimate one.
	friend := newTestTransport(t, mTLS(t, ca, ca, "friend"))
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := srv.StreamLayer().Accept()
		if err == nil {
			accepted <- c
		}
	}()
	good, err := friend.StreamLayer().Dial(raft.ServerAddress(srv.Addr()), 5*time.Second)
	if err != nil {
		t.Fatalf("legitimate raft dial: %v", err)
	}
	defer good.Close()
	c := recv(t, accepted, "the legitimate stream")
	defer c.Close()
	if c.RemoteAddr().String() != good.LocalAddr().String() {
		t.Fatalf("accepted %s, want the legitimate stream from %s", c.RemoteAddr(), good.LocalAddr())
	}
}

func TestTLS_ForeignCAServerIsRefused(t *testing.T) {
	ca, rogueCA := newTestCA(t, "cluster CA"), newTestCA(t, "rogue CA")
	rogue := newTestTransport(t, mTLS(t, rogueCA, ca, "rogue server"))
	rogue.Handle("echo", echo)
	cli := newTestTransport(t, mTLS(t, ca, ca, "client"))
	_, err := cli.Call(context.Background(), rogue.Addr(), "echo", nil)
	assertKind(t, err, ErrUnreachable)
	if _, err := cli.StreamLayer().Dial(raft.ServerAddress(rogue.Addr()), 5*time.Second); err == nil {
		t.Fatal("raft dial to a foreign-CA server succeeded")
	}
}

func TestTLS_PlaintextClientIsRefused(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	// Timeouts longer than the caller's deadline: only an immediate refusal
	// can beat the deadline.
	srv := newTestTransport(t, mTLS(t, ca, ca, "server"), func(c *Config) { c.HandshakeTimeout = time.Minute })
	srv.Handle("echo", echo)
	plain := newTestTransport(t, func(c *Config) { c.DialTimeout = time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := plain.Call(ctx, srv.Addr(), "echo", nil)
	assertKind(t, err, ErrUnreachable)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("refusal took the whole deadline: %v", err)
	}
}
