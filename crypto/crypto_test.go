package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustRootKey(t testing.TB, fill byte) *RootKey {
	t.Helper()
	rk, err := NewRootKey(bytes.Repeat([]byte{fill}, RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return rk
}

func TestRootKeyFile_RoundTripAndPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "root.key")
	rk, err := GenerateRootKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("root key file mode = %v, want 0600", st.Mode().Perm())
	}
	again, err := LoadRootKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rk.CheckValue(), again.CheckValue()) {
		t.Fatal("reloaded root key has a different check value")
	}
	if _, err := GenerateRootKeyFile(path); err == nil {
		t.Fatal("GenerateRootKeyFile overwrote an existing key file")
	}
}

func TestLoadRootKeyFile_RejectsBadContent(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"not base64": "this is not base64!!",
		"too short":  base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"too long":   base64.StdEncoding.EncodeToString(make([]byte, 33)),
		"empty":      "",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadRootKeyFile(p)
			if !errors.Is(err, ErrBadRootKeyFile) {
				t.Fatalf("err = %v, want ErrBadRootKeyFile", err)
			}
		})
	}
	if _, err := LoadRootKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestWrap_BindsOwnerAndRootKey(t *testing.T) {
	rk := mustRootKey(t, 1)
	other := mustRootKey(t, 2)
	secret := []byte("0123456789abcdef0123456789abcdef")
	aad := MaterialAAD("key-1", "ver-1")
	blob, err := rk.Wrap(secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, secret) {
		t.Fatal("wrapped blob contains the plaintext")
	}
	got, err := rk.Unwrap(blob, aad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unwrap = %x, %v", got, err)
	}
	if _, err := rk.Unwrap(blob, MaterialAAD("key-2", "ver-1")); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("blob opened for another key: %v", err)
	}
	if _, err := other.Unwrap(blob, aad); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("blob opened under another root key: %v", err)
	}
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x80
		if _, err := rk.Unwrap(bad, aad); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	if bytes.Equal(rk.CheckValue(), other.CheckValue()) {
		t.Fatal("different root keys share a check value")
	}
}

const vectorVersion = "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"

func TestSealOpen_RoundTripAndContextBinding(t *testing.T) {
	material := bytes.Repeat([]byte{7}, 32)
	ctx := CanonicalContext(map[string]string{"tenant": "a", "purpose": "test"})
	blob, err := Seal(material, vectorVersion, []byte("hello"), ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseCiphertext(blob)
	if err != nil || h.VersionID != vectorVersion || h.Format != FormatGCMv1 {
		t.Fatalf("ParseCiphertext = %+v, %v", h, err)
	}
	pt, err := Open(material, blob, ctx)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	wrongCtx := CanonicalContext(map[string]string{"tenant": "b", "purpose": "test"})
	if _, err := Open(material, blob, wrongCtx); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("wrong context accepted: %v", err)
	}
	if _, err := Open(material, blob, nil); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("missing context accepted: %v", err)
	}
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x01
		if _, err := Open(material, bad, ctx); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	if _, err := Open(material, blob[:len(blob)-1], ctx); err == nil {
		t.Fatal("truncated blob accepted")
	}
	again, _ := Seal(material, vectorVersion, []byte("hello"), ctx)
	if bytes.Equal(again, blob) {
		t.Fatal("two encryptions of the same plaintext are identical: nonce reuse")
	}
}

// TestCiphertext_PublishedVector pins the format documented in
// docs/CIPHERTEXT.md: if this changes, old ciphertexts stop decrypting.
func TestCiphertext_PublishedVector(t *testing.T) {
	material, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	nonce, _ := hex.DecodeString("a0a1a2a3a4a5a6a7a8a9aaab")
	ctx := CanonicalContext(map[string]string{"purpose": "doc", "app": "raftkms"})
	if string(ctx) != `{"app":"raftkms","purpose":"doc"}` {
		t.Fatalf("canonical context = %s", ctx)
	}
	blob, err := sealWithNonce(material, vectorVersion, nonce, []byte("raftkms test vector"), ctx)
	if err != nil {
		t.Fatal(err)
	}
	const want = "AW8cKo47TU5fipsMHS4/SlugoaKjpKWmp6ipqquUeRpZLqZxnxYA9KcnDKW9BMMrvdHC2m7Dzpj2YeQ9E09KHQ=="
	if got := base64.StdEncoding.EncodeToString(blob); got != want {
		t.Fatalf("vector changed:\n got %s\nwant %s", got, want)
	}
	pt, err := Open(material, blob, ctx)
	if err != nil || string(pt) != "raftkms test vector" {
		t.Fatalf("Open(vector) = %q, %v", pt, err)
	}
}

