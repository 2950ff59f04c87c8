//go:build cgo

package node

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	dkms "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/sdk"
)

// The official KMS Instance SDK, unmodified, with a real client key whose
// policy names a hardware KMS instance: every action that makes sense on
// HSM keys (SoftHSM), through the node that holds the domain's token and
// through the node without one (whose key operations are forwarded to the
// token's node), each result checked independently of the service.
func TestInstanceEndpoint_OfficialSDKServesEveryActionOnHSMKeys(t *testing.T) {
	domainKey := randomKey(t)
	c := newHSMClusterWith(t, hsmClusterOpts{instance: true}, []hsmNodeSpec{{token: "tok1", domainKey: domainKey}, {}, {}}, 3)
	c.waitHSM("n1", "ok")
	inst := c.createHardwareInstance(1)
	aesKey := c.createHWKey(0, inst, "Aliyun_AES_256", "ENCRYPT/DECRYPT")
	rsaKey := c.createHWKey(1, inst, "RSA_2048", "SIGN/VERIFY")
	ecKey := c.createHWKey(0, inst, "EC_P256", "SIGN/VERIFY")
	c.mustCall(0, "CreateAlias", map[string]string{"AliasName": "alias/hsm-app", "KeyId": aesKey.id})
	caFile := c.instanceCAFileOf(inst)
	ck := c.newClientKeyIn(0, inst, "hsm-app", []string{"key/*"}, nil, nil)
	clients := []*dkms.Client{c.instanceSDK(0, caFile, ck), c.instanceSDK(1, caFile, ck)}

	// A policy on another instance (the software one) covers no key of the
	// hardware instance, even with key/*.
	softCK := c.newClientKeyIn(0, c.creds.InstanceID, "soft-app", []string{"key/*"}, nil, nil)
	_, err := c.instanceSDK(1, caFile, softCK).Encrypt(&dkms.EncryptRequest{KeyId: tea.String(aesKey.id), Plaintext: []byte("x")})
	wantSDKError(t, err, "Forbidden.NoPermission")

	primary := func() string {
		t.Helper()
		return c.mustCall(0, "DescribeKey", map[string]string{"KeyId": aesKey.id})["KeyMetadata"].(map[string]any)["PrimaryKeyVersion"].(string)
	}
	plaintext, aad := []byte("sealed in the HSM"), []byte("order-hsm")
	// inGo opens a blob in Go with the version's material, unwrapped with
	// the domain key: proof that the HSM key's version sealed it (the
	// instance API binds Aad as the encryption context {"Aad": Base64}).
	inGo := func(t *testing.T, version string, blob []byte) []byte {
		t.Helper()
		return openInGo(t, unwrapped(t, c.nodes[0].FSM(), version, domainKey), blob, map[string]string{"Aad": b64s(aad)})
	}
	for i, cl := range clients {
		other := clients[1-i]
		t.Run(fmt.Sprintf("through n%d", i+1), func(t *testing.T) {
			// Encrypt, Decrypt through both nodes, and a wrong AAD refused.
			enc, err := cl.Encrypt(&dkms.EncryptRequest{KeyId: tea.String("alias/hsm-app"), Plaintext: plaintext, Aad: aad, Algorithm: tea.String("AES_GCM")})
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			v1 := primary()
			if tea.StringValue(enc.KeyId) != aesKey.id || len(enc.Iv) != 12 {
				t.Fatalf("Encrypt answered key %s, IV %x", tea.StringValue(enc.KeyId), enc.Iv)
			}
			if got := inGo(t, v1, enc.CiphertextBlob); !bytes.Equal(got, plaintext) {
				t.Fatalf("Go opens Encrypt's blob to %q", got)
			}
			for j, d := range []*dkms.Client{cl, other} {
				out, err := d.Decrypt(&dkms.DecryptRequest{KeyId: tea.String(aesKey.id), CiphertextBlob: enc.CiphertextBlob, Iv: enc.Iv, Aad: aad, Algorithm: tea.String("AES_GCM")})
				if err != nil || !bytes.Equal(out.Plaintext, plaintext) {
					t.Fatalf("Decrypt (client %d) = %v, %v", j, out, err)
				}
			}
			_, err = cl.Decrypt(&dkms.DecryptRequest{KeyId: tea.String(aesKey.id), CiphertextBlob: enc.CiphertextBlob, Iv: enc.Iv, Aad: []byte("order-other")})
			wantSDKError(t, err, "InvalidCiphertext")

			dk, err := cl.GenerateDataKey(&dkms.GenerateDataKeyRequest{KeyId: tea.String(aesKey.id), NumberOfBytes: tea.Int32(32), Aad: aad})
			if err != nil || len(dk.Plaintext) != 32 {
				t.Fatalf("GenerateDataKey = %v, %v", dk, err)
			}
			if out, err := other.Decrypt(&dkms.DecryptRequest{KeyId: tea.String(aesKey.id), CiphertextBlob: dk.CiphertextBlob, Iv: dk.Iv, Aad: aad}); err != nil || !bytes.Equal(out.Plaintext, dk.Plaintext) {
				t.Fatalf("Decrypt of the data key = %v, %v", out, err)
			}
			if got := inGo(t, v1, dk.CiphertextBlob); !bytes.Equal(got, dk.Plaintext) {
				t.Fatal("Go opens GenerateDataKey's blob to another value")
			}

			// AdvanceEncrypt, then a rotation: the old blob still opens
			// under its version, a new one is sealed under the new one.
			advanceDecrypt := func(d *dkms.Client, blob, iv []byte) (*dkms.AdvanceDecryptResponse, error) {
				return d.AdvanceDecrypt(&dkms.AdvanceDecryptRequest{CiphertextBlob: blob, Iv: iv, Aad: aad, Algorithm: tea.String("AES_GCM")})
			}
			aenc, err := cl.AdvanceEncrypt(&dkms.AdvanceEncryptRequest{KeyId: tea.String("alias/hsm-app"), Plaintext: plaintext, Aad: aad, Algorithm: tea.String("AES_GCM")})
			if err != nil || tea.StringValue(aenc.KeyId) != aesKey.id || tea.StringValue(aenc.KeyVersionId) != v1 {
				t.Fatalf("AdvanceEncrypt = %v, %v; want version %s", aenc, err, v1)
			}
			if out, err := advanceDecrypt(other, aenc.CiphertextBlob, aenc.Iv); err != nil || !bytes.Equal(out.Plaintext, plaintext) || tea.StringValue(out.KeyVersionId) != v1 {
				t.Fatalf("AdvanceDecrypt = %v, %v", out, err)
			}
			if got := inGo(t, v1, aenc.CiphertextBlob); !bytes.Equal(got, plaintext) {
				t.Fatalf("Go opens AdvanceEncrypt's blob to %q", got)
			}
			_, err = cl.AdvanceDecrypt(&dkms.AdvanceDecryptRequest{CiphertextBlob: aenc.CiphertextBlob, Iv: aenc.Iv, Aad: []byte("order-other")})
			wantSDKError(t, err, "InvalidCiphertext")
			// The rotation goes through the other node; the SDK has no
			// read-your-writes index, so wait until both nodes applied it.
			rot := c.mustCall(1-i, "CreateKeyVersion", map[string]string{"KeyId": aesKey.id})
			v2 := rot["KeyVersion"].(map[string]any)["KeyVersionId"].(string)
			waitFor(t, "the new primary version on every node", 10*time.Second, func() bool {
				for _, n := range c.nodes {
					if k, ok := n.FSM().Key(aesKey.id); !ok || k.PrimaryVersion != v2 {
						return false
					}
				}
				return true
			})
			if v2 == v1 || primary() != v2 {
				t.Fatalf("CreateKeyVersion made %s, primary %s (was %s)", v2, primary(), v1)
			}
			if out, err := advanceDecrypt(cl, aenc.CiphertextBlob, nil); err != nil || !bytes.Equal(out.Plaintext, plaintext) || tea.StringValue(out.KeyVersionId) != v1 {
				t.Fatalf("AdvanceDecrypt after rotation = %v, %v", out, err)
			}
			aenc2, err := cl.AdvanceEncrypt(&dkms.AdvanceEncryptRequest{KeyId: tea.String(aesKey.id), Plaintext: plaintext, Aad: aad})
			if err != nil || tea.StringValue(aenc2.KeyVersionId) != v2 {
				t.Fatalf("AdvanceEncrypt after rotation = %v, %v; want version %s", aenc2, err, v2)
			}
			if out, err := advanceDecrypt(other, aenc2.CiphertextBlob, aenc2.Iv); err != nil || !bytes.Equal(out.Plaintext, plaintext) || tea.StringValue(out.KeyVersionId) != v2 {
				t.Fatalf("AdvanceDecrypt of the new blob = %v, %v", out, err)
			}
			if got := inGo(t, v2, aenc2.CiphertextBlob); !bytes.Equal(got, plaintext) {
				t.Fatalf("Go opens the new version's blob to %q", got)
			}
			// Encrypt's old blob (version 1) still opens after the rotation.
			if out, err := cl.Decrypt(&dkms.DecryptRequest{KeyId: tea.String(aesKey.id), CiphertextBlob: enc.CiphertextBlob, Iv: enc.Iv, Aad: aad}); err != nil || !bytes.Equal(out.Plaintext, plaintext) {
				t.Fatalf("Decrypt after rotation = %v, %v", out, err)
			}

			adk, err := cl.AdvanceGenerateDataKey(&dkms.AdvanceGenerateDataKeyRequest{KeyId: tea.String(aesKey.id), NumberOfBytes: tea.Int32(24), Aad: aad})
			if err != nil || len(adk.Plaintext) != 24 || tea.StringValue(adk.KeyVersionId) != v2 {
				t.Fatalf("AdvanceGenerateDataKey = %v, %v; want 24 bytes under %s", adk, err, v2)
			}
			if out, err := advanceDecrypt(other, adk.CiphertextBlob, adk.Iv); err != nil || !bytes.Equal(out.Plaintext, adk.Plaintext) {
				t.Fatalf("AdvanceDecrypt of the data key = %v, %v", out, err)
			}
			if got := inGo(t, v2, adk.CiphertextBlob); !bytes.Equal(got, adk.Plaintext) {
				t.Fatal("Go opens AdvanceGenerateDataKey's blob to another value")
			}

			hsmDataKeyPairs(t, cl, other, aesKey.id, v2, aad)
			hsmSignVerify(t, cl, rsaKey.id, ecKey.id)
		})
	}
	// The node without a token forwarded the key operations of its
	// requests to n1's token.
	if f := metricSum(t, c.nodes[1], "kms_hsm_requests_total", map[string]string{"route": "forwarded", "result": "ok"}); f < 10 {
		t.Fatalf("n2 forwarded %v HSM operations, want at least 10", f)
	}
}

