package main

import (
	"io"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftkms/raftkms/internal/testutil"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "2GiB": 2 << 30, "1.5GiB": 3 << 29, "800MB": 800e6, "4096": 4096, "64KiB": 64 << 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1GiB", "0", "1XB", "99999999999TiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestParseFlags_GCDefaultsAndRefusals(t *testing.T) {
	c, err := parseFlags(baseArgs(t), io.Discard)
	if err != nil || c.gcPercent != DefaultGCPercent || c.memoryLimit != "" {
		t.Fatalf("defaults: %d %q %v", c.gcPercent, c.memoryLimit, err)
	}
	for _, args := range [][]string{{"--gc-percent", "5"}, {"--memory-limit", "lots"}} {
		if _, err := parseFlags(append(baseArgs(t), args...), io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// applyGC sets what the flags say unless the environment says otherwise;
// the default memory limit is a share of the memory there is.
func TestApplyGC_FlagsUnlessTheEnvironmentSays(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	if err := applyGC(250, "1GiB", hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(250); got != 250 {
		t.Fatalf("GC percent %d, want 250", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Fatalf("memory limit %d, want 1GiB", got)
	}
	if err := applyGC(250, "", hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	if got, avail := debug.SetMemoryLimit(-1), availableMemory(); avail > 0 && (got <= 0 || got > avail) {
		t.Fatalf("default memory limit %d with %d available", got, avail)
	}
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if err := applyGC(400, "0", hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(150); got != 150 {
		t.Fatalf("GOGC=150 in the environment, but the percent became %d", got)
	}
}

// The headroom rule keeps --gc-percent on a small heap and lowers it as
// the live heap grows, down to minGCPercent.
func TestGCPercentFor_HeadroomBoundsTheHeapGrowth(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom int64
		want           int
	}{
		{20 * mib, 512 * mib, 400},  // small node: the flag's percent
		{128 * mib, 512 * mib, 400}, // exactly 4× headroom
		{256 * mib, 512 * mib, 200}, // grows by 512 MiB at most
		{1024 * mib, 512 * mib, 50}, // a million keys
		{4096 * mib, 512 * mib, 50}, // never below the floor
		{1024 * mib, 0, 400},        // headroom off
		{0, 512 * mib, 400},         // nothing measured yet
	} {
		if got := gcPercentFor(c.live, c.headroom, 400); got != c.want {
			t.Errorf("gcPercentFor(live %d MiB, headroom %d MiB) = %d, want %d", c.live/mib, c.headroom/mib, got, c.want)
		}
	}
}

// The headroom rule runs after each collection, with no timer: a live heap
// far above the headroom lowers the percent to the floor once a collection
// has measured it.
func TestGCHeadroom_FollowsEachCollection(t *testing.T) {
	prev := debug.SetGCPercent(400)
	defer debug.SetGCPercent(prev)
	stop := startGCHeadroom(400, 1, hclog.NewNullLogger())
	defer stop()
	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	percent := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	if p := percent(); p != 400 {
		t.Fatalf("percent %d before any collection, want 400", p)
	}
	runtime.GC()
	testutil.Eventually(t, "the percent to follow the collection", 5*time.Second, func() bool {
		return percent() == minGCPercent
	})
}
