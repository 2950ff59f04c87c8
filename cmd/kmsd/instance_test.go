package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/store"
)

func TestParseFlags_InstanceAPI(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		args    []string
		dev     bool
		addr    string
		names   []string
		refused string // "" = accepted
	}{
		{name: "off by default", args: nil, addr: ""},
		{name: "dev mode picks a free loopback port", dev: true, addr: "127.0.0.1:0"},
		{name: "dev mode keeps an explicit address", dev: true, args: []string{"--instance-addr", "127.0.0.1:9443"}, addr: "127.0.0.1:9443"},
		{name: "names and addresses", args: []string{"--instance-addr", "0.0.0.0:9443", "--instance-advertise", "kms.example, 10.0.0.5,[::1]"},
			addr: "0.0.0.0:9443", names: []string{"kms.example", "10.0.0.5", "::1"}},
		{name: "an address without port", args: []string{"--instance-addr", "127.0.0.1"}, refused: "HOST:PORT"},
		{name: "names without the endpoint", args: []string{"--instance-advertise", "kms.example"}, refused: "--instance-addr"},
		{name: "a certificate without the endpoint", args: []string{"--instance-tls-cert-file", "c", "--instance-tls-key-file", "k"}, refused: "--instance-addr"},
		{name: "a certificate without its key", args: []string{"--instance-addr", "127.0.0.1:1", "--instance-tls-cert-file", "c"}, refused: "go together"},
		{name: "a name with a port", args: []string{"--instance-addr", "127.0.0.1:1", "--instance-advertise", "kms.example:443"}, refused: "neither an IP address nor a host name"},
		{name: "a name with a space", args: []string{"--instance-addr", "127.0.0.1:1", "--instance-advertise", "kms example"}, refused: "neither"},
		{name: "only commas", args: []string{"--instance-addr", "127.0.0.1:1", "--instance-advertise", ",,"}, refused: "names nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--node-id", "n1", "--data-dir", dir, "--root-key-file", "root.key"}
			if tc.dev {
				args = []string{"--dev"}
			}
			c, err := parseFlags(append(args, tc.args...), io.Discard)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err = %v, want one saying %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.instanceAddr != tc.addr || !reflect.DeepEqual(c.instanceNames, tc.names) {
				t.Fatalf("addr %q names %q, want %q %q", c.instanceAddr, c.instanceNames, tc.addr, tc.names)
			}
		})
	}
}

// Dev mode writes instance-ca.pem (the cluster's instance CA) into its data
// dir and InstanceEndpoint (host:port) and InstanceCaFile (absolute) into
// its credentials file, keeping the other fields; at a restart the port is
// new and the file follows it.
func TestDevInit_WritesTheInstanceEndpointAndCA(t *testing.T) {
	dir := t.TempDir()
	root, err := kcrypto.NewRootKey(bytes.Repeat([]byte{9}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(node.Config{
		NodeID: "dev", DataDir: dir, Single: true, RootKey: root, Timing: store.FastTiming(),
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", InstanceAddr: devInstanceAddr,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	var out bytes.Buffer
	if err := devInit(n, dir, &out); err != nil {
		t.Fatal(err)
	}
	credPath := filepath.Join(dir, "credentials.json")
	check := func() client.Credentials {
		t.Helper()
		creds, err := client.LoadCredentialsFile(credPath)
		if err != nil {
			t.Fatal(err)
		}
		if creds.InstanceEndpoint != n.InstanceAddr() || strings.Contains(creds.InstanceEndpoint, "://") {
			t.Fatalf("InstanceEndpoint = %q, want %q (host:port)", creds.InstanceEndpoint, n.InstanceAddr())
		}
		if want := filepath.Join(dir, "instance-ca.pem"); creds.InstanceCaFile != want || !filepath.IsAbs(creds.InstanceCaFile) {
			t.Fatalf("InstanceCaFile = %q, want %q", creds.InstanceCaFile, want)
		}
		caPEM, err := os.ReadFile(creds.InstanceCaFile)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := n.Service().InstanceCAPEM(); string(caPEM) != want {
			t.Fatal("instance-ca.pem is not the cluster's instance CA")
		}
		// kmsctl still reads the file.
		if _, err := client.ResolveCredentials(credPath, ""); err != nil {
			t.Fatal(err)
		}
		return creds
	}
	first := check()
	if !strings.Contains(out.String(), n.InstanceAddr()) {
		t.Fatalf("the banner does not show the instance API:\n%s", out.String())
	}

	// A restart on the same data dir: the old port is stale, and a field
	// this version does not know survives.
	fields := map[string]any{}
	b, _ := os.ReadFile(credPath)
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	fields["InstanceEndpoint"], fields["Extra"] = "127.0.0.1:1", "kept"
	b, _ = json.Marshal(fields)
	if err := os.WriteFile(credPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := devInit(n, dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	again := check()
	if again.AccessKeyId != first.AccessKeyId || again.AccessKeySecret != first.AccessKeySecret || again.Endpoint != first.Endpoint {
		t.Fatal("updating the instance fields lost the API credentials")
	}
	b, _ = os.ReadFile(credPath)
	if !strings.Contains(string(b), `"Extra": "kept"`) {
		t.Fatalf("an unknown field was dropped:\n%s", b)
	}
	if info, err := os.Stat(credPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
}
