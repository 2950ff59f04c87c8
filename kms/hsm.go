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
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmihailenco/msgpack/v5"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/transport"
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

type hsmMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHSMMetrics(reg prometheus.Registerer) *hsmMetrics {
	m := &hsmMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_hsm_requests_total",
			Help: "Operations on hardware keys by where they ran (local token, forwarded to a peer, served for a peer) and result.",
		}, []string{"op", "route", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_hsm_request_duration_seconds",
			Help:    "Duration of operations on hardware keys, forwarding included.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 14),
		}, []string{"op", "route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

func (m *hsmMetrics) observe(op, route string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, kcrypto.ErrInvalidCiphertext), errors.Is(err, ErrInvalidParameter):
		result = "invalid"
	case errors.Is(err, ErrHSMUnavailable), errors.Is(err, errPeerUnavailable):
		result = "unavailable"
	default:
		result = "error"
	}
	m.requests.WithLabelValues(op, route, result).Inc()
	m.duration.WithLabelValues(op, route).Observe(time.Since(start).Seconds())
}

// Operations a token runs for the service (also the RPC's op names).
const (
	hsmOpGenerate    = "generate"
	hsmOpImport      = "import"
	hsmOpEncrypt     = "encrypt"
	hsmOpDecrypt     = "decrypt"
	hsmOpSign        = "sign"
	hsmOpDecryptAsym = "decrypt-asymmetric"
)

const rpcHSM = "kms.hsm"

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

// hsmReply is the RPC answer: a result or an error by kind. Business
// errors travel in the payload (transport.RemoteError carries only text).
type hsmReply struct {
	hsmResult
	Err string `msgpack:"err"` // "", decrypt, invalid, unavailable, other
	Msg string `msgpack:"msg"`
}

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
	raw, err := s.cfg.Transport.Call(ctx, p.ClusterAddr, rpcHSM, body)
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
	if err := msgpack.Unmarshal(raw, &rep); err != nil {
		return hsmResult{}, fmt.Errorf("%w: node %s answered something undecodable: %v", errPeerUnavailable, p.ID, err)
	}
	switch rep.Err {
	case "":
		return rep.hsmResult, nil
	case "decrypt":
		return hsmResult{}, fmt.Errorf("%w: %s", kcrypto.ErrInvalidCiphertext, rep.Msg)
	case "invalid":
		return hsmResult{}, fmt.Errorf("%w: %s", ErrInvalidParameter, rep.Msg)
	case "unavailable":
		return hsmResult{}, fmt.Errorf("%w: node %s: %s", errPeerUnavailable, p.ID, rep.Msg)
	}
	return hsmResult{}, fmt.Errorf("HSM operation on node %s: %s", p.ID, rep.Msg)
}

