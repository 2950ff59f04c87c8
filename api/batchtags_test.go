package api_test

import (
	"fmt"
	"slices"
	"testing"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// The batch tag actions through the official SDK: they share the tags of
// the per-resource actions, change all the resources or none, page with
// NextToken; an unknown certificate is not found.

type tagEntry struct{ Type, ID, Key, Value string }

func listTagResources(t *testing.T, c *kmssdk.Client, rtype string, ids []string, token string) ([]tagEntry, string) {
	t.Helper()
	req := &kmssdk.ListTagResourcesRequest{ResourceType: tea.String(rtype), RegionId: tea.String("local")}
	if len(ids) > 0 {
		req.ResourceId = tea.StringSlice(ids)
	}
	if token != "" {
		req.NextToken = tea.String(token)
	}
	r, err := c.ListTagResources(req)
	if err != nil {
		t.Fatalf("ListTagResources %s %v: %v", rtype, ids, err)
	}
	requireSet(t, r.Body, "NextToken", "TagResource")
	var out []tagEntry
	for _, e := range r.Body.TagResources.TagResource {
		out = append(out, tagEntry{tea.StringValue(e.ResourceType), tea.StringValue(e.ResourceId), tea.StringValue(e.TagKey), tea.StringValue(e.TagValue)})
	}
	return out, tea.StringValue(r.Body.NextToken)
}

func sdkTags(kv ...string) []*kmssdk.TagResourcesRequestTag {
	var out []*kmssdk.TagResourcesRequestTag
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &kmssdk.TagResourcesRequestTag{Key: tea.String(kv[i]), Value: tea.String(kv[i+1])})
	}
	return out
}

