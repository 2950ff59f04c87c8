package jepsen

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/internal/sigstop"
)

// Ports every kmsd uses on its own address.
const (
	httpPort    = "9700"
	clusterPort = "9701"
	gossipPort  = "9702"
)

// Node states, as the nemesis leaves them.
const (
	nodeRunning = "running"
	nodeKilled  = "killed"
	nodePaused  = "paused"
	nodeRemoved = "removed"
)

// Node is one kmsd process in its namespace.
type Node struct {
	ID      string
	Slot    int
	NS      string
	IP      string
	DataDir string
	LogPath string
	Zone    string

	mu    sync.Mutex
	state string
	cmd   *exec.Cmd
	done  chan struct{}
	api   *client.Client // signed calls, once credentials exist
	raw   *client.Client // unsigned: status, health, init
	args  []string
	// crashes counts exits the harness did not cause.
	crashes int
}

// Endpoint is the node's API base URL.
func (n *Node) Endpoint() string { return "http://" + net.JoinHostPort(n.IP, httpPort) }

// GossipAddr is the node's gossip address.
func (n *Node) GossipAddr() string { return net.JoinHostPort(n.IP, gossipPort) }

// State is running, killed, paused or removed.
func (n *Node) State() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// ClusterConfig is what every kmsd of a run shares.
type ClusterConfig struct {
	Kmsd              string
	Dir               string // OUT: data and logs go under it
	RaftTimeout       time.Duration
	MaxStaleness      time.Duration
	DeadServerTimeout time.Duration
	RequestTimeout    time.Duration
}

// Cluster is the set of nodes of a run and how to reach them.
type Cluster struct {
	cfg     ClusterConfig
	net     *Network
	rootKey string
	http    *http.Client
	log     func(string, ...any)

	mu       sync.RWMutex
	nodes    []*Node // every node ever started, in order
	nextSlot int
	creds    client.Credentials
	instance string
}

// NewCluster prepares a cluster on net: a root key file in cfg.Dir.
func NewCluster(cfg ClusterConfig, nw *Network, log func(string, ...any)) (*Cluster, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.Dir, "root.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Cluster{cfg: cfg, net: nw, rootKey: path, log: log, nextSlot: 1,
		http: &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// Nodes returns the nodes that are members (not removed), in order.
func (c *Cluster) Nodes() []*Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*Node
	for _, n := range c.nodes {
		if n.State() != nodeRemoved {
			out = append(out, n)
		}
	}
	return out
}

// AllNodes returns every node ever started.
func (c *Cluster) AllNodes() []*Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]*Node(nil), c.nodes...)
}

// Node returns the node with id, or nil.
func (c *Cluster) Node(id string) *Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// AddNode creates the next node's namespace and starts its kmsd. Nodes of
// the initial cluster pass bootstrapExpect > 0; a node added later only
// joins, and the leader adds it to Raft.
func (c *Cluster) AddNode(ctx context.Context, bootstrapExpect int, join []string) (*Node, error) {
	c.mu.Lock()
	slot := c.nextSlot
	c.nextSlot++
	c.mu.Unlock()
	id := fmt.Sprintf("n%d", slot)
	ns, ip, err := c.net.AddNode(ctx, id, slot)
	if err != nil {
		return nil, err
	}
	n := &Node{ID: id, Slot: slot, NS: ns, IP: ip.String(), Zone: fmt.Sprintf("z%d", (slot-1)%3+1),
		DataDir: filepath.Join(c.cfg.Dir, "data", id), LogPath: filepath.Join(c.cfg.Dir, "logs", id+".log")}
	if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(n.LogPath), 0o755); err != nil {
		return nil, err
	}
	n.args = []string{
		"--node-id", id, "--data-dir", n.DataDir, "--root-key-file", c.rootKey, "--zone", n.Zone,
		"--http-addr", net.JoinHostPort(n.IP, httpPort), "--cluster-addr", net.JoinHostPort(n.IP, clusterPort),
		"--gossip-addr", net.JoinHostPort(n.IP, gossipPort),
		"--raft-timeout", c.cfg.RaftTimeout.String(), "--max-staleness", c.cfg.MaxStaleness.String(),
		"--dead-server-timeout", c.cfg.DeadServerTimeout.String(), "--fast-gossip", "--log-level", "info",
		// A private bridge in network namespaces: plaintext on purpose.
		"--insecure",
	}
	var others []string
	for _, j := range join {
		if j != n.GossipAddr() {
			others = append(others, j)
		}
	}
	if len(others) > 0 {
		n.args = append(n.args, "--join", strings.Join(others, ","))
	}
	if bootstrapExpect > 0 {
		n.args = append(n.args, "--bootstrap-expect", fmt.Sprint(bootstrapExpect))
	}
	n.raw, _ = client.New(n.Endpoint(), "", "", client.WithHTTPClient(c.http), client.WithTimeout(-1))
	c.mu.Lock()
	if c.creds.AccessKeyId != "" {
		n.api, _ = client.New(n.Endpoint(), c.creds.AccessKeyId, c.creds.AccessKeySecret, client.WithHTTPClient(c.http), client.WithTimeout(-1))
	}
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	if err := c.start(n); err != nil {
		return nil, err
	}
	return n, nil
}

