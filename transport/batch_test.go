package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Tests of write coalescing: concurrent frames on one connection share a
// write, and a write that fails part-way through a batch still tells each
// caller exactly whether its frame left whole.

var errInjected = errors.New("injected write failure")

// faultConn is a real connection whose writes a test can hold and cut. Until
// gate is closed every Write waits (entered is signalled when the first one
// does); once limit bytes have gone through (limit < 0: never), a Write
// passes on only the part that fits and fails, and so does every later one.
type faultConn struct {
	net.Conn
	limit   int64
	gate    chan struct{}
	entered chan struct{}

	mu      sync.Mutex
	written int64
	writes  int
}

func newFaultConn(c net.Conn, limit int64, held bool) *faultConn {
	fc := &faultConn{Conn: c, limit: limit, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	if !held {
		close(fc.gate)
	}
	return fc
}

func (c *faultConn) Write(p []byte) (int, error) {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-c.gate
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.limit >= 0 && c.written+int64(len(p)) > c.limit {
		n, _ := c.Conn.Write(p[:c.limit-c.written])
		c.written += int64(n)
		return n, errInjected
	}
	n, err := c.Conn.Write(p)
	c.written += int64(n)
	return n, err
}

func (c *faultConn) stats() (writes int, written int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.written
}

// wrappedClientConn dials addr with cli and builds a clientConn whose writes
// go through a faultConn.
func wrappedClientConn(t *testing.T, cli *Transport, addr string, limit int64, held bool) (*clientConn, *faultConn) {
	t.Helper()
	conn, raw, err := cli.dial(context.Background(), addr, ProtoRPC)
	if err != nil {
		t.Fatal(err)
	}
	fc := newFaultConn(conn, limit, held)
	c := newClientConn(cli, &peer{}, addr, fc, raw)
	t.Cleanup(func() { c.fail(ErrClosed) })
	return c, fc
}

func (c *clientConn) pendingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

type callResult struct {
	i     int
	resp  []byte
	err   error
	retry bool
}

// indexed is a payload of size bytes that starts with i.
func indexed(i, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, uint32(i))
	for j := 4; j < size; j++ {
		b[j] = byte(i + j)
	}
	return b
}

// startHeldBatch makes call 0 on c and waits until the writer is held in its
// write, then starts calls 1..k, which queue behind it, and waits until all
// of them are registered. Closing fc.gate lets the writer go on; it then
// finds the k frames waiting.
func startHeldBatch(t *testing.T, c *clientConn, fc *faultConn, k, size int) <-chan callResult {
	t.Helper()
	results := make(chan callResult, k+1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	call := func(i int) {
		resp, err, retry := c.call(ctx, "m", indexed(i, size))
		results <- callResult{i, resp, err, retry}
	}
	go call(0)
	recv(t, fc.entered, "the writer to start writing frame 0")
	for i := 1; i <= k; i++ {
		go call(i)
	}
	waitFor(t, 5*time.Second, "calls to queue behind the held write", func() bool { return c.pendingCount() == k+1 })
	return results
}

// TestCall_ManyConcurrentMixedSizes: calls of very different sizes on one
// connection (small ones batch together, large ones exceed the batch bound)
// each get their own answer, whole; over plain TCP (writev) and mTLS (one
// coalesced buffer).
func TestCall_ManyConcurrentMixedSizes(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	for name, mod := range map[string]func(*Config){"plain": func(*Config) {}, "mTLS": mTLS(t, ca, ca, "node")} {
		t.Run(name, func(t *testing.T) { manyConcurrentMixedSizes(t, mod) })
	}
}

func manyConcurrentMixedSizes(t *testing.T, mod func(*Config)) {
	reg := prometheus.NewRegistry()
	srv := newTestTransport(t, mod, func(c *Config) { c.Metrics = reg })
	srv.Handle("echo", echo)
	cli := newTestTransport(t, mod)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sizes := []int{0, 1, 37, 512, 4 << 10, 70 << 10, 300 << 10}
	const calls = 30
	echoConcurrently(t, ctx, cli, srv.Addr(), 48, calls, func(w, i int) []byte {
		return indexed(w*calls+i, 4+sizes[(w+i)%len(sizes)])
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "kms_transport_accepted_conns_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if n := m.GetCounter().GetValue(); n != 1 {
				t.Fatalf("server accepted %v connections (%v), want all calls on one", n, m.GetLabel())
			}
		}
	}
}

