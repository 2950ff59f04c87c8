package kms

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/mpdecode"
)

// Console sessions (the browser console, api/face_console.go).
//
// A sign-in checks an AccessKey pair (or STS credentials) the way a signed
// request is checked — Credential, then the secret compared in constant
// time — and records in the catalogue the identity it resolved, never the
// secret: the session stands for that identity, and every console request
// is authorized as it by the same code a signed request goes through. The
// browser holds the only copy of the cookie (32 random bytes); the
// catalogue holds their SHA-256 (fsm/sessions.go).
//
// Every console request reads its session after a linearizable read
// barrier (one leader round trip), so a sign-out acknowledged on one node
// is refused at once on every other. A session's credentials are checked
// again on each request: a disabled or deleted access key, or a deleted
// role (temporary credentials), ends it.

// Limits of console sessions.
const (
	// ConsoleSessionMaxLifetime bounds a session whatever its activity;
	// a session of temporary credentials ends when they expire, if sooner.
	ConsoleSessionMaxLifetime = 12 * time.Hour
	// DefaultConsoleIdleTimeout ends a session nobody used for that long.
	DefaultConsoleIdleTimeout = 30 * time.Minute
	// MinConsoleIdleTimeout and MaxConsoleIdleTimeout bound the idle
	// timeout an operator may configure.
	MinConsoleIdleTimeout = time.Minute
	MaxConsoleIdleTimeout = ConsoleSessionMaxLifetime
	// consoleTouchFraction: a session's last-seen time is written at most
	// once per IdleTimeout/consoleTouchFraction, so an active session costs
	// a few writes per idle period rather than one per request, and ends at
	// most IdleTimeout/consoleTouchFraction early.
	consoleTouchFraction = 6
	// consoleCookieBytes is the cookie's entropy.
	consoleCookieBytes = 32
	// consolePurgeBatch bounds the ids of one purge command.
	consolePurgeBatch = 1000
)

// Errors of console sessions.
var (
	// ErrConsoleSecret: the AccessKeySecret given at sign-in is not the
	// access key's (the console's SignatureDoesNotMatch).
	ErrConsoleSecret = errors.New("the AccessKeySecret does not match the AccessKeyId")
	// ErrConsoleSession: the request's console session has ended or never
	// existed.
	ErrConsoleSession = errors.New("the console session has ended; sign in again")
)

// ConsoleSignIn is what a person types into the sign-in form.
type ConsoleSignIn struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	// IdleTimeout is the node's configured idle timeout (0: the default).
	IdleTimeout time.Duration
	// Node is the id of the node that serves the sign-in (for operators).
	Node string
}

// ConsoleSignedIn is a new session: the cookie to hand to the browser
// (its only copy), the session as recorded, and the caller it stands for.
type ConsoleSignedIn struct {
	Cookie  string
	Session *fsm.ConsoleSession
	Caller  Caller
	Index   uint64
}

