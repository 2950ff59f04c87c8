package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
)

// Handler serves one RPC method. req is the opaque request payload (callers
// encode with msgpack); the handler may keep it. ctx carries the caller's
// deadline and is cancelled when the caller gives up, the connection drops or
// the transport closes. A returned error reaches the caller as *RemoteError
// with only its message, so errors the caller must act on belong in the
// response payload.
type Handler func(ctx context.Context, req []byte) ([]byte, error)

// Handle registers h for method. Method names are 1..255 bytes. Registering
// the same method twice, an invalid name or a nil handler panics: these are
// wiring mistakes, as with http.ServeMux.
func (t *Transport) Handle(method string, h Handler) {
	if len(method) == 0 || len(method) > maxMethodLen {
		panic(fmt.Sprintf("transport: invalid method name %q", method))
	}
	if h == nil {
		panic("transport: nil handler for " + method)
	}
	t.handlersMu.Lock()
	defer t.handlersMu.Unlock()
	if _, dup := t.handlers[method]; dup {
		panic("transport: handler already registered for " + method)
	}
	t.handlers[method] = h
}

func (t *Transport) handler(method string) Handler {
	t.handlersMu.RLock()
	defer t.handlersMu.RUnlock()
	return t.handlers[method]
}

// serverConn is the accepting side of one RPC connection. One goroutine reads
// frames; each request runs in its own goroutine; responses are written in
// whatever order handlers finish, batched by write.
type serverConn struct {
	t      *Transport
	conn   net.Conn
	remote string

	wmu     sync.Mutex
	wq      [][]byte // responses waiting for the writer
	writing bool     // a goroutine is writing and will take wq
	wfailed bool     // a write failed: the connection is closing
	// Owned by the goroutine that set writing.
	w     *batchWriter
	batch [][]byte

	mu       sync.Mutex
	inflight map[uint64]context.CancelFunc
}

func (t *Transport) serveRPC(conn, raw net.Conn) {
	sc := &serverConn{t: t, conn: conn, remote: raw.RemoteAddr().String(), inflight: make(map[uint64]context.CancelFunc)}
	ctx, cancel := context.WithCancel(t.ctx)
	defer func() {
		cancel() // handlers of a dropped connection see ctx.Done()
		conn.Close()
		t.untrack(raw)
	}()
	br := bufio.NewReaderSize(conn, 32<<10)
	for {
		body, err := readFrame(br, t.cfg.MaxFrameSize)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.logger.Debug("rpc connection ended", "remote", sc.remote, "error", err)
			}
			return
		}
		m, err := decodeMessage(body)
		if err != nil {
			t.logger.Debug("closing rpc connection: bad frame", "remote", sc.remote, "error", err)
			return
		}
		switch m.kind {
		case frameRequest:
			if !sc.start(ctx, m) {
				return
			}
		case frameCancel:
			sc.mu.Lock()
			if c := sc.inflight[m.id]; c != nil {
				c()
			}
			sc.mu.Unlock()
		default:
			t.logger.Debug("closing rpc connection: unexpected frame kind", "remote", sc.remote, "kind", m.kind)
			return
		}
	}
}

