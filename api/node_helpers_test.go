package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/signature"
	"github.com/raftkms/raftkms/store"
)

// testNode is one real single-node cluster: Raft on disk, the HTTP API on a
// loopback port, initialized through POST /v1/operator/init.
type testNode struct {
	*node.Node
	AccountID  string
	InstanceID string
	Creds      signature.Credentials
	V3         *client.Client // signs with ACS3-HMAC-SHA256
	V1         *client.Client // signs with HMAC-SHA1
}

// startNode starts and initializes a node, stopped when the test ends.
func startNode(tb testing.TB) *testNode {
	tb.Helper()
	return startNodeWith(tb, nil)
}

// startNodeWith is startNode with the node's configuration changed by
// configure (when not nil) before it starts.
func startNodeWith(tb testing.TB, configure func(*node.Config)) *testNode {
	tb.Helper()
	dir := tb.TempDir()
	root, err := kcrypto.GenerateRootKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := node.Config{
		NodeID: "api-test", DataDir: filepath.Join(dir, "data"), Single: true,
		HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0",
		RootKey: root, Timing: store.FastTiming(),
	}
	if configure != nil {
		configure(&cfg)
	}
	n, err := node.Start(cfg)
	if err != nil {
		tb.Fatalf("node.Start: %v", err)
	}
	tb.Cleanup(n.Stop)

	// Operator init waits (within the request timeout) for the node to
	// lead: no polling needed here.
	anon, err := client.New(n.Endpoint(), "", "")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := anon.DoUnsigned(ctx, http.MethodPost, "/v1/operator/init", nil, nil, nil)
	if err != nil {
		tb.Fatalf("operator init: %v", err)
	}
	defer resp.Body.Close()
	var init struct{ AccountId, AccessKeyId, AccessKeySecret, InstanceId string }
	if err := json.NewDecoder(resp.Body).Decode(&init); err != nil {
		tb.Fatalf("operator init answer: %v", err)
	}
	if init.AccountId == "" || init.AccessKeyId == "" || init.AccessKeySecret == "" || init.InstanceId == "" {
		tb.Fatalf("operator init answer incomplete: %+v", init)
	}
	tn := &testNode{
		Node: n, AccountID: init.AccountId, InstanceID: init.InstanceId,
		Creds: signature.Credentials{AccessKeyID: init.AccessKeyId, AccessKeySecret: init.AccessKeySecret},
	}
	if tn.V3, err = client.New(n.Endpoint(), init.AccessKeyId, init.AccessKeySecret); err != nil {
		tb.Fatal(err)
	}
	if tn.V1, err = client.New(n.Endpoint(), init.AccessKeyId, init.AccessKeySecret, client.WithSignatureVersion(client.SignatureV1)); err != nil {
		tb.Fatal(err)
	}
	return tn
}

// hash is the digest of the node's whole catalogue.
func (tn *testNode) hash() [32]byte {
	h, _ := tn.FSM().Hash()
	return h
}

