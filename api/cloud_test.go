package api_test

import (
	"encoding/json"
	"testing"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	dkms "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/sdk"

	"github.com/raftkms/raftkms/internal/node"
)

// The cloud-shaped actions through the official SDK: regions, the
// account's status, and a KMS instance bound to networks (network rules)
// and zones — with the binding enforced on the instance's keys and
// secrets.

func TestSDK_RegionsAndAccountStatus(t *testing.T) {
	tn := startNodeWith(t, func(c *node.Config) { c.Region = "eu-lab"; c.Zone = "zone-a" })
	c := newSDKClient(t, tn, "")

	r, err := c.DescribeRegions()
	if err != nil {
		t.Fatalf("DescribeRegions: %v", err)
	}
	requireSet(t, r.Body)
	if got := r.Body.Regions.Region; len(got) != 1 || tea.StringValue(got[0].RegionId) != "eu-lab" {
		t.Fatalf("DescribeRegions = %v, want the node's region eu-lab", r.Body)
	}
	var raw struct {
		Regions struct {
			Region []struct {
				RegionId, RegionEndpoint string
				Endpoints                struct{ Endpoint []string }
			}
		}
	}
	tn.must(t, "DescribeRegions", nil, &raw)
	if reg := raw.Regions.Region[0]; reg.RegionEndpoint != tn.HTTPAddr() || len(reg.Endpoints.Endpoint) != 1 {
		t.Fatalf("DescribeRegions endpoints = %+v, want %s", reg, tn.HTTPAddr())
	}

	st, err := c.DescribeAccountKmsStatus()
	if err != nil || tea.StringValue(st.Body.AccountStatus) != "Enabled" {
		t.Fatalf("DescribeAccountKmsStatus = %v, %v; want Enabled", st, err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if _, err := c.OpenKmsService(); err != nil {
			t.Fatalf("OpenKmsService #%d: %v", i+1, err)
		}
	}
	if st, _ := c.DescribeAccountKmsStatus(); tea.StringValue(st.Body.AccountStatus) != "Enabled" {
		t.Fatal("not Enabled after OpenKmsService")
	}
	// The batch tag actions' RegionId names a region of the cluster.
	_, err = c.ListTagResources(&kmssdk.ListTagResourcesRequest{ResourceType: tea.String("key"), RegionId: tea.String("cn-hangzhou")})
	sdkErr(t, err, 400, "InvalidParameter")
}

func TestSDK_InstanceNetworkBinding(t *testing.T) {
	tn := startNodeWith(t, func(c *node.Config) { c.Zone = "zone-a" })
	c := newSDKClient(t, tn, "")
	rule := func(name, ips string) {
		t.Helper()
		if _, err := c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: tea.String(name), Type: tea.String("Private"), SourcePrivateIp: tea.String(ips)}); err != nil {
			t.Fatalf("CreateNetworkRule %s: %v", name, err)
		}
	}
	getInstance := func() *kmssdk.GetKmsInstanceResponseBodyKmsInstance {
		t.Helper()
		r, err := c.GetKmsInstance(&kmssdk.GetKmsInstanceRequest{KmsInstanceId: tea.String(tn.InstanceID)})
		if err != nil {
			t.Fatalf("GetKmsInstance: %v", err)
		}
		return r.Body.KmsInstance
	}
	keyID := tn.createKey(t, "bound")
	encrypt := func() error {
		_, err := c.Encrypt(&kmssdk.EncryptRequest{KeyId: tea.String(keyID), Plaintext: tea.String("aGk=")})
		return err
	}
	if _, err := c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: tea.String("db"), SecretData: tea.String("v"), VersionId: tea.String("v1"),
		EncryptionKeyId: tea.String(keyID), DKMSInstanceId: tea.String(tn.InstanceID)}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	getSecret := func() error {
		_, err := c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db")})
		return err
	}

	// Unbound: every field of the model, and requests from anywhere.
	in := getInstance()
	requireSet(t, in, "BindVpc")
	if tea.StringValue(in.VpcId) != "" || tea.Int64Value(in.VpcNum) != 0 || tea.StringValue(in.SecretNum) != "1" {
		t.Fatalf("unbound instance: VpcId %q VpcNum %d SecretNum %q", tea.StringValue(in.VpcId), tea.Int64Value(in.VpcNum), tea.StringValue(in.SecretNum))
	}
	if err := encrypt(); err != nil {
		t.Fatalf("Encrypt, unbound: %v", err)
	}

	// The attack first: bind the instance to a network this client (on
	// 127.0.0.1) is not in; its keys and secrets refuse it.
	rule("far", `["10.0.0.0/8","172.16.0.0/12"]`)
	connect := func(vpc, vsw, zones string) error {
		_, err := c.ConnectKmsInstance(&kmssdk.ConnectKmsInstanceRequest{KmsInstanceId: tea.String(tn.InstanceID), KMProvider: tea.String("Aliyun"),
			VpcId: tea.String(vpc), VSwitchIds: tea.String(vsw), ZoneIds: tea.String(zones)})
		return err
	}
	sdkErr(t, connect("far", "192.168.0.0/16", "zone-a"), 400, "InvalidParameter") // not a block of the rule
	sdkErr(t, connect("far", "10.0.0.0/8", "zone-z"), 400, "InvalidParameter")     // not a zone of the cluster
	sdkErr(t, connect("nowhere", "", "zone-a"), 404, "Forbidden.ResourceNotFound")
	if err := connect("far", "10.0.0.0/8", "zone-a"); err != nil {
		t.Fatalf("ConnectKmsInstance: %v", err)
	}
	sdkErr(t, encrypt(), 403, "Forbidden.NoPermission")
	sdkErr(t, getSecret(), 403, "Forbidden.NoPermission")
	_, err := c.CreateKey(&kmssdk.CreateKeyRequest{DKMSInstanceId: tea.String(tn.InstanceID)})
	sdkErr(t, err, 403, "Forbidden.NoPermission")
	_, err = c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: tea.String("db2"), SecretData: tea.String("v"), VersionId: tea.String("v1"),
		DKMSInstanceId: tea.String(tn.InstanceID)})
	sdkErr(t, err, 403, "Forbidden.NoPermission")
	in = getInstance()
	if tea.StringValue(in.VpcId) != "far" || tea.StringValue(in.VswitchIds) != "10.0.0.0/8" || tea.StringValue(in.ZoneIds) != "zone-a" || tea.Int64Value(in.VpcNum) != 1 {
		t.Fatalf("connected instance: %v", in)
	}
	// Managing the instance is not bound: the owner can fix the binding.
	rule("loop", `["127.0.0.1"]`)
	bind := func(vpcs string) error {
		_, err := c.UpdateKmsInstanceBindVpc(&kmssdk.UpdateKmsInstanceBindVpcRequest{KmsInstanceId: tea.String(tn.InstanceID), BindVpcs: tea.String(vpcs)})
		return err
	}
	sdkErr(t, bind(`[{"VpcId":"loop","VpcOwnerId":"999"}]`), 400, "InvalidParameter")
	sdkErr(t, bind(`{"VpcId":"loop"}`), 400, "InvalidParameter")
	if err := bind(`[{"VpcId":"loop","VSwitchId":"127.0.0.1","RegionId":"local"}]`); err != nil {
		t.Fatalf("UpdateKmsInstanceBindVpc: %v", err)
	}
	if err := encrypt(); err != nil {
		t.Fatalf("Encrypt from a bound network: %v", err)
	}
	if err := getSecret(); err != nil {
		t.Fatalf("GetSecretValue from a bound network: %v", err)
	}
	in = getInstance()
	requireSet(t, in)
	if tea.Int64Value(in.VpcNum) != 2 || len(in.BindVpcs.BindVpc) != 2 || tea.StringValue(in.BindVpcs.BindVpc[1].VpcId) != "loop" ||
		tea.StringValue(in.BindVpcs.BindVpc[1].VpcOwnerId) != tn.AccountID {
		b, _ := json.Marshal(in)
		t.Fatalf("bound instance: %s", b)
	}
	// A bound rule is not deleted from under the instance.
	_, err = c.DeleteNetworkRule(&kmssdk.DeleteNetworkRuleRequest{Name: tea.String("loop")})
	sdkErr(t, err, 409, "Rejected.ResourceInUse")
	// Unbinding it closes the door again.
	if err := bind(`[]`); err != nil {
		t.Fatalf("UpdateKmsInstanceBindVpc []: %v", err)
	}
	sdkErr(t, encrypt(), 403, "Forbidden.NoPermission")
	// The binding names the rule: changing the rule moves the boundary.
	tn.must(t, "UpdateNetworkRule", map[string]string{"Name": "far", "SourcePrivateIp": `["10.0.0.0/8","127.0.0.0/8"]`}, nil)
	if err := encrypt(); err != nil {
		t.Fatalf("Encrypt after the bound rule took in 127.0.0.0/8: %v", err)
	}
}

