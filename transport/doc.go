// Package transport owns the node's one TCP port for cluster traffic. The
// first byte of every connection (inside TLS when TLS is on) picks the
// protocol: ProtoRaft connections are handed to hashicorp/raft through
// StreamLayer; ProtoRPC connections carry the internal RPC that other packages
// use to forward writes to the leader, forward crypto operations to an HSM
// node, and ask the leader for a read index. Before either, both ends of
// every connection prove they hold the cluster authentication key
// (Config.AuthKey, derived from the root key) with a mutual
// challenge–response; a peer that cannot is refused (ErrPeerAuth).
//
// The package moves opaque bytes. It must not know business rules: callers
// register Handlers by method name and encode payloads themselves (msgpack).
//
// The one thing a caller must get right is how to read a failed Call; the
// error tells whether the remote handler ran:
//
//	errors.Is(err, ErrUnreachable)  certainly not delivered: safe to retry, also on another node
//	errors.Is(err, ErrConnLost)     may have been delivered: report the outcome as unknown
//	*RemoteError, ErrUnknownMethod  delivered and answered with an error
//
// A context that ends is wrapped too (errors.Is(err, context.DeadlineExceeded)),
// together with ErrUnreachable or ErrConnLost depending on whether the request
// had been sent. The wire format is described in DESIGN.md in this directory.
package transport
