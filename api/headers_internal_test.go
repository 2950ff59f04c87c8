package api

import (
	"net/http"
	"strings"
	"testing"
)

// headerGet is Header.Get for the names the pipeline reads: each is spelled
// canonically, so indexing the map finds what Get finds, however the
// client spelled the header.
func TestHeaderGet_SameAsGet(t *testing.T) {
	for _, name := range []string{"X-Acs-Action", "X-Kms-Read-Consistency", "X-Kms-Min-Index"} {
		if http.CanonicalHeaderKey(name) != name {
			t.Fatalf("%q is not canonical", name)
		}
		for _, spelling := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			h := http.Header{}
			if headerGet(h, name) != "" {
				t.Fatalf("%s: a value in an empty header", name)
			}
			h.Add(spelling, "v1")
			h.Add(spelling, "v2")
			if got, want := headerGet(h, name), h.Get(name); got != want || got != "v1" {
				t.Fatalf("%s sent as %s: %q, want %q", name, spelling, got, want)
			}
		}
	}
	h := http.Header{}
	h["Content-Type"] = jsonContentType
	if got := h.Get("content-type"); got != "application/json;charset=utf-8" {
		t.Fatalf("Content-Type %q", got)
	}
}
