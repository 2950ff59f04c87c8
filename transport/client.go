package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Client side of the internal RPC.
//
// Each peer address gets one pooled connection, and concurrent Calls are
// multiplexed on it: every request carries an id, the peer answers in any
// order, and one reader goroutine routes answers to the waiting callers. We
// chose this over a pool of one-call-at-a-time connections because
//   - a burst of N concurrent calls costs no N TCP+TLS handshakes;
//   - a caller that gives up can cancel its request with a small frame
//     instead of closing (and so failing) a connection;
//   - the reader is always reading, so a peer that closes or restarts is
//     noticed at once and the next Call dials afresh, instead of a stale
//     pooled connection turning a request into "outcome unknown".
// The cost is head-of-line blocking behind a very large frame, which
// MaxFrameSize bounds.

// Call sends req to method on the node at addr and waits for the answer or
// for ctx to end. ctx's deadline travels with the request and becomes the
// remote handler's deadline. See the package errors for how to read a
// failure: errors.Is(err, ErrUnreachable) means the handler certainly did not
// run; errors.Is(err, ErrConnLost) means it may have.
func (t *Transport) Call(ctx context.Context, addr, method string, req []byte) (resp []byte, err error) {
	start := time.Now()
	defer func() { t.metrics.observeCall(method, classify(err), time.Since(start)) }()

	if len(method) == 0 || len(method) > maxMethodLen {
		return nil, fmt.Errorf("transport: invalid method name %q", method)
	}
	if size := requestFrameSize(method, req); size > t.cfg.MaxFrameSize {
		return nil, fmt.Errorf("transport: %s to %s: %w: request of %d bytes, limit %d", method, addr, ErrFrameTooLarge, size, t.cfg.MaxFrameSize)
	}
	// A connection found closed before our frame was handed to its writer
	// is retried on a new one: nothing was sent, so this is always safe.
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, notDelivered(method, addr, err)
		}
		c, err := t.getConn(ctx, addr)
		if err != nil {
			return nil, notDelivered(method, addr, err)
		}
		resp, err, retry := c.call(ctx, method, req)
		if retry && attempt < 2 {
			continue
		}
		return resp, err
	}
}

func classify(err error) string {
	var re *RemoteError
	switch {
	case err == nil:
		return resultOK
	case errors.As(err, &re):
		return resultRemoteError
	case errors.Is(err, ErrUnknownMethod):
		return resultUnknownMethod
	case errors.Is(err, ErrOverloaded):
		return resultOverloaded
	case errors.Is(err, ErrPeerAuth):
		return resultPeerAuth
	case errors.Is(err, ErrUnreachable):
		return resultUnreachable
	case errors.Is(err, ErrConnLost):
		return resultConnLost
	case errors.Is(err, ErrFrameTooLarge):
		return resultTooLarge
	default:
		return resultInvalid
	}
}

// peer is the pool slot for one address: at most one live connection and at
// most one dial in progress, which concurrent callers share.
type peer struct {
	mu   sync.Mutex
	conn *clientConn
	dial *dialAttempt
}

type dialAttempt struct {
	done chan struct{}
	conn *clientConn
	err  error
}

