package kms

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/raftkms/raftkms/fsm"
)

// StreamDecoder decodes a snapshot while it is being written to a file (or
// a buffer), so that it is decoded and checked by the time the last byte is
// in: a million keys take seconds to decode (issue 16). It reads only what
// the writer says it wrote (Wrote), waits for more, ends at the size, and
// stops when told (Stop). The decoding is fsm.DecodeStream's single pass,
// the MAC checked at the end over exactly the bytes decoded: it is for
// bytes that someone this node trusts checked or vouched for — a follower
// that checked the MAC, an operator whose signature covers the upload.
type StreamDecoder struct {
	size int64
	file *os.File      // read with ReadAt, or
	buf  *bytes.Buffer // memory: mem is what was written of it

	mu    sync.Mutex
	cond  *sync.Cond
	avail int64
	mem   []byte
	gone  bool

	done    chan struct{}
	decoded *fsm.DecodedSnapshot
	info    fsm.SnapshotInfo
	err     error
}

// errUploadDropped ends the decoder of a dropped upload.
var errUploadDropped = errors.New("the restore upload was dropped")

// NewStreamDecoder starts decoding the size bytes that will be written to
// file (or, when file is nil, to buf) as they are written.
func (s *Service) NewStreamDecoder(file *os.File, buf *bytes.Buffer, size int64) *StreamDecoder {
	d := &StreamDecoder{size: size, file: file, buf: buf, done: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	go func() {
		defer close(d.done)
		d.decoded, d.info, d.err = s.fsm.DecodeStream(&streamReader{d: d})
	}()
	return d
}

// Wrote says the first n bytes are written.
func (d *StreamDecoder) Wrote(n int64) {
	d.mu.Lock()
	d.avail = n
	if d.buf != nil {
		d.mem = d.buf.Bytes()
	}
	d.mu.Unlock()
	d.cond.Broadcast()
}

// Stop ends the decoding of a file that will not be completed.
func (d *StreamDecoder) Stop() {
	d.mu.Lock()
	d.gone = true
	d.mu.Unlock()
	d.cond.Broadcast()
}

// failed is the decoder's refusal, once it has refused.
func (d *StreamDecoder) failed() error {
	select {
	case <-d.done:
		return d.err
	default:
		return nil
	}
}

// result waits for the decoding to end.
func (d *StreamDecoder) result(ctx context.Context) (*fsm.DecodedSnapshot, fsm.SnapshotInfo, error) {
	select {
	case <-d.done:
		return d.decoded, d.info, d.err
	case <-ctx.Done():
		return nil, fsm.SnapshotInfo{}, ctx.Err()
	}
}

// streamReader reads a StreamDecoder's bytes as they are written.
type streamReader struct {
	d   *StreamDecoder
	pos int64
}

func (r *streamReader) Read(p []byte) (int, error) {
	d := r.d
	d.mu.Lock()
	for r.pos >= d.avail && !d.gone && r.pos < d.size {
		d.cond.Wait()
	}
	gone, avail, mem := d.gone, d.avail, d.mem
	d.mu.Unlock()
	switch {
	case gone:
		return 0, errUploadDropped
	case r.pos >= d.size:
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), avail-r.pos))
	var k int
	var err error
	if d.file != nil {
		k, err = d.file.ReadAt(p[:n], r.pos)
		if err == io.EOF && k == n {
			err = nil
		}
	} else {
		k = copy(p[:n], mem[r.pos:avail])
	}
	r.pos += int64(k)
	return k, err
}
