package cluster

import (
	"bytes"
	"io"
	"log"

	"github.com/hashicorp/go-hclog"
)

// memberlistLogger is the standard logger memberlist writes to, with levels
// inferred from its "[ERR]"-style prefixes, and two corrections so that
// [ERROR] in a node's log means a fault of that node:
//
//   - memberlist's Shutdown closes its sockets before it stops its gossip
//     and probe timers, so a timer that fires in between logs "[ERR] ... use
//     of closed network connection" on every normal stop. That error can only
//     come from this process closing its own socket, never from a peer or the
//     network, so it is logged at debug.
//   - "Failed fallback TCP ping: ... i/o timeout" is a peer that did not
//     answer a probe in time: exactly what the failure detector exists to
//     notice (it then marks the peer suspect, and dead if it stays silent,
//     logged on their own). It says nothing wrong about this node, and a busy
//     or paused peer produces it, so it is logged as a warning.
//   - "Push/Pull with PEER failed: ... connection refused" (or an i/o
//     timeout) is the periodic state exchange reaching a peer that is down
//     or silent: the same thing for the failure detector to notice, and what
//     every node logs when a whole cluster stops at once. A warning too; a
//     push/pull that fails otherwise (a peer with another key, a bad
//     message) stays an error.
func memberlistLogger(l hclog.Logger) *log.Logger {
	w := l.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
	return log.New(closedSocketWriter{w}, "", 0)
}

type closedSocketWriter struct{ w io.Writer }

var (
	errPrefix        = []byte("[ERR]")
	debugPrefix      = []byte("[DEBUG]")
	warnPrefix       = []byte("[WARN]")
	closedSocket     = []byte("use of closed network connection")
	fallbackPingFail = []byte("Failed fallback TCP ping")
	ioTimeout        = []byte("i/o timeout")
	pushPullFail     = []byte("Push/Pull with ")
	connRefused      = []byte("connection refused")
)

func (c closedSocketWriter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, errPrefix) {
		return c.w.Write(p)
	}
	var q []byte
	switch {
	case bytes.Contains(p, closedSocket):
		q = bytes.Replace(p, errPrefix, debugPrefix, 1)
	case bytes.Contains(p, fallbackPingFail) && bytes.Contains(p, ioTimeout),
		bytes.Contains(p, pushPullFail) && (bytes.Contains(p, connRefused) || bytes.Contains(p, ioTimeout)):
		q = bytes.Replace(p, errPrefix, warnPrefix, 1)
	default:
		return c.w.Write(p)
	}
	if _, err := c.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
