package node

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	alisdk "github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerr "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	alikms "github.com/aliyun/alibaba-cloud-sdk-go/services/kms"
	smmodels "github.com/aliyun/aliyun-secretsmanager-client-go/sdk/models"
	smservice "github.com/aliyun/aliyun-secretsmanager-client-go/sdk/service"
)

// The path github.com/aliyun/aliyun-secretsmanager-client-go v1.1.5 takes
// in its shared-gateway mode: the older github.com/aliyun/alibaba-cloud-sdk-go
// services/kms client, built as that client builds it (NewClientWithOptions
// with an AccessKeyCredential, Domain = the region's Endpoint "host:port",
// HTTPS with certificate checks off, its user agent appended), every request
// with Scheme "https" and sent with DoActionWithSigner(req, resp, nil): POST
// with every parameter in the query, an empty form body, a V1 HMAC-SHA1
// signature whose SignatureType is empty, RegionId added.

// httpsNode starts a single node serving its API over HTTPS, initialized.
func httpsNode(t *testing.T) (*Node, string, string) {
	t.Helper()
	ca := newTestCA(t, "api CA")
	cert := ca.issue(t, "dev")
	n := startConfigured(t, "dev", 0, nil, func(c *Config) {
		c.Single = true
		c.HTTPTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	waitFor(t, "the single node to lead", 20*time.Second, func() bool { return n.Store().IsLeader() })
	res, err := n.Service().Init(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return n, res.AccessKeyID, res.AccessKeySecret
}

// secretsManagerKMSClient builds the alibaba-cloud-sdk-go kms client exactly
// as the secrets-manager client's buildKmsClient does.
func secretsManagerKMSClient(t *testing.T, endpoint, region, akID, akSecret string) *alikms.Client {
	t.Helper()
	c, err := alikms.NewClientWithOptions(region, alisdk.NewConfig(),
		&credentials.AccessKeyCredential{AccessKeyId: akID, AccessKeySecret: akSecret})
	if err != nil {
		t.Fatal(err)
	}
	c.Domain = endpoint
	c.SetHTTPSInsecure(true)
	c.AppendUserAgent("aliyun-secretsmanager-client-go", "1.1.5")
	t.Cleanup(c.Shutdown)
	return c
}

func TestAlibabaCloudSDK_V1OverHTTPS_AsTheSecretsManagerClientSendsIt(t *testing.T) {
	n, akID, akSecret := httpsNode(t)
	endpoint := strings.TrimPrefix(n.Endpoint(), "https://")
	c := secretsManagerKMSClient(t, endpoint, "local", akID, akSecret)

	create := alikms.CreateCreateKeyRequest()
	create.Scheme = "https"
	created := alikms.CreateCreateKeyResponse()
	if err := c.DoActionWithSigner(create, created, nil); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keyID := created.KeyMetadata.KeyId
	if keyID == "" || created.RequestId == "" {
		t.Fatalf("CreateKey answer %s: no KeyId or RequestId", created.GetHttpContentString())
	}

	describe := alikms.CreateDescribeKeyRequest()
	describe.Scheme = "https"
	describe.KeyId = keyID
	described := alikms.CreateDescribeKeyResponse()
	if err := c.DoActionWithSigner(describe, described, nil); err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
	if described.KeyMetadata.KeyId != keyID || described.KeyMetadata.KeyState != "Enabled" {
		t.Fatalf("DescribeKey answer %+v", described.KeyMetadata)
	}

	plaintext := base64.StdEncoding.EncodeToString([]byte("hello secrets client"))
	enc := alikms.CreateEncryptRequest()
	enc.Scheme = "https"
	enc.KeyId = keyID
	enc.Plaintext = plaintext
	enc.EncryptionContext = `{"app":"cache"}`
	encrypted := alikms.CreateEncryptResponse()
	if err := c.DoActionWithSigner(enc, encrypted, nil); err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	dec := alikms.CreateDecryptRequest()
	dec.Scheme = "https"
	dec.CiphertextBlob = encrypted.CiphertextBlob
	dec.EncryptionContext = `{"app":"cache"}`
	decrypted := alikms.CreateDecryptResponse()
	if err := c.DoActionWithSigner(dec, decrypted, nil); err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if decrypted.Plaintext != plaintext || decrypted.KeyId != keyID {
		t.Fatalf("Decrypt gave %q from %s, want %q from %s", decrypted.Plaintext, decrypted.KeyId, plaintext, keyID)
	}

	// A parameter with characters V1 percent-encodes specially (space,
	// '*', '~', '+', '/', non-ASCII) must verify.
	desc := alikms.CreateUpdateKeyDescriptionRequest()
	desc.Scheme = "https"
	desc.KeyId = keyID
	desc.Description = "a*b ~c+d/e=f&g 秘密"
	if err := c.DoActionWithSigner(desc, alikms.CreateUpdateKeyDescriptionResponse(), nil); err != nil {
		t.Fatalf("UpdateKeyDescription with special characters: %v", err)
	}
	if err := c.DoActionWithSigner(describe, described, nil); err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
	if described.KeyMetadata.Description != "a*b ~c+d/e=f&g 秘密" {
		t.Fatalf("description %q", described.KeyMetadata.Description)
	}
}

// The SDK turns a non-2xx JSON answer into *errors.ServerError by reading
// Code, Message and RequestId (and HostId); the secrets-manager client
// decides on retries by that code (Rejected.Throttling,
// ServiceUnavailableTemporary, InternalFailure).
func TestAlibabaCloudSDK_ParsesTheServiceErrors(t *testing.T) {
	n, akID, akSecret := httpsNode(t)
	endpoint := strings.TrimPrefix(n.Endpoint(), "https://")

	cases := []struct {
		name   string
		secret string
		keyID  string
		status int
		code   string
	}{
		{"a key that does not exist", akSecret, "00000000-0000-0000-0000-000000000000", http.StatusNotFound, "Forbidden.KeyNotFound"},
		{"a wrong secret", "not-the-secret", "00000000-0000-0000-0000-000000000000", http.StatusBadRequest, "SignatureDoesNotMatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := secretsManagerKMSClient(t, endpoint, "local", akID, tc.secret)
			req := alikms.CreateDescribeKeyRequest()
			req.Scheme = "https"
			req.KeyId = tc.keyID
			err := c.DoActionWithSigner(req, alikms.CreateDescribeKeyResponse(), nil)
			var se *sdkerr.ServerError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want *errors.ServerError", err, err)
			}
			if se.ErrorCode() != tc.code || se.HttpStatus() != tc.status {
				t.Fatalf("ServerError %d %s (%s), want %d %s", se.HttpStatus(), se.ErrorCode(), se.Message(), tc.status, tc.code)
			}
			if se.Message() == "" || se.RequestId() == "" {
				t.Fatalf("ServerError without message or request id: %q %q", se.Message(), se.RequestId())
			}
		})
	}
}

// The secrets-manager client's own service client, unmodified, reaches the
// node, signs acceptably and reads the node's answer to GetSecretValue as a
// service error with the node's code (not a signature or transport error).
// Until secrets exist that answer is "no such secret" or "no such action";
// the point is the path.
func TestSecretsManagerClient_ReachesTheNodeAndReadsItsErrors(t *testing.T) {
	n, akID, akSecret := httpsNode(t)
	endpoint := strings.TrimPrefix(n.Endpoint(), "https://")

	sm := smservice.NewBaseSecretManagerClientBuilder().Standard().
		WithAccessKey(akID, akSecret).
		AddRegionInfo(&smmodels.RegionInfo{RegionId: "cn-hangzhou", Endpoint: endpoint}).
		Build()
	if err := sm.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	req := alikms.CreateGetSecretValueRequest()
	req.Scheme = "https"
	req.SecretName = "does-not-exist"
	req.VersionStage = "ACSCurrent"
	req.FetchExtendedConfig = requests.NewBoolean(true)
	_, err := sm.GetSecretValue(req)
	var se *sdkerr.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v, want *errors.ServerError", err, err)
	}
	if se.ErrorCode() != "Forbidden.ResourceNotFound" || se.HttpStatus() != 404 {
		t.Fatalf("GetSecretValue of a missing secret: %d %s (%s)", se.HttpStatus(), se.ErrorCode(), se.Message())
	}
	if se.RequestId() == "" {
		t.Fatal("no RequestId in the error")
	}
}
