package signature

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// ParseUnreadBody verifies a V3 signature without the body: the signed
// x-acs-content-sha256 is what the caller checks the body against later.
// Anything else is refused before a byte of the body is needed.
func TestParseUnreadBody_VerifiesTheHeadersOnly(t *testing.T) {
	creds := Credentials{AccessKeyID: "LTAIexample", AccessKeySecret: "secret"}
	claimed := HashPayload([]byte("a large snapshot"))
	signed := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://node:9700/v1/operator/snapshot", nil)
		r.Header.Set("Content-Type", "application/octet-stream")
		if err := SignV3(r, claimed, creds, time.Now(), NewNonce()); err != nil {
			t.Fatal(err)
		}
		return r
	}

	s, err := ParseUnreadBody(signed())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(creds.AccessKeySecret); err != nil {
		t.Fatalf("Verify without the body: %v", err)
	}
	if s.V3.PayloadHash != claimed {
		t.Fatalf("PayloadHash %q, want the signed %q", s.V3.PayloadHash, claimed)
	}
	if err := s.Verify("wrong"); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("wrong secret: %v", err)
	}

	swapped := signed()
	swapped.Header.Set(HeaderContentSHA256, HashPayload([]byte("another snapshot")))
	s, err = ParseUnreadBody(swapped)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(creds.AccessKeySecret); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("a claimed hash changed after signing: %v", err)
	}

	unsigned, _ := http.NewRequest(http.MethodPost, "http://node:9700/v1/operator/snapshot", nil)
	if _, err := ParseUnreadBody(unsigned); !errors.Is(err, ErrNotSigned) {
		t.Fatalf("unsigned: %v", err)
	}
	v1, _ := http.NewRequest(http.MethodPost, "http://node:9700/v1/operator/snapshot", nil)
	q := url.Values{}
	SignV1(http.MethodPost, q, creds, time.Now(), NewNonce())
	v1.URL.RawQuery = q.Encode()
	if _, err := ParseUnreadBody(v1); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("V1: %v", err)
	}
}
