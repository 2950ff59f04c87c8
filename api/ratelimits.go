package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/raftkms/raftkms/kms"
)

// serveRateLimits sets (POST AccountId, Class, Rate) or reads (GET
// AccountId) an account's per-node rate limits. Setting is for the operator
// account's root.
func (s *Server) serveRateLimits(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	auditAs(w, "RateLimits", requestID)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	body, err := readBody(r, maxBody)
	if err != nil {
		s.writeError(w, r, "RateLimits", requestID, err)
		return
	}
	_, caller, err := s.authenticateV3(ctx, r, body)
	if err != nil {
		s.writeError(w, r, "RateLimits", requestID, err)
		return
	}
	if a := auditOf(w); a != nil {
		a.setCaller(caller)
	}
	p, err := decodeParams(r, body)
	if err != nil {
		s.writeError(w, r, "RateLimits", requestID, err)
		return
	}
	switch r.Method {
	case http.MethodGet:
		limits, err := s.cfg.Service.RateLimits(ctx, caller, p.str("AccountId"))
		if err != nil {
			s.writeError(w, r, "RateLimits", requestID, err)
			return
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"RequestId": requestID, "RateLimits": limits})
	case http.MethodPost:
		rate, perr := strconv.ParseFloat(p.str("Rate"), 64)
		if perr != nil {
			s.writeError(w, r, "SetRateLimit", requestID, invalidParam("Rate", "requests per second, e.g. 100 or 0.5 (0 removes the limit)"))
			return
		}
		idx, err := s.cfg.Service.SetRateLimit(kms.WithSignature(ctx, caller), caller, p.str("AccountId"), p.str("Class"), rate)
		if err != nil {
			s.writeError(w, r, "SetRateLimit", requestID, err)
			return
		}
		w.Header().Set("X-Kms-Index", strconv.FormatUint(idx, 10))
		s.writeJSON(w, http.StatusOK, map[string]any{"RequestId": requestID})
	default:
		s.writeError(w, r, "RateLimits", requestID, fmt.Errorf("%w: GET reads, POST sets", errMethod))
	}
}

// serveInstanceLimits sets (POST AccountId, MaxInstances) or reads (GET
// AccountId) how many KMS instances an account may have. Setting is for the
// operator account's root; an account's root reads its own.
func (s *Server) serveInstanceLimits(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	auditAs(w, "InstanceLimits", requestID)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	body, err := readBody(r, maxBody)
	if err != nil {
		s.writeError(w, r, "InstanceLimits", requestID, err)
		return
	}
	_, caller, err := s.authenticateV3(ctx, r, body)
	if err != nil {
		s.writeError(w, r, "InstanceLimits", requestID, err)
		return
	}
	if a := auditOf(w); a != nil {
		a.setCaller(caller)
	}
	p, err := decodeParams(r, body)
	if err != nil {
		s.writeError(w, r, "InstanceLimits", requestID, err)
		return
	}
	switch r.Method {
	case http.MethodGet:
		max, used, err := s.cfg.Service.InstanceLimit(ctx, caller, p.str("AccountId"))
		if err != nil {
			s.writeError(w, r, "InstanceLimits", requestID, err)
			return
		}
		account := p.str("AccountId")
		if account == "" {
			account = caller.AccountID
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"RequestId": requestID, "AccountId": account, "MaxInstances": max, "Instances": used})
	case http.MethodPost:
		max, err := strconv.Atoi(p.str("MaxInstances"))
		if err != nil {
			s.writeError(w, r, "SetInstanceLimit", requestID, invalidParam("MaxInstances", "a whole number of instances, e.g. 20"))
			return
		}
		idx, err := s.cfg.Service.SetInstanceLimit(ctx, caller, p.str("AccountId"), max)
		if err != nil {
			s.writeError(w, r, "SetInstanceLimit", requestID, err)
			return
		}
		w.Header().Set("X-Kms-Index", strconv.FormatUint(idx, 10))
		s.writeJSON(w, http.StatusOK, map[string]any{"RequestId": requestID})
	default:
		s.writeError(w, r, "InstanceLimits", requestID, fmt.Errorf("%w: GET reads, POST sets", errMethod))
	}
}
