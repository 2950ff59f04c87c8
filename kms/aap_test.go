package kms

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	xpkcs12 "golang.org/x/crypto/pkcs12"

	"github.com/raftkms/raftkms/fsm"
)

const testPassword = "Passw0rd-test"

var (
	keyUser   = []string{PermissionKeyUser}
	allKeys   = []string{"key/*"}
	officeIPs = []string{"10.0.0.0/8", "192.168.1.7"}
)

// withAAP creates, in the env's account, the network rule "office", the
// policy "keys" (naming it) and the AAP "app" (naming the policy).
func (e *svcEnv) withAAP(t *testing.T) {
	t.Helper()
	if _, _, err := e.svc.CreateNetworkRule(bg, e.caller, NetworkRuleInput{Name: "office", Type: NetworkTypePrivate, SourcePrivateIP: &officeIPs}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreatePolicy(bg, e.caller, PermissionPolicyInput{Name: "keys", KmsInstance: e.inst,
		Permissions: &keyUser, Resources: &allKeys, NetworkRules: &[]string{"office"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateApplicationAccessPoint(bg, e.caller, AAPInput{Name: "app", Policies: &[]string{"keys"}}); err != nil {
		t.Fatal(err)
	}
}

// otherAccount is the root of a second account.
func (e *svcEnv) otherAccount(t *testing.T) Caller {
	t.Helper()
	res, err := e.svc.CreateAccount(bg, e.caller, "other")
	if err != nil {
		t.Fatal(err)
	}
	return rootCaller(res.AccountID, res.AccessKeyID)
}

func wantField(t *testing.T, what string, err error, field Field) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Errorf("%s: err = %v, want a FieldError on %q", what, err, field)
	}
}

// Refused inputs are FieldErrors on the right field and change nothing.
func TestAAPManagement_RefusesInvalidInput(t *testing.T) {
	e := newSvcEnv(t)
	e.withAAP(t)
	long := strings.Repeat("x", MaxDescription+1)
	cases := []struct {
		name  string
		call  func() error
		field Field
	}{
		{"network rule without a name", func() error {
			_, _, err := e.svc.CreateNetworkRule(bg, e.caller, NetworkRuleInput{Type: NetworkTypePrivate})
			return err
		}, FieldNetworkRuleName},
		{"network rule with a slash in its name", func() error {
			_, _, err := e.svc.CreateNetworkRule(bg, e.caller, NetworkRuleInput{Name: "a/b", Type: NetworkTypePrivate})
			return err
		}, FieldNetworkRuleName},
		{"network rule of type Public", func() error {
			_, _, err := e.svc.CreateNetworkRule(bg, e.caller, NetworkRuleInput{Name: "r", Type: "Public"})
			return err
		}, FieldNetworkType},
		{"network rule with a long description", func() error {
			_, _, err := e.svc.CreateNetworkRule(bg, e.caller, NetworkRuleInput{Name: "r", Type: NetworkTypePrivate, Description: &long})
			return err
		}, FieldDescription},
		{"policy without an instance", func() error {
			_, _, err := e.svc.CreatePolicy(bg, e.caller, PermissionPolicyInput{Name: "p", Permissions: &keyUser, Resources: &allKeys})
			return err
		}, FieldPolicyInstance},
		{"policy without permissions", func() error {
			_, _, err := e.svc.CreatePolicy(bg, e.caller, PermissionPolicyInput{Name: "p", KmsInstance: e.inst, Resources: &allKeys})
			return err
		}, FieldPermissions},
		{"policy without resources", func() error {
			_, _, err := e.svc.CreatePolicy(bg, e.caller, PermissionPolicyInput{Name: "p", KmsInstance: e.inst, Permissions: &keyUser})
			return err
		}, FieldResources},
		{"network rule with a bad address (typed, as any face may pass it)", func() error {
			_, _, err := e.svc.CreateNetworkRule(bg, e.caller, NetworkRuleInput{Name: "r", Type: NetworkTypePrivate, SourcePrivateIP: &[]string{"not-an-ip"}})
			return err
		}, FieldSourcePrivateIP},
		{"policy with an unknown permission (typed)", func() error {
			_, _, err := e.svc.CreatePolicy(bg, e.caller, PermissionPolicyInput{Name: "p", KmsInstance: e.inst, Permissions: &[]string{"Admin"}, Resources: &allKeys})
			return err
		}, FieldPermissions},
		{"policy update with a bad resource (typed)", func() error {
			_, err := e.svc.UpdatePolicy(bg, e.caller, PermissionPolicyInput{Name: "keys", Resources: &[]string{"user/*"}})
			return err
		}, FieldResources},
		{"AAP naming a policy twice (typed)", func() error {
			_, _, err := e.svc.CreateApplicationAccessPoint(bg, e.caller, AAPInput{Name: "a2", Policies: &[]string{"keys", "keys"}})
			return err
		}, FieldAccessPointPolicies},
		{"AAP without policies", func() error {
			_, _, err := e.svc.CreateApplicationAccessPoint(bg, e.caller, AAPInput{Name: "a2"})
			return err
		}, FieldAccessPointPolicies},
		{"AAP with an empty policy list", func() error {
			_, _, err := e.svc.CreateApplicationAccessPoint(bg, e.caller, AAPInput{Name: "a2", Policies: &[]string{}})
			return err
		}, FieldAccessPointPolicies},
		{"AAP with another authentication method", func() error {
			_, _, err := e.svc.CreateApplicationAccessPoint(bg, e.caller, AAPInput{Name: "a2", AuthenticationMethod: "AccessKey", Policies: &[]string{"keys"}})
			return err
		}, FieldAuthenticationMethod},
		{"client key without a password", func() error {
			_, err := e.svc.CreateClientKey(bg, e.caller, ClientKeyInput{AAPName: "app"})
			return err
		}, FieldPassword},
		{"client key with a weak password", func() error {
			_, err := e.svc.CreateClientKey(bg, e.caller, ClientKeyInput{AAPName: "app", Password: "aaaaaaaaaa"})
			return err
		}, FieldPassword},
		{"client key with a non-ASCII password", func() error {
			_, err := e.svc.CreateClientKey(bg, e.caller, ClientKeyInput{AAPName: "app", Password: "Pässwort-123"})
			return err
		}, FieldPassword},
		{"client key that ends before it starts", func() error {
			now := e.clock.Now()
			_, err := e.svc.CreateClientKey(bg, e.caller, ClientKeyInput{AAPName: "app", Password: testPassword, NotBefore: now.Add(time.Hour), NotAfter: now.Add(time.Minute)})
			return err
		}, FieldNotAfter},
		{"client key that has already expired", func() error {
			now := e.clock.Now()
			_, err := e.svc.CreateClientKey(bg, e.caller, ClientKeyInput{AAPName: "app", Password: testPassword, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})
			return err
		}, FieldNotAfter},
		{"client key without an id", func() error {
			_, err := e.svc.GetClientKey(bg, e.caller, "")
			return err
		}, FieldClientKeyID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.unchanged(t, tc.name, func() { wantField(t, tc.name, tc.call(), tc.field) })
		})
	}
}

// The parsers of the JSON documents refuse what is not the documented
// shape, name their field, and return canonical values otherwise.
func TestAAPParsers_RefuseMalformedDocuments(t *testing.T) {
	refused := []struct {
		name  string
		parse func() error
		field Field
	}{
		{"sources not JSON", func() error { _, err := ParseSourcePrivateIPs(`10.0.0.1`); return err }, FieldSourcePrivateIP},
		{"sources an object", func() error { _, err := ParseSourcePrivateIPs(`{"a":1}`); return err }, FieldSourcePrivateIP},
		{"sources trailing data", func() error { _, err := ParseSourcePrivateIPs(`["10.0.0.1"] ["x"]`); return err }, FieldSourcePrivateIP},
		{"source not an address", func() error { _, err := ParseSourcePrivateIPs(`["10.0.0.300"]`); return err }, FieldSourcePrivateIP},
		{"source with a zone", func() error { _, err := ParseSourcePrivateIPs(`["fe80::1%eth0"]`); return err }, FieldSourcePrivateIP},
		{"source prefix too long", func() error { _, err := ParseSourcePrivateIPs(`["10.0.0.0/33"]`); return err }, FieldSourcePrivateIP},
		{"too many sources", func() error {
			_, err := ParseSourcePrivateIPs(`[` + strings.Repeat(`"10.0.0.1",`, MaxSourcesPerRule) + `"10.0.0.2"]`)
			return err
		}, FieldSourcePrivateIP},
		{"duplicate source", func() error { _, err := ParseSourcePrivateIPs(`["10.0.0.1","10.0.0.1"]`); return err }, FieldSourcePrivateIP},
		{"unknown permission", func() error { _, err := ParsePermissions(`["RbacPermission/Template/Admin"]`); return err }, FieldPermissions},
		{"no permission", func() error { _, err := ParsePermissions(`[]`); return err }, FieldPermissions},
		{"resource of another kind", func() error { _, err := ParseResources(`["user/*"]`); return err }, FieldResources},
		{"bare resource kind", func() error { _, err := ParseResources(`["key/"]`); return err }, FieldResources},
		{"resource with a space", func() error { _, err := ParseResources(`["key/a b"]`); return err }, FieldResources},
		{"resource with too many wildcards", func() error {
			_, err := ParseResources(`["key/` + strings.Repeat("*?", MaxPatternWildcards) + `"]`)
			return err
		}, FieldResources},
		{"resource too long", func() error {
			_, err := ParseResources(`["key/` + strings.Repeat("a", MaxPatternLength) + `"]`)
			return err
		}, FieldResources},
		{"no resource", func() error { _, err := ParseResources(`[]`); return err }, FieldResources},
		{"access rules a list", func() error { _, err := ParseAccessControlRules(`["office"]`); return err }, FieldAccessControlRules},
		{"access rules with another key", func() error { _, err := ParseAccessControlRules(`{"Rules":["office"]}`); return err }, FieldAccessControlRules},
		{"access rule with a bad name", func() error { _, err := ParseAccessControlRules(`{"NetworkRules":["a b"]}`); return err }, FieldAccessControlRules},
		{"policy names too many", func() error {
			_, err := ParseNameList(FieldAccessPointPolicies, `["a","b","c","d"]`, fsm.MaxPoliciesPerAAP)
			return err
		}, FieldAccessPointPolicies},
		{"huge document", func() error {
			_, err := ParseResources(`["key/` + strings.Repeat("a", maxListDocument) + `"]`)
			return err
		}, FieldResources},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) { wantField(t, tc.name, tc.parse(), tc.field) })
	}

	got, err := ParseSourcePrivateIPs(`["192.168.1.77/24", "10.0.0.1", "2001:db8::1/64"]`)
	if err != nil || !reflect.DeepEqual(got, []string{"192.168.1.0/24", "10.0.0.1", "2001:db8::/64"}) {
		t.Fatalf("canonical sources = %v, %v", got, err)
	}
	rules, err := ParseAccessControlRules(`{"NetworkRules":["office","lab"]}`)
	if err != nil || !reflect.DeepEqual(rules, []string{"office", "lab"}) {
		t.Fatalf("rules = %v, %v", rules, err)
	}
	if rules, err := ParseAccessControlRules(""); err != nil || len(rules) != 0 {
		t.Fatalf("empty rules = %v, %v", rules, err)
	}
}