// hsmDataKeyPairs drives the four data-key-pair actions through cl on the
// HSM key aesID (primary version version) and checks each pair with Go's
// crypto; blobs are opened through other.
func hsmDataKeyPairs(t *testing.T, cl, other *dkms.Client, aesID, version string, aad []byte) {
	t.Helper()
	open := func(blob, iv []byte) []byte {
		t.Helper()
		out, err := other.AdvanceDecrypt(&dkms.AdvanceDecryptRequest{CiphertextBlob: blob, Iv: iv, Aad: aad})
		if err != nil {
			t.Fatalf("AdvanceDecrypt of the private key: %v", err)
		}
		return out.Plaintext
	}
	type pair struct {
		keyID, version, spec string
		public, private      []byte
		blob, iv             []byte
	}
	for _, tc := range []struct {
		name, spec, format string
		withVersion        bool
		generate           func(spec, format string) (pair, error)
	}{
		{"GenerateDataKeyPair", "EC_P256", "PEM", false, func(spec, format string) (pair, error) {
			r, err := cl.GenerateDataKeyPair(&dkms.GenerateDataKeyPairRequest{KeyId: tea.String(aesID), KeyPairSpec: tea.String(spec), KeyFormat: tea.String(format), Aad: aad})
			if err != nil {
				return pair{}, err
			}
			return pair{tea.StringValue(r.KeyId), "", tea.StringValue(r.KeyPairSpec), r.PublicKey, r.PrivateKeyPlaintext, r.PrivateKeyCiphertextBlob, r.Iv}, nil
		}},
		{"GenerateDataKeyPairWithoutPlaintext", "RSA_2048", "DER", false, func(spec, format string) (pair, error) {
			r, err := cl.GenerateDataKeyPairWithoutPlaintext(&dkms.GenerateDataKeyPairWithoutPlaintextRequest{KeyId: tea.String(aesID), KeyPairSpec: tea.String(spec), KeyFormat: tea.String(format), Aad: aad})
			if err != nil {
				return pair{}, err
			}
			return pair{tea.StringValue(r.KeyId), "", tea.StringValue(r.KeyPairSpec), r.PublicKey, nil, r.PrivateKeyCiphertextBlob, r.Iv}, nil
		}},
		{"AdvanceGenerateDataKeyPair", "RSA_2048", "PEM", true, func(spec, format string) (pair, error) {
			r, err := cl.AdvanceGenerateDataKeyPair(&dkms.AdvanceGenerateDataKeyPairRequest{KeyId: tea.String("alias/hsm-app"), KeyPairSpec: tea.String(spec), KeyFormat: tea.String(format), Aad: aad})
			if err != nil {
				return pair{}, err
			}
			return pair{tea.StringValue(r.KeyId), tea.StringValue(r.KeyVersionId), tea.StringValue(r.KeyPairSpec), r.PublicKey, r.PrivateKeyPlaintext, r.PrivateKeyCiphertextBlob, r.Iv}, nil
		}},
		{"AdvanceGenerateDataKeyPairWithoutPlaintext", "EC_P256", "DER", true, func(spec, format string) (pair, error) {
			r, err := cl.AdvanceGenerateDataKeyPairWithoutPlaintext(&dkms.AdvanceGenerateDataKeyPairWithoutPlaintextRequest{KeyId: tea.String(aesID), KeyPairSpec: tea.String(spec), KeyFormat: tea.String(format), Aad: aad})
			if err != nil {
				return pair{}, err
			}
			return pair{tea.StringValue(r.KeyId), tea.StringValue(r.KeyVersionId), tea.StringValue(r.KeyPairSpec), r.PublicKey, nil, r.PrivateKeyCiphertextBlob, r.Iv}, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.generate(tc.spec, tc.format)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if p.keyID != aesID || p.spec != tc.spec || len(p.iv) != 12 {
				t.Fatalf("answered key %s, spec %s, IV %x", p.keyID, p.spec, p.iv)
			}
			if tc.withVersion && p.version != version {
				t.Fatalf("KeyVersionId = %q, want the primary version %s", p.version, version)
			}
			sealed := open(p.blob, p.iv)
			if p.private != nil && !bytes.Equal(sealed, p.private) {
				t.Fatal("the private key's blob does not open to PrivateKeyPlaintext")
			}
			checkKeyPair(t, tc.format, sealed, p.public)
		})
	}
}

