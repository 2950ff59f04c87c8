package store

import (
	"sync"

	"github.com/hashicorp/raft"
)

// guardedTransport is Raft's network transport with a heartbeat fast path
// that can be stopped and waited for. hashicorp/raft runs a heartbeat's
// handling on the connection's goroutine (NetworkTransport's fast path),
// which its Shutdown does not wait for: a heartbeat carrying a new term
// that was being handled while the store closed its log store wrote the
// term to a closed store, and Raft panics on that ("failed to save current
// term"). stopHeartbeats waits for the heartbeats being handled and answers
// later ones with an error, so the log store closes only after the last.
//
// It also moves Raft's RPCs through the commit-hint pump (commithint.go).
type guardedTransport struct {
	*raft.NetworkTransport
	mu      sync.RWMutex // held for reading while a heartbeat is handled
	stopped bool

	pumpOnce  sync.Once
	pump      *hintPump
	closeOnce sync.Once
}

// Consumer is what Raft reads its RPCs from: the network transport's,
// through the commit-hint pump (Raft calls it once, at NewRaft).
func (g *guardedTransport) Consumer() <-chan raft.RPC {
	g.pumpOnce.Do(func() { g.pump = newHintPump(g.NetworkTransport.Consumer()) })
	return g.pump.out
}

// Close closes the network transport and stops the pump.
func (g *guardedTransport) Close() error {
	err := g.NetworkTransport.Close()
	g.closeOnce.Do(func() {
		g.pumpOnce.Do(func() {}) // no pump after this
		if g.pump != nil {
			g.pump.close()
		}
	})
	return err
}

// SetHeartbeatHandler installs cb behind the guard (Raft calls it once, at
// NewRaft).
func (g *guardedTransport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		g.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	g.NetworkTransport.SetHeartbeatHandler(func(rpc raft.RPC) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		if g.stopped {
			rpc.Respond(nil, raft.ErrRaftShutdown)
			return
		}
		cb(rpc)
	})
}

// stopHeartbeats returns once no heartbeat is being handled; every later
// one is refused.
func (g *guardedTransport) stopHeartbeats() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}
