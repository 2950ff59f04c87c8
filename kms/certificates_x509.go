package kms

import (
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	kcrypto "github.com/raftkms/raftkms/crypto"
)

// X.509 for certificates, with encoding/asn1 rather than crypto/x509:
// Go's x509 knows neither secp256k1 public keys (EC_P256K) nor signers
// whose key lives elsewhere, so the CSR is built and the uploaded
// certificate read here, the same way for every key spec.

var (
	oidExtensionRequest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidSHA256WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidECDSAWithSHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

// signatureAlgorithmNames names the signature algorithms of issued
// certificates as Go's x509 does.
var signatureAlgorithmNames = map[string]string{
	"1.2.840.113549.1.1.5":  "SHA1WithRSA",
	"1.2.840.113549.1.1.11": "SHA256WithRSA",
	"1.2.840.113549.1.1.12": "SHA384WithRSA",
	"1.2.840.113549.1.1.13": "SHA512WithRSA",
	"1.2.840.113549.1.1.10": "RSASSA-PSS",
	"1.2.840.10045.4.1":     "ECDSAWithSHA1",
	"1.2.840.10045.4.3.2":   "ECDSAWithSHA256",
	"1.2.840.10045.4.3.3":   "ECDSAWithSHA384",
	"1.2.840.10045.4.3.4":   "ECDSAWithSHA512",
	"1.2.156.10197.1.501":   "SM2WithSM3",
}

// subjectAttributes are the attributes of a Subject, as the reference
// names them (CN, C, O, OU required; ST, L optional).
var subjectAttributes = []struct {
	name     string
	oid      asn1.ObjectIdentifier
	required bool
}{
	{"C", asn1.ObjectIdentifier{2, 5, 4, 6}, true},
	{"ST", asn1.ObjectIdentifier{2, 5, 4, 8}, false},
	{"L", asn1.ObjectIdentifier{2, 5, 4, 7}, false},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}, true},
	{"OU", asn1.ObjectIdentifier{2, 5, 4, 11}, true},
	{"CN", asn1.ObjectIdentifier{2, 5, 4, 3}, true},
}

// MaxCertificateSANs is the reference's limit on SubjectAlternativeNames.
const MaxCertificateSANs = 10

// parseSubject reads a Subject: an RFC 2253 distinguished name
// ("CN=app,OU=kms,O=example,C=CN", the reference's form) or a JSON object
// of the same attributes ({"CN":"app","OU":"kms","O":"example","C":"CN"}).
// It returns the attributes by name.
func parseSubject(text string) (map[string]string, error) {
	attrs := map[string]string{}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, missing(FieldCertificateSubject)
	}
	if strings.HasPrefix(text, "{") {
		var m map[string]string
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			return nil, invalid(FieldCertificateSubject, "a JSON object of strings (CN, C, O, OU, ST, L) or a distinguished name like CN=app,OU=kms,O=example,C=CN")
		}
		for k, v := range m {
			attrs[strings.ToUpper(strings.TrimSpace(k))] = v
		}
	} else {
		for _, rdn := range splitDN(text) {
			k, v, ok := strings.Cut(rdn, "=")
			if !ok {
				return nil, invalid(FieldCertificateSubject, fmt.Sprintf("%q is not attribute=value", shorten(rdn)))
			}
			k = strings.ToUpper(strings.TrimSpace(k))
			if _, dup := attrs[k]; dup {
				return nil, invalid(FieldCertificateSubject, k+" appears twice")
			}
			attrs[k] = strings.TrimSpace(v)
		}
	}
	known := map[string]bool{}
	for _, a := range subjectAttributes {
		known[a.name] = true
		v, ok := attrs[a.name]
		if a.required && (!ok || v == "") {
			return nil, invalid(FieldCertificateSubject, a.name+" is required (CN, C, O and OU are)")
		}
		if len([]rune(v)) > 64 {
			return nil, invalid(FieldCertificateSubject, a.name+" is longer than 64 characters")
		}
		if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return nil, invalid(FieldCertificateSubject, a.name+" must be UTF-8 text without control characters")
		}
	}
	for k := range attrs {
		if !known[k] {
			return nil, invalid(FieldCertificateSubject, fmt.Sprintf("unknown attribute %q (CN, C, O, OU, ST, L)", shorten(k)))
		}
	}
	if c := attrs["C"]; len(c) != 2 {
		return nil, invalid(FieldCertificateSubject, "C is a two-letter ISO 3166-1 country code")
	}
	return attrs, nil
}

