package api

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

func newRequestContext(parent context.Context, timeout time.Duration) *requestContext {
	c := &requestContext{}
	c.start(parent, timeout)
	return c
}

func isDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// Before anything happens the request context is live, with the
// pipeline's deadline and the parent's values.
func TestRequestContext_LiveUntilEnd(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	before := time.Now()
	c := newRequestContext(parent, time.Minute)
	if d, ok := c.Deadline(); !ok || d.Before(before.Add(time.Minute)) || d.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Deadline %v %v, want a minute from now", d, ok)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err %v", err)
	}
	if c.Value(ctxKey{}) != "v" {
		t.Fatal("parent's value not seen")
	}
	c.end()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err after end %v, want Canceled", c.Err())
	}
	if !isDone(c) {
		t.Fatal("Done not closed after end")
	}
}

// A context derived before the end (Done made) is cancelled by end, and
// Done asked for first, ended later, closes.
func TestRequestContext_DerivedCancelledByEnd(t *testing.T) {
	c := newRequestContext(context.Background(), time.Minute)
	child, cancel := context.WithCancel(c)
	defer cancel()
	if isDone(child) || isDone(c) {
		t.Fatal("done before end")
	}
	if c.Value(ctxKey{}) != nil {
		t.Fatal("unexpected value")
	}
	c.end()
	if !isDone(child) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("derived context not cancelled by end: %v", child.Err())
	}
}

// A cancelled parent (the client went away) is seen through Err and Done.
func TestRequestContext_ParentCancelled(t *testing.T) {
	for _, doneFirst := range []bool{false, true} {
		parent, cancel := context.WithCancel(context.Background())
		c := newRequestContext(parent, time.Minute)
		if doneFirst {
			c.Done()
		}
		cancel()
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("doneFirst %v: Err %v, want Canceled", doneFirst, c.Err())
		}
		<-c.Done()
		c.end()
	}
}

// Past the deadline the context is done with DeadlineExceeded, whether
// somebody waited on Done or only looks at Err.
func TestRequestContext_DeadlineExceeded(t *testing.T) {
	for _, doneFirst := range []bool{false, true} {
		var c *requestContext
		if doneFirst {
			c = newRequestContext(context.Background(), 20*time.Millisecond)
			<-c.Done()
		} else {
			// Already past (the Err-only path makes no timer to wait on).
			c = newRequestContext(context.Background(), -time.Millisecond)
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
			t.Fatalf("doneFirst %v: Err %v, Cause %v, want DeadlineExceeded", doneFirst, c.Err(), context.Cause(c))
		}
		if !isDone(c) {
			t.Fatal("Done not closed past the deadline")
		}
		c.end()
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err after end %v, want DeadlineExceeded (the first reason stays)", c.Err())
		}
	}
}

// A parent whose deadline comes first bounds the request context.
func TestRequestContext_ParentDeadlineFirst(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pd, _ := parent.Deadline()
	c := newRequestContext(parent, time.Hour)
	defer c.end()
	if d, _ := c.Deadline(); !d.Equal(pd) {
		t.Fatalf("Deadline %v, want the parent's %v", d, pd)
	}
}

// Done, Err and end from several goroutines at once (run with -race).
func TestRequestContext_Concurrent(t *testing.T) {
	for range 50 {
		c := newRequestContext(context.Background(), time.Minute)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				_ = c.Err()
				ch := c.Done()
				_ = c.Value(ctxKey{})
				_, _ = c.Deadline()
				if c.finished.Load() {
					<-ch
				}
			})
		}
		wg.Go(c.end)
		wg.Wait()
		<-c.Done()
	}
}
