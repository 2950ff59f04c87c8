package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// Issue 2: a key created through one node encrypts through a second and
// decrypts through a third; the encryption context is bound; V1 signatures
// work too.
func TestCLI_CreateOnOneNodeEncryptOnSecondDecryptOnThird(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	// CreateKey through n1, and nothing else between that and the use of
	// the key on the other nodes: a node that has not applied the key yet
	// must still find it (DESIGN.md §3).
	var created struct {
		KeyMetadata struct{ KeyId, KeySpec, KeyUsage, KeyState, DKMSInstanceId string }
	}
	c.Ctl(n1, "CreateKey", "--DKMSInstanceId", c.Creds.InstanceId, "--Description", "e2e key",
		"--KeySpec", "Aliyun_AES_256", "--KeyUsage", "ENCRYPT/DECRYPT", "--Origin", "Aliyun_KMS").ok(t, &created)
	m := created.KeyMetadata
	if m.KeyId == "" || m.KeySpec != "Aliyun_AES_256" || m.KeyUsage != "ENCRYPT/DECRYPT" || m.KeyState != "Enabled" || m.DKMSInstanceId != c.Creds.InstanceId {
		t.Fatalf("CreateKey answered %+v", m)
	}
	key := m.KeyId
	plain := b64("attack at dawn " + randomHex(4))

	t.Run("without context", func(t *testing.T) {
		blob := c.encrypt(n2, key, plain, "")
		checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n3.Endpoint()}, n3.ID,
			[]sealed{{Blob: blob, Plaintext: plain, KeyID: key}})
		// A context that was not there at encryption is wrong too.
		code := c.Ctl(n3, decryptArgs(blob, `{"purpose":"e2e"}`)...).serviceError(t)
		if code != "InvalidCiphertext" {
			t.Fatalf("Decrypt with an added context: Code %s, want InvalidCiphertext", code)
		}
	})

	t.Run("with context", func(t *testing.T) {
		ctx := `{"purpose":"e2e","tenant":"t-1"}`
		blob := c.encrypt(n2, key, plain, ctx)
		prefix := []string{"--credentials", c.CredsFile, "--endpoint", n3.Endpoint()}
		checkDecrypts(t, prefix, n3.ID, []sealed{
			{Blob: blob, Context: ctx, Plaintext: plain, KeyID: key},
			// The context is compared in canonical form: order does not matter.
			{Blob: blob, Context: `{"tenant":"t-1","purpose":"e2e"}`, Plaintext: plain, KeyID: key},
		})
		for _, wrong := range []string{`{"purpose":"other","tenant":"t-1"}`, `{"purpose":"e2e"}`, ""} {
			code := c.Ctl(n3, decryptArgs(blob, wrong)...).serviceError(t)
			if code != "InvalidCiphertext" {
				t.Fatalf("Decrypt with context %q: Code %s, want InvalidCiphertext", wrong, code)
			}
		}
	})

	t.Run("signature v1", func(t *testing.T) {
		ctx := `{"sig":"v1"}`
		var enc struct{ CiphertextBlob string }
		c.Ctl(n2, "--signature", "v1", "Encrypt", "--KeyId", key, "--Plaintext", plain, "--EncryptionContext", ctx).ok(t, &enc)
		checkDecrypts(t, []string{"--signature", "v1", "--credentials", c.CredsFile, "--endpoint", n3.Endpoint()}, n3.ID,
			[]sealed{{Blob: enc.CiphertextBlob, Context: ctx, Plaintext: plain, KeyID: key}})
		// A V1 request with the wrong secret is refused.
		bad := c.Creds
		bad.AccessKeySecret = "not-" + bad.AccessKeySecret
		code := kmsctl(t, nil, "--signature", "v1", "--credentials", writeCreds(t, bad), "--endpoint", n1.Endpoint(), "ListKeys").serviceError(t)
		if code != "SignatureDoesNotMatch" {
			t.Fatalf("V1 with a wrong secret: Code %s, want SignatureDoesNotMatch", code)
		}
	})
}

