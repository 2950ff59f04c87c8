package node

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	dkmsopenapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi"
	dkmsapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util/protobuf/api"
	dkms "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/sdk"
	"google.golang.org/protobuf/proto"
	"software.sslmate.com/src/go-pkcs12"
)

const clientKeyPassword = "Passw0rd-instance"

// issuedClientKey is a client key made by CreateClientKey: the client key
// file's content the SDK reads, and its private key (for the tests that
// sign by hand).
type issuedClientKey struct {
	id      string
	content string
	priv    *rsa.PrivateKey
}

// newClientKey creates a network rule (when sources is not empty), a
// policy, an AAP and a client key through the OpenAPI of node i.
func (c *testCluster) newClientKey(i int, name string, resources []string, sources []string) issuedClientKey {
	c.t.Helper()
	return c.newClientKeyWith(i, name, resources, sources, nil)
}

// newClientKeyWith is newClientKey with more CreateClientKey parameters
// (NotBefore, NotAfter).
func (c *testCluster) newClientKeyWith(i int, name string, resources []string, sources []string, extra map[string]string) issuedClientKey {
	c.t.Helper()
	return c.newClientKeyIn(i, c.creds.InstanceID, name, resources, sources, extra)
}

// newClientKeyIn is newClientKeyWith with a policy on the given KMS
// instance.
func (c *testCluster) newClientKeyIn(i int, instance, name string, resources []string, sources []string, extra map[string]string) issuedClientKey {
	c.t.Helper()
	rules := ""
	if len(sources) > 0 {
		src, _ := json.Marshal(sources)
		c.mustCall(i, "CreateNetworkRule", map[string]string{"Name": name, "Type": "Private", "SourcePrivateIp": string(src)})
		rules = `{"NetworkRules":["` + name + `"]}`
	}
	res, _ := json.Marshal(resources)
	c.mustCall(i, "CreatePolicy", map[string]string{"Name": name, "KmsInstance": instance,
		"Permissions": `["RbacPermission/Template/CryptoServiceKeyUser"]`, "Resources": string(res), "AccessControlRules": rules})
	c.mustCall(i, "CreateApplicationAccessPoint", map[string]string{"Name": name, "Policies": `["` + name + `"]`})
	params := map[string]string{"AapName": name, "Password": clientKeyPassword}
	for k, v := range extra {
		params[k] = v
	}
	out := c.mustCall(i, "CreateClientKey", params)
	id, data := out["ClientKeyId"].(string), out["PrivateKeyData"].(string)
	p12, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		c.t.Fatal(err)
	}
	priv, _, err := pkcs12.Decode(p12, clientKeyPassword)
	if err != nil {
		c.t.Fatalf("the client key's PKCS#12 does not open: %v", err)
	}
	content, _ := json.Marshal(map[string]string{"KeyId": id, "PrivateKeyData": data})
	return issuedClientKey{id: id, content: string(content), priv: priv.(*rsa.PrivateKey)}
}

