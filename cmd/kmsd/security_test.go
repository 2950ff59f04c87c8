package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func baseArgs(t *testing.T) []string {
	return []string{"--node-id", "n1", "--data-dir", t.TempDir(), "--root-key-file", "root.key"}
}

func TestParseFlags_PlaintextOnANonLoopbackAddressNeedsInsecure(t *testing.T) {
	dir := t.TempDir()
	tlsAPI := []string{"--tls-cert-file", filepath.Join(dir, "c"), "--tls-key-file", filepath.Join(dir, "k")}
	tlsCluster := []string{"--cluster-ca-file", "ca", "--cluster-cert-file", "c", "--cluster-key-file", "k"}
	cases := []struct {
		name    string
		args    []string
		refused string // "" = accepted
	}{
		{"loopback defaults", nil, ""},
		{"API on all interfaces", []string{"--http-addr", "0.0.0.0:9700"}, "--http-addr 0.0.0.0:9700"},
		{"API on an empty host", []string{"--http-addr", ":9700"}, "--http-addr :9700"},
		{"API on a LAN address", []string{"--http-addr", "10.0.0.1:9700"}, "--http-addr 10.0.0.1:9700"},
		{"cluster port on a LAN address", []string{"--cluster-addr", "10.0.0.1:9701"}, "--cluster-addr 10.0.0.1:9701"},
		{"API on IPv6 loopback", []string{"--http-addr", "[::1]:9700"}, ""},
		{"API on localhost", []string{"--http-addr", "localhost:9700"}, ""},
		{"both exposed, --insecure", []string{"--http-addr", "0.0.0.0:9700", "--cluster-addr", "10.0.0.1:9701", "--insecure"}, ""},
		{"API with TLS", append([]string{"--http-addr", "0.0.0.0:9700"}, tlsAPI...), ""},
		{"API with TLS, cluster without", append([]string{"--http-addr", "0.0.0.0:9700", "--cluster-addr", "10.0.0.1:9701"}, tlsAPI...), "--cluster-addr"},
		{"both with TLS", append(append([]string{"--http-addr", "0.0.0.0:9700", "--cluster-addr", "10.0.0.1:9701"}, tlsAPI...), tlsCluster...), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseFlags(append(baseArgs(t), tc.args...), &stderr)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted plaintext on a non-loopback address without --insecure")
			}
			for _, want := range []string{tc.refused, "--insecure", "create-cert", "127.0.0.1"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("the message does not mention %q: %v", want, err)
				}
			}
		})
	}
	// Dev mode may run without TLS anywhere.
	if _, err := parseFlags([]string{"--dev", "--http-addr", "0.0.0.0:9700"}, io.Discard); err != nil {
		t.Fatalf("dev mode: %v", err)
	}
}

func TestParseFlags_TLSFlagsGoTogether(t *testing.T) {
	for name, args := range map[string][]string{
		"cert without key":         {"--tls-cert-file", "c"},
		"key without cert":         {"--tls-key-file", "k"},
		"cluster CA alone":         {"--cluster-ca-file", "ca"},
		"cluster cert and key":     {"--cluster-cert-file", "c", "--cluster-key-file", "k"},
		"cluster CA and cert only": {"--cluster-ca-file", "ca", "--cluster-cert-file", "c"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseFlags(append(baseArgs(t), args...), io.Discard); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestWarnPlaintext_LogsWhatIsExposed(t *testing.T) {
	var buf bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &buf})
	c, err := parseFlags(append(baseArgs(t), "--http-addr", "0.0.0.0:9700", "--gossip-addr", "10.0.0.1:9702", "--insecure"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	warnPlaintext(c, logger)
	out := buf.String()
	if !strings.Contains(out, "[WARN]") || !strings.Contains(out, "INSECURE") || !strings.Contains(out, "0.0.0.0:9700") {
		t.Fatalf("no warning for the plaintext API: %s", out)
	}
	if !strings.Contains(out, "--gossip-key-file") {
		t.Fatalf("no warning for plaintext gossip: %s", out)
	}
	buf.Reset()
	c, _ = parseFlags(baseArgs(t), io.Discard)
	warnPlaintext(c, logger)
	if buf.Len() != 0 {
		t.Fatalf("warnings on loopback: %s", buf.String())
	}
}

func TestLoadGossipKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	for _, n := range []int{16, 24, 32} {
		k, err := loadGossipKey(write("ok", base64.StdEncoding.EncodeToString(make([]byte, n))+"\n"))
		if err != nil || len(k) != n {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	for name, content := range map[string]string{
		"20 bytes":   base64.StdEncoding.EncodeToString(make([]byte, 20)),
		"not base64": "this is not base64!",
		"empty":      "",
	} {
		if _, err := loadGossipKey(write("bad", content)); err == nil || !strings.Contains(err.Error(), "head -c 32 /dev/urandom | base64") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := loadGossipKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

// pemCA writes a CA and a node certificate for 127.0.0.1 into dir.
func pemCA(t *testing.T, dir, prefix string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: prefix + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "n1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, prefix+"-ca.crt"), filepath.Join(dir, prefix+".crt"), filepath.Join(dir, prefix+".key")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return caFile, certFile, keyFile
}

func TestLoadClusterTLS_MutualAndWarnsAboutMismatches(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := pemCA(t, dir, "a")
	otherCA, _, _ := pemCA(t, dir, "b")
	var buf bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &buf})
	c := config{clusterCAFile: ca, clusterCertFile: cert, clusterKeyFile: key, clusterAddr: "127.0.0.1:9701"}
	server, client, err := loadClusterTLS(c, logger)
	if err != nil {
		t.Fatal(err)
	}
	if server.ClientAuth != tls.RequireAndVerifyClientCert || server.ClientCAs == nil || client.RootCAs == nil ||
		len(server.Certificates) != 1 || len(client.Certificates) != 1 {
		t.Fatalf("not mutual TLS: server %+v client %+v", server, client)
	}
	if buf.Len() != 0 {
		t.Fatalf("warnings for a matching set: %s", buf.String())
	}
	c.clusterCAFile, c.clusterAddr = otherCA, "10.9.9.9:9701"
	if _, _, err := loadClusterTLS(c, logger); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "does not verify against --cluster-ca-file") || !strings.Contains(out, "10.9.9.9") {
		t.Fatalf("no warning for a certificate from another CA and another address: %s", out)
	}
	c.clusterCAFile = cert + ".missing"
	if _, _, err := loadClusterTLS(c, logger); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
	c.clusterCAFile = key // not a certificate
	if _, _, err := loadClusterTLS(c, logger); err == nil {
		t.Fatal("a CA file without a certificate was accepted")
	}
}
