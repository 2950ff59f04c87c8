package api_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"hash"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/google/uuid"
)

// Asymmetric keys through the API, checked with implementations that are
// not raftkms's: Go's crypto/rsa, crypto/ecdsa and crypto/x509, decred's
// secp256k1, and the openssl command.

// publicKeyOf parses GetPublicKey's PEM without package crypto: x509 for
// RSA and P-256, encoding/asn1 and decred for secp256k1.
func publicKeyOf(t *testing.T, pemText string) any {
	t.Helper()
	block, rest := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("PublicKey is not one PEM PUBLIC KEY block: %q", pemText)
	}
	if k, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		return k
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if r, err := asn1.Unmarshal(block.Bytes, &info); err != nil || len(r) != 0 {
		t.Fatalf("PublicKey is not a SubjectPublicKeyInfo: %v", err)
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); err != nil || !curve.Equal(asn1.ObjectIdentifier{1, 3, 132, 0, 10}) {
		t.Fatalf("x509 does not parse the key and its curve %v is not secp256k1", curve)
	}
	k, err := secp256k1.ParsePubKey(info.PublicKey.Bytes)
	if err != nil {
		t.Fatalf("secp256k1 point: %v", err)
	}
	return k
}

// opensslReads runs `openssl pkey -pubin -noout -text` on a PEM and returns
// its output.
func opensslReads(t *testing.T, pemText string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed: install it (make deps)")
	}
	path := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(path, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkey", "-pubin", "-in", path, "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl refuses the public key: %v\n%s", err, out)
	}
	return string(out)
}

var halfOrderK1 = new(big.Int).Rsh(secp256k1.S256().N, 1)

// verifyOutside checks a signature with the independent implementation for
// the key's type.
func verifyOutside(t *testing.T, pub any, alg string, digest, sig []byte) bool {
	t.Helper()
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg == "RSA_PSS_SHA_256" {
			return rsa.VerifyPSS(k, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: 32}) == nil
		}
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *secp256k1.PublicKey:
		s, err := secpecdsa.ParseDERSignature(sig)
		return err == nil && s.Verify(digest, k)
	}
	t.Fatalf("no verifier for %T", pub)
	return false
}

func TestAsymmetric_SignEverySpecVerifiedOutside(t *testing.T) {
	tn := startClockNode(t, newFakeClock())
	cases := []struct {
		spec    string
		algs    []string
		openssl string
	}{
		{"RSA_2048", []string{"RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"}, "Public-Key: (2048 bit)"},
		{"RSA_3072", []string{"RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"}, "Public-Key: (3072 bit)"},
		{"RSA_4096", []string{"RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"}, "Public-Key: (4096 bit)"},
		{"EC_P256", []string{"ECDSA_SHA_256"}, "prime256v1"},
		{"EC_P256K", []string{"ECDSA_SHA_256"}, "secp256k1"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			m := tn.newKey(t, map[string]string{"KeySpec": tc.spec, "KeyUsage": "SIGN/VERIFY"})
			key, version := tea.StringValue(m.KeyId), tea.StringValue(m.PrimaryKeyVersion)
			var gp kmssdk.GetPublicKeyResponseBody
			decodeStrict(t, tn.must(t, "GetPublicKey", map[string]string{"KeyId": key, "KeyVersionId": version}, nil).Body, &gp)
			wantEq(t, "GetPublicKey KeyVersionId", tea.StringValue(gp.KeyVersionId), version)
			pemText := tea.StringValue(gp.PublicKey)
			if out := opensslReads(t, pemText); !strings.Contains(out, tc.openssl) {
				t.Errorf("openssl output does not mention %q:\n%s", tc.openssl, out)
			}
			pub := publicKeyOf(t, pemText)
			switch k := pub.(type) {
			case *rsa.PublicKey:
				wantEq(t, "RSA modulus bits", k.N.BitLen(), map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}[tc.spec])
			case *ecdsa.PublicKey:
				if k.Curve != elliptic.P256() || tc.spec != "EC_P256" {
					t.Errorf("%s: a key on %s", tc.spec, k.Curve.Params().Name)
				}
			case *secp256k1.PublicKey:
				if tc.spec != "EC_P256K" {
					t.Errorf("%s: a secp256k1 key", tc.spec)
				}
			}
			for _, alg := range tc.algs {
				for i := range 3 {
					msg := []byte(tc.spec + alg + string(rune('a'+i)))
					d := sha256.Sum256(msg)
					var sr kmssdk.AsymmetricSignResponseBody
					decodeStrict(t, tn.must(t, "AsymmetricSign", map[string]string{"KeyId": key, "KeyVersionId": version, "Algorithm": alg, "Digest": b64(d[:])}, nil).Body, &sr)
					sig := decodeB64(t, tea.StringValue(sr.Value))
					if !verifyOutside(t, pub, alg, d[:], sig) {
						t.Fatalf("%s signature %d does not verify outside the service", alg, i)
					}
					if tc.spec == "EC_P256K" || tc.spec == "EC_P256" {
						var rs struct{ R, S *big.Int }
						if r, err := asn1.Unmarshal(sig, &rs); err != nil || len(r) != 0 {
							t.Fatalf("ECDSA signature is not DER: %v", err)
						}
						if tc.spec == "EC_P256K" && rs.S.Cmp(halfOrderK1) > 0 {
							t.Fatalf("secp256k1 signature %d has a high S", i)
						}
					}
					verify := func(digest, value string) bool {
						t.Helper()
						var vr kmssdk.AsymmetricVerifyResponseBody
						decodeStrict(t, tn.must(t, "AsymmetricVerify", map[string]string{"KeyId": key, "KeyVersionId": version, "Algorithm": alg, "Digest": digest, "Value": value}, nil).Body, &vr)
						if vr.Value == nil {
							t.Fatal("AsymmetricVerify without Value")
						}
						return *vr.Value
					}
					if !verify(b64(d[:]), b64(sig)) {
						t.Fatalf("AsymmetricVerify refuses its own %s signature", alg)
					}
					bad := append([]byte(nil), sig...)
					bad[len(bad)-3] ^= 0x10
					if verify(b64(d[:]), b64(bad)) {
						t.Fatalf("AsymmetricVerify accepts a tampered %s signature", alg)
					}
					if verify(digestB64("another message"), b64(sig)) {
						t.Fatalf("AsymmetricVerify accepts a %s signature over another digest", alg)
					}
				}
			}
		})
	}
}

