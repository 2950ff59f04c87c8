package api_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	kmssdk "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/raftkms/raftkms/client"
)

// Secrets through the official SDK (kms-20160120/v3), configured with
// endpoint, protocol and credentials only: every secrets action with its
// parameters, every answer field the SDK's models carry, and the
// refusals with the reference's codes.

// secretsActions are the secrets actions of the OpenAPI.
var secretsActions = []string{
	"CreateSecret", "GetSecretValue", "PutSecretValue", "UpdateSecret", "UpdateSecretVersionStage",
	"ListSecretVersionIds", "ListSecrets", "DescribeSecret", "DeleteSecret", "RestoreSecret",
	"RotateSecret", "UpdateSecretRotationPolicy", "GetSecretPolicy", "SetSecretPolicy", "GetRandomPassword",
}

func (tn *testNode) secretArn(name string) string {
	return "acs:kms:local:" + tn.AccountID + ":secret/" + name
}

// isoDate is a time as the API writes it.
func isoDate(at time.Time) string { return at.UTC().Format("2006-01-02T15:04:05Z") }

func TestSDK_Secrets(t *testing.T) {
	eachSDKSignature(t, testSDKSecrets)
}

func testSDKSecrets(t *testing.T, tn *testNode, clock *fakeClock, c *kmssdk.Client) {
	covered := map[string]bool{}
	step := func(action string, err error, body any, optional ...string) {
		t.Helper()
		covered[action] = true
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		requireSet(t, body, optional...)
	}
	get := func(req *kmssdk.GetSecretValueRequest) *kmssdk.GetSecretValueResponseBody {
		t.Helper()
		r, err := c.GetSecretValue(req)
		step("GetSecretValue", err, r.Body, "ExtendedConfig")
		return r.Body
	}
	stages := func(vs *kmssdk.GetSecretValueResponseBodyVersionStages) []string {
		s := tea.StringSliceValue(vs.VersionStage)
		slices.Sort(s)
		return s
	}
	created := clock.Now()
	key := tn.newKey(t, nil)
	keyID := tea.StringValue(key.KeyId)

	// A Generic secret.
	cs, err := c.CreateSecret(&kmssdk.CreateSecretRequest{
		SecretName: tea.String("db-password"), SecretData: tea.String("s3cret v1"), VersionId: tea.String("v1"),
		EncryptionKeyId: tea.String(keyID), DKMSInstanceId: tea.String(tn.InstanceID), Description: tea.String("the app's database"),
		Tags: tea.String(`[{"TagKey":"env","TagValue":"test"},{"TagKey":"team","TagValue":"payments"}]`),
	})
	step("CreateSecret", err, cs.Body)
	wantEq(t, "CreateSecret Arn", tea.StringValue(cs.Body.Arn), tn.secretArn("db-password"))
	wantEq(t, "CreateSecret VersionId", tea.StringValue(cs.Body.VersionId), "v1")
	wantEq(t, "CreateSecret SecretName", tea.StringValue(cs.Body.SecretName), "db-password")
	wantEq(t, "CreateSecret SecretType", tea.StringValue(cs.Body.SecretType), "Generic")
	wantEq(t, "CreateSecret AutomaticRotation", tea.StringValue(cs.Body.AutomaticRotation), "Invalid")
	wantEq(t, "CreateSecret RotationInterval", tea.StringValue(cs.Body.RotationInterval), "")
	wantEq(t, "CreateSecret NextRotationDate", tea.StringValue(cs.Body.NextRotationDate), "")
	wantEq(t, "CreateSecret DKMSInstanceId", tea.StringValue(cs.Body.DKMSInstanceId), tn.InstanceID)
	_, err = c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: tea.String("db-password"), SecretData: tea.String("x"),
		VersionId: tea.String("v1"), EncryptionKeyId: tea.String(keyID)})
	sdkErr(t, err, 409, "Rejected.ResourceExist")

	gv := get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")})
	wantEq(t, "GetSecretValue SecretName", tea.StringValue(gv.SecretName), "db-password")
	wantEq(t, "GetSecretValue SecretData", tea.StringValue(gv.SecretData), "s3cret v1")
	wantEq(t, "GetSecretValue SecretDataType", tea.StringValue(gv.SecretDataType), "text")
	wantEq(t, "GetSecretValue SecretType", tea.StringValue(gv.SecretType), "Generic")
	wantEq(t, "GetSecretValue VersionId", tea.StringValue(gv.VersionId), "v1")
	wantEq(t, "GetSecretValue VersionStages", strings.Join(stages(gv.VersionStages), ","), "ACSCurrent")
	wantEq(t, "GetSecretValue CreateTime", tea.StringValue(gv.CreateTime), isoDate(created))
	wantEq(t, "GetSecretValue AutomaticRotation", tea.StringValue(gv.AutomaticRotation), "Invalid")
	wantEq(t, "GetSecretValue RotationInterval", tea.StringValue(gv.RotationInterval), "")
	wantEq(t, "GetSecretValue NextRotationDate", tea.StringValue(gv.NextRotationDate), "")
	wantEq(t, "GetSecretValue LastRotationDate", tea.StringValue(gv.LastRotationDate), "")
	if gv.ExtendedConfig != nil {
		t.Errorf("GetSecretValue without FetchExtendedConfig answers ExtendedConfig %q", tea.StringValue(gv.ExtendedConfig))
	}
	gv = get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password"), FetchExtendedConfig: tea.Bool(true)})
	if gv.ExtendedConfig == nil {
		t.Error("GetSecretValue with FetchExtendedConfig answers no ExtendedConfig")
	}
	_, err = c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password"), DryRun: tea.String("true")})
	sdkErr(t, err, 412, "DryRunOperationError")
	_, err = c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("no-such-secret")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")
	_, err = c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v9")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")

	// Versions and stages.
	clock.Advance(time.Minute)
	pv, err := c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v2"), SecretData: tea.String("s3cret v2")})
	step("PutSecretValue", err, pv.Body)
	wantEq(t, "PutSecretValue SecretName", tea.StringValue(pv.Body.SecretName), "db-password")
	wantEq(t, "PutSecretValue VersionId", tea.StringValue(pv.Body.VersionId), "v2")
	wantEq(t, "PutSecretValue VersionStages", strings.Join(tea.StringSliceValue(pv.Body.VersionStages.VersionStage), ","), "ACSCurrent")
	gv = get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")})
	wantEq(t, "ACSCurrent after PutSecretValue", tea.StringValue(gv.SecretData), "s3cret v2")
	wantEq(t, "its CreateTime", tea.StringValue(gv.CreateTime), isoDate(clock.Now()))
	gv = get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password"), VersionStage: tea.String("ACSPrevious")})
	wantEq(t, "ACSPrevious after PutSecretValue", tea.StringValue(gv.SecretData), "s3cret v1")
	wantEq(t, "ACSPrevious VersionId", tea.StringValue(gv.VersionId), "v1")
	wantEq(t, "ACSPrevious VersionStages", strings.Join(stages(gv.VersionStages), ","), "ACSPrevious")
	// The same VersionId with the same data is a success; with other data
	// a conflict.
	pv, err = c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v2"), SecretData: tea.String("s3cret v2")})
	step("PutSecretValue", err, pv.Body)
	_, err = c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v2"), SecretData: tea.String("other")})
	sdkErr(t, err, 409, "Rejected.ResourceExist")
	_, err = c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("no-such-secret"), VersionId: tea.String("v2"), SecretData: tea.String("x")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")

	// A binary version with a custom stage only.
	bin := []byte{0, 1, 2, 0xfe, 0xff}
	pv, err = c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v3"),
		SecretData: tea.String(base64.StdEncoding.EncodeToString(bin)), SecretDataType: tea.String("binary"), VersionStages: tea.String(`["blue"]`)})
	step("PutSecretValue", err, pv.Body)
	wantEq(t, "binary version's stages", strings.Join(tea.StringSliceValue(pv.Body.VersionStages.VersionStage), ","), "blue")
	gv = get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password"), VersionStage: tea.String("blue")})
	wantEq(t, "binary SecretDataType", tea.StringValue(gv.SecretDataType), "binary")
	if got, err := base64.StdEncoding.DecodeString(tea.StringValue(gv.SecretData)); err != nil || string(got) != string(bin) {
		t.Errorf("binary SecretData = %q (%v), want the Base64 of %x", tea.StringValue(gv.SecretData), err, bin)
	}
	wantEq(t, "ACSCurrent after a version with a custom stage", tea.StringValue(get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")}).VersionId), "v2")

	// A version that loses its only label is deprecated.
	pv, err = c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v4"),
		SecretData: tea.String("s3cret v4"), VersionStages: tea.String(`["tmp"]`)})
	step("PutSecretValue", err, pv.Body)
	us, err := c.UpdateSecretVersionStage(&kmssdk.UpdateSecretVersionStageRequest{SecretName: tea.String("db-password"), VersionStage: tea.String("tmp"), RemoveFromVersion: tea.String("v4")})
	step("UpdateSecretVersionStage", err, us.Body)
	wantEq(t, "UpdateSecretVersionStage SecretName", tea.StringValue(us.Body.SecretName), "db-password")

	// ACSCurrent back to v1: ACSPrevious follows to v2.
	us, err = c.UpdateSecretVersionStage(&kmssdk.UpdateSecretVersionStageRequest{SecretName: tea.String("db-password"), VersionStage: tea.String("ACSCurrent"),
		RemoveFromVersion: tea.String("v2"), MoveToVersion: tea.String("v1")})
	step("UpdateSecretVersionStage", err, us.Body)
	wantEq(t, "ACSCurrent after the move", tea.StringValue(get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")}).SecretData), "s3cret v1")
	wantEq(t, "ACSPrevious after the move", tea.StringValue(get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password"), VersionStage: tea.String("ACSPrevious")}).VersionId), "v2")
	_, err = c.UpdateSecretVersionStage(&kmssdk.UpdateSecretVersionStageRequest{SecretName: tea.String("db-password"), VersionStage: tea.String("ACSCurrent"),
		RemoveFromVersion: tea.String("v3"), MoveToVersion: tea.String("v2")})
	sdkErr(t, err, 400, "InvalidParameter")

	lv, err := c.ListSecretVersionIds(&kmssdk.ListSecretVersionIdsRequest{SecretName: tea.String("db-password"), PageSize: tea.Int32(10)})
	step("ListSecretVersionIds", err, lv.Body)
	wantEq(t, "ListSecretVersionIds SecretName", tea.StringValue(lv.Body.SecretName), "db-password")
	wantEq(t, "ListSecretVersionIds TotalCount", tea.Int32Value(lv.Body.TotalCount), int32(3))
	wantEq(t, "ListSecretVersionIds PageNumber", tea.Int32Value(lv.Body.PageNumber), int32(1))
	wantEq(t, "ListSecretVersionIds PageSize", tea.Int32Value(lv.Body.PageSize), int32(10))
	got := map[string]string{}
	for _, v := range lv.Body.VersionIds.VersionId {
		s := tea.StringSliceValue(v.VersionStages.VersionStage)
		slices.Sort(s)
		got[tea.StringValue(v.VersionId)] = strings.Join(s, ",")
		if tea.StringValue(v.CreateTime) == "" {
			t.Errorf("version %s without CreateTime", tea.StringValue(v.VersionId))
		}
	}
	wantEq(t, "the listed versions and their stages", mapText(got), "v1=ACSCurrent v2=ACSPrevious v3=blue")
	lv, err = c.ListSecretVersionIds(&kmssdk.ListSecretVersionIdsRequest{SecretName: tea.String("db-password"), IncludeDeprecated: tea.String("true"), PageSize: tea.Int32(10)})
	step("ListSecretVersionIds", err, lv.Body, "VersionStages")
	wantEq(t, "ListSecretVersionIds TotalCount with the deprecated", tea.Int32Value(lv.Body.TotalCount), int32(4))
	for _, v := range lv.Body.VersionIds.VersionId {
		if tea.StringValue(v.VersionId) == "v4" && (v.VersionStages == nil || len(v.VersionStages.VersionStage) != 0) {
			t.Errorf("deprecated v4's VersionStages = %+v, want an empty list", v.VersionStages)
		}
	}

	// Metadata.
	clock.Advance(time.Minute)
	up, err := c.UpdateSecret(&kmssdk.UpdateSecretRequest{SecretName: tea.String("db-password"), Description: tea.String("rotated by hand")})
	step("UpdateSecret", err, up.Body)
	wantEq(t, "UpdateSecret SecretName", tea.StringValue(up.Body.SecretName), "db-password")
	ds, err := c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String("db-password"), FetchTags: tea.String("true")})
	step("DescribeSecret", err, ds.Body)
	d := ds.Body
	wantEq(t, "DescribeSecret Arn", tea.StringValue(d.Arn), tn.secretArn("db-password"))
	wantEq(t, "DescribeSecret SecretName", tea.StringValue(d.SecretName), "db-password")
	wantEq(t, "DescribeSecret SecretType", tea.StringValue(d.SecretType), "Generic")
	wantEq(t, "DescribeSecret Description", tea.StringValue(d.Description), "rotated by hand")
	wantEq(t, "DescribeSecret EncryptionKeyId", tea.StringValue(d.EncryptionKeyId), keyID)
	wantEq(t, "DescribeSecret DKMSInstanceId", tea.StringValue(d.DKMSInstanceId), tn.InstanceID)
	wantEq(t, "DescribeSecret CreateTime", tea.StringValue(d.CreateTime), isoDate(created))
	wantEq(t, "DescribeSecret UpdateTime", tea.StringValue(d.UpdateTime), isoDate(clock.Now()))
	wantEq(t, "DescribeSecret PlannedDeleteTime", tea.StringValue(d.PlannedDeleteTime), "")
	wantEq(t, "DescribeSecret AutomaticRotation", tea.StringValue(d.AutomaticRotation), "Invalid")
	wantEq(t, "DescribeSecret NextRotationDate", tea.StringValue(d.NextRotationDate), "")
	wantEq(t, "DescribeSecret tags", tagText(d.Tags.Tag), "env=test team=payments")
	// The per-resource tag actions name a secret by SecretName.
	tr, err := c.TagResource(&kmssdk.TagResourceRequest{SecretName: tea.String("db-password"), Tags: tea.String(`[{"TagKey":"owner","TagValue":"dba"}]`)})
	step("TagResource", err, tr.Body)
	ur, err := c.UntagResource(&kmssdk.UntagResourceRequest{SecretName: tea.String("db-password"), TagKeys: tea.String(`["team"]`)})
	step("UntagResource", err, ur.Body)
	ds, err = c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String("db-password"), FetchTags: tea.String("true")})
	step("DescribeSecret", err, ds.Body)
	wantEq(t, "tags after TagResource and UntagResource", tagText(ds.Body.Tags.Tag), "env=test owner=dba")
	_, err = c.TagResource(&kmssdk.TagResourceRequest{SecretName: tea.String("db-password"), KeyId: tea.String(keyID), Tags: tea.String(`[{"TagKey":"x","TagValue":"y"}]`)})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.UntagResource(&kmssdk.UntagResourceRequest{SecretName: tea.String("no-such-secret"), TagKeys: tea.String(`["team"]`)})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")
	ur, err = c.UntagResource(&kmssdk.UntagResourceRequest{SecretName: tea.String("db-password"), TagKeys: tea.String(`["owner"]`)})
	step("UntagResource", err, ur.Body)
	tr, err = c.TagResource(&kmssdk.TagResourceRequest{SecretName: tea.String("db-password"), Tags: tea.String(`[{"TagKey":"team","TagValue":"payments"}]`)})
	step("TagResource", err, tr.Body)
	ds, err = c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String("db-password")})
	step("DescribeSecret", err, ds.Body, "Tags")
	if ds.Body.Tags != nil {
		t.Errorf("DescribeSecret without FetchTags answers Tags %+v", ds.Body.Tags)
	}
	_, err = c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String("no-such-secret")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")

	// A second secret, for the listing.
	cs, err = c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: tea.String("api-token"), SecretData: tea.String("t0ken"), VersionId: tea.String("1"),
		EncryptionKeyId: tea.String(keyID), Tags: tea.String(`[{"TagKey":"env","TagValue":"prod"}]`)})
	step("CreateSecret", err, cs.Body)
	ls, err := c.ListSecrets(&kmssdk.ListSecretsRequest{FetchTags: tea.String("true"), PageNumber: tea.Int32(1), PageSize: tea.Int32(10)})
	step("ListSecrets", err, ls.Body)
	wantEq(t, "ListSecrets TotalCount", tea.Int32Value(ls.Body.TotalCount), int32(2))
	wantEq(t, "ListSecrets PageNumber", tea.Int32Value(ls.Body.PageNumber), int32(1))
	wantEq(t, "ListSecrets PageSize", tea.Int32Value(ls.Body.PageSize), int32(10))
	listed := map[string]string{}
	for _, s := range ls.Body.SecretList.Secret {
		listed[tea.StringValue(s.SecretName)] = tagText(s.Tags.Tag)
		wantEq(t, "ListSecrets SecretType", tea.StringValue(s.SecretType), "Generic")
		wantEq(t, "ListSecrets PlannedDeleteTime", tea.StringValue(s.PlannedDeleteTime), "")
		if tea.StringValue(s.CreateTime) == "" || tea.StringValue(s.UpdateTime) == "" {
			t.Errorf("ListSecrets %s without CreateTime or UpdateTime", tea.StringValue(s.SecretName))
		}
	}
	wantEq(t, "ListSecrets secrets and tags", mapText(listed), "api-token=env=prod db-password=env=test team=payments")
	ls, err = c.ListSecrets(&kmssdk.ListSecretsRequest{Filters: tea.String(`[{"Key":"TagValue","Values":["prod"]}]`), PageSize: tea.Int32(1)})
	step("ListSecrets", err, ls.Body, "Tags")
	wantEq(t, "ListSecrets filtered by TagValue", tea.Int32Value(ls.Body.TotalCount), int32(1))
	wantEq(t, "the one listed", tea.StringValue(ls.Body.SecretList.Secret[0].SecretName), "api-token")
	if ls.Body.SecretList.Secret[0].Tags != nil {
		t.Error("ListSecrets without FetchTags answers Tags")
	}
	ls, err = c.ListSecrets(&kmssdk.ListSecretsRequest{PageNumber: tea.Int32(2), PageSize: tea.Int32(1)})
	step("ListSecrets", err, ls.Body, "Tags")
	wantEq(t, "ListSecrets page 2 of size 1", tea.StringValue(ls.Body.SecretList.Secret[0].SecretName), "db-password")
	_, err = c.ListSecrets(&kmssdk.ListSecretsRequest{Filters: tea.String(`[{"Key":"KeyState","Values":["Enabled"]}]`)})
	sdkErr(t, err, 400, "InvalidParameter")

	// Policies.
	gp, err := c.GetSecretPolicy(&kmssdk.GetSecretPolicyRequest{SecretName: tea.String("db-password"), PolicyName: tea.String("default")})
	step("GetSecretPolicy", err, gp.Body)
	var doc struct{ Version string }
	if err := json.Unmarshal([]byte(tea.StringValue(gp.Body.Policy)), &doc); err != nil || doc.Version != "1" {
		t.Errorf("the default secret policy %q is not a policy document (%v)", tea.StringValue(gp.Body.Policy), err)
	}
	policy := `{"Version":"1","Statement":[{"Sid":"Owner","Effect":"Allow","Principal":{"RAM":["acs:ram::` + tn.AccountID + `:*"]},"Action":["kms:*"],"Resource":["*"]}]}`
	sp, err := c.SetSecretPolicy(&kmssdk.SetSecretPolicyRequest{SecretName: tea.String("db-password"), PolicyName: tea.String("default"), Policy: tea.String(policy)})
	step("SetSecretPolicy", err, sp.Body)
	gp, err = c.GetSecretPolicy(&kmssdk.GetSecretPolicyRequest{SecretName: tea.String("db-password")})
	step("GetSecretPolicy", err, gp.Body)
	wantEq(t, "GetSecretPolicy after SetSecretPolicy", tea.StringValue(gp.Body.Policy), policy)
	_, err = c.SetSecretPolicy(&kmssdk.SetSecretPolicyRequest{SecretName: tea.String("db-password"), PolicyName: tea.String("default"), Policy: tea.String(`{"Version":"2"}`)})
	sdkErr(t, err, 400, "InvalidParameter")

	// A disabled encryption key makes the secret unreadable, until enabled.
	if _, err := c.DisableKey(&kmssdk.DisableKeyRequest{KeyId: tea.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")})
	sdkErr(t, err, 409, "Rejected.Disabled")
	if _, err := c.EnableKey(&kmssdk.EnableKeyRequest{KeyId: tea.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "readable again", tea.StringValue(get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")}).SecretData), "s3cret v1")

	// Generic secrets rotate by PutSecretValue only.
	_, err = c.RotateSecret(&kmssdk.RotateSecretRequest{SecretName: tea.String("db-password"), VersionId: tea.String("r1")})
	sdkErr(t, err, 400, "Rejected.UnsupportedOperation")

	// Deletion with a recovery window, restore, forced deletion.
	_, err = c.DeleteSecret(&kmssdk.DeleteSecretRequest{SecretName: tea.String("db-password"), RecoveryWindowInDays: tea.String("6")})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.DeleteSecret(&kmssdk.DeleteSecretRequest{SecretName: tea.String("db-password"), RecoveryWindowInDays: tea.String("31")})
	sdkErr(t, err, 400, "InvalidParameter")
	_, err = c.RestoreSecret(&kmssdk.RestoreSecretRequest{SecretName: tea.String("db-password")})
	sdkErr(t, err, 400, "Rejected.NotPendingDeletion")
	del, err := c.DeleteSecret(&kmssdk.DeleteSecretRequest{SecretName: tea.String("db-password"), RecoveryWindowInDays: tea.String("7")})
	step("DeleteSecret", err, del.Body)
	wantEq(t, "DeleteSecret SecretName", tea.StringValue(del.Body.SecretName), "db-password")
	wantEq(t, "DeleteSecret PlannedDeleteTime", tea.StringValue(del.Body.PlannedDeleteTime), isoDate(clock.Now().Add(7*24*time.Hour)))
	_, err = c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")})
	sdkErr(t, err, 400, "Rejected.PendingDeletion")
	_, err = c.PutSecretValue(&kmssdk.PutSecretValueRequest{SecretName: tea.String("db-password"), VersionId: tea.String("v5"), SecretData: tea.String("x")})
	sdkErr(t, err, 400, "Rejected.PendingDeletion")
	ds, err = c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String("db-password")})
	step("DescribeSecret", err, ds.Body, "Tags")
	wantEq(t, "PlannedDeleteTime while pending", tea.StringValue(ds.Body.PlannedDeleteTime), isoDate(clock.Now().Add(7*24*time.Hour)))
	_, err = c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: tea.String("db-password"), SecretData: tea.String("x"), VersionId: tea.String("v1"), EncryptionKeyId: tea.String(keyID)})
	sdkErr(t, err, 409, "Rejected.ResourceExist")
	rs, err := c.RestoreSecret(&kmssdk.RestoreSecretRequest{SecretName: tea.String("db-password")})
	step("RestoreSecret", err, rs.Body)
	wantEq(t, "RestoreSecret SecretName", tea.StringValue(rs.Body.SecretName), "db-password")
	wantEq(t, "readable after RestoreSecret", tea.StringValue(get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")}).SecretData), "s3cret v1")
	_, err = c.RestoreSecret(&kmssdk.RestoreSecretRequest{SecretName: tea.String("no-such-secret")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")
	del, err = c.DeleteSecret(&kmssdk.DeleteSecretRequest{SecretName: tea.String("db-password"), ForceDeleteWithoutRecovery: tea.String("true")})
	step("DeleteSecret", err, del.Body)
	_, err = c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String("db-password")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")
	// Gone: the name is free again.
	cs, err = c.CreateSecret(&kmssdk.CreateSecretRequest{SecretName: tea.String("db-password"), SecretData: tea.String("again"), VersionId: tea.String("v1"), EncryptionKeyId: tea.String(keyID)})
	step("CreateSecret", err, cs.Body)
	wantEq(t, "the new secret's value", tea.StringValue(get(&kmssdk.GetSecretValueRequest{SecretName: tea.String("db-password")}).SecretData), "again")

	// Random passwords.
	rp, err := c.GetRandomPassword(&kmssdk.GetRandomPasswordRequest{PasswordLength: tea.String("24"), ExcludePunctuation: tea.String("true"),
		ExcludeCharacters: tea.String("0Oo1lI"), RequireEachIncludedType: tea.String("true")})
	step("GetRandomPassword", err, rp.Body)
	pw := tea.StringValue(rp.Body.RandomPassword)
	if len(pw) != 24 || strings.ContainsAny(pw, "0Oo1lI") || strings.IndexFunc(pw, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 ||
		!strings.ContainsFunc(pw, unicode.IsUpper) || !strings.ContainsFunc(pw, unicode.IsLower) || !strings.ContainsFunc(pw, unicode.IsDigit) {
		t.Errorf("GetRandomPassword = %q: want 24 letters and digits of each kind, none of 0Oo1lI", pw)
	}
	rp, err = c.GetRandomPassword(&kmssdk.GetRandomPasswordRequest{})
	step("GetRandomPassword", err, rp.Body)
	wantEq(t, "the default password length", len(tea.StringValue(rp.Body.RandomPassword)), 32)
	_, err = c.GetRandomPassword(&kmssdk.GetRandomPasswordRequest{PasswordLength: tea.String("7")})
	sdkErr(t, err, 400, "InvalidParameter")

	// A RAMCredentials secret.
	testSDKRAMSecret(t, tn, clock, c, keyID, step)

	for _, a := range secretsActions {
		if !covered[a] {
			t.Errorf("%s not called through the SDK", a)
		}
	}
}

// testSDKRAMSecret: a RAMCredentials secret holding a RAM user's access
// key, rotated by RotateSecret; the key two rotations old stops working,
// the previous one keeps working.
func testSDKRAMSecret(t *testing.T, tn *testNode, clock *fakeClock, c *kmssdk.Client, keyID string, step func(string, error, any, ...string)) {
	tn.must(t, "CreateUser", map[string]string{"UserName": "app"}, nil)
	var ak struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	tn.must(t, "CreateAccessKey", map[string]string{"UserName": "app"}, &ak)
	first := ak.AccessKey
	data, _ := json.Marshal(map[string]any{"AccessKeys": []map[string]string{{"AccessKeyId": first.AccessKeyId, "AccessKeySecret": first.AccessKeySecret}}})
	cs, err := c.CreateSecret(&kmssdk.CreateSecretRequest{
		SecretName: tea.String("$Auto"), SecretType: tea.String("RAMCredentials"), SecretData: tea.String(string(data)), VersionId: tea.String("r1"),
		EncryptionKeyId: tea.String(keyID), ExtendedConfig: map[string]any{"SecretSubType": "RamUserAccessKey", "UserName": "app"},
		EnableAutomaticRotation: tea.Bool(true), RotationInterval: tea.String("30d"),
	})
	step("CreateSecret", err, cs.Body)
	name := "acs/ram/user/app"
	wantEq(t, "RAMCredentials SecretName", tea.StringValue(cs.Body.SecretName), name)
	wantEq(t, "RAMCredentials Arn", tea.StringValue(cs.Body.Arn), tn.secretArn(name))
	wantEq(t, "RAMCredentials SecretType", tea.StringValue(cs.Body.SecretType), "RAMCredentials")
	wantEq(t, "RAMCredentials AutomaticRotation", tea.StringValue(cs.Body.AutomaticRotation), "Enabled")
	wantEq(t, "RAMCredentials RotationInterval", tea.StringValue(cs.Body.RotationInterval), "2592000s")
	wantEq(t, "RAMCredentials NextRotationDate", tea.StringValue(cs.Body.NextRotationDate), isoDate(clock.Now().Add(30*24*time.Hour)))
	wantUserName(t, "CreateSecret ExtendedConfig", tea.StringValue(cs.Body.ExtendedConfig), "app")

	r, err := c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String(name), FetchExtendedConfig: tea.Bool(true)})
	step("GetSecretValue", err, r.Body)
	wantUserName(t, "GetSecretValue ExtendedConfig", tea.StringValue(r.Body.ExtendedConfig), "app")
	wantEq(t, "GetSecretValue of RAMCredentials: AutomaticRotation", tea.StringValue(r.Body.AutomaticRotation), "Enabled")
	wantEq(t, "GetSecretValue of RAMCredentials: RotationInterval", tea.StringValue(r.Body.RotationInterval), "2592000s")

	// The custom data of the extended configuration, sent by the SDK as
	// ExtendedConfig.CustomData.<member> query parameters.
	up, err := c.UpdateSecret(&kmssdk.UpdateSecretRequest{SecretName: tea.String(name),
		ExtendedConfig: &kmssdk.UpdateSecretRequestExtendedConfig{CustomData: map[string]any{"DBName": "app1", "Port": "3306"}}})
	step("UpdateSecret", err, up.Body)
	ds, err := c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String(name)})
	step("DescribeSecret", err, ds.Body, "Tags")
	var ext struct {
		UserName   string
		CustomData map[string]string
	}
	if err := json.Unmarshal([]byte(tea.StringValue(ds.Body.ExtendedConfig)), &ext); err != nil || ext.UserName != "app" ||
		ext.CustomData["DBName"] != "app1" || ext.CustomData["Port"] != "3306" {
		t.Errorf("ExtendedConfig after UpdateSecret = %q (%v), want UserName app and CustomData DBName app1, Port 3306", tea.StringValue(ds.Body.ExtendedConfig), err)
	}

	clock.Advance(time.Hour)
	rotate := func(version string) map[string]string {
		t.Helper()
		rs, err := c.RotateSecret(&kmssdk.RotateSecretRequest{SecretName: tea.String(name), VersionId: tea.String(version)})
		step("RotateSecret", err, rs.Body)
		wantEq(t, "RotateSecret Arn", tea.StringValue(rs.Body.Arn), tn.secretArn(name))
		wantEq(t, "RotateSecret SecretName", tea.StringValue(rs.Body.SecretName), name)
		wantEq(t, "RotateSecret VersionId", tea.StringValue(rs.Body.VersionId), version)
		r, err := c.GetSecretValue(&kmssdk.GetSecretValueRequest{SecretName: tea.String(name)})
		step("GetSecretValue", err, r.Body, "ExtendedConfig")
		wantEq(t, "the rotated version is ACSCurrent", tea.StringValue(r.Body.VersionId), version)
		wantEq(t, "LastRotationDate", tea.StringValue(r.Body.LastRotationDate), isoDate(clock.Now()))
		var v map[string]string
		if err := json.Unmarshal([]byte(tea.StringValue(r.Body.SecretData)), &v); err != nil || v["AccessKeyId"] == "" || v["AccessKeySecret"] == "" || v["GenerateTimestamp"] == "" {
			t.Fatalf("the rotated value is not {AccessKeyId, AccessKeySecret, GenerateTimestamp}: %v", err)
		}
		return v
	}
	second := rotate("r2")
	if second["AccessKeyId"] == first.AccessKeyId {
		t.Fatal("RotateSecret kept the access key")
	}
	wantEq(t, "the first key works after one rotation", tn.accessKeyKnown(t, first.AccessKeyId, first.AccessKeySecret), true)
	wantEq(t, "the new key works", tn.accessKeyKnown(t, second["AccessKeyId"], second["AccessKeySecret"]), true)
	third := rotate("r3")
	wantEq(t, "the first key works after two rotations", tn.accessKeyKnown(t, first.AccessKeyId, first.AccessKeySecret), false)
	wantEq(t, "the previous key works", tn.accessKeyKnown(t, second["AccessKeyId"], second["AccessKeySecret"]), true)
	wantEq(t, "the current key works", tn.accessKeyKnown(t, third["AccessKeyId"], third["AccessKeySecret"]), true)
	_, err = c.RotateSecret(&kmssdk.RotateSecretRequest{SecretName: tea.String("no-such-secret"), VersionId: tea.String("x")})
	sdkErr(t, err, 404, "Forbidden.ResourceNotFound")

	ur, err := c.UpdateSecretRotationPolicy(&kmssdk.UpdateSecretRotationPolicyRequest{SecretName: tea.String(name), EnableAutomaticRotation: tea.Bool(false)})
	step("UpdateSecretRotationPolicy", err, ur.Body)
	wantEq(t, "UpdateSecretRotationPolicy SecretName", tea.StringValue(ur.Body.SecretName), name)
	ds, err = c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String(name)})
	step("DescribeSecret", err, ds.Body, "Tags")
	wantEq(t, "AutomaticRotation turned off", tea.StringValue(ds.Body.AutomaticRotation), "Disabled")
	wantEq(t, "NextRotationDate when off", tea.StringValue(ds.Body.NextRotationDate), "")
	wantEq(t, "DescribeSecret LastRotationDate", tea.StringValue(ds.Body.LastRotationDate), isoDate(clock.Now()))
	ur, err = c.UpdateSecretRotationPolicy(&kmssdk.UpdateSecretRotationPolicyRequest{SecretName: tea.String(name), EnableAutomaticRotation: tea.Bool(true), RotationInterval: tea.String("7d")})
	step("UpdateSecretRotationPolicy", err, ur.Body)
	ds, err = c.DescribeSecret(&kmssdk.DescribeSecretRequest{SecretName: tea.String(name)})
	step("DescribeSecret", err, ds.Body, "Tags")
	wantEq(t, "AutomaticRotation turned on", tea.StringValue(ds.Body.AutomaticRotation), "Enabled")
	wantEq(t, "RotationInterval", tea.StringValue(ds.Body.RotationInterval), "604800s")
	wantEq(t, "NextRotationDate", tea.StringValue(ds.Body.NextRotationDate), isoDate(clock.Now().Add(7*24*time.Hour)))
	_, err = c.UpdateSecretRotationPolicy(&kmssdk.UpdateSecretRotationPolicyRequest{SecretName: tea.String(name), EnableAutomaticRotation: tea.Bool(true), RotationInterval: tea.String("1h")})
	sdkErr(t, err, 400, "InvalidParameter")
}

