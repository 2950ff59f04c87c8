package cluster

import (
	"bytes"
	"io"
	"log"

	"github.com/hashicorp/go-hclog"
)

// memberlistLogger is the standard logger memberlist writes to, with levels
// inferred from its "[ERR]"-style prefixes. memberlist's Shutdown closes its
// sockets before it stops its gossip and probe timers, so a timer that fires
// in between logs "[ERR] ... use of closed network connection" on every
// normal stop. That error can only come from this process closing its own
// socket, never from a peer or the network, so it is logged at debug.
func memberlistLogger(l hclog.Logger) *log.Logger {
	w := l.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
	return log.New(closedSocketWriter{w}, "", 0)
}

type closedSocketWriter struct{ w io.Writer }

var (
	errPrefix    = []byte("[ERR]")
	debugPrefix  = []byte("[DEBUG]")
	closedSocket = []byte("use of closed network connection")
)

func (c closedSocketWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, closedSocket) && bytes.Contains(p, errPrefix) {
		q := bytes.Replace(p, errPrefix, debugPrefix, 1)
		if _, err := c.w.Write(q); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.w.Write(p)
}
