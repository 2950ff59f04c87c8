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
	"strconv"
	"strings"
	"time"

	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
)

// maxSnapshotBody bounds an uploaded snapshot (on disk: it is staged in
// the data directory, never held in memory).
const maxSnapshotBody = 1 << 30

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

// serveInit runs operator init. It needs no credentials — there are none
// yet — and works exactly once per cluster.
func (s *Server) serveInit(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	auditAs(w, "Init", requestID)
	if r.Method != http.MethodPost {
		s.writeError(w, r, "Init", requestID, fmt.Errorf("%w: use POST", errMethod))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.cfg.Service.Init(ctx)
	if err != nil {
		s.writeError(w, r, "Init", requestID, err)
		return
	}
	w.Header().Set("X-Kms-Index", strconv.FormatUint(res.Index, 10))
	s.log.Info("cluster initialized", "account", res.AccountID, "access_key_id", res.AccessKeyID, "instance", res.InstanceID)
	s.writeJSON(w, http.StatusOK, map[string]any{
		"RequestId": requestID, "AccountId": res.AccountID, "AccessKeyId": res.AccessKeyID,
		"AccessKeySecret": res.AccessKeySecret, "InstanceId": res.InstanceID,
	})
}

// serveSnapshot saves (GET) or restores (POST) a whole-cluster snapshot.
func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	switch r.Method {
	case http.MethodGet:
		s.saveSnapshot(w, r, requestID)
	case http.MethodPost, http.MethodPut:
		s.restoreSnapshot(w, r, requestID)
	default:
		s.writeError(w, r, "Snapshot", requestID, fmt.Errorf("%w: GET saves, POST restores", errMethod))
	}
}

func (s *Server) saveSnapshot(w http.ResponseWriter, r *http.Request, requestID string) {
	auditAs(w, "SnapshotSave", requestID)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	_, caller, err := s.authenticateV3(ctx, r, nil)
	if err != nil {
		s.writeError(w, r, "SnapshotSave", requestID, err)
		return
	}
	auditOf(w).setCaller(caller)
	// Staged in a file so that an error becomes an error response, not a
	// truncated download.
	tmp, err := os.CreateTemp(s.cfg.DataDir, "snapshot-save-*")
	if err != nil {
		s.writeError(w, r, "SnapshotSave", requestID, err)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	idx, err := s.cfg.Service.SaveSnapshot(ctx, caller, tmp)
	if err != nil {
		s.writeError(w, r, "SnapshotSave", requestID, err)
		return
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		s.writeError(w, r, "SnapshotSave", requestID, err)
		return
	}
	// A large snapshot to a slow client outlasts the server's write
	// timeout, which suits API answers; the caller is the operator.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(restoreUploadBudget))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("X-Kms-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("X-Request-Id", requestID)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, tmp); err != nil {
		s.log.Warn("snapshot download interrupted", "error", err)
	}
}

