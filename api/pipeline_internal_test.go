package api

import (
	"context"
	"testing"
	"time"
)

// A finished call goes back to the pool cleared, unless something may
// still hold its context: one whose Done was asked for (a derived context,
// a goroutine waiting), or whose unbounded context was handed out.
func TestCallRelease_OnlyCallsNobodyHolds(t *testing.T) {
	for _, tt := range []struct {
		name string
		use  func(c *call)
		kept bool
	}{
		{"unused context", func(c *call) { _ = c.ctx.Err(); _ = c.ctx.Value("k") }, false},
		{"Done asked", func(c *call) { _ = c.ctx.Done() }, true},
		{"derived context", func(c *call) {
			_, cancel := context.WithCancel(c.ctx)
			cancel()
		}, true},
		{"unbounded context", func(c *call) { _ = c.unboundedCtx() }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &call{requestID: "R"}
			base, _, _ := c.reports.Init(context.Background())
			c.rctx.start(base, time.Minute)
			c.ctx, c.unbounded = &c.rctx, base
			tt.use(c)
			c.rctx.end()
			c.release()
			if kept := c.requestID != ""; kept != tt.kept {
				t.Fatalf("kept %v, want %v", kept, tt.kept)
			}
			if tt.kept && c.ctx.Err() == nil {
				t.Fatal("a kept call's context is not done after its request")
			}
		})
	}
}
