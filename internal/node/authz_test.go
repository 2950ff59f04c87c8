package node

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/kms"
)

// fakeClock is a settable service clock shared by every node of a test
// cluster.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// principalClient is one identity of the matrix, with the node it talks to.
type principalClient struct {
	name string
	cl   *client.Client
}

// TestAuthorization_Matrix runs every action class for every kind of
// principal against a 3-node cluster, sending each request to a different
// node, and checks each cell's allow/deny (and the denial's code).
func TestAuthorization_Matrix(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	c := newTestCluster(t, 3, clusterOpts{clock: clock.now})
	owner := c.creds.AccountID
	root := c.clients

	// Identities of the owner account.
	mkUser := func(name string, policies ...string) (string, string) {
		c.mustCall(0, "CreateUser", map[string]string{"UserName": name})
		for _, p := range policies {
			c.mustCall(1, "AttachPolicyToUser", map[string]string{"UserName": name, "PolicyType": "System", "PolicyName": p})
		}
		ak := c.mustCall(2, "CreateAccessKey", map[string]string{"UserName": name})["AccessKey"].(map[string]any)
		return ak["AccessKeyId"].(string), ak["AccessKeySecret"].(string)
	}
	// Another account with a role that users of that account may assume,
	// and a third account with nothing granted.
	acctB := createAccount(t, c, "b")
	acctC := createAccount(t, c, "c")
	bRoot := c.clientFor(0, acctB.akid, acctB.secret)
	trust := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::%s:root"]}}]}`, acctB.id)
	mustOK(t, bRoot, "CreateRole", map[string]string{"RoleName": "crypto", "AssumeRolePolicyDocument": trust})
	mustOK(t, bRoot, "AttachPolicyToRole", map[string]string{"RoleName": "crypto", "PolicyType": "System", "PolicyName": "AliyunKMSCryptoUserAccess"})

	// Keys: one symmetric, one for signing, both with the console roles.
	sym := c.createKey(0, "matrix symmetric")
	sign := c.mustCall(1, "CreateKey", map[string]string{"DKMSInstanceId": c.creds.InstanceID, "KeySpec": "EC_P256", "KeyUsage": "SIGN/VERIFY"})["KeyMetadata"].(map[string]any)
	signKey, signVersion := sign["KeyId"].(string), sign["PrimaryKeyVersion"].(string)
	policy := fmt.Sprintf(`{"Version":"1","Statement":[
		{"Sid":"Enable User Permissions","Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:*"]},"Action":["kms:*"],"Resource":["*"]},
		{"Sid":"Administrators","Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:user/admin"]},"Action":["kms:List*","kms:Describe*","kms:Create*","kms:Enable*","kms:Disable*","kms:Get*","kms:Set*","kms:Update*","kms:Delete*","kms:Cancel*","kms:TagResource","kms:UntagResource","kms:ImportKeyMaterial","kms:ScheduleKeyDeletion"],"Resource":["*"]},
		{"Sid":"Users","Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:user/keyuser"]},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey","kms:AsymmetricSign","kms:AsymmetricVerify"],"Resource":["*"]},
		{"Sid":"Cross","Effect":"Allow","Principal":{"RAM":["acs:ram::%[2]s:role/crypto"]},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":["*"]}]}`, owner, acctB.id)
	for _, k := range []string{sym, signKey} {
		c.mustCall(2, "SetKeyPolicy", map[string]string{"KeyId": k, "PolicyName": "default", "Policy": policy})
	}
	symArn := fmt.Sprintf("acs:kms:local:%s:key/%s", owner, sym)
	signArn := fmt.Sprintf("acs:kms:local:%s:key/%s", owner, signKey)
	blob := c.mustCall(0, "Encrypt", map[string]string{"KeyId": sym, "Plaintext": "bWF0cml4"})["CiphertextBlob"].(string)
	digest := sha256.Sum256([]byte("matrix"))

	full, fullS := mkUser("full", "AliyunKMSFullAccess")
	ro, roS := mkUser("reader", "AliyunKMSReadOnlyAccess")
	cu, cuS := mkUser("crypto", "AliyunKMSCryptoUserAccess")
	adm, admS := mkUser("admin")
	ku, kuS := mkUser("keyuser")
	dead, deadS := mkUser("deactivated", "AliyunKMSFullAccess")
	c.mustCall(0, "UpdateAccessKey", map[string]string{"UserName": "deactivated", "UserAccessKeyId": dead, "Status": "Inactive"})

	assume := func() *client.Client {
		r, err := bRoot.Call(ctxT(t), "AssumeRole", map[string]string{"RoleArn": "acs:ram::" + acctB.id + ":role/crypto", "RoleSessionName": "matrix", "DurationSeconds": "900"})
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Credentials struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
		}
		json.Unmarshal(r.Body, &out)
		cl, _ := client.New(c.nodes[1].Endpoint(), out.Credentials.AccessKeyId, out.Credentials.AccessKeySecret, client.WithSecurityToken(out.Credentials.SecurityToken))
		return cl
	}
	role := assume()
	expired := assume()

	principals := []principalClient{
		{"owner root", root[0]},
		{"user with FullAccess", c.clientFor(1, full, fullS)},
		{"user with ReadOnlyAccess", c.clientFor(2, ro, roS)},
		{"user with CryptoUserAccess", c.clientFor(0, cu, cuS)},
		{"key administrator", c.clientFor(1, adm, admS)},
		{"key user", c.clientFor(2, ku, kuS)},
		{"cross-account user via role", role},
		{"other account without grant", c.clientFor(0, acctC.akid, acctC.secret)},
		{"expired STS credentials", expired},
		{"deactivated access key", c.clientFor(1, dead, deadS)},
	}
	type action struct {
		name   string
		call   string
		params map[string]string
	}
	// Every request names keys by ARN, as callers from other accounts must.
	actions := []action{
		{"manage", "UpdateKeyDescription", map[string]string{"KeyId": symArn, "Description": "touched"}},
		{"encrypt", "Encrypt", map[string]string{"KeyId": symArn, "Plaintext": "aGk="}},
		{"decrypt", "Decrypt", map[string]string{"CiphertextBlob": blob}},
		{"sign", "AsymmetricSign", map[string]string{"KeyId": signArn, "KeyVersionId": signVersion, "Algorithm": "ECDSA_SHA_256", "Digest": base64.StdEncoding.EncodeToString(digest[:])}},
		{"describe", "DescribeKey", map[string]string{"KeyId": symArn}},
	}
	const (
		A  = "allow"
		D  = "Forbidden.NoPermission"
		EX = "InvalidSecurityToken.Expired"
		IN = "Forbidden.AccessKey"
	)
	want := map[string][5]string{ // manage, encrypt, decrypt, sign, describe
		"owner root":                  {A, A, A, A, A},
		"user with FullAccess":        {A, A, A, A, A},
		"user with ReadOnlyAccess":    {D, D, D, D, A},
		"user with CryptoUserAccess":  {D, A, A, A, A},
		"key administrator":           {A, D, D, D, A},
		"key user":                    {D, A, A, A, D},
		"cross-account user via role": {D, A, A, D, D},
		"other account without grant": {D, D, D, D, D},
		"expired STS credentials":     {EX, EX, EX, EX, EX},
		"deactivated access key":      {IN, IN, IN, IN, IN},
	}
	clock.advance(0) // the role sessions are fresh; expire one of them below
	for _, p := range principals {
		if p.name == "expired STS credentials" {
			clock.advance(901 * time.Second)
		}
		for i, a := range actions {
			_, err := p.cl.Call(ctxT(t), a.call, a.params)
			got := A
			if err != nil {
				got = apiCode(err)
				if got == "" {
					t.Fatalf("%s / %s: %v", p.name, a.name, err)
				}
			}
			if exp := want[p.name][i]; got != exp {
				t.Errorf("%-28s %-8s = %s, want %s (%v)", p.name, a.name, got, exp, err)
			}
			if got == D && !strings.Contains(err.Error(), "kms:"+a.call) {
				t.Errorf("%s / %s: the denial does not name the action: %v", p.name, a.name, err)
			}
		}
	}
}

