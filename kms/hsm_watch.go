package kms

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
)

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
			hsmStore{s: s}.Forget(k)
		}
	}
}
