package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// The collector's headroom on a large catalogue (issue 16, a million
// keys). --gc-percent 400 lets the heap grow to five times the live heap
// between collections: right for a node whose live heap is tens of MB, but
// a node holding a million keys (~0.8 GB live) would then reach 4 GB. So
// kmsd lowers the percent as the live heap grows, letting the heap grow by
// at most --gc-headroom (default 512 MiB) past what is live, and never
// below minGCPercent (a collection per half the live heap allocated).
// Small nodes keep --gc-percent; the GOGC variable, when set, wins.

// DefaultGCHeadroom is --gc-headroom's default.
const DefaultGCHeadroom = "512MiB"

// minGCPercent is the lowest percent the headroom rule sets.
const minGCPercent = 50

// gcPercentFor is the percent that lets the heap grow past live by at most
// headroom, within [minGCPercent, max].
func gcPercentFor(live, headroom int64, max int) int {
	if live <= 0 || headroom <= 0 {
		return max
	}
	p := headroom * 100 / live
	if p >= int64(max) {
		return max
	}
	if p < minGCPercent {
		return minGCPercent
	}
	return int(p)
}

// startGCHeadroom re-reads the live heap after each garbage collection
// (the only time it changes) and sets the collector's percent from it. It
// used to poll once a second; an idle node collects about every two
// minutes (the runtime's forced collection), so it now wakes that often.
// It returns a function that stops it.
func startGCHeadroom(max int, headroom int64, logger hclog.Logger) func() {
	var stopped atomic.Bool
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := max
	check := func() bool {
		if stopped.Load() {
			return false
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return false
		}
		live := int64(sample[0].Value.Uint64())
		p := gcPercentFor(live, headroom, max)
		// Moves of less than a tenth are not worth a change.
		if p != current && (p == max || p == minGCPercent || abs(p-current)*10 > current) {
			debug.SetGCPercent(p)
			logger.Debug("garbage collector percent follows the live heap", "live_bytes", live, "gc_percent", p)
			current = p
		}
		return true
	}
	afterEachGC(check)
	return func() { stopped.Store(true) }
}

// gcCycle is an object whose finalizer runs once the collection that finds
// it unreachable ends. Not a tiny allocation (the runtime batches those,
// and their finalizers may never run).
type gcCycle struct {
	_ [16]byte
	f func() bool
}

// afterEachGC calls f on the finalizer goroutine after each collection,
// until f returns false. f must be quick.
func afterEachGC(f func() bool) {
	c := &gcCycle{f: f}
	runtime.SetFinalizer(c, func(c *gcCycle) {
		if c.f() {
			afterEachGC(c.f)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
