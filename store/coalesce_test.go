package store

import (
	"sync/atomic"
	"testing"
	"time"
)

// Triggers while a run is under way get one more run after it, not one
// each, and a trigger after the last run starts one more.
func TestCoalescer_OneMoreRunForTriggersDuringARun(t *testing.T) {
	var runs atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	c := &coalescer{}
	c.fn = func() {
		n := runs.Add(1)
		if n == 1 {
			close(started)
			<-release
		}
	}
	c.trigger()
	<-started
	for i := 0; i < 10; i++ {
		c.trigger()
	}
	close(release)
	waitFor(t, "the coalescer to go idle", 5*time.Second, func() bool { return !c.running.Load() })
	if got := runs.Load(); got != 2 {
		t.Fatalf("%d runs, want 2 (the first, and one for the ten triggers during it)", got)
	}
	c.trigger()
	waitFor(t, "a run for a trigger while idle", 5*time.Second, func() bool { return runs.Load() == 3 })
}