// restoreSnapshot receives a snapshot and restores it. Who is calling is
// settled from the headers alone — the ACS3 signature covers the body's
// claimed hash — before one byte of the body is read, so an
// unauthenticated or non-operator upload of any size costs this node
// nothing. The body is then streamed to a file in the data directory
// (never held whole in memory), hashed on the way and refused when the hash
// is not the signed one. One restore at a time per node.
func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request, requestID string) {
	auditAs(w, "SnapshotRestore", requestID)
	fail := func(err error) { s.writeError(w, r, "SnapshotRestore", requestID, err) }
	authCtx, cancelAuth := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	caller, signedHash, err := s.authenticateRestore(authCtx, r)
	cancelAuth()
	if err != nil {
		fail(err)
		return
	}
	if caller != nil {
		auditOf(w).setCaller(*caller)
	}
	opt, err := restoreOptions(r)
	if err != nil {
		fail(err)
		return
	}
	if err := s.cfg.Service.AuthorizeRestore(caller, opt); err != nil {
		fail(err)
		return
	}
	if !s.restoring.CompareAndSwap(false, true) {
		fail(fmt.Errorf("%w: wait for it to finish, then retry", errRestoreInProgress))
		return
	}
	defer s.restoring.Store(false)
	// The server's read timeout suits API requests, not a large upload by
	// a caller now known to be allowed; the restore after it may take
	// minutes before the answer is written. Not every ResponseWriter
	// supports deadlines (tests); then there is none to extend.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(restoreUploadBudget + kmsRestoreBudget)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	tmp, err := s.stageUpload(r, signedHash)
	if err != nil {
		fail(err)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	// The restore's own time starts once the upload is in.
	ctx, cancel := context.WithTimeout(r.Context(), 2*s.cfg.RequestTimeout+kmsRestoreBudget)
	defer cancel()
	sum, err := s.cfg.Service.RestoreSnapshotWith(ctx, caller, tmp, opt)
	if err != nil {
		fail(err)
		return
	}
	w.Header().Set("X-Kms-Index", strconv.FormatUint(sum.Index, 10))
	s.writeJSON(w, http.StatusOK, map[string]any{
		"RequestId": requestID, "Index": sum.Index, "SnapshotIndex": sum.LastIndex,
		"Accounts": sum.Accounts, "AccessKeys": sum.AccessKeys, "Instances": sum.Instances,
		"Keys": sum.Keys, "KeyVersions": sum.Versions, "Aliases": sum.Aliases,
	})
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
func (s *Server) stageUpload(r *http.Request, signedHash string) (*os.File, error) {
	tmp, err := os.CreateTemp(s.cfg.DataDir, "snapshot-restore-*")
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
	h := sha256.New()
	body := &readErrReader{r: io.LimitReader(r.Body, maxSnapshotBody+1)}
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if body.err != nil {
		return nil, fmt.Errorf("%w: reading the snapshot: %v", errBadRequest, body.err)
	}
	if err != nil {
		return nil, fmt.Errorf("staging the snapshot: %w", err)
	}
	if n > maxSnapshotBody {
		return nil, fmt.Errorf("%w: a snapshot may be at most %d bytes", errBodyTooLarge, maxSnapshotBody)
	}
	if signedHash != "" && !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), signedHash) {
		return nil, fmt.Errorf("%w: the snapshot received is not the one whose hash was signed", signature.ErrContentHashMismatch)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	ok = true
	return tmp, nil
}

// removeStaleUploads deletes the staging files a crashed kmsd left in its
// data directory (only one kmsd opens a data directory at a time).
func removeStaleUploads(dir string, log interface{ Warn(string, ...any) }) {
	if dir == "" {
		return
	}
	for _, pattern := range []string{"snapshot-restore-*", "snapshot-resealed-*", "snapshot-save-*"} {
		stale, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range stale {
			if err := os.Remove(p); err != nil {
				log.Warn("cannot remove a stale snapshot staging file", "path", p, "error", err)
			}
		}
	}
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

// serveRestoreTarget answers what a restore into this cluster would
// replace (GET /v1/operator/restore), for kmsctl's confirmation: a
// cluster that was never initialized says so to anyone; an initialized one
// tells its counts to the operator only.
func (s *Server) serveRestoreTarget(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	auditAs(w, "SnapshotRestoreTarget", requestID)
	if r.Method != http.MethodGet {
		s.writeError(w, r, "SnapshotRestoreTarget", requestID, fmt.Errorf("%w: use GET", errMethod))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	var caller *kms.Caller
	if init, _ := s.cfg.Service.Initialized(); init {
		_, c, err := s.authenticateV3(ctx, r, nil)
		if err != nil {
			s.writeError(w, r, "SnapshotRestoreTarget", requestID, err)
			return
		}
		auditOf(w).setCaller(c)
		caller = &c
	}
	t, err := s.cfg.Service.RestoreTarget(caller)
	if err != nil {
		s.writeError(w, r, "SnapshotRestoreTarget", requestID, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{
		"RequestId": requestID, "NodeId": s.cfg.NodeID, "Initialized": t.Initialized,
		"Keys": t.Keys, "Accounts": t.Accounts, "AppliedIndex": t.AppliedIndex,
	})
}

// kmsRestoreBudget is the extra time a restore may take beyond a request.
const kmsRestoreBudget = 2 * time.Minute

// restoreUploadBudget is how long an allowed snapshot upload may take.
const restoreUploadBudget = 15 * time.Minute

// serveInstances creates a KMS instance (POST).
func (s *Server) serveInstances(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	auditAs(w, "CreateInstance", requestID)
	if r.Method != http.MethodPost {
		s.writeError(w, r, "CreateInstance", requestID, fmt.Errorf("%w: use POST", errMethod))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	body, err := readBody(r, maxBody)
	if err != nil {
		s.writeError(w, r, "CreateInstance", requestID, err)
		return
	}
	_, caller, err := s.authenticateV3(ctx, r, body)
	if err != nil {
		s.writeError(w, r, "CreateInstance", requestID, err)
		return
	}
	auditOf(w).setCaller(caller)
	p, err := decodeParams(r, body)
	if err != nil {
		s.writeError(w, r, "CreateInstance", requestID, err)
		return
	}
	inst, idx, err := s.cfg.Service.CreateInstanceWith(kms.WithSignature(ctx, caller), caller, kms.InstanceInput{
		Type: p.str("Type"), Name: p.str("Name"), HSMDomain: p.str("HsmDomain"),
	})
	if err != nil {
		s.writeError(w, r, "CreateInstance", requestID, err)
		return
	}
	w.Header().Set("X-Kms-Index", strconv.FormatUint(idx, 10))
	out := map[string]any{
		"RequestId": requestID, "InstanceId": inst.ID, "InstanceName": inst.Name, "Type": inst.Type, "KeyQuota": inst.KeyQuota,
	}
	if inst.HSMDomain != "" {
		out["HsmDomain"] = inst.HSMDomain
	}
	s.writeJSON(w, http.StatusOK, out)
}

// serveAccounts creates an account (POST), for the operator account's root.
func (s *Server) serveAccounts(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	auditAs(w, "CreateAccount", requestID)
	if r.Method != http.MethodPost {
		s.writeError(w, r, "CreateAccount", requestID, fmt.Errorf("%w: use POST", errMethod))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	body, err := readBody(r, maxBody)
	if err != nil {
		s.writeError(w, r, "CreateAccount", requestID, err)
		return
	}
	_, caller, err := s.authenticateV3(ctx, r, body)
	if err != nil {
		s.writeError(w, r, "CreateAccount", requestID, err)
		return
	}
	auditOf(w).setCaller(caller)
	p, err := decodeParams(r, body)
	if err != nil {
		s.writeError(w, r, "CreateAccount", requestID, err)
		return
	}
	res, err := s.cfg.Service.CreateAccount(kms.WithSignature(ctx, caller), caller, p.str("Name"))
	if err != nil {
		s.writeError(w, r, "CreateAccount", requestID, err)
		return
	}
	w.Header().Set("X-Kms-Index", strconv.FormatUint(res.Index, 10))
	s.log.Info("account created", "account", res.AccountID, "access_key_id", res.AccessKeyID)
	s.writeJSON(w, http.StatusOK, map[string]any{
		"RequestId": requestID, "AccountId": res.AccountID, "AccessKeyId": res.AccessKeyID, "AccessKeySecret": res.AccessKeySecret,
	})
}
