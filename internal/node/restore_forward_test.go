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

// Issue 16, a million keys in one cluster: any node takes an operator
// restore. A follower hands the leader a snapshot larger than one cluster
// message in parts; the restore reaches every node and the leader keeps no
// copy. The follower's restore target says it forwards up to the largest
// snapshot a node takes, and a larger upload is refused from its headers,
// before any of the body is read.
func TestCluster_RestoreThroughAFollowerInParts(t *testing.T) {
	const frame = 64 << 10
	c := newTestCluster(t, 3, clusterOpts{maxFrame: frame})
	leader := c.leader()
	follower := c.followers()[0]
	caller := kms.Caller{AccountID: c.creds.AccountID, Principal: "acs:ram::" + c.creds.AccountID + ":root"}
	var snap bytes.Buffer
	var kept string
	for i := 0; snap.Len() <= 4*frame; {
		for end := i + 50; i < end; i++ {
			kept = c.createKey(leader, fmt.Sprintf("key %d, to make the snapshot several cluster messages long", i))
		}
		snap.Reset()
		if _, err := c.nodes[leader].Service().SaveSnapshot(ctxT(t), caller, &snap); err != nil {
			t.Fatal(err)
		}
	}
	gone := c.createKey(leader, "made after the snapshot")

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
	if target.IsLeader || target.ForwardLimitBytes != kms.MaxSnapshotSize ||
		target.LeaderId != fmt.Sprintf("n%d", leader+1) || target.LeaderHttpAddr != leaderAddr {
		t.Fatalf("the follower's restore target: %+v; want a follower forwarding up to %d, naming n%d at %s", target, kms.MaxSnapshotSize, leader+1, leaderAddr)
	}

	// Larger than any node takes: refused from the headers, no byte of
	// the body sent.
	code, msg := restoreHeadersOnly(t, c.nodes[follower].HTTPAddr(), kms.MaxSnapshotSize+1, signature.Credentials{
		AccessKeyID: c.creds.AccessKeyID, AccessKeySecret: c.creds.AccessKeySecret,
	})
	if code != "RequestEntityTooLarge" || !strings.Contains(msg, fmt.Sprint(kms.MaxSnapshotSize)) {
		t.Fatalf("the follower answered %s: %s; want RequestEntityTooLarge naming the limit", code, msg)
	}

	// The follower takes the file and hands it on in parts.
	resp, err = c.clients[follower].Do(ctxT(t), http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(snap.Bytes()), nil)
	if err != nil {
		t.Fatalf("restore through a follower: %v", err)
	}
	var out struct{ Index uint64 }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if out.Index == 0 {
		t.Fatal("the restore answered no index")
	}
	for i, n := range c.nodes {
		if err := n.FSM().WaitForIndex(ctxT(t), out.Index); err != nil {
			t.Fatalf("n%d did not apply the restore's index %d: %v", i+1, out.Index, err)
		}
		if _, ok := n.FSM().Key(kept); !ok {
			t.Fatalf("n%d lacks %s, in the snapshot", i+1, kept)
		}
		if _, ok := n.FSM().Key(gone); ok {
			t.Fatalf("n%d still holds %s, made after the snapshot", i+1, gone)
		}
	}
	if c.nodes[leader].Service().HoldsRestoreUpload() {
		t.Fatal("the leader still holds the upload")
	}
	for _, f := range dataDirFiles(t, c.dirs[leader]) {
		if strings.Contains(f, "snapshot-forwarded-") {
			t.Fatalf("the leader kept %s", f)
		}
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
