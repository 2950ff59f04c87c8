package api

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/raftkms/raftkms/kms"
)

// maxSnapshotBody bounds an uploaded snapshot.
const maxSnapshotBody = 1 << 30

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
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("X-Kms-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("X-Request-Id", requestID)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, tmp); err != nil {
		s.log.Warn("snapshot download interrupted", "error", err)
	}
}

func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request, requestID string) {
	auditAs(w, "SnapshotRestore", requestID)
	ctx, cancel := context.WithTimeout(r.Context(), 2*s.cfg.RequestTimeout+kmsRestoreBudget)
	defer cancel()
	body, err := readBody(r, maxSnapshotBody)
	if err != nil {
		s.writeError(w, r, "SnapshotRestore", requestID, err)
		return
	}
	var caller *kms.Caller
	if r.Header.Get("Authorization") != "" || r.URL.Query().Get("Signature") != "" {
		_, c, err := s.authenticateV3(ctx, r, body)
		if err != nil {
			s.writeError(w, r, "SnapshotRestore", requestID, err)
			return
		}
		caller = &c
		auditOf(w).setCaller(c)
	}
	tmp, err := os.CreateTemp(s.cfg.DataDir, "snapshot-restore-*")
	if err != nil {
		s.writeError(w, r, "SnapshotRestore", requestID, err)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := tmp.Write(body); err != nil {
		s.writeError(w, r, "SnapshotRestore", requestID, err)
		return
	}
	sum, err := s.cfg.Service.RestoreSnapshot(ctx, caller, tmp)
	if err != nil {
		s.writeError(w, r, "SnapshotRestore", requestID, err)
		return
	}
	w.Header().Set("X-Kms-Index", strconv.FormatUint(sum.Index, 10))
	s.writeJSON(w, http.StatusOK, map[string]any{
		"RequestId": requestID, "Index": sum.Index, "SnapshotIndex": sum.LastIndex,
		"Accounts": sum.Accounts, "AccessKeys": sum.AccessKeys, "Instances": sum.Instances,
		"Keys": sum.Keys, "KeyVersions": sum.Versions, "Aliases": sum.Aliases,
	})
}

// kmsRestoreBudget is the extra time a restore may take beyond a request.
const kmsRestoreBudget = 2 * time.Minute

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
