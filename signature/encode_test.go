package signature

import (
	"net/url"
	"testing"
)

func TestPercentEncode(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"unreserved kept", "AZaz09-_.~", "AZaz09-_.~"},
		{"space is %20 not +", "a b", "a%20b"},
		{"plus is encoded", "a+b", "a%2Bb"},
		{"star is %2A", "a*b", "a%2Ab"},
		{"slash and equals", "a/b=c", "a%2Fb%3Dc"},
		{"percent", "100%", "100%25"},
		{"utf-8 bytes upper hex", "é中", "%C3%A9%E4%B8%AD"},
		{"reserved set", "!#$&'()*+,/:;=?@[]", "%21%23%24%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D"},
		{"control and DEL", "\x00\n\x7f", "%00%0A%7F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PercentEncode(tt.in); got != tt.want {
				t.Errorf("PercentEncode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		name string
		raw  string // as it arrives on the wire
		want string
	}{
		{"empty", "", ""},
		{"sorted by name", "b=2&a=1&C=3", "C=3&a=1&b=2"},
		{"plus on the wire is a space", "Description=sdk+test", "Description=sdk%20test"},
		{"%2B on the wire is a plus", "P=a%2Bb", "P=a%2Bb"},
		{"star and tilde", "P=%2A~", "P=%2A~"},
		{"empty value keeps =", "flag=&a=1", "a=1&flag="},
		{"bare name", "flag", "flag="},
		{"repeated name sorted by value", "k=b&k=a", "k=a&k=b"},
		{"json map parameter", "EncryptionContext=%7B%22k%22%3A%22v+w%22%7D", "EncryptionContext=%7B%22k%22%3A%22v%20w%22%7D"},
		{"dotted repeat-list names", "Filters.1.Key=KeyState&Filters.1.Values.1=Enabled", "Filters.1.Key=KeyState&Filters.1.Values.1=Enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := CanonicalQuery(q); got != tt.want {
				t.Errorf("CanonicalQuery(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestCanonicalURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/v1/operator/snapshot", "/v1/operator/snapshot"},
		{"/a b/c*d", "/a%20b/c%2Ad"},
		{"/x+y/~z", "/x%2By/~z"},
	}
	for _, tt := range tests {
		if got := CanonicalURI(tt.in); got != tt.want {
			t.Errorf("CanonicalURI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHashPayload_Empty(t *testing.T) {
	if got := HashPayload(nil); got != EmptyPayloadHash {
		t.Errorf("HashPayload(nil) = %s, want %s", got, EmptyPayloadHash)
	}
}
