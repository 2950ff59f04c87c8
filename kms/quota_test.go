package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/fsm"
)

const otherAccount = "9876543210987654"

func allowPolicy(owner string, principals ...string) string {
	return fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::%s:*"]},"Action":["kms:*"],"Resource":["*"]},`+
		`{"Effect":"Allow","Principal":{"RAM":["%s"]},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":["*"]}]}`, owner, strings.Join(principals, `","`))
}

// Point 8a: a wildcard principal could stand for any number of accounts,
// which the access quota cannot count: refused, naming the principal.
func TestSetKeyPolicy_RefusesWildcardPrincipalsOfOtherAccounts(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	for _, p := range []string{"*", "acs:ram::*:*", "acs:ram::*:root", "acs:ram::" + otherAccount + ":user/*", "acs:ram::" + otherAccount + ":role/app?"} {
		t.Run(p, func(t *testing.T) {
			doc := allowPolicy(e.caller.AccountID, p)
			e.unchanged(t, "a refused policy", func() {
				_, err := e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: doc})
				wantErr(t, "SetKeyPolicy", err, ErrInvalidParameter)
				if err != nil && (!strings.Contains(err.Error(), "wildcards are not allowed for principals of other accounts") || !strings.Contains(err.Error(), p)) {
					t.Errorf("the refusal does not say why or name %s: %v", p, err)
				}
				_, _, err = e.svc.CreateKey(bg, e.caller, CreateKeyInput{DKMSInstanceID: e.inst, Policy: doc})
				wantErr(t, "CreateKey", err, ErrInvalidParameter)
			})
		})
	}
	// A Deny may name everyone; the owner's own account is no wildcard.
	deny := `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + e.caller.AccountID + `:*"]},"Action":["kms:*"],"Resource":["*"]},` +
		`{"Effect":"Deny","Principal":{"RAM":["*"]},"Action":["kms:ScheduleKeyDeletion"],"Resource":["*"]}]}`
	if _, err := e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: deny}); err != nil {
		t.Fatalf("a Deny for *: %v", err)
	}
}

// A wildcard Allow stored before the rule (or restored from an old
// snapshot) grants nothing to other accounts.
func TestAuthorize_StoredWildcardPrincipalGrantsNoOtherAccount(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	for _, p := range []string{"*", "acs:ram::*:*"} {
		e.setPolicyUnchecked(t, k.ID, `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["`+p+`"]},"Action":["kms:*"],"Resource":["*"]}]}`)
		foreign := Caller{AccountID: otherAccount, Principal: rootPrincipal(otherAccount), Kind: KindRoot}
		err := e.svc.authorizeKey(bg, foreign, "kms:Encrypt", e.key(t, k.ID), nil)
		wantErr(t, p+" for another account's root", err, ErrNoPermission)
		if err := e.svc.authorizeKey(bg, e.caller, "kms:Encrypt", e.key(t, k.ID), nil); err != nil {
			t.Errorf("%s for the owner: %v", p, err)
		}
	}
}

func otherPrincipals(n int) []string {
	var ps []string
	for i := 0; i < n; i++ {
		ps = append(ps, fmt.Sprintf("acs:ram::%016d:root", 1000000000000000+i))
	}
	return ps
}

// The default key (outside every instance) obeys the same cross-account
// limit as a key of an instance.
func TestDefaultKey_ObeysTheCrossAccountLimit(t *testing.T) {
	e := newSvcEnv(t)
	over := allowPolicy(e.caller.AccountID, otherPrincipals(fsm.DefaultAccessQuota+1)...)
	e.unchanged(t, "a default key over the limit", func() {
		_, _, err := e.svc.CreateKey(bg, e.caller, CreateKeyInput{Policy: over})
		wantErr(t, "CreateKey", err, ErrLimitExceeded)
	})
	k := e.createKey(t, CreateKeyInput{DKMSInstanceID: "-"})
	if _, err := e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: allowPolicy(e.caller.AccountID, otherPrincipals(fsm.DefaultAccessQuota)...)}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	e.unchanged(t, "SetKeyPolicy over the limit", func() {
		_, err := e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: over})
		wantErr(t, "SetKeyPolicy", err, ErrLimitExceeded)
	})
}

