package fsm

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// recordLoader loads a snapshot's records into a catalogue, decoding the
// kinds there are millions of (keys, key versions, nonces) on other cores
// while the caller reads and authenticates the file (issue 16: restart
// with a million keys). Records are still inserted one at a time in file
// order, by one goroutine, with the checks loadRecord makes: the result,
// and the first error, are those of loading them in sequence.
type recordLoader struct {
	cat   *catalogue
	batch *recordBatch
	work  chan *recordBatch
	order chan *recordBatch
	wg    sync.WaitGroup

	mu  sync.Mutex
	err error // the first error, in file order
}

type loadedRecord struct {
	typ  byte
	body []byte
	val  any // decoded by a worker, or nil: loadRecord decodes it
	err  error
}

type recordBatch struct {
	recs  []loadedRecord
	arena []byte // the bodies, one allocation per batch
	done  chan struct{}
}

const loaderBatch = 512

func newRecordLoader(cat *catalogue) *recordLoader {
	l := &recordLoader{cat: cat, work: make(chan *recordBatch, 4), order: make(chan *recordBatch, 8)}
	workers := max(1, runtime.GOMAXPROCS(0)-1)
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for b := range l.work {
				b.decode()
				close(b.done)
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for b := range l.order {
			<-b.done
			if l.failed() {
				continue // drain
			}
			for i := range b.recs {
				if err := l.insert(&b.recs[i]); err != nil {
					l.mu.Lock()
					l.err = err
					l.mu.Unlock()
					break
				}
			}
		}
	}()
	return l
}

func (l *recordLoader) failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err != nil
}

// add queues one record; body is copied. It returns the first error met so
// far, so the reader can stop early.
func (l *recordLoader) add(typ byte, body []byte) error {
	if l.batch == nil {
		l.batch = &recordBatch{recs: make([]loadedRecord, 0, loaderBatch), arena: make([]byte, 0, 256<<10), done: make(chan struct{})}
	}
	b := l.batch
	if len(b.arena)+len(body) > cap(b.arena) {
		b.arena = make([]byte, 0, max(256<<10, len(body)))
	}
	start := len(b.arena)
	b.arena = append(b.arena, body...)
	b.recs = append(b.recs, loadedRecord{typ: typ, body: b.arena[start:len(b.arena):len(b.arena)]})
	if len(b.recs) == loaderBatch {
		l.flush()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *recordLoader) flush() {
	if l.batch == nil || len(l.batch.recs) == 0 {
		return
	}
	l.order <- l.batch
	l.work <- l.batch
	l.batch = nil
}

// finish waits for every queued record and returns the first error.
func (l *recordLoader) finish() error {
	l.flush()
	close(l.work)
	close(l.order)
	l.wg.Wait()
	return l.err
}

// decode decodes the records a worker may decode.
func (b *recordBatch) decode() {
	for i := range b.recs {
		r := &b.recs[i]
		switch r.typ {
		case recKey:
			k := new(Key)
			r.val, r.err = k, msgpack.Unmarshal(r.body, k)
		case recKeyVersion:
			v := new(KeyVersion)
			r.val, r.err = v, msgpack.Unmarshal(r.body, v)
		case recSignedNonce:
			n := new(signedNonceRecord)
			r.val, r.err = n, msgpack.Unmarshal(r.body, n)
		}
	}
}

// insert adds one record to the catalogue as loadRecord would.
func (l *recordLoader) insert(r *loadedRecord) error {
	if r.err != nil {
		return r.err
	}
	switch v := r.val.(type) {
	case *Key:
		return insertLoaded(l.cat.keys, v, v.ID)
	case *KeyVersion:
		return insertLoaded(l.cat.versions, v, v.ID)
	case *signedNonceRecord:
		return l.cat.replay.addLoaded(v)
	}
	return l.cat.loadRecord(r.typ, r.body)
}

func insertLoaded[T any](m map[string]*T, v *T, id string) error {
	if id == "" {
		return errors.New("record without id")
	}
	if _, dup := m[id]; dup {
		return fmt.Errorf("duplicate record %q", id)
	}
	m[id] = v
	return nil
}
