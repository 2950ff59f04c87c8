package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

func echo(_ context.Context, req []byte) ([]byte, error) { return req, nil }

// pair starts a server with handlers and a client transport.
func pair(t *testing.T, handlers map[string]Handler, mods ...func(*Config)) (srv, cli *Transport) {
	t.Helper()
	srv = newTestTransport(t, mods...)
	for m, h := range handlers {
		srv.Handle(m, h)
	}
	return srv, newTestTransport(t, mods...)
}

// assertKind checks the one question a caller asks of an error: did the
// handler run, or is it unknown?
func assertKind(t *testing.T, err error, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	for _, other := range []error{ErrUnreachable, ErrConnLost} {
		if other != want && errors.Is(err, other) {
			t.Fatalf("err = %v matches both %v and %v", err, want, other)
		}
	}
}

func TestCall_Echo(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{"echo": echo})
	for _, payload := range [][]byte{[]byte("hello"), nil, bytes.Repeat([]byte{0xab}, 3<<20)} {
		got, err := cli.Call(context.Background(), srv.Addr(), "echo", payload)
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("echo of %d bytes returned %d bytes", len(payload), len(got))
		}
	}
}

func TestCall_UnknownMethod(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{"echo": echo})
	_, err := cli.Call(context.Background(), srv.Addr(), "nope", nil)
	if !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("err = %v, want ErrUnknownMethod", err)
	}
	if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrConnLost) {
		t.Fatalf("unknown method must not look like a transport failure: %v", err)
	}
}

func TestCall_HandlerErrorIsRemoteError(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{
		"fail":  func(context.Context, []byte) ([]byte, error) { return nil, errors.New("key is disabled") },
		"panic": func(context.Context, []byte) ([]byte, error) { panic("bug") },
	})
	_, err := cli.Call(context.Background(), srv.Addr(), "fail", nil)
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("err = %T %v, want *RemoteError", err, err)
	}
	if re.Method != "fail" || re.Message != "key is disabled" || re.Addr != srv.Addr() {
		t.Fatalf("RemoteError = %+v", re)
	}

	_, err = cli.Call(context.Background(), srv.Addr(), "panic", nil)
	if !errors.As(err, &re) {
		t.Fatalf("panicking handler: err = %v, want *RemoteError", err)
	}
	// The node survived and the connection still works.
	if _, err := cli.Call(context.Background(), srv.Addr(), "fail", nil); !errors.As(err, &re) {
		t.Fatalf("after panic: %v", err)
	}
}

func TestCall_DeadlinePropagates(t *testing.T) {
	type seen struct {
		has       bool
		remaining time.Duration
	}
	srv, cli := pair(t, map[string]Handler{"deadline": func(ctx context.Context, _ []byte) ([]byte, error) {
		dl, ok := ctx.Deadline()
		var s seen
		s.has = ok
		if ok {
			s.remaining = time.Until(dl)
		}
		return fmt.Appendf(nil, "%t %d", s.has, s.remaining), nil
	}})
	parse := func(b []byte) (s seen) {
		var ns int64
		fmt.Sscanf(string(b), "%t %d", &s.has, &ns)
		s.remaining = time.Duration(ns)
		return s
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.Call(ctx, srv.Addr(), "deadline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := parse(resp); !s.has || s.remaining <= 0 || s.remaining > 3*time.Second {
		t.Fatalf("handler saw deadline %+v, want one within the caller's 3s", s)
	}

	resp, err = cli.Call(context.Background(), srv.Addr(), "deadline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := parse(resp); s.has {
		t.Fatalf("handler saw a deadline %v for a call without one", s.remaining)
	}
}

func TestCall_ClosedPortIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cli := newTestTransport(t)
	_, err = cli.Call(context.Background(), addr, "echo", nil)
	assertKind(t, err, ErrUnreachable)
}

