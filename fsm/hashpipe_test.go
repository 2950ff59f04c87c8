package fsm

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// hashPipe hashes exactly the bytes read between startHashing and sum,
// across chunk boundaries and whatever the sizes of the reads and of the
// source's answers, and reads on unhashed after sum.
func TestHashPipe_HashesExactlyWhatWasReadBetweenStartAndSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 5*hashPipeChunk/2+17)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for name, src := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(data) },
		"halves":   func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
	} {
		for _, c := range []struct{ start, end int }{{10, len(data) - 32}, {0, len(data)}, {hashPipeChunk, hashPipeChunk + 1}, {5, 5}} {
			p := newHashPipe(src())
			got := make([]byte, 0, len(data))
			read := func(upTo int) {
				for len(got) < upTo {
					b := make([]byte, min(1+rng.IntN(3000), upTo-len(got)))
					n, err := io.ReadFull(p, b)
					got = append(got, b[:n]...)
					if err != nil {
						t.Fatalf("%s: read: %v", name, err)
					}
				}
			}
			read(c.start)
			h := sha256.New()
			p.startHashing(h)
			read(c.end)
			sum := p.sum()
			rest, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rest...)
			want := sha256.Sum256(data[c.start:c.end])
			if !bytes.Equal(sum, want[:]) || !bytes.Equal(got, data) {
				t.Fatalf("%s [%d:%d]: hash of the range %v, bytes read back %v", name, c.start, c.end, bytes.Equal(sum, want[:]), bytes.Equal(got, data))
			}
		}
	}
}

// A decode that stops early (an error) ends the hasher: stop returns once
// it is done, and may be called again.
func TestHashPipe_StopEndsTheHasher(t *testing.T) {
	p := newHashPipe(bytes.NewReader(make([]byte, 3*hashPipeChunk)))
	p.startHashing(sha256.New())
	io.CopyN(io.Discard, p, 2*hashPipeChunk+5)
	p.stop()
	p.stop()
	select {
	case <-p.done:
	default:
		t.Fatal("the hasher still runs after stop")
	}
}