// Point 8b: SetKeyPolicy refuses a policy that would stop the caller from
// calling SetKeyPolicy on the key, unless told to bypass the check.
func TestSetKeyPolicy_LockoutSafetyCheck(t *testing.T) {
	e := newSvcEnv(t)
	acct := e.caller.AccountID
	admin := e.mkUser(t, "admin") // no RAM policies: the key policy grants it
	e.mkUser(t, "other")
	full := e.mkUser(t, "full", PolicyFullAccess)
	grant := func(principal string) string {
		return `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["` + principal + `"]},"Action":["kms:*"],"Resource":["*"]}]}`
	}
	denyAll := `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + acct + `:*"]},"Action":["kms:*"],"Resource":["*"]},` +
		`{"Effect":"Deny","Principal":{"RAM":["acs:ram::` + acct + `:*"]},"Action":["kms:SetKeyPolicy"],"Resource":["*"]}]}`
	cases := []struct {
		name    string
		caller  Caller
		doc     string
		lockout bool
	}{
		{"the root denying SetKeyPolicy to its account", e.caller, denyAll, true},
		{"the root granting only a user (its RAM permission remains)", e.caller, grant(UserArn(acct, "other")), false},
		{"a key-policy admin granting only another user", admin, grant(UserArn(acct, "other")), true},
		{"a key-policy admin keeping itself", admin, grant(UserArn(acct, "admin")), false},
		{"a user with AliyunKMSFullAccess not named by the policy", full, grant(UserArn(acct, "other")), false},
		{"a user with AliyunKMSFullAccess denied by the policy", full, denyAll, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + acct + `:*"]},"Action":["kms:*"],"Resource":["*"]},` +
				`{"Effect":"Allow","Principal":{"RAM":["` + UserArn(acct, "admin") + `"]},"Action":["kms:*"],"Resource":["*"]}]}`
			k := e.createKey(t, CreateKeyInput{Policy: start})
			if !c.lockout {
				if _, err := e.svc.SetKeyPolicy(bg, c.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: c.doc}); err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e.unchanged(t, "a lockout", func() {
				_, err := e.svc.SetKeyPolicy(bg, c.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: c.doc})
				wantErr(t, "SetKeyPolicy", err, ErrInvalidParameter)
				if err != nil && !strings.Contains(err.Error(), "BypassPolicyLockoutSafetyCheck") {
					t.Errorf("the refusal does not mention BypassPolicyLockoutSafetyCheck: %v", err)
				}
			})
			if _, err := e.svc.SetKeyPolicy(bg, c.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: c.doc, BypassLockoutCheck: true}); err != nil {
				t.Fatalf("with BypassPolicyLockoutSafetyCheck: %v", err)
			}
			if got := e.key(t, k.ID).Policy; got != c.doc {
				t.Fatalf("the bypassed policy was not set: %s", got)
			}
		})
	}
}

// Point 8c: the reserved alias prefixes in any case.
func TestCheckAliasName_ReservedPrefixesInAnyCase(t *testing.T) {
	for _, name := range []string{"alias/acs/x", "alias/ACS/x", "alias/Acs/x", "alias/aliyun/x", "alias/AliYun/x", "alias/ALIYUN/x"} {
		err := checkAliasName(name)
		if !errors.Is(err, ErrInvalidParameter) || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("%s: %v, want a refusal saying the prefix is reserved", name, err)
		}
	}
	for _, name := range []string{"alias/acsx", "alias/aliyunx/y", "alias/my/acs/x"} {
		if err := checkAliasName(name); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
}

