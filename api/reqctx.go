package api

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkms/raftkms/kms"
)

// requestContext is the context a request's work runs under: the request's
// context (with the core's reports) bounded by the pipeline's deadline,
// and, once the caller is authenticated, the signature the request's
// writes carry (kms.Signature). It lives in the request's call.
//
// It behaves as context.WithDeadline(parent, deadline) with the signature's
// context.WithValue over it, which the pipeline used before, but most
// requests never wait on Done: those two cost six allocations, a runtime
// timer set and stopped, and an entry in the connection context's children,
// per request. So the real WithDeadline context (inner) is made only when
// somebody asks for Done (from then on everything is inner's), and until
// then Err compares the clock with the deadline and asks the parent.
type requestContext struct {
	parent   context.Context
	deadline time.Time
	sig      kms.Signature

	mu       sync.Mutex // making inner, ending
	inner    atomic.Pointer[deadlineCtx]
	finished atomic.Bool // end was called
}

type deadlineCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// start sets the context up over parent with a deadline timeout from now
// (the real clock, as context.WithTimeout's: the server's Clock may be a
// test's). A parent with an earlier deadline of its own gets the real
// context at once (not the pipeline's case: net/http's have none).
func (c *requestContext) start(parent context.Context, timeout time.Duration) {
	c.startAt(parent, time.Now(), timeout)
}

// startAt is start with now, a time just read from the real clock.
func (c *requestContext) startAt(parent context.Context, now time.Time, timeout time.Duration) {
	c.parent, c.deadline = parent, now.Add(timeout)
	if d, ok := parent.Deadline(); ok && d.Before(c.deadline) {
		c.Done()
	}
}

// end is the cancel of context.WithDeadline: the request is over.
func (c *requestContext) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished.Store(true)
	if in := c.inner.Load(); in != nil {
		in.cancel()
	}
}

func (c *requestContext) Deadline() (time.Time, bool) {
	if in := c.inner.Load(); in != nil {
		return in.ctx.Deadline()
	}
	return c.deadline, true
}

func (c *requestContext) Done() <-chan struct{} {
	if in := c.inner.Load(); in != nil {
		return in.ctx.Done()
	}
	return c.makeInner().ctx.Done()
}

func (c *requestContext) makeInner() *deadlineCtx {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in := c.inner.Load(); in != nil {
		return in
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	in := &deadlineCtx{ctx: ctx, cancel: cancel}
	if c.finished.Load() {
		cancel()
	}
	c.inner.Store(in)
	return in
}

func (c *requestContext) Err() error {
	if in := c.inner.Load(); in != nil {
		return in.ctx.Err()
	}
	if c.finished.Load() {
		return context.Canceled
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		// Past the deadline: from now on the real context answers (it
		// is done at once, with DeadlineExceeded and its cause).
		return c.makeInner().ctx.Err()
	}
	return nil
}

func (c *requestContext) Value(key any) any {
	if v, ok := c.sig.Lookup(key); ok {
		return v
	}
	if in := c.inner.Load(); in != nil {
		// inner answers the context package's own key with its
		// cancelCtx, so a context derived from this one is cancelled
		// with it directly (no goroutine).
		return in.ctx.Value(key)
	}
	return c.parent.Value(key)
}
