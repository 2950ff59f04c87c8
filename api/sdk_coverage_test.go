package api_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// TestSDK_Coverage calls every action of the official SDK
// (github.com/alibabacloud-go/kms-20160120/v3, enumerated from its client by
// reflection) against a real node, in a scenario that makes each call
// meaningful, and holds every answer against the SDK's response model:
//
//   - no action may answer InvalidAction.NotFound or a 5xx, or a body the
//     SDK cannot parse;
//   - an action answers success, or (coverageExpectedErrors) the documented
//     4xx service error that stands for what a self-hosted cluster cannot
//     have;
//   - every field of the model's Body (nested structures and list elements
//     included) appears in at least one of the action's answers, unless
//     coverageAllowMissing names it with a reason that the action's row of
//     docs/API.md's coverage table also states;
//   - an answer carries no field the model lacks (except the project's
//     contract extras, and coverageAllowExtra's entries, each with the
//     reason its docs/API.md row states);
//   - docs/API.md's coverage table has one row per SDK action.
//
// A field counts when any answer of the action carries it: fields that the
// reference too answers only in some states (a key's DeleteDate, an
// imported key's MaterialExpireTime) are made to appear by the scenario.
func TestSDK_Coverage(t *testing.T) {
	actions := sdkClientActions()
	if len(actions) != sdkActionCount {
		t.Errorf("the SDK's client has %d actions, want %d: update sdkActionCount, the scenario and docs/API.md's coverage table", len(actions), sdkActionCount)
	}
	clientKeys(t)
	tn := startNode(t)
	rec := &bodyRecorder{bodies: map[string][]byte{}}
	c := newRecordingSDKClient(t, tn, rec)
	run := newCoverageRun(t, rec)

	coverageScenario(t, run, tn, c)

	for _, a := range actions {
		if !run.called[a] {
			t.Errorf("%s: not called by the coverage scenario", a)
		}
	}
	for a := range run.called {
		if !slices.Contains(actions, a) {
			t.Errorf("%s: called, but not an action of the SDK's client", a)
		}
	}
	run.checkFieldsSeen()
	for _, p := range run.problems {
		t.Error(p)
	}
	checkCoverageDocs(t, actions)
}

// sdkActionCount is the number of actions of kms-20160120/v3 v3.2.3.
const sdkActionCount = 92

// sdkClientActions are the SDK client's actions: each method X with a
// matching XWithOptions.
func sdkClientActions() []string {
	typ := reflect.TypeFor[*kmssdk.Client]()
	var out []string
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if strings.HasSuffix(name, "WithOptions") {
			continue
		}
		if _, ok := typ.MethodByName(name + "WithOptions"); ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// coverageExpectedErrors are actions whose success needs what the node
// cannot have: the 4xx code each answers instead, and why. Success is
// accepted too (then its fields are compared).
var coverageExpectedErrors = map[string]struct{ Code, Reason string }{}

// coverageAllowMissing are fields of an SDK response model (action, then the
// field's JSON path in the Body; "[]" marks a list's elements) that the
// node's answers lack, each with the reason that docs/API.md also states in
// the action's row of the coverage table.
var coverageAllowMissing = map[string]map[string]string{}

// coverageAllowExtra are fields the node answers beyond an action's SDK
// model (the SDK ignores them), besides the contract extras every answer may
// carry; each with the reason that docs/API.md's coverage row also states.
var coverageAllowExtra = map[string]map[string]string{
	"DescribeNetworkRule": {"Name": "the rule's name, answered as CreateNetworkRule answers it"},
	"DescribeRegions": {
		"Regions.Region[].RegionEndpoint":       "the API endpoint of a node of the region (the model names none)",
		"Regions.Region[].Endpoints":            "every node's API endpoint in the region",
		"Regions.Region[].Endpoints.Endpoint[]": "one node's API endpoint (host:port)",
	},
}

// bodyRecorder is the SDK's HTTP client: it sends each request and keeps the
// raw answer of each action's latest call, so that the test sees the JSON
// the SDK parsed.
type bodyRecorder struct {
	mu     sync.Mutex
	bodies map[string][]byte
}

func (r *bodyRecorder) Call(req *http.Request, transport *http.Transport) (*http.Response, error) {
	// The SDK sets its headers in lower case, unlike net/http.
	var action string
	for k, v := range req.Header {
		if strings.EqualFold(k, "x-acs-action") && len(v) > 0 {
			action = v[0]
		}
	}
	if action == "" {
		action = req.URL.Query().Get("Action")
	}
	hc := &http.Client{}
	if transport != nil {
		hc.Transport = transport
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies[action] = body
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (r *bodyRecorder) take(action string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bodies[action]
	delete(r.bodies, action)
	return b
}

func newRecordingSDKClient(t *testing.T, tn *testNode, rec *bodyRecorder) *kmssdk.Client {
	t.Helper()
	c, err := kmssdk.NewClient(&openapi.Config{
		Endpoint: tea.String(tn.HTTPAddr()), Protocol: tea.String("http"),
		AccessKeyId: tea.String(tn.Creds.AccessKeyID), AccessKeySecret: tea.String(tn.Creds.AccessKeySecret),
		HttpClient: rec,
	})
	if err != nil {
		t.Fatalf("kmssdk.NewClient: %v", err)
	}
	return c
}

// coverageRun holds what the scenario's calls answered.
type coverageRun struct {
	t         *testing.T
	problems  []string // what the answers got wrong, reported by the test
	rec       *bodyRecorder
	called    map[string]bool
	succeeded map[string]bool
	seen      map[string]map[string]bool // action → model paths seen in an answer
	model     map[string]reflect.Type    // action → its Body's type
}

func newCoverageRun(t *testing.T, rec *bodyRecorder) *coverageRun {
	return &coverageRun{t: t, rec: rec, called: map[string]bool{}, succeeded: map[string]bool{},
		seen: map[string]map[string]bool{}, model: map[string]reflect.Type{}}
}

// fail records a problem of an action's answers.
func (run *coverageRun) fail(format string, args ...any) {
	run.problems = append(run.problems, fmt.Sprintf(format, args...))
}

// covCall makes one SDK call and checks its outcome; it returns the SDK's
// response when the call succeeded, else nil (the scenario goes on, so that
// one failing action does not hide the others).
func covCall[T any](run *coverageRun, action string, call func() (*T, error)) *T {
	run.t.Helper()
	run.called[action] = true
	resp, err := call()
	body := run.rec.take(action)
	if err != nil {
		var se *tea.SDKError
		if !errors.As(err, &se) {
			run.fail("%s: the SDK could not use the answer (%v); body %s", action, err, body)
			return nil
		}
		status, code := tea.IntValue(se.StatusCode), tea.StringValue(se.Code)
		switch {
		case code == "InvalidAction.NotFound":
			run.fail("%s: InvalidAction.NotFound (not implemented)", action)
		case status >= 500:
			run.fail("%s: HTTP %d %s: %s", action, status, code, tea.StringValue(se.Message))
		case coverageExpectedErrors[action].Code == code:
		default:
			run.fail("%s: HTTP %d %s: %s", action, status, code, tea.StringValue(se.Message))
		}
		return nil
	}
	run.succeeded[action] = true
	bodyType := reflect.ValueOf(resp).Elem().FieldByName("Body").Type()
	run.model[action] = bodyType
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		run.fail("%s: the answer %q is not JSON: %v", action, body, err)
		return resp
	}
	if run.seen[action] == nil {
		run.seen[action] = map[string]bool{}
	}
	run.walkAnswer(action, "", bodyType, v)
	return resp
}

// walkAnswer marks the model paths the answer v carries, and reports the
// answer's fields that the model lacks; it reports false when v does not
// have the model's shape (an object, a list), so that the field does not
// count as answered.
func (run *coverageRun) walkAnswer(action, path string, typ reflect.Type, v any) bool {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			run.fail("%s: %s is %T in the answer, the model has an object", action, orBody(path), v)
			return false
		}
		known := map[string]bool{}
		for _, f := range modelFields(typ) {
			known[f.json] = true
			fv, ok := obj[f.json]
			if !ok {
				continue
			}
			p := joinPath(path, f.json)
			if fv == nil || run.walkAnswer(action, p, f.typ, fv) {
				run.seen[action][p] = true
			}
		}
		for name := range obj {
			if _, ok := coverageAllowExtra[action][joinPath(path, name)]; ok {
				continue
			}
			if !known[name] && !contractExtras[name] {
				run.fail("%s: the answer has %s, which the SDK's model lacks", action, joinPath(path, name))
			}
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			run.fail("%s: %s is %T in the answer, the model has a list", action, orBody(path), v)
			return false
		}
		for _, e := range arr {
			if e == nil || run.walkAnswer(action, path+"[]", typ.Elem(), e) {
				run.seen[action][path+"[]"] = true
			}
		}
	}
	return true
}

