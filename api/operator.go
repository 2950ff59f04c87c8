package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
)

// maxSnapshotBody bounds an uploaded snapshot (on disk: it is staged in
// the data directory, never held in memory): what a follower may hand the
// leader too.
const maxSnapshotBody = kms.MaxSnapshotSize

// errRestoreInProgress refuses a second restore while one is received or
// applied on this node.
var errRestoreInProgress = errors.New("another snapshot restore is in progress on this node")

// serveHealth answers 200 when this node can serve: the cluster has a
// leader, this node's catalogue has caught up with what it knows is
// committed, and its root key is the cluster's.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	ready, reason := s.ready()
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	s.writeJSON(w, status, map[string]any{"Ready": ready, "Reason": reason, "NodeId": s.cfg.NodeID})
}

func (s *Server) ready() (bool, string) {
	if err := s.cfg.Service.RootKeyMismatch(); err != nil {
		return false, err.Error()
	}
	if _, id := s.cfg.Raft.Leader(); id == "" {
		return false, "no Raft leader is known to this node"
	}
	if !s.cfg.Raft.CaughtUp() {
		return false, "this node is still applying committed entries"
	}
	return true, ""
}

// memberStatus is one row of /v1/status Members: gossip and Raft views of
// a node merged.
type memberStatus struct {
	NodeId      string
	Zone        string
	Region      string `json:",omitempty"`
	HTTPAddr    string `json:"HttpAddr"`
	ClusterAddr string
	GossipAddr  string
	Voter       bool
	RaftMember  bool
	Alive       bool
	Status      string
	Version     string `json:",omitempty"`
	// LogLevel is the log level the node's build advertises (a build from
	// before levels: 1); 0 when gossip does not know the node.
	LogLevel int `json:",omitempty"`
	// HSM lists the HSM domains the node advertises with their health: ok,
	// bad (the token is failing) or mismatch (the token holds another key
	// than the one the cluster recorded for the domain).
	HSM []memberHSM `json:",omitempty"`
}

// memberHSM is one HSM domain a node advertises.
type memberHSM struct {
	Domain     string
	Health     string
	CheckValue string `json:",omitempty"` // hex
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	leaderAddr, leaderID := s.cfg.Raft.Leader()
	init, match := s.cfg.Service.Initialized()
	ready, reason := s.ready()
	out := map[string]any{
		"NodeId":         s.cfg.NodeID,
		"RaftState":      s.cfg.Raft.State(),
		"Leader":         leaderID,
		"LeaderAddr":     leaderAddr,
		"AppliedIndex":   s.cfg.Raft.AppliedIndex(),
		"CommitIndex":    s.cfg.Raft.CommitIndex(),
		"Initialized":    init,
		"RootKeyMatches": match,
		"Ready":          ready,
		"NotReadyReason": reason,
		"Members":        s.members(),
	}
	if up, err := s.cfg.Service.Upgrade(); err == nil {
		// A rolling upgrade: writes of a level above ClusterLevel are
		// refused (503 ServiceUnavailable.Upgrading) until every server
		// runs BuildLevel.
		behind := make([]string, 0, len(up.Behind))
		for _, b := range up.Behind {
			behind = append(behind, b.ID)
		}
		out["Upgrade"] = map[string]any{
			"BuildLevel": up.BuildLevel, "ClusterLevel": up.ClusterLevel, "FinalizedLevel": up.FinalizedLevel,
			"NodesBehind": behind,
		}
	}
	if p, ok := s.cfg.Service.RestoreInProgress(); ok {
		// A restore running on this node: kmsctl shows it while it waits.
		out["Restore"] = map[string]any{
			"Phase": p.Phase, "Seconds": seconds(time.Since(p.Started)), "PhaseSeconds": seconds(time.Since(p.Since)),
		}
	}
	if p, ok := s.cfg.Service.SaveInProgress(); ok {
		out["SnapshotSave"] = map[string]any{"Seconds": seconds(time.Since(p.Started)), "Bytes": p.Bytes}
	}
	if st, ok := s.cfg.Service.HSMStatus(); ok {
		// This node's own HSM, with the reason when it is not ok (the
		// members' rows carry what gossip says).
		out["HSM"] = []map[string]any{{
			"Domain": st.Domain, "Health": st.Health, "CheckValue": hex.EncodeToString(st.CheckValue), "Reason": st.Reason,
		}}
	}
	if r.URL.Query().Get("hash") != "" {
		// Replicas that applied the same entries have the same hash; the
		// fault-injection harness compares them at one applied index.
		h, idx := s.cfg.Service.CatalogueHash()
		out["CatalogueHash"] = hex.EncodeToString(h[:])
		out["HashIndex"] = idx
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) members() []memberStatus {
	byID := map[string]*memberStatus{}
	if s.cfg.Members != nil {
		for _, m := range s.cfg.Members.Members() {
			byID[m.ID] = &memberStatus{
				NodeId: m.ID, Zone: m.Zone, Region: m.Region, HTTPAddr: m.HTTPAddr, ClusterAddr: m.ClusterAddr,
				GossipAddr: m.GossipAddr, Alive: m.Status == "alive", Status: m.Status, Version: m.Version,
				LogLevel: m.LogLevel(),
			}
			for _, d := range m.HSM {
				byID[m.ID].HSM = append(byID[m.ID].HSM, memberHSM{Domain: d.Domain, Health: d.Health, CheckValue: d.CheckValue})
			}
		}
	}
	if servers, err := s.cfg.Raft.Servers(); err == nil {
		for _, sv := range servers {
			m, ok := byID[sv.ID]
			if !ok {
				// In Raft but not (or not yet) seen by gossip.
				m = &memberStatus{NodeId: sv.ID, ClusterAddr: sv.Addr, Status: "unknown"}
				if s.cfg.Members == nil && sv.ID == s.cfg.NodeID {
					m.Alive, m.Status = true, "alive"
				}
				byID[sv.ID] = m
			}
			m.RaftMember, m.Voter = true, sv.Voter
		}
	}
	out := make([]memberStatus, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeId < out[j].NodeId })
	return out
}