// blocker is a handler that never returns on its own: it reports its start,
// then the reason its context ended, then waits for the test to end.
type blocker struct {
	started chan struct{}
	ended   chan error
	release chan struct{}
}

func newBlocker(t *testing.T) *blocker {
	b := &blocker{started: make(chan struct{}, 100), ended: make(chan error, 100), release: make(chan struct{})}
	t.Cleanup(func() { close(b.release) })
	return b
}

func (b *blocker) handle(ctx context.Context, _ []byte) ([]byte, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	b.ended <- ctx.Err()
	<-b.release
	return nil, nil
}

func TestCall_HungHandlerWithShortDeadlineIsConnLost(t *testing.T) {
	b := newBlocker(t)
	srv, cli := pair(t, map[string]Handler{"hang": b.handle})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := cli.Call(ctx, srv.Addr(), "hang", nil)
	assertKind(t, err, ErrConnLost)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	// The remote handler's context ended too, by the deadline that travelled.
	if got := recv(t, b.ended, "handler context to end"); !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("handler ctx ended with %v, want DeadlineExceeded", got)
	}
}

func TestCall_CancelReachesHandler(t *testing.T) {
	b := newBlocker(t)
	srv, cli := pair(t, map[string]Handler{"hang": b.handle})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctx, srv.Addr(), "hang", nil)
		errc <- err
	}()
	recv(t, b.started, "handler start")
	cancel()
	err := recv(t, errc, "Call to return")
	assertKind(t, err, ErrConnLost)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := recv(t, b.ended, "handler context to end"); !errors.Is(got, context.Canceled) {
		t.Fatalf("handler ctx ended with %v, want Canceled (no deadline was set)", got)
	}
}

func TestCall_ContextDoneBeforeSendIsUnreachable(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{"echo": echo})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := cli.Call(ctx, srv.Addr(), "echo", nil)
	assertKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCall_PeerClosingMidCallIsConnLost(t *testing.T) {
	b := newBlocker(t)
	srv, cli := pair(t, map[string]Handler{"hang": b.handle})
	errc := make(chan error, 1)
	go func() {
		_, err := cli.Call(context.Background(), srv.Addr(), "hang", nil)
		errc <- err
	}()
	recv(t, b.started, "handler start")
	srv.Close()
	err := recv(t, errc, "Call to return")
	assertKind(t, err, ErrConnLost)
	if got := recv(t, b.ended, "handler context to end"); !errors.Is(got, context.Canceled) {
		t.Fatalf("handler ctx ended with %v, want Canceled by Close", got)
	}
}

func TestCall_ManyConcurrent(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{"echo": echo})
	echoConcurrently(t, context.Background(), cli, srv.Addr(), 50, 40, func(w, i int) []byte {
		return fmt.Appendf(nil, "worker %d call %d", w, i)
	})
}

func TestCall_OverloadedPeerRefusesWithoutRunning(t *testing.T) {
	b := newBlocker(t)
	var ran atomic.Int32
	srv, cli := pair(t, map[string]Handler{
		"hang": b.handle,
		"echo": func(ctx context.Context, req []byte) ([]byte, error) { ran.Add(1); return req, nil },
	}, func(c *Config) { c.MaxConcurrentHandlers = 2 })
	for range 2 {
		go cli.Call(context.Background(), srv.Addr(), "hang", nil)
		recv(t, b.started, "handler start")
	}
	_, err := cli.Call(context.Background(), srv.Addr(), "echo", nil)
	assertKind(t, err, ErrUnreachable)
	if !errors.Is(err, ErrOverloaded) || ran.Load() != 0 {
		t.Fatalf("err = %v, ran = %d; want ErrOverloaded and no run", err, ran.Load())
	}
}

