package fsm

import (
	"hash"
	"io"
)

// hashPipe reads a snapshot in large chunks and, once startHashing is
// called, feeds every byte its caller consumes into a hash on a goroutine
// of its own, so the trailer's HMAC-SHA256 (~0.9 s for a million keys'
// 900 MB) runs beside the decoding instead of inside it (issue 16). What
// is hashed is exactly what was read between startHashing and sum, as
// hashingReader did; bytes read after sum (the trailer) are not hashed.
//
// A chunk handed to the hasher is not reused until it has been hashed;
// with every chunk in the hasher's queue, the reader waits for it.
type hashPipe struct {
	src      io.Reader
	buf      []byte // the chunk being read
	r, w     int    // read position and end of the data in buf
	hashedTo int    // buf[:hashedTo] is hashed or not to be hashed
	err      error  // src's error, returned once buf is drained

	hashing bool
	work    chan hashWork // parts of chunks to hash, in order
	free    chan []byte   // chunks the hasher is done with
	done    chan struct{}
	h       hash.Hash
}

// hashWork is buf[from:to], to hash; buf goes back to free afterwards.
type hashWork struct {
	buf      []byte
	from, to int
}

const (
	hashPipeChunk  = 256 << 10
	hashPipeChunks = 4
)

func newHashPipe(src io.Reader) *hashPipe {
	return &hashPipe{src: src, buf: make([]byte, hashPipeChunk)}
}

// startHashing hashes into h everything read from now on (h is the
// goroutine's until sum or stop).
func (p *hashPipe) startHashing(h hash.Hash) {
	p.h, p.hashing, p.hashedTo = h, true, p.r
	p.work = make(chan hashWork, hashPipeChunks)
	p.free = make(chan []byte, hashPipeChunks)
	p.done = make(chan struct{})
	for range hashPipeChunks - 1 {
		p.free <- make([]byte, hashPipeChunk)
	}
	go func() {
		defer close(p.done)
		for w := range p.work {
			h.Write(w.buf[w.from:w.to])
			p.free <- w.buf
		}
	}()
}

// handOff gives the hasher what has been read of buf and not yet hashed.
// The hasher then owns buf: the caller must take another chunk before
// filling buf again.
func (p *hashPipe) handOff() bool {
	if !p.hashing || p.hashedTo >= p.r {
		return false
	}
	p.work <- hashWork{p.buf, p.hashedTo, p.r}
	p.hashedTo = p.r
	return true
}

func (p *hashPipe) Read(b []byte) (int, error) {
	if p.r == p.w {
		if p.err != nil {
			return 0, p.err
		}
		if p.handOff() {
			p.buf = <-p.free
		}
		n, err := p.src.Read(p.buf)
		p.r, p.w, p.hashedTo = 0, n, 0
		if err != nil {
			p.err = err
		}
		if n == 0 {
			if err == nil {
				return 0, nil
			}
			return 0, err
		}
	}
	n := copy(b, p.buf[p.r:p.w])
	p.r += n
	return n, nil
}

// sum waits for the hasher and returns the hash of everything read since
// startHashing. Later reads are not hashed.
func (p *hashPipe) sum() []byte {
	p.handOff()
	p.stop()
	return p.h.Sum(nil)
}

// stop ends the hasher, if it runs; reading may go on, unhashed.
func (p *hashPipe) stop() {
	if !p.hashing {
		return
	}
	p.hashing = false
	close(p.work)
	<-p.done
}