// TestClient_ConcurrentFramesShareAWrite: frames that are ready while the
// writer is busy go out together, not one write each.
func TestClient_ConcurrentFramesShareAWrite(t *testing.T) {
	srv, cli := pair(t, map[string]Handler{"m": echo})
	const k = 20
	c, fc := wrappedClientConn(t, cli, srv.Addr(), -1, true)
	results := startHeldBatch(t, c, fc, k, 100)
	close(fc.gate)
	for range k + 1 {
		r := recv(t, results, "a call to return")
		if r.err != nil || !bytes.Equal(r.resp, indexed(r.i, 100)) {
			t.Fatalf("call %d: %v (resp %d bytes)", r.i, r.err, len(r.resp))
		}
	}
	if writes, _ := fc.stats(); writes > k/2 {
		t.Fatalf("%d frames took %d writes; want the %d queued ones to share a few", k+1, writes, k)
	}
}

// TestClient_WriteErrorMidBatch: a write that fails part-way through a batch
// reports the frames that left whole as written (the caller learns
// ErrConnLost: the peer may act on them) and the frame it cut, and those
// after it, as not delivered (ErrUnreachable). The cut falls inside a frame,
// or exactly between two.
func TestClient_WriteErrorMidBatch(t *testing.T) {
	const k, size = 10, 100
	frameLen := int64(len(encodeRequest(0, time.Second, "m", indexed(0, size))))
	for name, cut := range map[string]int64{"inside a frame": frameLen / 2, "between frames": 0} {
		t.Run(name, func(t *testing.T) {
			// Frame 0 alone, then one whole frame of the batch, then cut.
			limit := 2*frameLen + cut
			got := make(chan map[int]bool, 1)
			addr := fakeServer(t, func(conn net.Conn) {
				if rawServerAuth(conn, testAuthKey, 0) != nil {
					return
				}
				whole := map[int]bool{}
				for {
					body, err := readFrame(conn, defaultMaxSize)
					if err != nil {
						break
					}
					m, err := decodeMessage(body)
					if err != nil || m.kind != frameRequest || len(m.payload) != size {
						t.Errorf("server read a corrupt frame: %+v, %v", m, err)
						break
					}
					whole[int(binary.BigEndian.Uint32(m.payload))] = true
				}
				got <- whole
			})
			cli := newTestTransport(t)
			c, fc := wrappedClientConn(t, cli, addr, limit, true)
			results := startHeldBatch(t, c, fc, k, size)
			close(fc.gate)

			byCall := map[int]callResult{}
			for range k + 1 {
				r := recv(t, results, "a call to return")
				byCall[r.i] = r
			}
			whole := recv(t, got, "the server to see the connection end")
			if len(whole) != 2 || !whole[0] {
				t.Fatalf("server got whole frames %v; want frame 0 and one more (limit %d, frame %d bytes)", whole, limit, frameLen)
			}
			for i, r := range byCall {
				if whole[i] {
					// Left whole: may have been delivered, so never "not delivered".
					assertKind(t, r.err, ErrConnLost)
				} else {
					assertKind(t, r.err, ErrUnreachable)
				}
			}
		})
	}
}

// serveWrapped accepts one RPC connection for srv on a listener of its own and
// serves it through a faultConn, as srv would serve an accepted connection.
// done is closed when serving has ended.
func serveWrapped(t *testing.T, srv *Transport, limit int64, held bool) (addr string, fc chan *faultConn, done chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	fc, done = make(chan *faultConn, 1), make(chan struct{})
	go func() {
		defer close(done)
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		defer raw.Close()
		if rawServerAuth(raw, testAuthKey, 0) != nil {
			return
		}
		w := newFaultConn(raw, limit, held)
		fc <- w
		srv.serveRPC(w, raw)
	}()
	t.Cleanup(func() {
		ln.Close()
		srv.Close()
		<-done
	})
	return ln.Addr().String(), fc, done
}

// barrier is a handler that holds every call until release is closed,
// counting the calls that arrived and those that returned.
type barrier struct {
	release           chan struct{}
	arrived, returned atomic.Int32
}

