package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
)

// Attacks on authorization (issue 9, points 2, 3 and 8) as a client makes
// them, with the codes the service answers.

func ctx30(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// userClient creates a RAM user with the given system policies and an
// access key, and returns a client signing as that user.
func (tn *testNode) userClient(tb testing.TB, name string, policies ...string) *client.Client {
	tb.Helper()
	tn.must(tb, "CreateUser", map[string]string{"UserName": name}, nil)
	for _, p := range policies {
		tn.must(tb, "AttachPolicyToUser", map[string]string{"UserName": name, "PolicyType": "System", "PolicyName": p}, nil)
	}
	var ak struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	tn.must(tb, "CreateAccessKey", map[string]string{"UserName": name}, &ak)
	cl, err := client.New(tn.Endpoint(), ak.AccessKey.AccessKeyId, ak.AccessKey.AccessKeySecret)
	if err != nil {
		tb.Fatal(err)
	}
	return cl
}

type stsCreds struct {
	Credentials struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
}

func (tn *testNode) roleClient(tb testing.TB, creds stsCreds) *client.Client {
	tb.Helper()
	cl, err := client.New(tn.Endpoint(), creds.Credentials.AccessKeyId, creds.Credentials.AccessKeySecret, client.WithSecurityToken(creds.Credentials.SecurityToken))
	if err != nil {
		tb.Fatal(err)
	}
	return cl
}

// Point 3a: a session of a role is refused once the role was deleted and a
// role of the same name created again, whatever its trust policy.
func TestSTS_RefusesSessionsOfARecreatedRole(t *testing.T) {
	tn := startNode(t)
	trust := `{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:root"]}}]}`
	role := map[string]string{"RoleName": "r", "AssumeRolePolicyDocument": trust}
	tn.must(t, "CreateRole", role, nil)
	tn.must(t, "AttachPolicyToRole", map[string]string{"RoleName": "r", "PolicyType": "System", "PolicyName": "AliyunKMSFullAccess"}, nil)
	var creds stsCreds
	tn.must(t, "AssumeRole", map[string]string{"RoleArn": "acs:ram::" + tn.AccountID + ":role/r", "RoleSessionName": "old"}, &creds)
	session := tn.roleClient(t, creds)
	if _, err := session.Call(ctx30(t), "ListKeys", nil); err != nil {
		t.Fatalf("the fresh session: %v", err)
	}
	tn.must(t, "DetachPolicyFromRole", map[string]string{"RoleName": "r", "PolicyType": "System", "PolicyName": "AliyunKMSFullAccess"}, nil)
	tn.must(t, "DeleteRole", map[string]string{"RoleName": "r"}, nil)
	tn.must(t, "CreateRole", role, nil)
	tn.must(t, "AttachPolicyToRole", map[string]string{"RoleName": "r", "PolicyType": "System", "PolicyName": "AliyunKMSFullAccess"}, nil)
	_, err := session.Call(ctx30(t), "ListKeys", nil)
	wantAPIError(t, err, 400, "InvalidSecurityToken.Expired")
}

// Point 3b: a RAM user needs a policy allowing sts:AssumeRole; the root
// does not.
func TestSTS_AssumeRoleNeedsTheUsersPermission(t *testing.T) {
	tn := startNode(t)
	trust := `{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:root"]}}]}`
	tn.must(t, "CreateRole", map[string]string{"RoleName": "app", "AssumeRolePolicyDocument": trust}, nil)
	assume := map[string]string{"RoleArn": "acs:ram::" + tn.AccountID + ":role/app", "RoleSessionName": "sess"}

	_, err := tn.userClient(t, "nobody").Call(ctx30(t), "AssumeRole", assume)
	wantAPIError(t, err, 403, "Forbidden.NoPermission")
	_, err = tn.userClient(t, "kmsonly", "AliyunKMSFullAccess").Call(ctx30(t), "AssumeRole", assume)
	wantAPIError(t, err, 403, "Forbidden.NoPermission")
	if _, err := tn.userClient(t, "app", "AliyunSTSAssumeRoleAccess").Call(ctx30(t), "AssumeRole", assume); err != nil {
		t.Fatalf("a user with AliyunSTSAssumeRoleAccess: %v", err)
	}
	tn.must(t, "AssumeRole", assume, nil) // the root
}

func (tn *testNode) operator(tb testing.TB, cl *client.Client, method, path string, q url.Values) (map[string]any, error) {
	tb.Helper()
	resp, err := cl.Do(ctx30(tb), method, path, q, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return out, nil
}

// Point 2: the pattern that made the old matcher backtrack for hours is
// refused at SetKeyPolicy, naming the limit.
func TestSetKeyPolicy_RefusesPathologicalPattern(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "glob")
	doc := `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:*"]},"Action":["kms:*"],"Resource":["acs:kms:*?*?*?*?*?*?*?*?*?*?*?*?*?*?#"]}]}`
	tn.refused(t, "SetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default", "Policy": doc}, 400, "InvalidParameter")
	_, err := tn.call(t, "SetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default", "Policy": doc})
	if err == nil || !strings.Contains(err.Error(), "at most 16") {
		t.Fatalf("the refusal does not name the limit: %v", err)
	}
}