type account struct{ id, akid, secret string }

func createAccount(t *testing.T, c *testCluster, name string) account {
	t.Helper()
	res, err := c.nodes[0].Service().CreateAccount(ctxT(t), rootCaller(c), name)
	if err != nil {
		t.Fatal(err)
	}
	return account{res.AccountID, res.AccessKeyID, res.AccessKeySecret}
}

func (c *testCluster) clientFor(i int, akid, secret string) *client.Client {
	cl, err := client.New(c.nodes[i].Endpoint(), akid, secret)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func mustOK(t *testing.T, cl *client.Client, action string, params map[string]string) {
	t.Helper()
	if _, err := cl.Call(ctxT(t), action, params); err != nil {
		t.Fatalf("%s: %v", action, err)
	}
}

func rootCaller(c *testCluster) kms.Caller {
	return kms.Caller{AccountID: c.creds.AccountID, Principal: "acs:ram::" + c.creds.AccountID + ":root", Kind: kms.KindRoot}
}

// The operator limits an account's symmetric crypto; that account is
// throttled with the service's code, other accounts and classes are not.
func TestRateLimits_PerAccountAndClass(t *testing.T) {
	c := newTestCluster(t, 3)
	b := createAccount(t, c, "limited")
	bc := c.clientFor(1, b.akid, b.secret)
	key := mustCreateKey(t, bc)

	// Through the operator endpoint, as kmsctl does: 0.5 requests per second
	// allows a burst of one.
	resp, err := c.clients[0].Do(ctxT(t), "POST", "/v1/operator/ratelimits",
		map[string][]string{"AccountId": {b.id}, "Class": {"symmetric"}, "Rate": {"0.5"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := client.ParseIndex(resp.Header)
	resp.Body.Close()
	// Not the operator: refused.
	if _, err := bc.Do(ctxT(t), "POST", "/v1/operator/ratelimits",
		map[string][]string{"AccountId": {b.id}, "Class": {"symmetric"}, "Rate": {"0"}}, nil, nil); apiCode(err) != "Forbidden.NoPermission" {
		t.Fatalf("an account lifted its own limit: %v", err)
	}
	encrypt := func(cl *client.Client) error {
		_, err := cl.Call(ctxT(t), "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="}, client.WithMinIndex(idx))
		return err
	}
	if err := encrypt(bc); err != nil {
		t.Fatalf("first request within the burst: %v", err)
	}
	err = encrypt(bc)
	if apiCode(err) != "Rejected.Throttling" {
		t.Fatalf("second request inside two seconds: %v", err)
	}
	var ae *client.APIError
	if errors.As(err, &ae) && ae.StatusCode != 429 {
		t.Fatalf("throttling answered HTTP %d", ae.StatusCode)
	}
	// Management reads are another class; another account is unaffected.
	if _, err := bc.Call(ctxT(t), "DescribeKey", map[string]string{"KeyId": key}); err != nil {
		t.Fatalf("read class throttled: %v", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.clients[1].Call(ctxT(t), "ListKeys", nil); err != nil {
			t.Fatalf("another account throttled: %v", err)
		}
	}
}

func mustCreateKey(t *testing.T, cl *client.Client) string {
	t.Helper()
	r, err := cl.Call(ctxT(t), "CreateKey", map[string]string{"Description": "default key"})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ KeyMetadata struct{ KeyId string } }
	json.Unmarshal(r.Body, &out)
	return out.KeyMetadata.KeyId
}

// Each cross-account principal a key policy names uses one unit of the
// instance's access management quota; over quota is refused and changes
// nothing; removing principals returns the units.
func TestKeyPolicy_CrossAccountPrincipalsUseTheInstanceQuota(t *testing.T) {
	c := newTestCluster(t, 3)
	key := c.createKey(0, "quota")
	policy := func(n int) string {
		var ps []string
		for i := 0; i < n; i++ {
			ps = append(ps, fmt.Sprintf(`"acs:ram::%016d:root"`, 1000000000000000+i))
		}
		return fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::%s:*"]},"Action":["kms:*"],"Resource":["*"]},`+
			`{"Effect":"Allow","Principal":{"RAM":[%s]},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":["*"]}]}`,
			c.creds.AccountID, strings.Join(ps, ","))
	}
	set := func(n int) error {
		_, _, err := c.call(1, "SetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default", "Policy": policy(n)})
		return err
	}
	// Read on the node the writes went through: it has applied them.
	used := func() int {
		in, _ := c.nodes[1].FSM().Instance(c.creds.InstanceID)
		return in.AccessUsed
	}
	if err := set(10); err != nil {
		t.Fatalf("ten cross-account principals (the default quota): %v", err)
	}
	if used() != 10 {
		t.Fatalf("access units used = %d, want 10", used())
	}
	before := c.mustCall(1, "GetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default"})["Policy"]
	if err := set(11); apiCode(err) != "Rejected.LimitExceeded" {
		t.Fatalf("eleventh principal: %v", err)
	}
	if after := c.mustCall(1, "GetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default"})["Policy"]; after != before {
		t.Fatal("a refused policy replaced the old one")
	}
	if err := set(3); err != nil {
		t.Fatal(err)
	}
	if used() != 3 {
		t.Fatalf("after revoking seven, units used = %d, want 3", used())
	}
}