func (t *Transport) getConn(ctx context.Context, addr string) (*clientConn, error) {
	t.poolMu.Lock()
	p := t.pool[addr]
	if p == nil {
		p = &peer{}
		t.pool[addr] = p
	}
	t.poolMu.Unlock()

	p.mu.Lock()
	if c := p.conn; c != nil && c.alive() {
		p.mu.Unlock()
		return c, nil
	}
	a := p.dial
	if a == nil {
		// The dial belongs to the pool, not to this caller: it runs under
		// the transport's context, so a caller with a short deadline that
		// gives up does not fail the dial for the others.
		a = &dialAttempt{done: make(chan struct{})}
		if !t.goTracked(func() { t.dialPeer(p, addr, a) }) {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		p.dial = a
	}
	p.mu.Unlock()

	select {
	case <-a.done:
		return a.conn, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *Transport) dialPeer(p *peer, addr string, a *dialAttempt) {
	conn, raw, err := t.dial(t.ctx, addr, ProtoRPC)
	var c *clientConn
	if err != nil {
		t.logger.Debug("rpc dial failed", "addr", addr, "error", err)
	} else {
		c = newClientConn(t, p, addr, conn, raw)
	}
	p.mu.Lock()
	p.dial = nil
	if c != nil {
		p.conn = c
	}
	a.conn, a.err = c, err
	close(a.done)
	p.mu.Unlock()
}

// clientConn is one multiplexed RPC connection to a peer.
type clientConn struct {
	t    *Transport
	p    *peer
	addr string
	conn net.Conn // TLS or plain
	raw  net.Conn // tracked TCP conn

	// writeCh is unbuffered: a frame is handed over only when the writer is
	// ready to take it into the batch it is about to write. Until then the
	// caller may still give up knowing that nothing was sent.
	writeCh  chan outFrame
	cancelCh chan uint64 // best effort: a dropped cancel only lets a handler run to its deadline
	closed   chan struct{}
	nextID   atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*pendingCall
	err     error // why the connection closed; set before closed is closed
}

type outFrame struct {
	buf  []byte
	call *pendingCall
}

type pendingCall struct {
	resp    chan message // buffered 1: the reader never blocks on a caller
	written chan error   // buffered 1: the writer's verdict on this frame
}

func newClientConn(t *Transport, p *peer, addr string, conn, raw net.Conn) *clientConn {
	c := &clientConn{
		t: t, p: p, addr: addr, conn: conn, raw: raw,
		writeCh:  make(chan outFrame),
		cancelCh: make(chan uint64, 64),
		closed:   make(chan struct{}),
		pending:  make(map[uint64]*pendingCall),
	}
	if !t.goTracked(c.readLoop) || !t.goTracked(c.writeLoop) {
		c.fail(ErrClosed)
	}
	return c
}

func (c *clientConn) alive() bool {
	select {
	case <-c.closed:
		return false
	default:
		return true
	}
}

func (c *clientConn) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail closes the connection once; every waiting caller sees c.closed.
func (c *clientConn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.closed)
	c.mu.Unlock()

	if c.t.ctx.Err() == nil {
		c.t.logger.Debug("rpc connection closed", "addr", c.addr, "error", err)
	}
	c.raw.Close()
	c.t.untrack(c.raw)
	c.p.mu.Lock()
	if c.p.conn == c {
		c.p.conn = nil
	}
	c.p.mu.Unlock()
}

func (c *clientConn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// call runs one request on c. retry reports that the connection was found
// closed before the request was handed to the writer (nothing sent).
func (c *clientConn) call(ctx context.Context, method string, req []byte) (resp []byte, err error, retry bool) {
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, notDelivered(method, c.addr, context.DeadlineExceeded), false
		}
	}
	id := c.nextID.Add(1)
	pc := &pendingCall{resp: make(chan message, 1), written: make(chan error, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, notDelivered(method, c.addr, c.err), true
	}
	c.pending[id] = pc
	c.mu.Unlock()

	frame := encodeRequest(id, timeout, method, req)
	select {
	case c.writeCh <- outFrame{buf: frame, call: pc}:
	case <-c.closed:
		c.forget(id)
		return nil, notDelivered(method, c.addr, c.closeErr()), true
	case <-ctx.Done():
		c.forget(id)
		return nil, notDelivered(method, c.addr, ctx.Err()), false
	}

	// From here on the frame belongs to the writer: unless it reports a
	// failed write (an incomplete frame the peer cannot act on), the
	// request may have been delivered.
	written := pc.written
	for {
		select {
		case werr := <-written:
			if werr != nil {
				c.forget(id)
				return nil, notDelivered(method, c.addr, werr), false
			}
			written = nil
		case m := <-pc.resp:
			return c.result(method, m)
		case <-c.closed:
			select {
			case m := <-pc.resp:
				return c.result(method, m)
			default:
			}
			if written != nil {
				// The conn is closed, so the writer reports at once.
				if werr := <-written; werr != nil {
					return nil, notDelivered(method, c.addr, werr), false
				}
			}
			return nil, outcomeUnknown(method, c.addr, c.closeErr()), false
		case <-ctx.Done():
			c.forget(id)
			select {
			case m := <-pc.resp:
				return c.result(method, m)
			default:
			}
			if written != nil {
				select {
				case werr := <-written:
					if werr != nil {
						return nil, notDelivered(method, c.addr, fmt.Errorf("%w (%v)", ctx.Err(), werr)), false
					}
				default:
				}
			}
			// An expired deadline needs no cancel frame: the remote handler
			// has the same deadline. Explicit cancellation does.
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				select {
				case c.cancelCh <- id:
				default:
				}
			}
			return nil, outcomeUnknown(method, c.addr, ctx.Err()), false
		}
	}
}

