package api_test

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
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// Certificates through the official SDK (kms-20160120/v3): the ten
// actions, every answer field of the SDK's models, a CA in Go issuing the
// certificate for the CSR, and the refusals with their codes.

// testCA is a self-signed CA made with crypto/x509.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T, now time.Time) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA", Organization: []string{"raftkms"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue signs a CSR (PEM), valid from notBefore to notAfter, after checking
// the CSR's own signature.
func (ca *testCA) issue(t *testing.T, csrPEM string, serial int64, notBefore, notAfter time.Time) string {
	t.Helper()
	b, _ := pem.Decode([]byte(csrPEM))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("Csr is not a PEM CERTIFICATE REQUEST: %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatalf("parse CSR: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("the CSR's signature does not verify: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: csr.Subject, DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses,
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestSDK_Certificates(t *testing.T) {
	clock := newFakeClock()
	tn := startClockNode(t, clock)
	c := newSDKClient(t, tn, "")
	covered := map[string]bool{}
	step := func(action string, err error, body any, optional ...string) {
		t.Helper()
		covered[action] = true
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		requireSet(t, body, optional...)
	}
	now := clock.Now()
	ca := newTestCA(t, now)

	// CreateCertificate: the SDK sends SubjectAlternativeNames as a JSON object.
	cr, err := c.CreateCertificate(&kmssdk.CreateCertificateRequest{
		KeySpec: tea.String("RSA_2048"), Subject: tea.String("CN=app,OU=kms,O=example,C=CN,ST=Zhejiang,L=Hangzhou"),
		SubjectAlternativeNames: map[string]any{"DNSNames": []string{"app.example.com", "10.0.0.7"}},
		ExportablePrivateKey:    tea.Bool(false),
	})
	step("CreateCertificate", err, cr.Body)
	id := tea.StringValue(cr.Body.CertificateId)
	if want := "acs:kms:local:" + tn.AccountID + ":certificate/" + id; tea.StringValue(cr.Body.Arn) != want {
		t.Errorf("Arn %q, want %q", tea.StringValue(cr.Body.Arn), want)
	}
	b, _ := pem.Decode([]byte(tea.StringValue(cr.Body.Csr)))
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "app" || csr.Subject.Country[0] != "CN" || csr.Subject.Province[0] != "Zhejiang" ||
		len(csr.DNSNames) != 1 || csr.DNSNames[0] != "app.example.com" || len(csr.IPAddresses) != 1 {
		t.Errorf("CSR subject %v, DNS %v, IP %v", csr.Subject, csr.DNSNames, csr.IPAddresses)
	}

	// Before the upload: described PENDING, and no private-key operation.
	dc, err := c.DescribeCertificate(&kmssdk.DescribeCertificateRequest{CertificateId: tea.String(id)})
	if err != nil || tea.StringValue(dc.Body.Status) != "PENDING" {
		t.Fatalf("DescribeCertificate before upload: %v %v", err, dc)
	}
	msg := []byte("the message to sign")
	_, err = c.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: tea.String(id),
		Algorithm: tea.String("RSA_PKCS1_SHA_256"), Message: tea.String(base64.StdEncoding.EncodeToString(msg)), MessageType: tea.String("RAW")})
	sdkErr(t, err, 409, "Rejected.Disabled")

	// A certificate for another key pair is refused.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "app"}}, other)
	_, err = c.UploadCertificate(&kmssdk.UploadCertificateRequest{CertificateId: tea.String(id),
		Certificate: tea.String(ca.issue(t, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: otherCSR})), 9, now, now.Add(time.Hour)))})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.UploadCertificate(&kmssdk.UploadCertificateRequest{CertificateId: tea.String(id), Certificate: tea.String("not PEM")})
	sdkErr(t, err, 400, "InvalidParameter")

	certPEM := ca.issue(t, tea.StringValue(cr.Body.Csr), 0x1234, now.Add(-time.Minute), now.Add(24*time.Hour))
	up, err := c.UploadCertificate(&kmssdk.UploadCertificateRequest{CertificateId: tea.String(id),
		Certificate: tea.String(certPEM), CertificateChain: tea.String(ca.pem)})
	step("UploadCertificate", err, up.Body)
	_, err = c.UploadCertificate(&kmssdk.UploadCertificateRequest{CertificateId: tea.String(id), Certificate: tea.String(certPEM)})
	sdkErr(t, err, 409, "Rejected.Disabled")

	gc, err := c.GetCertificate(&kmssdk.GetCertificateRequest{CertificateId: tea.String(id)})
	step("GetCertificate", err, gc.Body)
	if tea.StringValue(gc.Body.Certificate) != certPEM || tea.StringValue(gc.Body.CertificateChain) != ca.pem ||
		tea.StringValue(gc.Body.Csr) != tea.StringValue(cr.Body.Csr) || tea.StringValue(gc.Body.CertificateId) != id {
		t.Errorf("GetCertificate %v", gc.Body)
	}

	dc, err = c.DescribeCertificate(&kmssdk.DescribeCertificateRequest{CertificateId: tea.String(id)})
	step("DescribeCertificate", err, dc.Body, "Tags")
	cert, _ := x509.ParseCertificate(func() []byte { b, _ := pem.Decode([]byte(certPEM)); return b.Bytes }())
	spki, _ := x509.MarshalPKIXPublicKey(cert.PublicKey)
	d := dc.Body
	// No SKI extension in the certificate: RFC 5280's method (1), the
	// SHA-1 of the subjectPublicKey bits.
	skiSum := sha1.Sum(x509.MarshalPKCS1PublicKey(cert.PublicKey.(*rsa.PublicKey)))
	if len(cert.SubjectKeyId) != 0 {
		t.Fatal("the test CA put a SubjectKeyIdentifier in the certificate")
	}
	for name, got := range map[string][2]string{
		"Status":               {tea.StringValue(d.Status), "ACTIVE"},
		"KeySpec":              {tea.StringValue(d.KeySpec), "RSA_2048"},
		"Serial":               {tea.StringValue(d.Serial), "1234"},
		"Subject":              {tea.StringValue(d.Subject), cert.Subject.String()},
		"Issuer":               {tea.StringValue(d.Issuer), ca.cert.Subject.String()},
		"NotBefore":            {tea.StringValue(d.NotBefore), isoDate(now.Add(-time.Minute))},
		"NotAfter":             {tea.StringValue(d.NotAfter), isoDate(now.Add(24 * time.Hour))},
		"SignatureAlgorithm":   {tea.StringValue(d.SignatureAlgorithm), "ECDSAWithSHA256"},
		"SubjectPublicKey":     {tea.StringValue(d.SubjectPublicKey), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))},
		"SubjectKeyIdentifier": {tea.StringValue(d.SubjectKeyIdentifier), hex.EncodeToString(skiSum[:])},
		"CreatedAt":            {tea.StringValue(d.CreatedAt), isoDate(now)},
	} {
		if got[0] != got[1] {
			t.Errorf("DescribeCertificate %s = %q, want %q", name, got[0], got[1])
		}
	}
	if tea.BoolValue(d.ExportablePrivateKey) || strings.Join(tea.StringSliceValue(d.SubjectAlternativeNames), ",") != "app.example.com,10.0.0.7" {
		t.Errorf("DescribeCertificate ExportablePrivateKey %v, SANs %v", tea.BoolValue(d.ExportablePrivateKey), tea.StringSliceValue(d.SubjectAlternativeNames))
	}

	// Sign (RAW and DIGEST, PKCS#1 and PSS), checked with the certificate's key.
	digest := sha256.Sum256(msg)
	pub := cert.PublicKey.(*rsa.PublicKey)
	for _, tc := range []struct{ alg, typ, message string }{
		{"RSA_PKCS1_SHA_256", "RAW", base64.StdEncoding.EncodeToString(msg)},
		{"RSA_PKCS1_SHA_256", "DIGEST", base64.StdEncoding.EncodeToString(digest[:])},
		{"RSA_PSS_SHA_256", "RAW", base64.StdEncoding.EncodeToString(msg)},
	} {
		sr, err := c.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: tea.String(id),
			Algorithm: tea.String(tc.alg), Message: tea.String(tc.message), MessageType: tea.String(tc.typ)})
		step("CertificatePrivateKeySign", err, sr.Body)
		sig, _ := base64.StdEncoding.DecodeString(tea.StringValue(sr.Body.SignatureValue))
		if tc.alg == "RSA_PSS_SHA_256" {
			err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil)
		} else {
			err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
		}
		if err != nil {
			t.Errorf("%s %s: the signature does not verify with the certificate: %v", tc.alg, tc.typ, err)
		}
		vr, err := c.CertificatePublicKeyVerify(&kmssdk.CertificatePublicKeyVerifyRequest{CertificateId: tea.String(id),
			Algorithm: tea.String(tc.alg), Message: tea.String(tc.message), MessageType: tea.String(tc.typ), SignatureValue: sr.Body.SignatureValue})
		step("CertificatePublicKeyVerify", err, vr.Body)
		if !tea.BoolValue(vr.Body.SignatureValid) {
			t.Errorf("%s %s: CertificatePublicKeyVerify says invalid", tc.alg, tc.typ)
		}
		vr, err = c.CertificatePublicKeyVerify(&kmssdk.CertificatePublicKeyVerifyRequest{CertificateId: tea.String(id),
			Algorithm: tea.String(tc.alg), Message: tea.String(base64.StdEncoding.EncodeToString([]byte("another message"))), MessageType: tea.String("RAW"), SignatureValue: sr.Body.SignatureValue})
		if err != nil || tea.BoolValue(vr.Body.SignatureValid) {
			t.Errorf("%s: a signature over another message verifies: %v", tc.alg, err)
		}
	}
	_, err = c.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: tea.String(id),
		Algorithm: tea.String("ECDSA_SHA_256"), Message: tea.String(base64.StdEncoding.EncodeToString(msg))})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: tea.String(id),
		Algorithm: tea.String("RSA_PKCS1_SHA_256"), Message: tea.String(base64.StdEncoding.EncodeToString(msg)), MessageType: tea.String("DIGEST")})
	sdkErr(t, err, 400, "InvalidParameter")

	// Encrypt and decrypt, both OAEP hashes; data encrypted by a third party decrypts.
	for _, alg := range []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"} {
		er, err := c.CertificatePublicKeyEncrypt(&kmssdk.CertificatePublicKeyEncryptRequest{CertificateId: tea.String(id),
			Algorithm: tea.String(alg), Plaintext: tea.String(base64.StdEncoding.EncodeToString([]byte("hello " + alg)))})
		step("CertificatePublicKeyEncrypt", err, er.Body)
		dr, err := c.CertificatePrivateKeyDecrypt(&kmssdk.CertificatePrivateKeyDecryptRequest{CertificateId: tea.String(id),
			Algorithm: tea.String(alg), CiphertextBlob: er.Body.CiphertextBlob})
		step("CertificatePrivateKeyDecrypt", err, dr.Body)
		if pt, _ := base64.StdEncoding.DecodeString(tea.StringValue(dr.Body.Plaintext)); string(pt) != "hello "+alg {
			t.Errorf("%s: decrypted %q", alg, pt)
		}
	}
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("from outside"), nil)
	dr, err := c.CertificatePrivateKeyDecrypt(&kmssdk.CertificatePrivateKeyDecryptRequest{CertificateId: tea.String(id),
		Algorithm: tea.String("RSAES_OAEP_SHA_256"), CiphertextBlob: tea.String(base64.StdEncoding.EncodeToString(ct))})
	if pt, _ := base64.StdEncoding.DecodeString(tea.StringValue(dr.Body.Plaintext)); err != nil || string(pt) != "from outside" {
		t.Errorf("decrypt of Go-encrypted OAEP data: %v %q", err, pt)
	}

	// INACTIVE refuses the private key, not the public one; ACTIVE again works.
	us, err := c.UpdateCertificateStatus(&kmssdk.UpdateCertificateStatusRequest{CertificateId: tea.String(id), Status: tea.String("INACTIVE")})
	step("UpdateCertificateStatus", err, us.Body)
	signRaw := func() error {
		_, err := c.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: tea.String(id),
			Algorithm: tea.String("RSA_PKCS1_SHA_256"), Message: tea.String(base64.StdEncoding.EncodeToString(msg))})
		return err
	}
	sdkErr(t, signRaw(), 409, "Rejected.Disabled")
	_, err = c.CertificatePrivateKeyDecrypt(&kmssdk.CertificatePrivateKeyDecryptRequest{CertificateId: tea.String(id),
		Algorithm: tea.String("RSAES_OAEP_SHA_256"), CiphertextBlob: tea.String(base64.StdEncoding.EncodeToString(ct))})
	sdkErr(t, err, 409, "Rejected.Disabled")
	if _, err := c.CertificatePublicKeyEncrypt(&kmssdk.CertificatePublicKeyEncryptRequest{CertificateId: tea.String(id),
		Algorithm: tea.String("RSAES_OAEP_SHA_256"), Plaintext: tea.String("aGk=")}); err != nil {
		t.Errorf("encrypt with an INACTIVE certificate: %v", err)
	}
	_, err = c.UpdateCertificateStatus(&kmssdk.UpdateCertificateStatusRequest{CertificateId: tea.String(id), Status: tea.String("BOGUS")})
	sdkErr(t, err, 400, "InvalidParameter")
	if _, err := c.UpdateCertificateStatus(&kmssdk.UpdateCertificateStatusRequest{CertificateId: tea.String(id), Status: tea.String("ACTIVE")}); err != nil {
		t.Fatal(err)
	}
	if err := signRaw(); err != nil {
		t.Errorf("sign after ACTIVE again: %v", err)
	}

	// Expired: refused with Rejected.Expired.
	clock.Advance(25 * time.Hour)
	sdkErr(t, signRaw(), 409, "Rejected.Expired")

	// REVOKED is final.
	if _, err := c.UpdateCertificateStatus(&kmssdk.UpdateCertificateStatusRequest{CertificateId: tea.String(id), Status: tea.String("REVOKED")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateCertificateStatus(&kmssdk.UpdateCertificateStatusRequest{CertificateId: tea.String(id), Status: tea.String("ACTIVE")})
	sdkErr(t, err, 409, "Rejected.Disabled")

	dl, err := c.DeleteCertificate(&kmssdk.DeleteCertificateRequest{CertificateId: tea.String(id)})
	step("DeleteCertificate", err, dl.Body)
	_, err = c.DescribeCertificate(&kmssdk.DescribeCertificateRequest{CertificateId: tea.String(id)})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")
	_, err = c.GetCertificate(&kmssdk.GetCertificateRequest{CertificateId: tea.String("no-such-certificate")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")

	for _, a := range []string{"CreateCertificate", "UploadCertificate", "GetCertificate", "DescribeCertificate", "UpdateCertificateStatus",
		"DeleteCertificate", "CertificatePrivateKeySign", "CertificatePublicKeyVerify", "CertificatePublicKeyEncrypt", "CertificatePrivateKeyDecrypt"} {
		if !covered[a] {
			t.Errorf("%s not covered", a)
		}
	}
}

// EC_P256: the CSR is an ECDSA request, ECDSA_SHA_256 signatures verify
// with the certificate's key, and OAEP is refused.
func TestSDK_CertificatesEC(t *testing.T) {
	clock := newFakeClock()
	tn := startClockNode(t, clock)
	c := newSDKClient(t, tn, "")
	now := clock.Now()
	ca := newTestCA(t, now)
	cr, err := c.CreateCertificate(&kmssdk.CreateCertificateRequest{KeySpec: tea.String("EC_P256"),
		Subject: tea.String(`{"CN":"ec app","OU":"kms","O":"example, inc.","C":"DE"}`)})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.Body.CertificateId
	certPEM := ca.issue(t, tea.StringValue(cr.Body.Csr), 7, now.Add(-time.Minute), now.Add(time.Hour))
	if _, err := c.UploadCertificate(&kmssdk.UploadCertificateRequest{CertificateId: id, Certificate: tea.String(certPEM)}); err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(certPEM))
	cert, _ := x509.ParseCertificate(b.Bytes)
	if cert.Subject.Organization[0] != "example, inc." {
		t.Errorf("subject %v", cert.Subject)
	}
	msg := []byte("ec message")
	sr, err := c.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: id,
		Algorithm: tea.String("ECDSA_SHA_256"), Message: tea.String(base64.StdEncoding.EncodeToString(msg)), MessageType: tea.String("RAW")})
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(tea.StringValue(sr.Body.SignatureValue))
	d := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), d[:], sig) {
		t.Error("the ECDSA signature does not verify with the certificate")
	}
	_, err = c.CertificatePublicKeyEncrypt(&kmssdk.CertificatePublicKeyEncryptRequest{CertificateId: id,
		Algorithm: tea.String("RSAES_OAEP_SHA_256"), Plaintext: tea.String("aGk=")})
	sdkErr(t, err, 400, "InvalidParameter")
}

