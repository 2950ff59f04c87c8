//go:build cgo

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/hsm/hsmtest"
)

func TestParseFlags_HSM(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root.key")
	base := []string{"--data-dir", t.TempDir()}
	hsmFlags := []string{"--hsm-module", "/m.so", "--hsm-token-label", "t", "--hsm-pin-file", "p", "--hsm-domain", "d"}
	for _, tc := range []struct {
		name string
		args []string
		err  string // "" = accepted
	}{
		{"all four", append(append([]string{"--root-key-file", root}, base...), hsmFlags...), ""},
		{"missing domain", append(append([]string{"--root-key-file", root}, base...), hsmFlags[:6]...), "missing --hsm-domain"},
		{"seal pkcs11 without a root key file", append(append([]string{"--seal", "pkcs11"}, base...), hsmFlags...), ""},
		{"seal pkcs11 and a root key file", append(append([]string{"--seal", "pkcs11", "--root-key-file", root}, base...), hsmFlags...), "does not read --root-key-file"},
		{"seal pkcs11 without an HSM", append([]string{"--seal", "pkcs11"}, base...), "an HSM needs"},
		{"unknown seal", append([]string{"--seal", "shamir", "--root-key-file", root}, base...), "--seal must be"},
		{"sealed file without pkcs11", append([]string{"--root-key-file", root, "--sealed-root-key-file", "x"}, base...), "needs --seal pkcs11"},
		{"no root key at all", base, "--root-key-file is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if tc.err == "" && (c.hsm.tokenConfig() == nil || c.hsm.tokenConfig().TokenLabel != "t") {
				t.Fatalf("token config = %+v", c.hsm.tokenConfig())
			}
		})
	}
}

// The sealed root key: made through one token, opened through another of
// the same domain, refused by a token of another domain and when damaged;
// and what --seal pkcs11 does on a node's first and later starts.
func TestSealedRootKey(t *testing.T) {
	soft := hsmtest.New(t, "s1", "s2", "s3")
	pin := soft.PinFile(t)
	key, other := make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(other)
	keyFile, otherFile := hsmtest.DomainKeyFile(t, key), hsmtest.DomainKeyFile(t, other)
	for tok, file := range map[string]string{"s1": keyFile, "s2": keyFile, "s3": otherFile} {
		var out bytes.Buffer
		if code := runHSMCommand([]string{"enroll", "--hsm-module", soft.Module, "--hsm-token-label", tok,
			"--hsm-pin-file", pin, "--domain", "seal", "--domain-key-file", file}, &out, io.Discard); code != 0 {
			t.Fatalf("enroll %s: exit %d", tok, code)
		}
		if !strings.Contains(out.String(), `domain "seal" enrolled`) {
			t.Fatalf("enroll printed %q", out.String())
		}
	}

	// kmsd hsm seal-root with an existing root key, through s1.
	dir := t.TempDir()
	raw := make([]byte, 32)
	rand.Read(raw)
	rootFile := filepath.Join(dir, "root.key")
	os.WriteFile(rootFile, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600)
	sealedFile := filepath.Join(dir, "root.sealed")
	seal := []string{"seal-root", "--hsm-module", soft.Module, "--hsm-token-label", "s1", "--hsm-pin-file", pin, "--domain", "seal",
		"--root-key-file", rootFile, "--out", sealedFile}
	var out, errOut bytes.Buffer
	if code := runHSMCommand(seal, &out, &errOut); code != 0 {
		t.Fatalf("seal-root: exit %d: %s", code, errOut.String())
	}
	if code := runHSMCommand(seal, io.Discard, io.Discard); code == 0 {
		t.Fatal("seal-root overwrote its output")
	}
	data, _ := os.ReadFile(sealedFile)
	if bytes.Contains(data, raw) || strings.Contains(string(data), base64.StdEncoding.EncodeToString(raw)) {
		t.Fatal("the sealed file holds the root key in the clear")
	}
	if fi, _ := os.Stat(sealedFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("sealed file mode %v", fi.Mode())
	}
	want, _ := kcrypto.NewRootKey(raw)

	start := func(token, path string) (*kcrypto.RootKey, error) {
		cfg := config{dataDir: dir, hsm: hsmConfig{module: soft.Module, tokenLabel: token, pinFile: pin, domain: "seal", seal: sealPKCS11, sealedFile: path}}
		return loadSealedRootKey(cfg, hclog.NewNullLogger())
	}
	for _, tok := range []string{"s1", "s2"} {
		got, err := start(tok, sealedFile)
		if err != nil {
			t.Fatalf("unseal through %s: %v", tok, err)
		}
		if !bytes.Equal(got.CheckValue(), want.CheckValue()) {
			t.Fatalf("unsealed through %s into another key", tok)
		}
	}
	if _, err := start("s3", sealedFile); err == nil || !strings.Contains(err.Error(), "cannot open the sealed root key") {
		t.Fatalf("a token of another domain: %v", err)
	}
	var s sealedRootKey
	json.Unmarshal(data, &s)
	s.Ciphertext[0] ^= 1
	damaged := filepath.Join(dir, "damaged.sealed")
	if err := writeSealed(damaged, &s); err != nil {
		t.Fatal(err)
	}
	if _, err := start("s1", damaged); err == nil {
		t.Fatal("a damaged sealed file opened")
	}

	// First start of a node with --seal pkcs11 and no file: a new root key,
	// sealed; the next start (through the domain's other token) opens it.
	fresh := filepath.Join(t.TempDir(), "root-key.sealed")
	first, err := start("s1", fresh)
	if err != nil {
		t.Fatal(err)
	}
	again, err := start("s2", fresh)
	if err != nil || !bytes.Equal(first.CheckValue(), again.CheckValue()) {
		t.Fatalf("restart opened %v, %v", again, err)
	}
}
