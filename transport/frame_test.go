package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"
)

func TestFrame_RoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  message
	}{
		{"request", encodeRequest(7, 3*time.Second, "kms.forward", []byte("payload")),
			message{kind: frameRequest, id: 7, timeout: 3 * time.Second, method: "kms.forward", payload: []byte("payload")}},
		{"request without deadline or payload", encodeRequest(1, 0, "m", nil),
			message{kind: frameRequest, id: 1, method: "m", payload: []byte{}}},
		{"cancel", encodeCancel(1 << 60), message{kind: frameCancel, id: 1 << 60}},
		{"response ok", encodeResponse(9, statusOK, []byte{1, 2, 3}),
			message{kind: frameResponse, id: 9, status: statusOK, payload: []byte{1, 2, 3}}},
		{"response overloaded", encodeResponse(9, statusOverloaded, nil),
			message{kind: frameResponse, id: 9, status: statusOverloaded, payload: []byte{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := readFrame(bytes.NewReader(tc.frame), 1<<20)
			if err != nil {
				t.Fatalf("readFrame: %v", err)
			}
			got, err := decodeMessage(body)
			if err != nil {
				t.Fatalf("decodeMessage: %v", err)
			}
			if got.kind != tc.want.kind || got.id != tc.want.id || got.timeout != tc.want.timeout ||
				got.method != tc.want.method || got.status != tc.want.status || !bytes.Equal(got.payload, tc.want.payload) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeMessage_RejectsMalformed(t *testing.T) {
	id := make([]byte, 8)
	tests := map[string][]byte{
		"empty":                   {},
		"short header":            {frameRequest, 0, 0},
		"unknown kind":            append([]byte{0x09}, id...),
		"request without method":  append(append([]byte{frameRequest}, id...), make([]byte, 9)...),
		"method length past end":  append(append([]byte{frameRequest}, id...), 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'),
		"negative timeout":        append(append([]byte{frameRequest}, id...), 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 'a'),
		"cancel with trailer":     append(append([]byte{frameCancel}, id...), 1),
		"response without status": append([]byte{frameResponse}, id...),
		"response bad status":     append(append([]byte{frameResponse}, id...), 4),
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeMessage(body); err == nil {
				t.Fatal("decodeMessage accepted a malformed body")
			}
		})
	}
}

func TestReadFrame_RejectsOversizeLength(t *testing.T) {
	frame := binary.BigEndian.AppendUint32(nil, 1<<20+1)
	_, err := readFrame(bytes.NewReader(frame), 1<<20)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
}

// A peer announcing a huge frame and sending a few bytes must not make us
// allocate the announced size.
func TestReadFrame_AllocatesOnlyWhatArrives(t *testing.T) {
	frame := binary.BigEndian.AppendUint32(nil, maxFrameLimit)
	frame = append(frame, make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(bytes.NewReader(frame), maxFrameLimit)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("allocated %d bytes for a frame that sent 100", grew)
	}
}

func TestReadFrame_LargeBodyArrivesWhole(t *testing.T) {
	payload := bytes.Repeat([]byte("abcdefgh"), 100_000) // 800 KB, several growth steps
	body, err := readFrame(bytes.NewReader(encodeResponse(1, statusOK, payload)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeMessage(body)
	if err != nil || !bytes.Equal(m.payload, payload) {
		t.Fatalf("payload mangled (err %v)", err)
	}
}

// FuzzDecodeFrame feeds arbitrary bytes, as a hostile peer could send them,
// through the frame reader and decoder: no panic, allocation bounded by the
// bytes actually received, and whatever decodes re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeRequest(1, time.Second, "echo", []byte("hi")))
	f.Add(encodeCancel(42))
	f.Add(encodeResponse(3, statusError, []byte("boom")))
	f.Add(append(encodeCancel(1), encodeResponse(2, statusOK, nil)...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0, 0, 0, 9, frameRequest})
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			body, err := readFrame(r, limit)
			if err != nil {
				return
			}
			if cap(body) > 2*len(data)+2*readChunk {
				t.Fatalf("body capacity %d for %d input bytes", cap(body), len(data))
			}
			m, err := decodeMessage(body)
			if err != nil {
				continue
			}
			var enc []byte
			switch m.kind {
			case frameRequest:
				enc = encodeRequest(m.id, m.timeout, m.method, m.payload)
			case frameCancel:
				enc = encodeCancel(m.id)
			case frameResponse:
				enc = encodeResponse(m.id, m.status, m.payload)
			default:
				t.Fatalf("decoded unknown kind %d", m.kind)
			}
			if !bytes.Equal(enc[lenPrefix:], body) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc[lenPrefix:], body)
			}
		}
	})
}
