package jepsen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The network: every node lives in its own network namespace with one veth
// whose far end is a port of a Linux bridge. The bridge lives in a "switch"
// namespace of its own rather than on the host, because on a host whose
// firewall drops forwarded packets (Docker sets the FORWARD policy to drop,
// and br_netfilter sends bridged frames through it) node-to-node traffic
// would never arrive. The harness reaches the nodes through one more veth
// from the host into the switch; that link is never cut, so clients can talk
// to every node, on either side of a partition, as in Jepsen.
//
// Names carry the harness's pid (rkj-<pid>-...) so parallel runs do not
// collide and leftovers of a crashed run can be recognized and removed.

const namePrefix = "rkj-"

// Network is one run's namespaces, bridge and addresses.
type Network struct {
	prefix string       // rkj-<pid>
	subnet netip.Prefix // a /24
	hostIP netip.Addr
	sw     string // the switch namespace
	hostIf string
	nodes  map[string]netNode
	log    func(format string, args ...any)
}

type netNode struct {
	ns   string
	ip   netip.Addr
	port string // the veth's name in the switch namespace
}

// CheckPrerequisites says what is missing to run the harness: root, ip and
// nft.
func CheckPrerequisites() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "it must run as root (network namespaces, veth, nftables): try sudo")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			pkg := map[string]string{"ip": "iproute2", "nft": "nftables"}[tool]
			missing = append(missing, fmt.Sprintf("%q is not installed (Debian package %s; `make deps` installs it)", tool, pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kms-jepsen cannot start: %s", strings.Join(missing, "; "))
	}
	return nil
}

// run runs a command and returns its error with its output.
func run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}

// NewNetwork creates the switch namespace, its bridge and the host's link
// to it, on a /24 no interface of the host uses.
func NewNetwork(ctx context.Context, log func(string, ...any)) (*Network, error) {
	pid := os.Getpid()
	n := &Network{prefix: fmt.Sprintf("%s%d", namePrefix, pid), nodes: map[string]netNode{}, log: log}
	n.sw = n.prefix + "-sw"
	n.hostIf = n.prefix + "-h"
	used, _ := output("ip", "-4", "-o", "addr", "show")
	for i := 0; ; i++ {
		if i == 200 {
			return nil, errors.New("no free 10.x.y.0/24 subnet found")
		}
		a := byte(100 + (pid/256+i)%100)
		b := byte(pid % 256)
		n.subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, a, b, 0}), 24)
		if !strings.Contains(used, fmt.Sprintf(" 10.%d.%d.", a, b)) {
			break
		}
	}
	n.hostIP = n.addr(1)
	steps := [][]string{
		{"ip", "netns", "add", n.sw},
		{"ip", "-n", n.sw, "link", "set", "lo", "up"},
		{"ip", "-n", n.sw, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", n.sw, "link", "set", "br0", "up"},
		{"ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", "host", "netns", n.sw},
		{"ip", "-n", n.sw, "link", "set", "host", "master", "br0"},
		{"ip", "-n", n.sw, "link", "set", "host", "up"},
		{"ip", "addr", "add", n.hostIP.String() + "/24", "dev", n.hostIf},
		{"ip", "link", "set", n.hostIf, "up"},
	}
	for _, s := range steps {
		if err := run(ctx, "", s[0], s[1:]...); err != nil {
			n.Teardown()
			return nil, err
		}
	}
	return n, nil
}

func (n *Network) addr(host int) netip.Addr {
	b := n.subnet.Addr().As4()
	b[3] = byte(host)
	return netip.AddrFrom4(b)
}

// HostIP is the harness's address on the bridge.
func (n *Network) HostIP() netip.Addr { return n.hostIP }

