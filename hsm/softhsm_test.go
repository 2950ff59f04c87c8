//go:build cgo

package hsm

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkms/raftkms/hsm/hsmtest"
)

const testPIN = hsmtest.PIN

// softHSM is one test's SoftHSM (see package hsmtest for the rules: every
// token is created before the first Open, every Token closed by the end).
type softHSM struct {
	module string
	dir    string
}

func newSoftHSM(tb testing.TB, labels ...string) *softHSM {
	tb.Helper()
	h := hsmtest.New(tb, labels...)
	return &softHSM{module: h.Module, dir: h.Dir}
}

func (h *softHSM) config(tb testing.TB, label string) Config {
	var logger hclog.Logger = hclog.NewNullLogger()
	if t, ok := tb.(*testing.T); ok && testing.Verbose() {
		logger = hclog.New(&hclog.LoggerOptions{Output: t.Output(), Level: hclog.Debug})
	}
	return Config{
		ModulePath:     h.module,
		TokenLabel:     label,
		PIN:            testPIN,
		Logger:         logger,
		Metrics:        prometheus.NewRegistry(),
		HealthInterval: -1,
	}
}

func (h *softHSM) open(tb testing.TB, label string) *Token {
	tb.Helper()
	return h.openWith(tb, h.config(tb, label))
}

func (h *softHSM) openWith(tb testing.TB, cfg Config) *Token {
	tb.Helper()
	tok, err := Open(cfg)
	if err != nil {
		tb.Fatalf("open token %q: %v", cfg.TokenLabel, err)
	}
	tb.Cleanup(func() { tok.Close() })
	return tok
}

func randomBytes(tb testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

func mustEnroll(tb testing.TB, tok *Token, domain string, key []byte) {
	tb.Helper()
	if _, err := tok.Enroll(testCtx(tb), domain, key); err != nil {
		tb.Fatalf("enroll %q in %q: %v", domain, tok.Label(), err)
	}
}
