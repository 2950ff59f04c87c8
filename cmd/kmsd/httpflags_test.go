package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/internal/node"
)

func TestParseFlags_HTTPLimits(t *testing.T) {
	c, err := parseFlags(baseArgs(t), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := node.HTTPLimits{
		ReadHeaderTimeout: node.DefaultHTTPReadHeaderTimeout, ReadTimeout: node.DefaultHTTPReadTimeout,
		WriteTimeout: node.DefaultHTTPWriteTimeout, IdleTimeout: node.DefaultHTTPIdleTimeout,
		MaxConnections: node.DefaultHTTPMaxConnections, NonceCacheEntries: api.DefaultNonceCacheEntries,
	}
	if got := c.httpLimits(); got != want {
		t.Fatalf("defaults %+v, want %+v", got, want)
	}
	if want.ReadTimeout > 30*time.Second || want.IdleTimeout != 90*time.Second {
		t.Fatalf("defaults %+v: read timeout at most 30s, idle 90s", want)
	}
	c, err = parseFlags(append(baseArgs(t), "--http-read-timeout", "5s", "--http-write-timeout", "1m",
		"--http-idle-timeout", "2m", "--http-read-header-timeout", "2s", "--max-connections", "100", "--nonce-cache-entries", "100000"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = node.HTTPLimits{ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxConnections: 100, NonceCacheEntries: 100000}
	if got := c.httpLimits(); got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
}

func TestParseFlags_RefusesNonPositiveHTTPLimits(t *testing.T) {
	for _, args := range [][]string{
		{"--http-read-timeout", "0s"},
		{"--http-write-timeout", "-1s"},
		{"--http-idle-timeout", "0"},
		{"--http-read-header-timeout", "0s"},
		{"--max-connections", "0"},
		{"--max-connections", "-5"},
		{"--nonce-cache-entries", "10"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, err := parseFlags(append(baseArgs(t), args...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), args[0]) {
				t.Fatalf("err = %v, want a refusal naming %s", err, args[0])
			}
		})
	}
}
