package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// Secrets in Apply: the commands kms proposes, applied at increasing
// indexes. Envelopes and digests are opaque bytes here.

func secretVersion(id, data string) SecretVersion {
	return SecretVersion{ID: id, CreatedAt: 3000, DataType: "text", Envelope: []byte("env-" + id + "-" + data), Digest: []byte("dig-" + id + "-" + data)}
}

// secretHarness is an initialized catalogue with key k1 and secret "s"
// (version v1, ACSCurrent).
func secretHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.init()
	h.createKey("k1", "k1v1")
	h.mustApply(CmdCreateSecret, CreateSecretCmd{Now: 3000, Secret: Secret{AccountID: acct, Name: "s", Type: SecretTypeGeneric, EncryptionKeyID: "k1", Tags: map[string]string{}}, Version: secretVersion("v1", "one")})
	return h
}

func (h *harness) secret(name string) *Secret {
	h.t.Helper()
	s, ok := h.f.Secret(acct, name)
	if !ok {
		h.t.Fatalf("secret %s missing", name)
	}
	return s
}

func (h *harness) put(name, id, data string, stages ...string) error {
	return h.apply(CmdPutSecretValue, PutSecretValueCmd{Now: 4000, AccountID: acct, Name: name, Version: secretVersion(id, data), Stages: stages})
}

// refused applies a command that must fail with want and change nothing.
func (h *harness) refused(what string, want error, typ CommandType, body any) {
	h.t.Helper()
	before, _ := h.f.Hash()
	err := h.apply(typ, body)
	if !errors.Is(err, want) {
		h.t.Errorf("%s: err = %v, want %v", what, err, want)
	}
	if after, _ := h.f.Hash(); after != before {
		h.t.Errorf("%s: the refused command changed the catalogue", what)
	}
}

func TestSecretApply_CreateAndItsRefusals(t *testing.T) {
	h := secretHarness(t)
	s := h.secret("s")
	if s.CreatedAt != 3000 || s.ModifyIndex != h.index || s.Stages[StageCurrent] != "v1" || len(s.Versions) != 1 {
		t.Fatalf("created %+v", s)
	}
	base := CreateSecretCmd{Now: 3000, Secret: Secret{AccountID: acct, Name: "t", Type: SecretTypeGeneric, EncryptionKeyID: "k1"}, Version: secretVersion("v1", "x")}
	with := func(f func(*CreateSecretCmd)) CreateSecretCmd { c := base; f(&c); return c }
	h.refused("the name taken", ErrSecretExists, CmdCreateSecret, with(func(c *CreateSecretCmd) { c.Secret.Name = "s" }))
	h.refused("an unknown account", ErrAccountNotFound, CmdCreateSecret, with(func(c *CreateSecretCmd) { c.Secret.AccountID = "999" }))
	h.refused("a missing key", ErrKeyNotFound, CmdCreateSecret, with(func(c *CreateSecretCmd) { c.Secret.EncryptionKeyID = "nope" }))
	h.refused("a RAM user that does not exist", ErrUserNotFound, CmdCreateSecret, with(func(c *CreateSecretCmd) {
		c.Secret.Type, c.Secret.RAMUser = SecretTypeRAMCredentials, "bob"
	}))
	h.refused("a version without a value", ErrPreconditionFailed, CmdCreateSecret, with(func(c *CreateSecretCmd) { c.Version.Envelope = nil }))
	h.refused("21 tags", ErrTagLimit, CmdCreateSecret, with(func(c *CreateSecretCmd) {
		c.Secret.Tags = map[string]string{}
		for i := range 21 {
			c.Secret.Tags[fmt.Sprint(i)] = "v"
		}
	}))
	// Another account's key is not found either.
	h.mustApply(CmdCreateAccount, CreateAccountCmd{Now: 1, Account: Account{ID: "2222", Name: "other"}, AccessKey: AccessKey{ID: "LTAIother", AccountID: "2222", Principal: "acs:ram::2222:root", Status: "Active"}})
	h.refused("another account's key", ErrKeyNotFound, CmdCreateSecret, with(func(c *CreateSecretCmd) { c.Secret.AccountID = "2222" }))
	// Automatic rotation: the next date comes from the interval.
	h.mustApply(CmdCreateSecret, with(func(c *CreateSecretCmd) { c.Secret.AutoRotation, c.Secret.RotationInterval = true, 3600 }))
	if got := h.secret("t").NextRotation; got != 3000+3600*1000 {
		t.Fatalf("NextRotation = %d", got)
	}
}

