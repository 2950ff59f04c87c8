package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startAuditedCluster is startCluster with an audit log per node, in the
// node's own temp dir (outside its data dir); it returns the log paths.
func startAuditedCluster(t *testing.T, prefix string, n int) (*testCluster, []string) {
	t.Helper()
	c := &testCluster{t: t, RootKey: newRootKeyFile(t)}
	var audits []string
	for i := range n {
		nd := newNode(t, fmt.Sprintf("%s%d", prefix, i+1), zones[i%len(zones)], c.RootKey)
		audit := filepath.Join(filepath.Dir(nd.LogPath), nd.ID+"-audit.log")
		nd.Extra = []string{"--audit-log", audit}
		nd.Expect = n
		audits = append(audits, audit)
		c.Nodes = append(c.Nodes, nd)
	}
	for _, nd := range c.Nodes {
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
	return c, audits
}

var shownIndex = regexp.MustCompile(`(?m)^X-Kms-Index: (\d+)$`)

// Issue 12: a secret written through a follower is what every node reads
// once it has applied the write (read-your-writes by index), ACSPrevious
// keeps the value before; and no secret value is anywhere on disk — data
// dirs (Raft log, Raft snapshots), a saved snapshot, the nodes' logs, the
// audit logs — raw, as Base64 or as hex.
func TestSecrets_ReadEverywhereAndNeverOnDisk(t *testing.T) {
	c, audits := startAuditedCluster(t, "sec", 3)
	c.Init()
	key := c.createKey(c.Nodes[0], "secrets e2e")
	first := "e2e-secret-value-one-" + randomHex(8)
	second := "e2e-secret-value-two-" + randomHex(8)
	binary := []byte("e2e-binary-secret-" + randomHex(8))

	f := c.Followers()[0]
	var created struct{ SecretName, VersionId, Arn string }
	c.Ctl(f, "CreateSecret", "--SecretName", "db/password", "--SecretData", first, "--VersionId", "v1",
		"--EncryptionKeyId", key, "--Description", "e2e").ok(t, &created)
	if created.SecretName != "db/password" || created.VersionId != "v1" || !strings.HasSuffix(created.Arn, ":secret/db/password") {
		t.Fatalf("CreateSecret answered %+v", created)
	}
	r := c.Ctl(f, "--show-index", "PutSecretValue", "--SecretName", "db/password", "--SecretData", second, "--VersionId", "v2").ok(t, nil)
	m := shownIndex.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("PutSecretValue --show-index printed no index:\n%s", r)
	}
	c.Ctl(f, "CreateSecret", "--SecretName", "bin", "--SecretData", base64.StdEncoding.EncodeToString(binary),
		"--SecretDataType", "binary", "--VersionId", "b1", "--EncryptionKeyId", key).ok(t, nil)

	for _, n := range c.Nodes {
		var got struct{ SecretData, VersionId, SecretDataType string }
		c.Ctl(n, "--min-index", m[1], "GetSecretValue", "--SecretName", "db/password").ok(t, &got)
		if got.SecretData != second || got.VersionId != "v2" || got.SecretDataType != "text" {
			t.Fatalf("%s: GetSecretValue (ACSCurrent) = %+v, want v2's value", n.ID, got)
		}
		c.Ctl(n, "--min-index", m[1], "GetSecretValue", "--SecretName", "db/password", "--VersionStage", "ACSPrevious").ok(t, &got)
		if got.SecretData != first || got.VersionId != "v1" {
			t.Fatalf("%s: GetSecretValue (ACSPrevious) = %+v, want v1's value", n.ID, got)
		}
	}

	snap := saveSnapshot(t, c, c.Leader())
	for _, n := range c.Nodes {
		if code, _ := n.Terminate(30 * time.Second); code != 0 {
			t.Fatalf("%s exited %d", n.ID, code)
		}
	}

	var needles []needle
	for i, v := range [][]byte{[]byte(first), []byte(second), binary} {
		what := fmt.Sprintf("secret value %d", i)
		needles = append(needles,
			needle{what + " (raw)", v},
			needle{what + " (Base64)", []byte(base64.StdEncoding.EncodeToString(v))},
			needle{what + " (hex)", []byte(hex.EncodeToString(v))},
		)
	}
	roots := []string{snap}
	for i, n := range c.Nodes {
		roots = append(roots, n.DataDir, n.LogPath, audits[i])
	}
	hits, scanned := scanFiles(t, roots, needles)
	if len(hits) > 0 {
		t.Fatalf("secret values found on disk:\n%s", strings.Join(hits, "\n"))
	}
	// The scan looked at something real: the audit logs name the reads.
	for _, a := range audits {
		b, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "GetSecretValue") {
			t.Fatalf("%s has no GetSecretValue line: the scan proves nothing", a)
		}
	}
	if scanned < 3*3+1 {
		t.Fatalf("scanned only %d files", scanned)
	}
}
