package kms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/internal/mpdecode"
	"github.com/raftkms/raftkms/internal/rpc"
	"github.com/raftkms/raftkms/transport"
)

// Operations a token runs for the service (also the RPC's op names).
const (
	hsmOpGenerate    = "generate"
	hsmOpImport      = "import"
	hsmOpEncrypt     = "encrypt"
	hsmOpDecrypt     = "decrypt"
	hsmOpSign        = "sign"
	hsmOpDecryptAsym = "decrypt-asymmetric"
)

// hsmRequest is one token operation, run here or sent to a peer.
type hsmRequest struct {
	Op      string `msgpack:"op"`
	Domain  string `msgpack:"dom"`
	Spec    string `msgpack:"spec"`
	Usage   string `msgpack:"usage"`
	Version string `msgpack:"ver"` // KeyRef.ID: the key version id
	Wrapped []byte `msgpack:"w"`
	IV      []byte `msgpack:"iv"`
	Data    []byte `msgpack:"data"`
	AAD     []byte `msgpack:"aad"`
	Alg     string `msgpack:"alg"`
	From    string `msgpack:"from"` // the forwarding node, for the serving node's log
}

func (r *hsmRequest) ref() hsm.KeyRef {
	return hsm.KeyRef{ID: r.Version, Domain: r.Domain, Spec: hsm.KeySpec(r.Spec), Usage: hsm.Usage(r.Usage), Wrapped: r.Wrapped}
}

// hsmResult is an operation's output.
type hsmResult struct {
	Out    []byte `msgpack:"out"`    // wrapped key, ciphertext, plaintext or signature
	Public []byte `msgpack:"public"` // generate: the public key
}

// hsmReply is the RPC answer: a result or an error by name (the wire
// table, wire_errors.go). Business errors travel in the payload
// (transport.RemoteError carries only text).
type hsmReply struct {
	hsmResult
	Err string `msgpack:"err"` // "": success; a name of the wire table; hsmOtherError
	Msg string `msgpack:"msg"`
}

// hsmOtherError names a failure that matches no entry of the wire table.
const hsmOtherError = "other"

// legacyHSMErrors are the kinds a node of the previous version answers
// with, read as the wire table's names while a cluster is being upgraded
// one node at a time.
var legacyHSMErrors = map[string]string{"decrypt": "InvalidCiphertext", "invalid": "InvalidParameter", "unavailable": "PeerUnavailable"}

// errPeerUnavailable means one token (or peer) could not run the operation
// now; another member of the domain may.
var errPeerUnavailable = errors.New("the HSM is not available on this node")

func versionRequest(op string, v *fsm.KeyVersion, k *fsm.Key) hsmRequest {
	return hsmRequest{Op: op, Domain: v.Domain, Spec: k.Spec, Usage: k.Usage, Version: v.ID, Wrapped: v.WrappedMaterial}
}

