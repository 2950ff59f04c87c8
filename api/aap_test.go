package api_test

import (
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	xpkcs12 "golang.org/x/crypto/pkcs12"
)

// Refusals of the management actions, through the official SDK: the
// service's codes and statuses, and nothing changes.
func TestSDK_AAPRefusals(t *testing.T) {
	tn := startNode(t)
	c := newSDKClient(t, tn, "")
	if _, err := c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: tea.String("office"), Type: tea.String("Private"),
		SourcePrivateIp: tea.String(`["10.0.0.0/8"]`)}); err != nil {
		t.Fatal(err)
	}
	keyUser := `["RbacPermission/Template/CryptoServiceKeyUser"]`
	if _, err := c.CreatePolicy(&kmssdk.CreatePolicyRequest{Name: tea.String("keys"), KmsInstance: tea.String(tn.InstanceID),
		Permissions: tea.String(keyUser), Resources: tea.String(`["key/*"]`), AccessControlRules: tea.String(`{"NetworkRules":["office"]}`)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		call   func() error
		status int
		code   string
	}{
		{"network rule with a bad address", func() error {
			_, err := c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: tea.String("r"), Type: tea.String("Private"), SourcePrivateIp: tea.String(`["10.0.0.300"]`)})
			return err
		}, 400, "InvalidParameter"},
		{"network rule without a type", func() error {
			_, err := c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: tea.String("r")})
			return err
		}, 400, "MissingParameter"},
		{"network rule twice", func() error {
			_, err := c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: tea.String("office"), Type: tea.String("Private")})
			return err
		}, 409, "Rejected.ResourceExist"},
		{"deleting a rule a policy names", func() error {
			_, err := c.DeleteNetworkRule(&kmssdk.DeleteNetworkRuleRequest{Name: tea.String("office")})
			return err
		}, 409, "Rejected.ResourceInUse"},
		{"policy with an unknown permission", func() error {
			_, err := c.CreatePolicy(&kmssdk.CreatePolicyRequest{Name: tea.String("p"), KmsInstance: tea.String(tn.InstanceID),
				Permissions: tea.String(`["Admin"]`), Resources: tea.String(`["key/*"]`)})
			return err
		}, 400, "InvalidParameter"},
		{"policy naming a missing rule", func() error {
			_, err := c.CreatePolicy(&kmssdk.CreatePolicyRequest{Name: tea.String("p"), KmsInstance: tea.String(tn.InstanceID),
				Permissions: tea.String(keyUser), Resources: tea.String(`["key/*"]`), AccessControlRules: tea.String(`{"NetworkRules":["lab"]}`)})
			return err
		}, 404, "Forbidden.ResourceNotFound"},
		{"policy on a missing instance", func() error {
			_, err := c.CreatePolicy(&kmssdk.CreatePolicyRequest{Name: tea.String("p"), KmsInstance: tea.String("kst-nope"),
				Permissions: tea.String(keyUser), Resources: tea.String(`["key/*"]`)})
			return err
		}, 404, "Forbidden.ResourceNotFound"},
		{"AAP naming a missing policy", func() error {
			_, err := c.CreateApplicationAccessPoint(&kmssdk.CreateApplicationAccessPointRequest{Name: tea.String("app"), Policies: tea.String(`["nope"]`)})
			return err
		}, 404, "Forbidden.ResourceNotFound"},
		{"AAP with policies that are not a list", func() error {
			_, err := c.CreateApplicationAccessPoint(&kmssdk.CreateApplicationAccessPointRequest{Name: tea.String("app"), Policies: tea.String(`keys`)})
			return err
		}, 400, "InvalidParameter"},
		{"client key of a missing AAP", func() error {
			_, err := c.CreateClientKey(&kmssdk.CreateClientKeyRequest{AapName: tea.String("nope"), Password: tea.String("Passw0rd-x")})
			return err
		}, 404, "Forbidden.ResourceNotFound"},
		{"client key with a bad NotAfter", func() error {
			_, err := c.CreateClientKey(&kmssdk.CreateClientKeyRequest{AapName: tea.String("nope"), Password: tea.String("Passw0rd-x"), NotAfter: tea.String("tomorrow")})
			return err
		}, 400, "InvalidParameter"},
		{"describing a missing client key", func() error {
			_, err := c.GetClientKey(&kmssdk.GetClientKeyRequest{ClientKeyId: tea.String("KAAP.nope")})
			return err
		}, 404, "Forbidden.ResourceNotFound"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tn.hash()
			sdkErr(t, tc.call(), tc.status, tc.code)
			if tn.hash() != before {
				t.Fatal("a refused call changed the catalogue")
			}
		})
	}
}

