package cluster

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Only faults of this node are logged at ERROR: a closed socket on our own
// stop goes to debug, a peer's probe timeout or a push/pull with a peer
// that is down or does not answer to warn, anything else keeps
// memberlist's level.
func TestMemberlistLogger_Levels(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"[ERR] memberlist: Error reading UDP packet: read udp 127.0.0.1:1: use of closed network connection", "[DEBUG]"},
		{"[ERR] memberlist: Failed fallback TCP ping: timeout 100ms: read tcp 127.0.0.1:2->127.0.0.1:3: i/o timeout", "[WARN]"},
		{"[ERR] memberlist: Failed fallback TCP ping: EOF", "[ERROR]"},
		{"[ERR] memberlist: Push/Pull with n3 failed: dial tcp 127.0.0.1:34313: connect: connection refused", "[WARN]"},
		{"[ERR] memberlist: Push/Pull with n3 failed: dial tcp 127.0.0.1:34313: i/o timeout", "[WARN]"},
		{"[ERR] memberlist: Push/Pull with n3 failed: Remote state is encrypted and encryption is not configured", "[ERROR]"},
		{"[ERR] memberlist: Failed to send gossip to 127.0.0.1:4: permission denied", "[ERROR]"},
		{"[INFO] memberlist: Suspect n2 has failed, no acks received", "[INFO]"},
	} {
		var buf bytes.Buffer
		l := memberlistLogger(hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace}))
		l.Print(tc.line)
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%q logged as %q, want %s", tc.line, buf.String(), tc.want)
		}
	}
}
