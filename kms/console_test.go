package kms

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/fsm"
)

// consoleUser makes a RAM user with an access key and returns its id and
// secret.
func (e *svcEnv) consoleUser(t *testing.T, name string) (string, string) {
	t.Helper()
	bg := context.Background()
	if _, _, err := e.svc.CreateUser(bg, e.caller, UserInput{Name: name}); err != nil {
		t.Fatal(err)
	}
	ak, err := e.svc.CreateAccessKey(bg, e.caller, name)
	if err != nil {
		t.Fatal(err)
	}
	return ak.AccessKey.ID, ak.Secret
}

func TestConsoleSession_SignInRecordsTheIdentityNotTheSecret(t *testing.T) {
	e := newSvcEnv(t)
	id, secret := e.consoleUser(t, "alice")
	bg := context.Background()
	e.unchanged(t, "a wrong secret", func() {
		_, err := e.svc.CreateConsoleSession(bg, ConsoleSignIn{AccessKeyID: id, AccessKeySecret: secret + "x"})
		wantErr(t, "a wrong secret", err, ErrConsoleSecret)
		_, err = e.svc.CreateConsoleSession(bg, ConsoleSignIn{AccessKeyID: id})
		wantErr(t, "no secret", err, ErrMissingParameter)
		_, err = e.svc.CreateConsoleSession(bg, ConsoleSignIn{AccessKeyID: "LTAInone", AccessKeySecret: "x"})
		wantErr(t, "an unknown key", err, ErrAccessKeyNotFound)
	})
	in, err := e.svc.CreateConsoleSession(bg, ConsoleSignIn{AccessKeyID: id, AccessKeySecret: secret, IdleTimeout: 10 * time.Minute, Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(in.Cookie)
	if err != nil || len(raw) != 32 {
		t.Fatalf("cookie %q", in.Cookie)
	}
	sum := sha256.Sum256(raw)
	sid := hex.EncodeToString(sum[:])
	s, ok := e.fsm.ConsoleSession(sid)
	if !ok || s.Kind != KindUser || s.Name != "alice" || s.AccessKeyID != id || s.IdleTimeout != (10*time.Minute).Milliseconds() ||
		s.ExpiresAt-s.CreatedAt != ConsoleSessionMaxLifetime.Milliseconds() || s.Node != "n1" {
		t.Fatalf("recorded %+v", s)
	}
	if got, _ := ParseConsoleCookie(in.Cookie); got != sid {
		t.Fatalf("ParseConsoleCookie = %s, want %s", got, sid)
	}
	_, c, err := e.svc.ConsoleSession(bg, sid)
	if err != nil || c.Principal != UserArn(c.AccountID, "alice") || c.Kind != KindUser || c.AccessKeyID != id {
		t.Fatalf("ConsoleSession: %+v, %v", c, err)
	}
}

func TestConsoleSession_CSRFTokenIsPerSession(t *testing.T) {
	e := newSvcEnv(t)
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	ta, tb := e.svc.ConsoleCSRFToken(a), e.svc.ConsoleCSRFToken(b)
	if ta == tb || ta != e.svc.ConsoleCSRFToken(a) || len(ta) != 43 {
		t.Fatalf("tokens %q %q", ta, tb)
	}
	if !e.svc.CheckConsoleCSRF(a, ta) || e.svc.CheckConsoleCSRF(a, tb) || e.svc.CheckConsoleCSRF(a, "") || e.svc.CheckConsoleCSRF(a, ta[:42]) {
		t.Fatal("CheckConsoleCSRF accepts what it must not, or refuses the right token")
	}
}

func TestConsoleSession_IdleTouchAndPurge(t *testing.T) {
	e := newSvcEnv(t)
	id, secret := e.consoleUser(t, "bob")
	bg := context.Background()
	in, err := e.svc.CreateConsoleSession(bg, ConsoleSignIn{AccessKeyID: id, AccessKeySecret: secret, IdleTimeout: 6 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sid := in.Session.ID
	seen := func() int64 { s, _ := e.fsm.ConsoleSession(sid); return s.LastSeen }
	first := seen()
	// Within a sixth of the idle timeout: no write.
	e.clock.Advance(59 * time.Second)
	e.unchanged(t, "a request soon after the last touch", func() {
		if _, _, err := e.svc.ConsoleSession(bg, sid); err != nil {
			t.Fatal(err)
		}
	})
	e.clock.Advance(2 * time.Second)
	if _, _, err := e.svc.ConsoleSession(bg, sid); err != nil {
		t.Fatal(err)
	}
	if seen() <= first {
		t.Fatal("LastSeen did not move after a sixth of the idle timeout")
	}
	// Idle past the timeout: the scheduler purges it.
	e.clock.Advance(6 * time.Minute)
	if e.tick(t) == 0 {
		t.Fatal("the scheduler purged nothing")
	}
	if _, ok := e.fsm.ConsoleSession(sid); ok {
		t.Fatal("the idle session is still there")
	}
	_, _, err = e.svc.ConsoleSession(bg, sid)
	wantErr(t, "an idle session", err, ErrConsoleSession)
}

func TestConsoleSession_STSSessionEndsWithItsCredentials(t *testing.T) {
	e := newSvcEnv(t)
	bg := context.Background()
	trust := `{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"RAM":["acs:ram::` + e.caller.AccountID + `:root"]}}],"Version":"1"}`
	if _, _, err := e.svc.CreateRole(bg, e.caller, RoleInput{Name: "ops", TrustPolicy: trust}); err != nil {
		t.Fatal(err)
	}
	tc, err := e.svc.AssumeRole(bg, e.caller, AssumeRoleInput{RoleArn: RoleArn(e.caller.AccountID, "ops"), SessionName: "web", DurationSeconds: 900})
	if err != nil {
		t.Fatal(err)
	}
	in, err := e.svc.CreateConsoleSession(bg, ConsoleSignIn{AccessKeyID: tc.AccessKeyID, AccessKeySecret: tc.AccessKeySecret, SecurityToken: tc.SecurityToken})
	if err != nil {
		t.Fatal(err)
	}
	s := in.Session
	if !s.Temporary || s.RoleID == "" || s.ExpiresAt != tc.Expiration.UnixMilli() || s.Kind != KindRole || s.Session != "web" {
		t.Fatalf("STS session %+v (credentials expire %s)", s, tc.Expiration)
	}
	e.clock.Advance(14 * time.Minute)
	if _, _, err := e.svc.ConsoleSession(bg, s.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	_, _, err = e.svc.ConsoleSession(bg, s.ID)
	wantErr(t, "a session past its token's expiry", err, ErrConsoleSession)
	if _, ok := e.fsm.ConsoleSession(s.ID); ok {
		t.Fatal("the ended session was not deleted")
	}
}

// FuzzParseConsoleCookie: any cookie value decodes to a session id or is
// refused as an ended session; only the canonical encoding of 32 bytes is
// accepted, and it names the SHA-256 of those bytes.
func FuzzParseConsoleCookie(f *testing.F) {
	for _, s := range []string{
		base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		strings.Repeat("A", 43), strings.Repeat("_", 43), strings.Repeat("A", 42) + "B", // last char with stray bits
		strings.Repeat("A", 44), base64.URLEncoding.EncodeToString(make([]byte, 32)), base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"", "=", strings.Repeat("A", 42) + "=", "\x00", strings.Repeat("é", 21) + "A", "../../etc/passwd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, err := ParseConsoleCookie(v)
		if err != nil {
			if id != "" || !errors.Is(err, ErrConsoleSession) {
				t.Fatalf("ParseConsoleCookie(%q) = %q, %v", v, id, err)
			}
			return
		}
		raw, derr := base64.RawURLEncoding.Strict().DecodeString(v)
		if derr != nil || len(raw) != 32 || base64.RawURLEncoding.EncodeToString(raw) != v {
			t.Fatalf("accepted a non-canonical cookie %q", v)
		}
		sum := sha256.Sum256(raw)
		if id != fsm.ConsoleSessionID(sum) {
			t.Fatalf("id %q is not the cookie's SHA-256", id)
		}
	})
}
