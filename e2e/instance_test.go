package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dkmsapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util/protobuf/api"
	"google.golang.org/protobuf/proto"
)

// Issue 11: `kmsd --dev` serves the instance API on a free loopback port and
// says where in its credentials file (InstanceEndpoint, host:port) along
// with the CA that signs its certificate (InstanceCaFile, absolute, in the
// data dir). A client that trusts that CA alone reaches it, and an unsigned
// request gets the SDK's protobuf error IncompleteSignature.
func TestDev_ServesTheInstanceAPIUnderTheCAItWrites(t *testing.T) {
	n := newNode(t, "dev", "", "")
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, n, dir)
	b, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cr struct{ InstanceEndpoint, InstanceCaFile, AccessKeyId string }
	if err := jsonUnmarshal(b, &cr); err != nil || cr.AccessKeyId == "" {
		t.Fatalf("credentials.json = %s (%v)", b, err)
	}
	if cr.InstanceEndpoint == "" || strings.Contains(cr.InstanceEndpoint, "://") || !strings.HasPrefix(cr.InstanceEndpoint, "127.0.0.1:") {
		t.Fatalf("InstanceEndpoint = %q, want 127.0.0.1:PORT", cr.InstanceEndpoint)
	}
	if want := filepath.Join(dir, "instance-ca.pem"); cr.InstanceCaFile != want {
		t.Fatalf("InstanceCaFile = %q, want %q", cr.InstanceCaFile, want)
	}
	caPEM, err := os.ReadFile(cr.InstanceCaFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no PEM certificate", cr.InstanceCaFile)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	var body []byte
	eventually(t, 10*time.Second, "the instance API to answer", func() error {
		req, _ := http.NewRequest(http.MethodPost, "https://"+cr.InstanceEndpoint+"/", strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("x-kms-apiname", "Encrypt")
		req.Header.Set("x-kms-apiversion", "dkms-gcs-0.2")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if body, err = io.ReadAll(resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/x-protobuf" {
			return fmt.Errorf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return nil
	})
	var e dkmsapi.Error
	if err := proto.Unmarshal(body, &e); err != nil || e.ErrorCode != "IncompleteSignature" || e.StatusCode != 400 {
		t.Fatalf("api.Error = %+v, %v", &e, err)
	}
}
