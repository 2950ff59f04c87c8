package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestParseFlags_DebugAddrIsLoopbackOnlyUnlessInsecure(t *testing.T) {
	if _, err := parseFlags(append(baseArgs(t), "--debug-addr", "0.0.0.0:6060"), io.Discard); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a public --debug-addr was accepted (%v)", err)
	}
	c, err := parseFlags(append(baseArgs(t), "--debug-addr", "127.0.0.1:6060"), io.Discard)
	if err != nil || c.debugAddr != "127.0.0.1:6060" {
		t.Fatalf("loopback --debug-addr: %v, %q", err, c.debugAddr)
	}
	if c, err := parseFlags(baseArgs(t), io.Discard); err != nil || c.debugAddr != "" {
		t.Fatalf("the profiler is on by default (%q, %v)", c.debugAddr, err)
	}
}

func TestStartDebug_ServesProfilesOnItsOwnListener(t *testing.T) {
	addr, stop, err := startDebug("127.0.0.1:0", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Fatal("the profiler still answers after stop")
	}
}
