package client

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeCredentials(t *testing.T, c Credentials) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCredentials_JSONNames(t *testing.T) {
	b, err := json.Marshal(Credentials{AccessKeyId: "id", AccessKeySecret: "s", Endpoint: "http://e", InstanceId: "i", AccountId: "1"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"AccessKeyId":"id","AccessKeySecret":"s","Endpoint":"http://e","InstanceId":"i","AccountId":"1"}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestCredentials_PrintingHidesSecret(t *testing.T) {
	c := Credentials{AccessKeyId: "id", AccessKeySecret: "TOPSECRET"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, c); strings.Contains(s, "TOPSECRET") {
			t.Errorf("%s prints the secret: %s", verb, s)
		}
	}
}

func TestLoadCredentialsFile(t *testing.T) {
	p := writeCredentials(t, Credentials{AccessKeyId: "id", AccessKeySecret: "s", Endpoint: "http://e:1"})
	c, err := LoadCredentialsFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyId != "id" || c.AccessKeySecret != "s" || c.Endpoint != "http://e:1" {
		t.Errorf("loaded %+v", c)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("AccessKeyId=id"), 0o600)
	if _, err := LoadCredentialsFile(bad); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("non-JSON file: err = %v", err)
	}
	if _, err := LoadCredentialsFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestResolveCredentials(t *testing.T) {
	full := Credentials{AccessKeyId: "file-id", AccessKeySecret: "file-secret", Endpoint: "http://file:9700", AccountId: "123"}
	noEndpoint := Credentials{AccessKeyId: "file-id", AccessKeySecret: "file-secret"}
	tests := []struct {
		name         string
		flagFile     *Credentials // written to a temp file and passed as --credentials
		envFile      *Credentials // written to a temp file and named by KMS_CREDENTIALS
		env          map[string]string
		flagEndpoint string
		want         Credentials
		wantErr      string // substring of the error that tells what to do
	}{
		{name: "flag file", flagFile: &full, want: full},
		{name: "env file", envFile: &full, want: full},
		{name: "flag file wins over env file", flagFile: &full, envFile: &Credentials{AccessKeyId: "other", AccessKeySecret: "o", Endpoint: "http://o"}, want: full},
		{name: "env vars only", env: map[string]string{EnvAccessKeyID: "env-id", EnvAccessKeySecret: "env-secret", EnvEndpoint: "http://env:1"},
			want: Credentials{AccessKeyId: "env-id", AccessKeySecret: "env-secret", Endpoint: "http://env:1"}},
		{name: "env vars override file", flagFile: &full, env: map[string]string{EnvAccessKeyID: "env-id", EnvEndpoint: "http://env:1"},
			want: Credentials{AccessKeyId: "env-id", AccessKeySecret: "file-secret", Endpoint: "http://env:1", AccountId: "123"}},
		{name: "env var fills endpoint missing from file", flagFile: &noEndpoint, env: map[string]string{EnvEndpoint: "http://env:1"},
			want: Credentials{AccessKeyId: "file-id", AccessKeySecret: "file-secret", Endpoint: "http://env:1"}},
		{name: "flag endpoint overrides all", flagFile: &full, env: map[string]string{EnvEndpoint: "http://env:1"}, flagEndpoint: "http://flag:2",
			want: Credentials{AccessKeyId: "file-id", AccessKeySecret: "file-secret", Endpoint: "http://flag:2", AccountId: "123"}},
		{name: "nothing at all", wantErr: "pass --credentials FILE or set KMS_ACCESS_KEY_ID/KMS_ACCESS_KEY_SECRET"},
		{name: "id without secret", env: map[string]string{EnvAccessKeyID: "id", EnvEndpoint: "http://e"}, wantErr: "set KMS_ACCESS_KEY_SECRET"},
		{name: "secret without id", env: map[string]string{EnvAccessKeySecret: "s", EnvEndpoint: "http://e"}, wantErr: "set KMS_ACCESS_KEY_ID"},
		{name: "no endpoint", flagFile: &noEndpoint, wantErr: "pass --endpoint URL, set KMS_ENDPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{EnvCredentials, EnvEndpoint, EnvAccessKeyID, EnvAccessKeySecret} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			flagFile := ""
			if tt.flagFile != nil {
				flagFile = writeCredentials(t, *tt.flagFile)
			}
			if tt.envFile != nil {
				t.Setenv(EnvCredentials, writeCredentials(t, *tt.envFile))
			}
			got, err := ResolveCredentials(flagFile, tt.flagEndpoint)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestResolveCredentials_UnreadableFileNamesItsSource(t *testing.T) {
	for _, k := range []string{EnvCredentials, EnvEndpoint, EnvAccessKeyID, EnvAccessKeySecret} {
		t.Setenv(k, "")
	}
	missing := filepath.Join(t.TempDir(), "nope.json")
	if _, err := ResolveCredentials(missing, ""); err == nil || !strings.Contains(err.Error(), "--credentials") {
		t.Errorf("flag file: err = %v", err)
	}
	t.Setenv(EnvCredentials, missing)
	if _, err := ResolveCredentials("", ""); err == nil || !strings.Contains(err.Error(), EnvCredentials) {
		t.Errorf("env file: err = %v", err)
	}
}
