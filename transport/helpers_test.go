package transport

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testLogger is silent unless TRANSPORT_TEST_LOG names a level (e.g. debug).
func testLogger(name string) hclog.Logger {
	level := hclog.Off
	if v := os.Getenv("TRANSPORT_TEST_LOG"); v != "" {
		level = hclog.LevelFromString(v)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: os.Stderr})
}

// testAuthKey is the cluster authentication key every test transport shares
// unless a test sets another.
var testAuthKey = bytes.Repeat([]byte{0x5a}, 32)

// newTestTransport starts a transport on a loopback port, closed at cleanup.
func newTestTransport(t *testing.T, mods ...func(*Config)) *Transport {
	t.Helper()
	cfg := Config{BindAddr: "127.0.0.1:0", AuthKey: testAuthKey, Logger: testLogger("transport")}
	for _, m := range mods {
		m(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// recv waits for a value on ch, failing the test after a generous bound.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// echoConcurrently has workers goroutines make calls "echo" calls each
// through cli to addr, the request of worker w's call i being req(w, i),
// and reports every call that failed or got back other bytes.
func echoConcurrently(t *testing.T, ctx context.Context, cli *Transport, addr string, workers, calls int, req func(w, i int) []byte) {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				r := req(w, i)
				got, err := cli.Call(ctx, addr, "echo", r)
				if err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(got, r) {
					errc <- fmt.Errorf("worker %d call %d: sent %d bytes, got %d different bytes", w, i, len(r), len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}