// The instance endpoint (the reference's KMS Instance SDK, client keys)
// obeys the same binding: a bound instance refuses a request from an
// address outside its networks even when the client key's policy allows it.
func TestInstanceEndpoint_RefusesASourceOutsideTheBoundNetworks(t *testing.T) {
	tn := startNodeWith(t, func(c *node.Config) { c.InstanceAddr = "127.0.0.1:0" })
	key := tn.createKey(t, "secrets")
	tn.must(t, "CreateSecret", map[string]string{"SecretName": "db", "SecretData": "s3cret", "VersionId": "v1",
		"EncryptionKeyId": key, "DKMSInstanceId": tn.InstanceID}, nil)
	reader := tn.instanceClient(t, "reader", "RbacPermission/Template/CryptoServiceSecretUser", []string{"secret/db"})
	read := func() error {
		_, err := reader.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("db")})
		return err
	}
	if err := read(); err != nil {
		t.Fatalf("GetSecretValue, unbound: %v", err)
	}
	tn.must(t, "CreateNetworkRule", map[string]string{"Name": "far", "Type": "Private", "SourcePrivateIp": `["10.0.0.0/8"]`}, nil)
	tn.must(t, "ConnectKmsInstance", map[string]string{"KmsInstanceId": tn.InstanceID, "VpcId": "far"}, nil)
	wantInstanceError(t, read(), "Forbidden.NoPermission")
	tn.must(t, "CreateNetworkRule", map[string]string{"Name": "loop", "Type": "Private", "SourcePrivateIp": `["127.0.0.0/8"]`}, nil)
	tn.must(t, "UpdateKmsInstanceBindVpc", map[string]string{"KmsInstanceId": tn.InstanceID, "BindVpcs": `[{"VpcId":"loop"}]`}, nil)
	if err := read(); err != nil {
		t.Fatalf("GetSecretValue from a bound network: %v", err)
	}
}
