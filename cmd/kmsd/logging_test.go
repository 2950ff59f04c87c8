package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseFlags_RefusesUnknownLogLevels(t *testing.T) {
	for _, level := range []string{"verbose", "warning", "", "inf", "5"} {
		t.Run(level, func(t *testing.T) {
			_, err := parseFlags(append(baseArgs(t), "--log-level", level), io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, l := range logLevels {
				if !strings.Contains(err.Error(), l) {
					t.Fatalf("the message does not list %q: %v", l, err)
				}
			}
		})
	}
	// Before any other complaint: the level alone is enough to refuse.
	if _, err := parseFlags([]string{"--log-level", "bogus"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("kmsd --log-level bogus: %v", err)
	}
	for _, level := range []string{"trace", "debug", "info", "warn", "error", "DEBUG"} {
		if _, err := parseFlags(append(baseArgs(t), "--log-level", level), io.Discard); err != nil {
			t.Fatalf("%s refused: %v", level, err)
		}
	}
}

type raftNode struct{ addr string }

func (n *raftNode) String() string { return "Node at " + n.addr }

type nilStringer struct{ x int }

func (n *nilStringer) String() string { return "n" + string(rune('0'+n.x)) }

func TestNewLogger_JSONKeepsStructuredValues(t *testing.T) {
	var out bytes.Buffer
	logger := newLogger("debug", true, &out).Named("raft").With("node_id", "n1")
	var nilPtr *nilStringer
	logger.Info("entering follower state",
		"follower", &raftNode{addr: "127.0.0.1:9701"}, // a Stringer without a JSON form
		"term", 7,
		"servers", []map[string]any{{"ID": "n1", "Voter": true}},
		"timeout", 1500*time.Millisecond,
		"error", errors.New("boom"),
		"at", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"missing", nilPtr)
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON object: %v: %s", err, out.String())
	}
	want := map[string]any{
		"@message": "entering follower state",
		"@module":  "kmsd.raft",
		"node_id":  "n1",
		"follower": "Node at 127.0.0.1:9701",
		"term":     float64(7),
		"timeout":  "1.5s",
		"error":    "boom",
		"at":       "2026-01-02T03:04:05Z",
		"missing":  "<nil>",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v (line %s)", k, line[k], v, out.String())
		}
	}
	servers, ok := line["servers"].([]any)
	if !ok || len(servers) != 1 || servers[0].(map[string]any)["Voter"] != true {
		t.Errorf("servers is not kept as a JSON array of objects: %#v", line["servers"])
	}
}

func TestNewLogger_TextIsPlain(t *testing.T) {
	var out bytes.Buffer
	newLogger("warn", false, &out).Info("hidden")
	newLogger("warn", false, &out).Warn("shown", "k", 1)
	if s := out.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "[WARN]  kmsd: shown: k=1") {
		t.Fatalf("output: %q", s)
	}
}

// The process itself: kmsd --log-level bogus exits 2 and lists the levels.
func TestMain_UnknownLogLevelExits2(t *testing.T) {
	if os.Getenv("KMSD_RUN_MAIN") == "1" {
		os.Args = append([]string{"kmsd"}, strings.Fields(os.Getenv("KMSD_ARGS"))...)
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMain_UnknownLogLevelExits2$")
	cmd.Env = append(os.Environ(), "KMSD_RUN_MAIN=1", "KMSD_ARGS=--log-level verbose")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v (stderr %s)", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "trace, debug, info, warn, error") {
		t.Fatalf("stderr does not list the levels: %s", stderr.String())
	}
}
