package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/signature"
	"github.com/raftkms/raftkms/store"
)

// fakeClock is the service clock (rotation, deletion windows, expiries) of
// the catalogue tests. Request signatures are checked against the real
// clock, so moving it does not disturb authentication.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	// Whole seconds: the API reports times to the second.
	return &fakeClock{now: time.Now().UTC().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// startClockNode is startNode with the service clock injected and the
// leader's scheduler slowed to once an hour, so that the tests run the
// scheduler themselves (tick) at the moments they choose.
func startClockNode(tb testing.TB, clock *fakeClock) *testNode {
	tb.Helper()
	dir := tb.TempDir()
	root, err := kcrypto.GenerateRootKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		tb.Fatal(err)
	}
	n, err := node.Start(node.Config{
		NodeID: "catalogue-test", DataDir: filepath.Join(dir, "data"), Single: true,
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0",
		RootKey: root, Timing: store.FastTiming(),
		Clock: clock.Now, SchedulerInterval: time.Hour,
	})
	if err != nil {
		tb.Fatalf("node.Start: %v", err)
	}
	tb.Cleanup(n.Stop)
	anon, err := client.New(n.Endpoint(), "", "")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := anon.DoUnsigned(ctx, http.MethodPost, "/v1/operator/init", nil, nil, nil)
	if err != nil {
		tb.Fatalf("operator init: %v", err)
	}
	defer resp.Body.Close()
	var init struct{ AccountId, AccessKeyId, AccessKeySecret, InstanceId string }
	if err := json.NewDecoder(resp.Body).Decode(&init); err != nil || init.AccessKeyId == "" {
		tb.Fatalf("operator init answer: %v %+v", err, init)
	}
	tn := &testNode{
		Node: n, AccountID: init.AccountId, InstanceID: init.InstanceId,
		Creds: signature.Credentials{AccessKeyID: init.AccessKeyId, AccessKeySecret: init.AccessKeySecret},
	}
	if tn.V3, err = client.New(n.Endpoint(), init.AccessKeyId, init.AccessKeySecret); err != nil {
		tb.Fatal(err)
	}
	if tn.V1, err = client.New(n.Endpoint(), init.AccessKeyId, init.AccessKeySecret, client.WithSignatureVersion(client.SignatureV1)); err != nil {
		tb.Fatal(err)
	}
	return tn
}

// tick runs the leader's scheduler once at the service clock's now and
// returns how many changes it made.
func (tn *testNode) tick(tb testing.TB) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := tn.Service().SchedulerTick(ctx)
	if err != nil {
		tb.Fatalf("SchedulerTick: %v", err)
	}
	return n
}

// newKey creates a key with params (DKMSInstanceId defaults to the node's
// instance; "-" omits it) and returns its metadata, decoded strictly.
func (tn *testNode) newKey(tb testing.TB, params map[string]string) *kmssdk.CreateKeyResponseBodyKeyMetadata {
	tb.Helper()
	p := with(params)
	switch p["DKMSInstanceId"] {
	case "":
		p["DKMSInstanceId"] = tn.InstanceID
	case "-":
		delete(p, "DKMSInstanceId")
	}
	var out kmssdk.CreateKeyResponseBody
	decodeStrict(tb, tn.must(tb, "CreateKey", p, nil).Body, &out)
	if out.KeyMetadata == nil || tea.StringValue(out.KeyMetadata.KeyId) == "" {
		tb.Fatalf("CreateKey %v: no KeyMetadata", p)
	}
	return out.KeyMetadata
}

// describe is DescribeKey's metadata, decoded strictly.
func (tn *testNode) describe(tb testing.TB, ref string) *kmssdk.DescribeKeyResponseBodyKeyMetadata {
	tb.Helper()
	var out kmssdk.DescribeKeyResponseBody
	decodeStrict(tb, tn.must(tb, "DescribeKey", map[string]string{"KeyId": ref}, nil).Body, &out)
	return out.KeyMetadata
}

