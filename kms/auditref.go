package kms

import (
	"context"
	"sync"
)

// Resolved tells the caller of an operation which key and key version the
// operation resolved, for the request's audit record. The core records them
// as soon as it has them — before authorization, state and usage checks —
// so a refused request (a denied Decrypt, a disabled key) names the key it
// concerned, and nothing has to parse an answer or a ciphertext again.
type Resolved struct {
	mu        sync.Mutex
	keyID     string
	versionID string
}

type resolvedKey struct{}

// WithResolved returns a context whose operations report the key and
// version they resolve to the returned Resolved.
func WithResolved(ctx context.Context) (context.Context, *Resolved) {
	r := &Resolved{}
	return context.WithValue(ctx, resolvedKey{}, r), r
}

// Key returns the key and version last resolved ("" for what was not).
func (r *Resolved) Key() (keyID, versionID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keyID, r.versionID
}

// noteKey records a resolved key and, when known, its version. Naming
// another key forgets the previous key's version (ReEncrypt resolves its
// source, then its destination; the record names the last).
func noteKey(ctx context.Context, keyID, versionID string) {
	r, ok := ctx.Value(resolvedKey{}).(*Resolved)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if keyID != "" && keyID != r.keyID {
		r.keyID, r.versionID = keyID, versionID
		return
	}
	if versionID != "" {
		r.versionID = versionID
	}
}

// reportsCtx carries a request's HSMRoute and Resolved in one allocation
// (WithReports), where WithHSMRoute and WithResolved take two each.
type reportsCtx struct {
	context.Context
	route    HSMRoute
	resolved Resolved
}

func (c *reportsCtx) Value(key any) any {
	switch key.(type) {
	case hsmRouteKey:
		return &c.route
	case resolvedKey:
		return &c.resolved
	}
	return c.Context.Value(key)
}

// WithReports is WithHSMRoute and WithResolved at once: the context every
// API request runs under.
func WithReports(ctx context.Context) (context.Context, *HSMRoute, *Resolved) {
	return new(Reports).Init(ctx)
}

// Reports is WithReports's context kept in a struct of the caller's (the
// API pipeline's per-request call), so it costs no allocation of its own.
// Init it once, before use; it must not be copied after.
type Reports struct{ c reportsCtx }

// Init makes r the context WithReports returns, over ctx.
func (r *Reports) Init(ctx context.Context) (context.Context, *HSMRoute, *Resolved) {
	r.c.Context = ctx
	return &r.c, &r.c.route, &r.c.resolved
}
