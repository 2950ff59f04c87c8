package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	dkmsopenapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi"
	dkmsapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util/protobuf/api"
	dkms "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/sdk"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"
	"software.sslmate.com/src/go-pkcs12"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/store"
)

// instanceCA asks a node's API for the instance CA, as a client would
// (GetKmsInstance's CaCertificateChainPem).
func (c *testCluster) instanceCA(node int) (string, *x509.CertPool) {
	c.t.Helper()
	return c.instanceCAOf(node, c.creds.InstanceID)
}

// instanceCAOf is instanceCA from GetKmsInstance of the given instance.
func (c *testCluster) instanceCAOf(node int, instance string) (string, *x509.CertPool) {
	c.t.Helper()
	resp, err := c.clients[node].Call(context.Background(), "GetKmsInstance", map[string]string{"KmsInstanceId": instance})
	if err != nil {
		c.t.Fatal(err)
	}
	var out struct {
		KmsInstance struct{ CaCertificateChainPem string }
	}
	if err := resp.Decode(&out); err != nil {
		c.t.Fatal(err)
	}
	caPEM := out.KmsInstance.CaCertificateChainPem
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		c.t.Fatalf("GetKmsInstance's CaCertificateChainPem is not a PEM certificate: %q", caPEM)
	}
	return caPEM, pool
}