// CreateCertificate's inputs are refused with InvalidParameter or
// MissingParameter, and nothing is created.
func TestCertificates_Refusals(t *testing.T) {
	tn := startNode(t)
	c := newSDKClient(t, tn, "")
	for _, tc := range []struct {
		name    string
		req     *kmssdk.CreateCertificateRequest
		code    string
		message string
	}{
		{"no key spec", &kmssdk.CreateCertificateRequest{Subject: tea.String("CN=a,OU=b,O=c,C=CN")}, "MissingParameter", ""},
		{"bad key spec", &kmssdk.CreateCertificateRequest{KeySpec: tea.String("Aliyun_AES_256"), Subject: tea.String("CN=a,OU=b,O=c,C=CN")}, "InvalidParameter", ""},
		{"no subject", &kmssdk.CreateCertificateRequest{KeySpec: tea.String("EC_P256")}, "MissingParameter", ""},
		{"no OU", &kmssdk.CreateCertificateRequest{KeySpec: tea.String("EC_P256"), Subject: tea.String("CN=a,O=c,C=CN")}, "InvalidParameter", "OU"},
		{"bad country", &kmssdk.CreateCertificateRequest{KeySpec: tea.String("EC_P256"), Subject: tea.String("CN=a,OU=b,O=c,C=China")}, "InvalidParameter", "C"},
		{"unknown attribute", &kmssdk.CreateCertificateRequest{KeySpec: tea.String("EC_P256"), Subject: tea.String("CN=a,OU=b,O=c,C=CN,X=y")}, "InvalidParameter", "X"},
		{"eleven SANs", &kmssdk.CreateCertificateRequest{KeySpec: tea.String("EC_P256"), Subject: tea.String("CN=a,OU=b,O=c,C=CN"),
			SubjectAlternativeNames: map[string]any{"DNSNames": strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")}}, "InvalidParameter", "10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateCertificate(tc.req)
			sdkErr(t, err, 400, tc.code)
		})
	}
	if n := len(tn.FSM().Certificates(tn.AccountID)); n != 0 {
		t.Errorf("%d certificates after refusals", n)
	}
}

// Every certificate answer decodes strictly into the SDK's response model:
// no field the SDK does not know.
func TestCertificates_AnswersAreTheSDKsModels(t *testing.T) {
	clock := newFakeClock()
	tn := startClockNode(t, clock)
	ca := newTestCA(t, clock.Now())
	var cr kmssdk.CreateCertificateResponseBody
	decodeStrict(t, tn.must(t, "CreateCertificate", map[string]string{"KeySpec": "RSA_2048", "Subject": "CN=a,OU=b,O=c,C=CN",
		"SubjectAlternativeNames": `["a.example.com"]`}, nil).Body, &cr)
	id := tea.StringValue(cr.CertificateId)
	var dp kmssdk.DescribeCertificateResponseBody
	decodeStrict(t, tn.must(t, "DescribeCertificate", map[string]string{"CertificateId": id}, nil).Body, &dp)
	certPEM := ca.issue(t, tea.StringValue(cr.Csr), 3, clock.Now().Add(-time.Minute), clock.Now().Add(time.Hour))
	var up kmssdk.UploadCertificateResponseBody
	decodeStrict(t, tn.must(t, "UploadCertificate", map[string]string{"CertificateId": id, "Certificate": certPEM, "CertificateChain": ca.pem}, nil).Body, &up)
	var gc kmssdk.GetCertificateResponseBody
	decodeStrict(t, tn.must(t, "GetCertificate", map[string]string{"CertificateId": id}, nil).Body, &gc)
	var dc kmssdk.DescribeCertificateResponseBody
	decodeStrict(t, tn.must(t, "DescribeCertificate", map[string]string{"CertificateId": id}, nil).Body, &dc)
	msg := base64.StdEncoding.EncodeToString([]byte("m"))
	var sr kmssdk.CertificatePrivateKeySignResponseBody
	decodeStrict(t, tn.must(t, "CertificatePrivateKeySign", map[string]string{"CertificateId": id, "Algorithm": "RSA_PKCS1_SHA_256", "Message": msg}, nil).Body, &sr)
	var vr kmssdk.CertificatePublicKeyVerifyResponseBody
	decodeStrict(t, tn.must(t, "CertificatePublicKeyVerify", map[string]string{"CertificateId": id, "Algorithm": "RSA_PKCS1_SHA_256", "Message": msg,
		"SignatureValue": tea.StringValue(sr.SignatureValue)}, nil).Body, &vr)
	var er kmssdk.CertificatePublicKeyEncryptResponseBody
	decodeStrict(t, tn.must(t, "CertificatePublicKeyEncrypt", map[string]string{"CertificateId": id, "Algorithm": "RSAES_OAEP_SHA_1", "Plaintext": msg}, nil).Body, &er)
	var dr kmssdk.CertificatePrivateKeyDecryptResponseBody
	decodeStrict(t, tn.must(t, "CertificatePrivateKeyDecrypt", map[string]string{"CertificateId": id, "Algorithm": "RSAES_OAEP_SHA_1",
		"CiphertextBlob": tea.StringValue(er.CiphertextBlob)}, nil).Body, &dr)
	var us kmssdk.UpdateCertificateStatusResponseBody
	decodeStrict(t, tn.must(t, "UpdateCertificateStatus", map[string]string{"CertificateId": id, "Status": "INACTIVE"}, nil).Body, &us)
	var dl kmssdk.DeleteCertificateResponseBody
	decodeStrict(t, tn.must(t, "DeleteCertificate", map[string]string{"CertificateId": id}, nil).Body, &dl)
	if !tea.BoolValue(vr.SignatureValid) || tea.StringValue(dr.Plaintext) != msg || tea.StringValue(dp.Status) != "PENDING" ||
		tea.StringValue(dc.Status) != "ACTIVE" || tea.StringValue(gc.Certificate) != certPEM {
		t.Errorf("answers: verify %v, decrypt %q, status %q then %q", tea.BoolValue(vr.SignatureValid), tea.StringValue(dr.Plaintext),
			tea.StringValue(dp.Status), tea.StringValue(dc.Status))
	}
}
