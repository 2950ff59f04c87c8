// Package mpdecode decodes msgpack as msgpack.Unmarshal does, after a walk
// over the bytes that refuses what would make the library allocate for
// claims the data does not hold, or recurse without bound.
//
// Found by fuzzing (msgpack v5.4.1, the newest):
//   - a slice of anything but strings or bytes is made to its claimed
//     length before an element is read (the library's allocation limit is
//     tested as `flags&disableAllocLimitFlag != 1`, always true; upstream
//     vmihailenco/msgpack#401, open, unreleased): a 10-byte value claiming
//     2^24 elements of 32 bytes allocated 1 GiB;
//   - the decoder recurses once per level of nesting: a value of 2 M
//     nested one-element arrays decoded into an interface ended the
//     process with a stack overflow;
//   - msgpack.Unmarshal puts its decoder back in the pool after any decode,
//     and a string or bytes claiming more than the data holds grow the
//     decoder's buffer by a chunk before the read fails: repeated, a
//     30-byte restore part claiming 808 MB grew a pooled decoder to 808 MB.
//
// check walks the first value without allocating: every length must fit
// in the bytes that remain (an element takes at least a byte) and arrays
// and maps may nest MaxDepth deep. Only a decode that succeeded returns its
// decoder to the pool. It owns nothing else; encoding stays
// msgpack.Marshal's.
package mpdecode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxDepth is how deeply arrays and maps may nest (the project's records
// nest a few levels).
const MaxDepth = 64

// ErrTooDeep refuses a value nested deeper than MaxDepth.
var ErrTooDeep = fmt.Errorf("msgpack: arrays and maps nested deeper than %d", MaxDepth)

// Unmarshal is msgpack.Unmarshal for data that check accepts.
func Unmarshal(data []byte, v any) error {
	if err := check(data); err != nil {
		return err
	}
	d := msgpack.GetDecoder()
	d.UsePreallocateValues(true) // as msgpack.Unmarshal
	d.Reset(bytes.NewReader(data))
	err := d.Decode(v)
	if err == nil {
		msgpack.PutDecoder(d)
	}
	return err
}

// check walks the first msgpack value of b. It refuses a length that the
// rest of b cannot hold (io.ErrUnexpectedEOF, as the decoder would have
// ended) and nesting deeper than MaxDepth (ErrTooDeep); anything else —
// an unknown code, a type the target does not take — is the decoder's to
// judge.
func check(b []byte) error {
	var left [MaxDepth + 1]int // values still to walk at each depth
	depth, i := 0, 0
	left[0] = 1
	for depth >= 0 {
		if left[depth] == 0 {
			depth--
			continue
		}
		left[depth]--
		if i >= len(b) {
			return truncated(1, 0)
		}
		c := b[i]
		i++
		size, children := 0, 0 // payload bytes; values nested in it
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f:
			children = 2 * int(c&0x0f)
		case c <= 0x9f:
			children = int(c & 0x0f)
		case c <= 0xbf:
			size = int(c & 0x1f)
		default:
			var lenBytes, extra int // a length of lenBytes follows; extra: ext's type byte
			switch c {
			case 0xc4, 0xd9: // bin8, str8
				lenBytes = 1
			case 0xc5, 0xda:
				lenBytes = 2
			case 0xc6, 0xdb:
				lenBytes = 4
			case 0xc7: // ext8, ext16, ext32
				lenBytes, extra = 1, 1
			case 0xc8:
				lenBytes, extra = 2, 1
			case 0xc9:
				lenBytes, extra = 4, 1
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				size = 4
			case 0xcb, 0xcf, 0xd3:
				size = 8
			case 0xcc, 0xd0:
				size = 1
			case 0xcd, 0xd1:
				size = 2
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
				size = 1 + 1<<(c-0xd4)
			case 0xdc, 0xde: // array16, map16
				lenBytes = 2
			case 0xdd, 0xdf:
				lenBytes = 4
			}
			if lenBytes > 0 {
				if lenBytes > len(b)-i {
					return truncated(lenBytes, len(b)-i)
				}
				var n int
				switch lenBytes {
				case 1:
					n = int(b[i])
				case 2:
					n = int(binary.BigEndian.Uint16(b[i:]))
				default:
					n = int(binary.BigEndian.Uint32(b[i:]))
				}
				i += lenBytes
				switch c {
				case 0xdc, 0xdd:
					children = n
				case 0xde, 0xdf:
					children = 2 * n
				default:
					size = n + extra
				}
			}
		}
		if size > len(b)-i {
			return truncated(size, len(b)-i)
		}
		i += size
		if children > 0 {
			if children > len(b)-i { // each value takes a byte at least
				return truncated(children, len(b)-i)
			}
			if depth == MaxDepth {
				return ErrTooDeep
			}
			depth++
			left[depth] = children
		}
	}
	return nil
}

func truncated(claimed, remain int) error {
	return fmt.Errorf("msgpack: a value claims %d bytes, %d remain: %w", claimed, remain, io.ErrUnexpectedEOF)
}
