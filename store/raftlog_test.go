package store

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Which of Raft's [ERROR] lines stay errors: a failure to reach a peer is
// one unless the peer announced it was stopping.
func TestRaftLogger_PeerThatAnnouncedItsStopIsAWarning(t *testing.T) {
	stopping := func(addr string) bool { return addr == "10.0.0.2:7001" }
	gone := raft.Server{Suffrage: raft.Voter, ID: "n2", Address: "10.0.0.2:7001"}
	crashed := raft.Server{Suffrage: raft.Voter, ID: "n3", Address: "10.0.0.3:7001"}
	for _, tc := range []struct {
		name  string
		log   func(l hclog.Logger)
		level string
	}{
		{"appendEntries to a stopping peer", func(l hclog.Logger) {
			l.Error("failed to appendEntries to", "peer", gone, "error", io.EOF)
		}, "[WARN]"},
		{"heartbeat to a stopping peer", func(l hclog.Logger) {
			l.Error("failed to heartbeat to", "peer", gone.Address, "backoff time", 10, "error", io.EOF)
		}, "[WARN]"},
		{"vote from a stopping peer, connection refused", func(l hclog.Logger) {
			l.Error("failed to make requestVote RPC", "target", gone, "error", errors.New("dial tcp: connection refused"), "term", 3)
		}, "[WARN]"},
		{"appendEntries to a peer that said nothing", func(l hclog.Logger) {
			l.Error("failed to appendEntries to", "peer", crashed, "error", io.EOF)
		}, "[ERROR]"},
		{"heartbeat to a peer that said nothing", func(l hclog.Logger) {
			l.Error("failed to heartbeat to", "peer", crashed.Address, "error", io.EOF)
		}, "[ERROR]"},
		{"a line about no peer", func(l hclog.Logger) {
			l.Error("failed to commit logs", "error", io.EOF)
		}, "[ERROR]"},
		{"through a derived logger", func(l hclog.Logger) {
			l.Named("net").With("x", 1).Error("failed to appendEntries to", "peer", gone, "error", io.EOF)
		}, "[WARN]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			base := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug})
			tc.log(raftLogger{Logger: base, stopping: stopping})
			if !strings.Contains(buf.String(), tc.level) {
				t.Fatalf("want a %s line, got %q", tc.level, buf.String())
			}
		})
	}
	// Without the hook, nothing changes.
	var buf bytes.Buffer
	raftLogger{Logger: hclog.New(&hclog.LoggerOptions{Output: &buf})}.Error("failed to appendEntries to", "peer", gone, "error", io.EOF)
	if !strings.Contains(buf.String(), "[ERROR]") {
		t.Fatalf("without PeerStopping: %q", buf.String())
	}
}