// instanceSDK is the official SDK, unmodified, for node i with a client key,
// trusting the CA that GetKmsInstance returns.
func (c *testCluster) instanceSDK(i int, caFile string, k issuedClientKey) *dkms.Client {
	c.t.Helper()
	cl, err := dkms.NewClient(&dkmsopenapi.Config{Protocol: tea.String("https"), Endpoint: tea.String(c.nodes[i].InstanceAddr()),
		CaFilePath: tea.String(caFile), ClientKeyContent: tea.String(k.content), Password: tea.String(clientKeyPassword)})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func (c *testCluster) instanceCAFile() string {
	c.t.Helper()
	return c.instanceCAFileOf(c.creds.InstanceID)
}

// instanceCAFileOf writes the CA that GetKmsInstance of instance returns
// to a file for the SDK's CaFilePath.
func (c *testCluster) instanceCAFileOf(instance string) string {
	c.t.Helper()
	caPEM, _ := c.instanceCAOf(0, instance)
	f := filepath.Join(c.t.TempDir(), "instance-ca.pem")
	if err := os.WriteFile(f, []byte(caPEM), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return f
}

// wantSDKError checks err is the SDK's error with code.
func wantSDKError(t *testing.T, err error, code string) {
	t.Helper()
	var sdkErr *tea.SDKError
	if !errors.As(err, &sdkErr) {
		t.Fatalf("err = %v (%T), want the SDK error %s", err, err, code)
	}
	if got := tea.StringValue(sdkErr.Code); got != code {
		t.Fatalf("SDK error %q (%s), want %s", got, tea.StringValue(sdkErr.Message), code)
	}
}

func (c *testCluster) createInstanceKey(i int, spec, usage string) string {
	c.t.Helper()
	m := c.mustCall(i, "CreateKey", map[string]string{"DKMSInstanceId": c.creds.InstanceID, "KeySpec": spec, "KeyUsage": usage})
	return m["KeyMetadata"].(map[string]any)["KeyId"].(string)
}

// The official KMS Instance SDK, unmodified, with a client key made by
// CreateClientKey, on a 3-node cluster over HTTPS: every action the face
// serves, each result checked independently of the service.
func TestInstanceEndpoint_OfficialSDKServesEachActionWithARealClientKey(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{instance: true})
	caFile := c.instanceCAFile()
	aes := c.createInstanceKey(0, "Aliyun_AES_256", "ENCRYPT/DECRYPT")
	rsaKey := c.createInstanceKey(1, "RSA_2048", "SIGN/VERIFY")
	ecKey := c.createInstanceKey(2, "EC_P256", "SIGN/VERIFY")
	c.mustCall(0, "CreateAlias", map[string]string{"AliasName": "alias/app", "KeyId": aes})
	ck := c.newClientKey(0, "app", []string{"key/*"}, nil)
	// Another node than the one that made everything.
	cl := c.instanceSDK(2, caFile, ck)

	plaintext, aad := []byte("attack at dawn"), []byte("order-42")
	enc, err := cl.Encrypt(&dkms.EncryptRequest{KeyId: tea.String("alias/app"), Plaintext: plaintext, Aad: aad, Algorithm: tea.String("AES_GCM")})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if tea.StringValue(enc.KeyId) != aes || len(enc.Iv) != 12 || !bytes.Contains(enc.CiphertextBlob, enc.Iv) || tea.StringValue(enc.RequestId) == "" {
		t.Fatalf("Encrypt answered key %s, IV %x, blob %x", tea.StringValue(enc.KeyId), enc.Iv, enc.CiphertextBlob)
	}
	decrypt := func(blob, iv, aad []byte) ([]byte, error) {
		out, err := cl.Decrypt(&dkms.DecryptRequest{KeyId: tea.String(aes), CiphertextBlob: blob, Iv: iv, Aad: aad, Algorithm: tea.String("AES_GCM")})
		if err != nil {
			return nil, err
		}
		return out.Plaintext, nil
	}
	if got, err := decrypt(enc.CiphertextBlob, enc.Iv, aad); err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	_, err = decrypt(enc.CiphertextBlob, enc.Iv, []byte("order-43"))
	wantSDKError(t, err, "InvalidCiphertext")

	// A rotated key still decrypts what its old version sealed: the blob
	// names its version.
	c.mustCall(1, "CreateKeyVersion", map[string]string{"KeyId": aes})
	if got, err := decrypt(enc.CiphertextBlob, enc.Iv, aad); err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("Decrypt after rotation = %q, %v", got, err)
	}

	dk, err := cl.GenerateDataKey(&dkms.GenerateDataKeyRequest{KeyId: tea.String(aes), NumberOfBytes: tea.Int32(32), Aad: aad})
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if len(dk.Plaintext) != 32 {
		t.Fatalf("GenerateDataKey gave %d bytes", len(dk.Plaintext))
	}
	if got, err := decrypt(dk.CiphertextBlob, dk.Iv, aad); err != nil || !bytes.Equal(got, dk.Plaintext) {
		t.Fatalf("Decrypt of the data key = %x, %v; want %x", got, err, dk.Plaintext)
	}

	rnd, err := cl.GenerateRandom(&dkms.GenerateRandomRequest{Length: tea.Int32(24)})
	if err != nil || len(rnd.Random) != 24 {
		t.Fatalf("GenerateRandom: %x, %v", rnd.Random, err)
	}
	rnd2, err := cl.GenerateRandom(&dkms.GenerateRandomRequest{Length: tea.Int32(24)})
	if err != nil || bytes.Equal(rnd.Random, rnd2.Random) {
		t.Fatalf("GenerateRandom twice gave the same bytes (%v)", err)
	}

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
	message := []byte("the message to sign")
	digest := sha256.Sum256(message)

	rsaPub := publicKey(rsaKey).(*rsa.PublicKey)
	sig, err := cl.Sign(&dkms.SignRequest{KeyId: tea.String(rsaKey), Algorithm: tea.String("RSA_PKCS1_SHA_256"), Message: message, MessageType: tea.String("RAW")})
	if err != nil {
		t.Fatalf("Sign RAW: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest[:], sig.Signature); err != nil {
		t.Fatalf("the RSA signature does not verify with Go's crypto: %v", err)
	}
	ecPub := publicKey(ecKey).(*ecdsa.PublicKey)
	ecSig, err := cl.Sign(&dkms.SignRequest{KeyId: tea.String(ecKey), Algorithm: tea.String("ECDSA_SHA_256"), Message: digest[:], MessageType: tea.String("DIGEST")})
	if err != nil {
		t.Fatalf("Sign DIGEST: %v", err)
	}
	if !ecdsa.VerifyASN1(ecPub, digest[:], ecSig.Signature) {
		t.Fatal("the ECDSA signature does not verify with Go's crypto")
	}
	for _, tc := range []struct {
		name, key, alg, mt string
		msg, sig           []byte
		want               bool
	}{
		{"RSA RAW", rsaKey, "RSA_PKCS1_SHA_256", "RAW", message, sig.Signature, true},
		{"RSA RAW, another message", rsaKey, "RSA_PKCS1_SHA_256", "RAW", []byte("another"), sig.Signature, false},
		{"EC DIGEST", ecKey, "ECDSA_SHA_256", "DIGEST", digest[:], ecSig.Signature, true},
		{"EC RAW of the same message", ecKey, "ECDSA_SHA_256", "RAW", message, ecSig.Signature, true},
	} {
		out, err := cl.Verify(&dkms.VerifyRequest{KeyId: tea.String(tc.key), Algorithm: tea.String(tc.alg), Message: tc.msg, MessageType: tea.String(tc.mt), Signature: tc.sig})
		if err != nil || tea.BoolValue(out.Value) != tc.want {
			t.Fatalf("Verify %s = %v, %v; want %v", tc.name, out, err, tc.want)
		}
	}

	_, err = cl.GetSecretValue(&dkms.GetSecretValueRequest{SecretName: tea.String("db-password")})
	wantSDKError(t, err, "Forbidden.ResourceNotFound")
}

// A client key outside its validity (expired, or not valid yet) is refused
// by the instance face, which reads the time from its own clock: the
// cluster's service clock runs two hours behind, so CreateClientKey accepts
// a NotAfter that is already past for the face.
func TestInstanceEndpoint_RefusesAClientKeyOutsideItsValidity(t *testing.T) {
	clock := &catalogueClock{now: time.Now().Add(-2 * time.Hour)}
	c := newTestCluster(t, 1, clusterOpts{instance: true, clock: clock.Now})
	caFile := c.instanceCAFile()
	aes := c.createInstanceKey(0, "Aliyun_AES_256", "ENCRYPT/DECRYPT")
	for _, tc := range []struct {
		name  string
		extra map[string]string
		want  string
	}{
		{"valid", nil, ""},
		{"expired an hour ago", map[string]string{"NotAfter": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "Forbidden.AccessKey"},
		{"valid from tomorrow", map[string]string{"NotBefore": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}, "Forbidden.AccessKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.NewReplacer(" ", "-").Replace(tc.name)
			cl := c.instanceSDK(0, caFile, c.newClientKeyWith(0, name, []string{"key/*"}, nil, tc.extra))
			_, err := cl.Encrypt(&dkms.EncryptRequest{KeyId: tea.String(aes), Plaintext: []byte("x")})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantSDKError(t, err, tc.want)
		})
	}
}

// A client key is refused, with the reference's code, when its AAP's
// policies do not cover the key or the caller's address, when it was
// deleted through another node, and a request whose body was changed after
// signing or whose date is stale is refused too.
func TestInstanceEndpoint_RefusesWhatTheClientKeyMayNotDo(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{instance: true})
	caFile := c.instanceCAFile()
	aes := c.createInstanceKey(0, "Aliyun_AES_256", "ENCRYPT/DECRYPT")
	other := c.createInstanceKey(0, "Aliyun_AES_256", "ENCRYPT/DECRYPT")
	c.mustCall(0, "CreateAlias", map[string]string{"AliasName": "alias/named", "KeyId": aes})
	// A key of no instance is no client key's.
	outside := c.mustCall(0, "CreateKey", map[string]string{"Description": "outside any instance"})["KeyMetadata"].(map[string]any)["KeyId"].(string)

	encrypt := func(cl *dkms.Client, key string) error {
		_, err := cl.Encrypt(&dkms.EncryptRequest{KeyId: tea.String(key), Plaintext: []byte("x")})
		return err
	}
	onlyOther := c.instanceSDK(1, caFile, c.newClientKey(0, "only-other", []string{"key/" + other}, nil))
	byAlias := c.instanceSDK(1, caFile, c.newClientKey(0, "by-alias", []string{"alias/named"}, nil))
	far := c.instanceSDK(1, caFile, c.newClientKey(0, "far", []string{"key/*"}, []string{"10.0.0.0/8"}))
	here := c.instanceSDK(1, caFile, c.newClientKey(0, "here", []string{"key/*"}, []string{"127.0.0.0/8"}))
	for _, tc := range []struct {
		name string
		cl   *dkms.Client
		key  string
		want string // "" allowed
	}{
		{"a policy that names the key", onlyOther, other, ""},
		{"a policy without the key", onlyOther, aes, "Forbidden.NoPermission"},
		{"an alias resource, the key named by that alias", byAlias, "alias/named", ""},
		{"an alias resource, the key named by id", byAlias, aes, "Forbidden.NoPermission"},
		{"a network rule that excludes the caller", far, aes, "Forbidden.NoPermission"},
		{"a network rule that lists the caller", here, aes, ""},
		{"a key outside the policy's instance", here, outside, "Forbidden.NoPermission"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := encrypt(tc.cl, tc.key)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantSDKError(t, err, tc.want)
		})
	}

	t.Run("an alias resource does not cover a blob of another key", func(t *testing.T) {
		enc, err := here.Encrypt(&dkms.EncryptRequest{KeyId: tea.String(other), Plaintext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = byAlias.Decrypt(&dkms.DecryptRequest{KeyId: tea.String("alias/named"), CiphertextBlob: enc.CiphertextBlob})
		wantSDKError(t, err, "Forbidden.NoPermission")
	})

	t.Run("a client key deleted through another node", func(t *testing.T) {
		ck := c.newClientKey(0, "doomed", []string{"key/*"}, nil)
		cl := c.instanceSDK(0, caFile, ck)
		if err := encrypt(cl, aes); err != nil {
			t.Fatalf("before deletion: %v", err)
		}
		c.mustCall(2, "DeleteClientKey", map[string]string{"ClientKeyId": ck.id})
		wantSDKError(t, encrypt(cl, aes), "InvalidAccessKeyId.NotFound")
	})

	ck := c.newClientKey(0, "signer", []string{"key/*"}, nil)
	body, _ := proto.Marshal(&dkmsapi.EncryptRequest{KeyId: aes, Plaintext: []byte("hello")})
	tampered, _ := proto.Marshal(&dkmsapi.EncryptRequest{KeyId: aes, Plaintext: []byte("jello")})
	for _, tc := range []struct {
		name       string
		signedBody []byte // its content-sha256 is signed
		sentBody   []byte
		date       time.Time
		wantStatus int
		wantCode   string
	}{
		{"signed as the SDK signs", body, body, time.Now(), 200, ""},
		{"a body changed after signing", body, tampered, time.Now(), 400, "SignatureDoesNotMatch"},
		{"a date 20 minutes old", body, body, time.Now().Add(-20 * time.Minute), 400, "InvalidTimeStamp.Expired"},
		{"a date 20 minutes ahead", body, body, time.Now().Add(20 * time.Minute), 400, "InvalidTimeStamp.Expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := postSigned(t, c, caFile, ck, "Encrypt", tc.signedBody, tc.sentBody, tc.date)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (%x)", status, tc.wantStatus, out)
			}
			if tc.wantCode == "" {
				var resp dkmsapi.EncryptResponse
				if err := proto.Unmarshal(out, &resp); err != nil || len(resp.CiphertextBlob) == 0 {
					t.Fatalf("answer %+v, %v", &resp, err)
				}
				return
			}
			var e dkmsapi.Error
			if err := proto.Unmarshal(out, &e); err != nil || e.ErrorCode != tc.wantCode {
				t.Fatalf("api.Error %+v (%v), want %s", &e, err, tc.wantCode)
			}
		})
	}
}

