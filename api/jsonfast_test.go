package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// appendFlatJSON writes byte for byte what json.Encoder (HTML escaping
// off) writes for the same map, on strings made of everything that JSON
// escapes: quotes, backslashes, control characters, HTML characters,
// invalid UTF-8, U+2028/U+2029, multi-byte runes.
func TestAppendFlatJSON_SameAsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	pieces := []string{"a", "Z", "0", `"`, `\`, "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "<", ">", "&",
		"\u2028", "\u2029", "é", "日本", "\xff", "\xe2\x80", "\xed\xa0\x80", "🔑", " ", "/", "+", "="}
	word := func() string {
		var b bytes.Buffer
		for n := rng.IntN(12); n > 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	flat := func(n int) map[string]any {
		m := map[string]any{}
		for ; n > 0; n-- {
			m[word()] = word()
		}
		return m
	}
	for i := 0; i < 5000; i++ {
		m := flat(rng.IntN(10))
		// Maps of strings one level down (KeyMetadata), up to a full
		// KeyMetadata's 22 members and more, and a nil one.
		for n := rng.IntN(3); n > 0; n-- {
			m[word()] = flat(rng.IntN(30))
		}
		if rng.IntN(20) == 0 {
			m[word()] = map[string]any(nil)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		got, ok := appendFlatJSON(nil, m)
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("case %d (ok %v):\n got %q\nwant %q", i, ok, got, want.Bytes())
		}
	}
	many := func(n int) map[string]any {
		m := map[string]any{}
		for i := 0; i < n; i++ {
			m[strconv.Itoa(i)] = "v"
		}
		return m
	}
	if _, ok := appendFlatJSON(nil, map[string]any{"m": many(32)}); !ok {
		t.Fatal("a nested map of 32 strings must be written flat")
	}
	for _, m := range []map[string]any{
		{"a": "x", "n": 1},
		{"a": "x", "m": map[string]any{"n": 1}},
		{"a": "x", "m": map[string]any{"deeper": map[string]any{"b": "y"}}},
		{"a": "x", "m": map[string]any{"nil": nil}},
		{"m": many(33)},
	} {
		prefix := []byte("kept")
		if got, ok := appendFlatJSON(prefix, m); ok || string(got) != "kept" {
			t.Fatalf("%v: ok %v, wrote %q: it must go to encoding/json and leave dst as it was", m, ok, got)
		}
	}
}

// RequestIds are upper-case version-4 UUIDs, all different.
func TestNewRequestID_UpperCaseUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := newRequestID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || strings.ToUpper(u.String()) != id || seen[id] {
			t.Fatalf("request id %q: %v (version %d, variant %v, seen %v)", id, err, u.Version(), u.Variant(), seen[id])
		}
		seen[id] = true
	}
}

// A flatAnswer writes byte for byte what appendFlatJSON (and so
// encoding/json) writes for the map of the same members, Base64 members
// included, a member set twice keeping its last value.
func TestFlatAnswer_SameAsTheMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	pieces := []string{"a", "Z", `"`, `\`, "\n", "<", "&", "\u2028", "é", "\xff", "+", "/", "="}
	word := func() string {
		var b strings.Builder
		for n := rng.IntN(8); n > 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	names := []string{"CiphertextBlob", "KeyId", "KeyVersionId", "Plaintext", "RequestId", "ExportedDataKey", "a", "Z"}
	for i := 0; i < 3000; i++ {
		var a flatAnswer
		m := map[string]any{}
		for n := rng.IntN(10); n > 0; n-- {
			name := names[rng.IntN(len(names))]
			if rng.IntN(2) == 0 {
				raw := []byte(word())
				a.b64(name, raw)
				m[name] = base64.StdEncoding.EncodeToString(raw)
			} else {
				v := word()
				a.str(name, v)
				m[name] = v
			}
		}
		want, ok := appendFlatJSON(nil, m)
		if !ok {
			t.Fatal("map not flat")
		}
		if got := a.appendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %q\nwant %q", i, got, want)
		}
		if !maps.Equal(a.asMap(), m) {
			t.Fatalf("case %d: asMap %v, want %v", i, a.asMap(), m)
		}
	}
}
