//go:build cgo

package node

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/hsm/hsmtest"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
)

// HSM-bound keys in real in-process clusters with real SoftHSM tokens: two
// nodes enrolled in one HSM domain, one without an HSM.

const testDomain = "d1"

// hsmNodeSpec says which token (if any) a node gets.
type hsmNodeSpec struct {
	token     string // "" = no HSM
	domainKey []byte
}

// hsmCluster is a testCluster whose nodes may have SoftHSM tokens.
type hsmCluster struct {
	*testCluster
	soft *hsmtest.SoftHSM
	pin  string
	cfgs []Config
}

func randomKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// newHSMCluster enrolls the tokens (as `kmsd hsm enroll` does) and starts
// the nodes; bootstrap waits for the first `expect` of them. extra tokens
// are created in the same SoftHSM (they must exist before any is opened).
func newHSMCluster(t *testing.T, specs []hsmNodeSpec, expect int, extra ...string) *hsmCluster {
	t.Helper()
	return newHSMClusterWith(t, hsmClusterOpts{}, specs, expect, extra...)
}

// hsmClusterOpts are the rarer options of an hsmCluster.
type hsmClusterOpts struct {
	instance bool // every node serves the instance API on a free loopback port
}

// newHSMClusterWith is newHSMCluster with options.
func newHSMClusterWith(t *testing.T, opts hsmClusterOpts, specs []hsmNodeSpec, expect int, extra ...string) *hsmCluster {
	t.Helper()
	var labels []string
	for _, s := range specs {
		if s.token != "" {
			labels = append(labels, s.token)
		}
	}
	soft := hsmtest.New(t, append(labels, extra...)...)
	c := &hsmCluster{soft: soft, pin: soft.PinFile(t)}
	for _, s := range specs {
		if s.token == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := hsm.RunEnroll(ctx, hsm.EnrollOptions{
			ModulePath: soft.Module, TokenLabel: s.token, PinFile: c.pin, Domain: testDomain,
			DomainKeyFile: hsmtest.DomainKeyFile(t, s.domainKey),
		})
		cancel()
		if err != nil {
			t.Fatalf("enroll %s: %v", s.token, err)
		}
	}
	raw := make([]byte, kcrypto.RootKeySize)
	for i := range raw {
		raw[i] = byte(i*11 + 5)
	}
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	c.testCluster = &testCluster{t: t, root: root}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n != nil {
				n.Kill()
			}
		}
	})
	var first string
	for i, s := range specs {
		c.dirs = append(c.dirs, t.TempDir())
		id := fmt.Sprintf("n%d", i+1)
		cfg := Config{
			NodeID: id, DataDir: c.dirs[i],
			HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			BootstrapExpect: expect, Zone: fmt.Sprintf("zone-%d", i%3),
			RootKey: root, Timing: store.FastTiming(), FastGossip: true, DeadServerTimeout: time.Hour,
			MaxStaleness: 2 * time.Second, Logger: testLogger(t, id), HSMCheckInterval: 50 * time.Millisecond,
		}
		if opts.instance {
			cfg.InstanceAddr = "127.0.0.1:0"
		}
		if first != "" {
			cfg.Join = []string{first}
		}
		if s.token != "" {
			cfg.HSM = &hsm.Config{ModulePath: soft.Module, TokenLabel: s.token, PinFile: c.pin}
			cfg.HSMDomain = testDomain
		}
		if i >= expect {
			// Joins an existing cluster: started by the test later.
			c.cfgs = append(c.cfgs, cfg)
			c.nodes = append(c.nodes, nil)
			continue
		}
		n := c.startNode(i, cfg)
		if i == 0 {
			first = n.GossipAddr()
		}
	}
	c.waitHealthy()
	res, err := c.nodes[0].Service().Init(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c.creds = res
	c.clients = make([]*client.Client, len(specs))
	for i, n := range c.nodes {
		if n != nil {
			c.connect(i)
		}
	}
	return c
}

func (c *hsmCluster) startNode(i int, cfg Config) *Node {
	c.t.Helper()
	n, err := Start(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.NodeID, err)
	}
	if i < len(c.cfgs) {
		c.cfgs[i] = cfg
		c.nodes[i] = n
	} else {
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, n)
	}
	return n
}

func (c *hsmCluster) connect(i int) {
	c.t.Helper()
	cl, err := client.New(c.nodes[i].Endpoint(), c.creds.AccessKeyID, c.creds.AccessKeySecret)
	if err != nil {
		c.t.Fatal(err)
	}
	c.clients[i] = cl
}

// stop stops node i gracefully, keeping its config (with the addresses it
// had) for a restart.
func (c *hsmCluster) stop(i int) {
	c.t.Helper()
	n := c.nodes[i]
	cfg := c.cfgs[i]
	cfg.HTTPAddr, cfg.ClusterAddr, cfg.GossipAddr = n.HTTPAddr(), n.ClusterAddr(), n.GossipAddr()
	c.cfgs[i] = cfg
	n.Stop()
	c.nodes[i] = nil
}

// restart starts node i again with its data dir and addresses, joining the
// live nodes.
func (c *hsmCluster) restart(i int) {
	c.t.Helper()
	cfg := c.cfgs[i]
	cfg.Join = nil
	for j, n := range c.nodes {
		if n != nil && j != i {
			cfg.Join = append(cfg.Join, n.GossipAddr())
		}
	}
	c.startNode(i, cfg)
	c.connect(i)
}

