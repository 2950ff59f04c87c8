//go:build cgo

package node

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"hash"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// Issue 13: certificates of a hardware instance. The key pair is generated
// in a token of the instance's HSM domain (the catalogue holds it wrapped
// under the domain key); the CSR is signed by the token; a CA issues the
// certificate; signatures and OAEP decryptions run in the token — also when
// asked through the node without an HSM — and check with the certificate's
// public key, in Go and with the openssl command line (dgst -verify, pkeyutl
// -encrypt); an INACTIVE certificate refuses the private key.
func TestCertificates_HSMInstance(t *testing.T) {
	c := newHSMClusterWith(t, hsmClusterOpts{}, []hsmNodeSpec{{token: "tok1", domainKey: randomKey(t)}, {}, {}}, 3)
	c.waitHSM("n1", "ok")
	inst := c.createHardwareInstance(0)
	without := c.officialSDK(2)

	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hsm test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)

	for _, spec := range []string{"RSA_2048", "EC_P256"} {
		t.Run(spec, func(t *testing.T) {
			before := keyOps(t, c.nodes[0], "tok1")
			m, resp, err := c.call(0, "CreateCertificate", map[string]string{"KeySpec": spec,
				"Subject": "CN=hsm " + spec + ",OU=kms,O=raftkms,C=DE", "DKMSInstanceId": inst})
			if err != nil {
				t.Fatalf("CreateCertificate: %v", err)
			}
			id, _ := m["CertificateId"].(string)
			csrPEM, _ := m["Csr"].(string)
			if after := keyOps(t, c.nodes[0], "tok1"); after < before+2 {
				t.Fatalf("the token ran %v key operations for a key pair and its CSR's signature", after-before)
			}
			x, ok := c.nodes[0].FSM().Certificate(id)
			if !ok || x.Key.Domain != testDomain || x.InstanceID != inst {
				t.Fatalf("the certificate's key pair is not in HSM domain %s: %+v", testDomain, x)
			}
			b, _ := pem.Decode([]byte(csrPEM))
			if b == nil {
				t.Fatalf("Csr %q", csrPEM)
			}
			csr, err := x509.ParseCertificateRequest(b.Bytes)
			if err != nil || csr.CheckSignature() != nil {
				t.Fatalf("the CSR signed by the token does not verify: %v", err)
			}
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: csr.Subject, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, caKey)
			if err != nil {
				t.Fatal(err)
			}
			cert, _ := x509.ParseCertificate(der)
			for _, n := range c.nodes {
				if err := n.FSM().WaitForIndex(ctxT(t), resp.Index); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := without.UploadCertificate(&kmssdk.UploadCertificateRequest{CertificateId: tea.String(id),
				Certificate: tea.String(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))}); err != nil {
				t.Fatalf("UploadCertificate: %v", err)
			}
			written := c.nodes[0].FSM().AppliedIndex()
			for _, n := range c.nodes {
				if err := n.FSM().WaitForIndex(ctxT(t), written); err != nil {
					t.Fatal(err)
				}
			}

			msg := []byte("signed in the token " + spec)
			digest := sha256.Sum256(msg)
			algs := []string{"ECDSA_SHA_256"}
			if spec == "RSA_2048" {
				algs = []string{"RSA_PKCS1_SHA_256", "RSA_PSS_SHA_256"}
			}
			before = keyOps(t, c.nodes[0], "tok1")
			for _, alg := range algs {
				sr, err := without.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: tea.String(id),
					Algorithm: tea.String(alg), Message: tea.String(base64.StdEncoding.EncodeToString(msg)), MessageType: tea.String("RAW")})
				if err != nil {
					t.Fatalf("%s: %v", alg, err)
				}
				sig, _ := base64.StdEncoding.DecodeString(tea.StringValue(sr.Body.SignatureValue))
				switch pub := cert.PublicKey.(type) {
				case *rsa.PublicKey:
					if alg == "RSA_PSS_SHA_256" {
						err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil)
					} else {
						err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
					}
				case *ecdsa.PublicKey:
					if !ecdsa.VerifyASN1(pub, digest[:], sig) {
						err = errBadSignature
					}
				}
				if err != nil {
					t.Fatalf("%s: the token's signature does not verify with the certificate: %v", alg, err)
				}
			}
			if spec == "RSA_2048" {
				for alg, h := range map[string]func() hash.Hash{"RSAES_OAEP_SHA_256": sha256.New, "RSAES_OAEP_SHA_1": sha1.New} {
					ct, _ := rsa.EncryptOAEP(h(), rand.Reader, cert.PublicKey.(*rsa.PublicKey), []byte("for the token "+alg), nil)
					dr, err := without.CertificatePrivateKeyDecrypt(&kmssdk.CertificatePrivateKeyDecryptRequest{CertificateId: tea.String(id),
						Algorithm: tea.String(alg), CiphertextBlob: tea.String(base64.StdEncoding.EncodeToString(ct))})
					if err != nil {
						t.Fatalf("%s: %v", alg, err)
					}
					if pt, _ := base64.StdEncoding.DecodeString(tea.StringValue(dr.Body.Plaintext)); string(pt) != "for the token "+alg {
						t.Fatalf("%s: decrypted %q", alg, pt)
					}
				}
			}
			checkWithOpenSSL(t, without, id, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), algs, spec == "RSA_2048")
			if after := keyOps(t, c.nodes[0], "tok1"); after < before+float64(len(algs)) {
				t.Fatalf("the token ran %v operations for %d signatures", after-before, len(algs))
			}

			if _, err := without.UpdateCertificateStatus(&kmssdk.UpdateCertificateStatusRequest{CertificateId: tea.String(id), Status: tea.String("INACTIVE")}); err != nil {
				t.Fatal(err)
			}
			_, err = without.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: tea.String(id),
				Algorithm: tea.String(algs[0]), Message: tea.String(base64.StdEncoding.EncodeToString(msg))})
			wantSDKCode(t, "sign with an INACTIVE certificate", err, "Rejected.Disabled")
		})
	}
}