// accessKeyKnown reports whether the service knows an access key: a call
// signed with it is refused for permissions (the user has no policy), not
// for the key.
func (tn *testNode) accessKeyKnown(t *testing.T, id, secret string) bool {
	t.Helper()
	cl, err := client.New(tn.Endpoint(), id, secret)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Call(ctx30(t), "ListKeys", nil)
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.Code == "InvalidAccessKeyId.NotFound":
		return false
	case err == nil, errors.As(err, &ae) && ae.Code == "Forbidden.NoPermission":
		return true
	}
	t.Fatalf("a call signed with access key %s: %v", id, err)
	return false
}

func wantUserName(t *testing.T, what, ext, user string) {
	t.Helper()
	var v struct{ SecretSubType, UserName string }
	if err := json.Unmarshal([]byte(ext), &v); err != nil || v.SecretSubType != "RamUserAccessKey" || v.UserName != user {
		t.Errorf("%s = %q (%v), want SecretSubType RamUserAccessKey and UserName %s", what, ext, err, user)
	}
}

// mapText is a map as "k=v k=v", sorted by key.
func mapText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

// tagText is the SDK's tag list (any of its tag types) as "k=v k=v".
func tagText[T interface {
	*kmssdk.DescribeSecretResponseBodyTagsTag | *kmssdk.ListSecretsResponseBodySecretListSecretTagsTag
}](tags []T) string {
	m := map[string]string{}
	for _, tag := range tags {
		switch x := any(tag).(type) {
		case *kmssdk.DescribeSecretResponseBodyTagsTag:
			m[tea.StringValue(x.TagKey)] = tea.StringValue(x.TagValue)
		case *kmssdk.ListSecretsResponseBodySecretListSecretTagsTag:
			m[tea.StringValue(x.TagKey)] = tea.StringValue(x.TagValue)
		}
	}
	return mapText(m)
}

