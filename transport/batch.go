package transport

import (
	"net"
	"time"
)

// Write coalescing. Both ends of an RPC connection write frames for many
// concurrent calls: the client's writer goroutine request and cancel frames,
// the server's handlers their responses. Written one at a time, every frame
// costs a system call (19 % of a leader's CPU under 64 concurrent forwarded
// writes). So whoever writes takes every frame that is ready at that moment,
// up to the bounds below, and writes them in one call: writev on plain TCP,
// one buffer (one TLS record per 16 KiB) under TLS. Frames are never split
// or interleaved: a batch is whole frames one after the other, exactly the
// bytes that separate writes would have produced. A lone frame is written as
// before.
//
// Taking only what is ready at the instant of writing finds little: the
// frames of a burst (Raft completes a batch of applies together, a follower
// forwards a burst of writes) come from goroutines that are runnable but not
// yet running. So the writer yields the processor once (runtime.Gosched)
// before a round, the way grpc-go's loopy writer does before it flushes a
// small buffer: they run, queue their frames, and join the write. It never
// waits: with nothing else runnable the yield returns at once. Measured on a
// 3-node loopback cluster (docs/BENCHMARKS.md), this halves the leader's
// write system calls per forwarded write; without it, batching alone saved
// about a tenth.
const (
	// maxBatchFrames bounds the frames of one write (writev takes at most
	// 1024 buffers; far fewer keeps a batch's latency small).
	maxBatchFrames = 64
	// maxBatchBytes stops taking more frames once a batch holds this many
	// bytes; the frame that crosses it is still taken whole.
	maxBatchBytes = 256 << 10
	// maxCopyFrame is the largest frame copied into the coalescing buffer
	// on a connection without writev; larger ones are written directly.
	maxCopyFrame = 64 << 10
)

// batchWriter writes batches of whole frames to one connection. It is used
// by one goroutine at a time.
type batchWriter struct {
	conn    net.Conn
	timeout time.Duration
	tcp     bool        // conn is plain TCP: net.Buffers becomes one writev
	bufs    net.Buffers // scratch for writev
	buf     []byte      // scratch for coalescing without writev
}

func newBatchWriter(conn net.Conn, timeout time.Duration) *batchWriter {
	_, tcp := conn.(*net.TCPConn)
	return &batchWriter{conn: conn, timeout: timeout, tcp: tcp}
}

// write writes frames in order and returns the number of bytes the
// connection accepted. On error, the frames that lie entirely within those n
// bytes left whole; the one that n cuts, and all after it, did not (see
// splitWritten). Every write on the connection gets a fresh WriteTimeout
// deadline.
func (w *batchWriter) write(frames [][]byte) (n int64, err error) {
	if len(frames) == 1 {
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		k, err := w.conn.Write(frames[0])
		return int64(k), err
	}
	if w.tcp {
		w.bufs = append(w.bufs[:0], frames...)
		bufs := w.bufs // WriteTo consumes its receiver
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		n, err = bufs.WriteTo(w.conn)
		clear(w.bufs) // keep no frame alive
		return n, err
	}
	// No writev (TLS): copy small frames into one buffer so a batch of them
	// becomes one record and one system call. A TLS write that fails counts
	// only the records it wrote whole, so n stays exact at frame level: a
	// peer cannot decrypt, let alone act on, a cut record.
	flush := func() error {
		if len(w.buf) == 0 {
			return nil
		}
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		k, err := w.conn.Write(w.buf)
		n += int64(k)
		w.buf = w.buf[:0]
		return err
	}
	for _, f := range frames {
		if len(f) > maxCopyFrame {
			if err := flush(); err != nil {
				return n, err
			}
			w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
			k, err := w.conn.Write(f)
			n += int64(k)
			if err != nil {
				return n, err
			}
			continue
		}
		w.buf = append(w.buf, f...)
		if len(w.buf) >= maxCopyFrame {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// splitWritten reports, for each frame of a batch that write returned n and
// err for, whether it left whole: nil for a frame that lies entirely within
// the first n bytes, err for the others.
func splitWritten(frames [][]byte, n int64, err error, report func(i int, err error)) {
	var end int64
	for i, f := range frames {
		end += int64(len(f))
		if end <= n {
			report(i, nil)
		} else {
			report(i, err)
		}
	}
}