// CreateConsoleSession checks the credentials and records a session for the
// identity they stand for. The secret is compared and forgotten.
func (s *Service) CreateConsoleSession(ctx context.Context, in ConsoleSignIn) (ConsoleSignedIn, error) {
	if in.AccessKeyID == "" || in.AccessKeySecret == "" {
		return ConsoleSignedIn{}, fmt.Errorf("%w: an access key id and its secret", ErrMissingParameter)
	}
	secret, caller, err := s.Credential(ctx, in.AccessKeyID, in.SecurityToken)
	if err != nil {
		return ConsoleSignedIn{}, err
	}
	ok := subtle.ConstantTimeCompare(secret, []byte(in.AccessKeySecret)) == 1
	if !caller.Temporary {
		// secret is the credential cache's copy: not ours to clear.
		secret = nil
	} else {
		clear(secret)
	}
	if !ok {
		return ConsoleSignedIn{}, fmt.Errorf("%w (%s)", ErrConsoleSecret, in.AccessKeyID)
	}
	idle := in.IdleTimeout
	if idle <= 0 {
		idle = DefaultConsoleIdleTimeout
	}
	now := s.nowMillis()
	sess := fsm.ConsoleSession{
		AccountID: caller.AccountID, Principal: caller.Principal, Kind: caller.Kind, Name: caller.Name,
		Session: caller.Session, AccessKeyID: caller.AccessKeyID, Temporary: caller.Temporary, Node: in.Node,
		ExpiresAt: now + ConsoleSessionMaxLifetime.Milliseconds(), IdleTimeout: idle.Milliseconds(),
	}
	if caller.Temporary {
		cl, err := s.stsFacts(in.AccessKeyID, in.SecurityToken)
		if err != nil {
			return ConsoleSignedIn{}, err
		}
		sess.RoleID = cl.RoleID
		sess.ExpiresAt = min(sess.ExpiresAt, cl.Expires)
	}
	raw := make([]byte, consoleCookieBytes)
	if _, err := rand.Read(raw); err != nil {
		return ConsoleSignedIn{}, err
	}
	cookie := base64.RawURLEncoding.EncodeToString(raw)
	sess.ID = fsm.ConsoleSessionID(sha256.Sum256(raw))
	clear(raw)
	idx, err := s.propose(ctx, fsm.CmdCreateConsoleSession, fsm.CreateConsoleSessionCmd{Now: now, Session: sess})
	if err != nil {
		return ConsoleSignedIn{}, err
	}
	sess.CreatedAt, sess.LastSeen = now, now
	return ConsoleSignedIn{Cookie: cookie, Session: &sess, Caller: consoleCaller(&sess), Index: idx}, nil
}

// stsFacts reads what a session of temporary credentials needs from their
// token (already checked by Credential): the role's id and the expiry.
func (s *Service) stsFacts(akid, token string) (stsClaims, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return stsClaims{}, ErrSTSToken
	}
	body, err := s.root.Unwrap(raw, stsAAD(akid))
	if err != nil {
		return stsClaims{}, ErrSTSToken
	}
	var cl stsClaims
	if err := mpdecode.Unmarshal(body, &cl); err != nil || cl.AccessKeyID != akid {
		return stsClaims{}, ErrSTSToken
	}
	cl.Secret = ""
	return cl, nil
}

