package jsonenc

import (
	"bytes"
	"encoding/json"
	"testing"
)

func encodingJSON(t testing.TB, s string, escapeHTML bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var samples = []string{"", "plain", `quote " backslash \`, "ctl \x00\x01\b\f\n\r\t\x1f", "<a href='x'>&amp;</a>",
	"ü ñ 漢字 😀", "bad \xff\xfe utf-8", "line\u2028para\u2029", "\x7f del"}

func TestAppendString_SameAsEncodingJSON(t *testing.T) {
	for _, html := range []bool{false, true} {
		for _, s := range samples {
			if got, want := AppendString(nil, s, html), encodingJSON(t, s, html); !bytes.Equal(got, want) {
				t.Errorf("AppendString(%q, html=%v) = %s, encoding/json %s", s, html, got, want)
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range samples {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, html bool) {
		if got, want := AppendString(nil, s, html), encodingJSON(t, s, html); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q, html=%v) = %s, encoding/json %s", s, html, got, want)
		}
	})
}
