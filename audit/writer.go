package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
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
type Writer struct {
	path string
	sync SyncPolicy

	mu     sync.Mutex // chain state and the file offset
	f      *os.File
	prev   string // hash of the last line written
	size   int64  // end of the last complete line
	seq    uint64 // lines written by this Writer
	err    error  // set once broken
	closed bool

	syncMu sync.Mutex // one fsync at a time
	synced uint64     // lines known to be on stable storage (under syncMu)
}

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
	return &Writer{path: path, sync: opts.Sync, f: f, prev: prev, size: size}, nil
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

// Head returns the hash of the file's last line (Genesis for an empty
// file).
func (w *Writer) Head() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.prev
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
	b, hash, err := encode(r, w.prev)
	if err != nil {
		w.mu.Unlock()
		return fmt.Errorf("audit log: encode: %w", err)
	}
	n, err := w.f.Write(b)
	if err != nil || n != len(b) {
		if err == nil {
			err = io.ErrShortWrite
		}
		// A partial line would end the chain for every later line; cut it
		// off. If even that fails the file's end is unknown: stop.
		if terr := w.f.Truncate(w.size); terr != nil {
			w.err = fmt.Errorf("%w: %s: write failed (%v) and the partial line could not be removed (%v)", ErrBroken, w.path, err, terr)
			w.mu.Unlock()
			return w.err
		}
		w.mu.Unlock()
		return fmt.Errorf("audit log %s: write: %w", w.path, err)
	}
	w.size += int64(n)
	w.prev = hash
	w.seq++
	seq := w.seq
	w.mu.Unlock()
	if w.sync == SyncNone {
		return nil
	}
	return w.syncTo(seq)
}

// syncTo returns once line seq is on stable storage. Whoever holds syncMu
// fsyncs everything written so far, so the Appends that queued behind it
// usually find their line already covered.
func (w *Writer) syncTo(seq uint64) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced >= seq {
		return nil
	}
	w.mu.Lock()
	target, broken := w.seq, w.err
	w.mu.Unlock()
	if broken != nil {
		return broken
	}
	if err := w.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// whether the last lines are on disk is unknown.
		w.mu.Lock()
		if w.err == nil {
			w.err = fmt.Errorf("%w: %s: fsync: %v", ErrBroken, w.path, err)
		}
		err = w.err
		w.mu.Unlock()
		return err
	}
	w.synced = target
	return nil
}

// Close closes the file (releasing its lock), after an fsync under
// SyncEachLine.
func (w *Writer) Close() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
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
