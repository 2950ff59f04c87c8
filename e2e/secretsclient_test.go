package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	sdkerr "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	dkmsopenapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi"
	smsdk "github.com/aliyun/aliyun-secretsmanager-client-go/sdk"
	smmodels "github.com/aliyun/aliyun-secretsmanager-client-go/sdk/models"
	smservice "github.com/aliyun/aliyun-secretsmanager-client-go/sdk/service"

	"github.com/raftkms/raftkms/client"
)

// Issue 12: the official secrets-manager client,
// github.com/aliyun/aliyun-secretsmanager-client-go v1.1.5, unmodified,
// against a 3-node cluster that serves its API over HTTPS and the instance
// API on every node. The client is configured only through its builders:
// no environment variables, no secretsmanager.properties (the tests point
// WithCustomConfigFile at a file that does not exist and blank the
// variables the client reads).
//
// What each test needs of the server:
//   - every test: CreateSecret (SecretName, SecretData, VersionId,
//     EncryptionKeyId, DKMSInstanceId; ExtendedConfig and SecretType
//     RAMCredentials for the rotation test) through kms-20160120/v3.
//   - ...FetchesAndRefreshesOverHTTPS: GetSecretValue on the OpenAPI (V1
//     signature, query parameters SecretName, VersionStage=ACSCurrent,
//     FetchExtendedConfig=true) and PutSecretValue.
//   - ...RAMCredentialsRotateUnderneath: RAMCredentials secrets ($Auto →
//     acs/ram/user/<UserName>), RotateSecret creating and deleting the
//     user's access keys, GetSecretValue.
//   - ...DKMSModeOnTheInstanceEndpoint: GetSecretValue on the instance
//     endpoint for client keys granted CryptoServiceSecretUser on secret/*,
//     refused (Forbidden.NoPermission) for one granted only keys; and
//     PutSecretValue.
//
// The shared-gateway path parses GetSecretValue's JSON with
// alibaba-cloud-sdk-go's decoder into string fields: a string, number, bool
// or null is accepted where a string is expected, an object or array is an
// SDK.JsonUnmarshalError. So ExtendedConfig must be JSON text inside a
// string, and VersionStages the object {"VersionStage":["ACSCurrent"]}
// (an array fails the whole answer).

// secretsCluster is three kmsd processes serving the API over HTTPS (a
// certificate from `kmsctl operator tls`) and the instance API, initialized,
// with one software key in the account's instance.
type secretsCluster struct {
	t         *testing.T
	nodes     []*secProc
	instance  []string // each node's instance endpoint, host:port
	certs     pki
	caPEM     string
	creds     credentials
	credsFile string
	keyID     string
}

func startSecretsCluster(t *testing.T) *secretsCluster {
	t.Helper()
	dir := t.TempDir()
	c := &secretsCluster{t: t, certs: makePKI(t, filepath.Join(dir, "tls"), "n1", "n2", "n3")}
	caPEM, err := os.ReadFile(c.certs.caFile)
	if err != nil {
		t.Fatal(err)
	}
	c.caPEM = string(caPEM)
	rootKey := newRootKeyFile(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		c.nodes = append(c.nodes, newSecProc(t, id))
		c.instance = append(c.instance, freeAddr(t))
	}
	for i, p := range c.nodes {
		var join []string
		for _, o := range c.nodes {
			if o != p {
				join = append(join, o.gossip)
			}
		}
		crt, key := c.certs.cert(p.id)
		p.start(append([]string{"--node-id", p.id, "--data-dir", filepath.Join(dir, "data-"+p.id), "--root-key-file", rootKey,
			"--zone", "zone-" + p.id, "--http-addr", p.http, "--cluster-addr", p.cluster, "--gossip-addr", p.gossip,
			"--tls-cert-file", crt, "--tls-key-file", key, "--instance-addr", c.instance[i],
			"--bootstrap-expect", "3", "--join", strings.Join(join, ",")}, fastFlags...)...)
	}
	hc := c.certs.client()
	defer hc.CloseIdleConnections()
	waitSecureCluster(t, hc, c.nodes, 3, 45*time.Second, "the HTTPS cluster forms")
	kmsctl(t, []string{"KMS_ACCESS_KEY_ID=unused", "KMS_ACCESS_KEY_SECRET=unused"},
		"--ca-file", c.certs.caFile, "--endpoint", c.nodes[0].endpoint(), "operator", "init").ok(t, &c.creds)
	c.credsFile = writeCreds(t, c.creds)
	var created struct{ KeyMetadata struct{ KeyId string } }
	eventually(t, 30*time.Second, "CreateKey in the instance", func() error {
		r := c.ctl(c.nodes[1], "CreateKey", "--DKMSInstanceId", c.creds.InstanceId, "--Description", "encrypts the secrets")
		if r.Code == 1 && strings.Contains(r.Stderr, "ServiceUnavailable") {
			return errors.New(r.Stderr) // a young cluster may still change leaders
		}
		r.ok(t, &created)
		return nil
	})
	c.keyID = created.KeyMetadata.KeyId
	return c
}