// selfSignedClientCert is a certificate no one trusts, as a client of the
// instance API presents its client key's.
func selfSignedClientCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "KAAP.client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// postInstance sends one instance API request, as the SDK shapes it, with
// TLS verification against pool.
func postInstance(t *testing.T, addr string, pool *x509.CertPool, clientCert *tls.Certificate) (*http.Response, []byte, *x509.Certificate) {
	t.Helper()
	cfg := &tls.Config{RootCAs: pool}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, "https://"+addr+"/", strings.NewReader("\x0a\x03key"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("x-kms-apiname", "Encrypt")
	req.Header.Set("x-kms-apiversion", "dkms-gcs-0.2")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST https://%s/: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body, resp.TLS.PeerCertificates[0]
}

func TestInstanceEndpoint_EveryNodeServesACertificateChainingToTheClusterCA(t *testing.T) {
	c := newTestCluster(t, 3, clusterOpts{instance: true})
	caPEM, pool := c.instanceCA(0)
	for i := 1; i < 3; i++ {
		if other, _ := c.instanceCA(i); other != caPEM {
			t.Fatalf("node %d answers another CA", i+1)
		}
	}
	clientCert := selfSignedClientCert(t)
	serials := map[string]bool{}
	for i, n := range c.nodes {
		for _, cc := range []*tls.Certificate{nil, &clientCert} {
			resp, body, leaf := postInstance(t, n.InstanceAddr(), pool, cc)
			if leaf.Subject.CommonName != n.ID() {
				t.Fatalf("node %d presents %q's certificate", i+1, leaf.Subject.CommonName)
			}
			serials[leaf.SerialNumber.String()] = true
			// Unsigned: refused before anything else.
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/x-protobuf" {
				t.Fatalf("node %d: %d %s, want 400 application/x-protobuf", i+1, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			// The SDK's own generated message reads the answer.
			var e dkmsapi.Error
			if err := proto.Unmarshal(body, &e); err != nil {
				t.Fatalf("node %d: the SDK's api.Error does not decode the body: %v", i+1, err)
			}
			if e.StatusCode != 400 || e.ErrorCode != "IncompleteSignature" || e.RequestId == "" {
				t.Fatalf("node %d: api.Error = %+v", i+1, &e)
			}
		}
	}
	if len(serials) != 3 {
		t.Fatalf("%d distinct serving certificates, want one per node", len(serials))
	}
}

// The official KMS Instance SDK, unmodified, with CaFilePath set to the CA
// that GetKmsInstance returns and TLS verification on, reaches the node and
// raises the node's error as an SDK error carrying its code.
func TestInstanceEndpoint_OfficialSDKTrustsTheCAAndReadsTheError(t *testing.T) {
	c := newTestCluster(t, 1, clusterOpts{instance: true})
	caPEM, _ := c.instanceCA(0)
	caFile := filepath.Join(t.TempDir(), "instance-ca.pem")
	if err := os.WriteFile(caFile, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	// A throwaway client key the cluster never issued: refused as unknown.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	// The same key as a client key file's content: a legacy PKCS#12 (the
	// only kind the SDK opens) with a self-signed certificate, which the SDK
	// also presents as its TLS client certificate.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(11), Subject: pkix.Name{CommonName: "KAAP.throwaway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rsaKey.PublicKey, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p12, err := pkcs12.LegacyDES.Encode(rsaKey, clientCert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	clientKey, _ := json.Marshal(map[string]string{"KeyId": "KAAP.throwaway", "PrivateKeyData": base64.StdEncoding.EncodeToString(p12)})
	for _, tc := range []struct {
		name string
		cfg  *dkmsopenapi.Config
		want string
	}{
		{"CaFilePath", &dkmsopenapi.Config{CaFilePath: tea.String(caFile)}, "InvalidAccessKeyId.NotFound"},
		{"Ca", &dkmsopenapi.Config{Ca: tea.String(caPEM)}, "InvalidAccessKeyId.NotFound"},
		// The SDK caches one transport per host and timeouts (not per
		// certificate): another read timeout gets this case its own.
		{"client key with its certificate", &dkmsopenapi.Config{CaFilePath: tea.String(caFile),
			ClientKeyContent: tea.String(string(clientKey)), Password: tea.String("pw"), ReadTimeout: tea.Int(9999)}, "InvalidAccessKeyId.NotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Protocol = tea.String("https")
			cfg.Endpoint = tea.String(c.nodes[0].InstanceAddr())
			if cfg.ClientKeyContent == nil {
				cfg.AccessKeyId = tea.String("KAAP.throwaway")
				cfg.PrivateKey = tea.String(keyPEM)
			}
			cl, err := dkms.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.Encrypt(&dkms.EncryptRequest{KeyId: tea.String("alias/any"), Plaintext: []byte("hello")})
			var sdkErr *tea.SDKError
			if !errors.As(err, &sdkErr) {
				t.Fatalf("err = %v (%T), want an SDK error", err, err)
			}
			if tea.StringValue(sdkErr.Code) != tc.want || !strings.Contains(tea.StringValue(sdkErr.Data), "404") {
				t.Fatalf("SDK error code %q data %q message %q, want %s and HTTP 404",
					tea.StringValue(sdkErr.Code), tea.StringValue(sdkErr.Data), tea.StringValue(sdkErr.Message), tc.want)
			}
		})
	}
}

// logTap collects log lines (a node's) for a test to look for one.
type logTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logTap) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

// A node of a cluster that was never initialized has no CA: the handshake
// fails and the node's log says why. After init it serves at once.
func TestInstanceEndpoint_RefusesTheHandshakeUntilTheClusterIsInitialized(t *testing.T) {
	root, err := kcrypto.NewRootKey(bytes.Repeat([]byte{3}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	tap := &logTap{}
	n, err := Start(Config{
		NodeID: "n1", DataDir: t.TempDir(), Single: true, RootKey: root, Timing: store.FastTiming(),
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", InstanceAddr: "127.0.0.1:0",
		// The handshake error is logged at info (net/http's log).
		Logger: hclog.New(&hclog.LoggerOptions{Name: "n1", Level: hclog.Info, Output: tap}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	waitFor(t, "the node to lead", 20*time.Second, n.Store().IsLeader)
	conn, err := tls.Dial("tcp", n.InstanceAddr(), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Fatal("a handshake succeeded on a cluster without an instance CA")
	}
	waitFor(t, "the node to log why the handshake failed", 10*time.Second, func() bool {
		return tap.contains("the cluster is not initialized")
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.Service().Init(ctx); err != nil {
		t.Fatal(err)
	}
	caPEM, ok := n.Service().InstanceCAPEM()
	if !ok {
		t.Fatal("no instance CA after init")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	conn, err = tls.Dial("tcp", n.InstanceAddr(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("after init: %v", err)
	}
	conn.Close()
}

// The serving certificate is renewed at the first handshake after two
// thirds of its lifetime, by the service clock, without a restart.
func TestInstanceEndpoint_RenewsTheCertificateAfterTwoThirdsOfItsLife(t *testing.T) {
	clock := &catalogueClock{now: time.Now().UTC().Truncate(time.Second)}
	root, err := kcrypto.NewRootKey(bytes.Repeat([]byte{4}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	const life = 30 * 24 * time.Hour
	n, err := Start(Config{
		NodeID: "n1", DataDir: t.TempDir(), Single: true, RootKey: root, Timing: store.FastTiming(),
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", InstanceAddr: "127.0.0.1:0",
		InstanceCertLifetime: life, Clock: clock.Now, Logger: testLogger(t, "n1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	waitFor(t, "the node to lead", 20*time.Second, n.Store().IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.Service().Init(ctx); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := n.Service().InstanceCAPEM()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	// served dials without resumption (a fresh config each time), so every
	// handshake asks for the current certificate, and verifies the chain at
	// the service clock's time.
	served := func() *x509.Certificate {
		t.Helper()
		var leaf *x509.Certificate
		conn, err := tls.Dial("tcp", n.InstanceAddr(), &tls.Config{
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				leaf = cs.PeerCertificates[0]
				_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1", CurrentTime: clock.Now()})
				return err
			},
		})
		if err != nil {
			t.Fatalf("handshake at %s: %v", clock.Now(), err)
		}
		conn.Close()
		return leaf
	}
	first := served()
	if got := first.NotAfter.Sub(clock.Now()); got != life {
		t.Fatalf("certificate valid for %s, want %s", got, life)
	}
	clock.Advance(life*2/3 - time.Hour)
	if again := served(); again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("renewed before two thirds of the lifetime")
	}
	clock.Advance(2 * time.Hour)
	renewed := served()
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("not renewed after two thirds of the lifetime")
	}
	if !renewed.NotAfter.Equal(clock.Now().Add(life)) {
		t.Fatalf("renewed certificate expires %s, want %s", renewed.NotAfter, clock.Now().Add(life))
	}
}

func TestInstanceNames_DefaultToTheAdvertisedHostAndLoopback(t *testing.T) {
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name, advertise, listen string
		given, want             []string
	}{
		{"given names win", "10.0.0.1", "127.0.0.1:1", []string{"kms.example"}, []string{"kms.example"}},
		{"the advertise host", "10.0.0.1", "0.0.0.0:1", nil, []string{"10.0.0.1"}},
		{"a loopback listener", "", "127.0.0.1:1", nil, []string{"127.0.0.1", "::1", "localhost"}},
		{"localhost advertised", "localhost", "127.0.0.1:1", nil, []string{"localhost", "127.0.0.1", "::1"}},
		{"every interface", "", "0.0.0.0:1", nil, []string{host, "127.0.0.1", "::1", "localhost"}},
		{"a routable listener", "", "10.1.2.3:1", nil, []string{"10.1.2.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := instanceNames(tc.given, tc.advertise, tc.listen); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("names %q, want %q", got, tc.want)
			}
		})
	}
}
