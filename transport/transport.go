package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// Protocol bytes: the first byte a client sends on a new connection (inside
// TLS when TLS is on), followed by the cluster authentication handshake
// (auth.go). The server echoes the byte back, with its proof, once it has
// accepted the connection; see DESIGN.md. An incompatible change of a wire
// format gets a new byte rather than a version field: these are the
// authenticated versions of the original 0x01 (Raft) and 0x02 (RPC), which
// carried no proof and are now refused.
const (
	ProtoRaft byte = 0x11 // first byte of a Raft connection
	ProtoRPC  byte = 0x12 // first byte of an internal RPC connection

	legacyProtoRaft byte = 0x01 // unauthenticated, before cluster authentication
	legacyProtoRPC  byte = 0x02
)

// Config configures a Transport. BindAddr and AuthKey are required.
type Config struct {
	BindAddr      string // "127.0.0.1:0" allowed
	AdvertiseAddr string // optional; default the listener's address (must not be 0.0.0.0)

	// AuthKey is the cluster authentication key (at least 32 bytes; a node
	// uses RootKey.Derive(crypto.LabelClusterAuth)). Every connection, both
	// directions, proves knowledge of it before any Raft or RPC traffic; a
	// peer with another key is refused with ErrPeerAuth. There is no mode
	// without it.
	AuthKey []byte

	// ServerTLS, when set, makes every accepted connection do a TLS handshake
	// before the protocol byte (mutual TLS when ClientAuth requires it).
	ServerTLS *tls.Config
	// ClientTLS, when set, is used for outgoing connections. An empty
	// ServerName is filled with the host part of the address dialed.
	ClientTLS *tls.Config

	Logger  hclog.Logger
	Metrics prometheus.Registerer // nil = no metrics

	// MaxFrameSize bounds one RPC frame body, in both directions. Default 64 MiB.
	// Every node of a cluster should use the same value.
	MaxFrameSize int
	// DialTimeout bounds connecting (TCP, TLS, protocol byte, authentication
	// and the echo). Default 5s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds, on the accepting side, the TLS handshake, the
	// protocol byte and the authentication. Default 5s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write on the connection: one frame, or a batch
	// of frames written together (see DESIGN.md); a peer that does not read
	// within it is treated as dead and its connection closed. Default 10s.
	WriteTimeout time.Duration
	// MaxConcurrentHandlers bounds the handlers running for one incoming
	// connection; requests beyond it are refused with ErrOverloaded (the
	// handler does not run). Default 512.
	MaxConcurrentHandlers int
}

// Transport is one listener carrying Raft streams and internal RPC, plus the
// client side of both. It is safe for concurrent use.
type Transport struct {
	cfg       Config
	logger    hclog.Logger
	metrics   *metrics
	ln        net.Listener
	advertise string

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop and connection goroutines (not handlers)

	handlersMu sync.RWMutex
	handlers   map[string]Handler

	stream *streamLayer

	poolMu sync.Mutex
	pool   map[string]*peer

	connsMu sync.Mutex
	conns   map[net.Conn]struct{} // raw TCP conns, accepted and dialed
	closed  bool

	closeOnce sync.Once
}