// refused performs an action that must fail with status and code and leave
// the catalogue exactly as it was.
func (tn *testNode) refused(tb testing.TB, action string, params map[string]string, status int, code string) {
	tb.Helper()
	before := tn.hash()
	_, err := tn.call(tb, action, params)
	wantAPIError(tb, err, status, code)
	if tn.hash() != before {
		tb.Errorf("%s refused with %s changed the catalogue", action, code)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func parseDate(tb testing.TB, name, v string) time.Time {
	tb.Helper()
	at, err := time.Parse(signature.TimeFormat, v)
	if err != nil {
		tb.Fatalf("%s = %q, want %s", name, v, signature.TimeFormat)
	}
	return at
}

// clientKeys are RSA keys of the caller's own, made outside the service
// (for ExportDataKey and the like), generated once per test binary.
var (
	clientKeysOnce sync.Once
	clientRSA2048  *rsa.PrivateKey
	clientRSA3072  *rsa.PrivateKey
	clientP256     *ecdsa.PrivateKey
)

func clientKeys(tb testing.TB) {
	clientKeysOnce.Do(func() {
		var err error
		if clientRSA2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if clientRSA3072, err = rsa.GenerateKey(rand.Reader, 3072); err != nil {
			panic(err)
		}
		if clientP256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

func spkiB64(tb testing.TB, pub any) string {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return b64(der)
}

// wrapForImport encrypts material to an import public key (Base64 DER
// SubjectPublicKeyInfo, as GetParametersForImport returns it) with Go's
// crypto, as a customer's own tooling would.
func wrapForImport(tb testing.TB, publicKeyB64, alg string, material []byte) string {
	tb.Helper()
	der, err := base64.StdEncoding.DecodeString(publicKeyB64)
	if err != nil {
		tb.Fatalf("PublicKey is not Base64: %v", err)
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		tb.Fatalf("PublicKey is not a DER SubjectPublicKeyInfo: %v", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		tb.Fatalf("PublicKey is not an RSA-2048 key: %T", k)
	}
	var out []byte
	switch alg {
	case "RSAES_OAEP_SHA_256":
		out, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, material, nil)
	case "RSAES_OAEP_SHA_1":
		out, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, material, nil)
	case "RSAES_PKCS1_V1_5":
		out, err = rsa.EncryptPKCS1v15(rand.Reader, pub, material)
	default:
		tb.Fatalf("no wrapping algorithm %s", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b64(out)
}

func digestB64(msg string) string {
	d := sha256.Sum256([]byte(msg))
	return b64(d[:])
}

// catFixture is a node (with a fake service clock) holding one object of
// every kind the catalogue actions meet, named in test tables by
// placeholders in braces ({SYM}, {RSAENC}, ...).
type catFixture struct {
	*testNode
	clock *fakeClock
	vals  map[string]string
}

const (
	catAlias   = "alias/cat-fixture"
	catContext = `{"purpose":"export"}`
)

func newCatFixture(t *testing.T) *catFixture {
	t.Helper()
	clientKeys(t)
	clock := newFakeClock()
	f := &catFixture{testNode: startClockNode(t, clock), clock: clock, vals: map[string]string{}}
	set := func(name, v string) { f.vals[name] = v }
	key := func(name string, params map[string]string) string {
		m := f.newKey(t, params)
		set(name, tea.StringValue(m.KeyId))
		set(name+"V", tea.StringValue(m.PrimaryKeyVersion))
		set(name+"ARN", tea.StringValue(m.Arn))
		return tea.StringValue(m.KeyId)
	}
	sym := key("SYM", nil)
	f.must(t, "CreateAlias", map[string]string{"AliasName": catAlias, "KeyId": sym}, nil)
	var dk struct{ CiphertextBlob string }
	f.must(t, "GenerateDataKey", map[string]string{"KeyId": sym, "EncryptionContext": catContext}, &dk)
	set("SYMBLOB", dk.CiphertextBlob)

	rsaEnc := key("RSAENC", map[string]string{"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT/DECRYPT"})
	var ae struct{ CiphertextBlob string }
	f.must(t, "AsymmetricEncrypt", map[string]string{"KeyId": rsaEnc, "KeyVersionId": f.vals["RSAENCV"], "Algorithm": "RSAES_OAEP_SHA_256", "Plaintext": b64([]byte("fixture"))}, &ae)
	set("RSACT", ae.CiphertextBlob)
	ct := decodeB64(t, ae.CiphertextBlob)
	ct[len(ct)/2] ^= 0x01
	set("RSACTBAD", b64(ct))

	rsaSign := key("RSASIGN", map[string]string{"KeySpec": "RSA_2048", "KeyUsage": "SIGN/VERIFY"})
	set("DIGEST", digestB64("fixture"))
	var sig struct{ Value string }
	f.must(t, "AsymmetricSign", map[string]string{"KeyId": rsaSign, "KeyVersionId": f.vals["RSASIGNV"], "Algorithm": "RSA_PSS_SHA_256", "Digest": f.vals["DIGEST"]}, &sig)
	set("SIG", sig.Value)

	key("EC", map[string]string{"KeySpec": "EC_P256"})
	rsaDis := key("RSADIS", map[string]string{"KeySpec": "RSA_2048", "KeyUsage": "SIGN/VERIFY"})
	f.must(t, "DisableKey", map[string]string{"KeyId": rsaDis}, nil)

	material := randomBytes(32)
	set("MATERIAL", b64(material))
	ext := key("EXT", map[string]string{"Origin": "EXTERNAL"})
	ext2 := key("EXT2", map[string]string{"Origin": "EXTERNAL"})
	extDel := key("EXTDEL", map[string]string{"Origin": "EXTERNAL"})
	token := func(name, keyID string) {
		var p struct{ PublicKey, ImportToken string }
		f.must(t, "GetParametersForImport", map[string]string{"KeyId": keyID, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}, &p)
		set(name, p.ImportToken)
		set(name+"PUB", p.PublicKey)
	}
	token("TOKEN", ext)
	token("TOKEN2", ext2)
	token("TOKENDEL", extDel)
	set("WRAPPED", wrapForImport(t, f.vals["TOKENPUB"], "RSAES_OAEP_SHA_256", material))
	set("WRAPPED16", wrapForImport(t, f.vals["TOKENPUB"], "RSAES_OAEP_SHA_256", material[:16]))
	set("WRAPPEDX", wrapForImport(t, f.vals["TOKEN2PUB"], "RSAES_OAEP_SHA_256", material))
	set("WRAPPEDDEL", wrapForImport(t, f.vals["TOKENDELPUB"], "RSAES_OAEP_SHA_256", material))

	pending := key("PENDING", nil)
	var pb struct{ CiphertextBlob string }
	f.must(t, "GenerateDataKey", map[string]string{"KeyId": pending, "EncryptionContext": catContext}, &pb)
	set("PENDINGBLOB", pb.CiphertextBlob)
	f.must(t, "ScheduleKeyDeletion", map[string]string{"KeyId": pending, "PendingWindowInDays": "7"}, nil)
	f.must(t, "ScheduleKeyDeletion", map[string]string{"KeyId": extDel, "PendingWindowInDays": "7"}, nil)

	key("PROT", nil)
	f.must(t, "SetDeletionProtection", map[string]string{"ProtectedResourceArn": f.vals["PROTARN"], "EnableDeletionProtection": "true"}, nil)
	key("DEFAULT", map[string]string{"DKMSInstanceId": "-"})

	set("INSTANCE", f.InstanceID)
	set("ACCOUNT", f.AccountID)
	set("WRAPPUB", spkiB64(t, &clientRSA2048.PublicKey))
	set("WRAPPUB3072", spkiB64(t, &clientRSA3072.PublicKey))
	set("ECPUB", spkiB64(t, &clientP256.PublicKey))
	set("POLICY", `{"Version":"1","Statement":[{"Sid":"Owner","Effect":"Allow","Principal":{"RAM":["acs:ram::`+f.AccountID+`:*"]},"Action":["kms:*"],"Resource":["*"]}]}`)
	set("PAST", itoa(clock.Now().Add(-time.Hour).Unix()))
	for _, n := range []int{190, 191, 214, 215} {
		set("P"+itoa(int64(n)), b64(randomBytes(n)))
	}
	return f
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var placeholder = regexp.MustCompile(`\{([A-Z0-9]+)\}`)

// expand replaces {NAME} placeholders in the values of params (JSON braces
// are left alone: a placeholder is upper-case letters and digits only).
func (f *catFixture) expand(params map[string]string) map[string]string {
	out := make(map[string]string, len(params))
	for k, v := range params {
		out[k] = placeholder.ReplaceAllStringFunc(v, func(m string) string {
			if val, ok := f.vals[m[1:len(m)-1]]; ok {
				return val
			}
			panic("unknown placeholder " + m)
		})
	}
	return out
}