// The answers carry exactly the SDK's fields: each decodes strictly into
// the SDK's response model (an unknown field fails).
func TestSecrets_AnswersAreTheSDKsModels(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "secrets")
	var cs kmssdk.CreateSecretResponseBody
	decodeStrict(t, tn.must(t, "CreateSecret", map[string]string{"SecretName": "s", "SecretData": "v", "VersionId": "1", "EncryptionKeyId": key,
		"Tags": `[{"TagKey":"k","TagValue":"v"}]`}, nil).Body, &cs)
	var gv kmssdk.GetSecretValueResponseBody
	decodeStrict(t, tn.must(t, "GetSecretValue", map[string]string{"SecretName": "s", "FetchExtendedConfig": "true"}, nil).Body, &gv)
	var pv kmssdk.PutSecretValueResponseBody
	decodeStrict(t, tn.must(t, "PutSecretValue", map[string]string{"SecretName": "s", "SecretData": "w", "VersionId": "2"}, nil).Body, &pv)
	var lv kmssdk.ListSecretVersionIdsResponseBody
	decodeStrict(t, tn.must(t, "ListSecretVersionIds", map[string]string{"SecretName": "s", "IncludeDeprecated": "true"}, nil).Body, &lv)
	var ls kmssdk.ListSecretsResponseBody
	decodeStrict(t, tn.must(t, "ListSecrets", map[string]string{"FetchTags": "true"}, nil).Body, &ls)
	var ds kmssdk.DescribeSecretResponseBody
	decodeStrict(t, tn.must(t, "DescribeSecret", map[string]string{"SecretName": "s", "FetchTags": "true"}, nil).Body, &ds)
	var gp kmssdk.GetSecretPolicyResponseBody
	decodeStrict(t, tn.must(t, "GetSecretPolicy", map[string]string{"SecretName": "s"}, nil).Body, &gp)
	var rp kmssdk.GetRandomPasswordResponseBody
	decodeStrict(t, tn.must(t, "GetRandomPassword", nil, nil).Body, &rp)
	var del kmssdk.DeleteSecretResponseBody
	decodeStrict(t, tn.must(t, "DeleteSecret", map[string]string{"SecretName": "s"}, nil).Body, &del)
	var rs kmssdk.RestoreSecretResponseBody
	decodeStrict(t, tn.must(t, "RestoreSecret", map[string]string{"SecretName": "s"}, nil).Body, &rs)
	// The default recovery window is 30 days.
	at := parseDate(t, "PlannedDeleteTime", tea.StringValue(del.PlannedDeleteTime))
	if d := time.Until(at); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("PlannedDeleteTime %s is not 30 days ahead", at)
	}
}

