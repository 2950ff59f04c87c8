package signature

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
)

// The worked example of Alibaba Cloud's "Request syntax and signature method
// V3" page (RunInstances on ecs.cn-shanghai, empty body).
func TestV3_KnownAnswer_AlibabaDocExample(t *testing.T) {
	h := http.Header{}
	h.Set("x-acs-action", "RunInstances")
	h.Set("x-acs-version", "2014-05-26")
	h.Set("x-acs-date", "2023-10-26T10:22:32Z")
	h.Set("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d")
	h.Set("x-acs-content-sha256", EmptyPayloadHash)
	v := V3Request{
		Method: "POST",
		Path:   "/",
		Query: url.Values{
			"ImageId":  {"win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"},
			"RegionId": {"cn-shanghai"},
		},
		Host:          "ecs.cn-shanghai.aliyuncs.com",
		Header:        h,
		SignedHeaders: []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"},
		PayloadHash:   EmptyPayloadHash,
	}
	const wantCanonical = "POST\n/\n" +
		"ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n" +
		"host:ecs.cn-shanghai.aliyuncs.com\n" +
		"x-acs-action:RunInstances\n" +
		"x-acs-content-sha256:" + EmptyPayloadHash + "\n" +
		"x-acs-date:2023-10-26T10:22:32Z\n" +
		"x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n" +
		"x-acs-version:2014-05-26\n" +
		"\n" +
		"host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n" +
		EmptyPayloadHash
	if got := v.Canonical(); got != wantCanonical {
		t.Errorf("canonical request:\n%s\nwant:\n%s", got, wantCanonical)
	}
	if got, want := v.StringToSign(), "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"; got != want {
		t.Errorf("string to sign = %q, want %q", got, want)
	}
	if got, want := v.Signature("YourAccessKeySecret"), "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"; got != want {
		t.Errorf("signature = %s, want %s", got, want)
	}
}

// The vector of the SDK's own unit test (darabonba-openapi utils
// Test_GetAuthorization): empty method and path, an empty query value, and
// one header sent twice with different case, which the SDK signs as the
// sorted values joined by a comma.
func TestV3_KnownAnswer_SDKUnitTest(t *testing.T) {
	h := http.Header{}
	h.Add("x-acs-test", "http")
	h.Add("x-acs-TEST", "https")
	v := V3Request{
		Query:         url.Values{"test": {"ok"}, "empty": {""}},
		Header:        h,
		SignedHeaders: []string{"x-acs-test"},
		PayloadHash:   "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23",
	}
	a := Authorization{Algorithm: AlgorithmV3, AccessKeyID: "acesskey", SignedHeaders: v.SignedHeaders, Signature: v.Signature("secret")}
	want := "ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,Signature=4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f9ff3df2ea3"
	if got := a.String(); got != want {
		t.Errorf("Authorization = %s\nwant %s", got, want)
	}
}