// hsmDo runs req on a token of req.Domain: this node's when it serves the
// domain, else the best peer, then the next ones while they answer that
// they cannot.
func (s *Service) hsmDo(ctx context.Context, req hsmRequest) (hsmResult, error) {
	start := time.Now()
	var lastErr error
	s.awaitDomainRecord(ctx, req.Domain)
	if s.servesDomain(req.Domain) {
		res, err := s.hsmLocal(ctx, req)
		s.hsmMetrics.observe(req.Op, "local", start, err)
		if err == nil || !errors.Is(err, errPeerUnavailable) {
			return res, err
		}
		lastErr = err
		s.log.Warn("this node's HSM failed an operation; trying the domain's other nodes", "domain", req.Domain, "op", req.Op, "error", err)
	}
	peers := s.hsmTargets(req.Domain)
	if len(peers) == 0 {
		err := s.hsmUnavailable(req.Domain, lastErr)
		s.hsmMetrics.observe(req.Op, "forwarded", start, err)
		return hsmResult{}, err
	}
	req.From = s.cfg.NodeID
	body, err := msgpack.Marshal(&req)
	if err != nil {
		return hsmResult{}, err
	}
	for _, p := range peers {
		res, err := s.hsmCall(ctx, p, body)
		if err == nil || !errors.Is(err, errPeerUnavailable) {
			s.hsmMetrics.observe(req.Op, "forwarded", start, err)
			if err == nil {
				s.log.Debug("HSM operation forwarded", "op", req.Op, "domain", req.Domain, "version", req.Version, "peer", p.ID)
				if r, ok := ctx.Value(hsmRouteKey{}).(*HSMRoute); ok {
					r.add(p.ID)
				}
			}
			return res, err
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		s.log.Debug("HSM peer could not serve; trying the next", "peer", p.ID, "domain", req.Domain, "error", err)
	}
	err = s.hsmUnavailable(req.Domain, lastErr)
	s.hsmMetrics.observe(req.Op, "forwarded", start, err)
	return hsmResult{}, err
}

// HSMRoute tells the caller of an operation where its HSM work ran, so the
// request's audit record can be marked as forwarded (the forwarded call
// itself writes no audit line).
type HSMRoute struct {
	mu    sync.Mutex
	nodes []string
}

type hsmRouteKey struct{}

// WithHSMRoute returns a context whose HSM operations report to the
// returned HSMRoute.
func WithHSMRoute(ctx context.Context) (context.Context, *HSMRoute) {
	r := &HSMRoute{}
	return context.WithValue(ctx, hsmRouteKey{}, r), r
}

func (r *HSMRoute) add(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.nodes {
		if n == node {
			return
		}
	}
	r.nodes = append(r.nodes, node)
}

// ForwardedTo lists the nodes whose tokens served the request's HSM
// operations ("" when none was forwarded: served here, or no HSM work).
func (r *HSMRoute) ForwardedTo() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.nodes, ",")
}

// domainRecordWait bounds how long an operation waits for a domain that
// nodes advertise to be recorded (a cluster that has just started).
const domainRecordWait = 5 * time.Second

// awaitDomainRecord covers the moment after a cluster starts: nodes already
// advertise a domain whose check value is not recorded yet, and no node
// may serve it until it is. A node holding the domain records it now; any
// node waits a little for the record rather than refuse. A domain nobody
// advertises is not waited for.
func (s *Service) awaitDomainRecord(ctx context.Context, domain string) {
	if _, ok := s.fsm.HSMDomain(domain); ok || !s.domainKnown(domain) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, domainRecordWait)
	defer cancel()
	if h := s.hsm; h != nil && h.domain == domain && h.tok.Health().State == hsm.HealthOK {
		h.mu.Lock()
		kcv := h.status.CheckValue
		h.mu.Unlock()
		_, err := s.propose(ctx, fsm.CmdRegisterHSMDomain, fsm.RegisterHSMDomainCmd{
			Now: s.nowMillis(), Name: domain, CheckValue: kcv, NodeID: s.cfg.NodeID,
		})
		if err != nil && !errors.Is(err, fsm.ErrHSMDomainMismatch) {
			s.log.Debug("could not record the HSM domain yet", "domain", domain, "error", err)
		}
	}
	for {
		if _, ok := s.fsm.HSMDomain(domain); ok {
			return
		}
		if err := s.fsm.WaitForIndex(ctx, s.fsm.AppliedIndex()+1); err != nil {
			return
		}
	}
}

func (s *Service) hsmUnavailable(domain string, last error) error {
	if last != nil {
		return fmt.Errorf("%w: HSM domain %q (last attempt: %v)", ErrHSMUnavailable, domain, last)
	}
	return fmt.Errorf("%w: HSM domain %q has no alive node with a healthy token holding the domain's key", ErrHSMUnavailable, domain)
}

