package api_test

import (
	"context"
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