// ctl runs kmsctl against node p with the cluster's root credentials.
func (c *secretsCluster) ctl(p *secProc, args ...string) ctlResult {
	c.t.Helper()
	return kmsctl(c.t, nil, append([]string{"--credentials", c.credsFile, "--endpoint", p.endpoint(), "--ca-file", c.certs.caFile}, args...)...)
}

// sdk is the official OpenAPI SDK (kms-20160120/v3) for node p, over HTTPS
// trusting the cluster's CA.
func (c *secretsCluster) sdk(p *secProc) *kmssdk.Client {
	c.t.Helper()
	cl, err := kmssdk.NewClient(&openapi.Config{
		Endpoint: tea.String(p.http), Protocol: tea.String("https"), Ca: tea.String(c.caPEM),
		AccessKeyId: tea.String(c.creds.AccessKeyId), AccessKeySecret: tea.String(c.creds.AccessKeySecret),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// createSecret creates a secret in the cluster's instance under its key.
func (c *secretsCluster) createSecret(p *secProc, req *kmssdk.CreateSecretRequest) *kmssdk.CreateSecretResponseBody {
	c.t.Helper()
	req.EncryptionKeyId = tea.String(c.keyID)
	req.DKMSInstanceId = tea.String(c.creds.InstanceId)
	resp, err := c.sdk(p).CreateSecret(req)
	if err != nil {
		c.t.Fatalf("CreateSecret %s: %v", tea.StringValue(req.SecretName), err)
	}
	return resp.Body
}

func (c *secretsCluster) putSecretValue(p *secProc, name, versionID, data string) {
	c.t.Helper()
	if _, err := c.sdk(p).PutSecretValue(&kmssdk.PutSecretValueRequest{
		SecretName: tea.String(name), VersionId: tea.String(versionID), SecretData: tea.String(data),
	}); err != nil {
		c.t.Fatalf("PutSecretValue %s %s: %v", name, versionID, err)
	}
}

// ---- the secrets-manager client, configured by its builders only ----

// isolateSecretsManagerClient keeps the process environment out of the
// client: it reads its credentials, regions and instance configurations
// from these variables when they are set, and proxies from the usual ones.
func isolateSecretsManagerClient(t *testing.T) {
	for _, v := range []string{"credentials_type", "credentials_access_key_id", "credentials_access_secret",
		"cache_client_region_id", "cache_client_dkms_config_info", "client_key_password",
		"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(v, "")
	}
}

// noConfigFile is a path where no secretsmanager.properties exists, so the
// client never reads one from the working directory.
func noConfigFile(t *testing.T) string {
	return filepath.Join(t.TempDir(), "no-secretsmanager.properties")
}

// smLogger is the client's log (registered once per process, as the client
// keeps loggers in a package map): each line goes to the test that is
// running, and is dropped between tests.
type smLogger struct {
	mu sync.Mutex
	t  testing.TB
}

var smLog = &smLogger{}

func (l *smLogger) attach(t testing.TB) {
	l.mu.Lock()
	l.t = t
	l.mu.Unlock()
	t.Cleanup(func() {
		l.mu.Lock()
		l.t = nil
		l.mu.Unlock()
	})
}

func (l *smLogger) logf(level, format string, params ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.t != nil {
		l.t.Logf("secretsmanager client [%s] %s", level, fmt.Sprintf(format, params...))
	}
}

func (l *smLogger) Flush()                         {}
func (l *smLogger) Tracef(format string, p ...any) {}
func (l *smLogger) Debugf(format string, p ...any) {}
func (l *smLogger) Infof(format string, p ...any)  { l.logf("info", format, p...) }
func (l *smLogger) Warnf(format string, p ...any)  { l.logf("warn", format, p...) }
func (l *smLogger) Errorf(format string, p ...any) { l.logf("error", format, p...) }

// stoppableRefresh is the client's default refresh strategy until the test
// ends; then it puts the next refresh a day away. The cache client's Close
// does not stop its refresh timers, which would otherwise keep calling the
// stopped cluster for the rest of the test binary's run.
type stoppableRefresh struct {
	smservice.RefreshSecretStrategy
	stopped atomic.Bool
}

func (s *stoppableRefresh) later() int64 { return time.Now().Add(24 * time.Hour).UnixMilli() }

func (s *stoppableRefresh) GetNextExecuteTime(name string, ttl, offset int64) int64 {
	if s.stopped.Load() {
		return s.later()
	}
	return s.RefreshSecretStrategy.GetNextExecuteTime(name, ttl, offset)
}

func (s *stoppableRefresh) ParseNextExecuteTime(info *smmodels.CacheSecretInfo) int64 {
	if s.stopped.Load() {
		return s.later()
	}
	return s.RefreshSecretStrategy.ParseNextExecuteTime(info)
}

// cacheClientTTL is how long the cache client keeps a value before it
// fetches the secret again (its refresh timer runs at the same interval).
const cacheClientTTL = 300 * time.Millisecond

// newCacheClient builds the cache client over sm for one secret, refreshed
// every cacheClientTTL. Build fetches the secret at once.
func newCacheClient(t *testing.T, sm smservice.SecretManagerClient, secretName string) (*smsdk.SecretManagerCacheClient, error) {
	t.Helper()
	smLog.attach(t)
	refresh := &stoppableRefresh{RefreshSecretStrategy: smservice.NewDefaultRefreshSecretStrategy("ttl")}
	cc, err := smsdk.NewSecretCacheClientBuilder(sm).
		WithLogger(smLog).
		WithSecretTTL(secretName, cacheClientTTL.Milliseconds()).
		WithRefreshSecretStrategy(refresh).
		Build()
	t.Cleanup(func() {
		refresh.stopped.Store(true)
		if cc != nil {
			cc.Close()
		} else {
			sm.Close()
		}
	})
	return cc, err
}

// akSecretsManagerClient is the client's shared-gateway mode with access
// key credentials: HTTPS (the client's only scheme, certificate checks off)
// and V1 signatures to host:port.
func akSecretsManagerClient(t *testing.T, endpoint, akID, akSecret string) smservice.SecretManagerClient {
	t.Helper()
	isolateSecretsManagerClient(t)
	return smservice.NewDefaultSecretManagerClientBuilder().
		WithAccessKey(akID, akSecret).
		AddRegionInfo(&smmodels.RegionInfo{RegionId: "cn-hangzhou", Endpoint: endpoint}).
		WithCustomConfigFile(noConfigFile(t)).
		Build()
}

// getSecretInfo reads through the cache client and fails the test on an
// error.
func getSecretInfo(t *testing.T, cc *smsdk.SecretManagerCacheClient, name string) *smmodels.SecretInfo {
	t.Helper()
	info, err := cc.GetSecretInfo(name)
	if err != nil {
		t.Fatalf("GetSecretInfo %s: %v", name, err)
	}
	return info
}

// checkSecretInfo checks the fields the client copies from GetSecretValue.
func checkSecretInfo(t *testing.T, info *smmodels.SecretInfo, name, versionID, value, secretType string) {
	t.Helper()
	if info.SecretName != name || info.VersionId != versionID || info.SecretType != secretType || info.SecretDataType != "text" {
		t.Fatalf("SecretInfo name %q version %q type %q data type %q; want %q %q %q text",
			info.SecretName, info.VersionId, info.SecretType, info.SecretDataType, name, versionID, secretType)
	}
	if value != "" && info.SecretValue != value {
		t.Fatalf("SecretInfo %s %s: the value is not the one stored", name, versionID)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", info.CreateTime); err != nil {
		t.Fatalf("CreateTime %q is not the reference's ISO 8601 UTC form: %v", info.CreateTime, err)
	}
}

// waitForVersion polls the cache client until it hands out versionID. The
// client refreshes on its own timer (and when a read finds the cache older
// than its TTL); nothing here asks it to.
func waitForVersion(t *testing.T, cc *smsdk.SecretManagerCacheClient, name, versionID string) *smmodels.SecretInfo {
	t.Helper()
	var info *smmodels.SecretInfo
	eventually(t, 20*time.Second, "the cache client hands out version "+versionID, func() error {
		i, err := cc.GetSecretInfo(name)
		if err != nil {
			return err
		}
		if i.VersionId != versionID {
			return fmt.Errorf("version %q", i.VersionId)
		}
		info = i
		return nil
	})
	return info
}

func TestSecretsClient_FetchesAndRefreshesOverHTTPS(t *testing.T) {
	c := startSecretsCluster(t)
	name := "app/db-" + randomHex(4)
	v1 := fmt.Sprintf(`{"user":"app","password":"%s"}`, randomHex(16))
	created := c.createSecret(c.nodes[0], &kmssdk.CreateSecretRequest{
		SecretName: tea.String(name), SecretData: tea.String(v1), VersionId: tea.String("v1"),
	})
	if tea.StringValue(created.SecretName) != name || tea.StringValue(created.VersionId) != "v1" {
		t.Fatalf("CreateSecret answered %s", created)
	}

	// The client reads through another node than the one written to.
	sm := akSecretsManagerClient(t, c.nodes[1].http, c.creds.AccessKeyId, c.creds.AccessKeySecret)
	cc, err := newCacheClient(t, sm, name)
	if err != nil {
		t.Fatalf("the cache client cannot start: %v", err)
	}
	checkSecretInfo(t, getSecretInfo(t, cc, name), name, "v1", v1, "Generic")
	if s, err := cc.GetStringValue(name); err != nil || s != v1 {
		t.Fatalf("GetStringValue: %v (value matches: %v)", err, s == v1)
	}

	// A new value written through a third node reaches the client by its
	// own refresh.
	v2 := fmt.Sprintf(`{"user":"app","password":"%s"}`, randomHex(16))
	c.putSecretValue(c.nodes[2], name, "v2", v2)
	checkSecretInfo(t, waitForVersion(t, cc, name, "v2"), name, "v2", v2, "Generic")

	// A secret the account does not have is the service's error, parsed by
	// the SDK, and the cache client reports it.
	sm2 := akSecretsManagerClient(t, c.nodes[2].http, c.creds.AccessKeyId, c.creds.AccessKeySecret)
	_, err = newCacheClient(t, sm2, "no/such-secret")
	var se *sdkerr.ServerError
	if !errors.As(err, &se) || se.ErrorCode() != "Forbidden.ResourceNotFound" || se.HttpStatus() != http.StatusNotFound {
		t.Fatalf("a missing secret: %v, want 404 Forbidden.ResourceNotFound", err)
	}
}

// ramAccessKey reads a RAMCredentials secret value: the created version
// holds {"AccessKeys":[{AccessKeyId, AccessKeySecret}]}, a rotated one
// {"AccessKeyId","AccessKeySecret","GenerateTimestamp"}.
func ramAccessKey(value string) (id, secret string, err error) {
	var v struct {
		AccessKeyId, AccessKeySecret string
		AccessKeys                   []struct{ AccessKeyId, AccessKeySecret string }
	}
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		return "", "", fmt.Errorf("the RAMCredentials value is not JSON: %v", err)
	}
	if v.AccessKeyId == "" && len(v.AccessKeys) > 0 {
		v.AccessKeyId, v.AccessKeySecret = v.AccessKeys[0].AccessKeyId, v.AccessKeys[0].AccessKeySecret
	}
	if v.AccessKeyId == "" || v.AccessKeySecret == "" {
		return "", "", errors.New("the RAMCredentials value names no access key")
	}
	return v.AccessKeyId, v.AccessKeySecret, nil
}

// An application keeps reading a RAMCredentials secret through the cache
// client and calls the cluster (every node in turn) with the access key it
// got, while the secret is rotated four times. Every call succeeds: a
// rotation keeps the previous key valid (ACSPrevious) and deletes only the
// key two rotations old, which the cache client no longer holds once it has
// refreshed. Afterwards the two newest keys work and the older ones are
// gone.
func TestSecretsClient_RAMCredentialsRotateUnderneath(t *testing.T) {
	c := startSecretsCluster(t)
	user := "app-" + randomHex(3)
	c.ctl(c.nodes[0], "CreateUser", "--UserName", user).ok(t, nil)
	c.ctl(c.nodes[0], "AttachPolicyToUser", "--PolicyType", "System", "--PolicyName", "AliyunKMSReadOnlyAccess", "--UserName", user).ok(t, nil)
	var ak struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	c.ctl(c.nodes[0], "CreateAccessKey", "--UserName", user).ok(t, &ak)
	data, _ := json.Marshal(map[string]any{"AccessKeys": []map[string]string{{
		"AccessKeyId": ak.AccessKey.AccessKeyId, "AccessKeySecret": ak.AccessKey.AccessKeySecret}}})
	created := c.createSecret(c.nodes[0], &kmssdk.CreateSecretRequest{
		SecretName: tea.String("$Auto"), SecretType: tea.String("RAMCredentials"), SecretData: tea.String(string(data)),
		VersionId: tea.String("v0"), ExtendedConfig: map[string]any{"SecretSubType": "RamUserAccessKey", "UserName": user},
	})
	name := tea.StringValue(created.SecretName)
	if name != "acs/ram/user/"+user || tea.StringValue(created.SecretType) != "RAMCredentials" {
		t.Fatalf("CreateSecret $Auto answered %s; want the name acs/ram/user/%s", created, user)
	}

	sm := akSecretsManagerClient(t, c.nodes[1].http, c.creds.AccessKeyId, c.creds.AccessKeySecret)
	cc, err := newCacheClient(t, sm, name)
	if err != nil {
		t.Fatalf("the cache client cannot start: %v", err)
	}
	info := getSecretInfo(t, cc, name)
	if info.SecretType != "RAMCredentials" {
		t.Fatalf("SecretType %q", info.SecretType)
	}
	var ext struct{ SecretSubType, UserName string }
	if err := json.Unmarshal([]byte(info.ExtendedConfig), &ext); err != nil || ext.UserName != user || ext.SecretSubType != "RamUserAccessKey" {
		t.Fatalf("ExtendedConfig %q (%v)", info.ExtendedConfig, err)
	}

	// The application.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.certs.pool}}}
	defer hc.CloseIdleConnections()
	var (
		lastUsed atomic.Value // the AccessKeyId of the last successful call
		calls    atomic.Int64
		failed   = make(chan error, 1)
		stop     = make(chan struct{})
		done     = make(chan struct{})
	)
	lastUsed.Store("")
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			info, err := cc.GetSecretInfo(name)
			if err != nil {
				failed <- fmt.Errorf("read %d through the cache client: %v", i, err)
				return
			}
			id, secret, err := ramAccessKey(info.SecretValue)
			if err != nil {
				failed <- fmt.Errorf("read %d (version %s): %v", i, info.VersionId, err)
				return
			}
			node := c.nodes[i%len(c.nodes)]
			cl, err := client.New(node.endpoint(), id, secret, client.WithHTTPClient(hc))
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err = cl.Call(ctx, "ListKeys", nil)
				cancel()
			}
			if err != nil {
				failed <- fmt.Errorf("call %d on %s with the access key %s of version %s: %v", i, node.id, id, info.VersionId, err)
				return
			}
			lastUsed.Store(id)
			calls.Add(1)
		}
	}()
	stopApp := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}
	defer stopApp()
	appOK := func() {
		t.Helper()
		select {
		case err := <-failed:
			t.Fatalf("the application failed: %v", err)
		default:
		}
	}

	keys := []string{ak.AccessKey.AccessKeyId}
	eventually(t, 10*time.Second, "the application uses the created key", func() error {
		appOK()
		if lastUsed.Load() != keys[0] {
			return fmt.Errorf("last used %q", lastUsed.Load())
		}
		return nil
	})
	const rotations = 4
	for r := 1; r <= rotations; r++ {
		// Rotate only once the application uses the newest key, as it does
		// when its refresh interval is shorter than the rotation interval.
		resp, err := c.sdk(c.nodes[r%len(c.nodes)]).RotateSecret(&kmssdk.RotateSecretRequest{
			SecretName: tea.String(name), VersionId: tea.String("rot-" + strconv.Itoa(r)),
		})
		if err != nil {
			t.Fatalf("RotateSecret %d: %v", r, err)
		}
		if v := tea.StringValue(resp.Body.VersionId); v != "rot-"+strconv.Itoa(r) {
			t.Fatalf("RotateSecret %d answered the version %q", r, v)
		}
		eventually(t, 20*time.Second, fmt.Sprintf("the application uses the key of rotation %d", r), func() error {
			appOK()
			id, _ := lastUsed.Load().(string)
			if slices.Contains(keys, id) {
				return fmt.Errorf("still the key %s", id)
			}
			return nil
		})
		keys = append(keys, lastUsed.Load().(string))
	}
	stopApp()
	appOK()
	t.Logf("%d calls with the rotating keys, %d rotations", calls.Load(), rotations)

	// The current (ACSCurrent) and the previous (ACSPrevious) keys work;
	// those of the created version and the first two rotations are deleted.
	current := getSecretInfo(t, cc, name)
	if current.VersionId != "rot-"+strconv.Itoa(rotations) {
		t.Fatalf("the cache client ends on version %q", current.VersionId)
	}
	var userKeys struct {
		AccessKeys struct {
			AccessKey []struct{ AccessKeyId, Status string }
		}
	}
	c.ctl(c.nodes[2], "ListAccessKeys", "--UserName", user).ok(t, &userKeys)
	var listed []string
	for _, k := range userKeys.AccessKeys.AccessKey {
		listed = append(listed, k.AccessKeyId)
	}
	slices.Sort(listed)
	want := slices.Clone(keys[rotations-1:])
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("the user has the access keys %v, want the last two %v", listed, want)
	}
	for i, id := range keys[:rotations-1] {
		for _, p := range c.nodes {
			cl, err := client.New(p.endpoint(), id, "unused", client.WithHTTPClient(hc))
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, fmt.Sprintf("%s refuses the key of generation %d", p.id, i), func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := cl.Call(ctx, "ListKeys", nil)
				var ae *client.APIError
				if !errors.As(err, &ae) || ae.Code != "InvalidAccessKeyId.NotFound" {
					return fmt.Errorf("%v, want InvalidAccessKeyId.NotFound", err)
				}
				return nil
			})
		}
	}
}

