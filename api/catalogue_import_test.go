package api_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/google/uuid"
)

// Bring your own key: material made outside the service, imported, and
// ciphertexts in the format of docs/CIPHERTEXT.md made and opened outside
// the service with Go's crypto/aes and crypto/cipher (not package crypto).

// importContext and its canonical form, written out by hand from
// docs/CIPHERTEXT.md: keys sorted by their UTF-8 bytes, compact JSON, no
// HTML escaping, non-ASCII as UTF-8.
const (
	importContext   = `{"tenant":"acme","é":"ü","app":"<billing & co>"}`
	importCanonical = `{"app":"<billing & co>","tenant":"acme","é":"ü"}`
)

// sealOutside builds a ciphertext blob: format 0x01, the version's UUID
// bytes, a nonce, AES-256-GCM with AAD = header ‖ canonical context.
func sealOutside(t *testing.T, material []byte, versionID string, plaintext []byte, canonical string) string {
	t.Helper()
	block, err := aes.NewCipher(material)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.MustParse(versionID)
	header := append([]byte{0x01}, id[:]...)
	nonce := randomBytes(12)
	aad := append(append([]byte(nil), header...), canonical...)
	blob := append(append(append([]byte(nil), header...), nonce...), gcm.Seal(nil, nonce, plaintext, aad)...)
	return b64(blob)
}

// openOutside opens a blob the service made, checking its header.
func openOutside(t *testing.T, material []byte, versionID, blobB64, canonical string) []byte {
	t.Helper()
	blob := decodeB64(t, blobB64)
	if len(blob) < 1+16+12+16 || blob[0] != 0x01 {
		t.Fatalf("blob of %d bytes, format %#x", len(blob), blob[0])
	}
	id := uuid.MustParse(versionID)
	if !bytes.Equal(blob[1:17], id[:]) {
		t.Fatalf("the blob names version %x, want %s", blob[1:17], versionID)
	}
	block, _ := aes.NewCipher(material)
	gcm, _ := cipher.NewGCM(block)
	aad := append(append([]byte(nil), blob[:17]...), canonical...)
	pt, err := gcm.Open(nil, blob[17:29], blob[29:], aad)
	if err != nil {
		t.Fatalf("the service's ciphertext does not open with the imported material: %v", err)
	}
	return pt
}

type importParams struct{ PublicKey, ImportToken, TokenExpireTime string }

func (tn *testNode) importParams(t *testing.T, key, alg string) importParams {
	t.Helper()
	var out kmssdk.GetParametersForImportResponseBody
	decodeStrict(t, tn.must(t, "GetParametersForImport", map[string]string{"KeyId": key, "WrappingAlgorithm": alg, "WrappingKeySpec": "RSA_2048"}, nil).Body, &out)
	requireSet(t, &out)
	wantEq(t, "GetParametersForImport KeyId", tea.StringValue(out.KeyId), key)
	der := decodeB64(t, tea.StringValue(out.PublicKey))
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("PublicKey is not a DER SubjectPublicKeyInfo: %v", err)
	}
	if rk, ok := k.(*rsa.PublicKey); !ok || rk.N.BitLen() != 2048 {
		t.Fatalf("PublicKey is not RSA-2048: %T", k)
	}
	return importParams{tea.StringValue(out.PublicKey), tea.StringValue(out.ImportToken), tea.StringValue(out.TokenExpireTime)}
}

func (tn *testNode) importMaterial(t *testing.T, key, alg string, material []byte, expireUnix int64) {
	t.Helper()
	p := tn.importParams(t, key, alg)
	params := map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapForImport(t, p.PublicKey, alg, material), "ImportToken": p.ImportToken}
	if expireUnix != 0 {
		params["KeyMaterialExpireUnix"] = itoa(expireUnix)
	}
	var out kmssdk.ImportKeyMaterialResponseBody
	tn.happy(t, "ImportKeyMaterial", params, true, &out)
}

