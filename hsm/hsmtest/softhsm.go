// Package hsmtest gives tests a SoftHSM2 of their own: a SOFTHSM2_CONF file
// and token directory in t.TempDir(), with tokens initialized by label.
//
// SoftHSM reads SOFTHSM2_CONF and lists its tokens only in C_Initialize,
// which package hsm runs when the first Token of the process opens and
// undoes when the last one closes. So: create every token a test needs with
// New before opening any, close every Token by the end of the test, and do
// not run such tests in parallel (New sets the environment with t.Setenv).
// Several tokens of one New are several slots of one module — the way an
// in-process cluster gives each node its own token.
//
// A machine without SoftHSM fails the test ("install softhsm2 (make
// deps)"): HSM tests are part of `make test` and must not pass by skipping.
package hsmtest

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// PIN and SOPIN are the PINs of every token New creates.
const (
	PIN   = "1234"
	SOPIN = "5678"
)

// SoftHSM is one test's SoftHSM2.
type SoftHSM struct {
	Module string // path of libsofthsm2.so
	Dir    string // holds softhsm2.conf and tokens/
	Conf   string // the SOFTHSM2_CONF file
}

// Module returns the path of libsofthsm2.so, failing the test if SoftHSM2
// (the library or softhsm2-util) is not installed.
func Module(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		tb.Fatal("softhsm2-util not found: install softhsm2 (make deps)")
	}
	for _, c := range []string{
		os.Getenv("SOFTHSM2_MODULE"),
		"/usr/lib/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/local/lib/softhsm/libsofthsm2.so",
	} {
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

// New writes a SoftHSM2 configuration with its own token directory, points
// SOFTHSM2_CONF at it for the rest of the test, and initializes one token
// per label (user PIN PIN, SO PIN SOPIN).
func New(tb testing.TB, labels ...string) *SoftHSM {
	tb.Helper()
	h := &SoftHSM{Module: Module(tb), Dir: tb.TempDir()}
	tokens := filepath.Join(h.Dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	h.Conf = filepath.Join(h.Dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(h.Conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("SOFTHSM2_CONF", h.Conf)
	for _, l := range labels {
		out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", l,
			"--pin", PIN, "--so-pin", SOPIN).CombinedOutput()
		if err != nil {
			tb.Fatalf("softhsm2-util --init-token %s: %v\n%s", l, err, out)
		}
	}
	return h
}

// PinFile writes the tokens' user PIN to a file and returns its path.
func (h *SoftHSM) PinFile(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "hsm.pin")
	if err := os.WriteFile(p, []byte(PIN+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// DomainKeyFile writes key as a domain key file (base64, as `kmsd hsm
// enroll --domain-key-file` reads it) and returns its path.
func DomainKeyFile(tb testing.TB, key []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "domain.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}