func TestSecretApply_CreateRefusedBeyondTheAccountLimit(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "k1v1")
	for i := range MaxSecretsPerAccount {
		h.mustApply(CmdCreateSecret, CreateSecretCmd{Now: 3000, Secret: Secret{AccountID: acct, Name: fmt.Sprint("s", i), EncryptionKeyID: "k1"}, Version: secretVersion("v1", "x")})
	}
	h.refused("secret 1001", ErrSecretLimitExceeded, CmdCreateSecret, CreateSecretCmd{Now: 3000, Secret: Secret{AccountID: acct, Name: "one-more", EncryptionKeyID: "k1"}, Version: secretVersion("v1", "x")})
}

func TestSecretApply_StagesMove(t *testing.T) {
	h := secretHarness(t)
	if err := h.put("s", "v2", "two"); err != nil {
		t.Fatal(err)
	}
	if st := h.secret("s").Stages; st[StageCurrent] != "v2" || st[StagePrevious] != "v1" {
		t.Fatalf("after v2: %v", st)
	}
	if err := h.put("s", "v3", "three", "beta", "gamma"); err != nil {
		t.Fatal(err)
	}
	s := h.secret("s")
	if s.Stages[StageCurrent] != "v2" || s.Stages["beta"] != "v3" || fmt.Sprint(s.StagesOf("v3")) != "[beta gamma]" {
		t.Fatalf("after v3 with custom stages: %v", s.Stages)
	}
	stage := func(st, from, to string) UpdateSecretVersionStageCmd {
		return UpdateSecretVersionStageCmd{Now: 5000, AccountID: acct, Name: "s", Stage: st, RemoveFrom: from, MoveTo: to}
	}
	h.refused("RemoveFrom does not hold the stage", ErrSecretStageMismatch, CmdUpdateSecretVersionStage, stage("beta", "v1", "v2"))
	h.refused("a stage nowhere removed from a version", ErrSecretStageMismatch, CmdUpdateSecretVersionStage, stage("nope", "v1", ""))
	h.refused("ACSCurrent removed", ErrSecretStageMismatch, CmdUpdateSecretVersionStage, stage(StageCurrent, "v2", ""))
	h.refused("a missing version", ErrSecretVersionNotFound, CmdUpdateSecretVersionStage, stage("beta", "", "v9"))
	h.refused("a missing secret", ErrSecretNotFound, CmdUpdateSecretVersionStage, UpdateSecretVersionStageCmd{AccountID: acct, Name: "x", Stage: "a", MoveTo: "v1"})
	// ACSCurrent to v3: ACSPrevious follows to v2; v1 is deprecated.
	h.mustApply(CmdUpdateSecretVersionStage, stage(StageCurrent, "v2", "v3"))
	s = h.secret("s")
	if s.Stages[StageCurrent] != "v3" || s.Stages[StagePrevious] != "v2" || len(s.StagesOf("v1")) != 0 {
		t.Fatalf("after moving ACSCurrent: %v", s.Stages)
	}
	// Moving ACSCurrent to where it is changes no other stage.
	h.mustApply(CmdUpdateSecretVersionStage, stage(StageCurrent, "", "v3"))
	if st := h.secret("s").Stages; st[StagePrevious] != "v2" {
		t.Fatalf("a move in place moved ACSPrevious: %v", st)
	}
	// A removed custom stage is gone; removing one that is nowhere is fine.
	h.mustApply(CmdUpdateSecretVersionStage, stage("gamma", "v3", ""))
	h.mustApply(CmdUpdateSecretVersionStage, stage("gamma", "", ""))
	if _, ok := h.secret("s").Stages["gamma"]; ok {
		t.Fatal("gamma still there")
	}
	// At most MaxSecretStages labels.
	for i := len(h.secret("s").Stages); i < MaxSecretStages; i++ {
		h.mustApply(CmdUpdateSecretVersionStage, stage(fmt.Sprint("l", i), "", "v1"))
	}
	h.refused("one label too many", ErrSecretLimitExceeded, CmdUpdateSecretVersionStage, stage("extra", "", "v1"))
}

