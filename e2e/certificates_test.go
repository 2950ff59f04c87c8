package e2e

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openssl runs the openssl command line in dir and returns its combined
// output; it fails the test when openssl exits non-zero.
func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// certificateSpecs are the key specs of certificates and the signing
// algorithms each is checked with.
var certificateSpecs = []struct {
	spec string
	algs []string
}{
	{"RSA_2048", []string{"RSA_PKCS1_SHA_256", "RSA_PSS_SHA_256"}},
	{"RSA_3072", []string{"RSA_PKCS1_SHA_256"}},
	{"EC_P256", []string{"ECDSA_SHA_256"}},
	{"EC_P256K", []string{"ECDSA_SHA_256"}},
}

// Issue 13, certificates: a CA made with openssl signs the CSR
// CreateCertificate returned (which `openssl req -verify` accepts); the
// certificate is uploaded; CertificatePrivateKeySign's signatures verify
// with `openssl dgst -verify` and the certificate's public key; data
// openssl encrypted with RSA-OAEP decrypts with
// CertificatePrivateKeyDecrypt. Every key spec, on a software instance
// (certificates_hsm_test.go: a hardware one).
func TestCertificates_OpenSSL(t *testing.T) {
	c := startCluster(t, "cert", 1, "")
	c.Init()
	dir := newOpenSSLCA(t)
	for _, tc := range certificateSpecs {
		t.Run(tc.spec, func(t *testing.T) {
			certificateWithOpenSSL(t, c, c.Nodes[0], dir, tc.spec, tc.algs, "")
		})
	}
}

// newOpenSSLCA makes a CA with `openssl req -x509` in a new directory:
// ca.pem, ca.key.
func newOpenSSLCA(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is required: %v", err)
	}
	dir := t.TempDir()
	openssl(t, dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
		"-subj", "/CN=raftkms e2e CA/O=raftkms", "-days", "2")
	return dir
}