// AddNode creates a namespace for node id with address .(10+slot) on the
// bridge, and returns the namespace's name and the address.
func (n *Network) AddNode(ctx context.Context, id string, slot int) (string, netip.Addr, error) {
	if slot < 0 || slot > 200 {
		return "", netip.Addr{}, fmt.Errorf("node slot %d out of range", slot)
	}
	nn := netNode{ns: n.prefix + "-" + id, ip: n.addr(10 + slot), port: fmt.Sprintf("v%d", slot)}
	steps := [][]string{
		{"ip", "netns", "add", nn.ns},
		{"ip", "-n", nn.ns, "link", "set", "lo", "up"},
		{"ip", "-n", n.sw, "link", "add", nn.port, "type", "veth", "peer", "name", "eth0", "netns", nn.ns},
		{"ip", "-n", n.sw, "link", "set", nn.port, "master", "br0"},
		{"ip", "-n", n.sw, "link", "set", nn.port, "up"},
		{"ip", "-n", nn.ns, "addr", "add", nn.ip.String() + "/24", "dev", "eth0"},
		{"ip", "-n", nn.ns, "link", "set", "eth0", "up"},
	}
	n.nodes[id] = nn
	for _, s := range steps {
		if err := run(ctx, "", s[0], s[1:]...); err != nil {
			return "", netip.Addr{}, err
		}
	}
	return nn.ns, nn.ip, nil
}

// RemoveNode deletes a node's namespace (and with it its veth).
func (n *Network) RemoveNode(id string) error {
	nn, ok := n.nodes[id]
	if !ok {
		return nil
	}
	delete(n.nodes, id)
	return run(context.Background(), "", "ip", "netns", "del", nn.ns)
}

// Partition cuts node pairs: blocked[a] lists the nodes a must not exchange
// packets with. Each namespace drops packets from and to the addresses of
// its blocked peers (nftables, inet family, input and output hooks). Nodes
// absent from blocked are healed.
func (n *Network) Partition(ctx context.Context, blocked map[string][]string) error {
	var errs []error
	for id, nn := range n.nodes {
		peers := blocked[id]
		if len(peers) == 0 {
			if err := run(ctx, "", "ip", "netns", "exec", nn.ns, "nft", "flush", "ruleset"); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		var ips []string
		for _, p := range peers {
			if pn, ok := n.nodes[p]; ok {
				ips = append(ips, pn.ip.String())
			}
		}
		sort.Strings(ips)
		set := strings.Join(ips, ", ")
		rules := fmt.Sprintf(`flush ruleset
table inet rkj {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr { %s } drop
	}
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr { %s } drop
	}
}
`, set, set)
		if err := run(ctx, rules, "ip", "netns", "exec", nn.ns, "nft", "-f", "-"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Heal removes every partition.
func (n *Network) Heal(ctx context.Context) error { return n.Partition(ctx, nil) }

// Teardown deletes every namespace of the run (their veths go with them)
// and the host's link. Processes must be gone first.
func (n *Network) Teardown() {
	for id := range n.nodes {
		if err := n.RemoveNode(id); err != nil {
			n.log("cleanup: %v", err)
		}
	}
	_ = run(context.Background(), "", "ip", "link", "del", n.hostIf)
	if err := run(context.Background(), "", "ip", "netns", "del", n.sw); err != nil && !strings.Contains(err.Error(), "No such file") {
		n.log("cleanup: %v", err)
	}
}

var leftoverName = regexp.MustCompile(`^` + namePrefix + `(\d+)-`)

// harnessAlive reports whether pid is a running kms-jepsen (pids are reused).
func harnessAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return false
	}
	return strings.HasPrefix(strings.TrimSpace(string(comm)), "kms-jepsen") ||
		strings.HasPrefix(strings.TrimSpace(string(comm)), "jepsen.test")
}

// CleanLeftovers removes the namespaces and links of earlier runs whose
// harness is no longer running (a crash, a SIGKILL): it kills the processes
// still inside those namespaces first. It returns what it removed.
func CleanLeftovers() []string {
	var removed []string
	list, _ := output("ip", "netns", "list")
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name := f[0]
		m := leftoverName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); harnessAlive(pid) {
			continue
		}
		pids, _ := output("ip", "netns", "pids", name)
		for _, p := range strings.Fields(pids) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := run(ctx, "", "ip", "netns", "del", name); err == nil {
			removed = append(removed, "netns "+name)
		}
		cancel()
	}
	links, _ := output("ip", "-o", "link", "show")
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.Index(name, "@"); i >= 0 {
			name = name[:i]
		}
		m := leftoverName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); harnessAlive(pid) {
			continue
		}
		if err := run(context.Background(), "", "ip", "link", "del", name); err == nil {
			removed = append(removed, "link "+name)
		}
	}
	return removed
}