// start runs the handler for request m. It returns false when the connection
// must be closed (protocol violation or write failure).
func (sc *serverConn) start(connCtx context.Context, m message) bool {
	h := sc.t.handler(m.method)
	if h == nil {
		sc.t.metrics.observeHandled(unknownMethodLabel, resultUnknownMethod)
		return sc.write(encodeResponse(m.id, statusUnknownMethod, nil))
	}
	sc.mu.Lock()
	if _, dup := sc.inflight[m.id]; dup {
		sc.mu.Unlock()
		sc.t.logger.Debug("closing rpc connection: duplicate request id", "remote", sc.remote, "id", m.id)
		return false
	}
	if len(sc.inflight) >= sc.t.cfg.MaxConcurrentHandlers {
		sc.mu.Unlock()
		// Refuse rather than stop reading: blocking here would back-pressure
		// the caller's writes into WriteTimeout and kill the whole connection.
		sc.t.metrics.observeHandled(m.method, resultOverloaded)
		return sc.write(encodeResponse(m.id, statusOverloaded, nil))
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if m.timeout > 0 {
		// The caller sent its remaining time, not a wall-clock instant, so
		// clock skew between nodes does not matter; transit time only makes
		// the handler's deadline slightly later than the caller's.
		ctx, cancel = context.WithTimeout(connCtx, m.timeout)
	} else {
		ctx, cancel = context.WithCancel(connCtx)
	}
	sc.inflight[m.id] = cancel
	sc.mu.Unlock()

	go sc.run(ctx, cancel, h, m)
	return true
}

func (sc *serverConn) run(ctx context.Context, cancel context.CancelFunc, h Handler, m message) {
	resp, err, stack := callHandler(ctx, h, m.payload)
	cancel()
	sc.mu.Lock()
	delete(sc.inflight, m.id)
	sc.mu.Unlock()

	var frame []byte
	switch {
	case stack != nil:
		sc.t.logger.Error("rpc handler panicked", "method", m.method, "panic", err, "stack", string(stack))
		sc.t.metrics.observeHandled(m.method, resultPanic)
		frame = encodeResponse(m.id, statusError, []byte("internal error: handler panicked"))
	case err != nil:
		sc.t.metrics.observeHandled(m.method, resultRemoteError)
		frame = encodeResponse(m.id, statusError, []byte(truncate(err.Error(), sc.t.cfg.MaxFrameSize-responseFixed)))
	case responseFixed+len(resp) > sc.t.cfg.MaxFrameSize:
		sc.t.logger.Warn("rpc response exceeds MaxFrameSize", "method", m.method, "size", len(resp))
		sc.t.metrics.observeHandled(m.method, resultTooLarge)
		frame = encodeResponse(m.id, statusError, []byte(fmt.Sprintf("response of %d bytes exceeds the frame limit", len(resp))))
	default:
		sc.t.metrics.observeHandled(m.method, resultOK)
		frame = encodeResponse(m.id, statusOK, resp)
	}
	if !sc.write(frame) {
		// The reader is probably blocked on a dead peer: closing wakes it.
		// (Only the writer that saw the failure, and writes after it, get
		// here; a frame queued behind the failure is dropped with it.)
		sc.conn.Close()
	}
}

// callHandler runs h, turning a panic into an error plus its stack: one bad
// request must not take the node down.
func callHandler(ctx context.Context, h Handler, req []byte) (resp []byte, err error, stack []byte) {
	defer func() {
		if r := recover(); r != nil {
			resp, err, stack = nil, fmt.Errorf("%v", r), debug.Stack()
		}
	}()
	resp, err = h(ctx, req)
	return resp, err, nil
}

// write sends frame, or queues it for the goroutine that is writing. The
// goroutine that finds no write in progress becomes the writer: it writes its
// frame and whatever others queued meanwhile, one batch (one system call)
// per round, until the queue is empty; the others return at once. write
// returns false when the connection failed (this write, or an earlier one);
// the caller then closes the connection. Frames queued behind a failed write
// are dropped with it: their callers returned true, but the connection is
// closing and their peer sees it lost.
func (sc *serverConn) write(frame []byte) bool {
	sc.wmu.Lock()
	if sc.wfailed {
		sc.wmu.Unlock()
		return false
	}
	sc.wq = append(sc.wq, frame)
	if sc.writing {
		sc.wmu.Unlock()
		return true
	}
	sc.writing = true
	if sc.w == nil {
		sc.w = newBatchWriter(sc.conn, sc.t.cfg.WriteTimeout)
	}
	// Yield once before the first round, so that handlers already runnable
	// (Raft completes a whole batch of applies at once) queue their
	// responses into this write instead of writing after it (see batch.go).
	sc.wmu.Unlock()
	runtime.Gosched()
	sc.wmu.Lock()
	for len(sc.wq) > 0 {
		k, size := 0, 0
		for k < len(sc.wq) && k < maxBatchFrames && size < maxBatchBytes {
			size += len(sc.wq[k])
			k++
		}
		sc.batch = append(sc.batch[:0], sc.wq[:k]...)
		rest := copy(sc.wq, sc.wq[k:])
		clear(sc.wq[rest:])
		sc.wq = sc.wq[:rest]
		sc.wmu.Unlock()

		_, err := sc.w.write(sc.batch)
		clear(sc.batch)

		sc.wmu.Lock()
		if err != nil {
			sc.wfailed, sc.writing = true, false
			clear(sc.wq)
			sc.wq = nil
			sc.wmu.Unlock()
			sc.t.logger.Debug("writing rpc response", "remote", sc.remote, "frames", k, "error", err)
			return false
		}
	}
	sc.writing = false
	sc.wmu.Unlock()
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
