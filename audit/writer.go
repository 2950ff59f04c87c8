package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SyncPolicy says when appended lines are forced to stable storage.
type SyncPolicy int

const (
	// SyncEachLine makes Append return only once its line is on stable
	// storage (fsync). Concurrent Appends share fsyncs (group commit): while
	// one fsync runs, the lines written meanwhile wait for the next one, so
	// the cost per request shrinks as load grows. The default.
	SyncEachLine SyncPolicy = iota
	// SyncNone leaves flushing to the operating system: a crash of the
	// machine (not of the process) can lose the last lines. For benchmarks
	// and tests.
	SyncNone
)

// Options configures Open.
type Options struct {
	Sync SyncPolicy
	// Registerer, when set, receives the writer's metrics
	// (kms_audit_lines_per_sync, kms_audit_sync_duration_seconds).
	Registerer prometheus.Registerer
}

// ErrBroken is returned by Append after a failure that leaves the file's
// state unknown (an fsync error, or a partial write that could not be
// undone). The writer refuses every further line; a restart checks the
// file's tail again.
var ErrBroken = errors.New("audit log: unusable after a write failure")

// ErrDamaged is returned by Open when the file's last line is not a valid
// link of a chain, so the chain cannot be continued.
var ErrDamaged = errors.New("audit log: damaged")

// maxLine bounds one line when reading a file (writers stay far below it).
const maxLine = 64 << 10

// Writer appends chained records to one file. It is safe for concurrent
// use.
//
// Group commit: Append encodes its line into the pending batch (one of two
// preallocated buffers) and waits. One appender at a time is the flusher: it
// takes the whole pending batch, writes it with one write(2), fsyncs once
// (SyncEachLine) and releases every appender of the batch at once (one
// channel close: none of them takes the writer's lock again); lines appended
// meanwhile form the next batch, which the flusher hands to one of its own
// appenders. So under load many requests share one write and one fsync, and
// each Append still returns only once its own line is written (and on
// stable storage under SyncEachLine).
type Writer struct {
	path    string
	sync    SyncPolicy
	metrics *metrics // nil: none

	mu     sync.Mutex // everything below
	idle   *sync.Cond // broadcast when flushing ends (Close waits on it)
	f      *os.File
	prev   [64]byte // hex hash of the last line encoded (pending lines included)
	size   int64    // end of the last complete line written
	err    error    // set once broken
	closed bool

	pending *batch // lines encoded, not yet taken by a flusher
	// spares are the batch buffers not in use: two, preallocated, one
	// filling while the other is written, so a batch's lines are
	// encoded straight into memory that is already there.
	spares [][]byte
	// flushing: a flusher owns the file, or a batch's flush was handed to
	// one of its appenders (batch.lead) that has not taken it yet. While
	// it is false there is no pending batch.
	flushing bool
}

// batch is lines written together.
type batch struct {
	// done is closed once the batch is written (and synced) or has failed;
	// err is set before.
	done chan struct{}
	// lead carries one token: the previous flusher hands the flush of this
	// batch to whichever of its appenders receives it.
	lead chan struct{}
	buf  []byte
	n    int      // lines
	prev [64]byte // the chain's head before the batch's first line
	err  error    // the batch's lines are not in the file
}

// maxSpare bounds a buffer kept between batches.
const maxSpare = 1 << 20

// Open opens (or creates, mode 0600) the audit log at path for appending
// and continues its chain from the last line. It takes an exclusive lock on
// the file (two writers would interleave two chains). A last line that is
// incomplete or does not match its own hash is refused with ErrDamaged: the
// file is evidence, so the operator decides (see docs/SECURITY.md).
func Open(path string, opts Options) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s is in use by another process (%v); every node needs its own file", path, err)
	}
	prev, size, err := readTail(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %v; run `kmsctl operator audit verify %s` to see where the chain breaks, keep the file as evidence, and move it aside to start a new chain", ErrDamaged, path, err, path)
	}
	w := &Writer{path: path, sync: opts.Sync, f: f, size: size}
	w.spares = [][]byte{make([]byte, 0, 64<<10), make([]byte, 0, 64<<10)}
	if opts.Registerer != nil {
		w.metrics = newMetrics(opts.Registerer)
	}
	copy(w.prev[:], prev)
	w.idle = sync.NewCond(&w.mu)
	return w, nil
}

// readTail returns the hash of the file's last line (Genesis for an empty
// file) and the file's size.
func readTail(f *os.File) (string, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	size := st.Size()
	if size == 0 {
		return Genesis, 0, nil
	}
	n := min(size, int64(maxLine)+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return "", 0, err
	}
	if buf[len(buf)-1] != '\n' {
		return "", 0, errors.New("the last line is incomplete (no newline at the end): the file was cut or a write was interrupted")
	}
	buf = buf[:len(buf)-1]
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 && n < size {
		return "", 0, errors.New("the last line is longer than any line this program writes")
	}
	last := buf[i+1:]
	hash, _, err := parseLine(last)
	if err != nil {
		return "", 0, fmt.Errorf("the last line is not valid: %v", err)
	}
	return hash, size, nil
}