// The V1 example of Alibaba Cloud's ECS "Request signatures" page
// (DescribeRegions, AccessKeyId testid, secret testsecret).
func TestV1_KnownAnswer_AlibabaDocExample(t *testing.T) {
	p := url.Values{
		"AccessKeyId":      {"testid"},
		"Action":           {"DescribeRegions"},
		"Format":           {"XML"},
		"SignatureMethod":  {"HMAC-SHA1"},
		"SignatureNonce":   {"3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
		"SignatureVersion": {"1.0"},
		"Timestamp":        {"2016-02-23T12:46:24Z"},
		"Version":          {"2014-05-26"},
	}
	wantSTS := "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML" +
		"%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf" +
		"%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
	if got := StringToSignV1("GET", p); got != wantSTS {
		t.Errorf("string to sign:\n%s\nwant\n%s", got, wantSTS)
	}
	if got, want := SignatureV1("GET", p, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY="; got != want {
		t.Errorf("signature = %s, want %s", got, want)
	}
	// A Signature already in the parameters is not part of what is signed.
	p.Set("Signature", "OLeaidS1JvxuMvnyHOwuJ+uX5qY=")
	if got, want := SignatureV1("GET", p, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY="; got != want {
		t.Errorf("with Signature present: signature = %s, want %s", got, want)
	}
}

// The vector of the SDK's own unit test (Test_GetRPCSignature).
func TestV1_KnownAnswer_SDKUnitTest(t *testing.T) {
	if got, want := SignatureV1("", url.Values{"test": {"ok"}}, "accessKeySecret"), "jHx/oHoHNrbVfhncHEvPdHXZwHU="; got != want {
		t.Errorf("signature = %s, want %s", got, want)
	}
}

// Values chosen to break a naive canonicalization: spaces, + / = * ~,
// percent signs, unicode, JSON, empty.
var trickyValues = []string{
	"",
	"plain",
	"with space",
	"a+b=c/d",
	"*star*~tilde~",
	"100% & more?",
	"中文 é ü",
	`{"purpose":"sdk test","who":"a+b/c=d*e~f"}`,
	"line\nbreak\ttab",
	"aGVsbG8gd29ybGQ+Lz0=",
}

// Differential test: the SDK's signer (openapiutil.GetAuthorization) and
// ours agree on the signature of the same request.
func TestV3_MatchesSDKSigner(t *testing.T) {
	for _, val := range trickyValues {
		compareV3WithSDK(t, val)
	}
}

func FuzzV3_MatchesSDKSigner(f *testing.F) {
	for _, v := range trickyValues {
		f.Add(v)
	}
	f.Fuzz(compareV3WithSDK)
}

func compareV3WithSDK(t *testing.T, val string) {
	t.Helper()
	query := map[string]*string{
		"KeyId":             dara.String("alias/test"),
		"Plaintext":         dara.String(val),
		"EncryptionContext": dara.String(val),
		"Filters.1.Key":     dara.String(val),
	}
	headers := map[string]*string{
		"host":                  dara.String("127.0.0.1:9700"),
		"x-acs-action":          dara.String("Encrypt"),
		"x-acs-version":         dara.String("2016-01-20"),
		"x-acs-date":            dara.String("2026-01-02T03:04:05Z"),
		"x-acs-signature-nonce": dara.String("0123456789abcdef0123456789abcdef"),
		"x-acs-content-sha256":  dara.String(EmptyPayloadHash),
		"user-agent":            dara.String("not signed"),
	}
	req := &dara.Request{Method: dara.String("POST"), Pathname: dara.String("/"), Query: query, Headers: headers}
	sdk := dara.StringValue(openapiutil.GetAuthorization(req, dara.String(AlgorithmV3), dara.String(EmptyPayloadHash), dara.String("AK"), dara.String("SK")))
	a, err := ParseAuthorization(sdk)
	if err != nil {
		t.Fatalf("parse SDK Authorization %q: %v", sdk, err)
	}

	h := http.Header{}
	q := url.Values{}
	for k, v := range headers {
		if k != "host" {
			h.Set(k, *v)
		}
	}
	for k, v := range query {
		q.Set(k, *v)
	}
	ours := V3Request{Method: "POST", Path: "/", Query: q, Host: "127.0.0.1:9700", Header: h, SignedHeaders: a.SignedHeaders, PayloadHash: EmptyPayloadHash}
	if got := ours.Signature("SK"); got != a.Signature {
		t.Errorf("value %q: our signature %s, SDK %s\nour canonical request:\n%s", val, got, a.Signature, ours.Canonical())
	}
	// SignV3 must pick the same header set the SDK signs.
	if got := requiredSignedHeaders(h); !slices.Equal(got, a.SignedHeaders) {
		t.Errorf("signed headers: ours %v, SDK %v", got, a.SignedHeaders)
	}
}

// Differential test for V1 against openapiutil.GetRPCSignature.
func TestV1_MatchesSDKSigner(t *testing.T) {
	for _, val := range trickyValues {
		compareV1WithSDK(t, val)
	}
}

func FuzzV1_MatchesSDKSigner(f *testing.F) {
	for _, v := range trickyValues {
		f.Add(v)
	}
	f.Fuzz(compareV1WithSDK)
}

func compareV1WithSDK(t *testing.T, val string) {
	t.Helper()
	params := map[string]*string{
		"Action":            dara.String("Encrypt"),
		"Version":           dara.String("2016-01-20"),
		"Format":            dara.String("json"),
		"AccessKeyId":       dara.String("AK"),
		"SignatureMethod":   dara.String("HMAC-SHA1"),
		"SignatureVersion":  dara.String("1.0"),
		"SignatureNonce":    dara.String("n"),
		"Timestamp":         dara.String("2026-01-02T03:04:05Z"),
		"Plaintext":         dara.String(val),
		"EncryptionContext": dara.String(val),
	}
	sdk := dara.StringValue(openapiutil.GetRPCSignature(params, dara.String("POST"), dara.String("SK")))
	q := url.Values{}
	for k, v := range params {
		q.Set(k, *v)
	}
	if got := SignatureV1("POST", q, "SK"); got != sdk {
		t.Errorf("value %q: our signature %s, SDK %s\nour string to sign: %s", val, got, sdk, StringToSignV1("POST", q))
	}
}