func oaepHash(alg string) hash.Hash {
	if alg == "RSAES_OAEP_SHA_1" {
		return sha1.New()
	}
	return sha256.New()
}

// TestAsymmetric_EncryptDecryptOAEPAgainstGo: ciphertexts made outside with
// rsa.EncryptOAEP and the PEM from GetPublicKey decrypt through the API,
// the API's own ciphertexts decrypt back, and the plaintext limits are the
// service's.
func TestAsymmetric_EncryptDecryptOAEPAgainstGo(t *testing.T) {
	tn := startClockNode(t, newFakeClock())
	limits := map[string]map[string]int{
		"RSA_2048": {"RSAES_OAEP_SHA_256": 190, "RSAES_OAEP_SHA_1": 214},
		"RSA_3072": {"RSAES_OAEP_SHA_256": 318, "RSAES_OAEP_SHA_1": 342},
	}
	for _, spec := range []string{"RSA_2048", "RSA_3072"} {
		m := tn.newKey(t, map[string]string{"KeySpec": spec, "KeyUsage": "ENCRYPT/DECRYPT"})
		key, version := tea.StringValue(m.KeyId), tea.StringValue(m.PrimaryKeyVersion)
		var gp kmssdk.GetPublicKeyResponseBody
		decodeStrict(t, tn.must(t, "GetPublicKey", map[string]string{"KeyId": key, "KeyVersionId": version}, nil).Body, &gp)
		pub := publicKeyOf(t, tea.StringValue(gp.PublicKey)).(*rsa.PublicKey)
		for _, alg := range []string{"RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"} {
			t.Run(spec+"/"+alg, func(t *testing.T) {
				max := limits[spec][alg]
				p := map[string]string{"KeyId": key, "KeyVersionId": version, "Algorithm": alg}
				for _, n := range []int{1, 32, max} {
					msg := randomBytes(n)
					outside, err := rsa.EncryptOAEP(oaepHash(alg), rand.Reader, pub, msg, nil)
					if err != nil {
						t.Fatal(err)
					}
					var dr kmssdk.AsymmetricDecryptResponseBody
					decodeStrict(t, tn.must(t, "AsymmetricDecrypt", with(p, "CiphertextBlob", b64(outside)), nil).Body, &dr)
					if !bytes.Equal(decodeB64(t, tea.StringValue(dr.Plaintext)), msg) {
						t.Fatalf("%d bytes encrypted outside: AsymmetricDecrypt returns other bytes", n)
					}
					var er kmssdk.AsymmetricEncryptResponseBody
					decodeStrict(t, tn.must(t, "AsymmetricEncrypt", with(p, "Plaintext", b64(msg)), nil).Body, &er)
					ct := decodeB64(t, tea.StringValue(er.CiphertextBlob))
					wantEq(t, "ciphertext size", len(ct), pub.Size())
					decodeStrict(t, tn.must(t, "AsymmetricDecrypt", with(p, "CiphertextBlob", b64(ct)), nil).Body, &dr)
					if !bytes.Equal(decodeB64(t, tea.StringValue(dr.Plaintext)), msg) {
						t.Fatalf("%d bytes: the API's own ciphertext does not decrypt", n)
					}
				}
				tn.refused(t, "AsymmetricEncrypt", with(p, "Plaintext", b64(randomBytes(max+1))), 400, invalidParam)
				// OAEP with the other hash does not open.
				other := map[string]string{"RSAES_OAEP_SHA_256": "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_1": "RSAES_OAEP_SHA_256"}[alg]
				outside, _ := rsa.EncryptOAEP(oaepHash(alg), rand.Reader, pub, []byte("x"), nil)
				tn.refused(t, "AsymmetricDecrypt", with(p, "CiphertextBlob", b64(outside), "Algorithm", other), 400, invalidCipher)
			})
		}
	}
}