// handleHSM serves a peer's token operation. The peer authorized the
// request; this is a raw operation on this node's token.
func (s *Service) handleHSM(ctx context.Context, body []byte) ([]byte, error) {
	var req hsmRequest
	if err := msgpack.Unmarshal(body, &req); err != nil {
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
		rep.Msg = err.Error()
		switch {
		case errors.Is(err, kcrypto.ErrInvalidCiphertext):
			rep.Err = "decrypt"
		case errors.Is(err, ErrInvalidParameter):
			rep.Err = "invalid"
		case errors.Is(err, errPeerUnavailable):
			rep.Err = "unavailable"
		default:
			rep.Err = "other"
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

// Blobs of hardware keys have the layout of docs/CIPHERTEXT.md: format
// byte, version id, 12-byte IV, ct‖tag, with header ‖ canonical context as
// the additional data. The service picks a fresh random IV for every
// encryption (SoftHSM would accept an empty one and repeat it).
const blobHeaderSize = 1 + 16

func blobHeader(versionID string) ([]byte, error) {
	id, err := uuid.Parse(versionID)
	if err != nil {
		return nil, fmt.Errorf("seal: bad version id: %w", err)
	}
	h := make([]byte, blobHeaderSize)
	h[0] = kcrypto.FormatGCMv1
	copy(h[1:], id[:])
	return h, nil
}

func (s *Service) sealHSM(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	header, err := blobHeader(v.ID)
	if err != nil {
		return nil, err
	}
	iv, err := kcrypto.RandomBytes(kcrypto.NonceSize)
	if err != nil {
		return nil, err
	}
	req := versionRequest(hsmOpEncrypt, v, k)
	req.IV, req.Data, req.AAD = iv, plaintext, append(append([]byte(nil), header...), kcrypto.CanonicalContext(encCtx)...)
	res, err := s.hsmDo(ctx, req)
	if err != nil {
		return nil, err
	}
	blob := make([]byte, 0, len(header)+len(iv)+len(res.Out))
	return append(append(append(blob, header...), iv...), res.Out...), nil
}

func (s *Service) openHSM(ctx context.Context, k *fsm.Key, v *fsm.KeyVersion, blob []byte, encCtx map[string]string) ([]byte, error) {
	if len(blob) < kcrypto.MinCiphertextSize {
		return nil, fmt.Errorf("%w: too short", kcrypto.ErrInvalidCiphertext)
	}
	req := versionRequest(hsmOpDecrypt, v, k)
	req.IV = blob[blobHeaderSize : blobHeaderSize+kcrypto.NonceSize]
	req.Data = blob[blobHeaderSize+kcrypto.NonceSize:]
	req.AAD = append(append([]byte(nil), blob[:blobHeaderSize]...), kcrypto.CanonicalContext(encCtx)...)
	res, err := s.hsmDo(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Out, nil
}

// hsmVersion generates a key version inside a token of domain.
func (s *Service) hsmVersion(ctx context.Context, keyID, spec, usage, domain string, now int64) (fsm.KeyVersion, error) {
	v := fsm.KeyVersion{ID: newUUID(), KeyID: keyID, CreatedAt: now, Domain: domain}
	res, err := s.hsmDo(ctx, hsmRequest{Op: hsmOpGenerate, Domain: domain, Spec: spec, Usage: usage})
	if err != nil {
		return v, err
	}
	v.WrappedMaterial, v.PublicKey = res.Out, res.Public
	return v, nil
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

// newKeyVersion makes a new version of k's material: in a token of the
// key's HSM domain for a hardware key, in software otherwise.
func (s *Service) newKeyVersion(ctx context.Context, k *fsm.Key, now int64) (fsm.KeyVersion, error) {
	if domain := s.instanceDomain(k.InstanceID); domain != "" {
		return s.hsmVersion(ctx, k.ID, k.Spec, k.Usage, domain, now)
	}
	return s.newVersion(k.ID, k.Spec, now)
}

// forgetHSM drops this node's working copies of a key's versions.
func (s *Service) forgetHSM(k *fsm.Key) {
	if s.hsm == nil {
		return
	}
	for _, v := range k.Versions {
		s.hsm.tok.Forget(v)
	}
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

// RunHSM watches this node's HSM until ctx ends: it registers the domain's
// check value in the catalogue (the first token of a domain to do so sets
// it), decides the health it advertises — bad when the token is failing,
// mismatch when the token's domain key is not the one the cluster
// recorded, ok otherwise — and calls publish whenever that changes (and
// once at the start). It also drops the token's working copies of keys
// that are no longer enabled. Without an HSM it returns at once.
func (s *Service) RunHSM(ctx context.Context, interval time.Duration, publish func(HSMStatus)) {
	if s.hsm == nil {
		return
	}
	if interval <= 0 {
		interval = time.Second
	}
	var lastIndex uint64
	first := true
	for {
		st := s.hsmTick(ctx)
		s.hsm.mu.Lock()
		prev := s.hsm.status
		changed := first || prev.Health != st.Health || prev.Reason != st.Reason || !bytes.Equal(prev.CheckValue, st.CheckValue)
		s.hsm.status = st
		s.hsm.mu.Unlock()
		if changed {
			s.logHSMStatus(st)
			if publish != nil {
				publish(st)
			}
		}
		first = false
		if idx := s.fsm.AppliedIndex(); idx != lastIndex {
			lastIndex = idx
			s.forgetDisabledHSMKeys()
		}
		wait := interval
		if _, ok := s.fsm.HSMDomain(s.hsm.domain); !ok && st.Health == HSMHealthOK && wait > 200*time.Millisecond {
			// Not registered yet: retry soon, the domain's keys wait for it.
			wait = 200 * time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *Service) hsmTick(ctx context.Context) HSMStatus {
	h := s.hsm
	h.mu.Lock()
	st := HSMStatus{Domain: h.domain, Health: HSMHealthOK, CheckValue: h.status.CheckValue}
	h.mu.Unlock()
	if hh := h.tok.Health(); hh.State != hsm.HealthOK {
		st.Health = HSMHealthBad
		st.Reason = "the token is failing"
		if hh.Err != nil {
			st.Reason = hh.Err.Error()
		}
		return st
	}
	// Ask the token itself: a token can be healthy and still have lost
	// its objects (re-initialized, its store damaged) or been enrolled
	// again with another key.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	kcv, err := h.tok.DomainCheckValue(cctx, h.domain)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return st
		}
		st.Health = HSMHealthBad
		st.Reason = "cannot read the domain key from the token: " + err.Error()
		return st
	}
	st.CheckValue = kcv
	d, ok := s.fsm.HSMDomain(h.domain)
	if !ok {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := s.propose(cctx, fsm.CmdRegisterHSMDomain, fsm.RegisterHSMDomainCmd{
			Now: s.nowMillis(), Name: h.domain, CheckValue: kcv, NodeID: s.cfg.NodeID,
		})
		cancel()
		switch {
		case err == nil:
			s.log.Info("recorded the HSM domain's key check value in the cluster", "domain", h.domain, "check_value", hex.EncodeToString(kcv))
		case errors.Is(err, fsm.ErrHSMDomainMismatch):
			// Someone else's value is recorded; it is applied here by now.
		default:
			s.log.Debug("HSM domain not registered yet; will retry", "domain", h.domain, "error", err)
		}
		d, ok = s.fsm.HSMDomain(h.domain)
	}
	if ok && !bytes.Equal(d.CheckValue, kcv) {
		st.Health = HSMHealthMismatch
		st.Reason = fmt.Sprintf("this token's key for HSM domain %q has check value %x; the cluster recorded %x (first registered by node %s): this node does not serve the domain",
			h.domain, kcv, d.CheckValue, d.RegisteredBy)
	}
	return st
}

func (s *Service) logHSMStatus(st HSMStatus) {
	switch st.Health {
	case HSMHealthOK:
		s.log.Info("HSM serving its domain", "domain", st.Domain, "check_value", hex.EncodeToString(st.CheckValue), "token", s.hsm.tok.Label())
	case HSMHealthBad:
		s.log.Warn("HSM unhealthy: no longer advertising its domain", "domain", st.Domain, "reason", st.Reason)
	case HSMHealthMismatch:
		s.log.Error("HSM domain key mismatch: this node will not be routed to for the domain", "domain", st.Domain, "reason", st.Reason)
	}
}

// forgetDisabledHSMKeys destroys the token's working copies of hardware
// keys that are no longer enabled (disabled through another node, pending
// deletion): a working key exists only while it may be used.
func (s *Service) forgetDisabledHSMKeys() {
	for _, k := range s.fsm.AllKeys() {
		if k.ProtectionLevel == ProtectionHSM && k.State != fsm.StateEnabled {
			s.forgetHSM(k)
		}
	}
}