// hsmSignVerify signs with the HSM keys through cl (RAW and DIGEST),
// verifies the signatures with Go's crypto against GetPublicKey's answer,
// and has Verify accept them and refuse another message.
func hsmSignVerify(t *testing.T, cl *dkms.Client, rsaID, ecID string) {
	t.Helper()
	publicKey := func(id string) crypto.PublicKey {
		t.Helper()
		out, err := cl.GetPublicKey(&dkms.GetPublicKeyRequest{KeyId: tea.String(id)})
		if err != nil {
			t.Fatalf("GetPublicKey: %v", err)
		}
		block, _ := pem.Decode([]byte(tea.StringValue(out.PublicKey)))
		if block == nil {
			t.Fatalf("GetPublicKey's PublicKey is not PEM: %q", tea.StringValue(out.PublicKey))
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return pub
	}
	rsaPub, ok := publicKey(rsaID).(*rsa.PublicKey)
	if !ok || rsaPub.N.BitLen() != 2048 {
		t.Fatalf("the RSA_2048 key's public key is %T", rsaPub)
	}
	ecPub, ok := publicKey(ecID).(*ecdsa.PublicKey)
	if !ok || ecPub.Curve.Params().Name != "P-256" {
		t.Fatalf("the EC_P256 key's public key is %T", ecPub)
	}
	message := []byte("signed inside the HSM " + time.Now().UTC().Format(time.RFC3339Nano))
	digest := sha256.Sum256(message)
	for _, tc := range []struct {
		name, key, alg, mt string
		msg                []byte
		check              func(sig []byte) bool
	}{
		{"RSA PKCS1 RAW", rsaID, "RSA_PKCS1_SHA_256", "RAW", message, func(sig []byte) bool {
			return rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest[:], sig) == nil
		}},
		{"RSA PKCS1 DIGEST", rsaID, "RSA_PKCS1_SHA_256", "DIGEST", digest[:], func(sig []byte) bool {
			return rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest[:], sig) == nil
		}},
		{"RSA PSS RAW", rsaID, "RSA_PSS_SHA_256", "RAW", message, func(sig []byte) bool {
			return rsa.VerifyPSS(rsaPub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}},
		{"ECDSA RAW", ecID, "ECDSA_SHA_256", "RAW", message, func(sig []byte) bool { return ecdsa.VerifyASN1(ecPub, digest[:], sig) }},
		{"ECDSA DIGEST", ecID, "ECDSA_SHA_256", "DIGEST", digest[:], func(sig []byte) bool { return ecdsa.VerifyASN1(ecPub, digest[:], sig) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := cl.Sign(&dkms.SignRequest{KeyId: tea.String(tc.key), Algorithm: tea.String(tc.alg), Message: tc.msg, MessageType: tea.String(tc.mt)})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if tea.StringValue(sig.KeyId) != tc.key || !tc.check(sig.Signature) {
				t.Fatalf("Sign answered key %s; the signature does not verify with Go's crypto", tea.StringValue(sig.KeyId))
			}
			for _, v := range []struct {
				msg  []byte
				want bool
			}{{tc.msg, true}, {append([]byte("another "), tc.msg...), false}} {
				mt := tc.mt
				if !v.want && mt == "DIGEST" {
					d := sha256.Sum256(v.msg)
					v.msg = d[:]
				}
				out, err := cl.Verify(&dkms.VerifyRequest{KeyId: tea.String(tc.key), Algorithm: tea.String(tc.alg), Message: v.msg, MessageType: tea.String(mt), Signature: sig.Signature})
				if err != nil || tea.BoolValue(out.Value) != v.want {
					t.Fatalf("Verify = %v, %v; want %v", out, err, v.want)
				}
			}
		})
	}
}
