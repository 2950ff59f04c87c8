package kms

// Hardware keys: keys of a hardware KMS instance live in the PKCS#11 tokens
// of the instance's HSM domain (package hsm). Their material is generated in
// a token and leaves it only wrapped under the domain key; the catalogue
// keeps that blob (KeyVersion.Domain marks it) and the public key, nothing
// else. Every operation is the same API as for software keys; only the last
// step differs: instead of unwrapping material under the root key and doing
// the crypto in Go, the service hands the blob to a token of the domain —
// this node's own when it serves the domain, otherwise a healthy member's
// over the cluster port (RPC kms.hsm). Validation, key resolution, state and
// usage checks and authorization all run on the node that received the
// request, before anything is forwarded; the forwarded call is a raw token
// operation with no second authorization.
//
// Which nodes may serve a domain: the cluster records each domain's key
// check value (fsm.RegisterHSMDomainCmd, first writer wins); a node serves
// the domain only while its token is healthy and holds the recorded key, and
// a peer is chosen only while it advertises the domain as "ok" in gossip
// with the recorded check value. Same-zone peers first, load spread over
// equals by round robin; none → ErrHSMUnavailable (503, naming the domain).

import (
	"errors"
	"sync"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
)

// InstanceHardware is the type of a KMS instance whose keys live in an HSM
// domain.
const InstanceHardware = fsm.InstanceTypeHardware

// HSM health values, as gossip and /v1/status show them.
const (
	HSMHealthOK       = "ok"
	HSMHealthBad      = "bad"
	HSMHealthMismatch = "mismatch"
)

// ErrHSMUnavailable means no node of the cluster can serve the key's HSM
// domain right now: none is alive with a healthy token holding the domain's
// recorded key. The request was not performed; retry when one is back.
var ErrHSMUnavailable = errors.New("no healthy node with the key's HSM domain is available")

// HSMPeer is a cluster member that advertises an HSM domain (from gossip).
type HSMPeer struct {
	ID          string
	ClusterAddr string
	Zone        string
	Health      string // ok | bad | mismatch
	CheckValue  []byte
}

// HSMStatus is what this node says about its HSM: gossip carries it, the
// API shows it.
type HSMStatus struct {
	Domain     string
	Health     string
	CheckValue []byte
	// Reason says why Health is not ok.
	Reason string
}

// hsmNode is this node's own token, when it has one.
type hsmNode struct {
	tok    *hsm.Token
	domain string

	mu sync.Mutex
	// status is the last verdict of RunHSM (at start: the check value
	// read by New); CheckValue is what the token last said its domain key
	// is.
	status HSMStatus
}

// instanceDomain is the HSM domain of the key's instance ("" for software).
func (s *Service) instanceDomain(instanceID string) string {
	if instanceID == "" {
		return ""
	}
	if in, ok := s.fsm.Instance(instanceID); ok && in.Type == InstanceHardware {
		return in.HSMDomain
	}
	return ""
}

// HSMStatus reports this node's HSM (ok false: none attached).
func (s *Service) HSMStatus() (HSMStatus, bool) {
	if s.hsm == nil {
		return HSMStatus{}, false
	}
	s.hsm.mu.Lock()
	defer s.hsm.mu.Unlock()
	st := s.hsm.status
	st.CheckValue = append([]byte(nil), st.CheckValue...)
	return st, true
}