// Every management action through the official SDK: create, describe,
// list, update and delete each object, answers parsed into the SDK's own
// structs with every field set.
func TestSDK_AAPManagement(t *testing.T) {
	tn := startNode(t)
	c := newSDKClient(t, tn, "")
	step := func(action string, err error, body any, optional ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		requireSet(t, body, optional...)
	}

	nr, err := c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: tea.String("office"), Type: tea.String("Private"),
		SourcePrivateIp: tea.String(`["192.168.1.77/24","10.0.0.1"]`), Description: tea.String("the office")})
	step("CreateNetworkRule", err, nr.Body)
	wantEq(t, "CreateNetworkRule SourcePrivateIp", tea.StringValue(nr.Body.SourcePrivateIp), `["192.168.1.0/24","10.0.0.1"]`)
	wantEq(t, "CreateNetworkRule Arn", tea.StringValue(nr.Body.Arn), "acs:kms:local:"+tn.AccountID+":network/office")
	dn, err := c.DescribeNetworkRule(&kmssdk.DescribeNetworkRuleRequest{Name: tea.String("office")})
	step("DescribeNetworkRule", err, dn.Body)
	wantEq(t, "DescribeNetworkRule Type", tea.StringValue(dn.Body.Type), "Private")
	un, err := c.UpdateNetworkRule(&kmssdk.UpdateNetworkRuleRequest{Name: tea.String("office"), SourcePrivateIp: tea.String(`["127.0.0.1"]`)})
	step("UpdateNetworkRule", err, un.Body)
	dn, _ = c.DescribeNetworkRule(&kmssdk.DescribeNetworkRuleRequest{Name: tea.String("office")})
	wantEq(t, "SourcePrivateIp after update", tea.StringValue(dn.Body.SourcePrivateIp), `["127.0.0.1"]`)
	wantEq(t, "Description after update", tea.StringValue(dn.Body.Description), "the office")
	ln, err := c.ListNetworkRules(&kmssdk.ListNetworkRulesRequest{PageSize: tea.Int32(10)})
	step("ListNetworkRules", err, ln.Body)
	wantEq(t, "ListNetworkRules TotalCount", tea.Int32Value(ln.Body.TotalCount), int32(1))

	cp, err := c.CreatePolicy(&kmssdk.CreatePolicyRequest{Name: tea.String("keys"), KmsInstance: tea.String(tn.InstanceID),
		Permissions: tea.String(`["RbacPermission/Template/CryptoServiceKeyUser"]`), Resources: tea.String(`["key/*","alias/app"]`),
		AccessControlRules: tea.String(`{"NetworkRules":["office"]}`), Description: tea.String("")})
	step("CreatePolicy", err, cp.Body)
	wantEq(t, "CreatePolicy Resources", tea.StringValue(cp.Body.Resources), `["key/*","alias/app"]`)
	wantEq(t, "CreatePolicy AccessControlRules", tea.StringValue(cp.Body.AccessControlRules), `{"NetworkRules":["office"]}`)
	up, err := c.UpdatePolicy(&kmssdk.UpdatePolicyRequest{Name: tea.String("keys"),
		Permissions: tea.String(`["RbacPermission/Template/CryptoServiceKeyUser","RbacPermission/Template/CryptoServiceSecretUser"]`)})
	step("UpdatePolicy", err, up.Body)
	dp, err := c.DescribePolicy(&kmssdk.DescribePolicyRequest{Name: tea.String("keys")})
	step("DescribePolicy", err, dp.Body)
	wantEq(t, "DescribePolicy Permissions", strings.Join(tea.StringSliceValue(dp.Body.Permissions), ","),
		"RbacPermission/Template/CryptoServiceKeyUser,RbacPermission/Template/CryptoServiceSecretUser")
	wantEq(t, "DescribePolicy Resources", strings.Join(tea.StringSliceValue(dp.Body.Resources), ","), "key/*,alias/app")
	wantEq(t, "DescribePolicy KmsInstance", tea.StringValue(dp.Body.KmsInstance), tn.InstanceID)
	lp, err := c.ListPolicies(&kmssdk.ListPoliciesRequest{})
	step("ListPolicies", err, lp.Body)
	wantEq(t, "ListPolicies name", tea.StringValue(lp.Body.Policies.Policy[0].Name), "keys")

	ca, err := c.CreateApplicationAccessPoint(&kmssdk.CreateApplicationAccessPointRequest{Name: tea.String("app"),
		AuthenticationMethod: tea.String("ClientKey"), Policies: tea.String(`["keys"]`), Description: tea.String("an app")})
	step("CreateApplicationAccessPoint", err, ca.Body)
	wantEq(t, "CreateApplicationAccessPoint Policies", tea.StringValue(ca.Body.Policies), `["keys"]`)
	ua, err := c.UpdateApplicationAccessPoint(&kmssdk.UpdateApplicationAccessPointRequest{Name: tea.String("app"), Description: tea.String("the app")})
	step("UpdateApplicationAccessPoint", err, ua.Body)
	da, err := c.DescribeApplicationAccessPoint(&kmssdk.DescribeApplicationAccessPointRequest{Name: tea.String("app")})
	step("DescribeApplicationAccessPoint", err, da.Body)
	wantEq(t, "Description after update", tea.StringValue(da.Body.Description), "the app")
	wantEq(t, "AuthenticationMethod", tea.StringValue(da.Body.AuthenticationMethod), "ClientKey")
	la, err := c.ListApplicationAccessPoints(&kmssdk.ListApplicationAccessPointsRequest{PageNumber: tea.Int32(1)})
	step("ListApplicationAccessPoints", err, la.Body)
	wantEq(t, "ListApplicationAccessPoints TotalCount", tea.Int32Value(la.Body.TotalCount), int32(1))

	ck, err := c.CreateClientKey(&kmssdk.CreateClientKeyRequest{AapName: tea.String("app"), Password: tea.String("Passw0rd-sdk"),
		NotAfter: tea.String("2099-01-01T00:00:00Z")})
	step("CreateClientKey", err, ck.Body)
	id := tea.StringValue(ck.Body.ClientKeyId)
	wantEq(t, "KeyAlgorithm", tea.StringValue(ck.Body.KeyAlgorithm), "RSA_2048")
	wantEq(t, "NotAfter", tea.StringValue(ck.Body.NotAfter), "2099-01-01T00:00:00Z")
	pfx, err := base64.StdEncoding.DecodeString(tea.StringValue(ck.Body.PrivateKeyData))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := xpkcs12.ToPEM(pfx, "Passw0rd-sdk")
	if err != nil || len(blocks) != 2 || blocks[0].Type != "CERTIFICATE" {
		t.Fatalf("PrivateKeyData: %d blocks, %v", len(blocks), err)
	}
	gk, err := c.GetClientKey(&kmssdk.GetClientKeyRequest{ClientKeyId: tea.String(id)})
	step("GetClientKey", err, gk.Body)
	wantEq(t, "GetClientKey AapName", tea.StringValue(gk.Body.AapName), "app")
	cert, err := x509.ParseCertificate(blocks[0].Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := base64.StdEncoding.DecodeString(tea.StringValue(gk.Body.PublicKeyData))
	if want, _ := x509.MarshalPKIXPublicKey(cert.PublicKey); string(pub) != string(want) {
		t.Error("PublicKeyData is not the certificate's key")
	}
	lc, err := c.ListClientKeys(&kmssdk.ListClientKeysRequest{AapName: tea.String("app")})
	step("ListClientKeys", err, lc.Body)
	wantEq(t, "ListClientKeys id", tea.StringValue(lc.Body.ClientKeys[0].ClientKeyId), id)

	_, err = c.DeleteApplicationAccessPoint(&kmssdk.DeleteApplicationAccessPointRequest{Name: tea.String("app")})
	sdkErr(t, err, 409, "Rejected.ResourceInUse")
	dc, err := c.DeleteClientKey(&kmssdk.DeleteClientKeyRequest{ClientKeyId: tea.String(id)})
	step("DeleteClientKey", err, dc.Body)
	_, err = c.GetClientKey(&kmssdk.GetClientKeyRequest{ClientKeyId: tea.String(id)})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")
	daap, err := c.DeleteApplicationAccessPoint(&kmssdk.DeleteApplicationAccessPointRequest{Name: tea.String("app")})
	step("DeleteApplicationAccessPoint", err, daap.Body)
	dpol, err := c.DeletePolicy(&kmssdk.DeletePolicyRequest{Name: tea.String("keys")})
	step("DeletePolicy", err, dpol.Body)
	drule, err := c.DeleteNetworkRule(&kmssdk.DeleteNetworkRuleRequest{Name: tea.String("office")})
	step("DeleteNetworkRule", err, drule.Body)
	_, err = c.DescribeNetworkRule(&kmssdk.DescribeNetworkRuleRequest{Name: tea.String("office")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")
}