// operatorInit runs operator init. It needs no credentials — there are none
// yet — and works exactly once per cluster.
func (s *Server) operatorInit(c *call) (any, error) {
	res, err := s.cfg.Service.Init(c.ctx)
	if err != nil {
		return nil, err
	}
	c.index = res.Index
	s.log.Info("cluster initialized", "account", res.AccountID, "access_key_id", res.AccessKeyID, "instance", res.InstanceID)
	return map[string]any{
		"AccountId": res.AccountID, "AccessKeyId": res.AccessKeyID,
		"AccessKeySecret": res.AccessKeySecret, "InstanceId": res.InstanceID,
	}, nil
}

// saveSnapshot saves a whole-cluster snapshot (GET /v1/operator/snapshot).
// It is staged in a file so that an error becomes an error response, not a
// truncated download; the face streams the file.
func (s *Server) saveSnapshot(c *call) (any, error) {
	tmp, err := os.CreateTemp(s.cfg.DataDir, "snapshot-save-*")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	idx, err := s.cfg.Service.SaveSnapshot(c.ctx, c.caller, tmp)
	if err != nil {
		return nil, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, err
	}
	ok = true
	c.index = idx
	return &snapshotDownload{file: tmp, size: size}, nil
}

// seconds is d in seconds, to a tenth.
func seconds(d time.Duration) float64 { return d.Round(100 * time.Millisecond).Seconds() }

