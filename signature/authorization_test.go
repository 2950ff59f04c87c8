package signature

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const testSig = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Authorization
		wantErr error
	}{
		{
			name: "as the SDK sends it",
			in:   "ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=host;x-acs-action;x-acs-date,Signature=" + testSig,
			want: Authorization{AlgorithmV3, "AKID", []string{"host", "x-acs-action", "x-acs-date"}, testSig},
		},
		{
			name: "spaces after commas and around",
			in:   "  ACS3-HMAC-SHA256  Credential=AKID, SignedHeaders=host, Signature=" + testSig + " ",
			want: Authorization{AlgorithmV3, "AKID", []string{"host"}, testSig},
		},
		{
			name: "fields in another order, header names lower-cased",
			in:   "ACS3-HMAC-SHA256 Signature=" + strings.ToUpper(testSig) + ",SignedHeaders=Host;X-Acs-Date,Credential=AKID",
			want: Authorization{AlgorithmV3, "AKID", []string{"host", "x-acs-date"}, strings.ToUpper(testSig)},
		},
		{name: "empty", in: "", wantErr: ErrMissing},
		{name: "other scheme", in: "Bearer abc", wantErr: ErrUnsupported},
		{name: "ROA v2 style", in: "acs AKID:c2lnbmF0dXJl", wantErr: ErrUnsupported},
		{name: "SM3", in: "ACS3-HMAC-SM3 Credential=AKID,SignedHeaders=host,Signature=" + testSig, wantErr: ErrUnsupported},
		{name: "RSA", in: "ACS3-RSA-SHA256 Credential=AKID,SignedHeaders=host,Signature=" + testSig, wantErr: ErrUnsupported},
		{name: "algorithm only", in: "ACS3-HMAC-SHA256", wantErr: ErrMalformed},
		{name: "no Signature", in: "ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=host", wantErr: ErrMalformed},
		{name: "no Credential", in: "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "no SignedHeaders", in: "ACS3-HMAC-SHA256 Credential=AKID,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "empty Credential", in: "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "field without =", in: "ACS3-HMAC-SHA256 Credential,SignedHeaders=host,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "duplicate field", in: "ACS3-HMAC-SHA256 Credential=A,Credential=B,SignedHeaders=host,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "unknown field", in: "ACS3-HMAC-SHA256 Credential=A,Scope=x,SignedHeaders=host,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "short signature", in: "ACS3-HMAC-SHA256 Credential=A,SignedHeaders=host,Signature=abcd", wantErr: ErrMalformed},
		{name: "non-hex signature", in: "ACS3-HMAC-SHA256 Credential=A,SignedHeaders=host,Signature=" + strings.Repeat("g", 64), wantErr: ErrMalformed},
		{name: "empty header name", in: "ACS3-HMAC-SHA256 Credential=A,SignedHeaders=host;;x-acs-date,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "header name with space", in: "ACS3-HMAC-SHA256 Credential=A,SignedHeaders=host; x-acs-date,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "header named twice", in: "ACS3-HMAC-SHA256 Credential=A,SignedHeaders=host;HOST,Signature=" + testSig, wantErr: ErrMalformed},
		{name: "credential with control char", in: "ACS3-HMAC-SHA256 Credential=A\x01B,SignedHeaders=host,Signature=" + testSig, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.Algorithm != tt.want.Algorithm || got.AccessKeyID != tt.want.AccessKeyID ||
				!slices.Equal(got.SignedHeaders, tt.want.SignedHeaders) || got.Signature != tt.want.Signature {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseAuthorization: the parser never panics, every error wraps a
// sentinel, and whatever it accepts survives a String/Parse round trip.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=host;x-acs-date,Signature=" + testSig)
	f.Add("ACS3-HMAC-SHA256 Credential=a=b, SignedHeaders=Host ,Signature=" + testSig)
	f.Add("ACS3-HMAC-SM3 Credential=A,SignedHeaders=host,Signature=00")
	f.Add("acs AKID:sig")
	f.Add("")
	f.Add("ACS3-HMAC-SHA256 ,,,")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := ParseAuthorization(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrMissing) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if a.Algorithm != AlgorithmV3 || a.AccessKeyID == "" || len(a.SignedHeaders) == 0 || len(a.Signature) != 64 {
			t.Fatalf("accepted an incomplete header: %+v", a)
		}
		b, err := ParseAuthorization(a.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", a.String(), err)
		}
		if b.AccessKeyID != a.AccessKeyID || b.Signature != a.Signature || !slices.Equal(b.SignedHeaders, a.SignedHeaders) {
			t.Fatalf("round trip changed %+v into %+v", a, b)
		}
	})
}
