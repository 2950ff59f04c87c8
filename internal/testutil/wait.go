// Package testutil holds helpers shared by the project's tests.
package testutil

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually re-checks its condition.
const pollInterval = 5 * time.Millisecond

// Eventually waits until cond holds, failing the test if it does not
// within the timeout. It is the one way tests wait for the system: on a
// condition, with a deadline, never a bare sleep.
func Eventually(tb testing.TB, what string, within time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(pollInterval)
	}
}
