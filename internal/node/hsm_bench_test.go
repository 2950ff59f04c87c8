//go:build cgo

package node

import (
	"github.com/raftkms/raftkms/internal/testutil"

	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/hsm"
	"github.com/raftkms/raftkms/hsm/hsmtest"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
)

// Benchmarks of HSM-bound operations through the API (signed HTTP requests
// to a node, as a client sends them), next to the same operations on the
// node's own token through the hsm API, and software keys for scale:
//
//	go test -run '^$' -bench 'HSMAPI' -benchtime 3s ./internal/node/
//
// "local": the node that receives the request has the token. "forwarded":
// it has none and forwards each operation over the cluster port to the one
// that does (two nodes on loopback). The raw PKCS#11 rate of a SoftHSM token
// is BenchmarkRawPKCS11_* in ./hsm/.

type benchEnv struct {
	tok      *hsm.Token // the HSM node's token (owned by the node)
	hsmNode  *Node
	clients  []*client.Client // [0] the HSM node, [1] the node without one (forwarded)
	aes, p2  string           // key ids
	p2Ver    string
	rsa      string
	rsaVer   string
	aesRef   hsm.KeyRef
	p2Ref    hsm.KeyRef
	rsaRef   hsm.KeyRef
	softAES  string
	software *client.Client
}

