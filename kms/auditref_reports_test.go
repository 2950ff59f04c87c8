package kms

import (
	"context"
	"testing"
	"time"
)

type otherKey struct{}

// WithReports' context answers both reports, passes every other value and
// the parent's cancellation through, and a timeout under it works as usual.
func TestWithReports_BothReportsAndTheParentsValues(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "v"))
	ctx, route, resolved := WithReports(parent)
	ctx, cancelT := context.WithTimeout(ctx, time.Minute)
	defer cancelT()
	noteKey(ctx, "key-1", "ver-1")
	if k, v := resolved.Key(); k != "key-1" || v != "ver-1" {
		t.Fatalf("resolved %q %q", k, v)
	}
	if r, ok := ctx.Value(hsmRouteKey{}).(*HSMRoute); !ok || r != route {
		t.Fatal("the HSM route is not the one returned")
	}
	route.add("n2")
	if got := route.ForwardedTo(); got != "n2" {
		t.Fatalf("ForwardedTo %q", got)
	}
	if ctx.Value(otherKey{}) != "v" {
		t.Fatal("a parent's value is lost")
	}
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the parent's cancellation did not reach the child")
	}
}
