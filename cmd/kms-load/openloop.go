package main

import (
	"runtime"
	"sort"
	"sync"
	"time"
)

// measureOpen sends o.rate requests per second for o.duration at fixed
// intended times t0 + i/rate, whether or not earlier ones have answered
// (open loop), served by o.concurrency workers. Each latency is measured
// from the request's intended send time, so a stalled server (or a full
// worker pool) shows in the percentiles instead of slowing the generator
// down (no coordinated omission). The pacer sleeps on a locked OS thread
// with nanosleep (sleepUntil): Go timers wake ~1 ms late on some kernels,
// which would inflate every percentile; its own lag is reported.
func measureOpen(o options, calls []func() error, codeOf func(error) string) result {
	interval := time.Second / time.Duration(o.rate)
	n := int(o.duration / interval)
	if n < 1 {
		n = 1
	}
	// A buffer for every send: the pacer never blocks on busy workers.
	jobs := make(chan time.Time, n)
	t := newTally(n)
	var wg sync.WaitGroup
	for _, call := range calls {
		wg.Add(1)
		go func(call func() error) {
			defer wg.Done()
			mine := workerTally{errs: map[string]int{}}
			for intended := range jobs {
				err := call()
				mine.record(time.Since(intended), err, codeOf)
			}
			t.merge(&mine)
		}(call)
	}
	lags := make([]time.Duration, 0, n)
	start := time.Now()
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := 0; i < n; i++ {
			intended := start.Add(time.Duration(i) * interval)
			sleepUntil(intended)
			lags = append(lags, time.Since(intended))
			jobs <- intended
		}
	}()
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	res := summarize(o, t.latencies, t.errs, elapsed)
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	res.Rate, res.SendLagP99ms, res.SendLagMaxMs = o.rate, percentile(lags, 0.99), percentile(lags, 1)
	return res
}