// New listens on cfg.BindAddr and starts accepting connections.
func New(cfg Config) (*Transport, error) {
	if cfg.BindAddr == "" {
		return nil, errors.New("transport: BindAddr is required")
	}
	if len(cfg.AuthKey) < minAuthKeyBytes {
		return nil, fmt.Errorf("transport: AuthKey of at least %d bytes is required (the cluster authentication key)", minAuthKeyBytes)
	}
	cfg.AuthKey = bytes.Clone(cfg.AuthKey)
	if cfg.MaxFrameSize == 0 {
		cfg.MaxFrameSize = defaultMaxSize
	}
	if cfg.MaxFrameSize < minFrameLimit || cfg.MaxFrameSize > maxFrameLimit {
		return nil, fmt.Errorf("transport: MaxFrameSize %d outside [%d, %d]", cfg.MaxFrameSize, minFrameLimit, maxFrameLimit)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxConcurrentHandlers <= 0 {
		cfg.MaxConcurrentHandlers = 512
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.Default().Named("transport")
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("transport: registering metrics: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen: %w", err)
	}
	advertise := cfg.AdvertiseAddr
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	if err := checkAdvertise(advertise); err != nil {
		ln.Close()
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:       cfg,
		logger:    cfg.Logger,
		metrics:   m,
		ln:        ln,
		advertise: advertise,
		ctx:       ctx,
		cancel:    cancel,
		handlers:  make(map[string]Handler),
		pool:      make(map[string]*peer),
		conns:     make(map[net.Conn]struct{}),
	}
	t.stream = newStreamLayer(t)
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

func checkAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("transport: advertise address %q: %w", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("transport: advertise address %q: bad port", addr)
	}
	if host == "" {
		return fmt.Errorf("transport: advertise address %q has no host; set AdvertiseAddr", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("transport: advertise address %q is unspecified; set AdvertiseAddr", addr)
	}
	return nil
}

// MaxRequest is the largest request body Call sends for method: what
// MaxFrameSize leaves after the frame's own fields.
func (t *Transport) MaxRequest(method string) int {
	return t.cfg.MaxFrameSize - requestFixed - len(method)
}

// Addr is the advertised host:port, the address peers use to reach this node.
func (t *Transport) Addr() string { return t.advertise }

// Close stops accepting, closes every connection (pooled, accepted, and the
// Raft streams handed out), cancels the contexts of running handlers and
// makes StreamLayer().Accept return an error. It does not wait for handlers
// to return. It is safe to call more than once.
func (t *Transport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.cancel()
		err = t.ln.Close()
		t.connsMu.Lock()
		t.closed = true
		conns := make([]net.Conn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		t.connsMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		t.wg.Wait()
	})
	return err
}

// track registers a raw connection so Close can close it. It returns false
// when the transport is closed; the caller then closes c itself.
func (t *Transport) track(c net.Conn) bool {
	t.connsMu.Lock()
	defer t.connsMu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c net.Conn) {
	t.connsMu.Lock()
	delete(t.conns, c)
	t.connsMu.Unlock()
}

// goTracked runs f as a connection goroutine that Close waits for. It returns
// false, without running f, once Close has begun.
func (t *Transport) goTracked(f func()) bool {
	t.connsMu.Lock()
	defer t.connsMu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		raw, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			// Typically EMFILE: back off instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.logger.Error("accept failed", "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-t.ctx.Done():
				return
			}
		}
		delay = 0
		// The handshake runs in its own goroutine under a deadline, so a slow
		// or silent client never holds up the accept loop.
		if !t.track(raw) || !t.goTracked(func() { t.handshake(raw) }) {
			t.untrack(raw)
			raw.Close()
			return
		}
	}
}