// Point 8d: each account may create at most MaxInstances KMS instances
// (default 10), the operator may change it per account, and the FSM
// enforces it against its own count.
func TestCreateInstance_AccountLimit(t *testing.T) {
	e := newSvcEnv(t)
	acct := e.caller.AccountID
	// Init made the operator account's first instance.
	for i := 1; i < fsm.DefaultMaxInstances; i++ {
		if _, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Type: "software", Name: fmt.Sprint("i", i)}); err != nil {
			t.Fatalf("instance %d: %v", i+1, err)
		}
	}
	e.unchanged(t, "an instance over the limit", func() {
		_, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Type: "software", Name: "one too many"})
		wantErr(t, "CreateInstance", err, fsm.ErrInstanceLimitExceeded)
		if err != nil && (!strings.Contains(err.Error(), "10") || !strings.Contains(err.Error(), "kmsctl operator instance limit")) {
			t.Errorf("the refusal does not name the limit and how to raise it: %v", err)
		}
	})
	// Straight to the FSM, as two proposals that both passed a stale
	// check would arrive: still refused.
	cmd, _ := fsm.Encode(fsm.CmdCreateInstance, fsm.CreateInstanceCmd{Instance: fsm.Instance{ID: "kst-direct", AccountID: acct, Type: "software"}})
	if res, err := e.store.Propose(bg, cmd); err != nil || !errors.Is(res.Err, fsm.ErrInstanceLimitExceeded) {
		t.Fatalf("a direct CreateInstance over the limit: %v %v", err, res.Err)
	}

	// Another account cannot raise its own limit; the operator can.
	b, err := e.svc.CreateAccount(bg, e.caller, "b")
	if err != nil {
		t.Fatal(err)
	}
	bRoot := Caller{AccountID: b.AccountID, Principal: rootPrincipal(b.AccountID), Kind: KindRoot}
	_, err = e.svc.SetInstanceLimit(bg, bRoot, b.AccountID, 50)
	wantErr(t, "an account raising its own limit", err, ErrNoPermission)
	for _, bad := range []int{0, -1, MaxInstanceLimit + 1} {
		_, err := e.svc.SetInstanceLimit(bg, e.caller, acct, bad)
		wantErr(t, fmt.Sprint("limit ", bad), err, ErrInvalidParameter)
	}
	_, err = e.svc.SetInstanceLimit(bg, e.caller, "0000000000000000", 12)
	wantErr(t, "an unknown account", err, fsm.ErrAccountNotFound)
	if _, err := e.svc.SetInstanceLimit(bg, e.caller, acct, 11); err != nil {
		t.Fatal(err)
	}
	if max, used, err := e.svc.InstanceLimit(bg, e.caller, acct); err != nil || max != 11 || used != 10 {
		t.Fatalf("InstanceLimit = %d, %d, %v; want 11, 10", max, used, err)
	}
	if _, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Type: "software", Name: "eleventh"}); err != nil {
		t.Fatalf("under the raised limit: %v", err)
	}
	_, _, err = e.svc.CreateInstance(bg, e.caller, InstanceInput{Type: "software", Name: "twelfth"})
	wantErr(t, "past the raised limit", err, fsm.ErrInstanceLimitExceeded)
	// The other account counts its own instances.
	if _, _, err := e.svc.CreateInstance(context.Background(), bRoot, InstanceInput{Type: "software", Name: "b1"}); err != nil {
		t.Fatalf("another account's first instance: %v", err)
	}
}

// The operator chooses a new instance's key quota (issue 16: a million keys
// in one instance), within 1..MaxKeyQuota; none given is DefaultKeyQuota,
// and the FSM holds the instance to it.
func TestCreateInstance_KeyQuota(t *testing.T) {
	e := newSvcEnv(t)
	def, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Name: "default quota"})
	if err != nil || def.KeyQuota != DefaultKeyQuota {
		t.Fatalf("no quota given: %v, quota %d, want %d", err, def.KeyQuota, DefaultKeyQuota)
	}
	big, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Name: "big", KeyQuota: MaxKeyQuota})
	if err != nil || big.KeyQuota != MaxKeyQuota {
		t.Fatalf("the largest quota: %v, quota %d", err, big.KeyQuota)
	}
	for _, bad := range []int{-1, MaxKeyQuota + 1} {
		e.unchanged(t, fmt.Sprint("quota ", bad), func() {
			_, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Name: "bad", KeyQuota: bad})
			wantErr(t, fmt.Sprint("quota ", bad), err, ErrInvalidParameter)
		})
	}
	small, _, err := e.svc.CreateInstance(bg, e.caller, InstanceInput{Name: "small", KeyQuota: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := e.svc.CreateKey(bg, e.caller, CreateKeyInput{DKMSInstanceID: small.ID}); err != nil {
			t.Fatalf("key %d of 2: %v", i+1, err)
		}
	}
	_, _, err = e.svc.CreateKey(bg, e.caller, CreateKeyInput{DKMSInstanceID: small.ID})
	wantErr(t, "a third key in an instance of 2", err, ErrLimitExceeded)
	if err == nil || !strings.Contains(err.Error(), "holds 2 of 2 keys") {
		t.Errorf("the refusal does not say the quota: %v", err)
	}
}

// CreateKey without a policy stores the default one and counts no
// principal of another account without parsing it: that shortcut holds only
// while the default policy allows the owner's account alone.
func TestDefaultPolicy_AllowsNoOtherAccount(t *testing.T) {
	for _, acct := range []string{"1234567890123456", otherAccount, "1"} {
		if n := CrossAccountPrincipals(DefaultPolicy(acct), acct); n != 0 {
			t.Fatalf("the default policy of %s allows %d principals of other accounts", acct, n)
		}
		if err := ValidatePolicy(DefaultPolicy(acct)); err != nil {
			t.Fatalf("the default policy of %s is not valid: %v", acct, err)
		}
	}
}