// restoreSnapshot receives a snapshot and restores it (POST
// /v1/operator/snapshot). Who is calling was settled from the headers alone
// — the ACS3 signature covers the body's claimed hash — before one byte of
// the body was read (the face's authHeaders), so an unauthenticated or
// non-operator upload of any size costs this node nothing. The body is then
// streamed to a file in the data directory (never held whole in memory),
// hashed on the way and refused when the hash is not the signed one. One
// restore at a time per node.
func (s *Server) restoreSnapshot(c *call) (any, error) {
	caller := c.callerOrNil()
	opt, err := restoreOptions(c.r)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Service.AuthorizeRestore(caller, opt); err != nil {
		return nil, err
	}
	if !s.restoring.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("%w: wait for it to finish, then retry", errRestoreInProgress)
	}
	defer s.restoring.Store(false)
	// The server's read timeout suits API requests, not a large upload by
	// a caller now known to be allowed; the restore after it may take
	// minutes before the answer is written. Not every ResponseWriter
	// supports deadlines (tests); then there is none to extend.
	rc := http.NewResponseController(c.w)
	deadline := time.Now().Add(restoreUploadBudget + kmsRestoreBudget)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	// Refused from the headers: a file larger than any node takes, or
	// than this follower could hand to the leader.
	if c.r.ContentLength > maxSnapshotBody {
		return nil, fmt.Errorf("%w: a snapshot may be at most %d bytes; this one is %d", errBodyTooLarge, maxSnapshotBody, c.r.ContentLength)
	}
	if err := s.cfg.Service.CheckRestoreSize(c.ctx, c.r.ContentLength); err != nil {
		return nil, err
	}
	// A signed upload to the leader is decoded as it streams in (the
	// operator's signature covers it; an unsigned one, into a cluster
	// never initialized, is verified MAC first once it is in).
	decode := c.signedHash != "" && !opt.AcceptUnauthenticated && c.r.ContentLength > 0 && s.cfg.Service.IsLeader()
	tmp, dec, err := s.stageUpload(c.r, c.signedHash, decode)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if dec != nil {
		// Stopped before the file it reads is closed (deferred calls run
		// last first).
		defer dec.Stop()
		opt.Decoder = dec
	}
	// The restore's own time starts once the upload is in, outside the
	// request's deadline.
	ctx, cancel := context.WithTimeout(c.unboundedCtx(), 2*s.cfg.RequestTimeout+kmsRestoreBudget)
	defer cancel()
	sum, err := s.cfg.Service.RestoreSnapshotWith(ctx, caller, tmp, opt)
	if err != nil {
		return nil, err
	}
	c.index = sum.Index
	return map[string]any{
		"Index": sum.Index, "SnapshotIndex": sum.LastIndex,
		"Accounts": sum.Accounts, "AccessKeys": sum.AccessKeys, "Instances": sum.Instances,
		"Keys": sum.Keys, "KeyVersions": sum.Versions, "Aliases": sum.Aliases,
	}, nil
}

// authenticateRestore authenticates a restore from its headers. An unsigned
// request gives a nil caller (AuthorizeRestore decides whether that is
// enough); a signed one gives the caller and the body hash it signed.
func (s *Server) authenticateRestore(ctx context.Context, r *http.Request) (*kms.Caller, string, error) {
	if signature.Detect(r, nil) == signature.SchemeNone {
		return nil, "", nil
	}
	signed, err := signature.ParseUnreadBody(r)
	if err != nil {
		return nil, "", err
	}
	signed, c, err := s.authenticateSigned(ctx, r, signed, true)
	if err != nil {
		return nil, "", err
	}
	return &c, signed.V3.PayloadHash, nil
}

// restoreOptions reads the restore's query parameters.
func restoreOptions(r *http.Request) (kms.RestoreOptions, error) {
	var opt kms.RestoreOptions
	switch v := r.URL.Query().Get("AcceptUnauthenticated"); v {
	case "", "false":
	case "true":
		opt.AcceptUnauthenticated = true
	default:
		return opt, fmt.Errorf("%w: AcceptUnauthenticated must be true or false, not %.32q", kms.ErrInvalidParameter, v)
	}
	return opt, nil
}

