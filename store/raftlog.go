package store

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// raftLogger is the logger of Raft and of its NetworkTransport, with two
// kinds of [ERROR] lines that a normal stop or leadership transfer produces
// moved to a lower level, so that a graceful shutdown logs no error:
//
//   - a read or accept that fails with net.ErrClosed: the transport logs one
//     whenever a connection is closed under it, and on shutdown it is this
//     process that closes them (transport.Close closes every Raft stream it
//     handed out). net.ErrClosed only ever comes from a local close, never
//     from a peer or the network (those are EOF, resets, timeouts): debug.
//   - "failed to decode incoming command" with ECONNRESET: the peer dropped
//     a stream it was sending on — as a leader does when it stops
//     replicating to a server it just removed (graceful leave). Whatever
//     fault there was, the sending side logs it; here it is a warning.
//   - raft.ErrTransportShutdown: a request that arrived while this node's
//     Raft transport was shutting down: debug.
//   - "failed to make requestVote RPC" with EOF: the voter closed the
//     connection, as a stopping node does — when a whole cluster stops at
//     once, the node leadership was handed to asks peers that are stopping
//     too. An unreachable voter (refused, timeout) stays an error.
//   - "peer has newer term, stopping replication": the leader learns it was
//     replaced, which is what a leadership transfer (graceful stop of the
//     leader) does on purpose. Losing leadership is worth a warning, not an
//     error.
//   - any failure to reach a peer (replication, heartbeat, vote) that has
//     announced it is stopping (Config.PeerStopping): when a whole cluster
//     stops at once no node can be taken out of the configuration, so each
//     stops as a member and the last ones standing fail to reach the first.
//     A peer that said nothing stays an error: that is a crash or a fault.
type raftLogger struct {
	hclog.Logger
	stopping func(addr string) bool // nil: no peer is known to be stopping
}

func (l raftLogger) Error(msg string, args ...interface{}) {
	switch {
	case closedLocally(args), hasErr(args, raft.ErrTransportShutdown):
		l.Logger.Debug(msg, args...)
	case msg == "failed to decode incoming command" && hasErr(args, syscall.ECONNRESET),
		msg == "failed to make requestVote RPC" && hasErr(args, io.EOF),
		msg == "peer has newer term, stopping replication",
		l.peerStopping(args):
		l.Logger.Warn(msg, args...)
	default:
		l.Logger.Error(msg, args...)
	}
}

// Named and With keep these rules on derived loggers (Raft derives its
// snapshot loggers with With).
func (l raftLogger) Named(name string) hclog.Logger {
	return raftLogger{Logger: l.Logger.Named(name), stopping: l.stopping}
}

func (l raftLogger) With(args ...interface{}) hclog.Logger {
	return raftLogger{Logger: l.Logger.With(args...), stopping: l.stopping}
}

// peerStopping reports whether the line is about a peer ("peer" or
// "target", as a raft.Server or a raft.ServerAddress) that announced it is
// stopping.
func (l raftLogger) peerStopping(args []interface{}) bool {
	if l.stopping == nil {
		return false
	}
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k != "peer" && k != "target" {
			continue
		}
		switch p := args[i+1].(type) {
		case raft.Server:
			return l.stopping(string(p.Address))
		case raft.ServerAddress:
			return l.stopping(string(p))
		}
	}
	return false
}

func hasErr(args []interface{}, target error) bool {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, target) {
			return true
		}
	}
	return false
}

func closedLocally(args []interface{}) bool {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, net.ErrClosed) {
			return true
		}
	}
	return false
}
