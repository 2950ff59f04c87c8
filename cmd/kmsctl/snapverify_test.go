package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

func writeRootKey(t *testing.T, dir, name string) (string, *kcrypto.RootKey) {
	t.Helper()
	raw := make([]byte, kcrypto.RootKeySize)
	rand.Read(raw)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rk, err := kcrypto.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p, rk
}

func TestSnapshotVerify_Offline(t *testing.T) {
	dir := t.TempDir()
	keyFile, root := writeRootKey(t, dir, "root.key")
	otherFile, _ := writeRootKey(t, dir, "other.key")
	f := fsm.New(hclog.NewNullLogger(), fsm.WithSnapshotKey(root.Derive(kcrypto.LabelSnapshotMAC)))
	var buf bytes.Buffer
	if _, err := f.WriteSnapshotTo(&buf); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.snap")
	os.WriteFile(good, buf.Bytes(), 0o600)
	tampered := bytes.Clone(buf.Bytes())
	tampered[len(tampered)/2] ^= 1
	bad := filepath.Join(dir, "bad.snap")
	os.WriteFile(bad, tampered, 0o600)
	short := filepath.Join(dir, "short.snap")
	os.WriteFile(short, buf.Bytes()[:buf.Len()-5], 0o600)

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"intact", []string{good, "--root-key-file", keyFile}, 0, "intact (format 2"},
		{"another root key", []string{good, "--root-key-file", otherFile}, 1, "checksum mismatch"},
		{"altered", []string{bad, "--root-key-file", keyFile}, 1, "does not verify"},
		{"truncated", []string{short, "--root-key-file", keyFile}, 1, "does not verify"},
		{"no root key", []string{good}, 2, "--root-key-file"},
		{"missing file", []string{filepath.Join(dir, "nope"), "--root-key-file", keyFile}, 2, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(append([]string{"operator", "snapshot", "verify"}, tc.args...), &out, &errOut)
			if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.contains) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, tc.code, out.String(), errOut.String(), tc.contains)
			}
		})
	}
}
