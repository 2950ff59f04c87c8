package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
)

// eventually polls f until it returns nil, and fails the test with f's last
// error when timeout passes first.
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		<-tick.C
	}
}

// consistently checks f repeatedly for the whole duration d and fails at
// the first error: the way to assert that something does NOT happen.
func consistently(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Now().After(deadline) {
			return
		}
		<-tick.C
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// httpGet returns the status code and body of GET url.
func httpGet(url string) (int, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// nodeStatus is GET /v1/status.
type nodeStatus struct {
	NodeId       string
	RaftState    string
	Leader       string
	LeaderAddr   string
	AppliedIndex uint64
	CommitIndex  uint64
	Initialized  bool
	Ready        bool
	Members      []memberStatus
	// Upgrade: the log levels during a rolling upgrade (absent on builds
	// from before levels).
	Upgrade struct {
		BuildLevel, ClusterLevel, FinalizedLevel int
		NodesBehind                              []string
	}
}

type memberStatus struct {
	NodeId      string
	Zone        string
	HttpAddr    string
	ClusterAddr string
	GossipAddr  string
	Voter       bool
	RaftMember  bool
	Alive       bool
	Status      string
	Version     string
	LogLevel    int
}

func (s nodeStatus) member(id string) (memberStatus, bool) {
	for _, m := range s.Members {
		if m.NodeId == id {
			return m, true
		}
	}
	return memberStatus{}, false
}

func getStatus(n *kmsdNode) (nodeStatus, error) {
	var s nodeStatus
	code, body, err := httpGet(n.Endpoint() + "/v1/status")
	if err != nil {
		return s, err
	}
	if code != http.StatusOK {
		return s, fmt.Errorf("GET /v1/status on %s: HTTP %d: %s", n.ID, code, body)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("GET /v1/status on %s: %v: %s", n.ID, err, body)
	}
	return s, nil
}

func mustStatus(t testing.TB, n *kmsdNode) nodeStatus {
	t.Helper()
	s, err := getStatus(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func healthCode(n *kmsdNode) (int, string) {
	code, body, err := httpGet(n.Endpoint() + "/v1/health")
	if err != nil {
		return 0, err.Error()
	}
	return code, string(body)
}

// ---- kmsctl ----

// ctlResult is one kmsctl run.
type ctlResult struct {
	Args   []string
	Env    []string
	Stdout string
	Stderr string
	Code   int
}

func (r ctlResult) String() string {
	env := ""
	if len(r.Env) > 0 {
		env = strings.Join(r.Env, " ") + " "
	}
	return fmt.Sprintf("%skmsctl %s\nexit %d\nstdout: %s\nstderr: %s", env, strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// kmsctl runs the CLI with env added to a clean environment (no KMS_*).
func kmsctl(t testing.TB, env []string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kmsctlBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := ctlResult{Args: args, Env: env, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("run kmsctl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok fails the test unless kmsctl exited 0, and decodes stdout as JSON when
// out is not nil.
func (r ctlResult) ok(t testing.TB, out any) ctlResult {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(r.Stdout), out); err != nil {
			t.Fatalf("stdout is not the JSON expected (%v):\n%s", err, r)
		}
	}
	return r
}

// serviceError fails the test unless kmsctl exited 1 with the service's
// error JSON on stderr and nothing on stdout, and returns that error's Code.
func (r ctlResult) serviceError(t testing.TB) string {
	t.Helper()
	if r.Code != 1 {
		t.Fatalf("want exit 1 (a service error):\n%s", r)
	}
	if strings.TrimSpace(r.Stdout) != "" {
		t.Fatalf("a failed command printed on stdout:\n%s", r)
	}
	// Operator commands may say what they are doing on stderr before the
	// error; the error JSON is the rest.
	errJSON := r.Stderr
	if i := strings.Index(errJSON, "\n{"); i >= 0 && !strings.HasPrefix(errJSON, "{") {
		errJSON = errJSON[i+1:]
	}
	var e struct{ Code, Message, RequestId string }
	if err := json.Unmarshal([]byte(errJSON), &e); err != nil || e.Code == "" || e.Message == "" {
		t.Fatalf("stderr does not end with the service's error JSON {Code, Message, ...}:\n%s", r)
	}
	return e.Code
}

// usageError fails the test unless kmsctl exited 2 without output on stdout.
func (r ctlResult) usageError(t testing.TB) {
	t.Helper()
	if r.Code != 2 {
		t.Fatalf("want exit 2 (a usage error):\n%s", r)
	}
	if strings.TrimSpace(r.Stdout) != "" {
		t.Fatalf("a usage error printed on stdout:\n%s", r)
	}
	if strings.TrimSpace(r.Stderr) == "" {
		t.Fatalf("a usage error said nothing on stderr:\n%s", r)
	}
}

// ---- clusters ----

// credentials is what operator init prints.
type credentials struct {
	AccountId       string
	AccessKeyId     string
	AccessKeySecret string
	InstanceId      string
	Endpoint        string `json:",omitempty"`
}

// testCluster is a set of kmsd processes started together.
type testCluster struct {
	t       *testing.T
	Nodes   []*kmsdNode
	RootKey string
	// Creds and CredsFile exist after Init. The file lives outside every
	// data dir (the secret scan must not find the test's own copy).
	Creds     credentials
	CredsFile string
}

// newRootKeyFile writes a fresh root key (base64 of 32 random bytes, 0600)
// in a directory of its own.
func newRootKeyFile(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "root.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var zones = []string{"zone-a", "zone-b", "zone-c", "zone-d", "zone-e"}

// startCluster starts n nodes named prefix1..prefixN, each with
// --bootstrap-expect n and --join listing the others, and waits until they
// form one Raft cluster with a leader. rootKey "" makes a fresh root key.
func startCluster(t *testing.T, prefix string, n int, rootKey string) *testCluster {
	t.Helper()
	return startClusterWith(t, prefix, n, rootKey, nil)
}

// startClusterWith is startCluster with extra kmsd flags for every node.
func startClusterWith(t *testing.T, prefix string, n int, rootKey string, extra []string) *testCluster {
	t.Helper()
	if rootKey == "" {
		rootKey = newRootKeyFile(t)
	}
	c := &testCluster{t: t, RootKey: rootKey}
	for i := range n {
		c.Nodes = append(c.Nodes, newNode(t, fmt.Sprintf("%s%d", prefix, i+1), zones[i%len(zones)], rootKey))
	}
	for _, nd := range c.Nodes {
		nd.Expect = n
		nd.Extra = extra
		for _, o := range c.Nodes {
			if o != nd {
				nd.Join = append(nd.Join, o.Gossip)
			}
		}
	}
	for _, nd := range c.Nodes {
		nd.Start()
	}
	c.WaitReady(45 * time.Second)
	return c
}

// running is the nodes whose process is alive.
func (c *testCluster) running() []*kmsdNode {
	var out []*kmsdNode
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// WaitReady waits until every running node is healthy, they all name the
// same leader, and that leader counts every running node as a Raft member.
func (c *testCluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, "cluster ready", func() error {
		leader := ""
		var leaderStatus nodeStatus
		for _, n := range c.running() {
			if code, body := healthCode(n); code != http.StatusOK {
				return fmt.Errorf("%s: /v1/health %d %s", n.ID, code, body)
			}
			s, err := getStatus(n)
			if err != nil {
				return err
			}
			if s.Leader == "" || (leader != "" && s.Leader != leader) {
				return fmt.Errorf("%s sees leader %q, others %q", n.ID, s.Leader, leader)
			}
			leader = s.Leader
			if s.NodeId == s.Leader {
				leaderStatus = s
			}
		}
		if leaderStatus.NodeId == "" {
			return fmt.Errorf("the leader %q is not among the running nodes", leader)
		}
		for _, n := range c.running() {
			if m, ok := leaderStatus.member(n.ID); !ok || !m.RaftMember {
				return fmt.Errorf("leader %s does not list %s as a Raft member: %+v", leader, n.ID, leaderStatus.Members)
			}
		}
		return nil
	})
}

// Leader returns the running node that is the Raft leader.
func (c *testCluster) Leader() *kmsdNode {
	c.t.Helper()
	var leader *kmsdNode
	eventually(c.t, 15*time.Second, "a leader", func() error {
		for _, n := range c.running() {
			if s, err := getStatus(n); err == nil && s.RaftState == "Leader" {
				leader = n
				return nil
			}
		}
		return errors.New("no running node says it is the leader")
	})
	return leader
}

// Followers returns the running nodes other than the leader.
func (c *testCluster) Followers() []*kmsdNode {
	c.t.Helper()
	l := c.Leader()
	var out []*kmsdNode
	for _, n := range c.running() {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// Init runs `kmsctl --endpoint <first node> operator init` and keeps the
// credentials in a file outside the data dirs.
func (c *testCluster) Init() credentials {
	c.t.Helper()
	r := kmsctl(c.t, nil, "--endpoint", c.Nodes[0].Endpoint(), "operator", "init").ok(c.t, &c.Creds)
	if c.Creds.AccessKeyId == "" || c.Creds.AccessKeySecret == "" || c.Creds.InstanceId == "" || c.Creds.AccountId == "" {
		c.t.Fatalf("operator init printed incomplete credentials:\n%s", r)
	}
	c.CredsFile = writeCreds(c.t, c.Creds)
	return c.Creds
}

// writeCreds writes a credentials file in a directory of its own.
func writeCreds(t testing.TB, cr credentials) string {
	t.Helper()
	b, _ := json.Marshal(cr)
	p := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Ctl runs kmsctl against node n with the cluster's credentials.
func (c *testCluster) Ctl(n *kmsdNode, args ...string) ctlResult {
	c.t.Helper()
	return kmsctl(c.t, nil, append([]string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, args...)...)
}

// Client is a Go API client for node n with the cluster's credentials.
func (c *testCluster) Client(n *kmsdNode) *client.Client {
	c.t.Helper()
	cl, err := client.New(n.Endpoint(), c.Creds.AccessKeyId, c.Creds.AccessKeySecret)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// ---- API workload helpers (through kmsctl) ----

// createKey creates an AES-256 key in the cluster's instance and returns
// its KeyId.
func (c *testCluster) createKey(n *kmsdNode, description string) string {
	c.t.Helper()
	var out struct{ KeyMetadata struct{ KeyId string } }
	c.Ctl(n, "CreateKey", "--DKMSInstanceId", c.Creds.InstanceId, "--Description", description).ok(c.t, &out)
	if out.KeyMetadata.KeyId == "" {
		c.t.Fatalf("CreateKey returned no KeyId")
	}
	return out.KeyMetadata.KeyId
}

// encrypt returns the CiphertextBlob of plaintext (sent as given) under
// keyID; context "" sends none.
func (c *testCluster) encrypt(n *kmsdNode, keyID, plaintext, context string) string {
	c.t.Helper()
	args := []string{"Encrypt", "--KeyId", keyID, "--Plaintext", plaintext}
	if context != "" {
		args = append(args, "--EncryptionContext", context)
	}
	var out struct{ CiphertextBlob, KeyId, KeyVersionId string }
	c.Ctl(n, args...).ok(c.t, &out)
	if out.CiphertextBlob == "" {
		c.t.Fatalf("Encrypt returned no CiphertextBlob")
	}
	return out.CiphertextBlob
}

// decryptArgs builds a Decrypt command line.
func decryptArgs(blob, context string) []string {
	args := []string{"Decrypt", "--CiphertextBlob", blob}
	if context != "" {
		args = append(args, "--EncryptionContext", context)
	}
	return args
}

// sealed is a ciphertext the test made and what it must decrypt to.
type sealed struct {
	Blob, Context, Plaintext, KeyID string
}

// checkDecrypts decrypts every ciphertext on node n with the given
// kmsctl arguments prefix (credentials, endpoint, --min-index...).
func checkDecrypts(t testing.TB, prefix []string, n string, blobs []sealed) {
	t.Helper()
	for _, s := range blobs {
		var out struct{ Plaintext, KeyId string }
		kmsctl(t, nil, append(append([]string{}, prefix...), decryptArgs(s.Blob, s.Context)...)...).ok(t, &out)
		if out.Plaintext != s.Plaintext {
			t.Fatalf("on %s: Decrypt gave %q, want %q", n, out.Plaintext, s.Plaintext)
		}
		if out.KeyId != s.KeyID {
			t.Fatalf("on %s: Decrypt names key %q, want %q", n, out.KeyId, s.KeyID)
		}
	}
}

// b64 is the Base64 text of s, the convention for Plaintext parameters.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// randomHex returns n random bytes as hex text.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// withoutRequestID decodes a JSON answer and drops the fields that differ
// between two otherwise identical answers.
func withoutRequestID(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not JSON (%v): %s", err, s)
	}
	delete(m, "RequestId")
	return m
}

// catalogueView is the listing of a cluster's whole visible catalogue:
// keys, their versions, tags and aliases, as the API answers them.
type catalogueView map[string]any

// catalogue lists everything through kmsctl with the given prefix args.
func catalogue(t testing.TB, prefix []string) catalogueView {
	t.Helper()
	run := func(args ...string) map[string]any {
		return withoutRequestID(t, kmsctl(t, nil, append(append([]string{}, prefix...), args...)...).ok(t, nil).Stdout)
	}
	view := catalogueView{}
	keys := run("ListKeys", "--PageSize", "100")
	view["ListKeys"] = keys
	view["ListAliases"] = run("ListAliases", "--PageSize", "100")
	var ids []string
	if ks, ok := keys["Keys"].(map[string]any); ok {
		if list, ok := ks["Key"].([]any); ok {
			for _, k := range list {
				if m, ok := k.(map[string]any); ok {
					ids = append(ids, fmt.Sprint(m["KeyId"]))
				}
			}
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		view["ListKeyVersions "+id] = run("ListKeyVersions", "--KeyId", id, "--PageSize", "100")
		view["ListResourceTags "+id] = run("ListResourceTags", "--KeyId", id)
		view["ListAliasesByKeyId "+id] = run("ListAliasesByKeyId", "--KeyId", id, "--PageSize", "100")
		d := run("DescribeKey", "--KeyId", id)
		view["DescribeKey "+id] = d
	}
	return view
}

// diffViews names the entries that differ between two catalogue views.
func diffViews(want, got catalogueView) string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			out = append(out, fmt.Sprintf("missing %s", k))
			continue
		}
		if !reflect.DeepEqual(w, g) {
			wb, _ := json.Marshal(w)
			gb, _ := json.Marshal(g)
			out = append(out, fmt.Sprintf("%s:\n  want %s\n  got  %s", k, wb, gb))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("unexpected %s", k))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// keyCount is the number of keys ListKeys reports.
func keyIDs(t testing.TB, v catalogueView) []string {
	var ids []string
	for k := range v {
		if id, ok := strings.CutPrefix(k, "DescribeKey "); ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