// Another account sees none of these objects and can use none of them: a
// miss and another account's object answer the same not-found.
func TestAAPManagement_AnotherAccountCannotSeeOrUse(t *testing.T) {
	e := newSvcEnv(t)
	e.withAAP(t)
	ck, err := e.svc.CreateClientKey(bg, e.caller, ClientKeyInput{AAPName: "app", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	other := e.otherAccount(t)
	e.unchanged(t, "another account's attempts", func() {
		_, err := e.svc.DescribeNetworkRule(bg, other, "office")
		wantErr(t, "DescribeNetworkRule", err, fsm.ErrNetworkRuleNotFound)
		_, err = e.svc.DescribePolicy(bg, other, "keys")
		wantErr(t, "DescribePolicy", err, fsm.ErrPermissionPolicyNotFound)
		_, err = e.svc.DescribeApplicationAccessPoint(bg, other, "app")
		wantErr(t, "DescribeApplicationAccessPoint", err, fsm.ErrAAPNotFound)
		_, err = e.svc.GetClientKey(bg, other, ck.Key.ID)
		wantErr(t, "GetClientKey", err, fsm.ErrClientKeyNotFound)
		_, err = e.svc.DeleteClientKey(bg, other, ck.Key.ID)
		wantErr(t, "DeleteClientKey", err, fsm.ErrClientKeyNotFound)
		_, err = e.svc.CreateClientKey(bg, other, ClientKeyInput{AAPName: "app", Password: testPassword})
		wantErr(t, "CreateClientKey on another account's AAP", err, fsm.ErrAAPNotFound)
		_, _, err = e.svc.CreatePolicy(bg, other, PermissionPolicyInput{Name: "p", KmsInstance: e.inst, Permissions: &keyUser, Resources: &allKeys})
		wantErr(t, "CreatePolicy on another account's instance", err, fsm.ErrInstanceNotFound)
		_, err = e.svc.UpdateApplicationAccessPoint(bg, other, AAPInput{Name: "app", Policies: &[]string{"keys"}})
		wantErr(t, "UpdateApplicationAccessPoint", err, fsm.ErrAAPNotFound)
		_, err = e.svc.DeleteNetworkRule(bg, other, "office")
		wantErr(t, "DeleteNetworkRule", err, fsm.ErrNetworkRuleNotFound)
		if l, err := e.svc.ListApplicationAccessPoints(bg, other, Page{}); err != nil || l.Total != 0 {
			t.Errorf("ListApplicationAccessPoints: %d, %v", l.Total, err)
		}
		if l, err := e.svc.ListClientKeys(bg, other, ""); err != nil || len(l) != 0 {
			t.Errorf("ListClientKeys: %d, %v", len(l), err)
		}
	})
	// The same names are free in the other account.
	if _, _, err := e.svc.CreateNetworkRule(bg, other, NetworkRuleInput{Name: "office", Type: NetworkTypePrivate}); err != nil {
		t.Fatalf("the same name in another account: %v", err)
	}
}

// A RAM user needs a policy that allows the action: none refuses all;
// read-only allows List/Describe and refuses the writes.
func TestAAPManagement_RAMUserNeedsPermission(t *testing.T) {
	e := newSvcEnv(t)
	e.withAAP(t)
	nobody := e.mkUser(t, "nobody")
	reader := e.mkUser(t, "reader", PolicyReadOnlyAccess)
	e.unchanged(t, "refused users", func() {
		_, _, err := e.svc.CreateNetworkRule(bg, nobody, NetworkRuleInput{Name: "r", Type: NetworkTypePrivate})
		wantErr(t, "CreateNetworkRule without a policy", err, ErrNoPermission)
		_, err = e.svc.DescribePolicy(bg, nobody, "keys")
		wantErr(t, "DescribePolicy without a policy", err, ErrNoPermission)
		_, err = e.svc.CreateClientKey(bg, nobody, ClientKeyInput{AAPName: "app", Password: testPassword})
		wantErr(t, "CreateClientKey without a policy", err, ErrNoPermission)
		_, err = e.svc.CreateClientKey(bg, reader, ClientKeyInput{AAPName: "app", Password: testPassword})
		wantErr(t, "CreateClientKey read-only", err, ErrNoPermission)
		_, err = e.svc.DeleteApplicationAccessPoint(bg, reader, "app")
		wantErr(t, "DeleteApplicationAccessPoint read-only", err, ErrNoPermission)
	})
	if _, err := e.svc.DescribeApplicationAccessPoint(bg, reader, "app"); err != nil {
		t.Errorf("read-only DescribeApplicationAccessPoint: %v", err)
	}
	if l, err := e.svc.ListPolicies(bg, reader, Page{}); err != nil || l.Total != 1 {
		t.Errorf("read-only ListPolicies: %d, %v", l.Total, err)
	}
	full := e.mkUser(t, "admin", PolicyFullAccess)
	if _, err := e.svc.CreateClientKey(bg, full, ClientKeyInput{AAPName: "app", Password: testPassword}); err != nil {
		t.Errorf("full access CreateClientKey: %v", err)
	}
}

// The PKCS#12 opens with golang.org/x/crypto/pkcs12 (what the instance SDK
// uses) and the password, certificate first; its key matches the stored
// public key; the certificate names the ClientKeyId; the private key is in
// no snapshot.
func TestCreateClientKey_PKCS12ForTheInstanceSDK(t *testing.T) {
	e := newSvcEnv(t)
	e.withAAP(t)
	notAfter := e.clock.Now().Add(48 * time.Hour)
	ck, err := e.svc.CreateClientKey(bg, e.caller, ClientKeyInput{AAPName: "app", Password: testPassword, NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ck.Key.ID, ClientKeyPrefix) || len(ck.Key.ID) != len(ClientKeyPrefix)+36 {
		t.Errorf("ClientKeyId %q is not KAAP.<uuid>", ck.Key.ID)
	}
	if ck.Key.NotAfter != notAfter.UnixMilli() || ck.Key.NotBefore != e.clock.Now().UnixMilli() {
		t.Errorf("validity %d..%d", ck.Key.NotBefore, ck.Key.NotAfter)
	}
	if _, err := xpkcs12.ToPEM(ck.PrivateKeyData, "wrong-Passw0rd"); err == nil {
		t.Error("the PKCS#12 opened with the wrong password")
	}
	blocks, err := xpkcs12.ToPEM(ck.PrivateKeyData, testPassword)
	if err != nil {
		t.Fatalf("pkcs12.ToPEM: %v", err)
	}
	if len(blocks) != 2 || blocks[0].Type != "CERTIFICATE" || blocks[1].Type != "PRIVATE KEY" {
		types := []string{}
		for _, b := range blocks {
			types = append(types, b.Type)
		}
		t.Fatalf("PEM blocks %v, want CERTIFICATE then PRIVATE KEY", types)
	}
	cert, err := x509.ParseCertificate(blocks[0].Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != ck.Key.ID {
		t.Errorf("certificate subject %q, want the ClientKeyId", cert.Subject.CommonName)
	}
	if !cert.NotAfter.Equal(notAfter.Truncate(time.Second)) {
		t.Errorf("certificate NotAfter %v, want %v", cert.NotAfter, notAfter)
	}
	priv, err := x509.ParsePKCS1PrivateKey(blocks[1].Bytes)
	if err != nil {
		k, err8 := x509.ParsePKCS8PrivateKey(blocks[1].Bytes)
		if err8 != nil {
			t.Fatalf("private key: %v / %v", err, err8)
		}
		priv = k.(*rsa.PrivateKey)
	}
	if priv.N.BitLen() != 2048 {
		t.Errorf("RSA key of %d bits", priv.N.BitLen())
	}
	stored, ok := e.fsm.ClientKey(ck.Key.ID)
	if !ok {
		t.Fatal("client key not in the catalogue")
	}
	pub, err := x509.ParsePKIXPublicKey(stored.PublicKey)
	if err != nil || !priv.PublicKey.Equal(pub) {
		t.Fatalf("the stored public key does not match the PKCS#12's key (%v)", err)
	}
	if !bytes.Equal(stored.Certificate, cert.Raw) {
		t.Error("the stored certificate is not the PKCS#12's")
	}
	var snap bytes.Buffer
	if _, err := e.fsm.WriteSnapshotTo(&snap); err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string][]byte{
		"PKCS#1 key": x509.MarshalPKCS1PrivateKey(priv), "prime": priv.Primes[0].Bytes(), "exponent": priv.D.Bytes(),
		"PKCS#12": ck.PrivateKeyData,
	} {
		if bytes.Contains(snap.Bytes(), secret) {
			t.Errorf("the snapshot holds the client key's %s", name)
		}
	}
}

// ClientKey resolves what the instance face needs from the local
// catalogue, and a deleted key (or a changed rule) is seen at once.
func TestClientKey_ResolvesForTheInstanceFace(t *testing.T) {
	e := newSvcEnv(t)
	e.withAAP(t)
	ck, err := e.svc.CreateClientKey(bg, e.caller, ClientKeyInput{AAPName: "app", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.ClientKey(bg, ck.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AAPName != "app" || got.AccountID != e.caller.AccountID || got.PublicKey == nil || len(got.Policies) != 1 {
		t.Fatalf("resolved %+v", got)
	}
	p := got.Policies[0]
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
	if p.KmsInstance != e.inst || !reflect.DeepEqual(p.Permissions, keyUser) || !reflect.DeepEqual(p.Resources, allKeys) ||
		!p.Restricted || !reflect.DeepEqual(p.Sources, want) {
		t.Fatalf("policy %+v", p)
	}
	if _, err := e.svc.UpdateNetworkRule(bg, e.caller, NetworkRuleInput{Name: "office", SourcePrivateIP: &[]string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.ClientKey(bg, ck.Key.ID); !reflect.DeepEqual(got.Policies[0].Sources, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}) {
		t.Fatalf("sources after the rule changed: %v", got.Policies[0].Sources)
	}
	_, err = e.svc.DeleteApplicationAccessPoint(bg, e.caller, "app")
	wantErr(t, "deleting an AAP with a client key", err, fsm.ErrResourceInUse)
	if _, err := e.svc.DeleteClientKey(bg, e.caller, ck.Key.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ClientKey(bg, ck.Key.ID)
	wantErr(t, "a deleted client key", err, ErrClientKeyUnknown)
	_, err = e.svc.ClientKey(bg, "KAAP.never")
	wantErr(t, "an unknown client key", err, ErrClientKeyUnknown)
	for _, del := range []func() error{
		func() error { _, err := e.svc.DeleteApplicationAccessPoint(bg, e.caller, "app"); return err },
		func() error { _, err := e.svc.DeletePolicy(bg, e.caller, "keys"); return err },
		func() error { _, err := e.svc.DeleteNetworkRule(bg, e.caller, "office"); return err },
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzAAPDocuments feeds the JSON parsers arbitrary text: they never panic,
// and what they accept keeps their bounds and canonical forms.
func FuzzAAPDocuments(f *testing.F) {
	for _, s := range []string{`["10.0.0.1","192.168.0.0/16"]`, `["key/*","alias/a","secret/s?"]`,
		`["RbacPermission/Template/CryptoServiceKeyUser"]`, `{"NetworkRules":["office"]}`, `[]`, `null`, `{"NetworkRules":null}`,
		`["::1/128","fe80::1%eth0"]`, `[1,2]`, `"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if l, err := ParseSourcePrivateIPs(text); err == nil {
			if len(l) > MaxSourcesPerRule {
				t.Fatalf("%d sources", len(l))
			}
			for _, s := range l {
				if c, err := parseSource(s); err != nil || c != s {
					t.Fatalf("%q is not canonical (%q, %v)", s, c, err)
				}
			}
		}
		if l, err := ParseResources(text); err == nil {
			if len(l) == 0 || len(l) > MaxResourcesPerPolicy {
				t.Fatalf("%d resources", len(l))
			}
			for _, r := range l {
				if checkResource(r) != nil {
					t.Fatalf("accepted %q", r)
				}
			}
		}
		if l, err := ParsePermissions(text); err == nil && (len(l) == 0 || len(l) > 2) {
			t.Fatalf("%d permissions", len(l))
		}
		if l, err := ParseAccessControlRules(text); err == nil {
			if len(l) > MaxNetworkRulesPerPolicy {
				t.Fatalf("%d rules", len(l))
			}
			if _, err := json.Marshal(l); err != nil {
				t.Fatal(err)
			}
		}
		if l, err := ParseNameList(FieldAccessPointPolicies, text, fsm.MaxPoliciesPerAAP); err == nil && len(l) > fsm.MaxPoliciesPerAAP {
			t.Fatalf("%d names", len(l))
		}
	})
}
