package kms

import (
	"context"
	"errors"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// RunScheduler performs the leader's duties every interval while this node
// leads: automatic rotation (of keys and of RAMCredentials secrets), the end
// of deletion windows (of keys and of secrets), expiry of imported material
// and of import tokens, and the instance CA of a cluster that has none. Each
// duty is a proposal through Raft, never a side effect of Apply, and is
// decided from the catalogue alone, so a new leader (or a restarted one)
// picks up exactly where the last one stopped.
func (s *Service) RunScheduler(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.store.IsLeader() {
			continue
		}
		if _, err := s.SchedulerTick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler", "error", err)
		}
	}
}

// importTokenRetention is how long an expired import token is kept.
const importTokenRetention = 7 * 24 * time.Hour

// SchedulerTick runs the duties that are due at the service clock's now and
// returns how many changes it made. Tests call it directly with an injected
// clock.
func (s *Service) SchedulerTick(ctx context.Context) (int, error) {
	if !s.store.IsLeader() {
		return 0, nil
	}
	now := s.now()
	nowMs := now.UnixMilli()
	done := 0
	var firstErr error
	try := func(t fsm.CommandType, body any) {
		_, err := s.propose(ctx, t, body)
		switch {
		case err == nil:
			done++
		case errors.Is(err, fsm.ErrPreconditionFailed), errors.Is(err, fsm.ErrKeyNotFound),
			errors.Is(err, fsm.ErrSecretNotFound), errors.Is(err, fsm.ErrSecretPendingDeletion):
			// Another proposal got there first.
		case firstErr == nil:
			firstErr = err
		}
	}
	// A cluster initialized before the instance endpoint existed gets its
	// CA here, once (not counted: it is no change to a key).
	if err := s.ensureInstanceCA(ctx, now); err != nil && firstErr == nil {
		firstErr = err
	}
	for _, k := range s.fsm.KeysWithDuties() { // not every key: a million take a third of a core each second
		if ctx.Err() != nil {
			break
		}
		switch {
		case k.State == fsm.StatePendingDeletion && k.DeleteDate <= nowMs:
			s.forgetKey(k)
			try(fsm.CmdDeleteKey, fsm.KeyDeletionCmd{Now: nowMs, KeyID: k.ID})
		case k.State == fsm.StateEnabled && k.RotationInterval > 0 && k.Origin == OriginKMS &&
			kcrypto.IsSymmetric(k.Spec) && !now.Before(NextRotation(k)):
			v, err := s.newKeyVersion(ctx, k, nowMs)
			if err != nil {
				// A hardware key whose domain has no node up now rotates
				// on a later tick; the other keys' duties go on.
				s.log.Warn("automatic rotation: no new version yet", "key", k.ID, "error", err)
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			try(fsm.CmdCreateKeyVersion, fsm.CreateKeyVersionCmd{Now: nowMs, Version: v, Automatic: true, ExpectPrimary: k.PrimaryVersion})
		case k.Origin == OriginExternal && k.MaterialExpireTime > 0 && k.MaterialExpireTime <= nowMs && k.State != fsm.StatePendingDeletion:
			s.forgetKey(k)
			try(fsm.CmdDeleteKeyMaterial, fsm.DeleteKeyMaterialCmd{Now: nowMs, KeyID: k.ID, Expired: true})
		}
	}
	for _, sec := range s.fsm.AllSecrets() {
		if ctx.Err() != nil {
			break
		}
		switch {
		case sec.PendingDeletion() && sec.PlannedDeleteAt <= nowMs:
			try(fsm.CmdPurgeSecret, fsm.SecretNameCmd{Now: nowMs, AccountID: sec.AccountID, Name: sec.Name})
		case !sec.PendingDeletion() && sec.Type == fsm.SecretTypeRAMCredentials && sec.AutoRotation &&
			sec.NextRotation > 0 && sec.NextRotation <= nowMs:
			// Expecting the current version keeps a leader whose catalogue
			// lags from rotating twice (fsm.RotateRAMSecretCmd).
			err := s.ramRotationBlocked(sec)
			var cmd fsm.RotateRAMSecretCmd
			if err == nil {
				cmd, err = s.ramRotation(ctx, sec, newUUID(), now, sec.Stages[fsm.StageCurrent])
			}
			if err != nil {
				// A disabled encryption key, an HSM domain with no node
				// up, a RAM user with a key of its own: the secret
				// rotates on a later tick, and nothing is proposed now.
				s.log.Warn("automatic rotation of a secret: not yet", "account", sec.AccountID, "secret", sec.Name, "error", err)
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			try(fsm.CmdRotateRAMSecret, cmd)
		}
	}
	for _, tok := range s.fsm.ImportTokens() {
		// Expired tokens are refused at once but kept a while, so that a
		// late import is told its token expired rather than that it is
		// unknown.
		if tok.ExpireAt+importTokenRetention.Milliseconds() <= nowMs {
			_, err := s.propose(ctx, fsm.CmdDeleteImportToken, fsm.ImportTokenCmd{Now: nowMs, TokenID: tok.ID})
			if err == nil {
				done++
			}
		}
	}
	if n, err := s.purgeConsoleSessions(ctx, nowMs); err != nil && firstErr == nil {
		firstErr = err
	} else {
		done += n
	}
	return done, firstErr
}
