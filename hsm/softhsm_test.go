//go:build cgo

package hsm

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	testPIN   = "1234"
	testSOPIN = "5678"
)

// softhsmModule finds libsofthsm2.so and softhsm2-util, or fails the test:
// HSM tests are part of `make test` and must not pass by skipping.
func softhsmModule(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		tb.Fatal("softhsm2-util not found: install softhsm2 (make deps)")
	}
	candidates := []string{
		os.Getenv("SOFTHSM2_MODULE"),
		"/usr/lib/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/local/lib/softhsm/libsofthsm2.so",
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	tb.Fatal("libsofthsm2.so not found: install softhsm2 (make deps)")
	return ""
}

// softHSM is one test's SoftHSM: its own config file and token directory.
// SoftHSM reads SOFTHSM2_CONF and lists its tokens only in C_Initialize,
// so every token a test needs is created before the test opens the first
// one, and every Token is closed by the end of the test (the module is
// finalized with the last one and the next test starts afresh).
type softHSM struct {
	module string
	dir    string
}

func newSoftHSM(tb testing.TB, labels ...string) *softHSM {
	tb.Helper()
	h := &softHSM{module: softhsmModule(tb), dir: tb.TempDir()}
	tokens := filepath.Join(h.dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	conf := filepath.Join(h.dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("SOFTHSM2_CONF", conf)
	for _, l := range labels {
		out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", l,
			"--pin", testPIN, "--so-pin", testSOPIN).CombinedOutput()
		if err != nil {
			tb.Fatalf("softhsm2-util --init-token %s: %v\n%s", l, err, out)
		}
	}
	return h
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

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