// Key policy conditions: kms:EncryptionContext:<key> and acs:SourceIp.
func TestKeyPolicy_ConditionsOnContextAndSourceIP(t *testing.T) {
	c := newTestCluster(t, 3)
	owner := c.creds.AccountID
	c.mustCall(0, "CreateUser", map[string]string{"UserName": "app"})
	ak := c.mustCall(1, "CreateAccessKey", map[string]string{"UserName": "app"})["AccessKey"].(map[string]any)
	app := c.clientFor(2, ak["AccessKeyId"].(string), ak["AccessKeySecret"].(string))
	key := c.createKey(0, "conditions")
	policy := fmt.Sprintf(`{"Version":"1","Statement":[
		{"Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:user/app"]},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":["*"],
		 "Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"blue"},"IpAddress":{"acs:SourceIp":["127.0.0.0/8"]}}},
		{"Effect":"Deny","Principal":{"RAM":["acs:ram::%[1]s:user/app"]},"Action":["kms:Decrypt"],"Resource":["*"],
		 "Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"red"}}}]}`, owner)
	idx := c.mustCallIndex(1, "SetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default", "Policy": policy})
	call := func(action string, p map[string]string) error {
		_, err := app.Call(ctxT(t), action, p, client.WithMinIndex(idx))
		return err
	}
	if err := call("Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk=", "EncryptionContext": `{"tenant":"blue"}`}); err != nil {
		t.Fatalf("the condition holds: %v", err)
	}
	for _, ctx := range []string{`{"tenant":"green"}`, ``} {
		if err := call("Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk=", "EncryptionContext": ctx}); apiCode(err) != "Forbidden.NoPermission" {
			t.Fatalf("context %q: %v", ctx, err)
		}
	}
	// The root may encrypt for red; the app may not decrypt it: Deny wins.
	blob := c.mustCall(0, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk=", "EncryptionContext": `{"tenant":"red"}`})["CiphertextBlob"].(string)
	if err := call("Decrypt", map[string]string{"CiphertextBlob": blob, "EncryptionContext": `{"tenant":"red"}`}); apiCode(err) != "Forbidden.NoPermission" {
		t.Fatalf("explicit Deny: %v", err)
	}
	// A source address outside the allowed range.
	other := strings.Replace(policy, "127.0.0.0/8", "10.0.0.0/8", 1)
	idx = c.mustCallIndex(1, "SetKeyPolicy", map[string]string{"KeyId": key, "PolicyName": "default", "Policy": other})
	if err := call("Encrypt", map[string]string{"KeyId": key, "Plaintext": "aGk=", "EncryptionContext": `{"tenant":"blue"}`}); apiCode(err) != "Forbidden.NoPermission" {
		t.Fatalf("from outside acs:SourceIp: %v", err)
	}
}

func (c *testCluster) mustCallIndex(i int, action string, params map[string]string) uint64 {
	c.t.Helper()
	_, resp, err := c.call(i, action, params)
	if err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
	return resp.Index
}
