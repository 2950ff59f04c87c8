package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needle is a secret that must not be found, under a name that does not
// repeat it.
type needle struct {
	what string
	b    []byte
}

// scanFiles reports every (file, needle) hit under the given roots.
func scanFiles(t *testing.T, roots []string, needles []needle) (hits []string, scanned int) {
	t.Helper()
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			scanned++
			for _, n := range needles {
				if bytes.Contains(b, n.b) {
					hits = append(hits, fmt.Sprintf("%s holds %s", path, n.what))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", root, err)
		}
	}
	return hits, scanned
}

// Issue 2 and DESIGN.md §5: no unwrapped key material or secret is in the
// snapshot file, the Raft log, or anywhere under the data dirs — nor in the
// nodes' logs. After a workload whose data keys and plaintexts the test
// knows, every file is searched for them, raw and as Base64 or hex text.
func TestDisk_NoUnwrappedSecretsInDataDirsSnapshotsOrLogs(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	marker := "e2e-disk-scan-description-" + randomHex(6)
	key := c.createKey(c.Nodes[0], marker)
	c.Ctl(c.Nodes[1], "CreateKeyVersion", "--KeyId", key).ok(t, nil)

	var needles []needle
	addBytes := func(what string, b []byte) {
		needles = append(needles,
			needle{what + " (raw)", b},
			needle{what + " (Base64)", []byte(base64.StdEncoding.EncodeToString(b))},
			needle{what + " (Base64, unpadded)", []byte(base64.RawStdEncoding.EncodeToString(b))},
			needle{what + " (hex)", []byte(hex.EncodeToString(b))},
		)
	}

	// Data keys: their plaintext is known to the test and to nobody else.
	for i, n := range c.Nodes {
		for _, size := range []string{"16", "32", "64"} {
			var dk struct{ Plaintext, CiphertextBlob string }
			c.Ctl(n, "GenerateDataKey", "--KeyId", key, "--NumberOfBytes", size, "--EncryptionContext", `{"dk":"`+size+`"}`).ok(t, &dk)
			raw, err := base64.StdEncoding.DecodeString(dk.Plaintext)
			if err != nil || len(raw) == 0 {
				t.Fatalf("GenerateDataKey Plaintext %q is not Base64 data", dk.Plaintext)
			}
			addBytes(fmt.Sprintf("data key %d/%s", i, size), raw)
		}
	}
	// Distinctive plaintexts, sent both as Base64 (the convention) and as
	// plain text, each also in a data key's company through ReEncrypt.
	for i, n := range c.Nodes {
		text := fmt.Sprintf("e2e-distinctive-plaintext-%d-%s", i, randomHex(8))
		for _, sent := range []string{b64(text), text} {
			blob := c.encrypt(n, key, sent, `{"scan":"yes"}`)
			c.Ctl(n, "ReEncrypt", "--CiphertextBlob", blob, "--SourceEncryptionContext", `{"scan":"yes"}`, "--DestinationKeyId", key).ok(t, nil)
		}
		needles = append(needles, needle{fmt.Sprintf("plaintext %d (text)", i), []byte(text)}, needle{fmt.Sprintf("plaintext %d (as sent, Base64)", i), []byte(b64(text))})
	}
	// The operator's secret: the test keeps its credentials file outside
	// every data dir.
	addBytes("the AccessKeySecret", []byte(c.Creds.AccessKeySecret))

	// A snapshot file, and a restore so that a Raft snapshot lands in every
	// data dir too.
	snap := saveSnapshot(t, c, c.Followers()[0])
	r := c.Ctl(c.Nodes[0], "operator", "snapshot", "restore", "--force", snap).ok(t, nil)
	m := restoredIndex.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("restore printed no index:\n%s", r)
	}
	for _, n := range c.Nodes {
		c.Ctl(n, "--min-index", m[1], "DescribeKey", "--KeyId", key).ok(t, nil)
	}
	// Stopped gracefully, so that everything a node writes is on disk.
	for _, n := range c.Nodes {
		if code, _ := n.Terminate(30 * time.Second); code != 0 {
			t.Fatalf("%s exited %d", n.ID, code)
		}
	}

	var dataDirs, logs []string
	for _, n := range c.Nodes {
		dataDirs = append(dataDirs, n.DataDir)
		logs = append(logs, n.LogPath)
	}

	// The scan sees the real bytes: the key's description is stored in
	// clear (it is not a secret) in the snapshot and every data dir.
	if hits, _ := scanFiles(t, []string{snap}, []needle{{"the description", []byte(marker)}}); len(hits) == 0 {
		t.Fatalf("the snapshot does not contain the key's description: the scan would find nothing")
	}
	for _, d := range dataDirs {
		if hits, _ := scanFiles(t, []string{d}, []needle{{"the description", []byte(marker)}}); len(hits) == 0 {
			t.Fatalf("%s does not contain the key's description anywhere: the scan would find nothing", d)
		}
	}
	var snapshotsInDataDirs int
	for _, d := range dataDirs {
		filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err == nil && strings.Contains(path, "snapshots") && e.Type().IsRegular() {
				snapshotsInDataDirs++
			}
			return nil
		})
	}
	t.Logf("%d needles; Raft snapshot files in data dirs: %d", len(needles), snapshotsInDataDirs)

	hits, scanned := scanFiles(t, append([]string{snap}, dataDirs...), needles)
	t.Logf("scanned %d files in the data dirs and the snapshot", scanned)
	if len(hits) > 0 {
		t.Errorf("unwrapped secrets on disk:\n%s", strings.Join(hits, "\n"))
	}
	hits, _ = scanFiles(t, logs, needles)
	if len(hits) > 0 {
		t.Errorf("secrets in the nodes' logs (stdout and stderr):\n%s", strings.Join(hits, "\n"))
	}
}
