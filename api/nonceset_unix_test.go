//go:build unix

package api

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// A full cache lives outside the Go heap: a million remembered nonces
// leave the heap the collector paces (and scans) nearly where it was.
func TestNonceCache_EntriesLiveOutsideTheGoHeap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newNonceCache(testSkew, 0)
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 1_000_000; i++ {
		if c.use("LTAIkey", strconv.Itoa(i), now, now) != nonceFresh {
			t.Fatalf("nonce %d refused", i)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if c.len() != 1_000_000 {
		t.Fatalf("len %d", c.len())
	}
	// A Go map held ~28 MB live for these; the sets' headers are a few KB.
	if grew > 4<<20 {
		t.Fatalf("the Go heap grew by %d bytes for a million nonces", grew)
	}
	runtime.KeepAlive(c)
}