// ParseConsoleCookie decodes a session cookie's value into the session id
// it names; anything but base64url (unpadded) of 32 bytes is refused.
func ParseConsoleCookie(v string) (string, error) {
	if len(v) != base64.RawURLEncoding.EncodedLen(consoleCookieBytes) {
		return "", fmt.Errorf("%w: malformed session cookie", ErrConsoleSession)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(raw) != consoleCookieBytes {
		return "", fmt.Errorf("%w: malformed session cookie", ErrConsoleSession)
	}
	id := fsm.ConsoleSessionID(sha256.Sum256(raw))
	clear(raw)
	return id, nil
}

// ConsoleCSRFToken is the CSRF token of a session: base64url of
// HMAC-SHA256(key derived from the root key, session id). Every node
// computes the same token; none stores it.
func (s *Service) ConsoleCSRFToken(sessionID string) string {
	key := s.root.Derive(kcrypto.LabelConsoleCSRF)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckConsoleCSRF reports whether token is the session's CSRF token
// (compared in constant time).
func (s *Service) CheckConsoleCSRF(sessionID, token string) bool {
	return token != "" && hmac.Equal([]byte(s.ConsoleCSRFToken(sessionID)), []byte(token))
}

// ConsoleSession returns the live session id names and the caller it
// stands for, after a linearizable read barrier: a session signed out
// through any node before this call began is refused. A session found
// ended (idle, expired, its access key disabled or deleted, its role
// deleted) is deleted and refused. A session used after a sixth of its
// idle timeout has its last-seen time written.
func (s *Service) ConsoleSession(ctx context.Context, id string) (*fsm.ConsoleSession, Caller, error) {
	if err := s.LinearizableRead(ctx); err != nil {
		return nil, Caller{}, err
	}
	sess, ok := s.fsm.ConsoleSession(id)
	if !ok {
		return nil, Caller{}, fmt.Errorf("%w (signed out, or never signed in)", ErrConsoleSession)
	}
	now := s.nowMillis()
	var why string
	switch {
	case now >= sess.ExpiresAt:
		why = "the session reached its end"
		if sess.Temporary {
			why += " (its temporary credentials expired, or 12 hours passed)"
		}
	case now >= sess.LastSeen+sess.IdleTimeout:
		why = fmt.Sprintf("the session was idle for %s", time.Duration(sess.IdleTimeout)*time.Millisecond)
	case !s.fsm.ConsoleSessionUsable(sess):
		why = "its access key was disabled or deleted"
		if sess.Temporary {
			why = "the role its temporary credentials were issued for was deleted"
		}
	}
	if why != "" {
		if _, err := s.propose(ctx, fsm.CmdDeleteConsoleSession, fsm.DeleteConsoleSessionCmd{Now: now, IDs: []string{id}, Ended: true}); err != nil {
			s.log.Debug("ended console session not deleted yet; the scheduler will", "error", err)
		}
		return nil, Caller{}, fmt.Errorf("%w: %s", ErrConsoleSession, why)
	}
	if now-sess.LastSeen >= sess.IdleTimeout/consoleTouchFraction {
		_, err := s.propose(ctx, fsm.CmdTouchConsoleSession, fsm.TouchConsoleSessionCmd{Now: now, ID: id})
		switch {
		case errors.Is(err, fsm.ErrConsoleSessionNotFound):
			// Signed out (or ended) since the read above.
			return nil, Caller{}, fmt.Errorf("%w (signed out)", ErrConsoleSession)
		case err != nil:
			// The request goes on; the session may end up to a sixth of
			// its idle timeout early if no later touch succeeds.
			s.log.Warn("console session last-seen time not recorded", "error", err)
		}
	}
	return sess, consoleCaller(sess), nil
}

// DeleteConsoleSession ends a session on every node (sign-out).
func (s *Service) DeleteConsoleSession(ctx context.Context, id string) (uint64, error) {
	return s.propose(ctx, fsm.CmdDeleteConsoleSession, fsm.DeleteConsoleSessionCmd{Now: s.nowMillis(), IDs: []string{id}})
}

// AuthorizeClusterView allows the console's cluster pages (members, the
// snapshot download) to whom the operator endpoints allow them: the
// operator account's root.
func (s *Service) AuthorizeClusterView(c Caller, what string) error {
	return s.requireOperator(c, what)
}

func consoleCaller(sess *fsm.ConsoleSession) Caller {
	return Caller{
		AccountID: sess.AccountID, Principal: sess.Principal, Kind: sess.Kind, Name: sess.Name,
		Session: sess.Session, AccessKeyID: sess.AccessKeyID, Temporary: sess.Temporary,
	}
}

// purgeConsoleSessions removes the sessions that have ended at nowMs or
// whose credentials no longer stand (the leader's scheduler).
func (s *Service) purgeConsoleSessions(ctx context.Context, nowMs int64) (int, error) {
	var ended []string
	for _, sess := range s.fsm.ConsoleSessions() {
		if sess.EndedAt(nowMs) || !s.fsm.ConsoleSessionUsable(sess) {
			ended = append(ended, sess.ID)
		}
	}
	done := 0
	for len(ended) > 0 && ctx.Err() == nil {
		batch := ended[:min(len(ended), consolePurgeBatch)]
		ended = ended[len(batch):]
		if _, err := s.propose(ctx, fsm.CmdDeleteConsoleSession, fsm.DeleteConsoleSessionCmd{Now: nowMs, IDs: batch, Ended: true}); err != nil {
			return done, err
		}
		done += len(batch)
	}
	return done, nil
}