func TestImport_MaterialMadeOutside_EndToEnd(t *testing.T) {
	clock := newFakeClock()
	tn := startClockNode(t, clock)
	m := tn.newKey(t, map[string]string{"Origin": "EXTERNAL", "Description": "byok"})
	key, version := tea.StringValue(m.KeyId), tea.StringValue(m.PrimaryKeyVersion)
	wantEq(t, "KeyState at creation", tea.StringValue(m.KeyState), "PendingImport")
	tn.refused(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="}, 409, pendingImpCode)
	tn.refused(t, "GenerateDataKey", map[string]string{"KeyId": key}, 409, pendingImpCode)

	material := randomBytes(32)
	for i, alg := range []string{"RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5"} {
		p := tn.importParams(t, key, alg)
		wantEq(t, alg+" TokenExpireTime", parseDate(t, "TokenExpireTime", p.TokenExpireTime), clock.Now().Add(24*time.Hour))
		var out kmssdk.ImportKeyMaterialResponseBody
		// The first import, then the same material again under each algorithm.
		tn.happy(t, "ImportKeyMaterial", map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapForImport(t, p.PublicKey, alg, material), "ImportToken": p.ImportToken}, true, &out)
		d := tn.describe(t, key)
		wantEq(t, alg+" KeyState", tea.StringValue(d.KeyState), "Enabled")
		wantEq(t, alg+" PrimaryKeyVersion", tea.StringValue(d.PrimaryKeyVersion), version)
		if i == 0 {
			wantEq(t, "MaterialExpireTime (never)", tea.StringValue(d.MaterialExpireTime), "")
		}
	}

	// A ciphertext made entirely outside the service decrypts through it.
	plaintext := "b3V0c2lkZSB0aGUgc2VydmljZQ=="
	outside := sealOutside(t, material, version, []byte(plaintext), importCanonical)
	var dec kmssdk.DecryptResponseBody
	decodeStrict(t, tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": outside, "EncryptionContext": importContext}, nil).Body, &dec)
	wantEq(t, "Plaintext of the outside ciphertext", tea.StringValue(dec.Plaintext), plaintext)
	wantEq(t, "KeyId", tea.StringValue(dec.KeyId), key)
	wantEq(t, "KeyVersionId", tea.StringValue(dec.KeyVersionId), version)
	tn.refused(t, "Decrypt", map[string]string{"CiphertextBlob": outside, "EncryptionContext": `{"tenant":"acme"}`}, 400, invalidCipher)
	tn.refused(t, "Decrypt", map[string]string{"CiphertextBlob": sealOutside(t, randomBytes(32), version, []byte(plaintext), importCanonical), "EncryptionContext": importContext}, 400, invalidCipher)

	// And the service's ciphertext opens outside with the material.
	var enc kmssdk.EncryptResponseBody
	decodeStrict(t, tn.must(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "aW5zaWRl", "EncryptionContext": importContext}, nil).Body, &enc)
	if got := openOutside(t, material, version, tea.StringValue(enc.CiphertextBlob), importCanonical); string(got) != "aW5zaWRl" {
		t.Fatalf("opened outside: %q", got)
	}

	// Only the same material goes in again.
	p := tn.importParams(t, key, "RSAES_OAEP_SHA_256")
	tn.refused(t, "ImportKeyMaterial", map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapForImport(t, p.PublicKey, "RSAES_OAEP_SHA_256", randomBytes(32)), "ImportToken": p.ImportToken}, 400, badMaterialCode)

	// DeleteKeyMaterial: back to PendingImport, crypto refused, and the
	// same material brings the key and its ciphertexts back.
	tn.must(t, "DeleteKeyMaterial", map[string]string{"KeyId": key}, nil)
	wantEq(t, "KeyState after DeleteKeyMaterial", tea.StringValue(tn.describe(t, key).KeyState), "PendingImport")
	tn.refused(t, "Decrypt", map[string]string{"CiphertextBlob": outside, "EncryptionContext": importContext}, 409, pendingImpCode)
	tn.refused(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="}, 409, pendingImpCode)
	p = tn.importParams(t, key, "RSAES_OAEP_SHA_1")
	tn.refused(t, "ImportKeyMaterial", map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapForImport(t, p.PublicKey, "RSAES_OAEP_SHA_1", randomBytes(32)), "ImportToken": p.ImportToken}, 400, badMaterialCode)
	tn.importMaterial(t, key, "RSAES_OAEP_SHA_1", material, 0)
	decodeStrict(t, tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": outside, "EncryptionContext": importContext}, nil).Body, &dec)
	wantEq(t, "Plaintext after re-import", tea.StringValue(dec.Plaintext), plaintext)

	// Tokens: another key's, a garbled one, and material wrapped for another token.
	other := tea.StringValue(tn.newKey(t, map[string]string{"Origin": "EXTERNAL"}).KeyId)
	po := tn.importParams(t, other, "RSAES_OAEP_SHA_256")
	p = tn.importParams(t, key, "RSAES_OAEP_SHA_256")
	tn.refused(t, "ImportKeyMaterial", map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapForImport(t, po.PublicKey, "RSAES_OAEP_SHA_256", material), "ImportToken": po.ImportToken}, 400, badTokenCode)
	tn.refused(t, "ImportKeyMaterial", map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapForImport(t, p.PublicKey, "RSAES_OAEP_SHA_256", material), "ImportToken": "garbled" + p.ImportToken[7:]}, 400, badTokenCode)
	tn.refused(t, "ImportKeyMaterial", map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapForImport(t, po.PublicKey, "RSAES_OAEP_SHA_256", material), "ImportToken": p.ImportToken}, 400, badMaterialCode)
	tn.refused(t, "ImportKeyMaterial", map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapForImport(t, p.PublicKey, "RSAES_OAEP_SHA_256", material), "ImportToken": p.ImportToken,
		"KeyMaterialExpireUnix": itoa(clock.Now().Add(-time.Second).Unix())}, 400, invalidParam)
}

