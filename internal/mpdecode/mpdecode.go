// Package mpdecode decodes msgpack as msgpack.Unmarshal does, without
// letting a refused input grow a pooled decoder.
//
// msgpack.Unmarshal borrows a Decoder from the library's pool and puts it
// back after any decode. A value whose length the data does not hold
// (a damaged snapshot record, a hostile part) makes the decoder grow its
// buffer by a chunk (1 MiB, or a quarter of what it has) before it reads
// and fails, and the buffer stays with the pooled decoder: repeated, a
// 30-byte input claiming 800 MB grew one to 800 MB that the pool kept
// (the fuzzer's FuzzRestorePart workers died of it). Unmarshal returns the
// decoder to the pool only after a decode that succeeded — its buffer then
// grew only for bytes the data held — and drops it otherwise. It owns
// nothing else; encoding stays msgpack.Marshal's.
package mpdecode

import (
	"bytes"

	"github.com/vmihailenco/msgpack/v5"
)

// Unmarshal is msgpack.Unmarshal, but a decoder that refused its input is
// left to the collector instead of the pool.
func Unmarshal(data []byte, v any) error {
	d := msgpack.GetDecoder()
	d.UsePreallocateValues(true) // as msgpack.Unmarshal
	d.Reset(bytes.NewReader(data))
	err := d.Decode(v)
	if err == nil {
		msgpack.PutDecoder(d)
	}
	return err
}
