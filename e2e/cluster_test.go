package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Issue 2: three nodes started with --bootstrap-expect 3 and --join form one
// cluster by themselves; operator init prints the credentials once; a
// second init fails and changes nothing; operator members lists the nodes
// with their zones.
func TestCluster_FormsByItselfThenInitOnlyOnce(t *testing.T) {
	c := startCluster(t, "n", 3, "")

	// One Raft configuration of three voters, seen alike from every node.
	for _, n := range c.Nodes {
		s := mustStatus(t, n)
		if s.Initialized {
			t.Fatalf("%s reports Initialized before operator init: %+v", n.ID, s)
		}
		voters := 0
		for _, m := range s.Members {
			if m.RaftMember && m.Voter {
				voters++
			}
		}
		if voters != 3 {
			t.Fatalf("%s sees %d voters, want 3: %+v", n.ID, voters, s.Members)
		}
	}

	// Exactly as the issue and the README write it: no credentials exist
	// yet, only --endpoint.
	r := kmsctl(t, nil, "--endpoint", c.Nodes[0].Endpoint(), "operator", "init")
	r.ok(t, nil)
	var printed map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &printed); err != nil {
		t.Fatalf("operator init did not print one JSON object: %v\n%s", err, r)
	}
	for _, f := range []string{"AccountId", "AccessKeyId", "AccessKeySecret", "InstanceId"} {
		if s, _ := printed[f].(string); s == "" {
			t.Fatalf("operator init output lacks %s:\n%s", f, r)
		}
	}
	json.Unmarshal([]byte(r.Stdout), &c.Creds)
	c.CredsFile = writeCreds(t, c.Creds)

	// The credentials work on every node.
	key := c.createKey(c.Nodes[0], "made right after init")
	want := c.Ctl(c.Nodes[0], "ListKeys").ok(t, nil).Stdout
	if !strings.Contains(want, key) {
		t.Fatalf("ListKeys does not list the new key %s: %s", key, want)
	}

	// A second init, through any node, is refused and prints no secret.
	for _, n := range c.Nodes {
		r := kmsctl(t, nil, "--endpoint", n.Endpoint(), "operator", "init")
		code := r.serviceError(t)
		if code != "Rejected.AlreadyInitialized" {
			t.Errorf("second init through %s: Code %s, want Rejected.AlreadyInitialized", n.ID, code)
		}
		if strings.Contains(r.Stdout+r.Stderr, "AccessKeySecret") {
			t.Fatalf("a refused init printed an AccessKeySecret:\n%s", r)
		}
	}

	// Nothing changed: the first credentials and instance still work on
	// every node, the catalogue is the same, and the cluster still counts
	// one operator (a secret from the refused init would not authenticate
	// anyway, since none was printed).
	blob := c.encrypt(c.Nodes[1], key, b64("after the refused init"), "")
	for _, n := range c.Nodes {
		got := c.Ctl(n, "--min-index", fmt.Sprint(mustStatus(t, c.Nodes[0]).AppliedIndex), "ListKeys").ok(t, nil).Stdout
		if !jsonEqualIgnoringRequestID(t, want, got) {
			t.Fatalf("ListKeys on %s changed after the refused init:\nbefore %s\nafter  %s", n.ID, want, got)
		}
		checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, n.ID,
			[]sealed{{Blob: blob, Plaintext: b64("after the refused init"), KeyID: key}})
		if s := mustStatus(t, n); !s.Initialized {
			t.Fatalf("%s: Initialized false after init", n.ID)
		}
	}
	c.createKey(c.Nodes[2], "the first InstanceId still takes keys")

	// operator members: the three nodes, with their zones, through any node.
	var members struct {
		Leader    string
		AskedNode string
		Members   []memberStatus
	}
	// Without credentials, only --endpoint: the node asked must be n3.
	if r := kmsctl(t, nil, "--endpoint", c.Nodes[2].Endpoint(), "operator", "members"); r.Code != 0 ||
		json.Unmarshal([]byte(r.Stdout), &members) != nil || members.AskedNode != c.Nodes[2].ID {
		t.Errorf("BUG: `kmsctl --endpoint %s operator members` without credentials did not ask %s (kmsctl drops --endpoint when it finds no credentials):\n%s",
			c.Nodes[2].Endpoint(), c.Nodes[2].ID, r)
	}
	// As the README does: credentials from KMS_CREDENTIALS, the node from
	// --endpoint.
	members.AskedNode = ""
	kmsctl(t, []string{"KMS_CREDENTIALS=" + c.CredsFile}, "--endpoint", c.Nodes[2].Endpoint(), "operator", "members").ok(t, &members)
	if members.AskedNode != c.Nodes[2].ID {
		t.Fatalf("operator members with --endpoint %s asked %q", c.Nodes[2].Endpoint(), members.AskedNode)
	}
	if members.Leader == "" {
		t.Fatalf("operator members names no leader")
	}
	if len(members.Members) != 3 {
		t.Fatalf("operator members lists %d nodes, want 3: %+v", len(members.Members), members.Members)
	}
	for _, n := range c.Nodes {
		var found *memberStatus
		for i := range members.Members {
			if members.Members[i].NodeId == n.ID {
				found = &members.Members[i]
			}
		}
		if found == nil {
			t.Fatalf("operator members does not list %s: %+v", n.ID, members.Members)
		}
		if found.Zone != n.Zone || !found.Alive || !found.RaftMember || found.HttpAddr != n.HTTP {
			t.Fatalf("operator members row for %s = %+v, want zone %s, alive, Raft member, HttpAddr %s", n.ID, *found, n.Zone, n.HTTP)
		}
	}
}