// status is GET /v1/status of node i.
func (c *hsmCluster) status(i int) (map[string]any, error) {
	resp, err := http.Get(c.nodes[i].Endpoint() + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	err = json.NewDecoder(resp.Body).Decode(&m)
	return m, err
}

// memberHSMHealth is what node i's /v1/status says about member id's HSM
// for the test domain ("" when it shows none).
func (c *hsmCluster) memberHSMHealth(i int, id string) string {
	st, err := c.status(i)
	if err != nil {
		return ""
	}
	members, _ := st["Members"].([]any)
	for _, m := range members {
		mm := m.(map[string]any)
		if mm["NodeId"] != id {
			continue
		}
		hs, _ := mm["HSM"].([]any)
		for _, h := range hs {
			hh := h.(map[string]any)
			if hh["Domain"] == testDomain {
				return hh["Health"].(string)
			}
		}
	}
	return ""
}

// waitHSM waits until every live node's /v1/status shows member id's HSM
// with the given health.
func (c *hsmCluster) waitHSM(id, health string) {
	c.t.Helper()
	waitFor(c.t, id+"'s HSM "+health+" in every node's /v1/status", 20*time.Second, func() bool {
		for i, n := range c.nodes {
			if n != nil && c.memberHSMHealth(i, id) != health {
				return false
			}
		}
		return true
	})
}

func (c *hsmCluster) createHardwareInstance(i int) string {
	c.t.Helper()
	resp, err := c.clients[i].Do(ctxT(c.t), http.MethodPost, "/v1/operator/instances",
		url.Values{"Type": {"hardware"}, "HsmDomain": {testDomain}}, nil, nil)
	if err != nil {
		c.t.Fatalf("create hardware instance: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		c.t.Fatalf("create hardware instance: %d %v %v", resp.StatusCode, m, err)
	}
	if m["Type"] != "hardware" || m["HsmDomain"] != testDomain || !strings.HasPrefix(m["InstanceId"].(string), "kst-") {
		c.t.Fatalf("hardware instance = %v", m)
	}
	return m["InstanceId"].(string)
}

// hwKey is one hardware key under test.
type hwKey struct {
	spec, usage string
	id          string
	version     string
}

func (c *hsmCluster) createHWKey(i int, inst, spec, usage string) hwKey {
	c.t.Helper()
	p := map[string]string{"DKMSInstanceId": inst, "KeySpec": spec, "Description": spec + " " + usage}
	if usage != "" {
		p["KeyUsage"] = usage
	}
	m := c.mustCall(i, "CreateKey", p)["KeyMetadata"].(map[string]any)
	if m["ProtectionLevel"] != "HSM" || m["KeySpec"] != spec || m["DKMSInstanceId"] != inst {
		c.t.Fatalf("CreateKey %s through n%d: %v", spec, i+1, m)
	}
	return hwKey{spec: spec, usage: m["KeyUsage"].(string), id: m["KeyId"].(string), version: m["PrimaryKeyVersion"].(string)}
}

// unwrapped recovers a hardware version's material in Go with the domain
// key — what only a holder of the domain key (a token of the domain, or
// this test) can do.
func unwrapped(t *testing.T, f *fsm.FSM, versionID string, domainKey []byte) []byte {
	t.Helper()
	v, ok := f.KeyVersion(versionID)
	if !ok {
		t.Fatalf("version %s not in the catalogue", versionID)
	}
	if v.Domain != testDomain {
		t.Fatalf("version %s is not domain-wrapped: %+v", versionID, v)
	}
	m, err := hsm.UnwrapKeyPad(domainKey, v.WrappedMaterial)
	if err != nil {
		t.Fatalf("unwrap %s with the domain key: %v", versionID, err)
	}
	return m
}

// openInGo opens a blob with AES-GCM in Go, per docs/CIPHERTEXT.md.
func openInGo(t *testing.T, material, blob []byte, encCtx map[string]string) []byte {
	t.Helper()
	block, err := aes.NewCipher(material)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	aad := append(append([]byte(nil), blob[:17]...), kcrypto.CanonicalContext(encCtx)...)
	pt, err := gcm.Open(nil, blob[17:29], blob[29:], aad)
	if err != nil {
		t.Fatalf("Go cannot open the blob: %v", err)
	}
	return pt
}

func b64s(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func mustB64(t *testing.T, v any) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v.(string))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publicKey parses GetPublicKey's PEM (secp256k1 by hand: Go's x509 does
// not know the curve).
func publicKey(t *testing.T, spec, pemText string) any {
	t.Helper()
	blk, _ := pem.Decode([]byte(pemText))
	if blk == nil {
		t.Fatalf("GetPublicKey: not PEM: %q", pemText)
	}
	if spec == kcrypto.SpecECP256K {
		// The SPKI's BIT STRING is the last 65 bytes: 0x04 || X || Y.
		pub, err := secp256k1.ParsePubKey(blk.Bytes[len(blk.Bytes)-65:])
		if err != nil {
			t.Fatal(err)
		}
		return pub
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// verifyInGo checks a signature over digest with code that is not the
// service's.
func verifyInGo(t *testing.T, spec, alg string, pub any, digest, sig []byte) {
	t.Helper()
	var ok bool
	switch alg {
	case "RSA_PSS_SHA_256":
		ok = rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: 32}) == nil
	case "RSA_PKCS1_SHA_256":
		ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest, sig) == nil
	case "ECDSA_SHA_256":
		if spec == kcrypto.SpecECP256K {
			s, err := secpecdsa.ParseDERSignature(sig)
			if err != nil {
				t.Fatalf("secp256k1 signature is not DER: %v", err)
			}
			ok = s.Verify(digest, pub.(*secp256k1.PublicKey))
			// ParseDERSignature refuses high S, so parsing proved low-S.
		} else {
			ok = ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, sig)
		}
	}
	if !ok {
		t.Fatalf("%s %s signature does not verify in Go", spec, alg)
	}
}