func (b *barrier) handle(ctx context.Context, req []byte) ([]byte, error) {
	b.arrived.Add(1)
	defer b.returned.Add(1)
	select {
	case <-b.release:
		return req, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// releaseTogether starts k calls of "wait" (held by b) with payloads of
// size bytes, lets them all return while the server's first response write
// is held at the wrapped connection's gate, then opens the gate: the other
// responses are queued behind that write. It returns the calls' results
// and the wrapped server connection.
func releaseTogether(t *testing.T, cli *Transport, addr string, fcs chan *faultConn, b *barrier, k, size int) (chan callResult, *faultConn) {
	t.Helper()
	results := make(chan callResult, k)
	for i := range k {
		go func() {
			resp, err := cli.Call(context.Background(), addr, "wait", indexed(i, size))
			results <- callResult{i: i, resp: resp, err: err}
		}()
	}
	fc := recv(t, fcs, "the server connection")
	waitFor(t, 5*time.Second, "all handlers to start", func() bool { return b.arrived.Load() == int32(k) })
	close(b.release)
	recv(t, fc.entered, "the first response write")
	waitFor(t, 5*time.Second, "all handlers to return", func() bool { return b.returned.Load() == int32(k) })
	close(fc.gate)
	return results, fc
}

// TestServer_ConcurrentResponsesShareAWrite: responses finished while
// another is being written go out together.
func TestServer_ConcurrentResponsesShareAWrite(t *testing.T) {
	const k = 20
	b := &barrier{release: make(chan struct{})}
	srv := newTestTransport(t)
	srv.Handle("wait", b.handle)
	addr, fcs, _ := serveWrapped(t, srv, -1, true)
	cli := newTestTransport(t)
	results, fc := releaseTogether(t, cli, addr, fcs, b, k, 100)
	for range k {
		r := recv(t, results, "a call to return")
		if r.err != nil || !bytes.Equal(r.resp, indexed(r.i, 100)) {
			t.Fatalf("call %d: %v", r.i, r.err)
		}
	}
	if writes, _ := fc.stats(); writes > k/2 {
		t.Fatalf("%d responses took %d writes; want the queued ones to share a few", k, writes)
	}
}

// TestServer_WriteFailureClosesConnection: a response write that fails (here
// part-way through the third response, inside a batch) closes the
// connection: the callers whose responses left whole get them, every other
// caller sees ErrConnLost, a handler still running sees its context
// cancelled, and nothing more is written on the failed connection. No
// response is written after the failure, so the writer that saw it must
// close the connection itself.
func TestServer_WriteFailureClosesConnection(t *testing.T) {
	const k, size = 10, 100
	respLen := int64(len(encodeResponse(0, statusOK, indexed(0, size))))
	limit := 2*respLen + respLen/2
	b := &barrier{release: make(chan struct{})}
	hang := newBlocker(t)
	srv := newTestTransport(t)
	srv.Handle("wait", b.handle)
	srv.Handle("hang", hang.handle)
	addr, fcs, done := serveWrapped(t, srv, limit, true)
	cli := newTestTransport(t)

	hangErr := make(chan error, 1)
	go func() {
		_, err := cli.Call(context.Background(), addr, "hang", nil)
		hangErr <- err
	}()
	recv(t, hang.started, "the hanging handler to start")
	results, fc := releaseTogether(t, cli, addr, fcs, b, k, size)

	ok := 0
	for range k {
		r := recv(t, results, "a call to return")
		switch {
		case r.err == nil:
			if !bytes.Equal(r.resp, indexed(r.i, size)) {
				t.Fatalf("call %d got another call's answer", r.i)
			}
			ok++
		default:
			assertKind(t, r.err, ErrConnLost)
		}
	}
	if ok != 2 {
		t.Fatalf("%d calls got their answer; want the 2 whose responses were written whole", ok)
	}
	assertKind(t, recv(t, hangErr, "the hanging call to return"), ErrConnLost)
	recv(t, done, "the server connection to close")
	if got := recv(t, hang.ended, "the hanging handler's context to end"); !errors.Is(got, context.Canceled) {
		t.Fatalf("hanging handler's ctx: %v, want Canceled", got)
	}
	if _, written := fc.stats(); written != limit {
		t.Fatalf("%d bytes written; want exactly the %d before the failure", written, limit)
	}
}

// TestServer_WriteAfterFailureFails: once a write has failed, every later
// write on the connection fails too, without touching the connection.
func TestServer_WriteAfterFailureFails(t *testing.T) {
	srv := newTestTransport(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	fc := newFaultConn(a, 10, false)
	sc := &serverConn{t: srv, conn: fc, remote: "pipe", inflight: map[uint64]context.CancelFunc{}}
	if sc.write(encodeResponse(1, statusOK, make([]byte, 20))) {
		t.Fatal("write past the limit succeeded")
	}
	writes, _ := fc.stats()
	if sc.write(encodeResponse(2, statusOK, nil)) {
		t.Fatal("write after a failed write succeeded")
	}
	if w, _ := fc.stats(); w != writes {
		t.Fatalf("a write after the failure reached the connection (%d writes, then %d)", writes, w)
	}
}
