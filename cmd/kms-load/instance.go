package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	dkmsopenapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi"
	dkmsutil "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util"
	dkms "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/sdk"

	"github.com/raftkms/raftkms/client"
)

// The two APIs kms-load drives.
const (
	apiOpenAPI  = "openapi"
	apiInstance = "instance"
)

// instanceActions are the actions --api instance drives.
var instanceActions = map[string]bool{"Encrypt": true, "Decrypt": true, "GenerateDataKey": true}

// resolveInstance checks the --api flag and, for the instance API, fills
// in the endpoint and CA from the credentials and reads the client key's
// password. Every refusal is a usage error, before any request.
func (o *options) resolveInstance(cr client.Credentials, passwordFile string) error {
	switch o.api {
	case apiOpenAPI:
		if o.clientKeyFile != "" || passwordFile != "" || o.instanceEndpoint != "" || o.instanceCA != "" {
			return errors.New("--client-key-file, --client-key-password-file, --instance-endpoint and --instance-ca need --api instance")
		}
		return nil
	case apiInstance:
	default:
		return fmt.Errorf("--api %q: want openapi, instance, openbao or local-kms", o.api)
	}
	if !instanceActions[o.action] {
		return fmt.Errorf("--api instance drives Encrypt, Decrypt or GenerateDataKey, not %q", o.action)
	}
	if o.signature != "v3" {
		return errors.New("--signature is for --api openapi (the instance SDK signs with the client key)")
	}
	if o.clientKeyFile == "" || passwordFile == "" {
		return errors.New("--api instance needs --client-key-file and --client-key-password-file (kmsctl client-key create)")
	}
	if o.instanceEndpoint == "" {
		o.instanceEndpoint = cr.InstanceEndpoint
	}
	if o.instanceCA == "" {
		o.instanceCA = cr.InstanceCaFile
	}
	if o.instanceEndpoint == "" || strings.Contains(o.instanceEndpoint, "://") {
		return fmt.Errorf("--instance-endpoint %q: want host:port (or InstanceEndpoint in the credentials)", o.instanceEndpoint)
	}
	if o.instanceCA == "" {
		return errors.New("--api instance needs --instance-ca (or InstanceCaFile in the credentials)")
	}
	b, err := os.ReadFile(passwordFile)
	if err != nil {
		return fmt.Errorf("--client-key-password-file: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return errors.New("--client-key-password-file is empty")
	}
	o.clientKeyPassword = pw
	return nil
}

// newInstanceClient is one official SDK client for the instance API.
func newInstanceClient(o options) (*dkms.Client, error) {
	c, err := dkms.NewClient(&dkmsopenapi.Config{
		Protocol:      tea.String("https"),
		Endpoint:      tea.String(o.instanceEndpoint),
		CaFilePath:    tea.String(o.instanceCA),
		ClientKeyFile: tea.String(o.clientKeyFile),
		Password:      tea.String(o.clientKeyPassword),
	})
	if err != nil {
		return nil, fmt.Errorf("instance SDK client: %w", err)
	}
	return c, nil
}

// loadInstance drives the instance API through the official SDK, one SDK
// client per concurrent client. The key is made through the OpenAPI (the
// credentials' access key) unless --key names one; the client key's AAP
// must allow it. The SDK's automatic retries are off: one call, one request.
//
// Each worker also gets its own HTTP client (and so its own TLS
// connection): the SDK's tea layer shares one http.Client per set of
// runtime options process-wide and sets its Timeout on every request,
// unsynchronized with the requests in flight on it (a data race under
// -race). Its pool is keyed on the read timeout among others, so each
// worker's is 60 s plus its index in milliseconds.
func loadInstance(o options, cr client.Credentials, stderr io.Writer) (result, error) {
	key := o.keyID
	if key == "" {
		oc, err := client.New(cr.Endpoint, cr.AccessKeyId, cr.AccessKeySecret)
		if err != nil {
			return result{}, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		key, _, err = createKey(ctx, cr, oc, "Aliyun_AES_256")
		cancel()
		if err != nil {
			return result{}, err
		}
	}
	clients := make([]*dkms.Client, o.concurrency)
	for i := range clients {
		c, err := newInstanceClient(o)
		if err != nil {
			return result{}, err
		}
		clients[i] = c
	}
	_, pt := plaintextOf(o.size)
	plaintext := []byte(pt)
	runtime := func(w int) *dkmsutil.RuntimeOptions {
		return &dkmsutil.RuntimeOptions{Autoretry: tea.Bool(false), ReadTimeout: tea.Int(60_000 + w)}
	}
	var blob, iv []byte
	if o.action == "Decrypt" {
		out, err := clients[0].EncryptWithOptions(&dkms.EncryptRequest{KeyId: tea.String(key), Plaintext: plaintext}, runtime(0))
		if err != nil {
			return result{}, fmt.Errorf("encrypt the ciphertext to decrypt: %w", err)
		}
		blob, iv = out.CiphertextBlob, out.Iv
	}
	worker := func(w int) func() error {
		c, rt := clients[w], runtime(w)
		switch o.action {
		case "Decrypt":
			return func() error {
				_, err := c.DecryptWithOptions(&dkms.DecryptRequest{KeyId: tea.String(key), CiphertextBlob: blob, Iv: iv}, rt)
				return err
			}
		case "GenerateDataKey":
			return func() error {
				_, err := c.GenerateDataKeyWithOptions(&dkms.GenerateDataKeyRequest{KeyId: tea.String(key)}, rt)
				return err
			}
		}
		return func() error {
			_, err := c.EncryptWithOptions(&dkms.EncryptRequest{KeyId: tea.String(key), Plaintext: plaintext}, rt)
			return err
		}
	}
	codeOf := func(err error) string {
		var se *tea.SDKError
		if errors.As(err, &se) && tea.StringValue(se.Code) != "" {
			return tea.StringValue(se.Code)
		}
		return "transport"
	}
	res := measure(o, worker, codeOf, stderr)
	res.API, res.Endpoints = apiInstance, []string{"https://" + o.instanceEndpoint}
	return res, nil
}