func TestCall_FrameLimits(t *testing.T) {
	small := func(c *Config) { c.MaxFrameSize = 4096 }
	srv, cli := pair(t, map[string]Handler{
		"echo": echo,
		"big":  func(context.Context, []byte) ([]byte, error) { return make([]byte, 8192), nil },
	}, small)

	_, err := cli.Call(context.Background(), srv.Addr(), "echo", make([]byte, 5000))
	if !errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrConnLost) {
		t.Fatalf("oversized request: err = %v, want ErrFrameTooLarge", err)
	}
	var re *RemoteError
	if _, err := cli.Call(context.Background(), srv.Addr(), "big", nil); !errors.As(err, &re) {
		t.Fatalf("oversized response: err = %v, want RemoteError", err)
	}

	// A client configured with a larger limit than the server: the server
	// drops the connection after the frame was sent, so the outcome is unknown.
	big := newTestTransport(t)
	_, err = big.Call(context.Background(), srv.Addr(), "echo", make([]byte, 8192))
	assertKind(t, err, ErrConnLost)
	// The server is still fine.
	if _, err := cli.Call(context.Background(), srv.Addr(), "echo", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestCall_ReconnectsAfterPeerRestart(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{"echo": echo})
	addr := srv.Addr()
	if _, err := cli.Call(context.Background(), addr, "echo", nil); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	srv2 := newTestTransport(t, func(c *Config) { c.BindAddr = addr })
	srv2.Handle("echo", echo)
	waitFor(t, 5*time.Second, "calls to reach the restarted peer", func() bool {
		_, err := cli.Call(context.Background(), addr, "echo", nil)
		if err != nil && !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrConnLost) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		return err == nil
	})
}

func TestClose(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{"echo": echo})
	if _, err := cli.Call(context.Background(), srv.Addr(), "echo", nil); err != nil {
		t.Fatal(err)
	}
	acceptErr := make(chan error, 1)
	go func() {
		_, err := cli.StreamLayer().Accept()
		acceptErr <- err
	}()
	if err := cli.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := recv(t, acceptErr, "Accept to return"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, err := cli.StreamLayer().Accept(); err == nil {
		t.Fatal("Accept after Close returned no error")
	}
	_, err := cli.Call(context.Background(), srv.Addr(), "echo", nil)
	assertKind(t, err, ErrUnreachable)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close: %v, want ErrClosed", err)
	}
	if _, err := cli.StreamLayer().Dial("127.0.0.1:1", time.Second); err == nil {
		t.Fatal("Dial after Close succeeded")
	}
	cli.Close() // idempotent
}

func TestClose_ClosesRaftStreams(t *testing.T) {
	srv, cli := newTestTransport(t), newTestTransport(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := srv.StreamLayer().Accept(); err == nil {
			accepted <- c
		}
	}()
	dialed, err := cli.StreamLayer().Dial(raft.ServerAddress(srv.Addr()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	in := recv(t, accepted, "the raft stream")
	// Raft's bytes pass through untouched.
	if _, err := dialed.Write([]byte("raft rpc")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "raft rpc" {
		t.Fatalf("read %q, %v", buf, err)
	}

	srv.Close()
	dialed.SetReadDeadline(time.Now().Add(10 * time.Second)) // safety net only
	if _, err := dialed.Read(buf); err == nil {
		t.Fatal("dialed raft stream still open after the server closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server Close did not close the accepted raft stream")
	}
	if _, err := in.Read(buf); err == nil {
		t.Fatal("accepted stream readable after Close")
	}
}

func TestStreamLayerClose_LeavesRPCRunning(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{"echo": echo})
	srv.StreamLayer().Close()
	if _, err := srv.StreamLayer().Accept(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept: %v, want ErrClosed", err)
	}
	if _, err := cli.Call(context.Background(), srv.Addr(), "echo", nil); err != nil {
		t.Fatalf("RPC after stream layer close: %v", err)
	}
}

func TestNew_Validates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no bind":             {},
		"unspecified listen":  {BindAddr: "0.0.0.0:0"},
		"unspecified advert":  {BindAddr: "127.0.0.1:0", AdvertiseAddr: "0.0.0.0:7000"},
		"advertise w/o port":  {BindAddr: "127.0.0.1:0", AdvertiseAddr: "10.0.0.1"},
		"frame limit too low": {BindAddr: "127.0.0.1:0", MaxFrameSize: 10},
		"no auth key":         {BindAddr: "127.0.0.1:0"},
		"short auth key":      {BindAddr: "127.0.0.1:0", AuthKey: make([]byte, 16)},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(name, "auth key") {
				cfg.AuthKey = testAuthKey
			}
			cfg.Logger = testLogger("transport")
			if tr, err := New(cfg); err == nil {
				tr.Close()
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	tr := newTestTransport(t, func(c *Config) { c.AdvertiseAddr = "node1.example:7000" })
	if tr.Addr() != "node1.example:7000" || tr.StreamLayer().Addr().String() != "node1.example:7000" {
		t.Fatalf("Addr = %s / %s", tr.Addr(), tr.StreamLayer().Addr())
	}
}

// rawConn opens a plain TCP connection to tr, bypassing the client.
func rawConn(t *testing.T, tr *Transport) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a safety net, not synchronization
	return c
}

// expectClosedByPeer reads until the server closes the connection.
func expectClosedByPeer(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server did not close the connection")
	}
}