// start runs the node's kmsd in its namespace (ip netns exec execs kmsd, so
// the child's pid is kmsd's). The kernel kills it if the harness dies.
func (c *Cluster) start(n *Node) error {
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== kms-jepsen: starting %s at %s\n", n.ID, time.Now().Format(time.RFC3339Nano))
	args := append([]string{"netns", "exec", n.NS, c.cfg.Kmsd}, n.args...)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		unexpected := n.cmd == cmd && (n.state == nodeRunning || n.state == nodePaused)
		if unexpected {
			// kmsd died by itself: a crash the report must show. The
			// final heal restarts it like a killed node.
			n.state = nodeKilled
			n.crashes++
		}
		n.mu.Unlock()
		if unexpected {
			c.log("node %s: kmsd exited on its own (%v); see %s", n.ID, err, n.LogPath)
		}
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done, n.state = cmd, done, nodeRunning
	n.mu.Unlock()
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (c *Cluster) Kill(n *Node) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	wasPaused := n.state == nodePaused
	n.state = nodeKilled
	n.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	if wasPaused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	<-done
}

// Restart starts a killed node again on its data dir.
func (c *Cluster) Restart(n *Node) error {
	if n.State() != nodeKilled {
		return nil
	}
	return c.start(n)
}

// Pause sends SIGSTOP and returns once every thread of the node has
// stopped, so the nemesis window in the history starts when the node
// really froze; Resume sends SIGCONT.
func (c *Cluster) Pause(n *Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != nodeRunning {
		return
	}
	if err := sigstop.Stop(n.cmd.Process.Pid, 10*time.Second); err != nil {
		c.log("pause %s: %v", n.ID, err)
	}
	n.state = nodePaused
}

// Resume continues a paused node.
func (c *Cluster) Resume(n *Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != nodePaused {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGCONT)
	n.state = nodeRunning
}

// Remove kills the node for good: process, data dir and namespace.
func (c *Cluster) Remove(n *Node) {
	c.Kill(n)
	n.mu.Lock()
	n.state = nodeRemoved
	n.mu.Unlock()
	if err := c.net.RemoveNode(n.ID); err != nil {
		c.log("remove %s: %v", n.ID, err)
	}
	_ = os.RemoveAll(n.DataDir)
}

// StopAll kills every process (the end of the run, or an interruption).
func (c *Cluster) StopAll() {
	for _, n := range c.AllNodes() {
		if s := n.State(); s == nodeRunning || s == nodePaused {
			c.Kill(n)
		}
	}
}

