package fsm

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// Console sessions: a browser's sign-in to the console (api/face_console.go),
// replicated so that the cookie a node handed out is valid on every node and
// a sign-out ends it on every node.
//
// The catalogue never holds the cookie. The cookie is 32 random bytes; a
// session is stored under the hex SHA-256 of them (ConsoleSessionID), so a
// snapshot, a data directory or a Raft log gives nobody a usable cookie. It
// holds no secret either: only the identity the sign-in resolved (the access
// key's id, never its secret) and the session's times.
//
// Expiry is a pure function of the session and a time: a session has ended
// at t when t ≥ ExpiresAt (absolute: at most 12 hours, the STS token's
// expiry for temporary credentials) or t ≥ LastSeen + IdleTimeout. Nodes
// judge it with their clock when a request arrives; Apply judges it with
// the proposer's Now. LastSeen moves by TouchConsoleSessionCmd, proposed at
// most once per IdleTimeout/6 per session — not one write per request.

// Command types of console sessions (71–74; 74 is spare).
const (
	CmdCreateConsoleSession CommandType = 71
	CmdTouchConsoleSession  CommandType = 72
	CmdDeleteConsoleSession CommandType = 73
)

// recConsoleSession is the snapshot record of a console session, written
// after the certificates.
const recConsoleSession = 0x17

// Limits on console sessions, checked in Apply. Ended sessions not yet
// purged do not count.
const (
	MaxConsoleSessionsPerAccount = 100
	MaxConsoleSessions           = 10000
)

// Errors of console sessions.
var (
	// ErrConsoleSessionNotFound: no such session (never created, signed
	// out, or purged after its end).
	ErrConsoleSessionNotFound = errors.New("the console session does not exist")
	// ErrConsoleSessionLimit refuses a sign-in beyond the limits above.
	ErrConsoleSessionLimit = errors.New("too many console sessions are open")
)

// ConsoleSession is one signed-in browser. Times are Unix ms.
type ConsoleSession struct {
	// ID is the hex SHA-256 of the cookie's 32 random bytes.
	ID          string `msgpack:"id"`
	AccountID   string `msgpack:"acct"`
	Principal   string `msgpack:"principal"`
	Kind        string `msgpack:"kind"` // root | user | role
	Name        string `msgpack:"name"` // user or role name
	Session     string `msgpack:"session,omitempty"`
	AccessKeyID string `msgpack:"ak"`
	Temporary   bool   `msgpack:"tmp,omitempty"`
	// RoleID is the assumed role's id (temporary credentials): a role
	// deleted, or deleted and created again under its name, ends the
	// session as it revokes the token.
	RoleID      string `msgpack:"role,omitempty"`
	Node        string `msgpack:"node,omitempty"` // where the sign-in happened
	CreatedAt   int64  `msgpack:"ct"`
	ExpiresAt   int64  `msgpack:"exp"`
	IdleTimeout int64  `msgpack:"idle"` // ms
	LastSeen    int64  `msgpack:"seen"`
}

// EndedAt reports whether the session has ended at now (Unix ms): past its
// absolute expiry or idle for its idle timeout.
func (s *ConsoleSession) EndedAt(now int64) bool {
	return now >= s.ExpiresAt || now >= s.LastSeen+s.IdleTimeout
}

// ConsoleSessionID is the catalogue's name of the session a cookie's raw
// bytes stand for. It is computed by the proposer, so the cookie never
// enters the log.
func ConsoleSessionID(sum [32]byte) string { return hex.EncodeToString(sum[:]) }

// CreateConsoleSessionCmd records a new session.
type CreateConsoleSessionCmd struct {
	Now     int64          `msgpack:"now"`
	Session ConsoleSession `msgpack:"session"`
}

// TouchConsoleSessionCmd moves a live session's LastSeen to Now.
type TouchConsoleSessionCmd struct {
	Now int64  `msgpack:"now"`
	ID  string `msgpack:"id"`
}

// DeleteConsoleSessionCmd removes sessions: a sign-out (one id,
// unconditionally), or the leader's purge (Ended set), which removes each
// listed session only if it has ended at Now or its access key is gone or
// inactive — so a purge decided on a lagging catalogue spares a session
// touched since.
type DeleteConsoleSessionCmd struct {
	Now   int64    `msgpack:"now"`
	IDs   []string `msgpack:"ids"`
	Ended bool     `msgpack:"ended,omitempty"`
}

