package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/internal/testutil"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/store"
)

// startCluster starts n real nodes (Raft, gossip, the HTTP API on loopback
// ports) that find each other and bootstrap, and initializes the cluster.
func startCluster(t *testing.T, n int) ([]*node.Node, kms.InitResult) {
	t.Helper()
	raw := make([]byte, kcrypto.RootKeySize)
	for i := range raw {
		raw[i] = byte(i*11 + 3)
	}
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*node.Node
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Kill()
		}
	})
	var join []string
	for i := range n {
		nd, err := node.Start(node.Config{
			NodeID: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(),
			HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			Join: join, BootstrapExpect: n, Zone: fmt.Sprintf("zone-%d", i), RootKey: root,
			Timing: store.FastTiming(), FastGossip: true, DeadServerTimeout: time.Hour,
		})
		if err != nil {
			t.Fatalf("start n%d: %v", i+1, err)
		}
		nodes = append(nodes, nd)
		if i == 0 {
			join = []string{nd.GossipAddr()}
		}
	}
	testutil.Eventually(t, "every node to see a leader and catch up", 30*time.Second, func() bool {
		for _, nd := range nodes {
			if _, id := nd.Store().Leader(); id == "" || !nd.Store().CaughtUp() {
				return false
			}
			if s, err := nd.Store().Servers(); err != nil || len(s) != n {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := nodes[0].Service().Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return nodes, res
}

// A session made through one node is the same session on every node, and
// a sign-out through one node is refused at once on the others (no wait:
// every console request reads its session after a linearizable barrier).
func TestConsole_SessionIsValidOnEveryNodeAndSignOutEndsItEverywhere(t *testing.T) {
	nodes, creds := startCluster(t, 3)
	a := newConsoleBrowser(t, nodes[0].Endpoint())
	s := a.mustSignIn(creds.AccessKeyID, creds.AccessKeySecret, "")
	if s.NodeId != "n1" {
		t.Fatalf("signed in on %q", s.NodeId)
	}
	// The same cookie and token on the other nodes (a browser that moves
	// between nodes sends them to each).
	others := []*consoleBrowser{newConsoleBrowser(t, nodes[1].Endpoint()), newConsoleBrowser(t, nodes[2].Endpoint())}
	for i, b := range others {
		b.cookie, b.csrf = a.cookie, a.csrf
		var got consoleSession
		b.session().want(t, 200, "").decode(t, &got)
		if got.Identity != s.Identity || got.CsrfToken != s.CsrfToken || got.NodeId != fmt.Sprintf("n%d", i+2) {
			t.Fatalf("node %d: session %+v, signed in as %+v", i+2, got, s)
		}
		// A write through another node, as the same identity.
		b.action("CreateKey", map[string]string{"DKMSInstanceId": creds.InstanceID, "Description": fmt.Sprintf("via n%d", i+2)}).want(t, 200, "")
	}
	var members struct {
		Members []struct{ NodeId, RaftRole, Suffrage, Health string }
	}
	others[0].action("ConsoleClusterMembers", nil).want(t, 200, "").decode(t, &members)
	leaders := 0
	for _, m := range members.Members {
		if m.RaftRole == "leader" {
			leaders++
		}
		if m.Suffrage != "voter" || m.Health != "alive" {
			t.Errorf("member %+v", m)
		}
	}
	if len(members.Members) != 3 || leaders != 1 {
		t.Fatalf("members %+v", members)
	}

	kept := a.cookie
	a.signOut().want(t, 200, "")
	for _, b := range others {
		b.session().want(t, 401, "ConsoleSession.Expired")
		b.cookie = kept
		b.action("ListKeys", nil).want(t, 401, "ConsoleSession.Expired")
	}
	// Every replica forgot it.
	testutil.Eventually(t, "every node to apply the sign-out", 10*time.Second, func() bool {
		for _, nd := range nodes {
			if len(nd.FSM().ConsoleSessions()) != 0 {
				return false
			}
		}
		return true
	})
}
