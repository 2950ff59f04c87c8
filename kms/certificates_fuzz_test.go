package kms

import (
	"testing"
)

// FuzzCertificateInputs feeds arbitrary text to the parsers of what a
// client sends for certificates — the subject, the alternative names, PEM
// certificates and DER — and requires an answer (a value or an error),
// never a panic; a subject or names accepted make a CSR.
func FuzzCertificateInputs(f *testing.F) {
	f.Add("CN=a,OU=b,O=c,C=CN", `["a.example.com","10.0.0.1"]`, "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", []byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add(`{"CN":"a","OU":"b","O":"c","C":"DE"}`, `{"DNSNames":["x"]}`, "", []byte{})
	f.Add(`CN=a\,b,OU=b,O=c,C=CN,ST=\`, `[1]`, "garbage", []byte{0x30, 0x80})
	f.Add("CN=\xff,OU=b,O=c,C=CN", `["\u00e9.example.com"]`, "", []byte{})
	spki := []byte{0x30, 0x00}
	f.Fuzz(func(t *testing.T, subject, sans, pemText string, der []byte) {
		attrs, errSubject := parseSubject(subject)
		names, errSANs := parseSANs(sans)
		if errSubject == nil && errSANs == nil {
			if _, _, _, err := csrToBeSigned("EC_P256", attrs, names, spki); err != nil {
				t.Fatalf("accepted subject %q and names %q make no CSR: %v", subject, sans, err)
			}
		}
		_, _ = parsePEMCertificates(FieldCertificate, pemText)
		_, _ = ParseCertificateDER(der)
	})
}
