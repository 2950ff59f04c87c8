package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Environment variables read by ResolveCredentials.
const (
	EnvCredentials     = "KMS_CREDENTIALS" // path of a credentials file
	EnvEndpoint        = "KMS_ENDPOINT"
	EnvAccessKeyID     = "KMS_ACCESS_KEY_ID"
	EnvAccessKeySecret = "KMS_ACCESS_KEY_SECRET"
	EnvSecurityToken   = "KMS_SECURITY_TOKEN" // an STS token, with temporary credentials
	// EnvCAFile names a PEM file of the CA that signed the nodes' HTTPS
	// certificates (kmsctl's --ca-file).
	EnvCAFile = "KMS_CA_FILE"
)

// Credentials is the credentials file: a JSON object with exactly these
// names (the spelling of the KMS API, hence Id rather than ID).
type Credentials struct {
	AccessKeyId     string `json:"AccessKeyId"`
	AccessKeySecret string `json:"AccessKeySecret"`
	// SecurityToken comes with temporary credentials (AssumeRole's answer);
	// empty for an access key's.
	SecurityToken string `json:"SecurityToken,omitempty"`
	Endpoint      string `json:"Endpoint"`
	InstanceId    string `json:"InstanceId,omitempty"`
	AccountId     string `json:"AccountId,omitempty"`
	// InstanceEndpoint is the instance API's address (host:port, no scheme:
	// what the KMS Instance SDK's Endpoint takes) and InstanceCaFile the
	// absolute path of the PEM CA that signs its certificates (the SDK's
	// CaFilePath). kmsd --dev writes both.
	InstanceEndpoint string `json:"InstanceEndpoint,omitempty"`
	InstanceCaFile   string `json:"InstanceCaFile,omitempty"`
}

// String hides the secret, so that printing a Credentials with %v or %+v in a
// log or an error message cannot leak it.
func (c Credentials) String() string {
	secret, token := "", ""
	if c.AccessKeySecret != "" {
		secret = "<redacted>"
	}
	if c.SecurityToken != "" {
		token = " SecurityToken:<redacted>"
	}
	return fmt.Sprintf("{AccessKeyId:%s AccessKeySecret:%s%s Endpoint:%s InstanceId:%s AccountId:%s InstanceEndpoint:%s InstanceCaFile:%s}",
		c.AccessKeyId, secret, token, c.Endpoint, c.InstanceId, c.AccountId, c.InstanceEndpoint, c.InstanceCaFile)
}

// GoString hides the secret from %#v as well.
func (c Credentials) GoString() string { return "client.Credentials" + c.String() }

// LoadCredentialsFile reads a credentials file. It does not require any
// field; ResolveCredentials checks that the result is usable.
func LoadCredentialsFile(path string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read credentials file: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Credentials{}, fmt.Errorf("credentials file %s: %v (want a JSON object with AccessKeyId, AccessKeySecret and Endpoint)", path, err)
	}
	return c, nil
}

// ResolveCredentials finds the credentials and endpoint for a command-line
// tool, in this order, later steps overriding earlier ones:
//
//  1. the file named by flagFile (--credentials), or else by $KMS_CREDENTIALS;
//  2. $KMS_ENDPOINT, $KMS_ACCESS_KEY_ID, $KMS_ACCESS_KEY_SECRET,
//     $KMS_SECURITY_TOKEN, when set;
//  3. flagEndpoint (--endpoint), when not empty.
//
// Pass "" for a flag the user did not set. The result has an AccessKeyId, an
// AccessKeySecret and an Endpoint, or the error says how to supply them.
func ResolveCredentials(flagFile, flagEndpoint string) (Credentials, error) {
	var c Credentials
	file, source := flagFile, "--credentials"
	if file == "" {
		file, source = os.Getenv(EnvCredentials), "$"+EnvCredentials
	}
	if file != "" {
		var err error
		if c, err = LoadCredentialsFile(file); err != nil {
			return Credentials{}, fmt.Errorf("%s %s: %w", source, file, err)
		}
	}
	if v := os.Getenv(EnvEndpoint); v != "" {
		c.Endpoint = v
	}
	if v := os.Getenv(EnvAccessKeyID); v != "" {
		c.AccessKeyId = v
	}
	if v := os.Getenv(EnvAccessKeySecret); v != "" {
		c.AccessKeySecret = v
	}
	if v := os.Getenv(EnvSecurityToken); v != "" {
		c.SecurityToken = v
	}
	if flagEndpoint != "" {
		c.Endpoint = flagEndpoint
	}

	// On an error the credentials found so far (the endpoint at least) are
	// still returned: commands that need no signature use them.
	inFile := ""
	if file != "" {
		inFile = fmt.Sprintf(" (the credentials file %s has none)", file)
	}
	switch {
	case c.AccessKeyId == "" && c.AccessKeySecret == "":
		return c, errors.New("no credentials" + inFile + ": pass --credentials FILE or set " +
			EnvAccessKeyID + "/" + EnvAccessKeySecret + " (or " + EnvCredentials + "=FILE)")
	case c.AccessKeyId == "":
		return c, errors.New("no AccessKeyId" + inFile + ": add AccessKeyId to the credentials file or set " + EnvAccessKeyID)
	case c.AccessKeySecret == "":
		return c, errors.New("no AccessKeySecret" + inFile + ": add AccessKeySecret to the credentials file or set " + EnvAccessKeySecret)
	case c.Endpoint == "":
		return c, errors.New("no endpoint" + inFile + ": pass --endpoint URL, set " + EnvEndpoint +
			", or add Endpoint to the credentials file (e.g. http://127.0.0.1:9700)")
	}
	return c, nil
}