// dkmsClientKey makes an application access point whose one permission
// policy grants permission on resources in the cluster's instance, and a
// client key of it in a file (the SDK's ClientKeyFile), with its password.
func (c *secretsCluster) dkmsClientKey(name, permission, resources string) (keyFile, password string) {
	t := c.t
	t.Helper()
	n := c.nodes[0]
	c.ctl(n, "CreatePolicy", "--Name", name+"-policy", "--KmsInstance", c.creds.InstanceId,
		"--Permissions", `["`+permission+`"]`, "--Resources", resources).ok(t, nil)
	c.ctl(n, "CreateApplicationAccessPoint", "--Name", name, "--AuthenticationMethod", "ClientKey",
		"--Policies", `["`+name+`-policy"]`).ok(t, nil)
	dir := t.TempDir()
	password = "Client-Key-Pass-" + randomHex(4)
	pwFile := filepath.Join(dir, "password")
	keyFile = filepath.Join(dir, "clientkey.json")
	if err := os.WriteFile(pwFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ctl(n, "client-key", "create", "--aap", name, "--password-file", pwFile, "--out", keyFile).ok(t, nil)
	return keyFile, password
}

// instanceCAFile writes the cluster's instance CA (GetKmsInstance's
// CaCertificateChainPem) to a file, the DkmsConfig's CaFilePath.
func (c *secretsCluster) instanceCAFile() string {
	t := c.t
	t.Helper()
	var inst struct {
		KmsInstance struct{ CaCertificateChainPem string }
	}
	c.ctl(c.nodes[0], "GetKmsInstance", "--KmsInstanceId", c.creds.InstanceId).ok(t, &inst)
	if inst.KmsInstance.CaCertificateChainPem == "" {
		t.Fatal("GetKmsInstance answered no CaCertificateChainPem")
	}
	p := filepath.Join(t.TempDir(), "instance-ca.pem")
	if err := os.WriteFile(p, []byte(inst.KmsInstance.CaCertificateChainPem), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dkmsSecretsManagerClient is the client's DKMS mode: the dkms-transfer SDK
// over the instance SDK, to one node's instance endpoint, TLS checks on
// against the instance CA.
func dkmsSecretsManagerClient(t *testing.T, endpoint, caFile, keyFile, password string) smservice.SecretManagerClient {
	t.Helper()
	isolateSecretsManagerClient(t)
	return smservice.NewDefaultSecretManagerClientBuilder().
		AddDkmsConfig(&smmodels.DkmsConfig{
			Config: &dkmsopenapi.Config{
				Protocol: tea.String("https"), RegionId: tea.String("cn-hangzhou"), Endpoint: tea.String(endpoint),
				ClientKeyFile: tea.String(keyFile), Password: tea.String(password), CaFilePath: tea.String(caFile),
			},
			IgnoreSslCerts: false,
		}).
		WithCustomConfigFile(noConfigFile(t)).
		Build()
}

func TestSecretsClient_DKMSModeOnTheInstanceEndpoint(t *testing.T) {
	c := startSecretsCluster(t)
	name := "app/api-token-" + randomHex(4)
	v1 := "token-" + randomHex(16)
	c.createSecret(c.nodes[0], &kmssdk.CreateSecretRequest{
		SecretName: tea.String(name), SecretData: tea.String(v1), VersionId: tea.String("v1"),
	})
	keyFile, password := c.dkmsClientKey("secrets-app", "RbacPermission/Template/CryptoServiceSecretUser", `["secret/*"]`)
	caFile := c.instanceCAFile()
	endpoint := c.instance[2]

	// Each node issues its instance certificate once it has the CA.
	caPEM, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the instance CA is not PEM")
	}
	eventually(t, 20*time.Second, "the instance endpoint serves TLS under the instance CA", func() error {
		conn, err := tls.Dial("tcp", endpoint, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return err
		}
		return conn.Close()
	})

	sm := dkmsSecretsManagerClient(t, endpoint, caFile, keyFile, password)
	cc, err := newCacheClient(t, sm, name)
	if err != nil {
		t.Fatalf("the cache client cannot start in DKMS mode: %v", err)
	}
	checkSecretInfo(t, getSecretInfo(t, cc, name), name, "v1", v1, "Generic")

	v2 := "token-" + randomHex(16)
	c.putSecretValue(c.nodes[1], name, "v2", v2)
	checkSecretInfo(t, waitForVersion(t, cc, name, "v2"), name, "v2", v2, "Generic")

	// A client key whose policy grants keys only is refused the secret; the
	// client reports the service's code.
	keysOnly, keysPassword := c.dkmsClientKey("keys-app", "RbacPermission/Template/CryptoServiceKeyUser", `["key/*"]`)
	smKeys := dkmsSecretsManagerClient(t, endpoint, caFile, keysOnly, keysPassword)
	_, err = newCacheClient(t, smKeys, name)
	var se *sdkerr.ServerError
	if !errors.As(err, &se) || se.ErrorCode() != "Forbidden.NoPermission" {
		t.Fatalf("a client key without CryptoServiceSecretUser: %v, want Forbidden.NoPermission", err)
	}
}
