package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"testing"
)

// FuzzDecodeConsoleParams feeds the console's parameter decoder arbitrary
// queries, content types and bodies. It must never panic; an error is a
// client's 400 ParseRequestParameterException; the query string never adds
// a parameter; Action and CsrfToken are never parameters; and every other
// string member of a JSON object (or form field) arrives unchanged.
func FuzzDecodeConsoleParams(f *testing.F) {
	for _, s := range []struct{ query, ct, body string }{
		{"", "application/json", `{"KeySpec":"Aliyun_AES_256","KeyUsage":"ENCRYPT/DECRYPT","DKMSInstanceId":"kst-1","Tags":"[{\"TagKey\":\"k\",\"TagValue\":\"v\"}]"}`},
		{"KeyId=from-query", "application/json", `{"Description":"x"}`},
		{"", "application/json", `{"Action":"DeleteKey","CsrfToken":"t","KeyId":"k"}`},
		{"", "application/json; charset=utf-8", `{"EncryptionContext":{"a":"b"},"NumberOfBytes":32,"X":null}`},
		{"", "application/x-www-form-urlencoded", "CsrfToken=abc&Action=Init"},
		{"", "application/json", `[1]`},
		{"", "application/json", `{"a":"\ud800"}`},
		{"", "text/plain", "x"},
		{"", "", ""},
		{"", "application/json", `{"<script>":"</script>"}`},
	} {
		f.Add(s.query, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, rawQuery, contentType string, body []byte) {
		r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/console/api/action/X", RawQuery: rawQuery}, Header: http.Header{}}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		p, err := decodeConsoleParams(r, body)
		if err != nil {
			e, internal := classify(err)
			if internal || e.status != http.StatusBadRequest || !errors.Is(err, errBadRequest) {
				t.Fatalf("error %v classified as %d %s (internal %v)", err, e.status, e.code, internal)
			}
			return
		}
		if r.URL.RawQuery != rawQuery {
			t.Fatal("the decoder changed the caller's request")
		}
		if _, ok := p["Action"]; ok {
			t.Fatal("Action came from the body")
		}
		if _, ok := p[consoleCSRFFormField]; ok {
			t.Fatal("the CSRF token became a parameter")
		}
		want := map[string]string{}
		if len(bytes.TrimSpace(body)) > 0 {
			ct, _, _ := mime.ParseMediaType(contentType)
			switch ct {
			case "application/json":
				var m map[string]json.RawMessage
				if json.Unmarshal(body, &m) != nil {
					t.Fatalf("JSON %q accepted but does not parse", body)
				}
				for k, raw := range m {
					var s string
					if json.Unmarshal(raw, &s) == nil {
						want[k] = s
					} else if string(raw) != "null" {
						want[k] = string(raw)
					}
				}
			case "application/x-www-form-urlencoded":
				form, _ := url.ParseQuery(string(body))
				for k, v := range form {
					want[k] = v[0]
				}
			}
		}
		delete(want, "Action")
		delete(want, consoleCSRFFormField)
		if len(p) != len(want) {
			t.Fatalf("parameters %q, want %q (query %q must add none)", p, want, rawQuery)
		}
		for k, v := range want {
			if p[k] != v {
				t.Fatalf("%s = %q, want %q", k, p[k], v)
			}
		}
	})
}
