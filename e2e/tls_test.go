package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secProc is one kmsd process of the transport-security tests. The shared
// kmsdNode helper polls plain HTTP, so these nodes have their own: they
// serve HTTPS.
type secProc struct {
	t       *testing.T
	id      string
	http    string
	cluster string
	gossip  string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	code    int
}

func newSecProc(t *testing.T, id string) *secProc {
	p := &secProc{t: t, id: id, http: freeAddr(t), cluster: freeAddr(t), gossip: freeAddr(t),
		logPath: filepath.Join(t.TempDir(), id+".log")}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("---- last lines of %s ----\n%s", id, tail(p.logPath, 60))
		}
	})
	return p
}

// start runs kmsd with args and returns at once.
func (p *secProc) start(args ...string) {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== e2e: %s %s\n", kmsdBin, strings.Join(args, " "))
	p.cmd = exec.Command(kmsdBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = cleanEnv()
	p.cmd.SysProcAttr = childProcAttr()
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
}

func (p *secProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *secProc) kill() {
	if p.cmd != nil && p.done != nil && !p.exited() {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// terminate stops the node gracefully (it closes its audit log).
func (p *secProc) terminate() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s did not stop within 30s of SIGTERM", p.id)
	}
}

func (p *secProc) endpoint() string { return "https://" + p.http }

// pki is what `kmsctl operator tls` made for a test.
type pki struct {
	dir    string
	caFile string
	pool   *x509.CertPool
}

func makePKI(t *testing.T, dir string, nodes ...string) pki {
	t.Helper()
	kmsctl(t, nil, "operator", "tls", "create-ca", dir).ok(t, nil)
	for _, n := range nodes {
		kmsctl(t, nil, "operator", "tls", "create-cert", "--ca", dir, "--name", n, "--ip", "127.0.0.1", dir).ok(t, nil)
	}
	caFile := filepath.Join(dir, "ca.crt")
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return pki{dir: dir, caFile: caFile, pool: pool}
}

func (k pki) cert(node string) (crt, key string) {
	return filepath.Join(k.dir, node+".crt"), filepath.Join(k.dir, node+".key")
}

func (k pki) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: k.pool}}}
}

func httpsJSON(c *http.Client, url string, v any) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, fmt.Errorf("%v: %s", err, b)
		}
	}
	return resp.StatusCode, nil
}