func waitTB(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testutil.Eventually(tb, what, 30*time.Second, cond)
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	soft := hsmtest.New(b, "bench1")
	pin := soft.PinFile(b)
	key := make([]byte, 32)
	rand.Read(key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := hsm.RunEnroll(ctx, hsm.EnrollOptions{ModulePath: soft.Module, TokenLabel: "bench1", PinFile: pin, Domain: testDomain, DomainKeyFile: hsmtest.DomainKeyFile(b, key)}); err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, kcrypto.RootKeySize)
	rand.Read(raw)
	root, _ := kcrypto.NewRootKey(raw)
	var nodes []*Node
	b.Cleanup(func() {
		for _, n := range nodes {
			n.Stop()
		}
	})
	for i := 0; i < 2; i++ {
		cfg := Config{
			NodeID: fmt.Sprintf("b%d", i+1), DataDir: b.TempDir(),
			HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			BootstrapExpect: 2, Zone: "z", RootKey: root, Timing: store.FastTiming(), FastGossip: true,
			DeadServerTimeout: time.Hour, HSMCheckInterval: 50 * time.Millisecond,
		}
		if i == 0 {
			cfg.HSM = &hsm.Config{ModulePath: soft.Module, TokenLabel: "bench1", PinFile: pin, HealthInterval: -1}
			cfg.HSMDomain = testDomain
		} else {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		n, err := Start(cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	waitTB(b, "a leader", func() bool {
		_, id := nodes[1].Store().Leader()
		return id != "" && nodes[0].Store().CaughtUp() && nodes[1].Store().CaughtUp()
	})
	res, err := nodes[0].Service().Init(ctx)
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{hsmNode: nodes[0], tok: nodes[0].hsm}
	for _, n := range nodes {
		cl, err := client.New(n.Endpoint(), res.AccessKeyID, res.AccessKeySecret)
		if err != nil {
			b.Fatal(err)
		}
		e.clients = append(e.clients, cl)
	}
	waitTB(b, "the domain served", func() bool {
		_, ok := nodes[1].FSM().HSMDomain(testDomain)
		return ok && len(nodes[1].hsmPeers(testDomain)) == 1 && nodes[1].hsmPeers(testDomain)[0].Health == kms.HSMHealthOK
	})
	resp, err := e.clients[0].Do(ctx, http.MethodPost, "/v1/operator/instances", url.Values{"Type": {"hardware"}, "HsmDomain": {testDomain}}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	var inst struct{ InstanceId string }
	json.NewDecoder(resp.Body).Decode(&inst)
	resp.Body.Close()
	create := func(spec string) (string, string) {
		p := map[string]string{"DKMSInstanceId": inst.InstanceId, "KeySpec": spec}
		if spec == "RSA_2048" {
			p["KeyUsage"] = "SIGN/VERIFY"
		}
		r, err := e.clients[0].Call(ctx, "CreateKey", p)
		if err != nil {
			b.Fatal(err)
		}
		var m struct {
			KeyMetadata struct{ KeyId, PrimaryKeyVersion string }
		}
		r.Decode(&m)
		// Both nodes must know the key before the timing starts.
		waitTB(b, "the key on both nodes", func() bool {
			_, ok := nodes[1].FSM().Key(m.KeyMetadata.KeyId)
			return ok
		})
		return m.KeyMetadata.KeyId, m.KeyMetadata.PrimaryKeyVersion
	}
	var aesVer string
	e.aes, aesVer = create("Aliyun_AES_256")
	e.p2, e.p2Ver = create("EC_P256")
	e.rsa, e.rsaVer = create("RSA_2048")
	v, _ := nodes[0].FSM().KeyVersion(aesVer)
	e.aesRef = hsm.KeyRef{ID: v.ID, Domain: testDomain, Spec: hsm.SpecAES256, Usage: hsm.UsageEncrypt, Wrapped: v.WrappedMaterial}
	v, _ = nodes[0].FSM().KeyVersion(e.p2Ver)
	e.p2Ref = hsm.KeyRef{ID: v.ID, Domain: testDomain, Spec: hsm.SpecECP256, Usage: hsm.UsageSign, Wrapped: v.WrappedMaterial}
	v, _ = nodes[0].FSM().KeyVersion(e.rsaVer)
	e.rsaRef = hsm.KeyRef{ID: v.ID, Domain: testDomain, Spec: hsm.SpecRSA2048, Usage: hsm.UsageSign, Wrapped: v.WrappedMaterial}
	r, err := e.clients[0].Call(ctx, "CreateKey", map[string]string{"DKMSInstanceId": res.InstanceID})
	if err != nil {
		b.Fatal(err)
	}
	var m struct{ KeyMetadata struct{ KeyId string } }
	r.Decode(&m)
	e.softAES = m.KeyMetadata.KeyId
	return e
}

var benchPlaintext = base64.StdEncoding.EncodeToString(make([]byte, 48)) // 64 bytes of text

func benchCall(b *testing.B, cl *client.Client, action string, params map[string]string) {
	b.Helper()
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.Call(ctx, action, params); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHSMAPI runs every case on one cluster (key generation and
// cluster start are not repeated per case). Parallelism is GOMAXPROCS
// concurrent clients (-cpu sets it).
func BenchmarkHSMAPI(b *testing.B) {
	e := newBenchEnv(b)
	digest := sha256.Sum256([]byte("bench"))
	d64 := base64.StdEncoding.EncodeToString(digest[:])
	encrypt := map[string]string{"KeyId": e.aes, "Plaintext": benchPlaintext}
	sign := map[string]string{"KeyId": e.p2, "KeyVersionId": e.p2Ver, "Algorithm": "ECDSA_SHA_256", "Digest": d64}
	b.Run("Encrypt64/hsm-token-direct", func(b *testing.B) {
		ctx := context.Background()
		pt := make([]byte, 64)
		aad := make([]byte, 17)
		b.RunParallel(func(pb *testing.PB) {
			iv := make([]byte, 12)
			for pb.Next() {
				rand.Read(iv)
				if _, err := e.tok.Encrypt(ctx, e.aesRef, iv, pt, aad); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Encrypt64/api-local", func(b *testing.B) { benchCall(b, e.clients[0], "Encrypt", encrypt) })
	b.Run("Encrypt64/api-forwarded", func(b *testing.B) { benchCall(b, e.clients[1], "Encrypt", encrypt) })
	b.Run("Encrypt64/api-software-key", func(b *testing.B) {
		benchCall(b, e.clients[0], "Encrypt", map[string]string{"KeyId": e.softAES, "Plaintext": benchPlaintext})
	})
	b.Run("SignP256/hsm-token-direct", func(b *testing.B) {
		ctx := context.Background()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.tok.Sign(ctx, e.p2Ref, hsm.ECDSASHA256, digest[:]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("SignP256/api-local", func(b *testing.B) { benchCall(b, e.clients[0], "AsymmetricSign", sign) })
	b.Run("SignP256/api-forwarded", func(b *testing.B) { benchCall(b, e.clients[1], "AsymmetricSign", sign) })
	rsaSign := map[string]string{"KeyId": e.rsa, "KeyVersionId": e.rsaVer, "Algorithm": "RSA_PSS_SHA_256", "Digest": d64}
	b.Run("SignRSA2048PSS/hsm-token-direct", func(b *testing.B) {
		ctx := context.Background()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.tok.Sign(ctx, e.rsaRef, hsm.RSAPSSSHA256, digest[:]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("SignRSA2048PSS/api-local", func(b *testing.B) { benchCall(b, e.clients[0], "AsymmetricSign", rsaSign) })
	b.Run("SignRSA2048PSS/api-forwarded", func(b *testing.B) { benchCall(b, e.clients[1], "AsymmetricSign", rsaSign) })
}
