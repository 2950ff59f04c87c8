package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/client"
)

// assumeRole makes a role the account's root may assume, with full KMS
// access, and returns temporary credentials for it (through kmsctl).
func assumeRole(t *testing.T, creds, endpoint, accountID string) (akid, secret, token string) {
	t.Helper()
	trust := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::%s:root"]}}]}`, accountID)
	base := []string{"--credentials", creds, "--endpoint", endpoint}
	mustCtl(t, nil, append(base, "CreateRole", "--RoleName", "ops", "--AssumeRolePolicyDocument", trust)...)
	mustCtl(t, nil, append(base, "AttachPolicyToRole", "--RoleName", "ops", "--PolicyType", "System", "--PolicyName", "AliyunKMSFullAccess")...)
	var out struct {
		Credentials struct{ AccessKeyId, AccessKeySecret, SecurityToken string }
	}
	mustCtl(t, &out, append(base, "AssumeRole", "--RoleArn", "acs:ram::"+accountID+":role/ops", "--RoleSessionName", "kmsctl-test")...)
	c := out.Credentials
	if c.AccessKeyId == "" || c.AccessKeySecret == "" || c.SecurityToken == "" {
		t.Fatalf("AssumeRole answered %+v", out)
	}
	return c.AccessKeyId, c.AccessKeySecret, c.SecurityToken
}

// TestSecurityToken_FlagEnvAndFileSignTemporaryCredentials: temporary
// credentials work with the token from --security-token, KMS_SECURITY_TOKEN
// or the credentials file's SecurityToken, with both signatures; without
// the token they are refused.
func TestSecurityToken_FlagEnvAndFileSignTemporaryCredentials(t *testing.T) {
	n, creds, cr := initializedNode(t)
	akid, secret, token := assumeRole(t, creds, n.Endpoint(), cr.AccountId)
	temp := writeCredsFile(t, client.Credentials{AccessKeyId: akid, AccessKeySecret: secret, Endpoint: n.Endpoint()})
	withToken := writeCredsFile(t, client.Credentials{AccessKeyId: akid, AccessKeySecret: secret, SecurityToken: token, Endpoint: n.Endpoint()})

	t.Run("without the token, refused", func(t *testing.T) {
		code, _, errs := runCtl(t, "--credentials", temp, "ListKeys")
		if code != exitService || !strings.Contains(errs, "InvalidSecurityToken") && !strings.Contains(errs, "InvalidAccessKeyId") {
			t.Fatalf("exit %d, stderr %s", code, errs)
		}
	})
	for _, sig := range []string{"v3", "v1"} {
		t.Run("--security-token "+sig, func(t *testing.T) {
			mustCtl(t, nil, "--signature", sig, "--credentials", temp, "--security-token", token, "ListKeys")
			// After the action too, like every global flag.
			mustCtl(t, nil, "--signature", sig, "--credentials", temp, "ListKeys", "--security-token", token)
		})
		t.Run("credentials file "+sig, func(t *testing.T) {
			mustCtl(t, nil, "--signature", sig, "--credentials", withToken, "ListKeys")
		})
		t.Run("KMS_SECURITY_TOKEN "+sig, func(t *testing.T) {
			t.Setenv(client.EnvSecurityToken, token)
			mustCtl(t, nil, "--signature", sig, "--credentials", temp, "ListKeys")
		})
	}
	t.Run("environment only", func(t *testing.T) {
		t.Setenv(client.EnvEndpoint, n.Endpoint())
		t.Setenv(client.EnvAccessKeyID, akid)
		t.Setenv(client.EnvAccessKeySecret, secret)
		t.Setenv(client.EnvSecurityToken, token)
		mustCtl(t, nil, "ListKeys")
	})
	t.Run("a wrong token is refused", func(t *testing.T) {
		code, _, errs := runCtl(t, "--credentials", temp, "--security-token", token[:len(token)-4]+"AAAA", "ListKeys")
		if code != exitService || !strings.Contains(errs, "InvalidSecurityToken") {
			t.Fatalf("exit %d, stderr %s", code, errs)
		}
	})
}

var indexLine = regexp.MustCompile(`(?m)^X-Kms-Index: (\d+)$`)

// TestShowIndex_PrintsTheWritesIndexOnStderr: --show-index adds the write's
// Raft index on stderr, which --min-index then takes; stdout stays the JSON.
func TestShowIndex_PrintsTheWritesIndexOnStderr(t *testing.T) {
	n, creds, cr := initializedNode(t)
	code, out, errs := ctl(t, creds, n.Endpoint(), "--show-index", "CreateKey", "--DKMSInstanceId", cr.InstanceId)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !json.Valid([]byte(out)) {
		t.Fatalf("stdout is not only the JSON answer: %q", out)
	}
	m := indexLine.FindStringSubmatch(errs)
	if m == nil {
		t.Fatalf("stderr %q has no X-Kms-Index line", errs)
	}
	idx, _ := strconv.ParseUint(m[1], 10, 64)
	if idx == 0 || idx > n.Store().AppliedIndex() {
		t.Fatalf("index %d, node applied %d", idx, n.Store().AppliedIndex())
	}
	var key struct{ KeyMetadata struct{ KeyId string } }
	json.Unmarshal([]byte(out), &key)
	mustCtl(t, nil, "--credentials", creds, "--min-index", m[1], "DescribeKey", "--KeyId", key.KeyMetadata.KeyId)

	// Without the flag, nothing on stderr.
	code, _, errs = ctl(t, creds, n.Endpoint(), "CreateKeyVersion", "--KeyId", key.KeyMetadata.KeyId)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q without --show-index", code, errs)
	}
	// A later write has a later index.
	_, _, errs = ctl(t, creds, n.Endpoint(), "CreateKeyVersion", "--KeyId", key.KeyMetadata.KeyId, "--show-index")
	m2 := indexLine.FindStringSubmatch(errs)
	if m2 == nil {
		t.Fatalf("stderr %q has no X-Kms-Index line", errs)
	}
	if idx2, _ := strconv.ParseUint(m2[1], 10, 64); idx2 <= idx {
		t.Errorf("second write's index %d is not after the first's %d", idx2, idx)
	}
}

