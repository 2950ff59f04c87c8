package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// Cluster authentication: every connection, Raft or RPC, in both directions,
// proves that both ends hold Config.AuthKey (derived from the cluster root
// key) before a single byte of Raft or RPC traffic flows. See DESIGN.md,
// "Connection setup".
//
//	client → server  P | Nc                 (protocol byte, 32-byte random nonce)
//	server → client  Ns                     (32-byte random nonce; only for a known P)
//	client → server  MAC(client)
//	server → client  0x00                   (refused: proof wrong; then close)
//	              or P | MAC(server)        (accepted; the echo of P as before)
//
// MAC(role) = HMAC-SHA256(AuthKey, authLabel | role | P | len(addr) u16 | addr | Nc | Ns | binding)
//
//   - role ('c' or 's') keeps a proof of one side from being replayed as the
//     other's (reflection);
//   - both fresh nonces keep a recorded proof from being replayed;
//   - addr is the cluster address the client dialed, which the server
//     compares with its own advertised address: a node tricked into dialing
//     an impostor (say, an address gossip advertised) produces a proof that
//     the impostor cannot relay to a real node under another address;
//   - binding is 32 bytes of TLS keying material (RFC 5705) when the
//     connection runs under TLS, empty otherwise, so a proof made inside one
//     TLS session is worthless in another.
//
// The server proves second: a peer that has not proven the key gets no MAC
// of any kind from this node, only a nonce.
const (
	authNonceSize = 32
	authMACSize   = sha256.Size
	// authRefused is the server's answer to a wrong client proof. It is
	// never a protocol byte, so the client tells a refusal (a different
	// key: ErrPeerAuth) from a connection that merely broke.
	authRefused byte = 0x00

	authRoleClient byte = 'c'
	authRoleServer byte = 's'

	authLabel       = "raftkms cluster-port auth v1"
	tlsExportLabel  = "EXPORTER-raftkms-cluster-auth"
	minAuthKeyBytes = 32
)

// authProof computes MAC(role) of the handshake.
func authProof(key []byte, role, proto byte, addr string, nc, ns, binding []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(authLabel))
	m.Write([]byte{role, proto})
	m.Write(binary.BigEndian.AppendUint16(nil, uint16(len(addr))))
	m.Write([]byte(addr))
	m.Write(nc)
	m.Write(ns)
	m.Write(binding)
	return m.Sum(nil)
}

// channelBinding is the TLS session's exported keying material, or nil for
// a plain TCP connection.
func channelBinding(conn net.Conn) ([]byte, error) {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil, nil
	}
	cs := tc.ConnectionState()
	b, err := cs.ExportKeyingMaterial(tlsExportLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("TLS channel binding: %w", err)
	}
	return b, nil
}

func randomNonce() ([]byte, error) {
	n := make([]byte, authNonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, err
	}
	return n, nil
}

// authFailure says why the accepting side refused a connection during
// authentication; refused is true when the peer's proof was wrong (as
// opposed to the peer going silent or away).
type authFailure struct {
	refused bool
	err     error
}

// serverAuth runs the accepting side of the authentication after the
// protocol byte proto was read from conn. On success the connection has been
// accepted (P and the server's proof were sent). The caller enforces the
// deadline.
func (t *Transport) serverAuth(conn net.Conn, proto byte) *authFailure {
	nc := make([]byte, authNonceSize)
	if _, err := io.ReadFull(conn, nc); err != nil {
		return &authFailure{err: fmt.Errorf("reading client nonce: %w", err)}
	}
	ns, err := randomNonce()
	if err != nil {
		return &authFailure{err: err}
	}
	if _, err := conn.Write(ns); err != nil {
		return &authFailure{err: fmt.Errorf("writing server nonce: %w", err)}
	}
	binding, err := channelBinding(conn)
	if err != nil {
		return &authFailure{err: err}
	}
	mac := make([]byte, authMACSize)
	if _, err := io.ReadFull(conn, mac); err != nil {
		return &authFailure{err: fmt.Errorf("reading client proof: %w", err)}
	}
	want := authProof(t.cfg.AuthKey, authRoleClient, proto, t.advertise, nc, ns, binding)
	if !hmac.Equal(mac, want) {
		// Best effort: tell an honest peer with another key why, so it can
		// report ErrPeerAuth rather than a broken connection.
		conn.Write([]byte{authRefused})
		return &authFailure{refused: true, err: fmt.Errorf("%w: the peer's proof does not match this node's cluster key", ErrPeerAuth)}
	}
	reply := append([]byte{proto}, authProof(t.cfg.AuthKey, authRoleServer, proto, t.advertise, nc, ns, binding)...)
	if _, err := conn.Write(reply); err != nil {
		return &authFailure{err: fmt.Errorf("writing server proof: %w", err)}
	}
	return nil
}

// clientAuth runs the dialing side: it sends the protocol byte and proves
// the key for addr (the address dialed), then checks the server's proof.
// Any error means no byte of Raft or RPC traffic was sent. The caller
// enforces the deadline.
func (t *Transport) clientAuth(conn net.Conn, proto byte, addr string) error {
	nc, err := randomNonce()
	if err != nil {
		return err
	}
	if _, err := conn.Write(append([]byte{proto}, nc...)); err != nil {
		return fmt.Errorf("sending protocol byte: %w", err)
	}
	ns := make([]byte, authNonceSize)
	if _, err := io.ReadFull(conn, ns); err != nil {
		return fmt.Errorf("peer refused the connection: %w", err)
	}
	binding, err := channelBinding(conn)
	if err != nil {
		return err
	}
	if _, err := conn.Write(authProof(t.cfg.AuthKey, authRoleClient, proto, addr, nc, ns, binding)); err != nil {
		return fmt.Errorf("sending proof: %w", err)
	}
	var echo [1]byte
	if _, err := io.ReadFull(conn, echo[:]); err != nil {
		return fmt.Errorf("peer refused the connection: %w", err)
	}
	switch echo[0] {
	case proto:
	case authRefused:
		return fmt.Errorf("%w: %s refused this node's proof (its cluster key, i.e. its root key, differs, or %s is not its advertised address)", ErrPeerAuth, addr, addr)
	default:
		return fmt.Errorf("peer answered protocol byte %#x with %#x", proto, echo[0])
	}
	mac := make([]byte, authMACSize)
	if _, err := io.ReadFull(conn, mac); err != nil {
		return fmt.Errorf("reading the peer's proof: %w", err)
	}
	if !hmac.Equal(mac, authProof(t.cfg.AuthKey, authRoleServer, proto, addr, nc, ns, binding)) {
		return fmt.Errorf("%w: %s did not prove it holds this node's cluster key (its root key differs)", ErrPeerAuth, addr)
	}
	return nil
}