func (c *catalogue) dispatchConsoleSession(l *raft.Log, t CommandType, body []byte) any {
	switch t {
	case CmdCreateConsoleSession:
		var cmd CreateConsoleSessionCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyCreateConsoleSession(&cmd)
	case CmdTouchConsoleSession:
		var cmd TouchConsoleSessionCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyTouchConsoleSession(&cmd)
	case CmdDeleteConsoleSession:
		var cmd DeleteConsoleSessionCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyDeleteConsoleSession(&cmd)
	}
	return fmt.Errorf("fsm: command type %d is not a console session command", uint8(t))
}

func (c *catalogue) applyCreateConsoleSession(cmd *CreateConsoleSessionCmd) error {
	s := cmd.Session
	if len(s.ID) != 64 || s.AccountID == "" || s.AccessKeyID == "" || s.IdleTimeout <= 0 || s.ExpiresAt <= cmd.Now {
		return fmt.Errorf("%w: a console session needs an id, an identity, an idle timeout and an expiry in the future", ErrPreconditionFailed)
	}
	if _, dup := c.consoleSessions[s.ID]; dup {
		return fmt.Errorf("%w: console session id taken", ErrPreconditionFailed)
	}
	if _, ok := c.accounts[s.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, s.AccountID)
	}
	total, mine := 0, 0
	for _, o := range c.consoleSessions {
		if o.EndedAt(cmd.Now) {
			continue
		}
		total++
		if o.AccountID == s.AccountID {
			mine++
		}
	}
	if mine >= MaxConsoleSessionsPerAccount {
		return fmt.Errorf("%w: account %s has %d open console sessions, the limit; sign out elsewhere or wait for idle sessions to end",
			ErrConsoleSessionLimit, s.AccountID, mine)
	}
	if total >= MaxConsoleSessions {
		return fmt.Errorf("%w: the cluster has %d open console sessions, the limit; retry once idle sessions have ended",
			ErrConsoleSessionLimit, total)
	}
	s.CreatedAt, s.LastSeen = cmd.Now, cmd.Now
	c.consoleSessions[s.ID] = &s
	return nil
}

func (c *catalogue) applyTouchConsoleSession(cmd *TouchConsoleSessionCmd) error {
	s, ok := c.consoleSessions[cmd.ID]
	if !ok || s.EndedAt(cmd.Now) {
		return ErrConsoleSessionNotFound
	}
	if cmd.Now <= s.LastSeen {
		return nil
	}
	n := *s // records are shared with snapshots in progress: copy, never mutate
	n.LastSeen = cmd.Now
	c.consoleSessions[cmd.ID] = &n
	return nil
}

func (c *catalogue) applyDeleteConsoleSession(cmd *DeleteConsoleSessionCmd) error {
	for _, id := range cmd.IDs {
		s, ok := c.consoleSessions[id]
		if !ok {
			continue
		}
		if cmd.Ended && !s.EndedAt(cmd.Now) && c.consoleKeyUsable(s) {
			continue
		}
		delete(c.consoleSessions, id)
	}
	return nil
}

// consoleKeyUsable reports whether a session's credentials still stand in
// the catalogue: its access key active (temporary credentials: its role the
// same role).
func (c *catalogue) consoleKeyUsable(s *ConsoleSession) bool {
	if s.Temporary {
		r, ok := c.roles[identityKey(s.AccountID, s.Name)]
		return ok && r.ID == s.RoleID
	}
	ak, ok := c.accessKeys[s.AccessKeyID]
	return ok && ak.Status == "Active" && ak.AccountID == s.AccountID
}

// ConsoleSession returns a session by id (ConsoleSessionID).
func (f *FSM) ConsoleSession(id string) (*ConsoleSession, bool) {
	var s *ConsoleSession
	f.read(func(c *catalogue) { s = c.consoleSessions[id] })
	return s, s != nil
}

// ConsoleSessionUsable reports whether a session's credentials still stand:
// see DeleteConsoleSessionCmd.
func (f *FSM) ConsoleSessionUsable(s *ConsoleSession) bool {
	var ok bool
	f.read(func(c *catalogue) { ok = c.consoleKeyUsable(s) })
	return ok
}

// ConsoleSessions returns every session, sorted by id (the leader's purge).
func (f *FSM) ConsoleSessions() []*ConsoleSession {
	return selectSorted(f, func(c *catalogue) map[string]*ConsoleSession { return c.consoleSessions },
		func(*ConsoleSession) bool { return true },
		func(a, b *ConsoleSession) bool { return a.ID < b.ID })
}

// Snapshot records.

func (c *catalogue) writeConsoleSessions(w io.Writer) error {
	return writeAll(w, recConsoleSession, c.consoleSessions)
}

func (c *catalogue) loadConsoleSession(body []byte) error {
	return loadInto(c.consoleSessions, body, func(s *ConsoleSession) string {
		if len(s.ID) != 64 || s.AccountID == "" {
			return ""
		}
		return s.ID
	})
}