func metricSum(t *testing.T, n *Node, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := n.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if labelValue(m, k) != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// keyOps counts the operations a token ran on keys (its own domain checks
// at start do not count).
func keyOps(t *testing.T, n *Node, token string) float64 {
	var sum float64
	for _, op := range []string{"generate", "import", "unwrap", "encrypt", "decrypt", "sign", "decrypt_asymmetric"} {
		sum += metricSum(t, n, "kms_hsm_operations_total", map[string]string{"token": token, "op": op})
	}
	return sum
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, code string) *client.APIError {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("%s: want %s, got %v", what, code, err)
	}
	return ae
}

// TestHSM_ThreeNodes_EveryOperationThroughEveryNode is the issue's
// scenario: n1 and n2 enrolled in one domain, n3 without an HSM. Every
// hardware spec is created, every operation runs through each of the three
// nodes and is checked with independent code; no material is ever in the
// clear in the catalogue, snapshots, Raft log or data dirs; a token of
// another domain cannot unwrap; losing one HSM node changes nothing, losing
// both answers a 503 naming the domain, and a restarted one serves again.
func TestHSM_ThreeNodes_EveryOperationThroughEveryNode(t *testing.T) {
	domainKey := randomKey(t)
	c := newHSMCluster(t, []hsmNodeSpec{{"tok1", domainKey}, {"tok2", domainKey}, {}}, 3, "other")
	c.waitHSM("n1", "ok")
	c.waitHSM("n2", "ok")
	if h := c.memberHSMHealth(0, "n3"); h != "" {
		t.Fatalf("n3 has no HSM but shows %q", h)
	}
	kcv, _ := hsm.KeyCheckValue(domainKey)
	waitFor(t, "the domain's check value recorded on every node", 10*time.Second, func() bool {
		for _, n := range c.nodes {
			if d, ok := n.FSM().HSMDomain(testDomain); !ok || !bytes.Equal(d.CheckValue, kcv) {
				return false
			}
		}
		return true
	})

	// The instance is created through the node without an HSM.
	inst := c.createHardwareInstance(2)
	specs := []struct{ spec, usage string }{
		{"Aliyun_AES_128", ""}, {"Aliyun_AES_192", ""}, {"Aliyun_AES_256", ""},
		{"RSA_2048", "ENCRYPT/DECRYPT"}, {"RSA_2048", "SIGN/VERIFY"}, {"RSA_3072", "SIGN/VERIFY"}, {"RSA_4096", "ENCRYPT/DECRYPT"},
		{"EC_P256", ""}, {"EC_P256K", ""},
	}
	var keys []hwKey
	for i, s := range specs {
		keys = append(keys, c.createHWKey(i%3, inst, s.spec, s.usage))
	}
	// Creations through n3 were generated on a peer's token.
	if f := metricSum(t, c.nodes[2], "kms_hsm_requests_total", map[string]string{"op": "generate", "route": "forwarded", "result": "ok"}); f != 3 {
		t.Fatalf("n3 forwarded %v generations, want 3", f)
	}
	softKey := c.mustCall(0, "CreateKey", map[string]string{"DKMSInstanceId": c.creds.InstanceID})["KeyMetadata"].(map[string]any)["KeyId"].(string)

	encCtx := map[string]string{"app": "hsm-test", "tenant": "t1"}
	ctxJSON, _ := json.Marshal(encCtx)
	var dataKeys [][]byte // plaintexts that must never reach a disk
	var blobs []string
	for _, k := range keys {
		switch {
		case kcrypto.IsSymmetric(k.spec):
			material := unwrapped(t, c.nodes[0].FSM(), k.version, domainKey)
			if want := map[string]int{"Aliyun_AES_128": 16, "Aliyun_AES_192": 24, "Aliyun_AES_256": 32}[k.spec]; len(material) != want {
				t.Fatalf("%s material is %d bytes", k.spec, len(material))
			}
			for i := 0; i < 3; i++ {
				pt := b64s([]byte(fmt.Sprintf("secret through n%d", i+1)))
				enc := c.mustCall(i, "Encrypt", map[string]string{"KeyId": k.id, "Plaintext": pt, "EncryptionContext": string(ctxJSON)})
				blob := mustB64(t, enc["CiphertextBlob"])
				if enc["KeyVersionId"] != k.version || blob[0] != 0x01 || len(blob) != 29+len(pt)+16 {
					t.Fatalf("%s Encrypt via n%d = %v", k.spec, i+1, enc)
				}
				if got := openInGo(t, material, blob, encCtx); string(got) != pt {
					t.Fatalf("%s: Go opens %q, want %q", k.spec, got, pt)
				}
				again := c.mustCall(i, "Encrypt", map[string]string{"KeyId": k.id, "Plaintext": pt, "EncryptionContext": string(ctxJSON)})
				if bytes.Equal(mustB64(t, again["CiphertextBlob"])[17:29], blob[17:29]) {
					t.Fatalf("%s: two encryptions through n%d share an IV", k.spec, i+1)
				}
				for j := 0; j < 3; j++ {
					dec := c.mustCall(j, "Decrypt", map[string]string{"CiphertextBlob": enc["CiphertextBlob"].(string), "EncryptionContext": string(ctxJSON)})
					if dec["Plaintext"] != pt || dec["KeyId"] != k.id || dec["KeyVersionId"] != k.version {
						t.Fatalf("%s: encrypted via n%d, Decrypt via n%d = %v", k.spec, i+1, j+1, dec)
					}
				}
				// Wrong context and a flipped tag bit: InvalidCiphertext, on a
				// node with the HSM and through a forward alike.
				_, _, err := c.call((i+1)%3, "Decrypt", map[string]string{"CiphertextBlob": enc["CiphertextBlob"].(string), "EncryptionContext": `{"app":"other"}`})
				wantCode(t, k.spec+" wrong context", err, "InvalidCiphertext")
				tampered := append([]byte(nil), blob...)
				tampered[len(tampered)-1] ^= 1
				_, _, err = c.call((i+2)%3, "Decrypt", map[string]string{"CiphertextBlob": b64s(tampered), "EncryptionContext": string(ctxJSON)})
				wantCode(t, k.spec+" tampered tag", err, "InvalidCiphertext")

				gdk := c.mustCall(i, "GenerateDataKey", map[string]string{"KeyId": k.id, "EncryptionContext": string(ctxJSON)})
				raw := mustB64(t, gdk["Plaintext"])
				if len(raw) != 32 {
					t.Fatalf("data key of %d bytes", len(raw))
				}
				dataKeys = append(dataKeys, raw, []byte(gdk["Plaintext"].(string)))
				if got := openInGo(t, material, mustB64(t, gdk["CiphertextBlob"]), encCtx); string(got) != gdk["Plaintext"] {
					t.Fatalf("%s: data key blob opens in Go to another value", k.spec)
				}
				wp := c.mustCall(i, "GenerateDataKeyWithoutPlaintext", map[string]string{"KeyId": k.id, "EncryptionContext": string(ctxJSON)})
				if _, has := wp["Plaintext"]; has {
					t.Fatal("GenerateDataKeyWithoutPlaintext returned the plaintext")
				}
				dec := c.mustCall((i+1)%3, "Decrypt", map[string]string{"CiphertextBlob": wp["CiphertextBlob"].(string), "EncryptionContext": string(ctxJSON)})
				dataKeys = append(dataKeys, mustB64(t, dec["Plaintext"]))

				// ReEncrypt: software → hardware → hardware (another spec).
				senc := c.mustCall(i, "Encrypt", map[string]string{"KeyId": softKey, "Plaintext": pt})
				re := c.mustCall(i, "ReEncrypt", map[string]string{"CiphertextBlob": senc["CiphertextBlob"].(string), "DestinationKeyId": k.id, "DestinationEncryptionContext": string(ctxJSON)})
				if re["KeyId"] != k.id {
					t.Fatalf("ReEncrypt = %v", re)
				}
				if got := openInGo(t, material, mustB64(t, re["CiphertextBlob"]), encCtx); string(got) != pt {
					t.Fatalf("ReEncrypted blob opens to %q", got)
				}
				re2 := c.mustCall((i+2)%3, "ReEncrypt", map[string]string{"CiphertextBlob": re["CiphertextBlob"].(string), "SourceEncryptionContext": string(ctxJSON), "DestinationKeyId": keys[0].id})
				dec = c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": re2["CiphertextBlob"].(string)})
				if dec["Plaintext"] != pt || dec["KeyId"] != keys[0].id {
					t.Fatalf("after two ReEncrypts: %v", dec)
				}
				blobs = append(blobs, enc["CiphertextBlob"].(string))
			}
			// A data key exported to an RSA key of the caller's.
			wk, _ := rsa.GenerateKey(rand.Reader, 2048)
			der, _ := x509.MarshalPKIXPublicKey(&wk.PublicKey)
			ex := c.mustCall(2, "GenerateAndExportDataKey", map[string]string{"KeyId": k.id, "PublicKeyBlob": b64s(der), "WrappingKeySpec": "RSA_2048", "WrappingAlgorithm": "RSAES_OAEP_SHA_256"})
			exported, err := rsa.DecryptOAEP(sha256.New(), nil, wk, mustB64(t, ex["ExportedDataKey"]), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := openInGo(t, material, mustB64(t, ex["CiphertextBlob"]), nil); string(got) != b64s(exported) {
				t.Fatal("GenerateAndExportDataKey: the blob and the exported key disagree")
			}
			dataKeys = append(dataKeys, exported)

		case k.usage == "SIGN/VERIFY":
			pubPEM := c.mustCall(2, "GetPublicKey", map[string]string{"KeyId": k.id, "KeyVersionId": k.version})["PublicKey"].(string)
			pub := publicKey(t, k.spec, pubPEM)
			algs := []string{"ECDSA_SHA_256"}
			if kcrypto.IsRSA(k.spec) {
				algs = []string{"RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"}
			}
			for i := 0; i < 3; i++ {
				if got := c.mustCall(i, "GetPublicKey", map[string]string{"KeyId": k.id, "KeyVersionId": k.version})["PublicKey"]; got != pubPEM {
					t.Fatalf("n%d's public key differs", i+1)
				}
				for _, alg := range algs {
					digest := sha256.Sum256([]byte(fmt.Sprintf("%s signed via n%d", alg, i+1)))
					sig := c.mustCall(i, "AsymmetricSign", map[string]string{"KeyId": k.id, "KeyVersionId": k.version, "Algorithm": alg, "Digest": b64s(digest[:])})
					raw := mustB64(t, sig["Value"])
					verifyInGo(t, k.spec, alg, pub, digest[:], raw)
					for j := 0; j < 3; j++ {
						v := c.mustCall(j, "AsymmetricVerify", map[string]string{"KeyId": k.id, "KeyVersionId": k.version, "Algorithm": alg, "Digest": b64s(digest[:]), "Value": b64s(raw)})
						if v["Value"] != true {
							t.Fatalf("%s %s signed via n%d does not verify via n%d", k.spec, alg, i+1, j+1)
						}
					}
					other := sha256.Sum256([]byte("another message"))
					if v := c.mustCall(i, "AsymmetricVerify", map[string]string{"KeyId": k.id, "KeyVersionId": k.version, "Algorithm": alg, "Digest": b64s(other[:]), "Value": b64s(raw)}); v["Value"] != false {
						t.Fatalf("%s verifies a signature of another digest", k.spec)
					}
				}
			}

		default: // RSA ENCRYPT/DECRYPT
			pub := publicKey(t, k.spec, c.mustCall(0, "GetPublicKey", map[string]string{"KeyId": k.id, "KeyVersionId": k.version})["PublicKey"].(string)).(*rsa.PublicKey)
			for i := 0; i < 3; i++ {
				for _, alg := range []string{"RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"} {
					msg := []byte(fmt.Sprintf("%s to n%d", alg, i+1))
					h := sha256.New()
					if alg == "RSAES_OAEP_SHA_1" {
						h = sha1.New()
					}
					ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, msg, nil)
					if err != nil {
						t.Fatal(err)
					}
					dec := c.mustCall(i, "AsymmetricDecrypt", map[string]string{"KeyId": k.id, "KeyVersionId": k.version, "Algorithm": alg, "CiphertextBlob": b64s(ct)})
					if !bytes.Equal(mustB64(t, dec["Plaintext"]), msg) {
						t.Fatalf("%s %s via n%d decrypts to %q", k.spec, alg, i+1, mustB64(t, dec["Plaintext"]))
					}
					enc := c.mustCall(i, "AsymmetricEncrypt", map[string]string{"KeyId": k.id, "KeyVersionId": k.version, "Algorithm": alg, "Plaintext": b64s(msg)})
					dec = c.mustCall((i+1)%3, "AsymmetricDecrypt", map[string]string{"KeyId": k.id, "KeyVersionId": k.version, "Algorithm": alg, "CiphertextBlob": enc["CiphertextBlob"].(string)})
					if !bytes.Equal(mustB64(t, dec["Plaintext"]), msg) {
						t.Fatalf("%s %s round trip via n%d/n%d failed", k.spec, alg, i+1, (i+1)%3+1)
					}
					ct[len(ct)/2] ^= 0x40
					_, _, err = c.call(i, "AsymmetricDecrypt", map[string]string{"KeyId": k.id, "KeyVersionId": k.version, "Algorithm": alg, "CiphertextBlob": b64s(ct)})
					wantCode(t, k.spec+" damaged OAEP ciphertext", err, "InvalidCiphertext")
				}
			}
		}
	}

	// Rotation and state changes of a hardware key, through the node
	// without an HSM.
	rot := keys[2]
	m, resp, err := c.call(2, "CreateKeyVersion", map[string]string{"KeyId": rot.id})
	if err != nil {
		t.Fatal(err)
	}
	nv := m["KeyVersion"].(map[string]any)["KeyVersionId"].(string)
	if v, ok := c.nodes[2].FSM().KeyVersion(nv); !ok || v.Domain != testDomain {
		t.Fatalf("new version = %+v", v)
	}
	enc := c.mustCall(0, "Encrypt", map[string]string{"KeyId": rot.id, "Plaintext": "cm90YXRlZA=="}, client.WithMinIndex(resp.Index))
	if enc["KeyVersionId"] != nv {
		t.Fatalf("Encrypt after rotation used %v, want %s", enc["KeyVersionId"], nv)
	}
	for i := 0; i < 3; i++ {
		c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": blobs[6], "EncryptionContext": string(ctxJSON)})
		c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": enc["CiphertextBlob"].(string)})
	}
	c.mustCall(2, "UpdateRotationPolicy", map[string]string{"KeyId": rot.id, "EnableAutomaticRotation": "true", "RotationInterval": "7d"})
	idx := c.write(2, "DisableKey", map[string]string{"KeyId": rot.id})
	for i := 0; i < 3; i++ {
		_, _, err := c.call(i, "Encrypt", map[string]string{"KeyId": rot.id, "Plaintext": "eA=="}, client.WithMinIndex(idx))
		wantCode(t, fmt.Sprintf("Encrypt with a disabled key via n%d", i+1), err, "Rejected.Disabled")
	}
	idx = c.write(1, "EnableKey", map[string]string{"KeyId": rot.id})
	c.mustCall(2, "Encrypt", map[string]string{"KeyId": rot.id, "Plaintext": "eA=="}, client.WithMinIndex(idx))
	ec := keys[7]
	idx = c.write(0, "ScheduleKeyDeletion", map[string]string{"KeyId": ec.id, "PendingWindowInDays": "7"})
	digest := sha256.Sum256([]byte("x"))
	_, _, err = c.call(2, "AsymmetricSign", map[string]string{"KeyId": ec.id, "KeyVersionId": ec.version, "Algorithm": "ECDSA_SHA_256", "Digest": b64s(digest[:])}, client.WithMinIndex(idx))
	wantCode(t, "sign with a key pending deletion", err, "Rejected.PendingDeletion")
	idx = c.write(2, "CancelKeyDeletion", map[string]string{"KeyId": ec.id})
	for _, n := range c.nodes {
		if err := n.FSM().WaitForIndex(ctxT(t), idx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("no material in the clear", func(t *testing.T) {
		checkNoMaterialAtRest(t, c, keys, domainKey, dataKeys)
	})
	t.Run("a token of another domain cannot unwrap", func(t *testing.T) {
		otherKey := randomKey(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tok, err := hsm.Open(hsm.Config{ModulePath: c.soft.Module, TokenLabel: "other", PinFile: c.pin, HealthInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		// Same domain name, another key: what a wrongly enrolled token has.
		if _, err := tok.Enroll(ctx, testDomain, otherKey); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			v, _ := c.nodes[0].FSM().KeyVersion(k.version)
			ref := hsm.KeyRef{ID: "other-" + v.ID, Domain: testDomain, Spec: hsm.KeySpec(k.spec), Usage: hsm.Usage(k.usage), Wrapped: v.WrappedMaterial}
			if err := tok.Unwrap(ctx, ref); !errors.Is(err, hsm.ErrUnwrap) {
				t.Fatalf("%s: a token of another domain unwrapped the blob: %v", k.spec, err)
			}
			if _, err := hsm.UnwrapKeyPad(otherKey, v.WrappedMaterial); err == nil {
				t.Fatalf("%s: another domain key unwraps the blob in Go", k.spec)
			}
		}
	})

	// Losing one HSM node: everything keeps working through the others.
	c.stop(0)
	c.waitHSMGone("n1")
	for _, i := range []int{1, 2} {
		enc := c.mustCall(i, "Encrypt", map[string]string{"KeyId": keys[0].id, "Plaintext": "b25lIGRvd24="})
		c.mustCall(3-i, "Decrypt", map[string]string{"CiphertextBlob": enc["CiphertextBlob"].(string)})
		c.mustCall(i, "AsymmetricSign", map[string]string{"KeyId": ec.id, "KeyVersionId": ec.version, "Algorithm": "ECDSA_SHA_256", "Digest": b64s(digest[:])})
		c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": blobs[0], "EncryptionContext": string(ctxJSON)})
	}
	c.createHWKey(2, inst, "Aliyun_AES_256", "")

	// Losing both: a clear 503 that names the domain, fast.
	c.stop(1)
	start := time.Now()
	_, _, err = c.call(2, "Encrypt", map[string]string{"KeyId": keys[0].id, "Plaintext": "eA=="})
	ae := wantCode(t, "Encrypt with both HSM nodes down", err, "ServiceUnavailable.HSM")
	if ae.StatusCode != 503 || !strings.Contains(ae.Message, `"`+testDomain+`"`) {
		t.Fatalf("503 without the domain: %v", ae)
	}
	_, _, err = c.call(2, "Decrypt", map[string]string{"CiphertextBlob": blobs[0], "EncryptionContext": string(ctxJSON)})
	wantCode(t, "Decrypt with both HSM nodes down", err, "ServiceUnavailable.HSM")
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("failing took %s", d)
	}

	// One HSM node back: the cluster has a quorum again and serves.
	c.restart(1)
	c.waitHealthy()
	c.waitHSM("n2", "ok")
	waitFor(t, "n3 to serve the hardware key again", 20*time.Second, func() bool {
		_, _, err := c.call(2, "Encrypt", map[string]string{"KeyId": keys[0].id, "Plaintext": "YmFjaw=="})
		return err == nil
	})
	for _, i := range []int{1, 2} {
		dec := c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": blobs[0], "EncryptionContext": string(ctxJSON)})
		if dec["KeyId"] != keys[0].id {
			t.Fatalf("after recovery: %v", dec)
		}
		c.mustCall(i, "AsymmetricSign", map[string]string{"KeyId": ec.id, "KeyVersionId": ec.version, "Algorithm": "ECDSA_SHA_256", "Digest": b64s(digest[:])})
	}
}

// write runs a write through node i and returns its Raft index.
func (c *hsmCluster) write(i int, action string, params map[string]string) uint64 {
	c.t.Helper()
	_, resp, err := c.call(i, action, params)
	if err != nil {
		c.t.Fatalf("%s via n%d: %v", action, i+1, err)
	}
	return resp.Index
}

// waitHSMGone waits until no live node routes to id any more (it left).
func (c *hsmCluster) waitHSMGone(id string) {
	c.t.Helper()
	waitFor(c.t, id+" gone from every node's view", 20*time.Second, func() bool {
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			for _, m := range n.Gossip().AliveWith(nil) {
				if m.ID == id {
					return false
				}
			}
		}
		return true
	})
}

// checkNoMaterialAtRest: the catalogue keeps only domain-wrapped blobs
// (none opens under the root key), and no key's material nor any data key
// appears in any file of any data dir — Raft log, stable store, snapshots
// (one is forced on every node) — nor in a saved snapshot.
func checkNoMaterialAtRest(t *testing.T, c *hsmCluster, keys []hwKey, domainKey []byte, dataKeys [][]byte) {
	var secrets [][]byte
	for _, k := range keys {
		for i, n := range c.nodes {
			if n == nil {
				continue
			}
			key, _ := n.FSM().Key(k.id)
			for _, vid := range key.Versions {
				v, _ := n.FSM().KeyVersion(vid)
				if v.Domain != testDomain || len(v.WrappedMaterial) == 0 {
					t.Fatalf("n%d: %s version %s is not domain-wrapped: %+v", i+1, k.spec, vid, v)
				}
				if _, err := c.root.Unwrap(v.WrappedMaterial, kcrypto.MaterialAAD(k.id, vid)); err == nil {
					t.Fatalf("%s version %s opens under the root key", k.spec, vid)
				}
				secrets = append(secrets, secretParts(t, k.spec, unwrapped(t, n.FSM(), vid, domainKey))...)
			}
		}
	}
	secrets = append(secrets, dataKeys...)
	var saved bytes.Buffer
	if _, err := c.nodes[0].FSM().WriteSnapshotTo(&saved); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		if err := n.Store().Snapshot(); err != nil {
			t.Fatalf("n%d snapshot: %v", i+1, err)
		}
		files = append(files, dataDirFiles(t, c.dirs[i])...)
	}
	if len(files) < 6 {
		t.Fatalf("only %d files in the data dirs: %v", len(files), files)
	}
	blobSeen := false
	firstBlob, _ := c.nodes[0].FSM().KeyVersion(keys[0].version)
	for _, f := range append(files, "saved snapshot") {
		var data []byte
		if f == "saved snapshot" {
			data = saved.Bytes()
		} else {
			var err error
			if data, err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
		blobSeen = blobSeen || bytes.Contains(data, firstBlob.WrappedMaterial)
		for _, s := range secrets {
			// 16 bytes of key material or of a data key are enough to
			// recognise it; shorter windows would match by chance.
			for off := 0; off+16 <= len(s); off += 8 {
				if bytes.Contains(data, s[off:off+16]) {
					t.Fatalf("secret bytes found in %s", f)
				}
			}
		}
	}
	if !blobSeen {
		t.Fatal("the wrapped blob is in no file: the scan looked at the wrong files")
	}
}

// TestHSM_BadTokenIsNoLongerAdvertised: a token that loses its objects
// underneath the process (its store deleted, as a re-initialized or damaged
// HSM would) turns its node's HSM "bad" in every node's /v1/status; the
// domain's keys keep working through every node, served by the other token.
func TestHSM_BadTokenIsNoLongerAdvertised(t *testing.T) {
	key := randomKey(t)
	c := newHSMCluster(t, []hsmNodeSpec{{"tok1", key}, {"tok2", key}, {}}, 3)
	c.waitHSM("n1", "ok")
	c.waitHSM("n2", "ok")
	inst := c.createHardwareInstance(0)
	k := c.createHWKey(0, inst, "Aliyun_AES_256", "")
	blob := c.mustCall(0, "Encrypt", map[string]string{"KeyId": k.id, "Plaintext": "YmVmb3Jl"})["CiphertextBlob"].(string)

	// Delete tok1's object store: SoftHSM keeps the slot and the session,
	// so the token still answers, but its domain key is gone.
	dirs, err := os.ReadDir(c.soft.Dir + "/tokens")
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, d := range dirs {
		obj, err := os.ReadFile(c.soft.Dir + "/tokens/" + d.Name() + "/token.object")
		if err == nil && bytes.Contains(obj, []byte("tok1")) {
			if err := os.RemoveAll(c.soft.Dir + "/tokens/" + d.Name()); err != nil {
				t.Fatal(err)
			}
			removed++
		}
	}
	if removed != 1 {
		t.Fatalf("found %d token stores labelled tok1", removed)
	}
	c.waitHSM("n1", "bad")
	if st, _ := c.nodes[0].Service().HSMStatus(); !strings.Contains(st.Reason, "domain") {
		t.Fatalf("n1's status says %+v", st)
	}
	for i := 0; i < 3; i++ {
		dec := c.mustCall(i, "Decrypt", map[string]string{"CiphertextBlob": blob})
		if dec["Plaintext"] != "YmVmb3Jl" {
			t.Fatalf("Decrypt via n%d = %v", i+1, dec)
		}
		c.mustCall(i, "Encrypt", map[string]string{"KeyId": k.id, "Plaintext": "YWZ0ZXI="})
	}
	// n2's token served all of it after n1 went bad.
	if f := metricSum(t, c.nodes[0], "kms_hsm_requests_total", map[string]string{"route": "forwarded", "result": "ok"}); f < 2 {
		t.Fatalf("n1 forwarded %v operations", f)
	}
}

// secretParts returns the secret numbers in a version's unwrapped material:
// the AES key, an EC private scalar, an RSA private exponent and primes (a
// PKCS #8 also holds public values, which are in the catalogue by design).
func secretParts(t *testing.T, spec string, material []byte) [][]byte {
	t.Helper()
	if kcrypto.IsSymmetric(spec) {
		return [][]byte{material}
	}
	// SoftHSM zero-pads the PKCS #8 to a multiple of 8: parse the DER
	// prefix only.
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(material, &raw); err != nil {
		t.Fatalf("%s: unwrapped material is not DER: %v", spec, err)
	}
	der := raw.FullBytes
	if kcrypto.IsRSA(spec) {
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		rk := k.(*rsa.PrivateKey)
		return [][]byte{rk.D.Bytes(), rk.Primes[0].Bytes(), rk.Primes[1].Bytes()}
	}
	var p8 struct {
		Version    int
		Algorithm  asn1.RawValue
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(der, &p8); err != nil {
		t.Fatalf("%s: PKCS #8: %v", spec, err)
	}
	var ec struct {
		Version    int
		PrivateKey []byte
		Rest       asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(p8.PrivateKey, &ec); err != nil {
		t.Fatalf("%s: ECPrivateKey: %v", spec, err)
	}
	if len(ec.PrivateKey) != 32 {
		t.Fatalf("%s: private scalar of %d bytes", spec, len(ec.PrivateKey))
	}
	return [][]byte{ec.PrivateKey}
}

// TestHSM_MismatchedTokenIsNeverRouted: a node whose token holds another key
// under the domain's name is marked mismatch everywhere, logs why, never
// serves the domain (not even requests it receives itself), and once the
// right nodes are gone the domain answers 503.
func TestHSM_MismatchedTokenIsNeverRouted(t *testing.T) {
	good, bad := randomKey(t), randomKey(t)
	c := newHSMCluster(t, []hsmNodeSpec{{"good", good}, {}, {"bad", bad}}, 2)
	c.waitHSM("n1", "ok")
	goodKCV, _ := hsm.KeyCheckValue(good)
	waitFor(t, "the domain to be recorded by n1", 10*time.Second, func() bool {
		d, ok := c.nodes[1].FSM().HSMDomain(testDomain)
		return ok && bytes.Equal(d.CheckValue, goodKCV) && d.RegisteredBy == "n1"
	})
	// The wrongly enrolled node joins after the domain was recorded.
	c.startNode(2, c.cfgs[2])
	c.connect(2)
	// As a voter: with n1 stopped below, n2 and n3 must keep a quorum.
	waitFor(t, "n3 a Raft voter", 20*time.Second, func() bool {
		servers, err := c.nodes[0].Store().Servers()
		if err != nil {
			return false
		}
		for _, s := range servers {
			if s.ID == "n3" {
				return s.Voter && c.nodes[2].Store().CaughtUp()
			}
		}
		return false
	})
	c.waitHSM("n3", "mismatch")
	// n3's own status says why.
	st, err := c.status(2)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := st["HSM"].([]any)
	if len(own) != 1 || own[0].(map[string]any)["Health"] != "mismatch" || !strings.Contains(own[0].(map[string]any)["Reason"].(string), "recorded") {
		t.Fatalf("n3's /v1/status HSM = %v", st["HSM"])
	}
	if st, _ := c.nodes[2].Service().HSMStatus(); st.Health != kms.HSMHealthMismatch || !strings.Contains(st.Reason, hex.EncodeToString(goodKCV)) {
		t.Fatalf("n3's status = %+v", st)
	}

	inst := c.createHardwareInstance(2)
	k := c.createHWKey(2, inst, "Aliyun_AES_256", "")
	var blob string
	for i := 0; i < 3; i++ {
		enc := c.mustCall(i, "Encrypt", map[string]string{"KeyId": k.id, "Plaintext": "aGVsbG8="})
		blob = enc["CiphertextBlob"].(string)
		c.mustCall(2, "Decrypt", map[string]string{"CiphertextBlob": blob})
	}
	// Where the work ran is reported to the caller (for the audit record).
	caller := kms.Caller{AccountID: c.creds.AccountID, Principal: "acs:ram::" + c.creds.AccountID + ":root", Kind: "root", AccessKeyID: c.creds.AccessKeyID}
	rctx, route := kms.WithHSMRoute(ctxT(t))
	if _, err := c.nodes[2].Service().Encrypt(rctx, caller, kms.EncryptInput{Key: k.id, Plaintext: []byte("eA==")}); err != nil {
		t.Fatal(err)
	}
	if route.ForwardedTo() != "n1" {
		t.Fatalf("forwarded to %q, want n1", route.ForwardedTo())
	}
	rctx, route = kms.WithHSMRoute(ctxT(t))
	if _, err := c.nodes[0].Service().Encrypt(rctx, caller, kms.EncryptInput{Key: k.id, Plaintext: []byte("eA==")}); err != nil || route.ForwardedTo() != "" {
		t.Fatalf("served locally: forwarded to %q, %v", route.ForwardedTo(), err)
	}

	// n3's token did no operation; n3 forwarded all of its own.
	if ops := keyOps(t, c.nodes[2], "bad"); ops != 0 {
		t.Fatalf("the mismatched token ran %v key operations", ops)
	}
	if f := metricSum(t, c.nodes[2], "kms_hsm_requests_total", map[string]string{"route": "forwarded", "result": "ok"}); f < 5 {
		t.Fatalf("n3 forwarded %v operations", f)
	}
	if s := metricSum(t, c.nodes[0], "kms_hsm_requests_total", map[string]string{"route": "served", "result": "ok"}); s < 5 {
		t.Fatalf("n1 served %v forwarded operations", s)
	}

	// Without n1 the domain has no node: 503 naming it, on n2 and on n3
	// (whose token would hold a key, the wrong one).
	c.stop(0)
	c.waitHSMGone("n1")
	for _, i := range []int{1, 2} {
		_, _, err := c.call(i, "Decrypt", map[string]string{"CiphertextBlob": blob})
		ae := wantCode(t, fmt.Sprintf("Decrypt via n%d without a good token", i+1), err, "ServiceUnavailable.HSM")
		if !strings.Contains(ae.Message, testDomain) {
			t.Fatalf("503 does not name the domain: %s", ae.Message)
		}
		_, _, err = c.call(i, "CreateKey", map[string]string{"DKMSInstanceId": inst, "KeySpec": "EC_P256"})
		wantCode(t, "CreateKey without a good token", err, "ServiceUnavailable.HSM")
	}
	if ops := keyOps(t, c.nodes[2], "bad"); ops != 0 {
		t.Fatalf("the mismatched token ran %v key operations", ops)
	}
}