func TestParseContext(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // canonical, or "ERR"
	}{
		{"empty", "", ""},
		{"empty object", "{}", ""},
		{"order independent", `{"b":"2","a":"1"}`, `{"a":"1","b":"2"}`},
		{"html not escaped", `{"k":"<&>"}`, `{"k":"<&>"}`},
		{"unicode", `{"ключ":"值"}`, `{"ключ":"值"}`},
		{"number value", `{"a":1}`, "ERR"},
		{"nested", `{"a":{"b":"c"}}`, "ERR"},
		{"array", `["a"]`, "ERR"},
		{"null", `null`, "ERR"},
		{"trailing", `{"a":"b"} {}`, "ERR"},
		{"not json", `a=b`, "ERR"},
		{"too long", `{"a":"` + strings.Repeat("x", MaxContextSize) + `"}`, "ERR"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseContext(c.in)
			if c.want == "ERR" {
				if !errors.Is(err, ErrInvalidContext) {
					t.Fatalf("err = %v, want ErrInvalidContext", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(CanonicalContext(m)); got != c.want {
				t.Fatalf("canonical = %s, want %s", got, c.want)
			}
		})
	}
}

func FuzzParseCiphertext(f *testing.F) {
	material := bytes.Repeat([]byte{9}, 32)
	// Deterministic: fuzz workers are separate processes that rebuild it.
	good, _ := sealWithNonce(material, vectorVersion, make([]byte, NonceSize), []byte("seed"), nil)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{FormatGCMv1})
	f.Add(bytes.Repeat([]byte{0xff}, MinCiphertextSize))
	f.Fuzz(func(t *testing.T, blob []byte) {
		h, err := ParseCiphertext(blob)
		if err != nil {
			if !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(blob) < MinCiphertextSize || h.Format != FormatGCMv1 {
			t.Fatalf("accepted malformed blob %x", blob)
		}
		if _, err := Open(material, blob, nil); err == nil && !bytes.Equal(blob, good) {
			t.Fatalf("forged blob opened: %x", blob)
		}
	})
}

func BenchmarkSeal64(b *testing.B) {
	material := bytes.Repeat([]byte{7}, 32)
	pt := bytes.Repeat([]byte{'x'}, 64)
	ctx := CanonicalContext(map[string]string{"app": "bench"})
	b.SetBytes(64)
	for i := 0; i < b.N; i++ {
		if _, err := Seal(material, vectorVersion, pt, ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen64(b *testing.B) {
	material := bytes.Repeat([]byte{7}, 32)
	ctx := CanonicalContext(map[string]string{"app": "bench"})
	blob, _ := Seal(material, vectorVersion, bytes.Repeat([]byte{'x'}, 64), ctx)
	b.SetBytes(64)
	for i := 0; i < b.N; i++ {
		if _, err := Open(material, blob, ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrapMaterial(b *testing.B) {
	rk := mustRootKey(b, 3)
	aad := MaterialAAD("key", "version")
	blob, _ := rk.Wrap(bytes.Repeat([]byte{1}, 32), aad)
	for i := 0; i < b.N; i++ {
		if _, err := rk.Unwrap(blob, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRootKeyDerive_IsPerLabelAndPerRootKey(t *testing.T) {
	a, _ := NewRootKey(bytes.Repeat([]byte{1}, RootKeySize))
	a2, _ := NewRootKey(bytes.Repeat([]byte{1}, RootKeySize))
	b, _ := NewRootKey(bytes.Repeat([]byte{2}, RootKeySize))
	x := a.Derive(LabelClusterAuth)
	if len(x) != 32 {
		t.Fatalf("derived key is %d bytes, want 32", len(x))
	}
	if !bytes.Equal(x, a2.Derive(LabelClusterAuth)) {
		t.Fatal("the same root key and label derived different keys")
	}
	if bytes.Equal(x, a.Derive(LabelSnapshotMAC)) {
		t.Fatal("two labels derived the same key")
	}
	if bytes.Equal(x, b.Derive(LabelClusterAuth)) {
		t.Fatal("two root keys derived the same key")
	}
	if bytes.Equal(x, bytes.Repeat([]byte{1}, RootKeySize)) {
		t.Fatal("the derived key is the root key")
	}
}
