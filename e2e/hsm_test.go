//go:build cgo

package e2e

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/hsm/hsmtest"
)

// HSM-bound keys with real kmsd processes and a real SoftHSM, driven the way
// an operator would: kmsd hsm enroll, kmsd --hsm-* flags, kmsctl operator
// members / instance create, API actions through every node, nodes stopped
// and restarted.

// TestHSM_ProcessCluster: n1 and n2 enrolled in domain d1, n3 without an
// HSM. The domain and its health show in `operator members`; a hardware
// instance and keys made through n3 work through every node; with n1 gone
// n2 serves; with both gone the answer is a 503 naming the domain; n2 back
// serves again.
func TestHSM_ProcessCluster(t *testing.T) {
	soft := hsmtest.New(t, "e2e-t1", "e2e-t2")
	pin := soft.PinFile(t)
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := hsmtest.DomainKeyFile(t, key)
	for _, tok := range []string{"e2e-t1", "e2e-t2"} {
		out, err := exec.Command(kmsdBin, "hsm", "enroll", "--hsm-module", soft.Module, "--hsm-token-label", tok,
			"--hsm-pin-file", pin, "--domain", "d1", "--domain-key-file", keyFile).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `domain "d1" enrolled; key check value`) {
			t.Fatalf("kmsd hsm enroll %s: %v\n%s", tok, err, out)
		}
	}

	root := newRootKeyFile(t)
	c := &testCluster{t: t, RootKey: root}
	for i := 0; i < 3; i++ {
		n := newNode(t, fmt.Sprintf("h%d", i+1), zones[i], root)
		n.Expect = 3
		if i < 2 {
			n.Extra = []string{"--hsm-module", soft.Module, "--hsm-token-label", fmt.Sprintf("e2e-t%d", i+1),
				"--hsm-pin-file", pin, "--hsm-domain", "d1"}
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		for _, o := range c.Nodes {
			if o != n {
				n.Join = append(n.Join, o.Gossip)
			}
		}
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitReady(45 * time.Second)
	c.Init()
	h1, h2, h3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	// operator members, asked of the node without an HSM.
	eventually(t, 20*time.Second, "h1 and h2 advertise d1 as ok", func() error {
		var out struct {
			Members []struct {
				NodeId string
				HSM    []struct{ Domain, Health, CheckValue string }
			}
		}
		r := kmsctl(t, nil, "--endpoint", h3.Endpoint(), "operator", "members")
		if r.Code != 0 {
			return fmt.Errorf("operator members: %s", r)
		}
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
			return err
		}
		for _, m := range out.Members {
			want := m.NodeId != "h3"
			has := len(m.HSM) == 1 && m.HSM[0].Domain == "d1" && m.HSM[0].Health == "ok" && len(m.HSM[0].CheckValue) == 6
			if want != has {
				return fmt.Errorf("%s shows HSM %+v", m.NodeId, m.HSM)
			}
		}
		return nil
	})

	var inst struct{ InstanceId, Type, HsmDomain string }
	c.Ctl(h3, "operator", "instance", "create", "--type", "hardware", "--hsm-domain", "d1").ok(t, &inst)
	if !strings.HasPrefix(inst.InstanceId, "kst-") || inst.Type != "hardware" || inst.HsmDomain != "d1" {
		t.Fatalf("instance create printed %+v", inst)
	}
	var aesKey, ecKey struct {
		KeyMetadata struct{ KeyId, PrimaryKeyVersion, ProtectionLevel string }
	}
	c.Ctl(h3, "CreateKey", "--DKMSInstanceId", inst.InstanceId, "--KeySpec", "Aliyun_AES_256").ok(t, &aesKey)
	c.Ctl(h3, "CreateKey", "--DKMSInstanceId", inst.InstanceId, "--KeySpec", "EC_P256").ok(t, &ecKey)
	if aesKey.KeyMetadata.ProtectionLevel != "HSM" || ecKey.KeyMetadata.ProtectionLevel != "HSM" {
		t.Fatalf("protection levels %q %q", aesKey.KeyMetadata.ProtectionLevel, ecKey.KeyMetadata.ProtectionLevel)
	}

	var blobs []sealed
	for _, n := range c.Nodes {
		ctx := `{"node":"` + n.ID + `"}`
		blob := c.encrypt(n, aesKey.KeyMetadata.KeyId, b64("through "+n.ID), ctx)
		blobs = append(blobs, sealed{Blob: blob, Context: ctx, Plaintext: b64("through " + n.ID), KeyID: aesKey.KeyMetadata.KeyId})
	}
	for _, n := range c.Nodes {
		checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, n.ID, blobs)
	}
	var pub struct{ PublicKey string }
	c.Ctl(h3, "GetPublicKey", "--KeyId", ecKey.KeyMetadata.KeyId, "--KeyVersionId", ecKey.KeyMetadata.PrimaryKeyVersion).ok(t, &pub)
	blk, _ := pem.Decode([]byte(pub.PublicKey))
	if blk == nil {
		t.Fatalf("GetPublicKey: %q", pub.PublicKey)
	}
	pk, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(n *kmsdNode) {
		t.Helper()
		digest := sha256.Sum256([]byte("signed through " + n.ID))
		var sig struct{ Value string }
		c.Ctl(n, "AsymmetricSign", "--KeyId", ecKey.KeyMetadata.KeyId, "--KeyVersionId", ecKey.KeyMetadata.PrimaryKeyVersion,
			"--Algorithm", "ECDSA_SHA_256", "--Digest", base64.StdEncoding.EncodeToString(digest[:])).ok(t, &sig)
		raw, _ := base64.StdEncoding.DecodeString(sig.Value)
		if !ecdsa.VerifyASN1(pk.(*ecdsa.PublicKey), digest[:], raw) {
			t.Fatalf("signature through %s does not verify in Go", n.ID)
		}
	}
	for _, n := range c.Nodes {
		sign(n)
	}

	// h1 gone: h2 serves, for itself and for h3.
	if code, _ := h1.Terminate(30 * time.Second); code != 0 {
		t.Fatalf("h1 exited %d", code)
	}
	eventually(t, 20*time.Second, "h3 serving the hardware key through h2", func() error {
		r := c.Ctl(h3, "Encrypt", "--KeyId", aesKey.KeyMetadata.KeyId, "--Plaintext", b64("x"))
		if r.Code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	for _, n := range []*kmsdNode{h2, h3} {
		checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, n.ID, blobs)
		sign(n)
	}

	// Both gone: a 503 that names the domain.
	if code, _ := h2.Terminate(30 * time.Second); code != 0 {
		t.Fatalf("h2 exited %d", code)
	}
	r := c.Ctl(h3, "Decrypt", "--CiphertextBlob", blobs[0].Blob, "--EncryptionContext", blobs[0].Context)
	if code := r.serviceError(t); code != "ServiceUnavailable.HSM" || !strings.Contains(r.Stderr, `\"d1\"`) {
		t.Fatalf("with both HSM nodes down: %s", r)
	}

	// h2 back: served again.
	h2.Start()
	eventually(t, 30*time.Second, "h3 serving again once h2 is back", func() error {
		r := c.Ctl(h3, "Decrypt", "--CiphertextBlob", blobs[0].Blob, "--EncryptionContext", blobs[0].Context)
		if r.Code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	sign(h3)
	sign(h2)
}

// TestHSM_NoCgoBinary: kmsd built without cgo has no HSM support and says
// so, exiting non-zero, for the flags and for the hsm command.
func TestHSM_NoCgoBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kmsd-nocgo")
	cmd := exec.Command(goTool(), "build", "-o", bin, "./cmd/kmsd")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	root := newRootKeyFile(t)
	for _, args := range [][]string{
		{"--data-dir", t.TempDir(), "--root-key-file", root, "--hsm-module", "/usr/lib/softhsm/libsofthsm2.so",
			"--hsm-token-label", "t", "--hsm-pin-file", "p", "--hsm-domain", "d"},
		{"--data-dir", t.TempDir(), "--seal", "pkcs11"},
		{"hsm", "enroll", "--hsm-module", "m", "--hsm-token-label", "t", "--hsm-pin-file", "p", "--domain", "d", "--domain-key-file", "k"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil {
			t.Fatalf("kmsd %s succeeded without cgo", strings.Join(args, " "))
		}
		if !strings.Contains(string(out), "built without cgo: no HSM support") {
			t.Fatalf("kmsd %s: %q", strings.Join(args, " "), out)
		}
	}
}

// TestHSM_SealPKCS11: `kmsd --dev --seal pkcs11` makes a root key and keeps
// it only sealed by the HSM domain (no root key file in the data dir); the
// node restarted with another token of the same domain opens it and decrypts
// what it encrypted before; a token of another domain cannot start it.
func TestHSM_SealPKCS11(t *testing.T) {
	soft := hsmtest.New(t, "seal-a", "seal-b", "seal-x")
	pin := soft.PinFile(t)
	key, other := make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(other)
	for tok, k := range map[string][]byte{"seal-a": key, "seal-b": key, "seal-x": other} {
		out, err := exec.Command(kmsdBin, "hsm", "enroll", "--hsm-module", soft.Module, "--hsm-token-label", tok,
			"--hsm-pin-file", pin, "--domain", "sealing", "--domain-key-file", hsmtest.DomainKeyFile(t, k)).CombinedOutput()
		if err != nil {
			t.Fatalf("enroll %s: %v\n%s", tok, err, out)
		}
	}
	dir := filepath.Join(t.TempDir(), "dev")
	n := newNode(t, "sealdev", "", "")
	hsmArgs := func(tok string) []string {
		return []string{"--seal", "pkcs11", "--hsm-module", soft.Module, "--hsm-token-label", tok, "--hsm-pin-file", pin, "--hsm-domain", "sealing"}
	}
	start := func(tok string) {
		t.Helper()
		startDevWith(t, n, dir, hsmArgs(tok))
	}
	start("seal-a")
	if _, err := os.Stat(filepath.Join(dir, "root.key")); err == nil {
		t.Fatal("a root key file was written next to the sealed one")
	}
	sealedData, err := os.ReadFile(filepath.Join(dir, "root-key.sealed"))
	if err != nil || !strings.Contains(string(sealedData), "raftkms-sealed-root-key-v1") {
		t.Fatalf("no sealed root key in the data dir: %v", err)
	}
	credsPath := filepath.Join(dir, "credentials.json")
	c := &testCluster{t: t, Nodes: []*kmsdNode{n}, CredsFile: credsPath}
	raw, _ := os.ReadFile(credsPath)
	json.Unmarshal(raw, &c.Creds)
	k := c.createKey(n, "sealed")
	p := b64("sealed root key")
	blob := c.encrypt(n, k, p, "")
	if code, _ := n.Terminate(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	start("seal-b")
	checkDecrypts(t, []string{"--credentials", credsPath}, "sealdev", []sealed{{Blob: blob, Plaintext: p, KeyID: k}})
	if code, _ := n.Terminate(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Another domain's token: kmsd refuses to start, saying why.
	out, err := exec.Command(kmsdBin, append([]string{"--dev", "--data-dir", dir, "--http-addr", n.HTTP, "--cluster-addr", n.Cluster,
		"--gossip-addr", n.Gossip}, hsmArgs("seal-x")...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot open the sealed root key") {
		t.Fatalf("started with another domain's token: %v\n%s", err, out)
	}
}

// startDevWith is startDev with extra flags.
func startDevWith(t *testing.T, n *kmsdNode, dataDir string, extra []string) {
	t.Helper()
	n.Args = append([]string{"--dev", "--http-addr", n.HTTP, "--cluster-addr", n.Cluster, "--gossip-addr", n.Gossip,
		"--raft-timeout", "300ms", "--data-dir", dataDir}, extra...)
	var offset int64
	if fi, err := os.Stat(n.LogPath); err == nil {
		offset = fi.Size()
	}
	n.Start()
	eventually(t, 30*time.Second, "dev node ready", func() error {
		if code, body := healthCode(n); code != 200 {
			return fmt.Errorf("/v1/health %d %s", code, body)
		}
		if !strings.Contains(readFrom(n.LogPath, offset), "raftkms dev node is ready") {
			return fmt.Errorf("no ready message yet")
		}
		return nil
	})
}
