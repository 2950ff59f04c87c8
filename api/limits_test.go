package api

import (
	"errors"
	"testing"
	"time"

	"github.com/raftkms/raftkms/kms"
)

func TestLimiter_TokenBucket(t *testing.T) {
	l := newLimiter(100)
	now := time.Unix(1000, 0)
	// Burst of 5 at 5/s, then refused, then refilled by elapsed time.
	for i := 0; i < 5; i++ {
		if err := l.allowRate("a", "symmetric", 5, now); err != nil {
			t.Fatalf("request %d within the burst refused: %v", i, err)
		}
	}
	if err := l.allowRate("a", "symmetric", 5, now); !errors.Is(err, errThrottled) {
		t.Fatalf("6th request in the same instant: %v", err)
	}
	// Other classes and accounts have their own buckets.
	if err := l.allowRate("a", "read", 5, now); err != nil {
		t.Fatal(err)
	}
	if err := l.allowRate("b", "symmetric", 5, now); err != nil {
		t.Fatal(err)
	}
	if err := l.allowRate("a", "symmetric", 5, now.Add(200*time.Millisecond)); err != nil {
		t.Fatalf("one token refilled after 200ms at 5/s: %v", err)
	}
	if err := l.allowRate("a", "symmetric", 5, now.Add(200*time.Millisecond)); !errors.Is(err, errThrottled) {
		t.Fatalf("only one token refilled: %v", err)
	}
	// A fractional rate still allows one request.
	if err := l.allowRate("c", "write", 0.5, now); err != nil {
		t.Fatal(err)
	}
	if err := l.allowRate("c", "write", 0.5, now.Add(time.Second)); !errors.Is(err, errThrottled) {
		t.Fatalf("0.5/s allowed two in one second: %v", err)
	}
	if err := l.allowRate("x", "write", 0, now); err != nil {
		t.Fatalf("no limit configured: %v", err)
	}
}

func TestLimiter_FairAdmission(t *testing.T) {
	l := newLimiter(8)
	now := time.Unix(1000, 0)
	var releases []slot
	// One account floods: it gets the uncontended half, then its fair
	// share (all 8 while it is alone), then nothing.
	for i := 0; i < 8; i++ {
		rel, err := l.admit("flood", now)
		if err != nil {
			t.Fatalf("flood request %d refused while alone: %v", i, err)
		}
		releases = append(releases, rel)
	}
	if _, err := l.admit("flood", now); !errors.Is(err, errThrottled) {
		t.Fatalf("over capacity: %v", err)
	}
	// At capacity everybody waits for a slot...
	if _, err := l.admit("quiet", now); !errors.Is(err, errThrottled) {
		t.Fatalf("over capacity, quiet account: %v", err)
	}
	// ...but as soon as one frees, the flooding account is over its share
	// (8/2 = 4) and the quiet one is not.
	releases[0].release()
	releases = releases[1:]
	if _, err := l.admit("flood", now); !errors.Is(err, errThrottled) {
		t.Fatalf("flood took a freed slot beyond its fair share: %v", err)
	}
	rel, err := l.admit("quiet", now)
	if err != nil {
		t.Fatalf("quiet account starved: %v", err)
	}
	rel.release()
	// Once the quiet account's demand is old news, the flood may use the
	// node again.
	later := now.Add(2 * demandWindow)
	if rel, err := l.admit("flood", later); err != nil {
		t.Fatalf("flood after the quiet account went away: %v", err)
	} else {
		rel.release()
	}
	for _, r := range releases {
		r.release()
	}
	if l.total != 0 || len(l.inFlight) != 0 {
		t.Fatalf("leaked slots: total %d, accounts %v", l.total, l.inFlight)
	}
}

// The RPC face sorts its actions into the rate-limit classes an operator
// sets limits for.
func TestRPCClass_SortsActionsIntoLimitClasses(t *testing.T) {
	for action, want := range map[string]string{
		"Encrypt": kms.ClassSymmetric, "Decrypt": kms.ClassSymmetric, "ReEncrypt": kms.ClassSymmetric,
		"GenerateDataKeyWithoutPlaintext": kms.ClassSymmetric, "ExportDataKey": kms.ClassSymmetric,
		"AsymmetricSign": kms.ClassAsymmetric, "GetPublicKey": kms.ClassAsymmetric,
		"DescribeKey": kms.ClassRead, "ListKeys": kms.ClassRead, "GetKeyPolicy": kms.ClassRead,
		"GetParametersForImport": kms.ClassWrite, "CreateKey": kms.ClassWrite, "AssumeRole": kms.ClassWrite,
	} {
		if got := rpcClass(action); got != want {
			t.Errorf("rpcClass(%s) = %s, want %s", action, got, want)
		}
	}
}
