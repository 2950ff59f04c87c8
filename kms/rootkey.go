package kms

import (
	"errors"
	"fmt"
)

// ErrNodeRootKey means this node holds a root key other than the cluster's:
// it can serve nothing, and it is kept out of the Raft configuration (the
// cluster port's authentication is derived from the root key). Unlike
// ErrRootKeyMismatch (a snapshot from another cluster, the caller's
// mistake), it is the node's condition, so every request answers it.
var ErrNodeRootKey = errors.New("this node's root key is not the cluster's")

// SetPeersRefuseRootKey records whether the cluster's nodes refuse this
// node's cluster-port proof of the root key. The node wiring decides it
// (internal/node): this node has no Raft leader and the peers it tried
// refuse its key.
func (s *Service) SetPeersRefuseRootKey(refused bool) { s.peersRefuseRootKey.Store(refused) }

// RootKeyMismatch returns nil, or an error wrapping ErrNodeRootKey that
// names how the mismatch was found and what to do about it.
func (s *Service) RootKeyMismatch() error {
	const fix = "restart this node with the cluster's --root-key-file"
	if init, match := s.Initialized(); init && !match {
		return fmt.Errorf("%w: the catalogue was written under another root key; %s", ErrNodeRootKey, fix)
	}
	if s.peersRefuseRootKey.Load() {
		return fmt.Errorf("%w: the cluster's nodes refuse its cluster-port authentication, which is derived from the root key, so it cannot join; %s", ErrNodeRootKey, fix)
	}
	return nil
}