// checkWithOpenSSL verifies CertificatePrivateKeySign signatures with
// `openssl dgst -verify` and the certificate's public key, and (RSA)
// decrypts `openssl pkeyutl`-encrypted OAEP data with
// CertificatePrivateKeyDecrypt.
func checkWithOpenSSL(t *testing.T, cl *kmssdk.Client, id, certPEM string, algs []string, rsaKey bool) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", []byte(certPEM))
	run("x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "pub.pem")
	msg := []byte("checked by openssl")
	write("msg.txt", msg)
	for _, alg := range algs {
		sr, err := cl.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: tea.String(id),
			Algorithm: tea.String(alg), Message: tea.String(base64.StdEncoding.EncodeToString(msg)), MessageType: tea.String("RAW")})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		sig, _ := base64.StdEncoding.DecodeString(tea.StringValue(sr.Body.SignatureValue))
		write("sig.bin", sig)
		args := []string{"dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin"}
		if alg == "RSA_PSS_SHA_256" {
			args = append(args, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1")
		}
		if out := run(append(args, "msg.txt")...); !strings.Contains(out, "Verified OK") {
			t.Fatalf("%s: openssl dgst -verify: %s", alg, out)
		}
	}
	if !rsaKey {
		return
	}
	for alg, md := range map[string]string{"RSAES_OAEP_SHA_256": "sha256", "RSAES_OAEP_SHA_1": "sha1"} {
		write("pt.txt", []byte("openssl OAEP "+alg))
		run("pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.pem", "-pkeyopt", "rsa_padding_mode:oaep",
			"-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md, "-in", "pt.txt", "-out", "ct.bin")
		ct, _ := os.ReadFile(filepath.Join(dir, "ct.bin"))
		dr, err := cl.CertificatePrivateKeyDecrypt(&kmssdk.CertificatePrivateKeyDecryptRequest{CertificateId: tea.String(id),
			Algorithm: tea.String(alg), CiphertextBlob: tea.String(base64.StdEncoding.EncodeToString(ct))})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if pt, _ := base64.StdEncoding.DecodeString(tea.StringValue(dr.Body.Plaintext)); string(pt) != "openssl OAEP "+alg {
			t.Fatalf("%s: decrypted %q", alg, pt)
		}
	}
}

type sigError string

func (e sigError) Error() string { return string(e) }

const errBadSignature = sigError("the ECDSA signature does not verify")
