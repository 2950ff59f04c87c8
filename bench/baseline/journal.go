package main

import (
	"os"
	"sync"
	"syscall"
)

// journal is an append-only file with group commit: every append waits
// until its line is written and fdatasync'd; appends that arrive while one
// batch is on its way to disk go together in the next write and
// fdatasync.
type journal struct {
	f *os.File

	mu       sync.Mutex
	buf      []byte       // lines of the next batch
	waiters  []chan error // their appenders
	flushing bool         // a flusher goroutine runs
}

func openJournal(path string) (*journal, error) {
	var f *os.File
	var err error
	if path == "" {
		f, err = os.CreateTemp("", "baseline-journal-*")
	} else {
		f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	if err != nil {
		return nil, err
	}
	return &journal{f: f}, nil
}

// append returns once line is durable.
func (j *journal) append(line []byte) error {
	done := make(chan error, 1)
	j.mu.Lock()
	j.buf = append(j.buf, line...)
	j.waiters = append(j.waiters, done)
	if !j.flushing {
		j.flushing = true
		go j.flush()
	}
	j.mu.Unlock()
	return <-done
}

// flush writes batches until none is waiting.
func (j *journal) flush() {
	var spare []byte
	for {
		j.mu.Lock()
		if len(j.waiters) == 0 {
			j.flushing = false
			j.mu.Unlock()
			return
		}
		buf, waiters := j.buf, j.waiters
		j.buf, j.waiters = spare[:0], nil
		j.mu.Unlock()
		_, err := j.f.Write(buf)
		if err == nil {
			err = syscall.Fdatasync(int(j.f.Fd()))
		}
		for _, w := range waiters {
			w <- err
		}
		spare = buf
	}
}