func (c *clientConn) result(method string, m message) ([]byte, error, bool) {
	switch m.status {
	case statusOK:
		return m.payload, nil, false
	case statusError:
		return nil, &RemoteError{Method: method, Message: string(m.payload), Addr: c.addr}, false
	case statusUnknownMethod:
		return nil, fmt.Errorf("transport: %s on %s: %w", method, c.addr, ErrUnknownMethod), false
	default: // statusOverloaded; decodeMessage admits no other
		return nil, notDelivered(method, c.addr, ErrOverloaded), false
	}
}

// writeLoop is the connection's only writer. It takes one frame, then every
// other frame (request or cancel) that is ready without waiting, up to the
// batch bounds, and writes them together (batch.go). A call learns on
// pc.written whether its own frame left whole: with a batch, a write that
// fails part-way still sends nil to the frames before the cut, which the
// peer may act on, and the error only to the frame it cut and those after.
func (c *clientConn) writeLoop() {
	w := newBatchWriter(c.conn, c.t.cfg.WriteTimeout)
	var frames [][]byte
	var calls []*pendingCall // nil for a cancel frame
	for {
		size := 0
		add := func(buf []byte, pc *pendingCall) {
			frames = append(frames, buf)
			calls = append(calls, pc)
			size += len(buf)
		}
		select {
		case f := <-c.writeCh:
			add(f.buf, f.call)
		case id := <-c.cancelCh:
			add(encodeCancel(id), nil)
		case <-c.closed:
			return
		}
		yielded := false
	more:
		for len(frames) < maxBatchFrames && size < maxBatchBytes {
			select {
			case f := <-c.writeCh:
				add(f.buf, f.call)
			case id := <-c.cancelCh:
				add(encodeCancel(id), nil)
			default:
				if yielded {
					break more
				}
				// Once per batch, let callers that are already runnable
				// reach writeCh before we write (see batch.go).
				yielded = true
				runtime.Gosched()
			}
		}
		n, err := w.write(frames)
		splitWritten(frames, n, err, func(i int, werr error) {
			if calls[i] != nil {
				calls[i].written <- werr
			}
		})
		clear(frames) // keep no frame or call alive until the next batch
		clear(calls)
		frames, calls = frames[:0], calls[:0]
		if err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

func (c *clientConn) readLoop() {
	br := bufio.NewReaderSize(c.conn, 32<<10)
	for {
		body, err := readFrame(br, c.t.cfg.MaxFrameSize)
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		m, err := decodeMessage(body)
		if err == nil && m.kind != frameResponse {
			err = fmt.Errorf("%w: unexpected frame kind %d from server", errMalformed, m.kind)
		}
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		pc := c.pending[m.id]
		delete(c.pending, m.id)
		c.mu.Unlock()
		if pc != nil { // nil: an answer to a call that gave up
			pc.resp <- m
		}
	}
}
