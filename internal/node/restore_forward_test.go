package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
)

// Issue 16, a million keys in one cluster: a follower hands an operator
// restore to the leader in one cluster message. A snapshot larger than that
// is refused by the follower from its headers, before any of the body is
// read (the answer names the leader's API address), and the follower's
// restore target tells kmsctl where the leader is, so that it sends the file
// there; the leader takes it.
func TestCluster_RestoreLargerThanAForwardGoesToTheLeader(t *testing.T) {
	// Above net/http's 256 KiB: a server drains a smaller unread body
	// before it answers, a larger one it leaves (the connection closes).
	const frame = 320 << 10
	c := newTestCluster(t, 3, clusterOpts{maxFrame: frame})
	leader := c.leader()
	follower := c.followers()[0]
	caller := kms.Caller{AccountID: c.creds.AccountID, Principal: "acs:ram::" + c.creds.AccountID + ":root"}
	var snap bytes.Buffer
	for i := 0; snap.Len() <= frame; {
		for end := i + 50; i < end; i++ {
			c.createKey(leader, fmt.Sprintf("key %d, to make the snapshot larger than one cluster message", i))
		}
		snap.Reset()
		if _, err := c.nodes[leader].Service().SaveSnapshot(ctxT(t), caller, &snap); err != nil {
			t.Fatal(err)
		}
	}
	c.createKey(leader, "made after the snapshot")
	want, _ := c.nodes[leader].FSM().Hash()

	// The target, as kmsctl asks for it.
	resp, err := c.clients[follower].Do(ctxT(t), http.MethodGet, "/v1/operator/restore", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var target struct {
		IsLeader          bool
		ForwardLimitBytes int64
		LeaderId          string
		LeaderHttpAddr    string
	}
	json.NewDecoder(resp.Body).Decode(&target)
	resp.Body.Close()
	leaderAddr := c.nodes[leader].HTTPAddr()
	if target.IsLeader || target.ForwardLimitBytes <= 0 || target.ForwardLimitBytes > frame ||
		target.LeaderId != fmt.Sprintf("n%d", leader+1) || target.LeaderHttpAddr != leaderAddr {
		t.Fatalf("the follower's restore target: %+v; want a follower with a limit under %d naming n%d at %s", target, frame, leader+1, leaderAddr)
	}
	resp, err = c.clients[leader].Do(ctxT(t), http.MethodGet, "/v1/operator/restore", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	target.IsLeader = false
	json.NewDecoder(resp.Body).Decode(&target)
	resp.Body.Close()
	if !target.IsLeader {
		t.Fatal("the leader's restore target does not say it leads")
	}

	// The follower refuses from the headers: no byte of the body is sent,
	// and the answer comes anyway.
	code, msg := restoreHeadersOnly(t, c.nodes[follower].HTTPAddr(), int64(snap.Len()), signature.Credentials{
		AccessKeyID: c.creds.AccessKeyID, AccessKeySecret: c.creds.AccessKeySecret,
	})
	if code != "RequestEntityTooLarge" || !strings.Contains(msg, leaderAddr) {
		t.Fatalf("the follower answered %s: %s; want RequestEntityTooLarge naming %s", code, msg, leaderAddr)
	}
	if h, _ := c.nodes[leader].FSM().Hash(); h != want {
		t.Fatal("the refused restore changed the catalogue")
	}

	// The leader takes the same file.
	resp, err = c.clients[leader].Do(ctxT(t), http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(snap.Bytes()), nil)
	if err != nil {
		t.Fatalf("restore through the leader: %v", err)
	}
	resp.Body.Close()
	if h, _ := c.nodes[leader].FSM().Hash(); h == want {
		t.Fatal("the restore through the leader did not replace the catalogue")
	}
}

// restoreHeadersOnly sends POST /v1/operator/snapshot's signed headers with
// a Content-Length of size and no body, and returns the answer's error code
// and message: a node that tried to read the body would not answer, and
// the read times out.
func restoreHeadersOnly(t *testing.T, addr string, size int64, creds signature.Credentials) (code, msg string) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/operator/snapshot", nil)
	r.Header.Set("Content-Type", "application/octet-stream")
	// The hash of a body never sent: a node that read the body would
	// refuse it only after reading it all.
	if err := signature.SignV3(r, strings.Repeat("ab", 32), creds, time.Now(), signature.NewNonce()); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST /v1/operator/snapshot HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", addr, size)
	r.Header.Write(&head)
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the headers alone (did the node wait for the body?): %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct{ Code, Message string }
	json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	return e.Code, e.Message
}
