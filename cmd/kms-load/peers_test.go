package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Every refusal of a peer's flags is a usage error (exit 2) naming the
// problem, before any request.
func TestRun_RefusesBadPeerFlagsBeforeAnyRequest(t *testing.T) {
	t.Setenv("BAO_TOKEN", "")
	t.Setenv("VAULT_TOKEN", "")
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "s.bench\n")
	creds := writeFile(t, dir, "creds.json", `{"AccessKeyId":"LTAIbench","AccessKeySecret":"secret","Endpoint":"http://127.0.0.1:1"}`)
	bao := []string{"--api", "openbao", "--endpoints", "http://127.0.0.1:1", "--duration", "1ms"}
	bao = bao[:len(bao):len(bao)]
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no endpoint", []string{"--api", "local-kms"}, "needs --endpoints"},
		{"endpoint without a scheme", []string{"--api", "local-kms", "--endpoints", "127.0.0.1:1"}, "want a URL"},
		{"unsupported action", []string{"--api", "local-kms", "--endpoints", "http://127.0.0.1:1", "--action", "DescribeKey"}, "DescribeKey"},
		{"no token", bao, "needs a token"},
		{"missing token file", append(bao, "--token-file", filepath.Join(dir, "nope")), "--token-file"},
		{"token file for local-kms", []string{"--api", "local-kms", "--endpoints", "http://127.0.0.1:1", "--token-file", token}, "--token-file is for --api openbao"},
		{"token file for the OpenAPI", []string{"--credentials", creds, "--token-file", token}, "--token-file is for --api openbao"},
		{"credentials for a peer", append(bao, "--token-file", token, "--credentials", creds), "--credentials"},
		{"v1 signature for a peer", append(bao, "--token-file", token, "--signature", "v1"), "--signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			if code := run(tc.args, &out, &errs); code != 2 || out.Len() != 0 || !strings.Contains(errs.String(), tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 mentioning %q", code, out.String(), errs.String(), tc.want)
			}
		})
	}
}

// peerServer answers the requests of one peer's protocol the way the peer
// does, recording each (method and path or operation) and refusing any that
// is not shaped as the peer expects.
type peerServer struct {
	api   string
	mu    sync.Mutex
	seen  map[string]int
	names map[string]bool // the OpenBao key names made
	bad   []string
}