// hsmCall sends one operation to a peer. Failures that mean "this peer
// cannot do it now" (not reachable, connection lost, its token down) are
// errPeerUnavailable, and the caller moves on: every token operation is
// idempotent or leaves nothing behind (a generated key that is never
// stored is just lost), so running it again elsewhere is safe.
func (s *Service) hsmCall(ctx context.Context, p HSMPeer, body []byte) (hsmResult, error) {
	if s.cfg.Transport == nil {
		return hsmResult{}, fmt.Errorf("%w: no cluster transport", errPeerUnavailable)
	}
	raw, err := s.cfg.Transport.Call(ctx, p.ClusterAddr, rpc.KMSHSM, body)
	if err != nil {
		if ctx.Err() != nil {
			return hsmResult{}, err
		}
		var re *transport.RemoteError
		if errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrConnLost) ||
			errors.Is(err, transport.ErrUnknownMethod) || errors.As(err, &re) {
			return hsmResult{}, fmt.Errorf("%w: node %s: %v", errPeerUnavailable, p.ID, err)
		}
		return hsmResult{}, err
	}
	var rep hsmReply
	if err := mpdecode.Unmarshal(raw, &rep); err != nil {
		return hsmResult{}, fmt.Errorf("%w: node %s answered something undecodable: %v", errPeerUnavailable, p.ID, err)
	}
	if rep.Err == "" {
		return rep.hsmResult, nil
	}
	if name, ok := legacyHSMErrors[rep.Err]; ok {
		rep.Err = name
	}
	err = DecodeError(rep.Err, rep.Msg)
	switch {
	case errors.Is(err, errPeerUnavailable):
		return hsmResult{}, fmt.Errorf("node %s: %w", p.ID, err)
	case rep.Err == hsmOtherError:
		return hsmResult{}, fmt.Errorf("HSM operation on node %s: %w", p.ID, err)
	}
	return hsmResult{}, err
}

// handleHSM serves a peer's token operation. The peer authorized the
// request; this is a raw operation on this node's token.
func (s *Service) handleHSM(ctx context.Context, body []byte) ([]byte, error) {
	var req hsmRequest
	if err := mpdecode.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	start := time.Now()
	var res hsmResult
	var err error
	if !s.servesDomain(req.Domain) {
		err = fmt.Errorf("%w: node %s does not serve HSM domain %q now", errPeerUnavailable, s.cfg.NodeID, req.Domain)
	} else {
		res, err = s.hsmLocal(ctx, req)
	}
	s.hsmMetrics.observe(req.Op, "served", start, err)
	// One line per forwarded operation, marked as such: the audit record
	// of the request is written by the node that authorized it.
	s.log.Debug("served a forwarded HSM operation", "op", req.Op, "domain", req.Domain, "version", req.Version, "from", req.From, "error", err)
	rep := hsmReply{hsmResult: res}
	if err != nil {
		if rep.Err, rep.Msg = EncodeError(err); rep.Err == "" {
			rep.Err = hsmOtherError
		}
	}
	return msgpack.Marshal(&rep)
}