// Writes answer the Raft index of the change; the secrets' parameters are
// refused with the reference's codes, and nothing changes.
func TestSecrets_Refusals(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "secrets")
	resp := tn.must(t, "CreateSecret", map[string]string{"SecretName": "s", "SecretData": "v", "VersionId": "1", "EncryptionKeyId": key}, nil)
	if resp.Index == 0 {
		t.Error("CreateSecret answered no X-Kms-Index")
	}
	before := tn.canonical(t)
	for _, tc := range []struct {
		name, action string
		params       map[string]string
		status       int
		code         string
	}{
		{"CreateSecret without SecretName", "CreateSecret", map[string]string{"SecretData": "v", "VersionId": "1"}, 400, "MissingParameter"},
		{"CreateSecret without SecretData", "CreateSecret", map[string]string{"SecretName": "t", "VersionId": "1"}, 400, "MissingParameter"},
		{"CreateSecret with a bad name", "CreateSecret", map[string]string{"SecretName": "a b", "SecretData": "v", "VersionId": "1"}, 400, "InvalidParameter"},
		{"CreateSecret with a name of 193 characters", "CreateSecret", map[string]string{"SecretName": strings.Repeat("a", 193), "SecretData": "v", "VersionId": "1"}, 400, "InvalidParameter"},
		{"CreateSecret with a bad VersionId", "CreateSecret", map[string]string{"SecretName": "t", "SecretData": "v", "VersionId": "a/b"}, 400, "InvalidParameter"},
		{"CreateSecret with SecretData of 30721 bytes", "CreateSecret", map[string]string{"SecretName": "t", "SecretData": strings.Repeat("x", 30721), "VersionId": "1"}, 400, "InvalidParameter"},
		{"CreateSecret with binary data not Base64", "CreateSecret", map[string]string{"SecretName": "t", "SecretData": "not base64!", "SecretDataType": "binary", "VersionId": "1"}, 400, "InvalidParameter"},
		{"CreateSecret with another SecretDataType", "CreateSecret", map[string]string{"SecretName": "t", "SecretData": "v", "SecretDataType": "json", "VersionId": "1"}, 400, "InvalidParameter"},
		{"CreateSecret with another SecretType", "CreateSecret", map[string]string{"SecretName": "t", "SecretData": "v", "SecretType": "Rds", "VersionId": "1"}, 400, "InvalidParameter"},
		{"CreateSecret with Tags not JSON", "CreateSecret", map[string]string{"SecretName": "t", "SecretData": "v", "VersionId": "1", "Tags": "[{"}, 400, "InvalidParameter"},
		{"CreateSecret with an unknown key", "CreateSecret", map[string]string{"SecretName": "t", "SecretData": "v", "VersionId": "1", "EncryptionKeyId": "alias/none"}, 404, "Forbidden.AliasNotFound"},
		{"CreateSecret with an existing name", "CreateSecret", map[string]string{"SecretName": "s", "SecretData": "v", "VersionId": "1", "EncryptionKeyId": key}, 409, "Rejected.ResourceExist"},
		{"GetSecretValue of an unknown secret", "GetSecretValue", map[string]string{"SecretName": "nope"}, 404, "Forbidden.ResourceNotFound"},
		{"GetSecretValue of an unknown stage", "GetSecretValue", map[string]string{"SecretName": "s", "VersionStage": "nope"}, 404, "Forbidden.ResourceNotFound"},
		{"GetSecretValue FetchExtendedConfig not a boolean", "GetSecretValue", map[string]string{"SecretName": "s", "FetchExtendedConfig": "yes"}, 400, "InvalidParameter"},
		{"PutSecretValue with an existing VersionId and other data", "PutSecretValue", map[string]string{"SecretName": "s", "SecretData": "other", "VersionId": "1"}, 409, "Rejected.ResourceExist"},
		{"PutSecretValue with VersionStages not JSON", "PutSecretValue", map[string]string{"SecretName": "s", "SecretData": "w", "VersionId": "2", "VersionStages": "ACSCurrent"}, 400, "InvalidParameter"},
		{"PutSecretValue with no VersionStages", "PutSecretValue", map[string]string{"SecretName": "s", "SecretData": "w", "VersionId": "2", "VersionStages": "[]"}, 400, "InvalidParameter"},
		{"UpdateSecretVersionStage from a version without it", "UpdateSecretVersionStage", map[string]string{"SecretName": "s", "VersionStage": "ACSCurrent", "RemoveFromVersion": "2", "MoveToVersion": "1"}, 400, "InvalidParameter"},
		{"UpdateSecretVersionStage to an unknown version", "UpdateSecretVersionStage", map[string]string{"SecretName": "s", "VersionStage": "blue", "MoveToVersion": "9"}, 404, "Forbidden.ResourceNotFound"},
		{"ListSecretVersionIds IncludeDeprecated not a boolean", "ListSecretVersionIds", map[string]string{"SecretName": "s", "IncludeDeprecated": "1"}, 400, "InvalidParameter"},
		{"ListSecrets with PageSize 101", "ListSecrets", map[string]string{"PageSize": "101"}, 400, "InvalidParameter"},
		{"ListSecrets with Filters not JSON", "ListSecrets", map[string]string{"Filters": "SecretName=s"}, 400, "InvalidParameter"},
		{"ListSecrets with a filter without values", "ListSecrets", map[string]string{"Filters": `[{"Key":"SecretName","Values":[]}]`}, 400, "InvalidParameter"},
		{"DescribeSecret FetchTags not a boolean", "DescribeSecret", map[string]string{"SecretName": "s", "FetchTags": "always"}, 400, "InvalidParameter"},
		{"DeleteSecret with RecoveryWindowInDays 6", "DeleteSecret", map[string]string{"SecretName": "s", "RecoveryWindowInDays": "6"}, 400, "InvalidParameter"},
		{"DeleteSecret with RecoveryWindowInDays not a number", "DeleteSecret", map[string]string{"SecretName": "s", "RecoveryWindowInDays": "a week"}, 400, "InvalidParameter"},
		{"DeleteSecret of an unknown secret", "DeleteSecret", map[string]string{"SecretName": "nope"}, 404, "Forbidden.ResourceNotFound"},
		{"RestoreSecret of a live secret", "RestoreSecret", map[string]string{"SecretName": "s"}, 400, "Rejected.NotPendingDeletion"},
		{"RotateSecret of a Generic secret", "RotateSecret", map[string]string{"SecretName": "s", "VersionId": "2"}, 400, "Rejected.UnsupportedOperation"},
		{"UpdateSecretRotationPolicy without EnableAutomaticRotation", "UpdateSecretRotationPolicy", map[string]string{"SecretName": "s"}, 400, "MissingParameter"},
		{"SetSecretPolicy with a policy that is not one", "SetSecretPolicy", map[string]string{"SecretName": "s", "Policy": "{"}, 400, "InvalidParameter"},
		{"GetSecretPolicy with another PolicyName", "GetSecretPolicy", map[string]string{"SecretName": "s", "PolicyName": "mine"}, 400, "InvalidParameter"},
		{"GetRandomPassword of 129 characters", "GetRandomPassword", map[string]string{"PasswordLength": "129"}, 400, "InvalidParameter"},
		{"GetRandomPassword excluding every kind", "GetRandomPassword", map[string]string{"ExcludeLowercase": "true", "ExcludeUppercase": "true", "ExcludeNumbers": "true", "ExcludePunctuation": "true"}, 400, "InvalidParameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tn.call(t, tc.action, tc.params)
			wantAPIError(t, err, tc.status, tc.code)
		})
	}
	if tn.canonical(t) != before {
		t.Error("the catalogue changed although every request was refused")
	}
}