type modelField struct {
	json string
	typ  reflect.Type
}

func modelFields(typ reflect.Type) []modelField {
	var out []modelField
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			name = f.Name
		}
		out = append(out, modelField{name, f.Type})
	}
	return out
}

// modelPaths are every path of the model typ: its fields, nested
// structures' fields, and "[]" for a list's elements.
func modelPaths(path string, typ reflect.Type) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var out []string
	switch typ.Kind() {
	case reflect.Struct:
		for _, f := range modelFields(typ) {
			p := joinPath(path, f.json)
			out = append(out, p)
			out = append(out, modelPaths(p, f.typ)...)
		}
	case reflect.Slice:
		elem := typ.Elem()
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if elem.Kind() == reflect.Struct || elem.Kind() == reflect.Slice {
			out = append(out, path+"[]")
			out = append(out, modelPaths(path+"[]", typ.Elem())...)
		}
	}
	return out
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orBody(path string) string {
	if path == "" {
		return "the body"
	}
	return path
}

// checkFieldsSeen reports each model field of a successful action that no
// answer carried and no allow-list entry excuses, and each allow-list entry
// that excuses nothing.
func (run *coverageRun) checkFieldsSeen() {
	for action, typ := range run.model {
		for _, p := range modelPaths("", typ) {
			if run.seen[action][p] {
				if _, ok := coverageAllowMissing[action][p]; ok {
					run.fail("%s: %s is on the allow-list but answered: remove the entry", action, p)
				}
				continue
			}
			if _, ok := coverageAllowMissing[action][p]; ok {
				continue
			}
			if missingParent(run.seen[action], p) {
				continue // the enclosing field is reported (or allowed) already
			}
			if strings.HasSuffix(p, "[]") {
				run.fail("%s: no answer had an element in %s, so its elements' fields went unchecked", action, strings.TrimSuffix(p, "[]"))
				continue
			}
			run.fail("%s: no answer carried %s of the SDK's model", action, p)
		}
	}
	for action, fields := range coverageAllowMissing {
		for p, reason := range fields {
			if strings.TrimSpace(reason) == "" {
				run.fail("%s: allow-list entry %s without a reason", action, p)
			}
		}
	}
}

// missingParent reports whether a path enclosing p is itself missing from
// the answers (so that only the outermost missing field is reported).
func missingParent(seen map[string]bool, p string) bool {
	for i := 1; i < len(p); i++ {
		if (p[i] == '.' || p[i] == '[') && !seen[p[:i]] {
			return true
		}
	}
	return false
}

// checkCoverageDocs checks docs/API.md's coverage table: a row per SDK
// action, and each allow-list entry's field and expected error's code named
// in the action's row.
func checkCoverageDocs(t *testing.T, actions []string) {
	t.Helper()
	f, err := os.Open("../docs/API.md")
	if err != nil {
		t.Fatalf("docs/API.md: %v", err)
	}
	defer f.Close()
	rows := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.Contains(line, "Coverage of the official SDK")
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		if _, dup := rows[name]; dup {
			t.Errorf("docs/API.md coverage table: two rows for %s", name)
		}
		rows[name] = line
	}
	for _, a := range actions {
		if _, ok := rows[a]; !ok {
			t.Errorf("docs/API.md coverage table: no row for %s", a)
		}
	}
	for a := range rows {
		if !slices.Contains(actions, a) {
			t.Errorf("docs/API.md coverage table: row %s is not an SDK action", a)
		}
	}
	for action, fields := range coverageAllowMissing {
		for p := range fields {
			leaf := p[strings.LastIndex(p, ".")+1:]
			leaf = strings.TrimSuffix(leaf, "[]")
			if !strings.Contains(rows[action], leaf) {
				t.Errorf("docs/API.md coverage row of %s does not say why %s is absent", action, p)
			}
		}
	}
	for action, fields := range coverageAllowExtra {
		for p := range fields {
			if !strings.Contains(rows[action], p) {
				t.Errorf("docs/API.md coverage row of %s does not say why the answer has %s", action, p)
			}
		}
	}
	for action, e := range coverageExpectedErrors {
		if !strings.Contains(rows[action], e.Code) {
			t.Errorf("docs/API.md coverage row of %s does not name its answer %s", action, e.Code)
		}
	}
}

