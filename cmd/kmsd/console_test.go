package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags_ConsoleIdleTimeout(t *testing.T) {
	c, err := parseFlags(baseArgs(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.consoleIdle != 30*time.Minute {
		t.Fatalf("default %s, want 30m", c.consoleIdle)
	}
	if c, err = parseFlags(append(baseArgs(t), "--console-idle-timeout", "2h"), io.Discard); err != nil || c.consoleIdle != 2*time.Hour {
		t.Fatalf("2h: %s, %v", c.consoleIdle, err)
	}
	for _, bad := range []string{"0s", "30s", "13h", "-1m"} {
		if _, err := parseFlags(append(baseArgs(t), "--console-idle-timeout", bad), io.Discard); err == nil || !strings.Contains(err.Error(), "--console-idle-timeout") {
			t.Errorf("--console-idle-timeout %s: %v", bad, err)
		}
	}
	var help bytes.Buffer
	parseFlags([]string{"--help"}, &help)
	if !strings.Contains(help.String(), "-console-idle-timeout") || !strings.Contains(help.String(), "/console/") {
		t.Fatal("kmsd --help does not document --console-idle-timeout")
	}
}