// Issue 2: kmsctl finds credentials in --credentials FILE, KMS_CREDENTIALS,
// or KMS_ENDPOINT/KMS_ACCESS_KEY_ID/KMS_ACCESS_KEY_SECRET; --endpoint
// overrides the file's endpoint; usage errors exit 2, service errors 1.
func TestCLI_CredentialSourcesAndExitCodes(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	n1, n2 := c.Nodes[0], c.Nodes[1]
	key := c.createKey(n1, "credentials test")

	// A credentials file whose endpoint is n2.
	onN2 := c.Creds
	onN2.Endpoint = n2.Endpoint()
	fileN2 := writeCreds(t, onN2)
	// A credentials file whose endpoint has nothing listening.
	dead := c.Creds
	dead.Endpoint = "http://" + freeAddr(t)
	fileDead := writeCreds(t, dead)

	// servedBy runs Encrypt+Decrypt with the given env and args and checks
	// they worked; DescribeKey's answer carries no node, so the endpoint is
	// checked by the dead-endpoint cases below.
	works := func(t *testing.T, env []string, args ...string) {
		t.Helper()
		plain := b64("creds " + randomHex(4))
		var enc struct{ CiphertextBlob string }
		kmsctl(t, env, append(append([]string{}, args...), "Encrypt", "--KeyId", key, "--Plaintext", plain)...).ok(t, &enc)
		var dec struct{ Plaintext string }
		kmsctl(t, env, append(append([]string{}, args...), "Decrypt", "--CiphertextBlob", enc.CiphertextBlob)...).ok(t, &dec)
		if dec.Plaintext != plain {
			t.Fatalf("round trip gave %q, want %q", dec.Plaintext, plain)
		}
	}
	unreachable := func(t *testing.T, env []string, args ...string) {
		t.Helper()
		r := kmsctl(t, env, append(append([]string{}, args...), "ListKeys")...)
		if r.Code != 1 || !strings.Contains(r.Stderr, strings.TrimPrefix(dead.Endpoint, "http://")) {
			t.Fatalf("want exit 1 naming the unreachable endpoint %s:\n%s", dead.Endpoint, r)
		}
	}

	t.Run("--credentials FILE", func(t *testing.T) {
		works(t, nil, "--credentials", fileN2)
		unreachable(t, nil, "--credentials", fileDead)
	})
	t.Run("KMS_CREDENTIALS", func(t *testing.T) {
		works(t, []string{"KMS_CREDENTIALS=" + fileN2})
		unreachable(t, []string{"KMS_CREDENTIALS=" + fileDead})
	})
	t.Run("KMS_ENDPOINT and access key variables", func(t *testing.T) {
		env := []string{"KMS_ENDPOINT=" + n2.Endpoint(), "KMS_ACCESS_KEY_ID=" + c.Creds.AccessKeyId, "KMS_ACCESS_KEY_SECRET=" + c.Creds.AccessKeySecret}
		works(t, env)
		works(t, env, "--signature", "v1")
		unreachable(t, []string{"KMS_ENDPOINT=" + dead.Endpoint, "KMS_ACCESS_KEY_ID=" + c.Creds.AccessKeyId, "KMS_ACCESS_KEY_SECRET=" + c.Creds.AccessKeySecret})
	})
	t.Run("--endpoint overrides the file", func(t *testing.T) {
		works(t, nil, "--credentials", fileDead, "--endpoint", n1.Endpoint())
		works(t, []string{"KMS_CREDENTIALS=" + fileDead}, "--endpoint", n2.Endpoint())
		// Global flags may also follow the action.
		plain := b64("after the action")
		kmsctl(t, nil, "Encrypt", "--KeyId", key, "--Plaintext", plain, "--credentials", fileDead, "--endpoint", n1.Endpoint()).ok(t, nil)
	})
	t.Run("wrong secret is a service error", func(t *testing.T) {
		bad := c.Creds
		bad.AccessKeySecret = "wrong"
		code := kmsctl(t, nil, "--credentials", writeCreds(t, bad), "--endpoint", n1.Endpoint(), "ListKeys").serviceError(t)
		if code != "SignatureDoesNotMatch" {
			t.Fatalf("wrong secret: Code %s, want SignatureDoesNotMatch", code)
		}
		unknown := c.Creds
		unknown.AccessKeyId = "LTAI" + randomHex(8)
		code = kmsctl(t, nil, "--credentials", writeCreds(t, unknown), "--endpoint", n1.Endpoint(), "ListKeys").serviceError(t)
		if code != "InvalidAccessKeyId.NotFound" {
			t.Fatalf("unknown access key: Code %s, want InvalidAccessKeyId.NotFound", code)
		}
	})
	t.Run("service errors exit 1", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code string
		}{
			{[]string{"DescribeKey", "--KeyId", "00000000-0000-4000-8000-000000000000"}, "Forbidden.KeyNotFound"},
			{[]string{"Encrypt", "--KeyId", key}, "MissingParameter"},
			{[]string{"Decrypt", "--CiphertextBlob", "bm90IGEgYmxvYg=="}, "InvalidCiphertext"},
			{[]string{"CreateAlias", "--AliasName", "alias/acs/reserved", "--KeyId", key}, ""},
		} {
			r := c.Ctl(n2, tc.args...)
			code := r.serviceError(t)
			if tc.code != "" && code != tc.code {
				t.Errorf("kmsctl %s: Code %s, want %s", strings.Join(tc.args, " "), code, tc.code)
			}
			// For an action, stderr is exactly the error JSON.
			var e map[string]any
			if err := json.Unmarshal([]byte(r.Stderr), &e); err != nil || e["RequestId"] == nil || e["HostId"] == nil {
				t.Errorf("stderr of a failed action is not the service's error JSON {RequestId, HostId, Code, Message}:\n%s", r)
			}
		}
	})
	t.Run("usage errors exit 2", func(t *testing.T) {
		creds := []string{"--credentials", c.CredsFile, "--endpoint", n1.Endpoint()}
		for _, args := range [][]string{
			append(append([]string{}, creds...), "Encrypt", "KeyId", key),                   // positional parameter
			append(append([]string{}, creds...), "Encrypt", "--keyId", key),                 // parameters start upper-case
			append(append([]string{}, creds...), "Encrypt", "--KeyId"),                      // missing value
			append(append([]string{}, creds...), "Encrypt", "--KeyId", "a", "--KeyId", "b"), // twice
			append(append([]string{}, creds...), "--signature", "v9", "ListKeys"),
			append(append([]string{}, creds...), "--min-index", "soon", "ListKeys"),
			append(append([]string{}, creds...), "NoSuchAction"),            // refused locally (apispec)
			append(append([]string{}, creds...), "Encrypt", "--KeyID", key), // parameter names are case-sensitive
			{"--no-such-flag"},
			{"operator", "no-such-command"},
			{"operator", "snapshot", "save"},
			{"operator", "snapshot", "restore"},
			{"operator", "snapshot", "restore", "a", "b"},
			{"operator", "init", "extra"},
		} {
			kmsctl(t, nil, args...).usageError(t)
		}
		// No credentials anywhere: a usage error that says how to supply them.
		r := kmsctl(t, nil, "--endpoint", n1.Endpoint(), "ListKeys")
		r.usageError(t)
		if !strings.Contains(r.Stderr, "KMS_CREDENTIALS") {
			t.Fatalf("the no-credentials error does not say where credentials come from:\n%s", r)
		}
	})
}
