package signature

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkParseVerifyV3 is the server's work on one SDK-shaped V3 request
// (the headers the official SDK sends, a flat query): parse, then verify.
// One request, so its memory stays in cache: the CPU of the code alone.
//
//	go test -run '^$' -bench ParseVerifyV3 -count 6 ./signature/
func BenchmarkParseVerifyV3(b *testing.B) {
	r, _ := http.NewRequest(http.MethodPost, "http://kms.example:9700/?KeyId=5b1e0ac4-5c38-4c2b-9f1a-8c8a4e8d1f2b&Plaintext=aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ%3D", nil)
	r.Header.Set("x-acs-action", "Encrypt")
	r.Header.Set("x-acs-version", "2016-01-20")
	r.Header.Set("x-acs-credentials-provider", "static_ak")
	r.Header.Set("User-Agent", "AlibabaCloud (linux; amd64) Go/go1.22 Core/1.0 TeaDSL/2")
	r.Header.Set("Accept", "application/json")
	c := Credentials{AccessKeyID: "LTAI5tBenchAccessKey0001", AccessKeySecret: "benchSecretbenchSecretbenchSe"}
	if err := SignV3(r, EmptyPayloadHash, c, time.Now(), NewNonce()); err != nil {
		b.Fatal(err)
	}
	flat := map[string]string{"KeyId": "5b1e0ac4-5c38-4c2b-9f1a-8c8a4e8d1f2b", "Plaintext": "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="}
	var dst Signed
	parse := func() (*Signed, error) { return ParseFlatQueriedInto(&dst, r, nil, flat) }
	b.ReportAllocs()
	for b.Loop() {
		s, err := parse()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Verify(c.AccessKeySecret); err != nil {
			b.Fatal(err)
		}
	}
}