// postSigned sends one instance API request signed by hand, as the SDK
// signs (openapi-util GetStringToSign and SignString), with the
// content-sha256 of signedBody and sentBody as the body.
func postSigned(t *testing.T, c *testCluster, caFile string, k issuedClientKey, action string, signedBody, sentBody []byte, date time.Time) (int, []byte) {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	sum := sha256.Sum256(signedBody)
	headers := map[string]string{
		"content-type": "application/x-protobuf", "accept": "application/x-protobuf",
		"date":             date.UTC().Format(http.TimeFormat),
		"content-sha256":   strings.ToUpper(hex.EncodeToString(sum[:])),
		"x-kms-apiversion": "dkms-gcs-0.2", "x-kms-apiname": action,
		"x-kms-signaturemethod": "RSA_PKCS1_SHA_256", "x-kms-acccesskeyid": k.id,
	}
	var kms []string
	for name := range headers {
		if strings.HasPrefix(name, "x-kms-") {
			kms = append(kms, name)
		}
	}
	sort.Strings(kms)
	toSign := "POST\n" + headers["content-sha256"] + "\n" + headers["content-type"] + "\n" + headers["date"] + "\n"
	for _, n := range kms {
		toSign += n + ":" + headers[n] + "\n"
	}
	toSign += "/"
	d := sha256.Sum256([]byte(toSign))
	sig, err := rsa.SignPKCS1v15(nil, k.priv, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "https://"+c.nodes[0].InstanceAddr()+"/", bytes.NewReader(sentBody))
	if err != nil {
		t.Fatal(err)
	}
	for n, v := range headers {
		req.Header.Set(n, v)
	}
	req.Header.Set("authorization", "Bearer "+base64.StdEncoding.EncodeToString(sig))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// The official SDK, unmodified, with a real client key: the Advance actions
// and the four data-key-pair actions on a software key, each result checked
// independently (the key versions against DescribeKey, a private key
// against its public key with Go's crypto).
func TestInstanceEndpoint_OfficialSDKServesTheAdvanceAndDataKeyPairActions(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{instance: true})
	caFile := c.instanceCAFile()
	aes := c.createInstanceKey(0, "Aliyun_AES_256", "ENCRYPT/DECRYPT")
	c.mustCall(0, "CreateAlias", map[string]string{"AliasName": "alias/adv", "KeyId": aes})
	cl := c.instanceSDK(0, caFile, c.newClientKey(0, "adv", []string{"key/*"}, nil))
	primary := func() string {
		t.Helper()
		return c.mustCall(0, "DescribeKey", map[string]string{"KeyId": aes})["KeyMetadata"].(map[string]any)["PrimaryKeyVersion"].(string)
	}
	advanceDecrypt := func(blob, iv, aad []byte) (*dkms.AdvanceDecryptResponse, error) {
		return cl.AdvanceDecrypt(&dkms.AdvanceDecryptRequest{CiphertextBlob: blob, Iv: iv, Aad: aad, Algorithm: tea.String("AES_GCM")})
	}

	plaintext, aad := []byte("advance at dawn"), []byte("order-7")
	v1 := primary()
	enc, err := cl.AdvanceEncrypt(&dkms.AdvanceEncryptRequest{KeyId: tea.String("alias/adv"), Plaintext: plaintext, Aad: aad, Algorithm: tea.String("AES_GCM")})
	if err != nil {
		t.Fatalf("AdvanceEncrypt: %v", err)
	}
	if tea.StringValue(enc.KeyId) != aes || tea.StringValue(enc.KeyVersionId) != v1 || len(enc.Iv) != 12 || !bytes.Contains(enc.CiphertextBlob, enc.Iv) {
		t.Fatalf("AdvanceEncrypt answered key %s version %s (primary %s), IV %x", tea.StringValue(enc.KeyId), tea.StringValue(enc.KeyVersionId), v1, enc.Iv)
	}
	out, err := advanceDecrypt(enc.CiphertextBlob, enc.Iv, aad)
	if err != nil || !bytes.Equal(out.Plaintext, plaintext) || tea.StringValue(out.KeyId) != aes || tea.StringValue(out.KeyVersionId) != v1 {
		t.Fatalf("AdvanceDecrypt = %v, %v", out, err)
	}
	_, err = advanceDecrypt(enc.CiphertextBlob, enc.Iv, []byte("order-8"))
	wantSDKError(t, err, "InvalidCiphertext")

	// After a rotation the old blob still opens (it names its version) and
	// a new one is sealed under the new primary version.
	c.mustCall(0, "CreateKeyVersion", map[string]string{"KeyId": aes})
	v2 := primary()
	if v2 == v1 {
		t.Fatal("CreateKeyVersion did not change the primary version")
	}
	if out, err := advanceDecrypt(enc.CiphertextBlob, nil, aad); err != nil || !bytes.Equal(out.Plaintext, plaintext) || tea.StringValue(out.KeyVersionId) != v1 {
		t.Fatalf("AdvanceDecrypt after rotation = %v, %v", out, err)
	}
	enc2, err := cl.AdvanceEncrypt(&dkms.AdvanceEncryptRequest{KeyId: tea.String(aes), Plaintext: plaintext, Aad: aad})
	if err != nil || tea.StringValue(enc2.KeyVersionId) != v2 {
		t.Fatalf("AdvanceEncrypt after rotation = %v, %v; want version %s", enc2, err, v2)
	}
	if out, err := advanceDecrypt(enc2.CiphertextBlob, enc2.Iv, aad); err != nil || !bytes.Equal(out.Plaintext, plaintext) || tea.StringValue(out.KeyVersionId) != v2 {
		t.Fatalf("AdvanceDecrypt of the new blob = %v, %v", out, err)
	}

	dk, err := cl.AdvanceGenerateDataKey(&dkms.AdvanceGenerateDataKeyRequest{KeyId: tea.String(aes), NumberOfBytes: tea.Int32(24), Aad: aad})
	if err != nil {
		t.Fatalf("AdvanceGenerateDataKey: %v", err)
	}
	if len(dk.Plaintext) != 24 || tea.StringValue(dk.KeyVersionId) != v2 {
		t.Fatalf("AdvanceGenerateDataKey gave %d bytes under version %s", len(dk.Plaintext), tea.StringValue(dk.KeyVersionId))
	}
	if out, err := advanceDecrypt(dk.CiphertextBlob, dk.Iv, aad); err != nil || !bytes.Equal(out.Plaintext, dk.Plaintext) {
		t.Fatalf("AdvanceDecrypt of the data key = %v, %v; want %x", out, err, dk.Plaintext)
	}

	// Each data-key-pair action: the private key (as answered, or opened
	// from the blob through the SDK) signs, and the public key verifies.
	type pair struct {
		keyID, version, spec string
		public, private      []byte
		blob, iv             []byte
	}
	openWithDecrypt := func(blob, iv []byte) []byte {
		t.Helper()
		out, err := cl.Decrypt(&dkms.DecryptRequest{KeyId: tea.String(aes), CiphertextBlob: blob, Iv: iv, Aad: aad})
		if err != nil {
			t.Fatalf("Decrypt of the private key: %v", err)
		}
		return out.Plaintext
	}
	openWithAdvanceDecrypt := func(blob, iv []byte) []byte {
		t.Helper()
		out, err := advanceDecrypt(blob, iv, aad)
		if err != nil {
			t.Fatalf("AdvanceDecrypt of the private key: %v", err)
		}
		return out.Plaintext
	}
	for _, tc := range []struct {
		name, spec, format string
		withVersion        bool // the Advance variants name the key version
		generate           func(spec, format string) (pair, error)
		open               func(blob, iv []byte) []byte // nil: the private key is answered
	}{
		{"GenerateDataKeyPair", "RSA_2048", "PEM", false, func(spec, format string) (pair, error) {
			r, err := cl.GenerateDataKeyPair(&dkms.GenerateDataKeyPairRequest{KeyId: tea.String("alias/adv"), KeyPairSpec: tea.String(spec), KeyFormat: tea.String(format), Aad: aad, Algorithm: tea.String("AES_GCM")})
			if err != nil {
				return pair{}, err
			}
			return pair{tea.StringValue(r.KeyId), "", tea.StringValue(r.KeyPairSpec), r.PublicKey, r.PrivateKeyPlaintext, r.PrivateKeyCiphertextBlob, r.Iv}, nil
		}, nil},
		{"GenerateDataKeyPairWithoutPlaintext", "EC_P256", "DER", false, func(spec, format string) (pair, error) {
			r, err := cl.GenerateDataKeyPairWithoutPlaintext(&dkms.GenerateDataKeyPairWithoutPlaintextRequest{KeyId: tea.String(aes), KeyPairSpec: tea.String(spec), KeyFormat: tea.String(format), Aad: aad})
			if err != nil {
				return pair{}, err
			}
			return pair{tea.StringValue(r.KeyId), "", tea.StringValue(r.KeyPairSpec), r.PublicKey, nil, r.PrivateKeyCiphertextBlob, r.Iv}, nil
		}, openWithDecrypt},
		{"AdvanceGenerateDataKeyPair", "EC_P256", "PEM", true, func(spec, format string) (pair, error) {
			r, err := cl.AdvanceGenerateDataKeyPair(&dkms.AdvanceGenerateDataKeyPairRequest{KeyId: tea.String(aes), KeyPairSpec: tea.String(spec), KeyFormat: tea.String(format), Aad: aad})
			if err != nil {
				return pair{}, err
			}
			return pair{tea.StringValue(r.KeyId), tea.StringValue(r.KeyVersionId), tea.StringValue(r.KeyPairSpec), r.PublicKey, r.PrivateKeyPlaintext, r.PrivateKeyCiphertextBlob, r.Iv}, nil
		}, nil},
		{"AdvanceGenerateDataKeyPairWithoutPlaintext", "RSA_2048", "DER", true, func(spec, format string) (pair, error) {
			r, err := cl.AdvanceGenerateDataKeyPairWithoutPlaintext(&dkms.AdvanceGenerateDataKeyPairWithoutPlaintextRequest{KeyId: tea.String("alias/adv"), KeyPairSpec: tea.String(spec), KeyFormat: tea.String(format), Aad: aad})
			if err != nil {
				return pair{}, err
			}
			return pair{tea.StringValue(r.KeyId), tea.StringValue(r.KeyVersionId), tea.StringValue(r.KeyPairSpec), r.PublicKey, nil, r.PrivateKeyCiphertextBlob, r.Iv}, nil
		}, openWithAdvanceDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.generate(tc.spec, tc.format)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if p.keyID != aes || p.spec != tc.spec || len(p.iv) != 12 || !bytes.Contains(p.blob, p.iv) {
				t.Fatalf("answered key %s, spec %s, IV %x", p.keyID, p.spec, p.iv)
			}
			if tc.withVersion && p.version != v2 {
				t.Fatalf("KeyVersionId = %q, want the primary version %s", p.version, v2)
			}
			private := p.private
			if tc.open == nil {
				if len(private) == 0 {
					t.Fatal("no PrivateKeyPlaintext")
				}
				// The blob is that same private key.
				if got := openWithAdvanceDecrypt(p.blob, p.iv); !bytes.Equal(got, private) {
					t.Fatal("the private key's blob does not open to PrivateKeyPlaintext")
				}
			} else {
				if len(private) != 0 {
					t.Fatal("a WithoutPlaintext action answered the private key")
				}
				private = tc.open(p.blob, p.iv)
			}
			checkKeyPair(t, tc.format, private, p.public)
		})
	}
}

