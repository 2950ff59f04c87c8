package kms

import "context"

type dryRunKey struct{}

// WithDryRun marks ctx so that a cryptographic operation runs every check
// (parameters, key, state, usage, permissions) and then stops with
// ErrDryRun instead of doing the work.
func WithDryRun(ctx context.Context) context.Context {
	return context.WithValue(ctx, dryRunKey{}, true)
}

func isDryRun(ctx context.Context) bool {
	v, _ := ctx.Value(dryRunKey{}).(bool)
	return v
}