func TestSecretApply_PutIsIdempotentPerVersionID(t *testing.T) {
	h := secretHarness(t)
	if err := h.put("s", "v2", "two"); err != nil {
		t.Fatal(err)
	}
	before, _ := h.f.Hash()
	if err := h.put("s", "v2", "two", "beta"); err != nil {
		t.Fatalf("the same VersionId and data: %v", err)
	}
	if after, _ := h.f.Hash(); after != before {
		t.Fatal("a repeated put changed the catalogue (stages must not move)")
	}
	h.refused("other data", ErrSecretVersionExists, CmdPutSecretValue, PutSecretValueCmd{Now: 4000, AccountID: acct, Name: "s", Version: secretVersion("v2", "TWO")})
	other := secretVersion("v2", "two")
	other.DataType = "binary"
	h.refused("another data type", ErrSecretVersionExists, CmdPutSecretValue, PutSecretValueCmd{Now: 4000, AccountID: acct, Name: "s", Version: other})
	h.refused("a missing secret", ErrSecretNotFound, CmdPutSecretValue, PutSecretValueCmd{Now: 4000, AccountID: acct, Name: "x", Version: secretVersion("v1", "x")})
}

func TestSecretApply_VersionCap(t *testing.T) {
	h := secretHarness(t)
	h.mustApply(CmdUpdateSecretVersionStage, UpdateSecretVersionStageCmd{AccountID: acct, Name: "s", Stage: "pinned", MoveTo: "v1"})
	for i := 2; i <= MaxSecretVersions+5; i++ {
		if err := h.put("s", fmt.Sprint("v", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	s := h.secret("s")
	if len(s.Versions) != MaxSecretVersions {
		t.Fatalf("%d versions", len(s.Versions))
	}
	// v1 (pinned) first, then the newest, oldest first: v7..v25.
	if s.Versions[0].ID != "v1" || s.Versions[1].ID != "v7" || s.Versions[len(s.Versions)-1].ID != fmt.Sprint("v", MaxSecretVersions+5) {
		t.Fatalf("kept %s, %s ... %s", s.Versions[0].ID, s.Versions[1].ID, s.Versions[len(s.Versions)-1].ID)
	}
}

func TestSecretApply_DeletionRestorePurge(t *testing.T) {
	h := secretHarness(t)
	del := func(now, at int64, force bool) DeleteSecretCmd {
		return DeleteSecretCmd{Now: now, AccountID: acct, Name: "s", PlannedDeleteAt: at, Force: force}
	}
	name := func(now int64) SecretNameCmd { return SecretNameCmd{Now: now, AccountID: acct, Name: "s"} }
	h.refused("a deletion date in the past", ErrPreconditionFailed, CmdDeleteSecret, del(5000, 5000, false))
	h.refused("restoring a live secret", ErrSecretNotPendingDeletion, CmdRestoreSecret, name(5000))
	h.refused("purging a live secret", ErrPreconditionFailed, CmdPurgeSecret, name(5000))
	h.mustApply(CmdDeleteSecret, del(5000, 9000, false))
	if s := h.secret("s"); s.PlannedDeleteAt != 9000 || !s.PendingDeletion() {
		t.Fatalf("scheduled: %+v", s)
	}
	h.refused("a put while pending", ErrSecretPendingDeletion, CmdPutSecretValue, PutSecretValueCmd{AccountID: acct, Name: "s", Version: secretVersion("v2", "x")})
	h.refused("a stage move while pending", ErrSecretPendingDeletion, CmdUpdateSecretVersionStage, UpdateSecretVersionStageCmd{AccountID: acct, Name: "s", Stage: "a", MoveTo: "v1"})
	h.refused("a policy while pending", ErrSecretPendingDeletion, CmdSetSecretPolicy, SetSecretPolicyCmd{AccountID: acct, Name: "s", Policy: "{}"})
	h.refused("a second schedule", ErrSecretPendingDeletion, CmdDeleteSecret, del(5000, 9999, false))
	h.refused("the name while pending", ErrSecretExists, CmdCreateSecret, CreateSecretCmd{Secret: Secret{AccountID: acct, Name: "s", EncryptionKeyID: "k1"}, Version: secretVersion("v1", "x")})
	h.refused("a purge before the date", ErrPreconditionFailed, CmdPurgeSecret, name(8999))
	h.mustApply(CmdRestoreSecret, name(6000))
	if s := h.secret("s"); s.PendingDeletion() {
		t.Fatal("restored secret still pending")
	}
	// A restore in between makes a late purge change nothing.
	h.refused("a purge after a restore", ErrPreconditionFailed, CmdPurgeSecret, name(9500))
	h.mustApply(CmdDeleteSecret, del(7000, 9000, false))
	h.mustApply(CmdPurgeSecret, name(9000))
	if _, ok := h.f.Secret(acct, "s"); ok {
		t.Fatal("purged secret still there")
	}
	h.refused("a purge of a purged secret", ErrSecretNotFound, CmdPurgeSecret, name(9000))
	h.mustApply(CmdCreateSecret, CreateSecretCmd{Now: 9100, Secret: Secret{AccountID: acct, Name: "s", EncryptionKeyID: "k1"}, Version: secretVersion("v1", "x")})
	h.mustApply(CmdDeleteSecret, del(9200, 0, true))
	if _, ok := h.f.Secret(acct, "s"); ok {
		t.Fatal("force-deleted secret still there")
	}
	h.refused("deleting a missing secret", ErrSecretNotFound, CmdDeleteSecret, del(9300, 0, true))
}

func TestSecretApply_UpdatesPolicyTagsRotationPolicy(t *testing.T) {
	h := secretHarness(t)
	h.mustApply(CmdUpdateSecret, UpdateSecretCmd{Now: 5000, AccountID: acct, Name: "s", Description: "d", SetDescription: true})
	h.mustApply(CmdUpdateSecret, UpdateSecretCmd{Now: 5001, AccountID: acct, Name: "s", ExtendedConfig: `{"a":1}`, SetExtendedConfig: true})
	h.mustApply(CmdSetSecretPolicy, SetSecretPolicyCmd{Now: 5002, AccountID: acct, Name: "s", Policy: "doc"})
	h.mustApply(CmdTagSecret, TagSecretCmd{Now: 5003, AccountID: acct, Name: "s", Tags: map[string]string{"a": "1", "b": "2"}})
	h.mustApply(CmdTagSecret, TagSecretCmd{Now: 5004, AccountID: acct, Name: "s", Remove: []string{"a"}})
	s := h.secret("s")
	if s.Description != "d" || s.ExtendedConfig != `{"a":1}` || s.Policy != "doc" || len(s.Tags) != 1 || s.Tags["b"] != "2" || s.UpdatedAt != 5004 {
		t.Fatalf("updated: %+v", s)
	}
	many := map[string]string{}
	for i := range MaxTagsPerSecret {
		many[fmt.Sprint("t", i)] = "v"
	}
	h.refused("a 21st tag", ErrTagLimit, CmdTagSecret, TagSecretCmd{AccountID: acct, Name: "s", Tags: many})
	h.mustApply(CmdSecretRotationPolicy, SecretRotationPolicyCmd{Now: 6000, AccountID: acct, Name: "s", Enable: true, IntervalSec: 100})
	if s := h.secret("s"); !s.AutoRotation || s.NextRotation != 6000+100*1000 {
		t.Fatalf("rotation on: %+v", s)
	}
	h.refused("a rotation interval of 0", ErrPreconditionFailed, CmdSecretRotationPolicy, SecretRotationPolicyCmd{AccountID: acct, Name: "s", Enable: true})
	h.mustApply(CmdSecretRotationPolicy, SecretRotationPolicyCmd{Now: 7000, AccountID: acct, Name: "s"})
	if s := h.secret("s"); s.AutoRotation || s.NextRotation != 0 {
		t.Fatalf("rotation off: %+v", s)
	}
}

// Readers hold records that Apply never changes afterwards.
func TestSecretApply_ReadersKeepTheirCopy(t *testing.T) {
	h := secretHarness(t)
	held := h.secret("s")
	if err := h.put("s", "v2", "two"); err != nil {
		t.Fatal(err)
	}
	h.mustApply(CmdTagSecret, TagSecretCmd{AccountID: acct, Name: "s", Tags: map[string]string{"a": "b"}})
	if len(held.Versions) != 1 || held.Stages[StageCurrent] != "v1" || len(held.Tags) != 0 || held.Stages[StagePrevious] != "" {
		t.Fatalf("a held record changed: %+v", held)
	}
}

func TestSecretApply_RotateRAMCredentials(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "k1v1")
	h.mustApply(CmdCreateUser, UserCmd{Now: 2000, User: User{ID: "u1", AccountID: acct, Name: "bob"}})
	principal := "acs:ram::" + acct + ":user/bob"
	ak := func(id string) AccessKey {
		return AccessKey{ID: id, AccountID: acct, Principal: principal, WrappedSecret: []byte("w-" + id), Status: "Active"}
	}
	h.mustApply(CmdCreateAccessKey, AccessKeyCmd{Now: 2000, AccessKey: ak("AK1")})
	v1 := secretVersion("v1", "ak1")
	v1.AccessKeyID = "AK1"
	name := "acs/ram/user/bob"
	create := CreateSecretCmd{Now: 3000, Secret: Secret{AccountID: acct, Name: name, Type: SecretTypeRAMCredentials, RAMUser: "bob", EncryptionKeyID: "k1"}, Version: v1}
	// The first version must hold an access key of the user.
	for what, id := range map[string]string{"no access key": "", "a missing access key": "AK9", "the root's access key": "LTAIexample"} {
		bad := create
		bad.Version.AccessKeyID = id
		h.refused("a RAMCredentials secret with "+what, ErrPreconditionFailed, CmdCreateSecret, bad)
	}
	h.mustApply(CmdCreateSecret, create)
	rotate := func(now int64, id string) RotateRAMSecretCmd {
		v := secretVersion("r-"+id, id)
		v.AccessKeyID = id
		return RotateRAMSecretCmd{Now: now, AccountID: acct, Name: name, AccessKey: ak(id), Version: v, NextRotation: now + 1000}
	}
	keys := func() string {
		var out []string
		for _, k := range h.f.AccessKeysOf(principal) {
			out = append(out, k.ID)
		}
		return fmt.Sprint(out)
	}
	h.mustApply(CmdRotateRAMSecret, rotate(4000, "AK2"))
	if got := keys(); got != "[AK1 AK2]" {
		t.Fatalf("after the first rotation: %s", got)
	}
	h.mustApply(CmdRotateRAMSecret, rotate(5000, "AK3"))
	if got := keys(); got != "[AK2 AK3]" {
		t.Fatalf("after the second rotation (AK1 two rotations old): %s", got)
	}
	s := h.secret(name)
	if s.Stages[StageCurrent] != "r-AK3" || s.Stages[StagePrevious] != "r-AK2" || s.LastRotation != 5000 || s.NextRotation != 6000 {
		t.Fatalf("secret after rotations: %+v", s)
	}
	bad := rotate(6000, "AK4")
	bad.AccessKey.Principal = "acs:ram::" + acct + ":user/eve"
	h.refused("another user's key", ErrPreconditionFailed, CmdRotateRAMSecret, bad)
	bad = rotate(6000, "AK4")
	bad.Version.AccessKeyID = "AK9"
	h.refused("a version not holding the new key", ErrPreconditionFailed, CmdRotateRAMSecret, bad)
	h.refused("an access key id that exists", ErrKeyExists, CmdRotateRAMSecret, rotate(6000, "AK3"))
	// A Generic secret does not rotate by itself.
	h.mustApply(CmdCreateSecret, CreateSecretCmd{Now: 3000, Secret: Secret{AccountID: acct, Name: "g", Type: SecretTypeGeneric, EncryptionKeyID: "k1"}, Version: secretVersion("v1", "x")})
	g := rotate(6000, "AK4")
	g.Name = "g"
	h.refused("rotating a Generic secret", ErrSecretType, CmdRotateRAMSecret, g)
}

func TestSnapshot_RoundTripsSecrets(t *testing.T) {
	h := secretHarness(t)
	if err := h.put("s", "v2", "two", "beta"); err != nil {
		t.Fatal(err)
	}
	h.mustApply(CmdTagSecret, TagSecretCmd{AccountID: acct, Name: "s", Tags: map[string]string{"a": "b"}})
	h.mustApply(CmdCreateSecret, CreateSecretCmd{Now: 3000, Secret: Secret{AccountID: acct, Name: "t", EncryptionKeyID: "k1", Policy: "doc"}, Version: secretVersion("v1", "x")})
	h.mustApply(CmdDeleteSecret, DeleteSecretCmd{Now: 4000, AccountID: acct, Name: "t", PlannedDeleteAt: 9000})
	data := snapshotBytes(t, h.f)
	want, _ := h.f.Hash()
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Hash(); got != want {
		t.Fatal("the restored catalogue differs")
	}
	s, ok := g.Secret(acct, "s")
	if !ok || s.Stages["beta"] != "v2" || s.Tags["a"] != "b" || len(s.Versions) != 2 || !bytes.Equal(s.Versions[1].Envelope, secretVersion("v2", "two").Envelope) {
		t.Fatalf("restored s = %+v", s)
	}
	if tt, ok := g.Secret(acct, "t"); !ok || tt.PlannedDeleteAt != 9000 || tt.Policy != "doc" {
		t.Fatalf("restored t = %+v", tt)
	}
	if all := g.AllSecrets(); len(all) != 2 || all[0].Name != "s" {
		t.Fatalf("AllSecrets = %v", all)
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("re-persisted snapshot differs")
	}
}
