package transport

import (
	"errors"
	"fmt"
	"net"
)

// Every error returned by Call answers one question for the caller: did the
// remote handler run?
//
//   - errors.Is(err, ErrUnreachable): certainly not. Nothing reached a handler
//     (dial or TLS failure, write failure, context done before the request was
//     sent, peer overloaded, transport closed). Safe to retry, here or elsewhere.
//   - errors.Is(err, ErrConnLost): unknown. The request was (or may have been)
//     sent and no answer came: the connection dropped or the context ended
//     while waiting. A forwarded write in this state must be reported as
//     "outcome unknown", never as failed.
//   - *RemoteError or ErrUnknownMethod: the peer received the request and
//     answered with an error.
//   - ErrFrameTooLarge: the request was refused locally, nothing was sent.
//
// errors.Is(err, ErrPeerAuth) (together with ErrUnreachable) says the peer
// and this node do not share the cluster key.
//
// When the cause is the caller's context, ctx.Err() is wrapped too, so
// errors.Is(err, context.DeadlineExceeded) also holds.
var (
	// ErrUnreachable means the request certainly did not reach a handler.
	ErrUnreachable = errors.New("transport: request not delivered")
	// ErrConnLost means the request may have been delivered but no answer came.
	ErrConnLost = errors.New("transport: connection lost, outcome unknown")
	// ErrUnknownMethod means the peer has no handler for the method.
	ErrUnknownMethod = errors.New("transport: unknown method")
	// ErrOverloaded means the peer refused the request without running it
	// because too many requests were in flight on the connection. It is
	// always wrapped together with ErrUnreachable.
	ErrOverloaded = errors.New("transport: peer overloaded")
	// ErrFrameTooLarge means a frame exceeds Config.MaxFrameSize.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrPeerAuth means the cluster authentication handshake failed: the
	// peer refused this node's proof, or could not prove it holds the same
	// cluster key (in a healthy cluster: the two nodes have different root
	// keys). Nothing was sent; it is always wrapped together with
	// ErrUnreachable by Call.
	ErrPeerAuth = errors.New("transport: cluster authentication failed")
	// ErrClosed is returned after Close; it matches net.ErrClosed as well.
	ErrClosed = fmt.Errorf("transport: closed: %w", net.ErrClosed)
)

// RemoteError is returned by Call when the remote handler returned an error.
// Only the message travels; business errors that callers need to tell apart
// belong in the (msgpack) response payload, not here.
type RemoteError struct {
	Method  string
	Message string
	Addr    string // the peer that answered
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("transport: %s on %s: remote error: %s", e.Method, e.Addr, e.Message)
}

func notDelivered(method, addr string, cause error) error {
	return fmt.Errorf("transport: %s to %s: %w: %w", method, addr, ErrUnreachable, cause)
}

func outcomeUnknown(method, addr string, cause error) error {
	return fmt.Errorf("transport: %s to %s: %w: %w", method, addr, ErrConnLost, cause)
}
