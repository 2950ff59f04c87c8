package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Frame layout (see DESIGN.md): a 4-byte big-endian body length, then the
// body. Every body starts with a kind byte and an 8-byte request id.
//
//	request:  kind=1 | id u64 | timeout_ns u64 (0 = none) | method_len u8 | method | payload
//	cancel:   kind=2 | id u64
//	response: kind=3 | id u64 | status u8 | payload
const (
	frameRequest  byte = 1
	frameCancel   byte = 2
	frameResponse byte = 3
)

// Response status byte.
const (
	statusOK            byte = 0 // payload = handler response
	statusError         byte = 1 // payload = handler error message
	statusUnknownMethod byte = 2 // payload empty; handler did not run
	statusOverloaded    byte = 3 // payload empty; handler did not run
)

const (
	lenPrefix      = 4
	bodyHeaderLen  = 1 + 8 // kind + id
	requestFixed   = bodyHeaderLen + 8 + 1
	responseFixed  = bodyHeaderLen + 1
	maxMethodLen   = math.MaxUint8
	readChunk      = 64 << 10 // first allocation for a frame body; grows as bytes arrive
	maxFrameLimit  = 1 << 30
	minFrameLimit  = 1 << 10
	defaultMaxSize = 64 << 20
)

var errMalformed = errors.New("transport: malformed frame")

// message is one decoded frame body. payload aliases the body it came from.
type message struct {
	kind    byte
	id      uint64
	timeout time.Duration // request only; 0 = no deadline
	method  string        // request only
	status  byte          // response only
	payload []byte
}

// readFrame reads one length-prefixed frame body from r. A length above max is
// rejected before any allocation, and the body buffer grows only as bytes
// actually arrive, so a peer that announces a large frame and then stalls
// costs at most readChunk bytes, not max.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [lenPrefix]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes > limit %d", ErrFrameTooLarge, n, max)
	}
	if n < bodyHeaderLen {
		return nil, fmt.Errorf("%w: body of %d bytes", errMalformed, n)
	}
	size := int(n)
	buf := make([]byte, 0, min(size, readChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(size-len(buf), len(buf)))
		}
		k, err := io.ReadFull(r, buf[len(buf):min(cap(buf), size)])
		buf = buf[:len(buf)+k]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// decodeMessage parses a frame body. It never allocates more than the method
// string and never panics on arbitrary input.
func decodeMessage(b []byte) (message, error) {
	if len(b) < bodyHeaderLen {
		return message{}, errMalformed
	}
	m := message{kind: b[0], id: binary.BigEndian.Uint64(b[1:9])}
	rest := b[bodyHeaderLen:]
	switch m.kind {
	case frameRequest:
		if len(rest) < 9 {
			return message{}, errMalformed
		}
		ns := binary.BigEndian.Uint64(rest[:8])
		if ns > math.MaxInt64 {
			return message{}, fmt.Errorf("%w: timeout out of range", errMalformed)
		}
		m.timeout = time.Duration(ns)
		mlen := int(rest[8])
		rest = rest[9:]
		if mlen == 0 || len(rest) < mlen {
			return message{}, fmt.Errorf("%w: bad method length", errMalformed)
		}
		m.method = string(rest[:mlen])
		m.payload = rest[mlen:]
	case frameCancel:
		if len(rest) != 0 {
			return message{}, fmt.Errorf("%w: trailing bytes in cancel", errMalformed)
		}
	case frameResponse:
		if len(rest) < 1 {
			return message{}, errMalformed
		}
		m.status = rest[0]
		if m.status > statusOverloaded {
			return message{}, fmt.Errorf("%w: unknown status %d", errMalformed, m.status)
		}
		m.payload = rest[1:]
	default:
		return message{}, fmt.Errorf("%w: unknown kind %d", errMalformed, m.kind)
	}
	return m, nil
}

// The encoders return the whole frame, length prefix included, so that a
// frame goes on the wire in one write, alone or in a batch with others
// (batch.go). A failed write cuts at most one frame, which the peer can never
// act on; the bytes written tell which frames before it left whole.

func encodeRequest(id uint64, timeout time.Duration, method string, payload []byte) []byte {
	body := requestFixed + len(method) + len(payload)
	b := make([]byte, lenPrefix, lenPrefix+body)
	binary.BigEndian.PutUint32(b, uint32(body))
	b = append(b, frameRequest)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint64(b, uint64(max(timeout, 0)))
	b = append(b, byte(len(method)))
	b = append(b, method...)
	return append(b, payload...)
}

func encodeCancel(id uint64) []byte {
	b := make([]byte, lenPrefix, lenPrefix+bodyHeaderLen)
	binary.BigEndian.PutUint32(b, bodyHeaderLen)
	b = append(b, frameCancel)
	return binary.BigEndian.AppendUint64(b, id)
}

func encodeResponse(id uint64, status byte, payload []byte) []byte {
	body := responseFixed + len(payload)
	b := make([]byte, lenPrefix, lenPrefix+body)
	binary.BigEndian.PutUint32(b, uint32(body))
	b = append(b, frameResponse)
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, status)
	return append(b, payload...)
}

// requestFrameSize is the body size of a request, for the MaxFrameSize check.
func requestFrameSize(method string, payload []byte) int {
	return requestFixed + len(method) + len(payload)
}