// coverageScenario calls every SDK action in an order that gives each call
// what it needs (keys, versions, aliases, secrets, an asymmetric key pair,
// an import token, access points, a certificate).
func coverageScenario(t *testing.T, run *coverageRun, tn *testNode, c *kmssdk.Client) {
	s := func(v string) *string { return tea.String(v) }
	inst := tn.InstanceID

	// The account and the regions.
	covCall(run, "DescribeRegions", c.DescribeRegions)
	covCall(run, "DescribeAccountKmsStatus", c.DescribeAccountKmsStatus)
	covCall(run, "OpenKmsService", c.OpenKmsService)

	// Keys: a symmetric key with tags and a policy, a second one, an EC
	// signing key, an RSA encryption key and an EXTERNAL key.
	policy := `{"Version":"1","Statement":[{"Sid":"Owner","Effect":"Allow","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:*"]},"Action":["kms:*"],"Resource":["*"]}]}`
	var sym, sym2, ecKey, ecVersion, rsaKey, rsaVersion, extKey string
	if r := covCall(run, "CreateKey", func() (*kmssdk.CreateKeyResponse, error) {
		return c.CreateKey(&kmssdk.CreateKeyRequest{DKMSInstanceId: s(inst), KeySpec: s("Aliyun_AES_256"), KeyUsage: s("ENCRYPT/DECRYPT"),
			EnableAutomaticRotation: tea.Bool(true), RotationInterval: s("30d"), Policy: s(policy), ProtectionLevel: s("SOFTWARE"),
			Origin: s("Aliyun_KMS"), Tags: s(`[{"TagKey":"env","TagValue":"coverage"}]`), Description: s("coverage")})
	}); r != nil {
		sym = tea.StringValue(r.Body.KeyMetadata.KeyId)
	}
	mk := func(spec, usage, origin string) (string, string) {
		t.Helper()
		r := covCall(run, "CreateKey", func() (*kmssdk.CreateKeyResponse, error) {
			return c.CreateKey(&kmssdk.CreateKeyRequest{DKMSInstanceId: s(inst), KeySpec: s(spec), KeyUsage: s(usage), Origin: s(origin)})
		})
		if r == nil {
			return "", ""
		}
		return tea.StringValue(r.Body.KeyMetadata.KeyId), tea.StringValue(r.Body.KeyMetadata.PrimaryKeyVersion)
	}
	sym2, _ = mk("Aliyun_AES_256", "ENCRYPT/DECRYPT", "Aliyun_KMS")
	ecKey, ecVersion = mk("EC_P256", "SIGN/VERIFY", "Aliyun_KMS")
	rsaKey, rsaVersion = mk("RSA_2048", "ENCRYPT/DECRYPT", "Aliyun_KMS")
	extKey, _ = mk("Aliyun_AES_256", "ENCRYPT/DECRYPT", "EXTERNAL")

	covCall(run, "DescribeKey", func() (*kmssdk.DescribeKeyResponse, error) {
		return c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: s(sym)})
	})
	covCall(run, "ListKeys", func() (*kmssdk.ListKeysResponse, error) {
		return c.ListKeys(&kmssdk.ListKeysRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})
	covCall(run, "UpdateKeyDescription", func() (*kmssdk.UpdateKeyDescriptionResponse, error) {
		return c.UpdateKeyDescription(&kmssdk.UpdateKeyDescriptionRequest{KeyId: s(sym), Description: s("coverage, updated")})
	})
	covCall(run, "DisableKey", func() (*kmssdk.DisableKeyResponse, error) {
		return c.DisableKey(&kmssdk.DisableKeyRequest{KeyId: s(sym2)})
	})
	covCall(run, "EnableKey", func() (*kmssdk.EnableKeyResponse, error) {
		return c.EnableKey(&kmssdk.EnableKeyRequest{KeyId: s(sym2)})
	})
	var version string
	if r := covCall(run, "CreateKeyVersion", func() (*kmssdk.CreateKeyVersionResponse, error) {
		return c.CreateKeyVersion(&kmssdk.CreateKeyVersionRequest{KeyId: s(sym)})
	}); r != nil {
		version = tea.StringValue(r.Body.KeyVersion.KeyVersionId)
	}
	covCall(run, "ListKeyVersions", func() (*kmssdk.ListKeyVersionsResponse, error) {
		return c.ListKeyVersions(&kmssdk.ListKeyVersionsRequest{KeyId: s(sym), PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})
	covCall(run, "DescribeKeyVersion", func() (*kmssdk.DescribeKeyVersionResponse, error) {
		return c.DescribeKeyVersion(&kmssdk.DescribeKeyVersionRequest{KeyId: s(sym), KeyVersionId: s(version)})
	})
	covCall(run, "UpdateRotationPolicy", func() (*kmssdk.UpdateRotationPolicyResponse, error) {
		return c.UpdateRotationPolicy(&kmssdk.UpdateRotationPolicyRequest{KeyId: s(sym), EnableAutomaticRotation: tea.Bool(true), RotationInterval: s("2592000s")})
	})
	covCall(run, "GetKeyPolicy", func() (*kmssdk.GetKeyPolicyResponse, error) {
		return c.GetKeyPolicy(&kmssdk.GetKeyPolicyRequest{KeyId: s(sym), PolicyName: s("default")})
	})
	covCall(run, "SetKeyPolicy", func() (*kmssdk.SetKeyPolicyResponse, error) {
		return c.SetKeyPolicy(&kmssdk.SetKeyPolicyRequest{KeyId: s(sym), PolicyName: s("default"), Policy: s(strings.Replace(policy, `"Owner"`, `"Owner2"`, 1))})
	})

	// Deletion and its protection: sym2 is scheduled (DescribeKey shows
	// DeleteDate), cancelled, then protected.
	covCall(run, "ScheduleKeyDeletion", func() (*kmssdk.ScheduleKeyDeletionResponse, error) {
		return c.ScheduleKeyDeletion(&kmssdk.ScheduleKeyDeletionRequest{KeyId: s(sym2), PendingWindowInDays: tea.Int32(7)})
	})
	covCall(run, "DescribeKey", func() (*kmssdk.DescribeKeyResponse, error) {
		return c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: s(sym2)})
	})
	covCall(run, "CancelKeyDeletion", func() (*kmssdk.CancelKeyDeletionResponse, error) {
		return c.CancelKeyDeletion(&kmssdk.CancelKeyDeletionRequest{KeyId: s(sym2)})
	})
	covCall(run, "SetDeletionProtection", func() (*kmssdk.SetDeletionProtectionResponse, error) {
		return c.SetDeletionProtection(&kmssdk.SetDeletionProtectionRequest{ProtectedResourceArn: s(tn.keyArn(sym2)),
			EnableDeletionProtection: tea.Bool(true), DeletionProtectionDescription: s("coverage")})
	})
	covCall(run, "DescribeKey", func() (*kmssdk.DescribeKeyResponse, error) {
		return c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: s(sym2)})
	})

	// Aliases.
	covCall(run, "CreateAlias", func() (*kmssdk.CreateAliasResponse, error) {
		return c.CreateAlias(&kmssdk.CreateAliasRequest{AliasName: s("alias/coverage"), KeyId: s(sym)})
	})
	covCall(run, "ListAliases", func() (*kmssdk.ListAliasesResponse, error) {
		return c.ListAliases(&kmssdk.ListAliasesRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})
	covCall(run, "ListAliasesByKeyId", func() (*kmssdk.ListAliasesByKeyIdResponse, error) {
		return c.ListAliasesByKeyId(&kmssdk.ListAliasesByKeyIdRequest{KeyId: s(sym), PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})

	// Symmetric cryptography.
	ctx := map[string]any{"purpose": "coverage"}
	var blob string
	if r := covCall(run, "Encrypt", func() (*kmssdk.EncryptResponse, error) {
		return c.Encrypt(&kmssdk.EncryptRequest{KeyId: s("alias/coverage"), Plaintext: s(b64([]byte("coverage"))), EncryptionContext: ctx})
	}); r != nil {
		blob = tea.StringValue(r.Body.CiphertextBlob)
	}
	covCall(run, "Decrypt", func() (*kmssdk.DecryptResponse, error) {
		return c.Decrypt(&kmssdk.DecryptRequest{CiphertextBlob: s(blob), EncryptionContext: ctx})
	})
	covCall(run, "ReEncrypt", func() (*kmssdk.ReEncryptResponse, error) {
		return c.ReEncrypt(&kmssdk.ReEncryptRequest{CiphertextBlob: s(blob), SourceEncryptionContext: ctx,
			DestinationKeyId: s(sym2), DestinationEncryptionContext: ctx})
	})
	covCall(run, "GenerateDataKey", func() (*kmssdk.GenerateDataKeyResponse, error) {
		return c.GenerateDataKey(&kmssdk.GenerateDataKeyRequest{KeyId: s(sym), NumberOfBytes: tea.Int32(32), EncryptionContext: ctx})
	})
	covCall(run, "GenerateDataKeyWithoutPlaintext", func() (*kmssdk.GenerateDataKeyWithoutPlaintextResponse, error) {
		return c.GenerateDataKeyWithoutPlaintext(&kmssdk.GenerateDataKeyWithoutPlaintextRequest{KeyId: s(sym), KeySpec: s("AES_256"), EncryptionContext: ctx})
	})
	pub := spkiB64(t, &clientRSA2048.PublicKey)
	var dataKeyBlob string
	if r := covCall(run, "GenerateAndExportDataKey", func() (*kmssdk.GenerateAndExportDataKeyResponse, error) {
		return c.GenerateAndExportDataKey(&kmssdk.GenerateAndExportDataKeyRequest{KeyId: s(sym), PublicKeyBlob: s(pub),
			WrappingKeySpec: s("RSA_2048"), WrappingAlgorithm: s("RSAES_OAEP_SHA_256"), EncryptionContext: ctx, NumberOfBytes: tea.Int32(32)})
	}); r != nil {
		dataKeyBlob = tea.StringValue(r.Body.CiphertextBlob)
	}
	covCall(run, "ExportDataKey", func() (*kmssdk.ExportDataKeyResponse, error) {
		return c.ExportDataKey(&kmssdk.ExportDataKeyRequest{CiphertextBlob: s(dataKeyBlob), EncryptionContext: ctx,
			PublicKeyBlob: s(pub), WrappingKeySpec: s("RSA_2048"), WrappingAlgorithm: s("RSAES_OAEP_SHA_1")})
	})

	// Asymmetric cryptography.
	digest := digestB64("coverage")
	var signature string
	if r := covCall(run, "AsymmetricSign", func() (*kmssdk.AsymmetricSignResponse, error) {
		return c.AsymmetricSign(&kmssdk.AsymmetricSignRequest{KeyId: s(ecKey), KeyVersionId: s(ecVersion), Algorithm: s("ECDSA_SHA_256"), Digest: s(digest)})
	}); r != nil {
		signature = tea.StringValue(r.Body.Value)
	}
	covCall(run, "AsymmetricVerify", func() (*kmssdk.AsymmetricVerifyResponse, error) {
		return c.AsymmetricVerify(&kmssdk.AsymmetricVerifyRequest{KeyId: s(ecKey), KeyVersionId: s(ecVersion), Algorithm: s("ECDSA_SHA_256"), Digest: s(digest), Value: s(signature)})
	})
	covCall(run, "GetPublicKey", func() (*kmssdk.GetPublicKeyResponse, error) {
		return c.GetPublicKey(&kmssdk.GetPublicKeyRequest{KeyId: s(ecKey), KeyVersionId: s(ecVersion)})
	})
	var rsaBlob string
	if r := covCall(run, "AsymmetricEncrypt", func() (*kmssdk.AsymmetricEncryptResponse, error) {
		return c.AsymmetricEncrypt(&kmssdk.AsymmetricEncryptRequest{KeyId: s(rsaKey), KeyVersionId: s(rsaVersion), Algorithm: s("RSAES_OAEP_SHA_256"), Plaintext: s(b64([]byte("coverage")))})
	}); r != nil {
		rsaBlob = tea.StringValue(r.Body.CiphertextBlob)
	}
	covCall(run, "AsymmetricDecrypt", func() (*kmssdk.AsymmetricDecryptResponse, error) {
		return c.AsymmetricDecrypt(&kmssdk.AsymmetricDecryptRequest{KeyId: s(rsaKey), KeyVersionId: s(rsaVersion), Algorithm: s("RSAES_OAEP_SHA_256"), CiphertextBlob: s(rsaBlob)})
	})

	// Key material import (DescribeKey then shows MaterialExpireTime).
	var importKey, importToken string
	if r := covCall(run, "GetParametersForImport", func() (*kmssdk.GetParametersForImportResponse, error) {
		return c.GetParametersForImport(&kmssdk.GetParametersForImportRequest{KeyId: s(extKey), WrappingAlgorithm: s("RSAES_OAEP_SHA_256"), WrappingKeySpec: s("RSA_2048")})
	}); r != nil {
		importKey, importToken = tea.StringValue(r.Body.PublicKey), tea.StringValue(r.Body.ImportToken)
	}
	var wrapped string
	if importKey != "" {
		wrapped = wrapForImport(t, importKey, "RSAES_OAEP_SHA_256", randomBytes(32))
	}
	covCall(run, "ImportKeyMaterial", func() (*kmssdk.ImportKeyMaterialResponse, error) {
		return c.ImportKeyMaterial(&kmssdk.ImportKeyMaterialRequest{KeyId: s(extKey), ImportToken: s(importToken),
			EncryptedKeyMaterial: s(wrapped), KeyMaterialExpireUnix: tea.Int64(time.Now().Add(48 * time.Hour).Unix())})
	})
	covCall(run, "DescribeKey", func() (*kmssdk.DescribeKeyResponse, error) {
		return c.DescribeKey(&kmssdk.DescribeKeyRequest{KeyId: s(extKey)})
	})
	covCall(run, "DeleteKeyMaterial", func() (*kmssdk.DeleteKeyMaterialResponse, error) {
		return c.DeleteKeyMaterial(&kmssdk.DeleteKeyMaterialRequest{KeyId: s(extKey)})
	})

	// Tags, one key at a time and in batches.
	covCall(run, "TagResource", func() (*kmssdk.TagResourceResponse, error) {
		return c.TagResource(&kmssdk.TagResourceRequest{KeyId: s(sym), Tags: s(`[{"TagKey":"team","TagValue":"kms"}]`)})
	})
	covCall(run, "ListResourceTags", func() (*kmssdk.ListResourceTagsResponse, error) {
		return c.ListResourceTags(&kmssdk.ListResourceTagsRequest{KeyId: s(sym)})
	})
	covCall(run, "UntagResource", func() (*kmssdk.UntagResourceResponse, error) {
		return c.UntagResource(&kmssdk.UntagResourceRequest{KeyId: s(sym), TagKeys: s(`["team"]`)})
	})
	covCall(run, "TagResources", func() (*kmssdk.TagResourcesResponse, error) {
		return c.TagResources(&kmssdk.TagResourcesRequest{RegionId: s("local"), ResourceType: s("key"), ResourceId: []*string{s(sym), s(sym2)},
			Tag: []*kmssdk.TagResourcesRequestTag{{Key: s("project"), Value: s("coverage")}, {Key: s("owner"), Value: s("kms")}}})
	})
	covCall(run, "ListTagResources", func() (*kmssdk.ListTagResourcesResponse, error) {
		return c.ListTagResources(&kmssdk.ListTagResourcesRequest{RegionId: s("local"), ResourceType: s("key"), ResourceId: []*string{s(sym), s(sym2)}})
	})
	covCall(run, "UntagResources", func() (*kmssdk.UntagResourcesResponse, error) {
		return c.UntagResources(&kmssdk.UntagResourcesRequest{RegionId: s("local"), ResourceType: s("key"), ResourceId: []*string{s(sym2)}, TagKey: []*string{s("owner")}})
	})

	// Application access points: a network rule, a permission policy, an
	// access point, a client key; listed, changed, then deleted in order.
	covCall(run, "CreateNetworkRule", func() (*kmssdk.CreateNetworkRuleResponse, error) {
		return c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: s("office"), Type: s("Private"), SourcePrivateIp: s(`["10.0.0.0/8"]`), Description: s("coverage")})
	})
	covCall(run, "DescribeNetworkRule", func() (*kmssdk.DescribeNetworkRuleResponse, error) {
		return c.DescribeNetworkRule(&kmssdk.DescribeNetworkRuleRequest{Name: s("office")})
	})
	covCall(run, "UpdateNetworkRule", func() (*kmssdk.UpdateNetworkRuleResponse, error) {
		return c.UpdateNetworkRule(&kmssdk.UpdateNetworkRuleRequest{Name: s("office"), SourcePrivateIp: s(`["10.0.0.0/8","127.0.0.1"]`), Description: s("coverage, updated")})
	})
	covCall(run, "ListNetworkRules", func() (*kmssdk.ListNetworkRulesResponse, error) {
		return c.ListNetworkRules(&kmssdk.ListNetworkRulesRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})
	covCall(run, "CreatePolicy", func() (*kmssdk.CreatePolicyResponse, error) {
		return c.CreatePolicy(&kmssdk.CreatePolicyRequest{Name: s("keys"), KmsInstance: s(inst),
			Permissions: s(`["RbacPermission/Template/CryptoServiceKeyUser"]`), Resources: s(`["key/*"]`),
			AccessControlRules: s(`{"NetworkRules":["office"]}`), Description: s("coverage")})
	})
	covCall(run, "DescribePolicy", func() (*kmssdk.DescribePolicyResponse, error) {
		return c.DescribePolicy(&kmssdk.DescribePolicyRequest{Name: s("keys")})
	})
	covCall(run, "UpdatePolicy", func() (*kmssdk.UpdatePolicyResponse, error) {
		return c.UpdatePolicy(&kmssdk.UpdatePolicyRequest{Name: s("keys"), Resources: s(`["key/*","secret/*"]`),
			Permissions:        s(`["RbacPermission/Template/CryptoServiceKeyUser","RbacPermission/Template/CryptoServiceSecretUser"]`),
			AccessControlRules: s(`{"NetworkRules":["office"]}`), Description: s("coverage, updated")})
	})
	covCall(run, "ListPolicies", func() (*kmssdk.ListPoliciesResponse, error) {
		return c.ListPolicies(&kmssdk.ListPoliciesRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})
	covCall(run, "CreateApplicationAccessPoint", func() (*kmssdk.CreateApplicationAccessPointResponse, error) {
		return c.CreateApplicationAccessPoint(&kmssdk.CreateApplicationAccessPointRequest{Name: s("app"), AuthenticationMethod: s("ClientKey"),
			Policies: s(`["keys"]`), Description: s("coverage")})
	})
	covCall(run, "DescribeApplicationAccessPoint", func() (*kmssdk.DescribeApplicationAccessPointResponse, error) {
		return c.DescribeApplicationAccessPoint(&kmssdk.DescribeApplicationAccessPointRequest{Name: s("app")})
	})
	covCall(run, "UpdateApplicationAccessPoint", func() (*kmssdk.UpdateApplicationAccessPointResponse, error) {
		return c.UpdateApplicationAccessPoint(&kmssdk.UpdateApplicationAccessPointRequest{Name: s("app"), Policies: s(`["keys"]`), Description: s("coverage, updated")})
	})
	covCall(run, "ListApplicationAccessPoints", func() (*kmssdk.ListApplicationAccessPointsResponse, error) {
		return c.ListApplicationAccessPoints(&kmssdk.ListApplicationAccessPointsRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})
	var clientKeyID string
	if r := covCall(run, "CreateClientKey", func() (*kmssdk.CreateClientKeyResponse, error) {
		return c.CreateClientKey(&kmssdk.CreateClientKeyRequest{AapName: s("app"), Password: s("Passw0rd-coverage"),
			NotBefore: s(time.Now().UTC().Format(time.RFC3339)), NotAfter: s("2099-01-01T00:00:00Z")})
	}); r != nil {
		clientKeyID = tea.StringValue(r.Body.ClientKeyId)
	}
	covCall(run, "GetClientKey", func() (*kmssdk.GetClientKeyResponse, error) {
		return c.GetClientKey(&kmssdk.GetClientKeyRequest{ClientKeyId: s(clientKeyID)})
	})
	covCall(run, "ListClientKeys", func() (*kmssdk.ListClientKeysResponse, error) {
		return c.ListClientKeys(&kmssdk.ListClientKeysRequest{AapName: s("app")})
	})
	covCall(run, "DeleteClientKey", func() (*kmssdk.DeleteClientKeyResponse, error) {
		return c.DeleteClientKey(&kmssdk.DeleteClientKeyRequest{ClientKeyId: s(clientKeyID)})
	})
	covCall(run, "DeleteApplicationAccessPoint", func() (*kmssdk.DeleteApplicationAccessPointResponse, error) {
		return c.DeleteApplicationAccessPoint(&kmssdk.DeleteApplicationAccessPointRequest{Name: s("app")})
	})
	covCall(run, "DeletePolicy", func() (*kmssdk.DeletePolicyResponse, error) {
		return c.DeletePolicy(&kmssdk.DeletePolicyRequest{Name: s("keys")})
	})
	covCall(run, "DeleteNetworkRule", func() (*kmssdk.DeleteNetworkRuleResponse, error) {
		return c.DeleteNetworkRule(&kmssdk.DeleteNetworkRuleRequest{Name: s("office")})
	})

	coverageSecrets(t, run, tn, c, sym)
	coverageCertificates(t, run, c)

	// Last, as it may bind the instance to networks: the instance's
	// connection and network binding, then the instance as they left it.
	covCall(run, "ListKmsInstances", func() (*kmssdk.ListKmsInstancesResponse, error) {
		return c.ListKmsInstances(&kmssdk.ListKmsInstancesRequest{PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})
	covCall(run, "GetKmsInstance", func() (*kmssdk.GetKmsInstanceResponse, error) {
		return c.GetKmsInstance(&kmssdk.GetKmsInstanceRequest{KmsInstanceId: s(inst)})
	})
	// A VPC is one of the account's network rules, a vSwitch one of its
	// CIDR blocks (docs/API.md); the test's own address stays inside.
	covCall(run, "CreateNetworkRule", func() (*kmssdk.CreateNetworkRuleResponse, error) {
		return c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: s("vpc-coverage"), Type: s("Private"), SourcePrivateIp: s(`["127.0.0.0/8"]`)})
	})
	covCall(run, "CreateNetworkRule", func() (*kmssdk.CreateNetworkRuleResponse, error) {
		return c.CreateNetworkRule(&kmssdk.CreateNetworkRuleRequest{Name: s("vpc-other"), Type: s("Private"), SourcePrivateIp: s(`["10.1.0.0/16"]`)})
	})
	covCall(run, "ConnectKmsInstance", func() (*kmssdk.ConnectKmsInstanceResponse, error) {
		return c.ConnectKmsInstance(&kmssdk.ConnectKmsInstanceRequest{KmsInstanceId: s(inst), KMProvider: s("Aliyun"),
			VpcId: s("vpc-coverage"), VSwitchIds: s("127.0.0.0/8")})
	})
	covCall(run, "UpdateKmsInstanceBindVpc", func() (*kmssdk.UpdateKmsInstanceBindVpcResponse, error) {
		return c.UpdateKmsInstanceBindVpc(&kmssdk.UpdateKmsInstanceBindVpcRequest{KmsInstanceId: s(inst),
			BindVpcs: s(`[{"VpcId":"vpc-other","RegionId":"local","VSwitchId":"10.1.0.0/16","VpcOwnerId":` + tn.AccountID + `}]`)})
	})
	covCall(run, "GetKmsInstance", func() (*kmssdk.GetKmsInstanceResponse, error) {
		return c.GetKmsInstance(&kmssdk.GetKmsInstanceRequest{KmsInstanceId: s(inst)})
	})

	covCall(run, "UpdateAlias", func() (*kmssdk.UpdateAliasResponse, error) {
		return c.UpdateAlias(&kmssdk.UpdateAliasRequest{AliasName: s("alias/coverage"), KeyId: s(sym2)})
	})
	covCall(run, "DeleteAlias", func() (*kmssdk.DeleteAliasResponse, error) {
		return c.DeleteAlias(&kmssdk.DeleteAliasRequest{AliasName: s("alias/coverage")})
	})
}

// coverageSecrets: a Generic secret through its life, a RAMCredentials
// secret rotated, and a random password.
func coverageSecrets(t *testing.T, run *coverageRun, tn *testNode, c *kmssdk.Client, key string) {
	s := func(v string) *string { return tea.String(v) }
	covCall(run, "CreateSecret", func() (*kmssdk.CreateSecretResponse, error) {
		return c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: s("db-password"), SecretData: s("s3cret v1"), SecretDataType: s("text"),
			VersionId: s("v1"), EncryptionKeyId: s(key), DKMSInstanceId: s(tn.InstanceID), Description: s("coverage"),
			Tags: s(`[{"TagKey":"env","TagValue":"coverage"}]`)})
	})
	covCall(run, "PutSecretValue", func() (*kmssdk.PutSecretValueResponse, error) {
		return c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: s("db-password"), SecretData: s("s3cret v2"), SecretDataType: s("text"), VersionId: s("v2")})
	})
	covCall(run, "GetSecretValue", func() (*kmssdk.GetSecretValueResponse, error) {
		return c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: s("db-password"), FetchExtendedConfig: tea.Bool(true)})
	})
	covCall(run, "UpdateSecretVersionStage", func() (*kmssdk.UpdateSecretVersionStageResponse, error) {
		return c.UpdateSecretVersionStage(&kmssdk.UpdateSecretVersionStageRequest{SecretName: s("db-password"), VersionStage: s("blue"), MoveToVersion: s("v1")})
	})
	covCall(run, "ListSecretVersionIds", func() (*kmssdk.ListSecretVersionIdsResponse, error) {
		return c.ListSecretVersionIds(&kmssdk.ListSecretVersionIdsRequest{SecretName: s("db-password"), IncludeDeprecated: s("true")})
	})
	covCall(run, "UpdateSecret", func() (*kmssdk.UpdateSecretResponse, error) {
		return c.UpdateSecret(&kmssdk.UpdateSecretRequest{SecretName: s("db-password"), Description: s("coverage, updated")})
	})
	covCall(run, "DescribeSecret", func() (*kmssdk.DescribeSecretResponse, error) {
		return c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: s("db-password"), FetchTags: s("true")})
	})
	covCall(run, "ListSecrets", func() (*kmssdk.ListSecretsResponse, error) {
		return c.ListSecrets(&kmssdk.ListSecretsRequest{FetchTags: s("true"), PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	})
	secretPolicy := `{"Version":"1","Statement":[{"Sid":"Owner","Effect":"Allow","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:*"]},"Action":["kms:*"],"Resource":["*"]}]}`
	covCall(run, "SetSecretPolicy", func() (*kmssdk.SetSecretPolicyResponse, error) {
		return c.SetSecretPolicy(&kmssdk.SetSecretPolicyRequest{SecretName: s("db-password"), PolicyName: s("default"), Policy: s(secretPolicy)})
	})
	covCall(run, "GetSecretPolicy", func() (*kmssdk.GetSecretPolicyResponse, error) {
		return c.GetSecretPolicy(&kmssdk.GetSecretPolicyRequest{SecretName: s("db-password"), PolicyName: s("default")})
	})
	covCall(run, "DeleteSecret", func() (*kmssdk.DeleteSecretResponse, error) {
		return c.DeleteSecret(&kmssdk.DeleteSecretRequest{SecretName: s("db-password"), RecoveryWindowInDays: s("7")})
	})
	covCall(run, "DescribeSecret", func() (*kmssdk.DescribeSecretResponse, error) {
		return c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: s("db-password"), FetchTags: s("true")})
	})
	covCall(run, "RestoreSecret", func() (*kmssdk.RestoreSecretResponse, error) {
		return c.RestoreSecret(&kmssdk.RestoreSecretRequest{SecretName: s("db-password")})
	})

	// A RAM user's access key as a RAMCredentials secret, rotated.
	tn.must(t, "CreateUser", map[string]string{"UserName": "app"}, nil)
	var ak struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	tn.must(t, "CreateAccessKey", map[string]string{"UserName": "app"}, &ak)
	data, _ := json.Marshal(map[string]any{"AccessKeys": []map[string]string{{"AccessKeyId": ak.AccessKey.AccessKeyId, "AccessKeySecret": ak.AccessKey.AccessKeySecret}}})
	covCall(run, "CreateSecret", func() (*kmssdk.CreateSecretResponse, error) {
		return c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: s("$Auto"), SecretType: s("RAMCredentials"), SecretData: s(string(data)),
			VersionId: s("r1"), EncryptionKeyId: s(key), ExtendedConfig: map[string]any{"SecretSubType": "RamUserAccessKey", "UserName": "app"},
			EnableAutomaticRotation: tea.Bool(true), RotationInterval: s("30d")})
	})
	covCall(run, "UpdateSecretRotationPolicy", func() (*kmssdk.UpdateSecretRotationPolicyResponse, error) {
		return c.UpdateSecretRotationPolicy(&kmssdk.UpdateSecretRotationPolicyRequest{SecretName: s("acs/ram/user/app"),
			EnableAutomaticRotation: tea.Bool(true), RotationInterval: s("7d")})
	})
	covCall(run, "RotateSecret", func() (*kmssdk.RotateSecretResponse, error) {
		return c.RotateSecret(&kmssdk.RotateSecretRequest{SecretName: s("acs/ram/user/app"), VersionId: s("r2")})
	})
	covCall(run, "GetSecretValue", func() (*kmssdk.GetSecretValueResponse, error) {
		return c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: s("acs/ram/user/app"), FetchExtendedConfig: tea.Bool(true)})
	})
	covCall(run, "DescribeSecret", func() (*kmssdk.DescribeSecretResponse, error) {
		return c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: s("acs/ram/user/app"), FetchTags: s("true")})
	})
	// The batch tag actions on secrets.
	covCall(run, "TagResources", func() (*kmssdk.TagResourcesResponse, error) {
		return c.TagResources(&kmssdk.TagResourcesRequest{RegionId: s("local"), ResourceType: s("secret"), ResourceId: []*string{s("db-password")},
			Tag: []*kmssdk.TagResourcesRequestTag{{Key: s("project"), Value: s("coverage")}}})
	})
	covCall(run, "ListTagResources", func() (*kmssdk.ListTagResourcesResponse, error) {
		return c.ListTagResources(&kmssdk.ListTagResourcesRequest{RegionId: s("local"), ResourceType: s("secret"), ResourceId: []*string{s("db-password")}})
	})
	covCall(run, "UntagResources", func() (*kmssdk.UntagResourcesResponse, error) {
		return c.UntagResources(&kmssdk.UntagResourcesRequest{RegionId: s("local"), ResourceType: s("secret"), ResourceId: []*string{s("db-password")}, All: tea.Bool(true)})
	})
	covCall(run, "GetRandomPassword", func() (*kmssdk.GetRandomPasswordResponse, error) {
		return c.GetRandomPassword(&kmssdk.GetRandomPasswordRequest{PasswordLength: s("24"), ExcludeCharacters: s("{}")})
	})
}