// metricSum adds up the samples of a Prometheus text exposition whose name
// and labels match.
func metricSum(text, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func metricsText(c *http.Client, endpoint string) string {
	resp, err := c.Get(endpoint + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func writeGossipKey(t *testing.T) string {
	k := make([]byte, 32)
	rand.Read(k)
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A cluster set up the way README's "Secure setup" says: certificates from
// `kmsctl operator tls`, HTTPS API, mutual TLS between nodes, encrypted
// gossip, an audit log per node. kmsctl reaches it with --ca-file. A node
// with a certificate from another CA gets into gossip (it has the key) but
// never into Raft, and the cluster port refuses its connections; a node
// with another gossip key never gets into the membership.
func TestTLS_SecureClusterWithKmsctlCAFile(t *testing.T) {
	dir := t.TempDir()
	cluster := makePKI(t, filepath.Join(dir, "tls"), "n1", "n2", "n3", "x1")
	rogue := makePKI(t, filepath.Join(dir, "rogue"), "r1")
	gossipKey := writeGossipKey(t)
	rootKey := newRootKeyFile(t)
	hc := cluster.client()

	args := func(p *secProc, certs pki, node, gkey string, expect int, join []string) []string {
		crt, key := certs.cert(node)
		a := []string{"--node-id", p.id, "--data-dir", filepath.Join(dir, "data-"+p.id), "--root-key-file", rootKey,
			"--zone", "zone-" + p.id, "--http-addr", p.http, "--cluster-addr", p.cluster, "--gossip-addr", p.gossip,
			"--raft-timeout", "300ms", "--fast-gossip",
			"--tls-cert-file", crt, "--tls-key-file", key,
			"--cluster-ca-file", certs.caFile, "--cluster-cert-file", crt, "--cluster-key-file", key,
			"--gossip-key-file", gkey, "--audit-log", filepath.Join(dir, p.id+"-audit.log"),
			"--join", strings.Join(join, ",")}
		if expect > 0 {
			a = append(a, "--bootstrap-expect", strconv.Itoa(expect))
		}
		return a
	}
	nodes := []*secProc{newSecProc(t, "n1"), newSecProc(t, "n2"), newSecProc(t, "n3")}
	for _, p := range nodes {
		var join []string
		for _, o := range nodes {
			if o != p {
				join = append(join, o.gossip)
			}
		}
		p.start(args(p, cluster, p.id, gossipKey, 3, join)...)
	}
	leader := waitSecureCluster(t, hc, nodes, 3, 60*time.Second, "the secure cluster forms")

	// kmsctl with --ca-file: init, a write through a follower (forwarded
	// over mutual TLS), crypto on the others.
	ca := []string{"--ca-file", cluster.caFile}
	var creds credentials
	kmsctl(t, []string{"KMS_ACCESS_KEY_ID=unused", "KMS_ACCESS_KEY_SECRET=unused"},
		append(ca, "--endpoint", nodes[0].endpoint(), "operator", "init")...).ok(t, &creds)
	credsFile := writeCreds(t, creds)
	ctl := func(node *secProc, args ...string) ctlResult {
		return kmsctl(t, nil, append(append([]string{"--credentials", credsFile, "--endpoint", node.endpoint()}, ca...), args...)...)
	}
	var follower *secProc
	for _, p := range nodes {
		if p != leader {
			follower = p
		}
	}
	var created struct{ KeyMetadata struct{ KeyId string } }
	eventually(t, 30*time.Second, "CreateKey through a follower", func() error {
		r := ctl(follower, "CreateKey", "--DKMSInstanceId", creds.InstanceId)
		if r.Code == 1 && strings.Contains(r.Stderr, "ServiceUnavailable") {
			return errors.New(r.Stderr) // a young cluster may still change leaders
		}
		r.ok(t, &created)
		return nil
	})
	plaintext := base64.StdEncoding.EncodeToString([]byte("secret over tls 7c41"))
	var enc struct{ CiphertextBlob string }
	ctl(nodes[1], "Encrypt", "--KeyId", created.KeyMetadata.KeyId, "--Plaintext", plaintext).ok(t, &enc)
	var dec struct{ Plaintext string }
	ctl(nodes[2], "Decrypt", "--CiphertextBlob", enc.CiphertextBlob).ok(t, &dec)
	if dec.Plaintext != plaintext {
		t.Fatalf("round trip over HTTPS: %q", dec.Plaintext)
	}
	// Without the CA, kmsctl does not trust the node.
	r := kmsctl(t, nil, "--credentials", credsFile, "--endpoint", nodes[0].endpoint(), "ListKeys")
	if r.Code != 1 || !strings.Contains(r.Stderr, "certificate") {
		t.Fatalf("kmsctl without --ca-file:\n%s", r)
	}

	// The cluster port: a certificate from the cluster CA gets as far as
	// the cluster-key challenge (the server's nonce), one from another CA
	// does not.
	dialCluster := func(certs pki, node string) error {
		crt, key := certs.cert(node)
		pair, err := tls.LoadX509KeyPair(crt, key)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", leader.cluster,
			&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: cluster.pool})
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		// The RPC protocol byte and a client nonce (transport/DESIGN.md).
		if _, err := conn.Write(append([]byte{0x12}, make([]byte, 32)...)); err != nil {
			return err
		}
		serverNonce := make([]byte, 32)
		if _, err := io.ReadFull(conn, serverNonce); err != nil {
			return err
		}
		return nil
	}
	if err := dialCluster(cluster, "x1"); err != nil {
		t.Fatalf("a certificate from the cluster CA is refused on the cluster port: %v", err)
	}
	if err := dialCluster(rogue, "r1"); err == nil {
		t.Fatal("the cluster port accepted a certificate from another CA")
	}

	// A node with a foreign certificate and the right gossip key.
	before := metricSum(metricsText(hc, leader.endpoint()), "kms_transport_rpc_total", `method="node.ping"`, `result="unreachable"`)
	r1 := newSecProc(t, "r1")
	r1.start(args(r1, rogue, "r1", gossipKey, 0, []string{nodes[0].gossip})...)
	eventually(t, 30*time.Second, "the leader sees r1 in gossip and refuses it twice", func() error {
		if r1.exited() {
			t.Fatalf("r1 exited with code %d", r1.code)
		}
		var s nodeStatus
		if _, err := httpsJSON(hc, leader.endpoint()+"/v1/status", &s); err != nil {
			return err
		}
		m, ok := s.member("r1")
		if !ok || !m.Alive {
			return errors.New("r1 is not an alive gossip member yet")
		}
		if m.RaftMember {
			return nil // fails below
		}
		if got := metricSum(metricsText(hc, leader.endpoint()), "kms_transport_rpc_total", `method="node.ping"`, `result="unreachable"`); got < before+2 {
			return fmt.Errorf("%v failed probes so far", got-before)
		}
		return nil
	})
	for _, p := range nodes {
		var s nodeStatus
		if _, err := httpsJSON(hc, p.endpoint()+"/v1/status", &s); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.member("r1"); m.RaftMember {
			t.Fatalf("%s lists the node with a foreign certificate as a Raft member", p.id)
		}
	}

	// A node with a cluster certificate but another gossip key.
	x1 := newSecProc(t, "x1")
	x1.start(args(x1, cluster, "x1", writeGossipKey(t), 0, []string{nodes[0].gossip})...)
	eventually(t, 30*time.Second, "x1 fails to join three times", func() error {
		if x1.exited() {
			t.Fatalf("x1 exited with code %d", x1.code)
		}
		if got := metricSum(metricsText(hc, x1.endpoint()), "kms_cluster_join_attempts_total", `result="error"`); got < 3 {
			return fmt.Errorf("%v failed joins so far", got)
		}
		return nil
	})
	var s nodeStatus
	if _, err := httpsJSON(hc, leader.endpoint()+"/v1/status", &s); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.member("x1"); ok {
		t.Fatal("a node with another gossip key is a member")
	}

	// The audit logs: intact, and without what was sent.
	for _, p := range nodes {
		p.terminate()
		path := filepath.Join(dir, p.id+"-audit.log")
		kmsctl(t, nil, "operator", "audit", "verify", path).ok(t, nil)
		b, _ := os.ReadFile(path)
		for _, secret := range []string{plaintext, enc.CiphertextBlob, creds.AccessKeySecret} {
			if bytes.Contains(b, []byte(secret)) {
				t.Fatalf("%s's audit log contains %q", p.id, secret)
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, nodes[2].id+"-audit.log"))
	if !bytes.Contains(b, []byte(`"action":"Decrypt","key_id":"`+created.KeyMetadata.KeyId+`"`)) {
		t.Fatalf("n3's audit log has no line for the Decrypt:\n%s", b)
	}
}

// Binding the API or the cluster port to a non-loopback address without
// TLS is refused with a message that says what to do; --insecure allows it
// and logs a warning.
func TestTLS_PlaintextOnNonLoopbackNeedsInsecure(t *testing.T) {
	rootKey := newRootKeyFile(t)
	for _, tc := range []struct{ name, flag string }{{"API", "--http-addr"}, {"cluster port", "--cluster-addr"}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newSecProc(t, "open")
			// The API may listen on all interfaces; the cluster port needs an
			// address peers can dial (it is advertised as is).
			exposed := net.JoinHostPort("0.0.0.0", strconv.Itoa(freePort(t)))
			if tc.flag == "--cluster-addr" {
				exposed = net.JoinHostPort(nonLoopbackIP(t), strconv.Itoa(freePort(t)))
			}
			base := []string{"--node-id", "open", "--data-dir", filepath.Join(t.TempDir(), "data"), "--root-key-file", rootKey,
				"--http-addr", p.http, "--cluster-addr", p.cluster, "--gossip-addr", p.gossip, tc.flag, exposed}
			p.start(base...)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				t.Fatal("kmsd did not refuse to start")
			}
			out, _ := os.ReadFile(p.logPath)
			if p.code != 2 || !strings.Contains(string(out), "--insecure") || !strings.Contains(string(out), "create-cert") {
				t.Fatalf("exit %d, output:\n%s", p.code, out)
			}

			p.start(append(base, "--insecure")...)
			statusURL := "http://" + p.http + "/v1/status"
			if tc.flag == "--http-addr" {
				_, port, _ := net.SplitHostPort(exposed)
				statusURL = "http://127.0.0.1:" + port + "/v1/status"
			}
			eventually(t, 20*time.Second, "kmsd --insecure serves", func() error {
				if p.exited() {
					t.Fatalf("kmsd --insecure exited with %d:\n%s", p.code, tail(p.logPath, 20))
				}
				code, _, err := httpGet(statusURL)
				if err != nil || code != 200 {
					return fmt.Errorf("%d %v", code, err)
				}
				return nil
			})
			if out, _ := os.ReadFile(p.logPath); !regexp.MustCompile(`\[WARN\].*INSECURE`).Match(out) {
				t.Fatalf("no warning in the log:\n%s", out)
			}
		})
	}
}

