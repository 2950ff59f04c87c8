package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xpkcs12 "golang.org/x/crypto/pkcs12"
)

// clientKeyNode is an initialized node with a permission policy and an AAP
// "app" naming it.
func clientKeyNode(t *testing.T) (endpoint, creds string) {
	t.Helper()
	n, creds, _ := initializedNode(t)
	var insts struct {
		KmsInstances struct {
			KmsInstance []struct{ KmsInstanceId string }
		}
	}
	mustCtl(t, &insts, "--credentials", creds, "--endpoint", n.Endpoint(), "ListKmsInstances")
	if len(insts.KmsInstances.KmsInstance) == 0 {
		t.Fatal("no KMS instance")
	}
	mustCtl(t, nil, "--credentials", creds, "--endpoint", n.Endpoint(), "CreatePolicy", "--Name", "keys",
		"--KmsInstance", insts.KmsInstances.KmsInstance[0].KmsInstanceId,
		"--Permissions", `["RbacPermission/Template/CryptoServiceKeyUser"]`, "--Resources", `["key/*"]`)
	mustCtl(t, nil, "--credentials", creds, "--endpoint", n.Endpoint(), "CreateApplicationAccessPoint", "--Name", "app", "--Policies", `["keys"]`)
	return n.Endpoint(), creds
}

func clientKeyCount(t *testing.T, creds, endpoint string) int {
	t.Helper()
	var l struct {
		ClientKeys []struct{ ClientKeyId string }
	}
	mustCtl(t, &l, "--credentials", creds, "--endpoint", endpoint, "ListClientKeys")
	return len(l.ClientKeys)
}

// Refusals first: an existing --out file, or none, is refused before any
// request, and no client key appears.
func TestClientKeyCreate_RefusesToOverwriteOrPrint(t *testing.T) {
	endpoint, creds := clientKeyNode(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("Passw0rd-ctl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "key.json")
	if err := os.WriteFile(existing, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"existing --out", []string{"--aap", "app", "--password-file", pw, "--out", existing}, "exists"},
		{"no --out", []string{"--aap", "app", "--password-file", pw}, "--out"},
		{"no --aap", []string{"--password-file", pw, "--out", filepath.Join(dir, "a.json")}, "--aap"},
		{"missing password file", []string{"--aap", "app", "--password-file", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "b.json")}, "password-file"},
		{"bad --not-after", []string{"--aap", "app", "--password-file", pw, "--out", filepath.Join(dir, "c.json"), "--not-after", "soon"}, "RFC 3339"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := ctl(t, creds, endpoint, append([]string{"client-key", "create"}, tc.args...)...)
			if code != exitUsage || out != "" || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 mentioning %q", code, out, errs, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "precious" {
		t.Error("the existing file changed")
	}
	if n := clientKeyCount(t, creds, endpoint); n != 0 {
		t.Errorf("%d client keys created by refused commands", n)
	}
	// A request the service refuses leaves no file behind.
	out := filepath.Join(dir, "refused.json")
	code, _, _ := ctl(t, creds, endpoint, "client-key", "create", "--aap", "nope", "--password-file", pw, "--out", out)
	if code != exitService {
		t.Fatalf("an unknown AAP: exit %d", code)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a refused request left its --out file")
	}
}

// The file is 0600, has the SDK's shape, and its PKCS#12 opens with the
// password without the file's trailing newline.
func TestClientKeyCreate_WritesTheSDKFile(t *testing.T) {
	endpoint, creds := clientKeyNode(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("Passw0rd-ctl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "clientKey_app.json")
	code, out, errs := ctl(t, creds, endpoint, "client-key", "create", "--aap", "app", "--password-file", pw, "--out", path, "--not-after", "2099-01-01T00:00:00Z")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %o, want 600", m)
	}
	b, _ := os.ReadFile(path)
	var f map[string]string
	if err := json.Unmarshal(b, &f); err != nil || len(f) != 2 || !strings.HasPrefix(f["KeyId"], "KAAP.") || f["PrivateKeyData"] == "" {
		t.Fatalf("not a client key file: %s", b)
	}
	if strings.Contains(errs, f["PrivateKeyData"]) {
		t.Error("the private key was printed as well as written")
	}
	pfx, err := base64.StdEncoding.DecodeString(f["PrivateKeyData"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xpkcs12.ToPEM(pfx, "Passw0rd-ctl\n"); err == nil {
		t.Error("the trailing newline is part of the password")
	}
	blocks, err := xpkcs12.ToPEM(pfx, "Passw0rd-ctl")
	if err != nil || len(blocks) != 2 || blocks[0].Type != "CERTIFICATE" {
		t.Fatalf("PKCS#12: %d blocks, %v", len(blocks), err)
	}
	if n := clientKeyCount(t, creds, endpoint); n != 1 {
		t.Errorf("%d client keys, want 1", n)
	}
}