func TestSDK_BatchTags(t *testing.T) {
	tn := startNode(t)
	c := newSDKClient(t, tn, "")
	k1, k2 := tn.createKey(t, "one"), tn.createKey(t, "two")
	tag := func(rtype string, ids []string, kv ...string) error {
		_, err := c.TagResources(&kmssdk.TagResourcesRequest{ResourceType: tea.String(rtype), RegionId: tea.String("local"),
			ResourceId: tea.StringSlice(ids), Tag: sdkTags(kv...)})
		return err
	}
	if err := tag("key", []string{k1, k2}, "env", "prod", "team", "a"); err != nil {
		t.Fatalf("TagResources: %v", err)
	}
	got, next := listTagResources(t, c, "key", []string{k2, k1}, "")
	ids := []string{k1, k2}
	slices.Sort(ids)
	want := []tagEntry{{"key", ids[0], "env", "prod"}, {"key", ids[0], "team", "a"}, {"key", ids[1], "env", "prod"}, {"key", ids[1], "team", "a"}}
	if !slices.Equal(got, want) || next != "" {
		t.Fatalf("ListTagResources = %v (next %q), want %v", got, next, want)
	}
	// The same tags as the per-key action's.
	var lrt struct {
		Tags struct {
			Tag []struct{ TagKey, TagValue string }
		}
	}
	tn.must(t, "ListResourceTags", map[string]string{"KeyId": k1}, &lrt)
	if len(lrt.Tags.Tag) != 2 {
		t.Fatalf("ListResourceTags after TagResources: %+v", lrt)
	}

	// All or none: a missing key, or a key at its 20-tag limit, leaves the
	// other key as it was.
	before := tn.canonical(t)
	sdkErr(t, tag("key", []string{k1, "00000000-0000-4000-8000-000000000000"}, "new", "x"), 404, "Forbidden.KeyNotFound")
	if tn.canonical(t) != before {
		t.Fatal("a TagResources naming a missing key changed the other key")
	}
	var many []string
	for i := 0; i < 18; i++ {
		many = append(many, fmt.Sprintf("t%02d", i), "v")
	}
	if err := tag("key", []string{k2}, many...); err != nil {
		t.Fatalf("TagResources up to 20 tags: %v", err)
	}
	before = tn.canonical(t)
	sdkErr(t, tag("key", []string{k1, k2}, "new", "x"), 400, "Rejected.LimitExceeded")
	if tn.canonical(t) != before {
		t.Fatal("a refused TagResources changed a key")
	}

	// Untag: some keys, then All.
	if _, err := c.UntagResources(&kmssdk.UntagResourcesRequest{ResourceType: tea.String("key"), RegionId: tea.String("local"),
		ResourceId: tea.StringSlice([]string{k1}), TagKey: tea.StringSlice([]string{"env"})}); err != nil {
		t.Fatalf("UntagResources: %v", err)
	}
	if got, _ := listTagResources(t, c, "key", []string{k1}, ""); !slices.Equal(got, []tagEntry{{"key", k1, "team", "a"}}) {
		t.Fatalf("after UntagResources: %v", got)
	}
	if _, err := c.UntagResources(&kmssdk.UntagResourcesRequest{ResourceType: tea.String("key"), RegionId: tea.String("local"),
		ResourceId: tea.StringSlice([]string{k1, k2}), All: tea.Bool(true)}); err != nil {
		t.Fatalf("UntagResources All: %v", err)
	}
	if got, _ := listTagResources(t, c, "key", nil, ""); len(got) != 0 {
		t.Fatalf("after UntagResources All: %v", got)
	}

	// Paging: 3 keys with 20 tags each are 60 entries, 50 then 10.
	k3 := tn.createKey(t, "three")
	var twenty []string
	for i := 0; i < 20; i++ {
		twenty = append(twenty, fmt.Sprintf("p%02d", i), "v")
	}
	if err := tag("key", []string{k1, k2, k3}, twenty...); err != nil {
		t.Fatalf("TagResources 20 tags on 3 keys: %v", err)
	}
	page1, next := listTagResources(t, c, "key", nil, "")
	if len(page1) != 50 || next == "" {
		t.Fatalf("first page: %d entries, next %q", len(page1), next)
	}
	page2, next2 := listTagResources(t, c, "key", nil, next)
	if len(page2) != 10 || next2 != "" {
		t.Fatalf("second page: %d entries, next %q", len(page2), next2)
	}
	if all := append(page1, page2...); !slices.IsSortedFunc(all, func(a, b tagEntry) int {
		if a.ID != b.ID {
			return compare(a.ID, b.ID)
		}
		return compare(a.Key, b.Key)
	}) {
		t.Fatal("pages are not in resource, tag key order")
	}
	_, err := c.ListTagResources(&kmssdk.ListTagResourcesRequest{ResourceType: tea.String("key"), NextToken: tea.String("not-a-token")})
	sdkErr(t, err, 400, "InvalidParameter")

	// Secrets share TagSecret's storage.
	if _, err := c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: tea.String("db"), SecretData: tea.String("v"), VersionId: tea.String("v1"),
		EncryptionKeyId: tea.String(k1)}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if err := tag("secret", []string{"db"}, "env", "test"); err != nil {
		t.Fatalf("TagResources secret: %v", err)
	}
	if got, _ := listTagResources(t, c, "secret", nil, ""); !slices.Equal(got, []tagEntry{{"secret", "db", "env", "test"}}) {
		t.Fatalf("secret tags: %v", got)
	}
	if sec, ok := tn.FSM().Secret(tn.AccountID, "db"); !ok || sec.Tags["env"] != "test" {
		t.Fatalf("the secret's record does not carry the tag: %+v", sec)
	}
	sdkErr(t, tag("secret", []string{"db", "missing"}, "x", "y"), 404, "Forbidden.ResourceNotFound")

	// Certificates: an unknown one is not found (nothing changes); unknown types.
	sdkErr(t, tag("certificate", []string{"12345678-1234-1234-1234-123456789012"}, "a", "b"), 404, "Forbidden.ResourceNotFound")
	sdkErr(t, tag("instance", []string{k1}, "a", "b"), 400, "InvalidParameter")
	sdkErr(t, tag("key", nil, "a", "b"), 400, "MissingParameter")
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