// stageUpload streams the request body into a file in the data directory,
// at most maxSnapshotBody bytes, and checks it against the signed hash
// (none for an unsigned restore into a cluster that was never
// initialized: the snapshot's own MAC is what protects it).
func (s *Server) stageUpload(r *http.Request, signedHash string, decode bool) (*os.File, *kms.StreamDecoder, error) {
	tmp, err := os.CreateTemp(s.cfg.DataDir, "snapshot-restore-*")
	if err != nil {
		return nil, nil, err
	}
	var dst io.Writer = tmp
	var dec *kms.StreamDecoder
	if decode {
		dec = s.cfg.Service.NewStreamDecoder(tmp, nil, r.ContentLength)
		dst = &decodedWriter{f: tmp, dec: dec}
	}
	ok := false
	defer func() {
		if !ok {
			if dec != nil {
				dec.Stop()
			}
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	body := &readErrReader{r: io.LimitReader(r.Body, maxSnapshotBody+1)}
	n, err := io.Copy(io.MultiWriter(dst, h), body)
	if body.err != nil {
		return nil, nil, fmt.Errorf("%w: reading the snapshot: %v", errBadRequest, body.err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("staging the snapshot: %w", err)
	}
	if n > maxSnapshotBody {
		return nil, nil, fmt.Errorf("%w: a snapshot may be at most %d bytes", errBodyTooLarge, maxSnapshotBody)
	}
	if signedHash != "" && !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), signedHash) {
		return nil, nil, fmt.Errorf("%w: the snapshot received is not the one whose hash was signed", signature.ErrContentHashMismatch)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	ok = true
	return tmp, dec, nil
}

// removeStaleUploads deletes the staging files a crashed kmsd left in its
// data directory (only one kmsd opens a data directory at a time).
func removeStaleUploads(dir string, log interface{ Warn(string, ...any) }) {
	if dir == "" {
		return
	}
	for _, pattern := range []string{"snapshot-restore-*", "snapshot-resealed-*", "snapshot-save-*", "snapshot-forwarded-*"} {
		stale, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range stale {
			if err := os.Remove(p); err != nil {
				log.Warn("cannot remove a stale snapshot staging file", "path", p, "error", err)
			}
		}
	}
}

// decodedWriter writes an upload to its file and lets its decoder read
// what is written.
type decodedWriter struct {
	f   *os.File
	n   int64
	dec *kms.StreamDecoder
}

func (w *decodedWriter) Write(p []byte) (int, error) {
	k, err := w.f.Write(p)
	w.n += int64(k)
	w.dec.Wrote(w.n)
	return k, err
}

// readErrReader remembers a read error, to tell the client's broken upload
// (its mistake) from a failing disk (ours).
type readErrReader struct {
	r   io.Reader
	err error
}

func (e *readErrReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// restoreTarget answers what a restore into this cluster would replace
// (GET /v1/operator/restore), for kmsctl's confirmation: a cluster that was
// never initialized says so to anyone (the face asks no credentials then);
// an initialized one tells its counts to the operator only.
func (s *Server) restoreTarget(c *call) (any, error) {
	t, err := s.cfg.Service.RestoreTarget(c.ctx, c.callerOrNil())
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"NodeId": s.cfg.NodeID, "Initialized": t.Initialized,
		"Keys": t.Keys, "Accounts": t.Accounts, "AppliedIndex": t.AppliedIndex,
		"IsLeader": t.IsLeader,
	}
	// A follower hands a restore to the leader in one cluster message;
	// kmsctl sends a larger file to the leader's API itself.
	if t.ForwardLimit > 0 {
		out["ForwardLimitBytes"] = t.ForwardLimit
	}
	if t.LeaderEndpoint != "" {
		out["LeaderId"], out["LeaderHttpAddr"] = t.LeaderID, t.LeaderEndpoint
	}
	return out, nil
}

// kmsRestoreBudget is the extra time a restore may take beyond a request:
// verifying, decoding and installing a million keys (~800 MB) took
// minutes on a busy 2-core node (docs/BENCHMARKS.md, "A million keys").
const kmsRestoreBudget = 10 * time.Minute

// restoreUploadBudget is how long an allowed snapshot upload may take.
const restoreUploadBudget = 15 * time.Minute

// finalizeUpgrade records that every server runs this build's log level
// (POST /v1/operator/upgrade); refused with ServiceUnavailable.Upgrading
// while one does not.
func (s *Server) finalizeUpgrade(c *call) (any, error) {
	level, idx, err := s.cfg.Service.FinalizeUpgrade(c.ctx, c.caller)
	if err != nil {
		return nil, err
	}
	c.index = idx
	s.log.Info("upgrade finalized", "level", level)
	return map[string]any{"FinalizedLevel": level}, nil
}

// operatorCreateInstance creates a KMS instance (POST
// /v1/operator/instances).
func (s *Server) operatorCreateInstance(c *call) (any, error) {
	quota, err := c.p.integer("KeyQuota")
	if err != nil {
		return nil, err
	}
	inst, idx, err := s.cfg.Service.CreateInstance(c.ctx, c.caller, kms.InstanceInput{
		Type: c.p.str("Type"), Name: c.p.str("Name"), HSMDomain: c.p.str("HsmDomain"), KeyQuota: quota,
	})
	if err != nil {
		return nil, err
	}
	c.index = idx
	out := map[string]any{
		"InstanceId": inst.ID, "InstanceName": inst.Name, "Type": inst.Type, "KeyQuota": inst.KeyQuota,
	}
	if inst.HSMDomain != "" {
		out["HsmDomain"] = inst.HSMDomain
	}
	return out, nil
}

// operatorCreateAccount creates an account (POST /v1/operator/accounts),
// for the operator account's root.
func (s *Server) operatorCreateAccount(c *call) (any, error) {
	res, err := s.cfg.Service.CreateAccount(c.ctx, c.caller, c.p.str("Name"))
	if err != nil {
		return nil, err
	}
	c.index = res.Index
	s.log.Info("account created", "account", res.AccountID, "access_key_id", res.AccessKeyID)
	return map[string]any{
		"AccountId": res.AccountID, "AccessKeyId": res.AccessKeyID, "AccessKeySecret": res.AccessKeySecret,
	}, nil
}
