package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// TestSnapshot_CatalogueRoundTrip: a snapshot holds everything the
// catalogue added (asymmetric versions and public keys, policies,
// protection, pending deletions, EXTERNAL keys and their import tokens,
// tags, the default key, instance counts) and a restore brings all of it
// back, usable.
func TestSnapshot_CatalogueRoundTrip(t *testing.T) {
	f := newCatFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn := f.testNode
	tn.must(t, "TagResource", map[string]string{"KeyId": f.vals["EC"], "Tags": oneTag("team", "x")}, nil)
	tn.must(t, "SetKeyPolicy", map[string]string{"KeyId": f.vals["EC"], "PolicyName": "default", "Policy": f.vals["POLICY"]}, nil)
	before := tn.hash()
	described := map[string]string{}
	for _, k := range []string{"SYM", "RSAENC", "RSASIGN", "EC", "RSADIS", "EXT", "EXTDEL", "PENDING", "PROT", "DEFAULT"} {
		described[k] = tea.Prettify(tn.describe(t, f.vals[k]))
	}
	used := tn.keyUsed(t, tn.InstanceID)

	snap := saveSnapshot(t, tn)
	// Change things: the pending deletions complete, a policy changes, a key
	// is created.
	f.clock.Advance(8 * 24 * time.Hour)
	if n := tn.tick(t); n < 2 {
		t.Fatalf("the scheduler made %d changes, want the two deletions", n)
	}
	tn.must(t, "SetKeyPolicy", map[string]string{"KeyId": f.vals["SYM"], "PolicyName": "default", "Policy": f.vals["POLICY"]}, nil)
	tn.newKey(t, map[string]string{"KeySpec": "EC_P256K"})
	if tn.hash() == before {
		t.Fatal("the changes did not change the catalogue")
	}

	resp, err := tn.V3.Do(ctx, http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(snap), nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if tn.hash() != before {
		t.Error("the restored catalogue's hash is not the snapshot's")
	}
	for k, want := range described {
		if got := tea.Prettify(tn.describe(t, f.vals[k])); got != want {
			t.Errorf("%s after restore:\n%s\nwant\n%s", k, got, want)
		}
	}
	wantEq(t, "KeyUsed after restore", tn.keyUsed(t, tn.InstanceID), used)

	// Restored keys work: the signing key's signature verifies, the
	// encryption key decrypts its old ciphertext, the import token imports.
	var v kmssdk.AsymmetricVerifyResponseBody
	decodeStrict(t, tn.must(t, "AsymmetricVerify", f.expand(map[string]string{"KeyId": "{RSASIGN}", "KeyVersionId": "{RSASIGNV}", "Algorithm": "RSA_PSS_SHA_256", "Digest": "{DIGEST}", "Value": "{SIG}"}), nil).Body, &v)
	wantEq(t, "AsymmetricVerify after restore", tea.BoolValue(v.Value), true)
	var d kmssdk.AsymmetricDecryptResponseBody
	decodeStrict(t, tn.must(t, "AsymmetricDecrypt", f.expand(map[string]string{"KeyId": "{RSAENC}", "KeyVersionId": "{RSAENCV}", "Algorithm": "RSAES_OAEP_SHA_256", "CiphertextBlob": "{RSACT}"}), nil).Body, &d)
	wantEq(t, "AsymmetricDecrypt after restore", string(decodeB64(t, tea.StringValue(d.Plaintext))), "fixture")
	// The token came back too: it is known, and by now expired.
	tn.refused(t, "ImportKeyMaterial", f.expand(map[string]string{"KeyId": "{EXT}", "EncryptedKeyMaterial": "{WRAPPED}", "ImportToken": "{TOKEN}"}), 400, "ExpiredImportToken")
	tn.importMaterial(t, f.vals["EXT"], "RSAES_OAEP_SHA_256", decodeB64(t, f.vals["MATERIAL"]), 0)
	wantEq(t, "EXTERNAL key after import", tea.StringValue(tn.describe(t, f.vals["EXT"]).KeyState), "Enabled")
	tn.refused(t, "Decrypt", f.expand(map[string]string{"CiphertextBlob": "{PENDINGBLOB}", "EncryptionContext": catContext}), 409, pendingDelCode)
	// The deletion that the snapshot undid happens again at its date.
	if n := tn.tick(t); n < 2 {
		t.Fatalf("the scheduler made %d changes after the restore, want the two deletions again", n)
	}
	tn.refused(t, "DescribeKey", map[string]string{"KeyId": f.vals["PENDING"]}, 404, keyNotFound)
}