// Path is the file's path.
func (w *Writer) Path() string { return w.path }

// Head returns the hash of the last line appended (Genesis for an empty
// file). A line whose Append is still running may not be on disk yet.
func (w *Writer) Head() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.prev[:])
}

// Append writes one record as the next line of the chain. With
// SyncEachLine it returns once the line is on stable storage. On error the
// line is not part of the file (a partial write is cut off again), unless
// the error is ErrBroken, after which nothing more is written.
func (w *Writer) Append(r Record) error {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	if w.closed {
		w.mu.Unlock()
		return fmt.Errorf("audit log %s: closed", w.path)
	}
	b := w.pending
	if b == nil {
		b = &batch{prev: w.prev, done: make(chan struct{}), lead: make(chan struct{}, 1)}
		if k := len(w.spares); k > 0 {
			b.buf, w.spares = w.spares[k-1], w.spares[:k-1]
		}
		w.pending = b
	}
	var sum [32]byte
	b.buf, sum = appendLine(b.buf, r, w.prev[:])
	hex.Encode(w.prev[:], sum[:])
	b.n++
	if !w.flushing {
		// No flusher: flush now, this line and any appended meanwhile.
		w.flushing = true
		w.flush()
		err := b.err
		w.mu.Unlock()
		return err
	}
	w.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-b.lead:
		// The previous flusher handed this batch over: w.flushing stayed
		// set, so nobody else flushes it.
		w.mu.Lock()
		w.flush()
		err := b.err
		w.mu.Unlock()
		return err
	}
}

// flush writes the pending batch, with w.mu held and w.flushing set on
// entry and on return (the lock is released during the write and the
// fsync), and releases its appenders. It hands the next batch, if lines
// arrived meanwhile, to one of that batch's appenders; else it clears
// w.flushing.
func (w *Writer) flush() {
	b := w.pending
	w.pending = nil
	start := w.size
	w.mu.Unlock()

	t0 := time.Now()
	n, err := w.f.Write(b.buf)
	var serr error
	if err == nil && n == len(b.buf) && w.sync == SyncEachLine {
		serr = syncData(w.f)
	}
	var terr error
	if err != nil || n != len(b.buf) {
		if err == nil {
			err = io.ErrShortWrite
		}
		// A partial line would end the chain for every later line; cut
		// it off. If even that fails the file's end is unknown: stop.
		terr = w.f.Truncate(start)
	}
	if err == nil && serr == nil {
		w.metrics.observe(b.n, time.Since(t0))
	}

	w.mu.Lock()
	switch {
	case serr != nil:
		// After a failed fsync the kernel may have dropped the dirty
		// pages: whether the last lines are on disk is unknown.
		if w.err == nil {
			w.err = fmt.Errorf("%w: %s: fsync: %v", ErrBroken, w.path, serr)
		}
		b.err = w.err
	case err != nil && terr != nil:
		if w.err == nil {
			w.err = fmt.Errorf("%w: %s: write failed (%v) and the partial line could not be removed (%v)", ErrBroken, w.path, err, terr)
		}
		b.err = w.err
	case err != nil:
		b.err = fmt.Errorf("audit log %s: write: %w", w.path, err)
	default:
		w.size += int64(n)
	}
	if b.err != nil {
		// The chain continues from the last line in the file: the lines
		// appended meanwhile were chained after this batch's, so they
		// fail with it.
		w.prev = b.prev
		if p := w.pending; p != nil {
			p.err = b.err
			w.pending = nil
			w.recycle(p.buf)
			close(p.done)
		}
	}
	w.recycle(b.buf)
	close(b.done)
	if p := w.pending; p != nil {
		// One of the next batch's appenders flushes it (exactly one
		// token, received by one of them).
		p.lead <- struct{}{}
		return
	}
	w.flushing = false
	w.idle.Broadcast()
}

// recycle keeps a written batch's buffer for a later batch, with w.mu held.
func (w *Writer) recycle(buf []byte) {
	if cap(buf) > 0 && cap(buf) <= maxSpare && len(w.spares) < 2 {
		w.spares = append(w.spares, buf[:0])
	}
}

// Close closes the file (releasing its lock), after an fsync under
// SyncEachLine. Appends already waiting are written first.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	// Appends already in a batch are written: the flusher hands each
	// pending batch on until none is left, then clears w.flushing.
	for w.flushing {
		w.idle.Wait()
	}
	var serr error
	if w.sync == SyncEachLine {
		serr = w.f.Sync()
	}
	cerr := w.f.Close()
	if serr != nil {
		return serr
	}
	return cerr
}
