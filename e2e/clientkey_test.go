package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/alibabacloud-go/tea/tea"
	dkmsopenapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi"
	dkmsutil "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util"
	dkms "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/sdk"
)

// Issue 11: the client key file `kmsctl client-key create` writes works, as
// it is, with the official instance SDK's ClientKeyFile and Password (the
// password file's trailing newline is not part of the password), over HTTPS
// trusting only the CA the dev node wrote.
func TestDev_KmsctlClientKeyFileWorksWithTheOfficialInstanceSDK(t *testing.T) {
	n := newNode(t, "dev", "", "")
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, n, dir)
	creds := filepath.Join(dir, "credentials.json")
	var cr struct{ InstanceEndpoint, InstanceCaFile, InstanceId string }
	b, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := jsonUnmarshal(b, &cr); err != nil || cr.InstanceEndpoint == "" || cr.InstanceCaFile == "" || cr.InstanceId == "" {
		t.Fatalf("credentials.json = %s (%v)", b, err)
	}
	ctl := func(args ...string) ctlResult {
		t.Helper()
		return kmsctl(t, nil, append([]string{"--credentials", creds}, args...)...)
	}
	var key struct{ KeyMetadata struct{ KeyId string } }
	ctl("CreateKey", "--DKMSInstanceId", cr.InstanceId, "--Description", "for the instance SDK").ok(t, &key)
	ctl("CreatePolicy", "--Name", "app-keys", "--KmsInstance", cr.InstanceId,
		"--Permissions", `["RbacPermission/Template/CryptoServiceKeyUser"]`, "--Resources", `["key/*"]`).ok(t, nil)
	ctl("CreateApplicationAccessPoint", "--Name", "app", "--AuthenticationMethod", "ClientKey", "--Policies", `["app-keys"]`).ok(t, nil)

	work := t.TempDir()
	pwFile, keyFile := filepath.Join(work, "password"), filepath.Join(work, "clientkey.json")
	if err := os.WriteFile(pwFile, []byte("Client-Key-Pass-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl("client-key", "create", "--aap", "app", "--password-file", pwFile, "--out", keyFile).ok(t, nil)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("client key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	sdk, err := dkms.NewClient(&dkmsopenapi.Config{
		Protocol:      tea.String("https"),
		Endpoint:      tea.String(cr.InstanceEndpoint),
		CaFilePath:    tea.String(cr.InstanceCaFile),
		ClientKeyFile: tea.String(keyFile),
		Password:      tea.String("Client-Key-Pass-1"),
	})
	if err != nil {
		t.Fatalf("the SDK does not take kmsctl's client key file: %v", err)
	}
	rt := &dkmsutil.RuntimeOptions{Autoretry: tea.Bool(false)}
	plaintext := []byte("hello from the instance SDK")
	enc, err := sdk.EncryptWithOptions(&dkms.EncryptRequest{KeyId: tea.String(key.KeyMetadata.KeyId), Plaintext: plaintext}, rt)
	if err != nil {
		t.Fatalf("Encrypt through the instance SDK: %v", err)
	}
	dec, err := sdk.DecryptWithOptions(&dkms.DecryptRequest{KeyId: enc.KeyId, CiphertextBlob: enc.CiphertextBlob, Iv: enc.Iv, Algorithm: enc.Algorithm}, rt)
	if err != nil {
		t.Fatalf("Decrypt through the instance SDK: %v", err)
	}
	if !bytes.Equal(dec.Plaintext, plaintext) {
		t.Fatalf("Decrypt gave %q, want %q", dec.Plaintext, plaintext)
	}

	// The same file with the password file's newline kept is refused by the
	// SDK itself: the newline is not part of the password.
	if _, err := dkms.NewClient(&dkmsopenapi.Config{
		Protocol: tea.String("https"), Endpoint: tea.String(cr.InstanceEndpoint), CaFilePath: tea.String(cr.InstanceCaFile),
		ClientKeyFile: tea.String(keyFile), Password: tea.String("Client-Key-Pass-1\n"),
	}); err == nil {
		t.Fatal("the SDK opened the client key with the newline as part of the password")
	}
}