// coverageCertificates: a certificate's key pair made by the node, its CSR
// signed by a CA made here, the certificate uploaded, its private key used
// and its public key checked, then retired and deleted.
func coverageCertificates(t *testing.T, run *coverageRun, c *kmssdk.Client) {
	s := func(v string) *string { return tea.String(v) }
	var certID, csrPEM string
	if r := covCall(run, "CreateCertificate", func() (*kmssdk.CreateCertificateResponse, error) {
		return c.CreateCertificate(&kmssdk.CreateCertificateRequest{KeySpec: s("RSA_2048"), ExportablePrivateKey: tea.Bool(false),
			// An RFC 2253 DN, as the SDK's documentation of Subject says.
			Subject:                 s("CN=coverage.example,OU=tests,O=raftkms,L=Hangzhou,ST=Zhejiang,C=CN"),
			SubjectAlternativeNames: map[string]any{"DNSNames": []string{"coverage.example"}}})
	}); r != nil {
		certID, csrPEM = tea.StringValue(r.Body.CertificateId), tea.StringValue(r.Body.Csr)
	}
	certPEM, chainPEM := signCSRForCoverage(t, csrPEM)
	covCall(run, "UploadCertificate", func() (*kmssdk.UploadCertificateResponse, error) {
		return c.UploadCertificate(&kmssdk.UploadCertificateRequest{CertificateId: s(certID), Certificate: s(certPEM), CertificateChain: s(chainPEM)})
	})
	covCall(run, "GetCertificate", func() (*kmssdk.GetCertificateResponse, error) {
		return c.GetCertificate(&kmssdk.GetCertificateRequest{CertificateId: s(certID)})
	})
	covCall(run, "DescribeCertificate", func() (*kmssdk.DescribeCertificateResponse, error) {
		return c.DescribeCertificate(&kmssdk.DescribeCertificateRequest{CertificateId: s(certID)})
	})
	covCall(run, "TagResources", func() (*kmssdk.TagResourcesResponse, error) {
		return c.TagResources(&kmssdk.TagResourcesRequest{RegionId: s("local"), ResourceType: s("certificate"), ResourceId: []*string{s(certID)},
			Tag: []*kmssdk.TagResourcesRequestTag{{Key: s("project"), Value: s("coverage")}}})
	})
	covCall(run, "ListTagResources", func() (*kmssdk.ListTagResourcesResponse, error) {
		return c.ListTagResources(&kmssdk.ListTagResourcesRequest{RegionId: s("local"), ResourceType: s("certificate"), ResourceId: []*string{s(certID)}})
	})
	message := b64([]byte("coverage"))
	var sig string
	if r := covCall(run, "CertificatePrivateKeySign", func() (*kmssdk.CertificatePrivateKeySignResponse, error) {
		return c.CertificatePrivateKeySign(&kmssdk.CertificatePrivateKeySignRequest{CertificateId: s(certID), Algorithm: s("RSA_PKCS1_SHA_256"),
			Message: s(message), MessageType: s("RAW")})
	}); r != nil {
		sig = tea.StringValue(r.Body.SignatureValue)
	}
	covCall(run, "CertificatePublicKeyVerify", func() (*kmssdk.CertificatePublicKeyVerifyResponse, error) {
		return c.CertificatePublicKeyVerify(&kmssdk.CertificatePublicKeyVerifyRequest{CertificateId: s(certID), Algorithm: s("RSA_PKCS1_SHA_256"),
			Message: s(message), MessageType: s("RAW"), SignatureValue: s(sig)})
	})
	var blob string
	if r := covCall(run, "CertificatePublicKeyEncrypt", func() (*kmssdk.CertificatePublicKeyEncryptResponse, error) {
		return c.CertificatePublicKeyEncrypt(&kmssdk.CertificatePublicKeyEncryptRequest{CertificateId: s(certID), Algorithm: s("RSAES_OAEP_SHA_256"), Plaintext: s(message)})
	}); r != nil {
		blob = tea.StringValue(r.Body.CiphertextBlob)
	}
	covCall(run, "CertificatePrivateKeyDecrypt", func() (*kmssdk.CertificatePrivateKeyDecryptResponse, error) {
		return c.CertificatePrivateKeyDecrypt(&kmssdk.CertificatePrivateKeyDecryptRequest{CertificateId: s(certID), Algorithm: s("RSAES_OAEP_SHA_256"), CiphertextBlob: s(blob)})
	})
	covCall(run, "UpdateCertificateStatus", func() (*kmssdk.UpdateCertificateStatusResponse, error) {
		return c.UpdateCertificateStatus(&kmssdk.UpdateCertificateStatusRequest{CertificateId: s(certID), Status: s("INACTIVE")})
	})
	covCall(run, "DeleteCertificate", func() (*kmssdk.DeleteCertificateResponse, error) {
		return c.DeleteCertificate(&kmssdk.DeleteCertificateRequest{CertificateId: s(certID)})
	})
}