// TestVersion_PrintsTheLinkedVersion: the binary built with
// -ldflags "-X main.version=..." (as the Makefile does) prints it.
func TestVersion_PrintsTheLinkedVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kmsctl")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v1.2.3-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "kmsctl v1.2.3-test" {
		t.Fatalf("kmsctl --version: %v, %q", err, out)
	}
	// The in-process default.
	if code, out, _ := runCtl(t, "--version"); code != 0 || strings.TrimSpace(out) != "kmsctl "+version {
		t.Errorf("exit %d, %q", code, out)
	}
}

// tlsNode starts a node whose API is HTTPS under a certificate of a fresh
// CA made by kmsctl, and returns it with the CA's file.
func tlsNode(t *testing.T) (endpoint, caFile string) {
	t.Helper()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"operator", "tls", "create-ca", dir},
		{"operator", "tls", "create-cert", "--ca", dir, "--name", "n1", "--ip", "127.0.0.1", dir},
	} {
		if code, _, errs := runCtl(t, args...); code != 0 {
			t.Fatalf("%v: %s", args, errs)
		}
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"))
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if !strings.HasPrefix(n.Endpoint(), "https://") {
		t.Fatalf("endpoint %s", n.Endpoint())
	}
	return n.Endpoint(), filepath.Join(dir, "ca.crt")
}

// TestTLS_UnknownAuthorityHintsAtCAFile: an HTTPS node whose CA the client
// does not trust: the error says to pass --ca-file or KMS_CA_FILE, both of
// which then work.
func TestTLS_UnknownAuthorityHintsAtCAFile(t *testing.T) {
	endpoint, caFile := tlsNode(t)
	for _, args := range [][]string{
		{"--endpoint", endpoint, "operator", "members"},
		{"--endpoint", endpoint, "operator", "init", "--wait", "5s"},
	} {
		code, out, errs := runCtl(t, args...)
		if code != exitService || out != "" {
			t.Fatalf("%v: exit %d, stdout %q", args, code, out)
		}
		for _, want := range []string{"unknown authority", "--ca-file", client.EnvCAFile} {
			if !strings.Contains(errs, want) {
				t.Errorf("%v: stderr does not say %q:\n%s", args, want, errs)
			}
		}
		if strings.Contains(errs, "Is a node running") || strings.Contains(errs, "waiting for a leader") {
			t.Errorf("%v: a certificate problem is reported as a node that is not up:\n%s", args, errs)
		}
	}
	creds, _ := initNode(t, endpoint, "--ca-file", caFile)
	mustCtl(t, nil, "--ca-file", caFile, "--credentials", creds, "ListKeys")
	t.Setenv(client.EnvCAFile, caFile)
	mustCtl(t, nil, "--credentials", creds, "ListKeys")
	// An action gets the hint too.
	t.Setenv(client.EnvCAFile, "")
	code, _, errs := runCtl(t, "--credentials", creds, "ListKeys")
	if code != exitService || !strings.Contains(errs, "--ca-file") {
		t.Errorf("action without the CA: exit %d, stderr %s", code, errs)
	}
}

// TestTLS_HTTPRequestToHTTPSNodeSaysSo: http:// to a node that serves
// HTTPS says to use https:// instead of printing an empty error.
func TestTLS_HTTPRequestToHTTPSNodeSaysSo(t *testing.T) {
	endpoint, caFile := tlsNode(t)
	creds, _ := initNode(t, endpoint, "--ca-file", caFile)
	plain := "http://" + strings.TrimPrefix(endpoint, "https://")
	for _, args := range [][]string{
		{"--endpoint", plain, "--credentials", creds, "ListKeys"},
		{"--endpoint", plain, "operator", "members"},
		{"--endpoint", plain, "--credentials", creds, "operator", "snapshot", "save", filepath.Join(t.TempDir(), "s")},
	} {
		code, out, errs := runCtl(t, args...)
		if code != exitService || out != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
		if want := "the node at " + plain + " speaks HTTPS: use https:// (and --ca-file"; !strings.Contains(errs, want) {
			t.Errorf("%v: stderr does not say %q:\n%s", args, want, errs)
		}
		if strings.Contains(errs, `"Code": ""`) {
			t.Errorf("%v: the empty error JSON is still printed:\n%s", args, errs)
		}
	}
}

// TestTLS_HTTPSRequestToHTTPNodeSaysSo: the reverse mistake.
func TestTLS_HTTPSRequestToHTTPNodeSaysSo(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", nil)
	secure := "https://" + strings.TrimPrefix(n.Endpoint(), "http://")
	code, _, errs := runCtl(t, "--endpoint", secure, "operator", "members")
	if code != exitService || !strings.Contains(errs, "speaks plain HTTP: use http://") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}

// TestTLS_TLSAlertToPlainRequestSaysHTTPS: a TLS server that is not Go's
// answers a plain request with a TLS alert record, which Go reports as a
// malformed HTTP response.
func TestTLS_TLSAlertToPlainRequestSaysHTTPS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf)
				// Alert, TLS 1.0 record, length 2: fatal, protocol_version.
				c.Write([]byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46})
			}()
		}
	}()
	code, _, errs := runCtl(t, "--endpoint", "http://"+ln.Addr().String(), "operator", "members")
	if code != exitService || !strings.Contains(errs, "speaks HTTPS: use https://") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}
