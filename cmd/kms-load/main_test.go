package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/client"
)

// writeFile writes content to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every refusal of the --api flags is a usage error (exit 2) naming the
// problem, before any request: the credentials point at a port nothing
// listens on, so a request would fail differently (exit 1).
func TestRun_RefusesBadInstanceFlagsBeforeAnyRequest(t *testing.T) {
	for _, k := range []string{client.EnvCredentials, client.EnvEndpoint, client.EnvAccessKeyID, client.EnvAccessKeySecret, client.EnvSecurityToken} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	creds := writeFile(t, dir, "creds.json", `{"AccessKeyId":"LTAIbench","AccessKeySecret":"secret","Endpoint":"http://127.0.0.1:1"}`)
	pw := writeFile(t, dir, "pw", "Passw0rd-bench\n")
	empty := writeFile(t, dir, "empty", "\n")
	key := writeFile(t, dir, "key.json", `{}`)
	// Full slice expressions: every case's append copies, none shares a tail.
	base := []string{"--credentials", creds, "--duration", "1ms"}
	base = base[:len(base):len(base)]
	inst := append(base, "--api", "instance", "--client-key-file", key, "--client-key-password-file", pw)
	inst = inst[:len(inst):len(inst)]
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown api", append(base, "--api", "grpc"), `--api "grpc"`},
		{"instance flag without --api instance", append(base, "--client-key-file", key), "need --api instance"},
		{"no client key", append(base, "--api", "instance"), "--client-key-file"},
		{"unsupported action", append(inst, "--action", "DescribeKey"), "DescribeKey"},
		{"v1 signature", append(inst, "--signature", "v1"), "--signature"},
		{"no endpoint in the credentials", append(inst, "--instance-ca", key), "--instance-endpoint"},
		{"endpoint with a scheme", append(inst, "--instance-endpoint", "https://127.0.0.1:1", "--instance-ca", key), "host:port"},
		{"no CA", append(inst, "--instance-endpoint", "127.0.0.1:1"), "--instance-ca"},
		{"missing password file", append(base, "--api", "instance", "--client-key-file", key, "--client-key-password-file", filepath.Join(dir, "nope"), "--instance-endpoint", "127.0.0.1:1", "--instance-ca", key), "--client-key-password-file"},
		{"empty password", append(base, "--api", "instance", "--client-key-file", key, "--client-key-password-file", empty, "--instance-endpoint", "127.0.0.1:1", "--instance-ca", key), "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			if code := run(tc.args, &out, &errs); code != 2 || out.Len() != 0 || !strings.Contains(errs.String(), tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 mentioning %q", code, out.String(), errs.String(), tc.want)
			}
		})
	}
}

// The instance endpoint and CA default to the credentials' InstanceEndpoint
// and InstanceCaFile, flags override them, and the password loses one
// trailing newline.
func TestResolveInstance_DefaultsFromTheCredentials(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "Passw0rd-bench\r\n")
	cr := client.Credentials{InstanceEndpoint: "127.0.0.1:18443", InstanceCaFile: "/data/instance-ca.pem"}
	cases := []struct {
		name         string
		endpoint, ca string
		wantEndpoint string
		wantCA       string
	}{
		{"from the credentials", "", "", "127.0.0.1:18443", "/data/instance-ca.pem"},
		{"flags win", "127.0.0.2:9443", "/etc/ca.pem", "127.0.0.2:9443", "/etc/ca.pem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := options{api: apiInstance, action: "Encrypt", signature: "v3", concurrency: 16, clientKeyFile: "k.json",
				instanceEndpoint: tc.endpoint, instanceCA: tc.ca}
			if err := o.resolveInstance(cr, pw); err != nil {
				t.Fatal(err)
			}
			if o.instanceEndpoint != tc.wantEndpoint || o.instanceCA != tc.wantCA || o.clientKeyPassword != "Passw0rd-bench" {
				t.Fatalf("endpoint %q, CA %q, password %q", o.instanceEndpoint, o.instanceCA, o.clientKeyPassword)
			}
		})
	}
}