// TestImport_ExpiredTokenAndExpiringMaterial: a token is refused as expired
// after 24 hours, before and after the leader's scheduler has run; material
// with an expiry becomes unusable when the scheduler sees it expired.
func TestImport_ExpiredTokenAndExpiringMaterial(t *testing.T) {
	clock := newFakeClock()
	tn := startClockNode(t, clock)
	key := tea.StringValue(tn.newKey(t, map[string]string{"Origin": "EXTERNAL"}).KeyId)
	material := randomBytes(32)

	p := tn.importParams(t, key, "RSAES_OAEP_SHA_256")
	wrapped := wrapForImport(t, p.PublicKey, "RSAES_OAEP_SHA_256", material)
	params := map[string]string{"KeyId": key, "EncryptedKeyMaterial": wrapped, "ImportToken": p.ImportToken}
	clock.Advance(25 * time.Hour)
	tn.refused(t, "ImportKeyMaterial", params, 400, "ExpiredImportToken")
	tn.tick(t)
	tn.refused(t, "ImportKeyMaterial", params, 400, "ExpiredImportToken")
	wantEq(t, "KeyState", tea.StringValue(tn.describe(t, key).KeyState), "PendingImport")

	expire := clock.Now().Add(2 * time.Hour)
	tn.importMaterial(t, key, "RSAES_OAEP_SHA_256", material, expire.Unix())
	d := tn.describe(t, key)
	wantEq(t, "KeyState", tea.StringValue(d.KeyState), "Enabled")
	wantEq(t, "MaterialExpireTime", parseDate(t, "MaterialExpireTime", tea.StringValue(d.MaterialExpireTime)), expire)
	var enc struct{ CiphertextBlob string }
	tn.must(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "ZXhwaXJpbmc="}, &enc)

	clock.Advance(2*time.Hour - time.Second)
	tn.tick(t)
	wantEq(t, "KeyState a second before expiry", tea.StringValue(tn.describe(t, key).KeyState), "Enabled")
	clock.Advance(time.Second)
	if n := tn.tick(t); n < 1 {
		t.Fatal("the scheduler did not act on the expired material")
	}
	d = tn.describe(t, key)
	wantEq(t, "KeyState after expiry", tea.StringValue(d.KeyState), "PendingImport")
	wantEq(t, "MaterialExpireTime after expiry", tea.StringValue(d.MaterialExpireTime), "")
	tn.refused(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "eA=="}, 409, pendingImpCode)
	tn.refused(t, "Decrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob}, 409, pendingImpCode)

	// Re-importing the same material (without expiry) restores the key.
	tn.importMaterial(t, key, "RSAES_PKCS1_V1_5", material, 0)
	var dec struct{ Plaintext string }
	tn.must(t, "Decrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob}, &dec)
	wantEq(t, "Plaintext after re-import", dec.Plaintext, "ZXhwaXJpbmc=")
	wantEq(t, "MaterialExpireTime after re-import", tea.StringValue(tn.describe(t, key).MaterialExpireTime), "")
}

// TestImportKeyMaterial_ExpiryBeyondMillisecondRangeIsRefused: a
// KeyMaterialExpireUnix whose milliseconds do not fit an int64 must be
// refused (400 InvalidParameter). kms.ImportKeyMaterial
// (kms/importing.go: expire = expireUnix * 1000) overflows instead: the
// import succeeds, the material never expires, and DescribeKey reports
// MaterialExpireTime "-292275055-05-16T16:47:04Z".
func TestImportKeyMaterial_ExpiryBeyondMillisecondRangeIsRefused(t *testing.T) {
	tn := startClockNode(t, newFakeClock())
	key := tea.StringValue(tn.newKey(t, map[string]string{"Origin": "EXTERNAL"}).KeyId)
	p := tn.importParams(t, key, "RSAES_OAEP_SHA_256")
	tn.refused(t, "ImportKeyMaterial", map[string]string{"KeyId": key, "ImportToken": p.ImportToken,
		"EncryptedKeyMaterial":  wrapForImport(t, p.PublicKey, "RSAES_OAEP_SHA_256", randomBytes(32)),
		"KeyMaterialExpireUnix": "9223372036854776"}, 400, invalidParam)
	if d := tn.describe(t, key); tea.StringValue(d.KeyState) != "PendingImport" {
		t.Errorf("KeyState %s, MaterialExpireTime %q", tea.StringValue(d.KeyState), tea.StringValue(d.MaterialExpireTime))
	}
}
