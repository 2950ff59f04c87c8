package fsm

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"
)

// Console sessions in Apply: times are the proposer's Now, in ms.

func consoleSession(n int) ConsoleSession {
	return ConsoleSession{
		ID: ConsoleSessionID(sha256.Sum256([]byte(fmt.Sprint("cookie-", n)))), AccountID: acct,
		Principal: "acs:ram::" + acct + ":root", Kind: "root", AccessKeyID: "LTAIexample",
		ExpiresAt: 100_000, IdleTimeout: 10_000,
	}
}

func (h *harness) session(id string) *ConsoleSession {
	h.t.Helper()
	s, ok := h.f.ConsoleSession(id)
	if !ok {
		h.t.Fatalf("console session %s missing", id)
	}
	return s
}

func TestConsoleSessionApply_CreateTouchDelete(t *testing.T) {
	h := newHarness(t)
	h.init()
	s := consoleSession(1)
	h.mustApply(CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: s})
	if got := h.session(s.ID); got.CreatedAt != 2000 || got.LastSeen != 2000 || got.EndedAt(11_999) || !got.EndedAt(12_000) {
		t.Fatalf("created %+v", got)
	}
	h.refused("the id taken", ErrPreconditionFailed, CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: s})
	bad := consoleSession(2)
	bad.ExpiresAt = 2000
	h.refused("an expiry not in the future", ErrPreconditionFailed, CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: bad})
	bad = consoleSession(2)
	bad.ID = "short"
	h.refused("an id that is no SHA-256", ErrPreconditionFailed, CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: bad})
	bad = consoleSession(2)
	bad.AccountID = "999"
	h.refused("an unknown account", ErrAccountNotFound, CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: bad})

	// A touch moves LastSeen (never back); one after the idle end is refused.
	before := h.session(s.ID)
	h.mustApply(CmdTouchConsoleSession, TouchConsoleSessionCmd{Now: 9000, ID: s.ID})
	if got := h.session(s.ID); got.LastSeen != 9000 || got.EndedAt(18_999) || !got.EndedAt(19_000) {
		t.Fatalf("touched %+v", got)
	}
	if before.LastSeen != 2000 {
		t.Fatal("a touch changed the record a reader held")
	}
	h.mustApply(CmdTouchConsoleSession, TouchConsoleSessionCmd{Now: 5000, ID: s.ID})
	if h.session(s.ID).LastSeen != 9000 {
		t.Fatal("a late touch moved LastSeen back")
	}
	h.refused("a touch after the idle end", ErrConsoleSessionNotFound, CmdTouchConsoleSession, TouchConsoleSessionCmd{Now: 19_000, ID: s.ID})
	h.refused("a touch of an unknown session", ErrConsoleSessionNotFound, CmdTouchConsoleSession, TouchConsoleSessionCmd{Now: 9000, ID: "x"})

	// The purge spares a live session; a sign-out removes it; deleting
	// what is gone is no error.
	h.mustApply(CmdDeleteConsoleSession, DeleteConsoleSessionCmd{Now: 10_000, IDs: []string{s.ID}, Ended: true})
	h.session(s.ID)
	h.mustApply(CmdDeleteConsoleSession, DeleteConsoleSessionCmd{Now: 10_000, IDs: []string{s.ID}})
	if _, ok := h.f.ConsoleSession(s.ID); ok {
		t.Fatal("signed-out session still there")
	}
	h.mustApply(CmdDeleteConsoleSession, DeleteConsoleSessionCmd{Now: 10_000, IDs: []string{s.ID}})
}

func TestConsoleSessionApply_PurgeTakesEndedAndRevokedOnly(t *testing.T) {
	h := newHarness(t)
	h.init()
	live, idle, revoked := consoleSession(1), consoleSession(2), consoleSession(3)
	revoked.AccessKeyID = "LTAIgone"
	for _, s := range []ConsoleSession{live, idle, revoked} {
		h.mustApply(CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: s})
	}
	h.mustApply(CmdTouchConsoleSession, TouchConsoleSessionCmd{Now: 8000, ID: live.ID})
	if h.f.ConsoleSessionUsable(h.session(revoked.ID)) || !h.f.ConsoleSessionUsable(h.session(live.ID)) {
		t.Fatal("ConsoleSessionUsable disagrees with the access keys")
	}
	h.mustApply(CmdDeleteConsoleSession, DeleteConsoleSessionCmd{Now: 12_500, IDs: []string{live.ID, idle.ID, revoked.ID, "unknown"}, Ended: true})
	all := h.f.ConsoleSessions()
	if len(all) != 1 || all[0].ID != live.ID {
		t.Fatalf("after the purge: %v", all)
	}
}

func TestConsoleSessionApply_PerAccountLimitCountsLiveSessionsOnly(t *testing.T) {
	h := newHarness(t)
	h.init()
	for i := range MaxConsoleSessionsPerAccount {
		h.mustApply(CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: consoleSession(i)})
	}
	over := consoleSession(MaxConsoleSessionsPerAccount)
	h.refused("one session beyond the account's limit", ErrConsoleSessionLimit, CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: over})
	// Once the others have idled out (not yet purged), the account may sign in.
	h.mustApply(CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 12_000, Session: over})
}

func TestSnapshot_RoundTripsConsoleSessions(t *testing.T) {
	h := newHarness(t)
	h.init()
	a, b := consoleSession(1), consoleSession(2)
	b.Temporary, b.Kind, b.Name, b.RoleID, b.Session = true, "role", "ops", "rid", "web"
	h.mustApply(CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 2000, Session: a})
	h.mustApply(CmdCreateConsoleSession, CreateConsoleSessionCmd{Now: 3000, Session: b})
	data := snapshotBytes(t, h.f)
	want, _ := h.f.Hash()
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Hash(); got != want {
		t.Fatal("the restored catalogue differs")
	}
	if s, ok := g.ConsoleSession(b.ID); !ok || !s.Temporary || s.RoleID != "rid" || s.CreatedAt != 3000 {
		t.Fatalf("restored %+v", s)
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("re-persisted snapshot differs")
	}
}

func TestConsoleSessionCommands_HaveNames(t *testing.T) {
	for typ, name := range map[CommandType]string{CmdCreateConsoleSession: "CreateConsoleSession",
		CmdTouchConsoleSession: "TouchConsoleSession", CmdDeleteConsoleSession: "DeleteConsoleSession"} {
		if typ.String() != name {
			t.Errorf("%d.String() = %q, want %q", typ, typ.String(), name)
		}
	}
}