// Status is the part of GET /v1/status the harness reads.
type Status struct {
	NodeId        string
	RaftState     string
	Leader        string
	AppliedIndex  uint64
	CommitIndex   uint64
	Ready         bool
	CatalogueHash string
	HashIndex     uint64
	Members       []struct {
		NodeId     string
		Voter      bool
		RaftMember bool
		Alive      bool
		Status     string
	}
}

// Status asks one node for its status (with the catalogue hash if hash).
func (c *Cluster) Status(ctx context.Context, n *Node, hash bool) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	q := url.Values{}
	if hash {
		q.Set("hash", "1")
	}
	resp, err := n.raw.DoUnsigned(ctx, http.MethodGet, "/v1/status", q, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Healthy is GET /v1/health answering 200.
func (c *Cluster) Healthy(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := n.raw.DoUnsigned(ctx, http.MethodGet, "/v1/health", nil, nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Leader asks every running node and returns the node a majority of
// answers name as leader... or, simply, the one that says it is leader.
func (c *Cluster) Leader(ctx context.Context) *Node {
	type ans struct {
		n *Node
		s *Status
	}
	nodes := c.Nodes()
	ch := make(chan ans, len(nodes))
	for _, n := range nodes {
		go func(n *Node) {
			s, _ := c.Status(ctx, n, false)
			ch <- ans{n, s}
		}(n)
	}
	var leader *Node
	for range nodes {
		a := <-ch
		if a.s != nil && a.s.RaftState == "Leader" && leader == nil {
			leader = a.n
		}
	}
	return leader
}

// waitFor polls f every 100ms until it returns nil or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
	}
}

// WaitHealthy waits until every member node answers /v1/health 200 and the
// Raft configuration (as the leader sees it) is exactly the member nodes.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, func() error {
		nodes := c.Nodes()
		for _, n := range nodes {
			if err := c.Healthy(ctx, n); err != nil {
				return fmt.Errorf("%s not healthy: %v", n.ID, err)
			}
		}
		l := c.Leader(ctx)
		if l == nil {
			return errors.New("no leader")
		}
		s, err := c.Status(ctx, l, false)
		if err != nil {
			return err
		}
		var raft, want []string
		for _, m := range s.Members {
			if m.RaftMember {
				raft = append(raft, m.NodeId)
			}
		}
		for _, n := range nodes {
			want = append(want, n.ID)
		}
		sort.Strings(raft)
		sort.Strings(want)
		if strings.Join(raft, ",") != strings.Join(want, ",") {
			return fmt.Errorf("raft configuration is %v, want %v", raft, want)
		}
		return nil
	})
}

// Init initializes the cluster through one node and gives every node a
// signed client.
func (c *Cluster) Init(ctx context.Context) error {
	nodes := c.Nodes()
	ctx2, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := nodes[0].raw.DoUnsigned(ctx2, http.MethodPost, "/v1/operator/init", nil, nil, nil)
	if err != nil {
		return fmt.Errorf("operator init: %w", err)
	}
	defer resp.Body.Close()
	var out struct{ AccessKeyId, AccessKeySecret, InstanceId string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("operator init: %w", err)
	}
	c.mu.Lock()
	c.creds = client.Credentials{AccessKeyId: out.AccessKeyId, AccessKeySecret: out.AccessKeySecret}
	c.instance = out.InstanceId
	for _, n := range c.nodes {
		n.api, _ = client.New(n.Endpoint(), out.AccessKeyId, out.AccessKeySecret, client.WithHTTPClient(c.http), client.WithTimeout(-1))
	}
	c.mu.Unlock()
	return nil
}

// Instance is the KMS instance operator init created.
func (c *Cluster) Instance() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.instance
}

// CreateInstance makes another software KMS instance (each holds 1000 keys).
func (c *Cluster) CreateInstance(ctx context.Context, n *Node) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := n.api.Do(ctx, http.MethodPost, "/v1/operator/instances", url.Values{"Name": {"jepsen"}}, nil, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ InstanceId string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	return out.InstanceId, nil
}