// checkKeyPair signs with the PKCS#8 private key and verifies with the
// X.509 public key, both in format (PEM or DER), using Go's crypto only.
func checkKeyPair(t *testing.T, format string, private, public []byte) {
	t.Helper()
	der := func(b []byte, typ string) []byte {
		if format == "DER" {
			return b
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != typ {
			t.Fatalf("not a PEM %s: %q", typ, b)
		}
		return block.Bytes
	}
	priv, err := x509.ParsePKCS8PrivateKey(der(private, "PRIVATE KEY"))
	if err != nil {
		t.Fatalf("the private key is not PKCS#8: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der(public, "PUBLIC KEY"))
	if err != nil {
		t.Fatalf("the public key is not X.509: %v", err)
	}
	digest := sha256.Sum256([]byte("signed with the data key pair"))
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		rp, ok := pub.(*rsa.PublicKey)
		if !ok || rsa.VerifyPKCS1v15(rp, crypto.SHA256, digest[:], sig) != nil {
			t.Fatal("the public key does not verify the private key's RSA signature")
		}
	case *ecdsa.PrivateKey:
		sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		ep, ok := pub.(*ecdsa.PublicKey)
		if !ok || !ecdsa.VerifyASN1(ep, digest[:], sig) {
			t.Fatal("the public key does not verify the private key's ECDSA signature")
		}
	default:
		t.Fatalf("private key of type %T", priv)
	}
}
