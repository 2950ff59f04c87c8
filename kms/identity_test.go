package kms

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func trustRoot(account string) string {
	return `{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::` + account + `:root"]}}]}`
}

// mkUser creates a user of the env's account with the given system
// policies and returns the Caller its access keys stand for.
func (e *svcEnv) mkUser(t *testing.T, name string, policies ...string) Caller {
	t.Helper()
	if _, _, err := e.svc.CreateUser(bg, e.caller, UserInput{Name: name}); err != nil {
		t.Fatal(err)
	}
	for _, p := range policies {
		if _, err := e.svc.AttachPolicy(bg, e.caller, PolicyAttachmentInput{To: AttachToUser, Name: name, PolicyType: "System", PolicyName: p}); err != nil {
			t.Fatalf("attach %s: %v", p, err)
		}
	}
	return Caller{AccountID: e.caller.AccountID, Principal: UserArn(e.caller.AccountID, name), Kind: KindUser, Name: name}
}

// A session token names the role it was issued for by the role's id: once
// the role is deleted and a role of the same name created again (whatever
// its trust policy), the old sessions are refused.
func TestSTS_TokenRefusedAfterRoleRecreated(t *testing.T) {
	e := newSvcEnv(t)
	acct := e.caller.AccountID
	arn := RoleArn(acct, "r")
	if _, _, err := e.svc.CreateRole(bg, e.caller, RoleInput{Name: "r", TrustPolicy: trustRoot(acct)}); err != nil {
		t.Fatal(err)
	}
	creds, err := e.svc.AssumeRole(bg, e.caller, AssumeRoleInput{RoleArn: arn, SessionName: "s1", DurationSeconds: 900})
	if err != nil {
		t.Fatal(err)
	}
	if _, c, err := e.svc.Credential(bg, creds.AccessKeyID, creds.SecurityToken); err != nil || c.Name != "r" {
		t.Fatalf("fresh session: %v %+v", err, c)
	}
	if _, err := e.svc.DeleteRole(bg, e.caller, "r"); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.Credential(bg, creds.AccessKeyID, creds.SecurityToken)
	wantErr(t, "session of a deleted role", err, ErrSTSRevoked)
	for name, trust := range map[string]string{
		"the same trust policy": trustRoot(acct),
		"another trust policy":  trustRoot("9999999999999999"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := e.svc.CreateRole(bg, e.caller, RoleInput{Name: "r", TrustPolicy: trust}); err != nil {
				t.Fatal(err)
			}
			defer e.svc.DeleteRole(bg, e.caller, "r")
			_, _, err := e.svc.Credential(bg, creds.AccessKeyID, creds.SecurityToken)
			wantErr(t, "session of the old role", err, ErrSTSRevoked)
		})
	}
	// A session of the new role works.
	if _, _, err := e.svc.CreateRole(bg, e.caller, RoleInput{Name: "r", TrustPolicy: trustRoot(acct)}); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.svc.AssumeRole(bg, e.caller, AssumeRoleInput{RoleArn: arn, SessionName: "s2", DurationSeconds: 900})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Credential(bg, fresh.AccessKeyID, fresh.SecurityToken); err != nil {
		t.Fatalf("session of the new role: %v", err)
	}
}

// A RAM user may assume a role only when a policy attached to it allows
// sts:AssumeRole (AliyunSTSAssumeRoleAccess); the root may whenever the
// role trusts it; the trust policy still has to name the user's account.
func TestAssumeRole_UserNeedsAnSTSPolicy(t *testing.T) {
	e := newSvcEnv(t)
	acct := e.caller.AccountID
	arn := RoleArn(acct, "app")
	if _, _, err := e.svc.CreateRole(bg, e.caller, RoleInput{Name: "app", TrustPolicy: trustRoot(acct)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateRole(bg, e.caller, RoleInput{Name: "closed", TrustPolicy: trustRoot("9999999999999999")}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		caller Caller
		role   string
		want   error
	}{
		{"a user with no policies", e.mkUser(t, "nobody"), arn, ErrNoPermission},
		{"a user with KMS policies only", e.mkUser(t, "kmsadmin", PolicyFullAccess, PolicyCryptoUserAccess), arn, ErrNoPermission},
		{"a user with AliyunSTSAssumeRoleAccess", e.mkUser(t, "app", PolicySTSAssumeRoleAccess), arn, nil},
		{"that user, a role that does not trust its account", e.mkUser(t, "app2", PolicySTSAssumeRoleAccess), RoleArn(acct, "closed"), ErrAssumeRoleDenied},
		{"the root", e.caller, arn, nil},
		{"the root, a role that does not trust it", e.caller, RoleArn(acct, "closed"), ErrAssumeRoleDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.svc.AssumeRole(bg, c.caller, AssumeRoleInput{RoleArn: c.role, SessionName: "sess", DurationSeconds: 900})
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantErr(t, "AssumeRole", err, c.want)
			if c.want == ErrNoPermission && errors.Is(err, ErrAssumeRoleDenied) {
				t.Fatalf("answered as a trust refusal: %v", err)
			}
		})
	}
	// Detaching the policy takes the permission away again.
	if _, err := e.svc.AttachPolicy(bg, e.caller, PolicyAttachmentInput{To: AttachToUser, Name: "app", PolicyType: "System", PolicyName: PolicySTSAssumeRoleAccess, Detach: true}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.AssumeRole(bg, cases[2].caller, AssumeRoleInput{RoleArn: arn, SessionName: "sess", DurationSeconds: 900})
	wantErr(t, "after detaching", err, ErrNoPermission)
	if u, _ := e.fsm.User(acct, "app"); len(u.Policies) != 0 {
		t.Fatalf("policies left: %v", u.Policies)
	}
}

// A token issued before sessions carried the role's id (so without one) is
// refused: it cannot show which role of that name it was issued for.
func TestSTS_TokenWithoutRoleIDRefused(t *testing.T) {
	e := newSvcEnv(t)
	acct := e.caller.AccountID
	if _, _, err := e.svc.CreateRole(bg, e.caller, RoleInput{Name: "r", TrustPolicy: trustRoot(acct)}); err != nil {
		t.Fatal(err)
	}
	cl := stsClaims{AccessKeyID: stsPrefix + "legacy", Secret: "s", AccountID: acct, Role: "r", Session: "old",
		Expires: e.clock.Now().Add(time.Hour).UnixMilli()}
	body, err := msgpack.Marshal(&cl)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := e.root.Wrap(body, stsAAD(cl.AccessKeyID))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.Credential(bg, cl.AccessKeyID, base64.RawURLEncoding.EncodeToString(sealed))
	wantErr(t, "a token without a role id", err, ErrSTSRevoked)
}