// Point 8a: wildcard principals in an Allow are refused, naming them.
func TestSetKeyPolicy_RefusesWildcardPrincipals(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "wildcards")
	for _, p := range []string{"*", "acs:ram::*:*", "acs:ram::*:root"} {
		doc := `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:*"]},"Action":["kms:*"],"Resource":["*"]},` +
			`{"Effect":"Allow","Principal":{"RAM":["` + p + `"]},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":["*"]}]}`
		tn.refused(t, "SetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default", "Policy": doc}, 400, "InvalidParameter")
		_, err := tn.call(t, "SetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default", "Policy": doc})
		if err == nil || !strings.Contains(err.Error(), "wildcards are not allowed for principals of other accounts") || !strings.Contains(err.Error(), strconv.Quote(p)) {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

// Point 8b: the lockout safety check and its bypass parameter.
func TestSetKeyPolicy_LockoutSafetyCheckAndBypass(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "lockout")
	lockout := `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:*"]},"Action":["kms:*"],"Resource":["*"]},` +
		`{"Effect":"Deny","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:*"]},"Action":["kms:SetKeyPolicy"],"Resource":["*"]}]}`
	params := map[string]string{"KeyId": key, "PolicyName": "default", "Policy": lockout}
	tn.refused(t, "SetKeyPolicy", params, 400, "InvalidParameter")
	_, err := tn.call(t, "SetKeyPolicy", params)
	if err == nil || !strings.Contains(err.Error(), "BypassPolicyLockoutSafetyCheck") {
		t.Fatalf("the refusal does not mention BypassPolicyLockoutSafetyCheck: %v", err)
	}
	params["BypassPolicyLockoutSafetyCheck"] = "maybe"
	tn.refused(t, "SetKeyPolicy", params, 400, "InvalidParameter")
	params["BypassPolicyLockoutSafetyCheck"] = "true"
	tn.must(t, "SetKeyPolicy", params, nil)
	// Locked out indeed.
	delete(params, "BypassPolicyLockoutSafetyCheck")
	tn.refused(t, "SetKeyPolicy", params, 403, "Forbidden.NoPermission")
}

// Point 8c: reserved alias prefixes in any case.
func TestCreateAlias_RefusesReservedPrefixesInAnyCase(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "aliases")
	for _, name := range []string{"alias/acs/x", "alias/ACS/x", "alias/aliyun/x", "alias/AliYun/x"} {
		tn.refused(t, "CreateAlias", map[string]string{"KeyId": key, "AliasName": name}, 400, "InvalidParameter")
	}
}

// Point 8d: at most 10 KMS instances per account unless the operator
// raises the limit.
func TestInstances_PerAccountLimit(t *testing.T) {
	tn := startNode(t)
	create := func(cl *client.Client) error {
		_, err := tn.operator(t, cl, http.MethodPost, "/v1/operator/instances", url.Values{"Type": {"software"}})
		return err
	}
	for i := 1; i < 10; i++ { // operator init made the first
		if err := create(tn.V3); err != nil {
			t.Fatalf("instance %d: %v", i+1, err)
		}
	}
	before := tn.hash()
	err := create(tn.V3)
	ae := wantAPIError(t, err, 400, "Rejected.LimitExceeded")
	if !strings.Contains(ae.Message, "at most 10") || !strings.Contains(ae.Message, "kmsctl operator instance limit") {
		t.Fatalf("the refusal does not name the limit and how to raise it: %s", ae.Message)
	}
	if tn.hash() != before {
		t.Fatal("a refused instance changed the catalogue")
	}

	// Another account may not raise its own limit.
	var acct struct{ AccountId, AccessKeyId, AccessKeySecret string }
	out, err := tn.operator(t, tn.V3, http.MethodPost, "/v1/operator/accounts", url.Values{"Name": {"b"}})
	if err != nil {
		t.Fatal(err)
	}
	acct.AccountId, acct.AccessKeyId, acct.AccessKeySecret = out["AccountId"].(string), out["AccessKeyId"].(string), out["AccessKeySecret"].(string)
	b, err := client.New(tn.Endpoint(), acct.AccessKeyId, acct.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tn.operator(t, b, http.MethodPost, "/v1/operator/instance-limits", url.Values{"AccountId": {acct.AccountId}, "MaxInstances": {"50"}})
	wantAPIError(t, err, 403, "Forbidden.NoPermission")
	_, err = tn.operator(t, tn.V3, http.MethodPost, "/v1/operator/instance-limits", url.Values{"AccountId": {tn.AccountID}, "MaxInstances": {"0"}})
	wantAPIError(t, err, 400, "InvalidParameter")

	if _, err := tn.operator(t, tn.V3, http.MethodPost, "/v1/operator/instance-limits", url.Values{"AccountId": {tn.AccountID}, "MaxInstances": {"11"}}); err != nil {
		t.Fatal(err)
	}
	got, err := tn.operator(t, tn.V3, http.MethodGet, "/v1/operator/instance-limits", nil)
	if err != nil || got["MaxInstances"] != float64(11) || got["Instances"] != float64(10) {
		t.Fatalf("limit = %v, %v", got, err)
	}
	if err := create(tn.V3); err != nil {
		t.Fatalf("under the raised limit: %v", err)
	}
	wantAPIError(t, create(tn.V3), 400, "Rejected.LimitExceeded")
	if err := create(b); err != nil {
		t.Fatalf("another account's first instance: %v", err)
	}
}
