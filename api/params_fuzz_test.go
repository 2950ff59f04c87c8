package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzDecodeParams feeds the request decoder arbitrary query strings,
// content types and bodies. It must never panic; every error it returns is
// a client error that classify maps to 400 ParseRequestParameterException
// (never the internal flag); and what it returns is the query overlaid with
// the body.
func FuzzDecodeParams(f *testing.F) {
	for _, s := range []struct{ method, query, ct, body string }{
		{"POST", "Action=Encrypt&KeyId=alias%2Fk&Plaintext=aGk%3D&EncryptionContext=%7B%22a%22%3A%22b%22%7D", "", ""},
		{"POST", "Description=sdk+test", "", ""},
		{"POST", "KeyId=from-query", "application/x-www-form-urlencoded", "Action=Encrypt&KeyId=from-body"},
		{"POST", "KeyId=q", "application/json", `{"KeyId":"b","EncryptionContext":{"a":"b"},"NumberOfBytes":32,"DryRun":true,"Tags":[{"TagKey":"k"}],"X":null}`},
		{"POST", "KeyId=q", "application/json; charset=utf-8", `{"KeyId":null}`},
		{"POST", "", "application/json", `null`},
		{"POST", "", "application/json", `[1,2]`},
		{"POST", "", "application/json", `{"a":"\ud800","a":"second"}`},
		{"POST", "a=%zz", "", ""},
		{"POST", "a=1;b=2", "", ""},
		{"GET", "a=1&a=2", "", " \r\n\t"},
		{"POST", "", "text/plain", "x"},
		{"POST", "", "", "Action=Encrypt"},
		{"POST", "", "application/x-www-form-urlencoded", "%"},
		{"POST", "", "multipart/form-data; boundary=x", "--x--"},
		{"POST", "", "application/x-www-form-urlencoded; charset", "a=b"},
		{"PUT", "", "APPLICATION/JSON", `{"A":"b"}`},
	} {
		f.Add(s.method, s.query, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, rawQuery, contentType string, body []byte) {
		r := &http.Request{Method: method, URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}}
		if contentType != "" {
			r.Header["Content-Type"] = []string{contentType}
		}
		p, err := decodeParams(r, body)
		if err != nil {
			if p != nil {
				t.Errorf("parameters returned with the error %v", err)
			}
			e, internal := classify(err)
			if internal || e.status != http.StatusBadRequest || e.code != "ParseRequestParameterException" {
				t.Fatalf("decode error %v classified as %d %s (internal %v), want 400 ParseRequestParameterException", err, e.status, e.code, internal)
			}
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("decode error %v does not wrap errBadRequest", err)
			}
			return
		}

		// The body's parameters, as the decoder should read them.
		fromBody := map[string]*string{} // nil value: a JSON null, which leaves the query's value
		if len(bytes.TrimSpace(body)) > 0 {
			ct, _, _ := mime.ParseMediaType(contentType)
			switch ct {
			case "application/x-www-form-urlencoded":
				form, err := url.ParseQuery(string(body))
				if err != nil {
					t.Fatalf("form body %q accepted but does not parse: %v", body, err)
				}
				for k, v := range form {
					fromBody[k] = &v[0]
				}
			case "application/json":
				var m map[string]json.RawMessage
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatalf("JSON body %q accepted but does not parse: %v", body, err)
				}
				for k, raw := range m {
					var s string
					switch {
					case json.Unmarshal(raw, &s) == nil:
						fromBody[k] = &s
					case string(raw) == "null":
						fromBody[k] = nil
					default:
						text := string(raw)
						fromBody[k] = &text
					}
				}
			default:
				t.Fatalf("body %q with Content-Type %q accepted", body, contentType)
			}
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatalf("query %q accepted but does not parse: %v", rawQuery, err)
		}
		want := map[string]string{}
		for k, v := range q {
			want[k] = v[0]
		}
		for k, v := range fromBody {
			if v != nil {
				want[k] = *v
			}
		}
		if len(p) != len(want) {
			t.Fatalf("decoded %d parameters %q, want %d %q", len(p), p, len(want), want)
		}
		for k, v := range want {
			if got, ok := p[k]; !ok || got != v {
				t.Fatalf("parameter %q = %q (present %v), want %q", k, got, ok, v)
			}
		}
	})
}

// FuzzParseFlatQuery: whenever parseFlatQuery decodes a query, url.ParseQuery
// decodes it without error to one value per name, the same values; and
// when url.ParseQuery gives that, parseFlatQuery does not refuse it (short
// queries).
func FuzzParseFlatQuery(f *testing.F) {
	for _, q := range []string{"", "a=1", "a=1&b=2", "a=1&a=2", "a=%zz", "%zz=1", "a=1;b=2", "&&a&=x&b=", "K+e%79=v+a%2Fl%3D",
		"Action=Encrypt&KeyId=alias%2Fk&Plaintext=aGk%3D", "a", "=", "a==b"} {
		f.Add(q)
	}
	reused := params{"stale": "x"}
	f.Fuzz(func(t *testing.T, q string) {
		p, ok := parseFlatQuery(q)
		// The same into a map the pipeline reuses (emptied first).
		clear(reused)
		if p2, ok2 := parseFlatQueryInto(reused, q); ok2 != ok || (ok && !maps.Equal(p, p2)) {
			t.Fatalf("%q: into a reused map %v (%v), into a new one %v (%v)", q, p2, ok2, p, ok)
		}
		vs, err := url.ParseQuery(q)
		single := err == nil
		for _, v := range vs {
			if len(v) != 1 {
				single = false
			}
		}
		if !ok {
			if single && strings.Count(q, "&") < flatQueryMax {
				t.Fatalf("%q: refused, but url.ParseQuery gives %v", q, vs)
			}
			return
		}
		if !single || len(p) != len(vs) {
			t.Fatalf("%q: decoded %v, url.ParseQuery %v (%v)", q, p, vs, err)
		}
		for k, v := range vs {
			if p[k] != v[0] {
				t.Fatalf("%q: %q=%q, url.ParseQuery %q", q, k, p[k], v[0])
			}
		}
	})
}

// FuzzQueryUnescape: queryUnescape is url.QueryUnescape, the result and
// the error (its text too) alike.
func FuzzQueryUnescape(f *testing.F) {
	for _, s := range []string{"", "abc", "a+b", "%41", "%4", "%", "%%", "%zz", "%4g", "a%2Fb%3D%3d", "aGVsbG8%2B%2Fd29ybGQ%3D",
		"+", "++%20+", "%E2%82%AC", "%ff%00", "abc%", "abc%4", "x%41y%42z+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := queryUnescape(s)
		want, werr := url.QueryUnescape(s)
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("%q: error %v, url.QueryUnescape's %v", s, err, werr)
		}
		if got != want {
			t.Fatalf("%q: %q, url.QueryUnescape %q", s, got, want)
		}
	})
}

// BenchmarkQueryUnescape: a base64 value as the SDKs escape it.
//
//	go test -run '^$' -bench QueryUnescape ./api/
func BenchmarkQueryUnescape(b *testing.B) {
	const v = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ%3D%2B%2Fabc%3D"
	for _, fn := range []struct {
		name string
		f    func(string) (string, error)
	}{{"url", url.QueryUnescape}, {"queryUnescape", queryUnescape}} {
		b.Run(fn.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fn.f(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
