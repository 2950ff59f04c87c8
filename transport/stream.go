package transport

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// StreamLayer returns the Raft side of the transport, for
// raft.NewNetworkTransportWithConfig. Accept yields connections that began
// with ProtoRaft; Dial opens one (TLS when ClientTLS is set).
//
// Closing the stream layer (raft's NetworkTransport.Close does) stops only
// the Raft side: Accept returns an error and new Raft connections are
// refused, while RPC keeps working until Transport.Close.
func (t *Transport) StreamLayer() raft.StreamLayer { return t.stream }

type streamLayer struct {
	t         *Transport
	ch        chan net.Conn // unbuffered: a conn is handed over only to a waiting Accept
	closeOnce sync.Once
	closed    chan struct{}
}

func newStreamLayer(t *Transport) *streamLayer {
	return &streamLayer{t: t, ch: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver blocks until Accept takes c or either side is closed.
func (s *streamLayer) deliver(c net.Conn) {
	select {
	case s.ch <- c:
	case <-s.closed:
		c.Close()
	case <-s.t.ctx.Done():
		c.Close()
	}
}

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.ch:
		return c, nil
	case <-s.closed:
		return nil, ErrClosed
	case <-s.t.ctx.Done():
		return nil, ErrClosed
	}
}

func (s *streamLayer) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *streamLayer) Addr() net.Addr { return advertisedAddr(s.t.advertise) }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.t.ctx, timeout)
	defer cancel()
	conn, raw, err := s.t.dial(ctx, string(address), ProtoRaft)
	if err != nil {
		return nil, err
	}
	return newTrackedConn(s.t, conn, raw), nil
}

// advertisedAddr is a net.Addr whose String is the advertised address; Raft
// uses it as this node's ServerAddress.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
