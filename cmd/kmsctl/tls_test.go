package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func runCtl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s is not a PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestTLSCreateCA_WritesACAAndRefusesToOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	code, out, errs := runCtl(t, "operator", "tls", "create-ca", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "ca.crt") || !strings.Contains(out, "ca.key") {
		t.Fatalf("output does not name the files: %s", out)
	}
	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatal("ca.crt is not a CA certificate")
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if m := mode(t, filepath.Join(dir, "ca.key")); m != 0o600 {
		t.Fatalf("ca.key mode %v", m)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")); err != nil {
		t.Fatalf("ca.crt and ca.key do not pair: %v", err)
	}

	before, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	code, _, errs = runCtl(t, "operator", "tls", "create-ca", dir)
	if code != 1 || !strings.Contains(errs, "--force") {
		t.Fatalf("second create-ca: exit %d, %s", code, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); !bytes.Equal(before, after) {
		t.Fatal("the existing CA key was changed")
	}
	if code, _, errs = runCtl(t, "operator", "tls", "create-ca", "--force", dir); code != 0 {
		t.Fatalf("create-ca --force: exit %d: %s", code, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); bytes.Equal(before, after) {
		t.Fatal("--force did not replace the CA key")
	}
	if m := mode(t, filepath.Join(dir, "ca.key")); m != 0o600 {
		t.Fatalf("replaced ca.key mode %v", m)
	}
}

func TestTLSCreateCert_ServerAndClientCertificateForTheNode(t *testing.T) {
	dir := t.TempDir()
	caDir, outDir := filepath.Join(dir, "ca"), filepath.Join(dir, "certs")
	if code, _, errs := runCtl(t, "operator", "tls", "create-ca", caDir); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := runCtl(t, "operator", "tls", "create-cert", "--ca", caDir, "--name", "n1", "--ip", "10.1.2.3,fd00::7", outDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "n1.crt") {
		t.Fatalf("output: %s", out)
	}
	crt, key := filepath.Join(outDir, "n1.crt"), filepath.Join(outDir, "n1.key")
	if m := mode(t, key); m != 0o600 {
		t.Fatalf("key mode %v", m)
	}
	c := readCert(t, crt)
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("node key is %T, want ECDSA P-256", c.PublicKey)
	}
	if c.IsCA {
		t.Fatal("a node certificate is a CA")
	}
	if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Fatalf("extended key usage %v, want server and client auth", c.ExtKeyUsage)
	}
	for _, ip := range []string{"10.1.2.3", "fd00::7", "127.0.0.1", "::1"} {
		if !slices.ContainsFunc(c.IPAddresses, func(a net.IP) bool { return a.Equal(net.ParseIP(ip)) }) {
			t.Errorf("no IP SAN %s in %v", ip, c.IPAddresses)
		}
	}
	for _, name := range []string{"n1", "localhost"} {
		if !slices.Contains(c.DNSNames, name) {
			t.Errorf("no DNS SAN %s in %v", name, c.DNSNames)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(caDir, "ca.crt")))
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{u}, DNSName: "n1"}); err != nil {
			t.Fatalf("does not verify against the CA for %v: %v", u, err)
		}
	}

	// The pair works for mutual TLS, as kmsd uses it.
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if conn, err := ln.Accept(); err == nil {
			conn.(*tls.Conn).Handshake()
			conn.Write([]byte("x"))
			conn.Close()
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool})
	if err != nil {
		t.Fatalf("mutual TLS with the generated certificate: %v", err)
	}
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err != nil {
		t.Fatalf("mutual TLS with the generated certificate: %v", err)
	}
	conn.Close()

	// Existing files stay unless --force.
	before, _ := os.ReadFile(key)
	if code, _, errs := runCtl(t, "operator", "tls", "create-cert", "--ca", caDir, "--name", "n1", outDir); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("overwrite without --force: exit %d, %s", code, errs)
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Fatal("the existing key was changed")
	}
	if code, _, errs := runCtl(t, "operator", "tls", "create-cert", "--force", "--ca", caDir, "--name", "n1", "--ip", "10.1.2.4", outDir); code != 0 {
		t.Fatalf("--force: %s", errs)
	}
	if after, _ := os.ReadFile(key); bytes.Equal(before, after) {
		t.Fatal("--force did not replace the key")
	}
}

func TestTLSCommands_UsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	if code, _, errs := runCtl(t, "operator", "tls", "create-ca", caDir); code != 0 {
		t.Fatal(errs)
	}
	for name, args := range map[string][]string{
		"create-ca without DIR":     {"operator", "tls", "create-ca"},
		"create-ca with two DIRs":   {"operator", "tls", "create-ca", "a", "b"},
		"create-cert without --ca":  {"operator", "tls", "create-cert", "--name", "n1", dir},
		"create-cert without name":  {"operator", "tls", "create-cert", "--ca", caDir, dir},
		"create-cert without OUT":   {"operator", "tls", "create-cert", "--ca", caDir, "--name", "n1"},
		"create-cert bad IP":        {"operator", "tls", "create-cert", "--ca", caDir, "--name", "n1", "--ip", "10.0.0.300", dir},
		"create-cert path as name":  {"operator", "tls", "create-cert", "--ca", caDir, "--name", "../n1", dir},
		"create-cert missing CA":    {"operator", "tls", "create-cert", "--ca", filepath.Join(dir, "nope"), "--name", "n1", dir},
		"tls without a subcommand":  {"operator", "tls"},
		"create-cert unknown flag":  {"operator", "tls", "create-cert", "--bogus", "--ca", caDir, "--name", "n1", dir},
		"create-ca non-positive -d": {"operator", "tls", "create-ca", "--days", "0", filepath.Join(dir, "x")},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errs := runCtl(t, args...)
			if code != 2 || out != "" || errs == "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "n1.key")); err == nil {
		t.Fatal("a refused command wrote a key")
	}
}