// certificateWithOpenSSL runs the whole life of one certificate of spec
// through node n (in instance inst, "" for none) against the CA in dir,
// checking everything with the openssl command line.
func certificateWithOpenSSL(t *testing.T, c *testCluster, n *kmsdNode, dir, spec string, algs []string, inst string) string {
	t.Helper()
	caPEM := string(readFile(t, filepath.Join(dir, "ca.pem")))
	message := []byte("a message signed by a certificate's private key " + randomHex(8))
	sub := filepath.Join(dir, spec+inst)
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sub, "msg.txt"), message)
	var created struct{ CertificateId, Csr, Arn string }
	args := []string{"CreateCertificate", "--KeySpec", spec, "--Subject", "CN=app " + spec + ",OU=kms,O=raftkms,C=DE,L=Berlin",
		"--SubjectAlternativeNames", `["app.example.com","192.0.2.7"]`}
	if inst != "" {
		args = append(args, "--DKMSInstanceId", inst)
	}
	c.Ctl(n, args...).ok(t, &created)
	if created.CertificateId == "" || !strings.HasSuffix(created.Arn, ":certificate/"+created.CertificateId) {
		t.Fatalf("CreateCertificate answered %+v", created)
	}
	writeFile(t, filepath.Join(sub, "csr.pem"), []byte(created.Csr))
	if out := openssl(t, sub, "req", "-in", "csr.pem", "-verify", "-noout", "-text"); !strings.Contains(out, "verify OK") ||
		!strings.Contains(out, "DNS:app.example.com") || !strings.Contains(out, "IP Address:192.0.2.7") ||
		!strings.Contains(out, "CN = app "+spec) {
		t.Fatalf("openssl req -verify:\n%s", out)
	}
	openssl(t, sub, "x509", "-req", "-in", "csr.pem", "-CA", "../ca.pem", "-CAkey", "../ca.key", "-CAcreateserial",
		"-copy_extensions", "copy", "-days", "1", "-sha256", "-out", "cert.pem")
	certPEM := string(readFile(t, filepath.Join(sub, "cert.pem")))
	c.Ctl(n, "UploadCertificate", "--CertificateId", created.CertificateId, "--Certificate", certPEM,
		"--CertificateChain", caPEM).ok(t, nil)
	openssl(t, sub, "x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "pub.pem")

	var described struct {
		Status, Issuer, Subject, Serial, SubjectPublicKey, KeySpec string
		SubjectAlternativeNames                                    []string
	}
	c.Ctl(n, "DescribeCertificate", "--CertificateId", created.CertificateId).ok(t, &described)
	serial := strings.TrimPrefix(strings.TrimSpace(openssl(t, sub, "x509", "-in", "cert.pem", "-noout", "-serial")), "serial=")
	if described.Status != "ACTIVE" || described.KeySpec != spec || !strings.Contains(described.Issuer, "raftkms e2e CA") ||
		!strings.EqualFold(strings.TrimLeft(serial, "0"), strings.TrimLeft(described.Serial, "0")) ||
		strings.TrimSpace(described.SubjectPublicKey) != strings.TrimSpace(string(readFile(t, filepath.Join(sub, "pub.pem")))) {
		t.Errorf("DescribeCertificate %+v (openssl serial %s)", described, serial)
	}

	for _, alg := range algs {
		var signed struct{ SignatureValue string }
		c.Ctl(n, "CertificatePrivateKeySign", "--CertificateId", created.CertificateId, "--Algorithm", alg,
			"--Message", base64.StdEncoding.EncodeToString(message), "--MessageType", "RAW").ok(t, &signed)
		sig, err := base64.StdEncoding.DecodeString(signed.SignatureValue)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(sub, "sig.bin"), sig)
		args := []string{"dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin"}
		if alg == "RSA_PSS_SHA_256" {
			args = append(args, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1")
		}
		if out := openssl(t, sub, append(args, "msg.txt")...); !strings.Contains(out, "Verified OK") {
			t.Fatalf("%s: openssl dgst -verify: %s", alg, out)
		}
		var verified struct{ SignatureValid bool }
		c.Ctl(n, "CertificatePublicKeyVerify", "--CertificateId", created.CertificateId, "--Algorithm", alg,
			"--Message", base64.StdEncoding.EncodeToString(message), "--SignatureValue", signed.SignatureValue).ok(t, &verified)
		if !verified.SignatureValid {
			t.Errorf("%s: CertificatePublicKeyVerify says the signature is invalid", alg)
		}
	}
	if strings.HasPrefix(spec, "RSA") {
		// A signature openssl makes with another key does not verify.
		openssl(t, sub, "dgst", "-sha256", "-sign", "../ca.key", "-out", "casig.bin", "msg.txt")
		var verified struct{ SignatureValid bool }
		c.Ctl(n, "CertificatePublicKeyVerify", "--CertificateId", created.CertificateId, "--Algorithm", "RSA_PKCS1_SHA_256",
			"--Message", base64.StdEncoding.EncodeToString(message),
			"--SignatureValue", base64.StdEncoding.EncodeToString(readFile(t, filepath.Join(sub, "casig.bin")))).ok(t, &verified)
		if verified.SignatureValid {
			t.Error("a signature by the CA's key verifies with the certificate")
		}
		for alg, md := range map[string]string{"RSAES_OAEP_SHA_256": "sha256", "RSAES_OAEP_SHA_1": "sha1"} {
			plain := "openssl-encrypted " + alg + " " + randomHex(4)
			writeFile(t, filepath.Join(sub, "pt.txt"), []byte(plain))
			openssl(t, sub, "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.pem", "-pkeyopt", "rsa_padding_mode:oaep",
				"-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md, "-in", "pt.txt", "-out", "ct.bin")
			var dec struct{ Plaintext string }
			c.Ctl(n, "CertificatePrivateKeyDecrypt", "--CertificateId", created.CertificateId, "--Algorithm", alg,
				"--CiphertextBlob", base64.StdEncoding.EncodeToString(readFile(t, filepath.Join(sub, "ct.bin")))).ok(t, &dec)
			if got, _ := base64.StdEncoding.DecodeString(dec.Plaintext); string(got) != plain {
				t.Errorf("%s: decrypted %q, want %q", alg, got, plain)
			}
		}
	}

	// INACTIVE refuses the private key with the reference's error.
	c.Ctl(n, "UpdateCertificateStatus", "--CertificateId", created.CertificateId, "--Status", "INACTIVE").ok(t, nil)
	r := c.Ctl(n, "CertificatePrivateKeySign", "--CertificateId", created.CertificateId, "--Algorithm", algs[0],
		"--Message", base64.StdEncoding.EncodeToString(message))
	if code := r.serviceError(t); code != "Rejected.Disabled" {
		t.Errorf("sign with an INACTIVE certificate: %s", code)
	}
	c.Ctl(n, "DeleteCertificate", "--CertificateId", created.CertificateId).ok(t, nil)
	if code := c.Ctl(n, "GetCertificate", "--CertificateId", created.CertificateId).serviceError(t); code != "Forbidden.ResourceNotFound" {
		t.Errorf("GetCertificate after delete: %s", code)
	}
	return created.CertificateId
}