// nonLoopbackIP is an IPv4 address of this machine that is not loopback.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	// No interface address: the wildcard address is not loopback either,
	// and is reachable locally.
	return "0.0.0.0"
}

// kmsctl --ca-file against a dev node serving HTTPS.
func TestTLS_DevNodeOverHTTPS(t *testing.T) {
	certs := makePKI(t, filepath.Join(t.TempDir(), "tls"), "dev")
	crt, key := certs.cert("dev")
	p := newSecProc(t, "dev")
	dataDir := filepath.Join(t.TempDir(), "dev")
	p.start("--dev", "--data-dir", dataDir, "--http-addr", p.http, "--cluster-addr", p.cluster, "--gossip-addr", p.gossip,
		"--tls-cert-file", crt, "--tls-key-file", key)
	credsFile := filepath.Join(dataDir, "credentials.json")
	eventually(t, 30*time.Second, "the dev node writes its credentials", func() error {
		if p.exited() {
			t.Fatalf("exited with %d", p.code)
		}
		_, err := os.Stat(credsFile)
		return err
	})
	var creds credentials
	b, _ := os.ReadFile(credsFile)
	json.Unmarshal(b, &creds)
	if !strings.HasPrefix(creds.Endpoint, "https://") {
		t.Fatalf("the credentials file's endpoint is %q", creds.Endpoint)
	}
	var keys struct{ TotalCount int }
	kmsctl(t, nil, "--credentials", credsFile, "--ca-file", certs.caFile, "ListKeys").ok(t, &keys)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+"/v1/health", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP is served on the HTTPS port")
		}
	}
}