// canonical is the caller's part of the catalogue read through the FSM's
// accessors, as JSON (map keys sorted). It stands in for FSM.Hash in the few
// places where a key carries several tags: Hash is not stable for those
// (TestFSMHash_StableForKeyWithTags).
func (tn *testNode) canonical(tb testing.TB) string {
	tb.Helper()
	f := tn.FSM()
	var versions []any
	keys := f.Keys(tn.AccountID)
	for _, k := range keys {
		for _, id := range k.Versions {
			v, _ := f.KeyVersion(id)
			versions = append(versions, v)
		}
	}
	acct, _ := f.Account(tn.AccountID)
	ak, _ := f.AccessKey(tn.Creds.AccessKeyID)
	b, err := json.Marshal(map[string]any{
		"Keys": keys, "Versions": versions, "Aliases": f.Aliases(tn.AccountID, ""),
		"Instances": f.Instances(tn.AccountID), "Account": acct, "AccessKey": ak,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// call performs one signed action (V3).
func (tn *testNode) call(tb testing.TB, action string, params map[string]string) (*client.Response, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tn.V3.Call(ctx, action, params)
}

// must performs an action that has to succeed and decodes its answer into
// out (when not nil).
func (tn *testNode) must(tb testing.TB, action string, params map[string]string, out any) *client.Response {
	tb.Helper()
	resp, err := tn.call(tb, action, params)
	if err != nil {
		tb.Fatalf("%s %v: %v", action, params, err)
	}
	if out != nil {
		if err := resp.Decode(out); err != nil {
			tb.Fatalf("%s: decoding %s: %v", action, resp.Body, err)
		}
	}
	return resp
}

// createKey creates a key in the node's instance and returns its id.
func (tn *testNode) createKey(tb testing.TB, description string) string {
	tb.Helper()
	var out struct{ KeyMetadata struct{ KeyId string } }
	tn.must(tb, "CreateKey", map[string]string{"DKMSInstanceId": tn.InstanceID, "Description": description}, &out)
	if out.KeyMetadata.KeyId == "" {
		tb.Fatal("CreateKey returned no KeyId")
	}
	return out.KeyMetadata.KeyId
}

func (tn *testNode) keyArn(keyID string) string {
	return "acs:kms:local:" + tn.AccountID + ":key/" + keyID
}

// wantAPIError checks that err is the service's answer with this status and
// code, in the service's error format.
func wantAPIError(tb testing.TB, err error, status int, code string) *client.APIError {
	tb.Helper()
	if err == nil {
		tb.Fatalf("succeeded, want HTTP %d %s", status, code)
	}
	var ae *client.APIError
	if !errors.As(err, &ae) {
		tb.Fatalf("error %v is not an answer from the server", err)
	}
	if ae.StatusCode != status || ae.Code != code {
		tb.Fatalf("got HTTP %d %s (%s), want HTTP %d %s", ae.StatusCode, ae.Code, ae.Message, status, code)
	}
	checkErrorBody(tb, ae.Body)
	return ae
}

// checkErrorBody checks the error format: exactly RequestId, HostId, Code
// and Message, none empty.
func checkErrorBody(tb testing.TB, body []byte) {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatalf("error body %q is not a JSON object: %v", body, err)
	}
	var keys []string
	for k, v := range m {
		keys = append(keys, k)
		if s, ok := v.(string); !ok || s == "" {
			tb.Errorf("error body field %s = %#v, want a non-empty string", k, v)
		}
	}
	slices.Sort(keys)
	if want := []string{"Code", "HostId", "Message", "RequestId"}; !slices.Equal(keys, want) {
		tb.Errorf("error body fields %v, want %v (body %s)", keys, want, body)
	}
}

// decodeStrict decodes a response body into one of the SDK's response
// structs, refusing any field the SDK does not know: the names must be the
// service's.
func decodeStrict(tb testing.TB, body []byte, out any) {
	tb.Helper()
	body = withoutContractExtras(tb, body)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		tb.Fatalf("response %s does not fit the SDK's %T: %v", body, out, err)
	}
}

// contractExtras are fields the project's own contract (the catalogue
// issue) adds to the service's answers; the SDK ignores them.
var contractExtras = map[string]bool{"CreatorType": true, "KeyUsed": true, "Type": true, "ProductType": true, "HsmDomain": true}

func withoutContractExtras(tb testing.TB, body []byte) []byte {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return body
	}
	var strip func(any)
	strip = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, c := range t {
				if contractExtras[k] {
					delete(t, k)
					continue
				}
				strip(c)
			}
		case []any:
			for _, c := range t {
				strip(c)
			}
		}
	}
	strip(v)
	out, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// requireSet fails for every nil pointer, nil map or empty slice reachable
// from v (a pointer to an SDK struct), except the fields named in optional
// (by Go field name, anywhere in the tree).
func requireSet(tb testing.TB, v any, optional ...string) {
	tb.Helper()
	var walk func(path string, rv reflect.Value)
	walk = func(path string, rv reflect.Value) {
		switch rv.Kind() {
		case reflect.Pointer:
			if rv.IsNil() {
				tb.Errorf("%s is missing from the response", path)
				return
			}
			walk(path, rv.Elem())
		case reflect.Struct:
			t := rv.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() || slices.Contains(optional, f.Name) {
					continue
				}
				walk(path+"."+f.Name, rv.Field(i))
			}
		case reflect.Slice:
			if rv.Len() == 0 {
				tb.Errorf("%s is empty in the response", path)
				return
			}
			for i := range rv.Len() {
				walk(path+"[]", rv.Index(i))
			}
		}
	}
	rv := reflect.ValueOf(v)
	walk(strings.TrimPrefix(rv.Type().String(), "*"), rv)
}

// randomBytes is n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