// TestAsymmetric_VersionsSelectedByKeyVersionId: CreateKeyVersion gives an
// asymmetric key a new key pair; each action works on the version it names.
func TestAsymmetric_VersionsSelectedByKeyVersionId(t *testing.T) {
	tn := startClockNode(t, newFakeClock())
	for _, spec := range []string{"EC_P256K", "RSA_2048"} {
		t.Run(spec, func(t *testing.T) {
			m := tn.newKey(t, map[string]string{"KeySpec": spec, "KeyUsage": "SIGN/VERIFY"})
			key, v1 := tea.StringValue(m.KeyId), tea.StringValue(m.PrimaryKeyVersion)
			var cv kmssdk.CreateKeyVersionResponseBody
			tn.happy(t, "CreateKeyVersion", map[string]string{"KeyId": key}, true, &cv)
			v2 := tea.StringValue(cv.KeyVersion.KeyVersionId)
			if v2 == v1 || tea.StringValue(tn.describe(t, key).PrimaryKeyVersion) != v2 {
				t.Fatalf("the new version %s is not primary", v2)
			}
			var lv kmssdk.ListKeyVersionsResponseBody
			decodeStrict(t, tn.must(t, "ListKeyVersions", map[string]string{"KeyId": key}, nil).Body, &lv)
			wantEq(t, "versions", tea.Int32Value(lv.TotalCount), 2)

			pemOf := func(v string) string {
				var gp kmssdk.GetPublicKeyResponseBody
				decodeStrict(t, tn.must(t, "GetPublicKey", map[string]string{"KeyId": key, "KeyVersionId": v}, nil).Body, &gp)
				wantEq(t, "GetPublicKey KeyVersionId", tea.StringValue(gp.KeyVersionId), v)
				return tea.StringValue(gp.PublicKey)
			}
			p1, p2 := pemOf(v1), pemOf(v2)
			if p1 == p2 {
				t.Fatal("v2 has v1's public key")
			}
			alg := "ECDSA_SHA_256"
			if strings.HasPrefix(spec, "RSA") {
				alg = "RSA_PSS_SHA_256"
			}
			d := digestB64("versions")
			sign := func(v string) []byte {
				var sr kmssdk.AsymmetricSignResponseBody
				decodeStrict(t, tn.must(t, "AsymmetricSign", map[string]string{"KeyId": key, "KeyVersionId": v, "Algorithm": alg, "Digest": d}, nil).Body, &sr)
				wantEq(t, "AsymmetricSign KeyVersionId", tea.StringValue(sr.KeyVersionId), v)
				return decodeB64(t, tea.StringValue(sr.Value))
			}
			verify := func(v string, sig []byte) bool {
				var vr kmssdk.AsymmetricVerifyResponseBody
				decodeStrict(t, tn.must(t, "AsymmetricVerify", map[string]string{"KeyId": key, "KeyVersionId": v, "Algorithm": alg, "Digest": d, "Value": b64(sig)}, nil).Body, &vr)
				return tea.BoolValue(vr.Value)
			}
			s1, s2 := sign(v1), sign(v2)
			digest := decodeB64(t, d)
			if !verify(v1, s1) || !verifyOutside(t, publicKeyOf(t, p1), alg, digest, s1) {
				t.Error("v1's signature does not verify with v1")
			}
			if verify(v2, s1) || verifyOutside(t, publicKeyOf(t, p2), alg, digest, s1) {
				t.Error("v1's signature verifies with v2")
			}
			if !verify(v2, s2) || !verifyOutside(t, publicKeyOf(t, p2), alg, digest, s2) {
				t.Error("v2's signature does not verify with v2")
			}
			tn.refused(t, "AsymmetricSign", map[string]string{"KeyId": key, "Algorithm": alg, "Digest": d}, 400, missingParam)
		})
	}
}