// hsmLocal runs req on this node's token and maps the token's errors to
// the service's.
func (s *Service) hsmLocal(ctx context.Context, req hsmRequest) (hsmResult, error) {
	h := s.hsm
	if h == nil {
		return hsmResult{}, fmt.Errorf("%w: no HSM attached", errPeerUnavailable)
	}
	var res hsmResult
	var err error
	ref := req.ref()
	switch req.Op {
	case hsmOpGenerate:
		var g *hsm.GeneratedKey
		if g, err = h.tok.GenerateKey(ctx, req.Domain, hsm.KeySpec(req.Spec), hsm.Usage(req.Usage)); err == nil {
			res = hsmResult{Out: g.Wrapped, Public: g.PublicKey}
		}
	case hsmOpImport:
		var g *hsm.GeneratedKey
		if g, err = h.tok.ImportKey(ctx, req.Domain, hsm.KeySpec(req.Spec), req.Data); err == nil {
			res = hsmResult{Out: g.Wrapped}
		}
	case hsmOpEncrypt:
		res.Out, err = h.tok.Encrypt(ctx, ref, req.IV, req.Data, req.AAD)
	case hsmOpDecrypt:
		res.Out, err = h.tok.Decrypt(ctx, ref, req.IV, req.Data, req.AAD)
	case hsmOpSign:
		res.Out, err = h.tok.Sign(ctx, ref, hsm.SignAlgorithm(req.Alg), req.Data)
	case hsmOpDecryptAsym:
		res.Out, err = h.tok.DecryptAsymmetric(ctx, ref, hsm.EncryptAlgorithm(req.Alg), req.Data)
	default:
		return hsmResult{}, fmt.Errorf("unknown HSM operation %q", req.Op)
	}
	if err == nil {
		return res, nil
	}
	switch {
	case errors.Is(err, hsm.ErrDecrypt):
		return hsmResult{}, fmt.Errorf("%w: %v", kcrypto.ErrInvalidCiphertext, err)
	case errors.Is(err, hsm.ErrInvalidParameter):
		return hsmResult{}, fmt.Errorf("%w: %v", ErrInvalidParameter, err)
	case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrClosed), errors.Is(err, hsm.ErrLogin),
		errors.Is(err, hsm.ErrDomainNotEnrolled), errors.Is(err, hsm.ErrNoHSMSupport):
		return hsmResult{}, fmt.Errorf("%w: %v", errPeerUnavailable, err)
	}
	if ctx.Err() != nil {
		return hsmResult{}, ctx.Err()
	}
	return hsmResult{}, fmt.Errorf("HSM %s: %w", req.Op, err)
}

// servesDomain reports whether this node's token may serve domain now:
// healthy, and holding the key the cluster recorded for the domain.
func (s *Service) servesDomain(domain string) bool {
	h := s.hsm
	if h == nil || h.domain != domain || h.tok.Health().State != hsm.HealthOK {
		return false
	}
	h.mu.Lock()
	st := h.status
	h.mu.Unlock()
	if st.Health != HSMHealthOK {
		return false
	}
	d, ok := s.fsm.HSMDomain(domain)
	return ok && bytes.Equal(d.CheckValue, st.CheckValue)
}

// hsmTargets lists the peers that may serve domain, best first: alive,
// advertising the domain as ok with the check value the cluster recorded;
// same zone before other zones; a rotating start among equals spreads the
// load.
func (s *Service) hsmTargets(domain string) []HSMPeer {
	if s.cfg.HSMPeers == nil {
		return nil
	}
	d, ok := s.fsm.HSMDomain(domain)
	if !ok {
		return nil
	}
	var near, far []HSMPeer
	for _, p := range s.cfg.HSMPeers(domain) {
		if p.ID == s.cfg.NodeID || p.Health != HSMHealthOK || !bytes.Equal(p.CheckValue, d.CheckValue) || p.ClusterAddr == "" {
			continue
		}
		if s.cfg.Zone != "" && p.Zone == s.cfg.Zone {
			near = append(near, p)
		} else {
			far = append(far, p)
		}
	}
	n := s.hsmRR.Add(1)
	return append(rotate(near, n), rotate(far, n)...)
}

func rotate(ps []HSMPeer, n uint64) []HSMPeer {
	if len(ps) < 2 {
		return ps
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	k := int(n % uint64(len(ps)))
	return append(ps[k:], ps[:k]...)
}

// domainKnown reports whether the cluster knows domain: recorded in the
// catalogue, or advertised by a member that has not registered it yet.
func (s *Service) domainKnown(domain string) bool {
	if _, ok := s.fsm.HSMDomain(domain); ok {
		return true
	}
	if s.hsm != nil && s.hsm.domain == domain {
		return true
	}
	if s.cfg.HSMPeers != nil {
		return len(s.cfg.HSMPeers(domain)) > 0
	}
	return false
}