func jsonEqualIgnoringRequestID(t testing.TB, a, b string) bool {
	t.Helper()
	return fmt.Sprint(withoutRequestID(t, a)) == fmt.Sprint(withoutRequestID(t, b))
}

// Issue 2: /v1/health is 503 on a node that is not in a cluster with a
// leader and 200 once it is; /metrics is Prometheus with kms_requests_total.
func TestHealth_503WithoutLeader200InCluster_MetricsExposed(t *testing.T) {
	root := newRootKeyFile(t)
	n1 := newNode(t, "h1", "zone-a", root)
	n2 := newNode(t, "h2", "zone-b", root)
	n3 := newNode(t, "h3", "zone-c", root)
	for _, n := range []*kmsdNode{n1, n2, n3} {
		n.Expect = 3
	}
	n2.Join = []string{n1.Gossip}
	n3.Join = []string{n1.Gossip}

	// Alone, with two more servers expected, n1 has no leader: 503, and it
	// stays so.
	n1.Start()
	consistently(t, 1500*time.Millisecond, "h1 alone must not be healthy", func() error {
		code, body := healthCode(n1)
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("GET /v1/health = %d %s, want 503", code, body)
		}
		var h struct{ Ready bool }
		if json.Unmarshal([]byte(body), &h) != nil || h.Ready {
			return fmt.Errorf("health body %s, want Ready false", body)
		}
		return nil
	})
	if s := mustStatus(t, n1); s.Leader != "" || s.RaftState == "Leader" {
		t.Fatalf("h1 alone claims a leader: %+v", s)
	}

	n2.Start()
	n3.Start()
	eventually(t, 30*time.Second, "h1 healthy once the cluster has formed", func() error {
		if code, body := healthCode(n1); code != http.StatusOK {
			return fmt.Errorf("GET /v1/health = %d %s", code, body)
		}
		return nil
	})
	c := &testCluster{t: t, Nodes: []*kmsdNode{n1, n2, n3}, RootKey: root}
	c.WaitReady(30 * time.Second)

	// /v1/status carries the documented fields.
	s := mustStatus(t, n1)
	if s.NodeId != "h1" || s.RaftState == "" || s.Leader == "" || len(s.Members) != 3 {
		t.Fatalf("/v1/status = %+v", s)
	}
	for _, m := range s.Members {
		if m.Zone == "" || m.HttpAddr == "" || m.ClusterAddr == "" || m.GossipAddr == "" || !m.Alive || !m.Voter {
			t.Fatalf("/v1/status member %+v lacks a field", m)
		}
	}

	// Requests are counted per action and code.
	c.Init()
	c.Ctl(n1, "ListKeys").ok(t, nil)
	c.Ctl(n1, "DescribeKey", "--KeyId", "alias/none").serviceError(t)
	code, body, err := httpGet(n1.Endpoint() + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, want := range []string{
		"# TYPE kms_requests_total counter",
		`kms_requests_total{action="ListKeys",code="OK"} 1`,
		`kms_requests_total{action="DescribeKey",code="Forbidden.AliasNotFound"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, grepLines(string(body), "kms_"))
		}
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
