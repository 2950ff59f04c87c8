package api

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

const testSkew = 15 * time.Minute

func TestNonceCache_RefusesAReplayInsideTheWindowWhateverItsSignedTime(t *testing.T) {
	c := newNonceCache(testSkew, 0)
	now := time.Unix(1_800_000_000, 0)
	if v := c.use("AK1", "n-1", now, now); v != nonceFresh {
		t.Fatalf("first use: %v", v)
	}
	for _, tc := range []struct {
		name   string
		ak     string
		signed time.Time
		at     time.Time
		want   nonceVerdict
	}{
		{"the same request again", "AK1", now, now, nonceReplayed},
		{"a new signature with the same nonce, signed later", "AK1", now.Add(10 * time.Minute), now.Add(10 * time.Minute), nonceReplayed},
		{"signed earlier, still inside the window", "AK1", now.Add(-14 * time.Minute), now, nonceReplayed},
		{"the same nonce of another access key", "AK2", now, now, nonceFresh},
	} {
		if got := c.use(tc.ak, "n-1", tc.signed, tc.at); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The attack of issue 16: a sustained stream of requests grew the cache
// without bound. Entries go when their generation leaves the window, whole,
// also in shards no later request touches.
func TestNonceCache_ForgetsWhatLeftTheWindowAndOnlyThat(t *testing.T) {
	c := newNonceCache(testSkew, 0)
	t0 := time.Unix(1_800_000_000, 0)
	const n = 5000
	for i := range n {
		if v := c.use("AK", strconv.Itoa(i), t0, t0); v != nonceFresh {
			t.Fatalf("nonce %d: %v", i, v)
		}
	}
	if got := c.len(); got != n {
		t.Fatalf("len = %d, want %d", got, n)
	}
	// Still inside the window: everything is remembered.
	at := t0.Add(testSkew)
	if v := c.use("AK", "0", t0, at); v != nonceReplayed {
		t.Fatalf("a nonce signed skew ago: %v", v)
	}
	// One generation later every request signed at t0 is refused for its
	// time, so the cache may forget them: one request empties every shard.
	later := t0.Add(testSkew + testSkew/4 + time.Second)
	if v := c.use("AK", "fresh", later, later); v != nonceFresh {
		t.Fatalf("a new nonce: %v", v)
	}
	if got := c.len(); got != 1 {
		t.Fatalf("after the window len = %d, want 1", got)
	}
}

// At its bound the cache sheds load (the caller answers 429) rather than
// forget a nonce still inside the window.
func TestNonceCache_FullRefusesInsteadOfForgetting(t *testing.T) {
	c := newNonceCache(testSkew, nonceShards*4)
	t0 := time.Unix(1_800_000_000, 0)
	var accepted []string
	full := 0
	for i := 0; i < 10_000 && full < 100; i++ {
		n := "n" + strconv.Itoa(i)
		switch c.use("AK", n, t0, t0) {
		case nonceFresh:
			accepted = append(accepted, n)
		case nonceFull:
			full++
		case nonceReplayed:
			t.Fatalf("fresh nonce %s refused as a replay", n)
		}
	}
	if full == 0 || len(accepted) > nonceShards*4 {
		t.Fatalf("accepted %d nonces with a bound of %d, refused %d as full", len(accepted), nonceShards*4, full)
	}
	for _, n := range accepted {
		if v := c.use("AK", n, t0, t0.Add(time.Minute)); v != nonceReplayed {
			t.Fatalf("nonce %s was forgotten inside the window (%v)", n, v)
		}
	}
	later := t0.Add(testSkew + testSkew/2)
	if v := c.use("AK", "after", later, later); v != nonceFresh {
		t.Fatalf("after the window the cache still refuses: %v", v)
	}
}

func TestFloorDivAndMod(t *testing.T) {
	for _, tc := range []struct{ a, b, q, m int64 }{{7, 2, 3, 1}, {-7, 2, -4, 1}, {-8, 2, -4, 0}, {0, 5, 0, 0}} {
		if q := floorDiv(tc.a, tc.b); q != tc.q {
			t.Errorf("floorDiv(%d,%d) = %d", tc.a, tc.b, q)
		}
		if m := mod(tc.a, tc.b); m != tc.m {
			t.Errorf("mod(%d,%d) = %d", tc.a, tc.b, m)
		}
	}
}

// BenchmarkNonceCache_Use is the per-request cost, from many goroutines, at
// a steady state where generations keep being dropped.
func BenchmarkNonceCache_Use(b *testing.B) {
	c := newNonceCache(testSkew, 0)
	var seq atomic.Int64
	start := time.Unix(1_800_000_000, 0)
	b.ReportAllocs()
	var worst atomic.Int64
	defer func() { b.ReportMetric(float64(worst.Load())/1e6, "worst-ms") }()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 32)
		for pb.Next() {
			began := time.Now()
			i := seq.Add(1)
			// 1,000 requests per simulated second: the window rolls over
			// many times in a run.
			now := start.Add(time.Duration(i) * time.Millisecond)
			buf = strconv.AppendInt(buf[:0], i, 36)
			if c.use("LTAI5tExampleAccessKey", string(buf), now, now) != nonceFresh {
				panic(fmt.Sprintf("nonce %d not fresh", i))
			}
			if d := int64(time.Since(began)); d > worst.Load() {
				worst.Store(d)
			}
		}
	})
}
