package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/internal/testutil"
	"github.com/raftkms/raftkms/store"
)

// instanceNode starts an initialized one-node cluster serving the instance
// API, gives its instance an AAP over key/* and a client key, and returns
// a credentials file naming InstanceEndpoint and InstanceCaFile (as kmsd
// --dev writes it), the client key file and its password file.
func instanceNode(t *testing.T) (creds, keyFile, pwFile string) {
	t.Helper()
	dir := t.TempDir()
	root, err := kcrypto.GenerateRootKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(node.Config{
		NodeID: "kms-load-test", DataDir: filepath.Join(dir, "data"), Single: true,
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", InstanceAddr: "127.0.0.1:0",
		RootKey: root, Timing: store.FastTiming(),
	})
	if err != nil {
		t.Fatalf("node.Start: %v", err)
	}
	t.Cleanup(n.Stop)

	var boot struct{ AccessKeyId, AccessKeySecret, InstanceId string }
	testutil.Eventually(t, "operator init to succeed", 20*time.Second, func() bool {
		resp, err := http.Post(n.Endpoint()+"/v1/operator/init", "application/json", nil)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(b, &boot) == nil && boot.AccessKeySecret != ""
	})
	c, err := client.New(n.Endpoint(), boot.AccessKeyId, boot.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	call := func(action string, p map[string]string, out any) {
		t.Helper()
		resp, err := c.Call(context.Background(), action, p)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		if out != nil {
			if err := resp.Decode(out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var inst struct {
		KmsInstance struct{ CaCertificateChainPem string }
	}
	call("GetKmsInstance", map[string]string{"KmsInstanceId": boot.InstanceId}, &inst)
	call("CreatePolicy", map[string]string{"Name": "keys", "KmsInstance": boot.InstanceId,
		"Permissions": `["RbacPermission/Template/CryptoServiceKeyUser"]`, "Resources": `["key/*"]`}, nil)
	call("CreateApplicationAccessPoint", map[string]string{"Name": "load", "Policies": `["keys"]`}, nil)
	const password = "Passw0rd-load"
	var ck struct{ ClientKeyId, PrivateKeyData string }
	call("CreateClientKey", map[string]string{"AapName": "load", "Password": password}, &ck)

	caFile := filepath.Join(dir, "instance-ca.pem")
	keyFile = filepath.Join(dir, "clientkey.json")
	pwFile = filepath.Join(dir, "password")
	creds = filepath.Join(dir, "credentials.json")
	kf, _ := json.Marshal(map[string]string{"KeyId": ck.ClientKeyId, "PrivateKeyData": ck.PrivateKeyData})
	cf, _ := json.Marshal(client.Credentials{AccessKeyId: boot.AccessKeyId, AccessKeySecret: boot.AccessKeySecret,
		Endpoint: n.Endpoint(), InstanceId: boot.InstanceId, InstanceEndpoint: n.InstanceAddr(), InstanceCaFile: caFile})
	for f, b := range map[string][]byte{caFile: []byte(inst.KmsInstance.CaCertificateChainPem), keyFile: kf, pwFile: []byte(password + "\n"), creds: cf} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return creds, keyFile, pwFile
}

// --api instance drives each of its actions through the official SDK
// against a real node: requests succeed, none fails, and the result names
// the instance API and its https endpoint (from the credentials file).
func TestRun_InstanceAPIServesEveryActionThroughTheOfficialSDK(t *testing.T) {
	for _, k := range []string{client.EnvCredentials, client.EnvEndpoint, client.EnvAccessKeyID, client.EnvAccessKeySecret, client.EnvSecurityToken} {
		t.Setenv(k, "")
	}
	creds, keyFile, pwFile := instanceNode(t)
	cr, err := client.LoadCredentialsFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"Encrypt", "Decrypt", "GenerateDataKey"} {
		t.Run(action, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := run([]string{"--credentials", creds, "--api", "instance", "--client-key-file", keyFile,
				"--client-key-password-file", pwFile, "--action", action, "--concurrency", "2", "--duration", "300ms", "--json"}, &out, &errs)
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errs.String())
			}
			var res result
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			if res.API != apiInstance || res.Action != action || res.OK == 0 || len(res.Errors) != 0 ||
				fmt.Sprint(res.Endpoints) != fmt.Sprint([]string{"https://" + cr.InstanceEndpoint}) {
				t.Fatalf("result %+v", res)
			}
		})
	}
}