func TestServer_HostilePeers(t *testing.T) {
	srv := newTestTransport(t, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	srv.Handle("echo", echo)
	cli := newTestTransport(t)

	// A client that connects and says nothing does not hold up others...
	silent := rawConn(t, srv)
	if _, err := cli.Call(context.Background(), srv.Addr(), "echo", nil); err != nil {
		t.Fatalf("call while a silent client is connected: %v", err)
	}
	// ...and is dropped after HandshakeTimeout.
	expectClosedByPeer(t, silent)

	t.Run("unknown protocol byte", func(t *testing.T) {
		c := rawConn(t, srv)
		c.Write([]byte{0x7f})
		if n, _ := io.ReadFull(c, make([]byte, 1)); n != 0 {
			t.Fatal("server echoed an unknown protocol byte")
		}
	})

	cases := map[string][]byte{
		"oversized length":   {0xff, 0xff, 0xff, 0xff, 1, 2, 3},
		"unknown kind":       append(binary.BigEndian.AppendUint32(nil, 9), 0x09, 0, 0, 0, 0, 0, 0, 0, 1),
		"response to server": encodeResponse(1, statusOK, nil),
		"truncated request":  encodeRequest(1, 0, "echo", []byte("abc"))[:10],
	}
	for name, garbage := range cases {
		t.Run(name, func(t *testing.T) {
			c := rawConn(t, srv)
			if got, err := rawClientAuth(c, testAuthKey, ProtoRPC, srv.Addr()); err != nil || got != ProtoRPC {
				t.Fatalf("no protocol echo: %#x, %v", got, err)
			}
			c.Write(garbage)
			if strings.HasPrefix(name, "truncated") {
				c.(*net.TCPConn).CloseWrite()
			}
			expectClosedByPeer(t, c)
		})
	}

	t.Run("duplicate in-flight id", func(t *testing.T) {
		b := newBlocker(t)
		srv.Handle("hang", b.handle)
		c := rawConn(t, srv)
		if _, err := rawClientAuth(c, testAuthKey, ProtoRPC, srv.Addr()); err != nil {
			t.Fatal(err)
		}
		c.Write(encodeRequest(5, 0, "hang", nil))
		recv(t, b.started, "handler start")
		c.Write(encodeRequest(5, 0, "hang", nil))
		expectClosedByPeer(t, c)
		if got := recv(t, b.ended, "handler ctx to end"); !errors.Is(got, context.Canceled) {
			t.Fatalf("handler ctx: %v", got)
		}
	})

	if _, err := cli.Call(context.Background(), srv.Addr(), "echo", []byte("still up")); err != nil {
		t.Fatalf("server unusable after hostile peers: %v", err)
	}
}

// fakeServer accepts one connection at a time and runs script on it.
func fakeServer(t *testing.T, script func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				script(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestClient_HostileServers(t *testing.T) {
	handshake := func(c net.Conn) bool { return rawServerAuth(c, testAuthKey, 0) == nil }
	tests := []struct {
		name   string
		script func(net.Conn)
		want   error
	}{
		{"closes before echo", func(c net.Conn) {}, ErrUnreachable},
		// Times out on DialTimeout, which is not the caller's deadline.
		{"never echoes", func(c net.Conn) { io.Copy(io.Discard, c) }, ErrUnreachable},
		{"echoes wrong byte", func(c net.Conn) { rawServerAuth(c, testAuthKey, ProtoRaft) }, ErrUnreachable},
		{"garbage after request", func(c net.Conn) {
			if handshake(c) {
				io.ReadFull(c, make([]byte, 4)) // the request is on the wire
				c.Write([]byte("\x00\x00\x00\x0agarbage!!!"))
				io.Copy(io.Discard, c)
			}
		}, ErrConnLost},
		{"huge frame after request", func(c net.Conn) {
			if handshake(c) {
				io.ReadFull(c, make([]byte, 4))
				c.Write([]byte{0x7f, 0xff, 0xff, 0xff})
				io.Copy(io.Discard, c)
			}
		}, ErrConnLost},
		{"closes after request", func(c net.Conn) {
			if handshake(c) {
				io.ReadFull(c, make([]byte, 4))
			}
		}, ErrConnLost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.script)
			cli := newTestTransport(t, func(c *Config) { c.DialTimeout = 300 * time.Millisecond })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := cli.Call(ctx, addr, "echo", []byte("x"))
			assertKind(t, err, tc.want)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("client waited for its deadline instead of noticing: %v", err)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	srvReg, cliReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	srv := newTestTransport(t, func(c *Config) { c.Metrics = srvReg })
	srv.Handle("echo", echo)
	cli := newTestTransport(t, func(c *Config) { c.Metrics = cliReg })
	for range 3 {
		if _, err := cli.Call(context.Background(), srv.Addr(), "echo", nil); err != nil {
			t.Fatal(err)
		}
	}
	cli.Call(context.Background(), srv.Addr(), "missing", nil)

	families, err := prometheus.Gatherers{srvReg, cliReg}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				got[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"kms_transport_rpc_total,method=echo,result=ok":                         3,
		"kms_transport_rpc_total,method=missing,result=unknown_method":          1,
		"kms_transport_rpc_duration_seconds,method=echo":                        3,
		"kms_transport_rpc_handled_total,method=echo,result=ok":                 3,
		"kms_transport_rpc_handled_total,method=_unknown,result=unknown_method": 1,
		"kms_transport_accepted_conns_total,protocol=rpc":                       1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
}

func TestClose_LeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ca := newTestCA(t, "cluster CA")
	for name, mod := range map[string]func(*Config){"plain": func(*Config) {}, "mTLS": mTLS(t, ca, ca, "node")} {
		start := func() *Transport {
			cfg := Config{BindAddr: "127.0.0.1:0", AuthKey: testAuthKey, Logger: testLogger(name)}
			mod(&cfg)
			tr, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return tr
		}
		srv, cli := start(), start()
		srv.Handle("echo", echo)
		for range 10 {
			if _, err := cli.Call(context.Background(), srv.Addr(), "echo", nil); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		// A raft stream nobody accepts, and a client stuck mid-handshake.
		if _, err := cli.StreamLayer().Dial(raft.ServerAddress(srv.Addr()), 5*time.Second); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		silent, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		cli.Close()
		srv.Close()
	}
	waitFor(t, 10*time.Second, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}