// splitDN splits a distinguished name at the commas not escaped with a
// backslash, and unescapes the parts.
func splitDN(dn string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(dn); i++ {
		switch ch := dn[i]; {
		case ch == '\\' && i+1 < len(dn):
			i++
			cur.WriteByte(dn[i])
		case ch == ',':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	return append(parts, cur.String())
}

// subjectDN writes attributes back as a distinguished name (CN first).
func subjectDN(attrs map[string]string) string {
	var parts []string
	for i := len(subjectAttributes) - 1; i >= 0; i-- {
		a := subjectAttributes[i]
		if v := attrs[a.name]; v != "" {
			v = strings.NewReplacer(`\`, `\\`, ",", `\,`, "+", `\+`, `"`, `\"`, "<", `\<`, ">", `\>`, ";", `\;`).Replace(v)
			parts = append(parts, a.name+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

// marshalSubject encodes attributes as an X.501 Name (C first, CN last),
// values as UTF8String (C as PrintableString).
func marshalSubject(attrs map[string]string) ([]byte, error) {
	var rdns pkix.RDNSequence
	for _, a := range subjectAttributes {
		v := attrs[a.name]
		if v == "" {
			continue
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: a.oid, Value: v}})
	}
	return asn1.Marshal(rdns)
}

// parseSANs reads SubjectAlternativeNames: a JSON array of names, or (the
// SDK sends a map) a JSON object whose values are names or arrays of
// names. A name is an IP address, an e-mail address (with @) or a DNS
// name.
func parseSANs(text string) ([]string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	var names []string
	var list []string
	if err := json.Unmarshal([]byte(text), &list); err == nil {
		names = list
	} else {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(text), &obj); err != nil {
			return nil, invalid(FieldCertificateSANs, `a JSON array of names like ["a.example.com","10.0.0.1"]`)
		}
		for _, raw := range obj {
			var one string
			if json.Unmarshal(raw, &one) == nil {
				names = append(names, one)
				continue
			}
			var many []string
			if err := json.Unmarshal(raw, &many); err != nil {
				return nil, invalid(FieldCertificateSANs, "the values of the JSON object are names or arrays of names")
			}
			names = append(names, many...)
		}
	}
	if len(names) > MaxCertificateSANs {
		return nil, invalid(FieldCertificateSANs, fmt.Sprintf("at most %d names", MaxCertificateSANs))
	}
	for _, n := range names {
		if n == "" || len(n) > 253 || strings.IndexFunc(n, func(r rune) bool { return r <= ' ' || r > '~' || r == ',' }) >= 0 {
			return nil, invalid(FieldCertificateSANs, fmt.Sprintf("%q is not a DNS name, IP address or e-mail address", shorten(n)))
		}
	}
	return names, nil
}

// marshalSANExtension encodes names as a subjectAltName extension.
func marshalSANExtension(names []string) (pkix.Extension, error) {
	var gn []asn1.RawValue
	for _, n := range names {
		switch {
		case net.ParseIP(n) != nil:
			ip := net.ParseIP(n)
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			gn = append(gn, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: ip})
		case strings.Contains(n, "@"):
			gn = append(gn, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte(n)})
		default:
			gn = append(gn, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(n)})
		}
	}
	b, err := asn1.Marshal(gn)
	return pkix.Extension{Id: oidSubjectAltName, Value: b}, err
}

type csrInfo struct {
	Version    int
	Subject    asn1.RawValue
	PublicKey  asn1.RawValue
	Attributes asn1.RawValue
}

type csrAttribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue
}

type signedASN1 struct {
	Data      asn1.RawValue
	Algorithm pkix.AlgorithmIdentifier
	Signature asn1.BitString
}

// csrToBeSigned is the CertificationRequestInfo of a PKCS#10 request for
// the public key spki (DER SubjectPublicKeyInfo), and the signature
// algorithm (Alibaba name and identifier) that signs it.
func csrToBeSigned(spec string, attrs map[string]string, sans []string, spki []byte) (info []byte, alg string, id pkix.AlgorithmIdentifier, err error) {
	subject, err := marshalSubject(attrs)
	if err != nil {
		return nil, "", id, err
	}
	var attrBytes []byte
	if len(sans) > 0 {
		ext, err := marshalSANExtension(sans)
		if err != nil {
			return nil, "", id, err
		}
		exts, err := asn1.Marshal([]pkix.Extension{ext})
		if err != nil {
			return nil, "", id, err
		}
		if attrBytes, err = asn1.Marshal(csrAttribute{Type: oidExtensionRequest,
			Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: exts}}); err != nil {
			return nil, "", id, err
		}
	}
	info, err = asn1.Marshal(csrInfo{
		Subject:    asn1.RawValue{FullBytes: subject},
		PublicKey:  asn1.RawValue{FullBytes: spki},
		Attributes: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: attrBytes},
	})
	if err != nil {
		return nil, "", id, err
	}
	if kcrypto.IsRSA(spec) {
		return info, kcrypto.AlgRSAPKCS1SHA256, pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue}, nil
	}
	return info, kcrypto.AlgECDSASHA256, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, nil
}