func (s *peerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	ok := r.Method == http.MethodPost && json.Unmarshal(body, &in) == nil
	op := r.URL.Path
	if s.api == apiOpenBao {
		ok = ok && r.Header.Get("X-Vault-Token") == "s.bench"
	} else {
		op = strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
		ok = ok && r.URL.Path == "/" && r.Header.Get("Content-Type") == "application/x-amz-json-1.1"
	}
	// A plaintext is the base64 of 64 bytes.
	if p, has := in["plaintext"]; has {
		b, err := base64.StdEncoding.DecodeString(p.(string))
		ok = ok && err == nil && len(b) == 64
	}
	if p, has := in["Plaintext"]; has {
		b, err := base64.StdEncoding.DecodeString(p.(string))
		ok = ok && err == nil && len(b) == 64
	}
	if strings.Contains(op, "decrypt") || op == "Decrypt" {
		ok = ok && (in["ciphertext"] == "vault:v1:ct" || in["CiphertextBlob"] == "Y3Q=")
	}
	s.mu.Lock()
	if i := strings.LastIndex(op, "/kms-load-"); i >= 0 {
		if strings.HasPrefix(op, "/v1/transit/keys/") {
			s.names[op] = true
		}
		op = op[:i] + "/KEY" // the run's random key name
	}
	s.seen[op]++
	if !ok {
		s.bad = append(s.bad, op+" "+string(body))
	}
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"ValidationException"}`)
		return
	}
	switch op {
	case "/v1/transit/keys/KEY":
		w.WriteHeader(http.StatusNoContent)
	case "/v1/transit/encrypt/KEY":
		io.WriteString(w, `{"data":{"ciphertext":"vault:v1:ct"}}`)
	case "CreateKey":
		io.WriteString(w, `{"KeyMetadata":{"KeyId":"kid-1"}}`)
	case "Encrypt":
		io.WriteString(w, `{"CiphertextBlob":"Y3Q=","KeyId":"kid-1"}`)
	default:
		io.WriteString(w, `{}`)
	}
}

// Each peer is driven with its own protocol: OpenBao's transit paths with
// the token, local-kms's TrentService operations; a run makes its key
// first, and Decrypt decrypts what one Encrypt made.
func TestLoadPeer_SpeaksEachPeersProtocol(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "s.bench\n")
	cases := []struct {
		api, action string
		want        map[string]bool // requests the run must have sent
	}{
		{apiOpenBao, "Encrypt", map[string]bool{"/v1/transit/keys/KEY": true, "/v1/transit/encrypt/KEY": true}},
		{apiOpenBao, "Decrypt", map[string]bool{"/v1/transit/keys/KEY": true, "/v1/transit/encrypt/KEY": true, "/v1/transit/decrypt/KEY": true}},
		{apiOpenBao, "GenerateDataKey", map[string]bool{"/v1/transit/keys/KEY": true, "/v1/transit/datakey/plaintext/KEY": true}},
		{apiOpenBao, "CreateKey", map[string]bool{"/v1/transit/keys/KEY": true}},
		{apiLocalKMS, "Encrypt", map[string]bool{"CreateKey": true, "Encrypt": true}},
		{apiLocalKMS, "Decrypt", map[string]bool{"CreateKey": true, "Encrypt": true, "Decrypt": true}},
		{apiLocalKMS, "GenerateDataKey", map[string]bool{"CreateKey": true, "GenerateDataKey": true}},
		{apiLocalKMS, "CreateKey", map[string]bool{"CreateKey": true}},
	}
	for _, tc := range cases {
		t.Run(tc.api+"/"+tc.action, func(t *testing.T) {
			ps := &peerServer{api: tc.api, seen: map[string]int{}, names: map[string]bool{}}
			srv := httptest.NewServer(ps)
			defer srv.Close()
			args := []string{"--api", tc.api, "--endpoints", srv.URL, "--action", tc.action, "--duration", "50ms", "--concurrency", "2", "--json"}
			if tc.api == apiOpenBao {
				args = append(args, "--token-file", token)
			}
			var out, errs bytes.Buffer
			if code := run(args, &out, &errs); code != 0 {
				t.Fatalf("exit %d: %s", code, errs.String())
			}
			var res result
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			ps.mu.Lock()
			defer ps.mu.Unlock()
			if len(ps.bad) > 0 {
				t.Fatalf("malformed requests: %q", ps.bad)
			}
			if res.OK == 0 || len(res.Errors) != 0 || res.API != tc.api {
				t.Fatalf("result %+v", res)
			}
			// Each key made is a key of its own.
			if tc.api == apiOpenBao && tc.action == "CreateKey" && len(ps.names) != ps.seen["/v1/transit/keys/KEY"] {
				t.Errorf("%d keys made under %d names", ps.seen["/v1/transit/keys/KEY"], len(ps.names))
			}
			for op := range ps.seen {
				if !tc.want[op] {
					t.Errorf("unexpected request %q", op)
				}
			}
			for op := range tc.want {
				if ps.seen[op] == 0 {
					t.Errorf("no request %q", op)
				}
			}
		})
	}
}

// A peer's refusal is counted under its error code (local-kms's __type),
// or its HTTP status when it has none.
func TestLoadPeer_CountsRefusalsByCode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "TrentService.Encrypt" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"DisabledException","message":"disabled"}`)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/v1/transit/encrypt/") {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"errors":["permission denied"]}`)
			return
		}
		io.WriteString(w, `{"KeyMetadata":{"KeyId":"kid-1"}}`)
	}))
	defer srv.Close()
	for api, want := range map[string]string{apiLocalKMS: "DisabledException", apiOpenBao: "HTTP 403"} {
		t.Setenv("BAO_TOKEN", "s.bench")
		var out, errs bytes.Buffer
		if code := run([]string{"--api", api, "--endpoints", srv.URL, "--duration", "30ms", "--concurrency", "1", "--json"}, &out, &errs); code != 0 {
			t.Fatalf("%s: exit %d: %s", api, code, errs.String())
		}
		var res result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if res.OK != 0 || res.Errors[want] == 0 || len(res.Errors) != 1 {
			t.Fatalf("%s: errors %v, ok %d; want only %q", api, res.Errors, res.OK, want)
		}
	}
}

// A key named with --key goes into OpenBao's paths escaped: a name with a
// slash stays one path segment.
func TestLoadPeer_EscapesTheKeyName(t *testing.T) {
	var mu sync.Mutex
	paths := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.URL.EscapedPath()]++
		mu.Unlock()
		io.WriteString(w, `{"data":{"ciphertext":"vault:v1:ct"}}`)
	}))
	defer srv.Close()
	t.Setenv("BAO_TOKEN", "s.bench")
	var out, errs bytes.Buffer
	if code := run([]string{"--api", "openbao", "--endpoints", srv.URL, "--key", "team/a", "--duration", "20ms", "--concurrency", "1", "--json"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths["/v1/transit/encrypt/team%2Fa"] == 0 {
		t.Fatalf("paths %v; want only /v1/transit/encrypt/team%%2Fa", paths)
	}
}