// TestExportDataKey_ExportedKeyIsTheDataKey: the data key encrypted to the
// caller's own RSA key decrypts, with Go's rsa.DecryptOAEP and the caller's
// private key, to the same bytes as the data key the service sealed.
func TestExportDataKey_ExportedKeyIsTheDataKey(t *testing.T) {
	clientKeys(t)
	tn := startClockNode(t, newFakeClock())
	key := tea.StringValue(tn.newKey(t, nil).KeyId)
	pubB64 := spkiB64(t, &clientRSA2048.PublicKey)
	pkcs1B64 := b64(x509.MarshalPKCS1PublicKey(&clientRSA2048.PublicKey))
	encCtx := `{"app":"export","b":"2"}`
	unwrap := func(t *testing.T, alg, exported string) []byte {
		t.Helper()
		out, err := rsa.DecryptOAEP(oaepHash(alg), nil, clientRSA2048, decodeB64(t, exported), nil)
		if err != nil {
			t.Fatalf("the exported data key does not decrypt with the caller's private key (%s): %v", alg, err)
		}
		return out
	}
	dataKeyOf := func(t *testing.T, blob string) []byte {
		t.Helper()
		var d kmssdk.DecryptResponseBody
		decodeStrict(t, tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": blob, "EncryptionContext": encCtx}, nil).Body, &d)
		return decodeB64(t, tea.StringValue(d.Plaintext))
	}
	for _, alg := range []string{"RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"} {
		t.Run("GenerateAndExportDataKey/"+alg, func(t *testing.T) {
			max := map[string]int{"RSAES_OAEP_SHA_256": 190, "RSAES_OAEP_SHA_1": 214}[alg]
			for _, p := range []map[string]string{
				{},
				{"KeySpec": "AES_128"},
				{"NumberOfBytes": itoa(int64(max))},
				{"PublicKeyBlob": pkcs1B64},
			} {
				params := with(map[string]string{"KeyId": key, "PublicKeyBlob": pubB64, "WrappingKeySpec": "RSA_2048", "WrappingAlgorithm": alg, "EncryptionContext": encCtx})
				for k, v := range p {
					params[k] = v
				}
				var out kmssdk.GenerateAndExportDataKeyResponseBody
				decodeStrict(t, tn.must(t, "GenerateAndExportDataKey", params, nil).Body, &out)
				requireSet(t, &out)
				exported := unwrap(t, alg, tea.StringValue(out.ExportedDataKey))
				want := 32
				switch {
				case p["KeySpec"] == "AES_128":
					want = 16
				case p["NumberOfBytes"] != "":
					want = max
				}
				wantEq(t, "data key size", len(exported), want)
				if !bytes.Equal(exported, dataKeyOf(t, tea.StringValue(out.CiphertextBlob))) {
					t.Fatalf("%v: the exported data key is not the sealed data key", p)
				}
			}
		})
		t.Run("ExportDataKey/"+alg, func(t *testing.T) {
			var g kmssdk.GenerateDataKeyResponseBody
			decodeStrict(t, tn.must(t, "GenerateDataKey", map[string]string{"KeyId": key, "NumberOfBytes": "48", "EncryptionContext": encCtx}, nil).Body, &g)
			var out kmssdk.ExportDataKeyResponseBody
			decodeStrict(t, tn.must(t, "ExportDataKey", map[string]string{"CiphertextBlob": tea.StringValue(g.CiphertextBlob), "EncryptionContext": encCtx,
				"PublicKeyBlob": pubB64, "WrappingKeySpec": "RSA_2048", "WrappingAlgorithm": alg}, nil).Body, &out)
			requireSet(t, &out)
			wantEq(t, "KeyId", tea.StringValue(out.KeyId), key)
			wantEq(t, "KeyVersionId", tea.StringValue(out.KeyVersionId), tea.StringValue(g.KeyVersionId))
			exported := unwrap(t, alg, tea.StringValue(out.ExportedDataKey))
			if !bytes.Equal(exported, decodeB64(t, tea.StringValue(g.Plaintext))) {
				t.Fatal("the exported data key is not GenerateDataKey's Plaintext")
			}
		})
	}
}

// TestEncrypt_AsymmetricEncryptionKeyIsAClientError: the symmetric actions
// given an RSA key of usage ENCRYPT/DECRYPT must refuse it as a client
// error (400 InvalidKeyUsage, as AsymmetricEncrypt does for an AES key).
// They answer 500 InternalFailure: kms.usable (kms/resolve.go) checks only
// the usage, which an RSA ENCRYPT/DECRYPT key has, so kms.seal
// (kms/cryptoops.go) hands the RSA private key (PKCS#8 DER) to AES-GCM,
// whose "AES material must be 16, 24 or 32 bytes" error is not in the API's
// error table. A ciphertext blob that names an RSA key's version meets the
// same path in Decrypt (kms.open) and must answer 400, not 500.
func TestEncrypt_AsymmetricEncryptionKeyIsAClientError(t *testing.T) {
	tn := startClockNode(t, newFakeClock())
	m := tn.newKey(t, map[string]string{"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT/DECRYPT"})
	rsaKey, rsaVersion := tea.StringValue(m.KeyId), tea.StringValue(m.PrimaryKeyVersion)
	sym := tea.StringValue(tn.newKey(t, nil).KeyId)
	var enc struct{ CiphertextBlob string }
	tn.must(t, "Encrypt", map[string]string{"KeyId": sym, "Plaintext": "eA=="}, &enc)

	for _, tc := range []struct {
		action string
		params map[string]string
	}{
		{"Encrypt", map[string]string{"KeyId": rsaKey, "Plaintext": "aGVsbG8="}},
		{"GenerateDataKey", map[string]string{"KeyId": rsaKey}},
		{"GenerateDataKeyWithoutPlaintext", map[string]string{"KeyId": rsaKey}},
		{"ReEncrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob, "DestinationKeyId": rsaKey}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			before := tn.hash()
			_, err := tn.call(t, tc.action, tc.params)
			wantAPIError(t, err, 400, keyUsageCode)
			if tn.hash() != before {
				t.Error("the catalogue changed")
			}
		})
	}
	t.Run("Decrypt of a blob naming an RSA version", func(t *testing.T) {
		id := uuid.MustParse(rsaVersion)
		blob := append([]byte{0x01}, id[:]...)
		blob = append(blob, randomBytes(12+16+8)...)
		_, err := tn.call(t, "Decrypt", map[string]string{"CiphertextBlob": base64.StdEncoding.EncodeToString(blob)})
		wantAPIError(t, err, 400, invalidCipher)
	})
}

// TestAsymmetricDecrypt_DryRunRefusesWhatTheRealCallWould: a dry run makes
// every check of the real call (kms/errors.go, WithDryRun), as Decrypt's
// does for a damaged blob (kms.open opens before answering
// DryRunOperationError). AsymmetricDecrypt (kms/asymmetric.go) stops for
// the dry run before decrypting, so a ciphertext that does not decrypt is
// answered "would have succeeded" (412 DryRunOperationError) instead of
// 400 InvalidCiphertext.
func TestAsymmetricDecrypt_DryRunRefusesWhatTheRealCallWould(t *testing.T) {
	tn := startClockNode(t, newFakeClock())
	m := tn.newKey(t, map[string]string{"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT/DECRYPT"})
	p := map[string]string{"KeyId": tea.StringValue(m.KeyId), "KeyVersionId": tea.StringValue(m.PrimaryKeyVersion),
		"Algorithm": "RSAES_OAEP_SHA_256", "CiphertextBlob": b64(randomBytes(256))}
	tn.refused(t, "AsymmetricDecrypt", p, 400, invalidCipher)
	tn.refused(t, "AsymmetricDecrypt", with(p, "DryRun", "true"), 400, invalidCipher)
}
