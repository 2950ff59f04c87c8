package store

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A heartbeat being handled on the transport's fast path holds up
// stopHeartbeats until it is done (the store closes its log store only
// after), and a heartbeat after the stop is refused without reaching
// Raft. Real TCP between two of Raft's network transports.
func TestGuardedTransport_StopWaitsForTheHeartbeatBeingHandled(t *testing.T) {
	inner, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g := &guardedTransport{NetworkTransport: inner}
	defer g.Close()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	handled := 0
	g.SetHeartbeatHandler(func(rpc raft.RPC) {
		handled++
		entered <- struct{}{}
		<-release
		rpc.Respond(&raft.AppendEntriesResponse{Term: 5, Success: true}, nil)
	})
	leader, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	heartbeat := func() error {
		req := &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{Addr: []byte(leader.LocalAddr()), ID: []byte("leader")},
			Term:      5,
		}
		var resp raft.AppendEntriesResponse
		return leader.AppendEntries("follower", g.LocalAddr(), req, &resp)
	}
	first := make(chan error, 1)
	go func() { first <- heartbeat() }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat did not reach the fast-path handler")
	}
	stopped := make(chan struct{})
	go func() { g.stopHeartbeats(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stopHeartbeats returned while a heartbeat was being handled")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stopHeartbeats did not return after the heartbeat was handled")
	}
	if err := <-first; err != nil {
		t.Fatalf("the heartbeat handled before the stop: %v", err)
	}
	if err := heartbeat(); err == nil {
		t.Fatal("a heartbeat after the stop was answered")
	}
	if handled != 1 {
		t.Fatalf("the handler ran %d times, want once", handled)
	}
}
