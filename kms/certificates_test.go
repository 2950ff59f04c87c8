package kms

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// issueFor signs x's CSR with a throwaway CA (Go's x509) and uploads the
// certificate, valid around the service clock's now.
func (e *svcEnv) issueFor(t *testing.T, x *fsm.Certificate) string {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := e.clock.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kms test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	csr, err := x509.ParseCertificateRequest(x.CSR)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR: %v", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject,
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}, ca, csr.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if _, err := e.svc.UploadCertificate(bg, e.caller, x.ID, p, ""); err != nil {
		t.Fatalf("UploadCertificate: %v", err)
	}
	return p
}

// The key pair is wrapped under the root key as a key version is (the
// certificate's id and the pair's id as associated data); the catalogue
// has no plaintext private key.
func TestCertificates_KeyPairWrappedUnderTheRootKey(t *testing.T) {
	e := newSvcEnv(t)
	x, _, err := e.svc.CreateCertificate(bg, e.caller, CertificateInput{KeySpec: "EC_P256", Subject: "CN=a,OU=b,O=c,C=CN"})
	if err != nil {
		t.Fatal(err)
	}
	if x.Key.Domain != "" || x.Key.KeyID != x.ID {
		t.Fatalf("key pair %+v", x.Key)
	}
	material, err := e.root.Unwrap(x.Key.WrappedMaterial, kcrypto.MaterialAAD(x.ID, x.Key.ID))
	if err != nil {
		t.Fatalf("unwrap under the root key: %v", err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(material)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(priv.(*ecdsa.PrivateKey).Public())
	if string(spki) != string(x.Key.PublicKey) {
		t.Fatal("the wrapped private key is not the pair's")
	}
	var snap bytes.Buffer
	if _, err := e.svc.SaveSnapshot(bg, e.caller, &snap); err != nil {
		t.Fatal(err)
	}
	scalar := priv.(*ecdsa.PrivateKey).D.Bytes()
	if bytes.Contains(snap.Bytes(), material) || bytes.Contains(snap.Bytes(), scalar) {
		t.Fatal("the private key is in the snapshot in plaintext")
	}
	if !bytes.Contains(snap.Bytes(), x.Key.WrappedMaterial) {
		t.Fatal("the snapshot does not hold the wrapped key pair")
	}
}

// EC_P256K: Go's x509 does not know the curve; the CSR is built and signed
// all the same, and its signature verifies with the pair's public key.
func TestCertificates_Secp256k1CSR(t *testing.T) {
	e := newSvcEnv(t)
	x, _, err := e.svc.CreateCertificate(bg, e.caller, CertificateInput{KeySpec: "EC_P256K", Subject: "CN=k,OU=b,O=c,C=CN", SANs: `["k.example.com"]`})
	if err != nil {
		t.Fatal(err)
	}
	var req signedASN1
	if _, err := asn1.Unmarshal(x.CSR, &req); err != nil {
		t.Fatal(err)
	}
	if !req.Algorithm.Algorithm.Equal(oidECDSAWithSHA256) {
		t.Fatalf("CSR algorithm %v", req.Algorithm.Algorithm)
	}
	d := sha256.Sum256(req.Data.FullBytes)
	ok, err := kcrypto.Verify("EC_P256K", kcrypto.AlgECDSASHA256, x.Key.PublicKey, d[:], req.Signature.Bytes)
	if err != nil || !ok {
		t.Fatalf("the CSR's signature does not verify: %v", err)
	}
}

func TestCertificates_Authorization(t *testing.T) {
	e := newSvcEnv(t)
	x, _, err := e.svc.CreateCertificate(bg, e.caller, CertificateInput{KeySpec: "EC_P256", Subject: "CN=a,OU=b,O=c,C=CN"})
	if err != nil {
		t.Fatal(err)
	}
	e.issueFor(t, x)
	nobody := e.mkUser(t, "nobody")
	ro := e.mkUser(t, "ro", PolicyReadOnlyAccess)
	crypto := e.mkUser(t, "crypto", PolicyCryptoUserAccess)
	full := e.mkUser(t, "full", PolicyFullAccess)
	msg := []byte("m")
	for _, tc := range []struct {
		name string
		op   func(Caller) error
		who  map[string]bool // nobody, ro, crypto, full
	}{
		{"DescribeCertificate", func(c Caller) error { _, _, err := e.svc.DescribeCertificate(bg, c, x.ID); return err },
			map[string]bool{"ro": true, "crypto": true, "full": true}},
		{"GetCertificate", func(c Caller) error { _, err := e.svc.GetCertificate(bg, c, x.ID); return err },
			map[string]bool{"ro": true, "full": true}},
		{"CertificatePrivateKeySign", func(c Caller) error {
			_, err := e.svc.CertificatePrivateKeySign(bg, c, CertificateSignInput{ID: x.ID, Algorithm: "ECDSA_SHA_256", Message: msg})
			return err
		}, map[string]bool{"crypto": true, "full": true}},
		{"CreateCertificate", func(c Caller) error {
			_, _, err := e.svc.CreateCertificate(bg, c, CertificateInput{KeySpec: "EC_P256", Subject: "CN=a,OU=b,O=c,C=CN"})
			return err
		}, map[string]bool{"full": true}},
		{"UpdateCertificateStatus", func(c Caller) error {
			_, err := e.svc.UpdateCertificateStatus(bg, c, x.ID, fsm.CertActive)
			return err
		}, map[string]bool{"full": true}},
	} {
		for name, c := range map[string]Caller{"nobody": nobody, "ro": ro, "crypto": crypto, "full": full} {
			err := tc.op(c)
			if tc.who[name] && err != nil {
				t.Errorf("%s by %s: %v", tc.name, name, err)
			}
			if !tc.who[name] {
				wantErr(t, tc.name+" by "+name, err, ErrNoPermission)
			}
		}
	}
	// Another account does not see the certificate.
	other := rootCaller("9999", "LTAI9999")
	_, _, err = e.svc.DescribeCertificate(bg, other, x.ID)
	wantErr(t, "another account", err, fsm.ErrCertificateNotFound)
}

func TestCertificates_Tags(t *testing.T) {
	e := newSvcEnv(t)
	x, _, err := e.svc.CreateCertificate(bg, e.caller, CertificateInput{KeySpec: "EC_P256", Subject: "CN=a,OU=b,O=c,C=CN"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.TagCertificate(bg, e.caller, x.ID, []Tag{{"b", "2"}, {"a", "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UntagCertificate(bg, e.caller, x.ID, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.TagCertificate(bg, e.caller, x.ID, []Tag{{"c", "3"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.svc.CertificateTags(bg, e.caller, x.ID)
	if err != nil || len(tags) != 2 || tags[0] != (Tag{"a", "1"}) || tags[1] != (Tag{"c", "3"}) {
		t.Fatalf("CertificateTags = %v, %v", tags, err)
	}
	_, err = e.svc.TagCertificate(bg, e.caller, x.ID, nil)
	wantErr(t, "no tags", err, ErrMissingParameter)
	_, err = e.svc.CertificateTags(bg, e.mkUser(t, "nobody"), x.ID)
	wantErr(t, "tags read by nobody", err, ErrNoPermission)
}

func TestCertificates_SubjectAndSANs(t *testing.T) {
	for in, want := range map[string]string{
		"CN=app,OU=kms,O=example,C=CN":                             "CN=app,OU=kms,O=example,C=CN",
		`{"cn":"app","OU":"kms","O":"a, b","C":"DE","L":"Berlin"}`: `CN=app,OU=kms,O=a\, b,L=Berlin,C=DE`,
		`CN=a\,b, OU=kms , O=x, C=US, ST=NY`:                       `CN=a\,b,OU=kms,O=x,ST=NY,C=US`,
	} {
		attrs, err := parseSubject(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := subjectDN(attrs); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "CN=a", "CN=a,OU=b,O=c,C=CHN", "CN=a,OU=b,O=c,C=CN,CN=d", "CN=a,OU=b,O=c,C=CN,E=x", "{", "garbage"} {
		if _, err := parseSubject(bad); err == nil {
			t.Errorf("subject %q accepted", bad)
		}
	}
	for in, n := range map[string]int{"": 0, `["a.example.com","10.0.0.1","ops@example.com"]`: 3, `{"DNSNames":["a","b"],"IP":"10.0.0.2"}`: 3} {
		got, err := parseSANs(in)
		if err != nil || len(got) != n {
			t.Errorf("SANs %s = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{`"a"`, `[""]`, `["a b"]`, `{"x":1}`, `["1","2","3","4","5","6","7","8","9","10","11"]`} {
		if _, err := parseSANs(bad); err == nil {
			t.Errorf("SANs %s accepted", bad)
		}
	}
}

// Expired or not yet valid certificates refuse the private key; the
// public key still works.
func TestCertificates_Validity(t *testing.T) {
	e := newSvcEnv(t)
	x, _, err := e.svc.CreateCertificate(bg, e.caller, CertificateInput{KeySpec: "RSA_2048", Subject: "CN=a,OU=b,O=c,C=CN"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CertificatePublicKeyEncrypt(bg, e.caller, CertificateCryptInput{ID: x.ID, Algorithm: "RSAES_OAEP_SHA_256", Data: []byte("x")})
	wantErr(t, "encrypt before the upload", err, fsm.ErrCertificateStatus)
	_, err = e.svc.UploadCertificate(bg, e.caller, x.ID, strings.Repeat("A", MaxCertificatePEM+1), "")
	wantErr(t, "a certificate over 16 KiB", err, ErrInvalidParameter)
	_, err = e.svc.UploadCertificate(bg, e.caller, x.ID, "x", strings.Repeat("A", MaxCertificateChainPEM+1))
	wantErr(t, "a chain over 64 KiB", err, ErrInvalidParameter)
	e.issueFor(t, x)
	sign := func() error {
		_, err := e.svc.CertificatePrivateKeySign(bg, e.caller, CertificateSignInput{ID: x.ID, Algorithm: "RSA_PKCS1_SHA_256", Message: []byte("m")})
		return err
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	wantErr(t, "sign after NotAfter", sign(), fsm.ErrCertificateExpired)
	ct, err := e.svc.CertificatePublicKeyEncrypt(bg, e.caller, CertificateCryptInput{ID: x.ID, Algorithm: "RSAES_OAEP_SHA_256", Data: []byte("x")})
	if err != nil {
		t.Fatalf("encrypt with an expired certificate: %v", err)
	}
	_, err = e.svc.CertificatePrivateKeyDecrypt(bg, e.caller, CertificateCryptInput{ID: x.ID, Algorithm: "RSAES_OAEP_SHA_256", Data: ct})
	wantErr(t, "decrypt after NotAfter", err, fsm.ErrCertificateExpired)
}