// handshake does, on an accepted connection: TLS (if configured), read the
// protocol byte, authenticate the peer, echo the byte, and hand the
// connection to Raft or the RPC server.
func (t *Transport) handshake(raw net.Conn) {
	remote := raw.RemoteAddr().String()
	deadline := time.Now().Add(t.cfg.HandshakeTimeout)
	raw.SetDeadline(deadline)
	fail := func(reason string, level hclog.Level, msg string, args ...any) {
		t.metrics.observeConn(reason)
		t.logger.Log(level, msg, append([]any{"remote", remote}, args...)...)
		t.untrack(raw)
		raw.Close()
	}

	conn := raw
	if t.cfg.ServerTLS != nil {
		// Every TLS connection opens with a handshake record (type 0x16). A
		// plaintext peer on a TLS port sends a protocol byte instead: refuse
		// it now rather than let the TLS stack wait for a record that never
		// comes, so the misconfigured peer learns at once.
		var first [1]byte
		if _, err := io.ReadFull(raw, first[:]); err != nil {
			fail("handshake", hclog.Debug, "no first byte", "error", err)
			return
		}
		if first[0] != tlsRecordHandshake {
			fail("tls", hclog.Warn, "plaintext connection on a TLS port, closing", "byte", first[0])
			return
		}
		tc := tls.Server(&prefixConn{Conn: raw, prefix: first[:]}, t.cfg.ServerTLS)
		ctx, cancel := context.WithDeadline(t.ctx, deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			// Warn: a peer with the wrong certificate is an operator problem.
			fail("tls", hclog.Warn, "TLS handshake failed", "error", err)
			return
		}
		conn = tc
	}

	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		// Silence until the deadline is suspicious; a TCP health check that
		// connects and closes is not.
		level := hclog.Debug
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			level = hclog.Warn
		}
		fail("handshake", level, "no protocol byte, closing", "error", err)
		return
	}
	switch b[0] {
	case ProtoRaft, ProtoRPC:
	case legacyProtoRaft, legacyProtoRPC:
		// An old node, or someone trying the cluster port without the key.
		// Closed without an answer: nothing it sends next is read.
		fail("auth", hclog.Warn, "unauthenticated cluster connection refused (protocol without cluster authentication), closing", "byte", b[0])
		return
	default:
		fail("unknown_protocol", hclog.Debug, "unknown protocol byte, closing", "byte", b[0])
		return
	}
	// Nothing is dispatched, and no proof is sent, before the client has
	// proven the cluster key. The echo of the protocol byte (with this
	// node's proof) tells the dialer the connection is accepted. Under TLS
	// 1.3 the client finishes its handshake before the server has verified
	// the client certificate, so without it a refused client would only
	// learn of the refusal after sending a request, and could not tell
	// "refused" from "lost after delivery".
	if af := t.serverAuth(conn, b[0]); af != nil {
		msg := "peer did not complete cluster authentication, closing"
		if af.refused {
			msg = "peer failed cluster authentication (different root key, or dialed another address), closing"
		}
		fail("auth", hclog.Warn, msg, "protocol", b[0], "error", af.err)
		return
	}
	raw.SetDeadline(time.Time{})

	switch b[0] {
	case ProtoRaft:
		t.metrics.observeConn("raft")
		t.stream.deliver(newTrackedConn(t, conn, raw))
	case ProtoRPC:
		t.metrics.observeConn("rpc")
		t.serveRPC(conn, raw)
	}
}

// dial connects to addr and performs the client half of the handshake. It
// returns the connection to use (TLS or plain) and the raw TCP connection,
// which is tracked. Any error means no byte of a request was sent.
//
// ctx here is never a Call's context (see getConn), so its expiry is reported
// as a plain timeout: wrapping context.DeadlineExceeded would make a caller
// believe its own deadline had passed.
func (t *Transport) dial(ctx context.Context, addr string, proto byte) (_, _ net.Conn, err error) {
	if t.ctx.Err() != nil {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	defer cancel()
	defer func() {
		switch {
		case err == nil:
		case t.ctx.Err() != nil:
			err = ErrClosed
		case ctx.Err() != nil:
			err = fmt.Errorf("connecting to %s timed out: %v", addr, err)
		}
	}()

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if !t.track(raw) {
		raw.Close()
		return nil, nil, ErrClosed
	}
	ok := false
	defer func() {
		if !ok {
			t.untrack(raw)
			raw.Close()
		}
	}()
	// Expiry or cancellation of ctx must interrupt blocking I/O too.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	conn := raw
	if t.cfg.ClientTLS != nil {
		cfg := t.cfg.ClientTLS
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, nil, err
			}
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	if err := t.clientAuth(conn, proto, addr); err != nil {
		return nil, nil, err
	}
	if !stop() {
		return nil, nil, ctx.Err()
	}
	ok = true
	return conn, raw, nil
}

// trackedConn is a connection handed to code outside the package (Raft).
// Closing it removes it from the set that Transport.Close closes.
type trackedConn struct {
	net.Conn
	t    *Transport
	raw  net.Conn
	once sync.Once
}

func newTrackedConn(t *Transport, conn, raw net.Conn) *trackedConn {
	return &trackedConn{Conn: conn, t: t, raw: raw}
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.t.untrack(c.raw) })
	return err
}

const tlsRecordHandshake = 0x16

// prefixConn replays bytes already read from Conn before reading more.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