// signCSRForCoverage issues a certificate for a PEM CSR from a CA made here
// (P-256), and returns it and the CA's certificate, both PEM. Without a
// usable CSR (CreateCertificate failed) it returns placeholders, so that the
// scenario still calls the actions that follow.
func signCSRForCoverage(t *testing.T, csrPEM string) (string, string) {
	t.Helper()
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		if csrPEM != "" {
			t.Errorf("CreateCertificate: Csr is not PEM: %q", csrPEM)
		}
		return "not a certificate", ""
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Errorf("CreateCertificate: Csr does not parse or verify: %v", err)
		return "not a certificate", ""
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coverage CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject, DNSNames: csr.DNSNames,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, csr.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
}

// TestSDK_CoverageChecker: the comparison with the SDK's models reports a
// missing field once (not its children), a list never seen with elements,
// a field the model lacks and a value of the wrong shape; a field counts
// when any answer of the action carries it.
func TestSDK_CoverageChecker(t *testing.T) {
	run := newCoverageRun(t, nil)
	feed := func(action string, model any, answer string) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(answer), &v); err != nil {
			t.Fatal(err)
		}
		typ := reflect.TypeOf(model)
		run.model[action] = typ
		if run.seen[action] == nil {
			run.seen[action] = map[string]bool{}
		}
		run.walkAnswer(action, "", typ, v)
	}
	feed("ListAliases", &kmssdk.ListAliasesResponseBody{},
		`{"RequestId":"r","PageNumber":1,"PageSize":10,"Aliases":{"Alias":[{"AliasName":"a","KeyId":"k","Bogus":1}]}}`)
	feed("ListAliases", &kmssdk.ListAliasesResponseBody{}, `{"RequestId":"r","TotalCount":1,"KeyUsed":3}`)
	feed("ListKeys", &kmssdk.ListKeysResponseBody{}, `{"RequestId":"r","PageNumber":1,"PageSize":10,"TotalCount":0,"Keys":{"Key":[]}}`)
	feed("DescribeKey", &kmssdk.DescribeKeyResponseBody{}, `{"RequestId":"r"}`)
	feed("GetKmsInstance", &kmssdk.GetKmsInstanceResponseBody{}, `{"RequestId":"r","KmsInstance":"not an object"}`)
	run.checkFieldsSeen()
	want := []string{
		"DescribeKey: no answer carried KeyMetadata of the SDK's model",
		"GetKmsInstance: KmsInstance is string in the answer, the model has an object",
		"GetKmsInstance: no answer carried KmsInstance of the SDK's model",
		"ListAliases: no answer carried Aliases.Alias[].AliasArn of the SDK's model",
		"ListAliases: the answer has Aliases.Alias[].Bogus, which the SDK's model lacks",
		"ListKeys: no answer had an element in Keys.Key, so its elements' fields went unchecked",
	}
	got := slices.Clone(run.problems)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
