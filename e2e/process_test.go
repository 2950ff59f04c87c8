package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftkms/raftkms/internal/sigstop"
)

// Fast timings for every node: failover in about a second, gossip probes in
// milliseconds, a failed server removed from Raft after 5 s.
var fastFlags = []string{"--raft-timeout", "300ms", "--fast-gossip", "--dead-server-timeout", "5s"}

// ports hands out loopback ports that were free when asked for and that no
// other node of this test binary has been given.
var ports struct {
	sync.Mutex
	given map[int]bool
}

// freePort returns a loopback port that is free for TCP and UDP (gossip
// needs both on one port).
func freePort(t testing.TB) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		if ports.given[p] {
			continue
		}
		ports.given[p] = true
		return p
	}
	t.Fatalf("no free loopback port found")
	return 0
}

func freeAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// kmsdNode is one kmsd process (and its later restarts on the same data dir).
type kmsdNode struct {
	t       *testing.T
	ID      string
	Zone    string
	DataDir string
	RootKey string
	HTTP    string // host:port of the API
	Cluster string
	Gossip  string
	Join    []string
	Expect  int
	Extra   []string
	LogPath string
	// Args, when set, replaces the flags built from the fields above (a
	// dev node), and the node keeps its ports even when one is taken.
	Args []string
	// Env is added to the process's (clean) environment.
	Env []string
	// Bin is the kmsd binary to run ("": the one TestMain built); the
	// upgrade test runs an older build, then this one, on the same data dir.
	Bin string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	exitCode int
	starts   int
}

// Endpoint is the node's API base URL.
func (n *kmsdNode) Endpoint() string { return "http://" + n.HTTP }

func (n *kmsdNode) args() []string {
	if n.Args != nil {
		return n.Args
	}
	a := []string{
		"--node-id", n.ID, "--data-dir", n.DataDir, "--root-key-file", n.RootKey,
		"--http-addr", n.HTTP, "--cluster-addr", n.Cluster, "--gossip-addr", n.Gossip,
	}
	if n.Zone != "" {
		a = append(a, "--zone", n.Zone)
	}
	if len(n.Join) > 0 {
		a = append(a, "--join", strings.Join(n.Join, ","))
	}
	if n.Expect > 0 {
		a = append(a, "--bootstrap-expect", strconv.Itoa(n.Expect))
	}
	a = append(a, fastFlags...)
	return append(a, n.Extra...)
}

// newNode describes a node with fresh ports and its own data dir; Start
// runs it.
func newNode(t *testing.T, id, zone, rootKey string) *kmsdNode {
	t.Helper()
	dir := t.TempDir()
	n := &kmsdNode{
		t: t, ID: id, Zone: zone, RootKey: rootKey,
		DataDir: filepath.Join(dir, "data"),
		LogPath: filepath.Join(dir, id+".log"),
		HTTP:    freeAddr(t), Cluster: freeAddr(t), Gossip: freeAddr(t),
	}
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			t.Logf("---- last lines of %s (%s) ----\n%s", id, n.LogPath, tail(n.LogPath, 80))
		}
	})
	return n
}

// Start runs the node and waits until its API answers (which means all
// three of its ports are bound). On a fresh node whose port was taken
// meanwhile by someone else, it picks new ports and tries again.
func (n *kmsdNode) Start() {
	n.t.Helper()
	for attempt := 1; ; attempt++ {
		err := n.startOnce()
		if err == nil {
			return
		}
		if errors.Is(err, errPortTaken) && n.starts == 1 && n.Args == nil && attempt < 4 {
			n.t.Logf("%s: %v; retrying with new ports", n.ID, err)
			n.starts = 0
			n.HTTP, n.Cluster, n.Gossip = freeAddr(n.t), freeAddr(n.t), freeAddr(n.t)
			continue
		}
		n.t.Fatalf("start %s: %v\n%s", n.ID, err, tail(n.LogPath, 40))
	}
}

var errPortTaken = errors.New("a port was taken by another process")

func (n *kmsdNode) startOnce() error {
	if n.Running() {
		return fmt.Errorf("%s is already running", n.ID)
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	offset, _ := logf.Seek(0, 2)
	bin := kmsdBin
	if n.Bin != "" {
		bin = n.Bin
	}
	fmt.Fprintf(logf, "==== e2e: starting %s %s\n", bin, strings.Join(n.args(), " "))
	cmd := exec.Command(bin, n.args()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(cleanEnv(), n.Env...)
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.starts++
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		code := 0
		if err != nil {
			code = -1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
		}
		n.mu.Lock()
		n.exitCode = code
		n.mu.Unlock()
		close(done)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			out := readFrom(n.LogPath, offset)
			if strings.Contains(out, "address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("kmsd exited with code %d before serving", n.ExitCode())
		case <-time.After(50 * time.Millisecond):
		}
		if code, _, err := httpGet(n.Endpoint() + "/v1/status"); err == nil && code == http.StatusOK {
			return nil
		}
	}
	return fmt.Errorf("the API at %s did not answer within 20s", n.Endpoint())
}

// Running reports whether the process is alive.
func (n *kmsdNode) Running() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// ExitCode is the last run's exit code (-1 when killed by a signal).
func (n *kmsdNode) ExitCode() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitCode
}

func (n *kmsdNode) signal(sig os.Signal) {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Signal(sig)
	}
}

// Terminate sends SIGTERM and waits for the process to exit; it returns the
// exit code and how long the shutdown took.
func (n *kmsdNode) Terminate(within time.Duration) (int, time.Duration) {
	n.t.Helper()
	if !n.Running() {
		n.t.Fatalf("%s is not running", n.ID)
	}
	start := time.Now()
	n.signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(within):
		n.t.Fatalf("%s did not exit within %s of SIGTERM", n.ID, within)
	}
	return n.ExitCode(), time.Since(start)
}

// Pause stops the process (SIGSTOP), like a long GC pause or a frozen VM;
// Resume continues it. Kill works on a paused process.
// Both return once the kernel has stopped (or continued) every thread, so
// a paused node cannot apply one more entry after Pause returns.
func (n *kmsdNode) Pause()  { n.stopOrContinue(sigstop.Stop) }
func (n *kmsdNode) Resume() { n.stopOrContinue(sigstop.Continue) }

func (n *kmsdNode) stopOrContinue(op func(pid int, timeout time.Duration) error) {
	n.t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil || cmd.Process == nil || !n.Running() {
		return
	}
	if err := op(cmd.Process.Pid, 10*time.Second); err != nil {
		n.t.Errorf("%s: %v", n.ID, err)
	}
}

// Kill ends the process at once (SIGKILL), like a crash or a lost machine.
func (n *kmsdNode) Kill() {
	if !n.Running() {
		return
	}
	n.signal(syscall.SIGKILL)
	<-n.done
}

// cleanEnv is the environment without any KMS_ variable, so that the
// user's own settings cannot leak into a test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KMS_") {
			env = append(env, kv)
		}
	}
	return env
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}