// marshalSigned wraps signed data, its algorithm and signature (a CSR).
func marshalSigned(data []byte, id pkix.AlgorithmIdentifier, sig []byte) ([]byte, error) {
	return asn1.Marshal(signedASN1{Data: asn1.RawValue{FullBytes: data}, Algorithm: id, Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}

// CSRPEM is a DER request in a PEM "CERTIFICATE REQUEST" block.
func CSRPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// CertificatePEM is a DER certificate in a PEM "CERTIFICATE" block ("" for
// none).
func CertificatePEM(der []byte) string {
	if len(der) == 0 {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

type tbsCertificate struct {
	Raw        asn1.RawContent
	Version    int `asn1:"optional,explicit,default:0,tag:0"`
	Serial     *big.Int
	SigAlg     pkix.AlgorithmIdentifier
	Issuer     asn1.RawValue
	Validity   struct{ NotBefore, NotAfter time.Time }
	Subject    asn1.RawValue
	PublicKey  asn1.RawValue
	IssuerUID  asn1.BitString   `asn1:"optional,tag:1"`
	SubjectUID asn1.BitString   `asn1:"optional,tag:2"`
	Extensions []pkix.Extension `asn1:"omitempty,optional,explicit,tag:3"`
}

type certificateASN1 struct {
	TBS       tbsCertificate
	SigAlg    pkix.AlgorithmIdentifier
	Signature asn1.BitString
}

// CertificateInfo is what DescribeCertificate tells of an issued
// certificate.
type CertificateInfo struct {
	Subject, Issuer     string
	Serial              string // lowercase hex
	NotBefore, NotAfter time.Time
	SignatureAlgorithm  string
	PublicKey           []byte // DER SubjectPublicKeyInfo
	SubjectKeyID        string // lowercase hex
	SANs                []string
}

// ParseCertificateDER reads an X.509 certificate of any key spec.
func ParseCertificateDER(der []byte) (CertificateInfo, error) {
	var c certificateASN1
	rest, err := asn1.Unmarshal(der, &c)
	if err != nil || len(rest) != 0 {
		return CertificateInfo{}, fmt.Errorf("not a DER X.509 certificate")
	}
	t := c.TBS
	info := CertificateInfo{
		NotBefore: t.Validity.NotBefore, NotAfter: t.Validity.NotAfter,
		PublicKey: t.PublicKey.FullBytes,
	}
	if t.Serial != nil {
		info.Serial = hex.EncodeToString(t.Serial.Bytes())
	}
	info.SignatureAlgorithm = signatureAlgorithmNames[c.SigAlg.Algorithm.String()]
	if info.SignatureAlgorithm == "" {
		info.SignatureAlgorithm = c.SigAlg.Algorithm.String()
	}
	for _, side := range []struct {
		raw []byte
		out *string
	}{{t.Subject.FullBytes, &info.Subject}, {t.Issuer.FullBytes, &info.Issuer}} {
		var rdns pkix.RDNSequence
		if _, err := asn1.Unmarshal(side.raw, &rdns); err != nil {
			return CertificateInfo{}, fmt.Errorf("bad name in the certificate")
		}
		var n pkix.Name
		n.FillFromRDNSequence(&rdns)
		*side.out = n.String()
	}
	for _, e := range t.Extensions {
		switch {
		case e.Id.Equal(oidSubjectKeyID):
			var ski []byte
			if _, err := asn1.Unmarshal(e.Value, &ski); err == nil {
				info.SubjectKeyID = hex.EncodeToString(ski)
			}
		case e.Id.Equal(oidSubjectAltName):
			var gn []asn1.RawValue
			if _, err := asn1.Unmarshal(e.Value, &gn); err == nil {
				for _, g := range gn {
					switch g.Tag {
					case 1, 2:
						info.SANs = append(info.SANs, string(g.Bytes))
					case 7:
						info.SANs = append(info.SANs, net.IP(g.Bytes).String())
					}
				}
			}
		}
	}
	if info.SubjectKeyID == "" {
		// RFC 5280 4.2.1.2 (1): SHA-1 of the subjectPublicKey bits.
		var spki struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(t.PublicKey.FullBytes, &spki); err == nil {
			sum := sha1.Sum(spki.PublicKey.Bytes)
			info.SubjectKeyID = hex.EncodeToString(sum[:])
		}
	}
	return info, nil
}

// parsePEMCertificates reads the CERTIFICATE blocks of PEM text (at least
// one), each checked to be a certificate.
func parsePEMCertificates(f Field, text string) ([][]byte, error) {
	var out [][]byte
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, invalid(f, "PEM blocks of type CERTIFICATE only")
		}
		if _, err := ParseCertificateDER(b.Bytes); err != nil {
			return nil, invalid(f, err.Error())
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, invalid(f, "PEM-encoded X.509 certificates (-----BEGIN CERTIFICATE-----)")
	}
	return out, nil
}