// waitSecureCluster waits until every node of an HTTPS cluster answers
// /v1/health and one of them leads a Raft configuration of want members,
// and returns that leader (a node that exits fails the test at once).
func waitSecureCluster(t *testing.T, hc *http.Client, nodes []*secProc, want int, timeout time.Duration, what string) *secProc {
	t.Helper()
	var leader *secProc
	eventually(t, timeout, what, func() error {
		leader = nil
		for _, p := range nodes {
			if p.exited() {
				t.Fatalf("%s exited with code %d", p.id, p.code)
			}
			var s nodeStatus
			if code, err := httpsJSON(hc, p.endpoint()+"/v1/health", nil); err != nil || code != http.StatusOK {
				return fmt.Errorf("%s health: %d %v", p.id, code, err)
			}
			if _, err := httpsJSON(hc, p.endpoint()+"/v1/status", &s); err != nil {
				return err
			}
			if s.RaftState != "Leader" {
				continue
			}
			members := 0
			for _, m := range s.Members {
				if m.RaftMember {
					members++
				}
			}
			if members != want {
				return fmt.Errorf("the leader has %d Raft members, want %d", members, want)
			}
			if leader != nil {
				return fmt.Errorf("two leaders: %s and %s", leader.id, p.id)
			}
			leader = p
		}
		if leader == nil {
			return errors.New("no leader")
		}
		return nil
	})
	return leader
}
