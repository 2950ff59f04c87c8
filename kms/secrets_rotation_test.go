package kms

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/signature"
)

// Tests of managed rotation (secrets_rotation.go) and of the scheduler's
// secret duties, on the real service core over a directStore. Where a test
// needs a secret but never opens a value, it sets the secret up with fsm
// commands whose envelopes are opaque bytes (the catalogue never opens
// them); the rotations themselves are sealed and opened for real.

// ramUser creates a RAM user with one access key and returns the key.
func (e *svcEnv) ramUser(t *testing.T, name string) (id, secret string) {
	t.Helper()
	if _, _, err := e.svc.CreateUser(bg, e.caller, UserInput{Name: name}); err != nil {
		t.Fatal(err)
	}
	ak, err := e.svc.CreateAccessKey(bg, e.caller, name)
	if err != nil {
		t.Fatal(err)
	}
	return ak.AccessKey.ID, ak.Secret
}

func ramData(id, secret string) string {
	return `{"AccessKeys":[{"AccessKeyId":"` + id + `","AccessKeySecret":"` + secret + `"}]}`
}

func ramExt(user string) string {
	return `{"SecretSubType":"RamUserAccessKey","UserName":"` + user + `"}`
}

// rawSecret puts a secret into the catalogue with an fsm command: its
// first version's envelope is opaque (nothing here opens it).
func (e *svcEnv) rawSecret(t *testing.T, sec fsm.Secret, firstKey string) *fsm.Secret {
	t.Helper()
	if sec.AccountID == "" {
		sec.AccountID = e.caller.AccountID
	}
	if sec.EncryptionKeyID == "" {
		sec.EncryptionKeyID = e.createKey(t, CreateKeyInput{}).ID
	}
	if sec.Tags == nil {
		sec.Tags = map[string]string{}
	}
	now := e.clock.Now().UnixMilli()
	v := fsm.SecretVersion{ID: "v0", CreatedAt: now, DataType: "text", Envelope: []byte("opaque"), Digest: []byte("d"), AccessKeyID: firstKey}
	if _, err := e.svc.propose(bg, fsm.CmdCreateSecret, fsm.CreateSecretCmd{Now: now, Secret: sec, Version: v}); err != nil {
		t.Fatalf("create secret %s: %v", sec.Name, err)
	}
	return e.secret(t, sec.Name)
}

// authenticates checks a signed request made with the key through the
// service's own signature check: Credential (the stored secret, unwrapped
// under the root key) and the signature's verification.
func (e *svcEnv) authenticates(t *testing.T, id, secret string) error {
	t.Helper()
	params := url.Values{"Action": {"ListKeys"}, "Version": {"2016-01-20"}}
	signature.SignV1("GET", params, signature.Credentials{AccessKeyID: id, AccessKeySecret: secret}, e.clock.Now(), signature.NewNonce())
	signed, err := signature.Parse(httptest.NewRequest("GET", "/?"+params.Encode(), nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := e.svc.Credential(bg, signed.AccessKeyID, signed.SecurityToken)
	if err != nil {
		return err
	}
	return signed.Verify(string(stored))
}

func TestRAMCredentials_AcceptsOneOfTheUsersKeys(t *testing.T) {
	e := newSvcEnv(t)
	id, secret := e.ramUser(t, "app")
	user, got, err := e.svc.ramCredentials(bg, e.caller, SecretInput{Type: fsm.SecretTypeRAMCredentials, ExtendedConfig: ramExt("app"), Data: ramData(id, secret)})
	if err != nil || user != "app" || got != id {
		t.Fatalf("ramCredentials = %q, %q, %v; want app, %s", user, got, err, id)
	}
}

// Every refusal names the input it concerns and never the secret given.
func TestRAMCredentials_Refusals(t *testing.T) {
	e := newSvcEnv(t)
	id, secret := e.ramUser(t, "app")
	otherID, otherSecret := e.ramUser(t, "other")
	inactiveID, inactiveSecret := func() (string, string) {
		ak, err := e.svc.CreateAccessKey(bg, e.caller, "app")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.UpdateAccessKey(bg, e.caller, AccessKeyRef{User: "app", ID: ak.AccessKey.ID}, "Inactive"); err != nil {
			t.Fatal(err)
		}
		return ak.AccessKey.ID, ak.Secret
	}()
	// A user of the same name in another account, with its own key.
	acct, err := e.svc.CreateAccount(bg, e.caller, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	tenant := rootCaller(acct.AccountID, acct.AccessKeyID)
	if _, _, err := e.svc.CreateUser(bg, tenant, UserInput{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	foreign, err := e.svc.CreateAccessKey(bg, tenant, "app")
	if err != nil {
		t.Fatal(err)
	}
	wrong := "Zz" + strings.Repeat("q", 28)
	cases := []struct {
		name      string
		ext, data string
		dataType  string
		want      error
		field     Field
		mentioned []string // secrets the error must not show
	}{
		{"no extended config", "", ramData(id, secret), "", ErrMissingParameter, FieldExtendedConfig, nil},
		{"extended config not JSON", "{", ramData(id, secret), "", ErrInvalidParameter, FieldExtendedConfig, nil},
		{"extended config an array", "[1]", ramData(id, secret), "", ErrInvalidParameter, FieldExtendedConfig, nil},
		{"wrong sub type", `{"SecretSubType":"RdsUser","UserName":"app"}`, ramData(id, secret), "", ErrInvalidParameter, FieldExtendedConfig, nil},
		{"no user name", `{"SecretSubType":"RamUserAccessKey"}`, ramData(id, secret), "", ErrInvalidParameter, FieldExtendedConfig, nil},
		{"user name not a name", ramExt("a b"), ramData(id, secret), "", ErrInvalidParameter, FieldExtendedConfig, nil},
		{"unknown user", ramExt("ghost"), ramData(id, secret), "", fsm.ErrUserNotFound, "", []string{secret}},
		{"binary data", ramExt("app"), ramData(id, secret), "binary", ErrInvalidParameter, FieldSecretDataType, []string{secret}},
		{"no data", ramExt("app"), "", "", ErrMissingParameter, FieldSecretData, nil},
		{"data not JSON", ramExt("app"), `{"AccessKeys":[{"AccessKeyId":"` + id + `","AccessKeySecret":"` + secret, "", ErrInvalidParameter, FieldSecretData, []string{secret}},
		{"no access keys", ramExt("app"), `{"AccessKeys":[]}`, "", ErrInvalidParameter, FieldSecretData, nil},
		{"two access keys", ramExt("app"), `{"AccessKeys":[{"AccessKeyId":"` + id + `","AccessKeySecret":"` + secret + `"},{"AccessKeyId":"` + id + `","AccessKeySecret":"` + secret + `"}]}`, "", ErrInvalidParameter, FieldSecretData, []string{secret}},
		{"no secret", ramExt("app"), ramData(id, ""), "", ErrInvalidParameter, FieldSecretData, nil},
		{"unknown key", ramExt("app"), ramData("LTAIunknownunknownunkn", secret), "", fsm.ErrAccessKeyMissing, "", []string{secret}},
		{"another user's key", ramExt("app"), ramData(otherID, otherSecret), "", fsm.ErrAccessKeyMissing, "", []string{otherSecret}},
		{"the root's key", ramExt("app"), ramData(e.caller.AccessKeyID, wrong), "", fsm.ErrAccessKeyMissing, "", []string{wrong}},
		{"another account's user of that name", ramExt("app"), ramData(foreign.AccessKey.ID, foreign.Secret), "", fsm.ErrAccessKeyMissing, "", []string{foreign.Secret}},
		{"an inactive key", ramExt("app"), ramData(inactiveID, inactiveSecret), "", ErrInvalidParameter, FieldSecretData, []string{inactiveSecret}},
		{"the wrong secret", ramExt("app"), ramData(id, wrong), "", ErrInvalidParameter, FieldSecretData, []string{wrong, secret}},
		{"a secret one character short", ramExt("app"), ramData(id, secret[:len(secret)-1]), "", ErrInvalidParameter, FieldSecretData, []string{secret[:len(secret)-1], secret}},
	}
	for _, c := range cases {
		_, _, err := e.svc.ramCredentials(bg, e.caller, SecretInput{Type: fsm.SecretTypeRAMCredentials, ExtendedConfig: c.ext, Data: c.data, DataType: c.dataType})
		if c.field != "" {
			wantRefusal(t, c.name, err, c.want, c.field)
		} else {
			wantErr(t, c.name, err, c.want)
		}
		if err == nil {
			continue
		}
		for _, s := range c.mentioned {
			if s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error shows a secret: %v", c.name, err)
			}
		}
	}
}

func TestRotateSecret_GenericRefused(t *testing.T) {
	e := newSvcEnv(t)
	e.rawSecret(t, fsm.Secret{Name: "db/password", Type: fsm.SecretTypeGeneric}, "")
	e.unchanged(t, "RotateSecret on a Generic secret", func() {
		_, _, _, err := e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: "db/password", VersionID: "v1"})
		wantErr(t, "RotateSecret on a Generic secret", err, fsm.ErrSecretType)
		if err != nil && !strings.Contains(err.Error(), "PutSecretValue") {
			t.Errorf("the refusal does not say how Generic secrets rotate: %v", err)
		}
	})
}

func TestRotateSecret_Refusals(t *testing.T) {
	e := newSvcEnv(t)
	id, _ := e.ramUser(t, "app")
	e.rawSecret(t, fsm.Secret{Name: "acs/ram/user/app", Type: fsm.SecretTypeRAMCredentials, RAMUser: "app"}, id)
	gone := e.rawSecret(t, fsm.Secret{Name: "gone", Type: fsm.SecretTypeRAMCredentials, RAMUser: "app"}, id)
	now := e.clock.Now().UnixMilli()
	if _, err := e.svc.propose(bg, fsm.CmdDeleteSecret, fsm.DeleteSecretCmd{Now: now, AccountID: gone.AccountID, Name: gone.Name, PlannedDeleteAt: now + 7*86400*1000}); err != nil {
		t.Fatal(err)
	}
	nobody := e.mkUser(t, "nobody")
	acct, err := e.svc.CreateAccount(bg, e.caller, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	tenant := rootCaller(acct.AccountID, acct.AccessKeyID)
	client := e.caller
	client.Client = &ClientKeyCaller{ID: "KAAP.x"}
	e.unchanged(t, "refused rotations", func() {
		_, _, _, err := e.svc.RotateSecret(bg, e.caller, RotateSecretInput{VersionID: "v1"})
		wantRefusal(t, "no name", err, ErrMissingParameter, FieldSecretName)
		_, _, _, err = e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: "acs/ram/user/app"})
		wantRefusal(t, "no VersionId", err, ErrMissingParameter, FieldSecretVersionID)
		for _, bad := range []string{"a b", "v/1", strings.Repeat("x", 65), "ü"} {
			_, _, _, err = e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: "acs/ram/user/app", VersionID: bad})
			wantRefusal(t, "VersionId "+bad, err, ErrInvalidParameter, FieldSecretVersionID)
		}
		_, _, _, err = e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: "nope", VersionID: "v1"})
		wantErr(t, "unknown secret", err, fsm.ErrSecretNotFound)
		_, _, _, err = e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: "gone", VersionID: "v1"})
		wantErr(t, "pending deletion", err, fsm.ErrSecretPendingDeletion)
		_, _, _, err = e.svc.RotateSecret(bg, nobody, RotateSecretInput{Name: "acs/ram/user/app", VersionID: "v1"})
		wantErr(t, "a user without policies", err, ErrNoPermission)
		_, _, _, err = e.svc.RotateSecret(bg, client, RotateSecretInput{Name: "acs/ram/user/app", VersionID: "v1"})
		wantErr(t, "a client key", err, ErrNoPermission)
		_, _, _, err = e.svc.RotateSecret(bg, tenant, RotateSecretInput{Name: "acs/ram/user/app", VersionID: "v1"})
		wantErr(t, "another account", err, fsm.ErrSecretNotFound)
		// v0 is the version CreateSecret made, not a rotation.
		_, _, _, err = e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: "acs/ram/user/app", VersionID: "v0"})
		wantErr(t, "a VersionId the secret has", err, fsm.ErrSecretVersionExists)
	})
}

func TestUpdateSecretRotationPolicy(t *testing.T) {
	e := newSvcEnv(t)
	id, _ := e.ramUser(t, "app")
	e.rawSecret(t, fsm.Secret{Name: "acs/ram/user/app", Type: fsm.SecretTypeRAMCredentials, RAMUser: "app"}, id)
	e.rawSecret(t, fsm.Secret{Name: "plain", Type: fsm.SecretTypeGeneric}, "")
	for _, c := range []struct {
		in   string
		secs int64
	}{{"6h", 6 * 3600}, {"21600s", 21600}, {"360m", 21600}, {"7d", 7 * 86400}, {"365d", 365 * 86400}, {"8760h", 8760 * 3600}} {
		if _, err := e.svc.UpdateSecretRotationPolicy(bg, e.caller, SecretRotationPolicyInput{Name: "acs/ram/user/app", Enable: true, RotationInterval: c.in}); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		s := e.secret(t, "acs/ram/user/app")
		if !s.AutoRotation || s.RotationInterval != c.secs || s.NextRotation != e.clock.Now().UnixMilli()+c.secs*1000 {
			t.Errorf("%s: auto %v, interval %d, next %d; want %d s from now", c.in, s.AutoRotation, s.RotationInterval, s.NextRotation, c.secs)
		}
	}
	nobody := e.mkUser(t, "nobody")
	e.unchanged(t, "refused policies", func() {
		for _, bad := range []string{"5h", "359m", "21599s", "8761h", "366d", "0d", "-6h", "6x", "h", "1e5s", "9223372036854775807d", "21600", "+6h", "6H"} {
			_, err := e.svc.UpdateSecretRotationPolicy(bg, e.caller, SecretRotationPolicyInput{Name: "acs/ram/user/app", Enable: true, RotationInterval: bad})
			wantRefusal(t, "interval "+bad, err, ErrInvalidParameter, FieldRotationInterval)
		}
		_, err := e.svc.UpdateSecretRotationPolicy(bg, e.caller, SecretRotationPolicyInput{Name: "acs/ram/user/app", Enable: true})
		wantRefusal(t, "no interval", err, ErrInvalidParameter, FieldRotationInterval)
		_, err = e.svc.UpdateSecretRotationPolicy(bg, e.caller, SecretRotationPolicyInput{Name: "plain", Enable: true, RotationInterval: "7d"})
		wantErr(t, "a Generic secret", err, fsm.ErrSecretType)
		_, err = e.svc.UpdateSecretRotationPolicy(bg, e.caller, SecretRotationPolicyInput{Enable: true, RotationInterval: "7d"})
		wantRefusal(t, "no name", err, ErrMissingParameter, FieldSecretName)
		_, err = e.svc.UpdateSecretRotationPolicy(bg, nobody, SecretRotationPolicyInput{Name: "acs/ram/user/app", Enable: true, RotationInterval: "7d"})
		wantErr(t, "a user without policies", err, ErrNoPermission)
	})
	// Turning it off is allowed for any secret and ignores the interval,
	// as the reference does.
	if _, err := e.svc.UpdateSecretRotationPolicy(bg, e.caller, SecretRotationPolicyInput{Name: "plain", RotationInterval: "nonsense"}); err != nil {
		t.Errorf("turning rotation off for a Generic secret: %v", err)
	}
	if _, err := e.svc.UpdateSecretRotationPolicy(bg, e.caller, SecretRotationPolicyInput{Name: "acs/ram/user/app", RotationInterval: "nonsense"}); err != nil {
		t.Fatal(err)
	}
	if s := e.secret(t, "acs/ram/user/app"); s.AutoRotation || s.NextRotation != 0 {
		t.Errorf("after turning it off: auto %v, next %d", s.AutoRotation, s.NextRotation)
	}
}

// The scheduler purges a secret once its deletion date has come, not
// before, not a restored one, and only on the leader.
func TestScheduler_PurgesSecretsAfterTheWindow(t *testing.T) {
	e := newSvcEnv(t)
	schedule := func(name string, days int64) {
		now := e.clock.Now().UnixMilli()
		if _, err := e.svc.propose(bg, fsm.CmdDeleteSecret, fsm.DeleteSecretCmd{Now: now, AccountID: e.caller.AccountID, Name: name, PlannedDeleteAt: now + days*86400*1000}); err != nil {
			t.Fatal(err)
		}
	}
	e.rawSecret(t, fsm.Secret{Name: "doomed", Type: fsm.SecretTypeGeneric}, "")
	e.rawSecret(t, fsm.Secret{Name: "restored", Type: fsm.SecretTypeGeneric}, "")
	e.rawSecret(t, fsm.Secret{Name: "kept", Type: fsm.SecretTypeGeneric}, "")
	schedule("doomed", 7)
	schedule("restored", 7)
	if _, err := e.svc.propose(bg, fsm.CmdRestoreSecret, fsm.SecretNameCmd{Now: e.clock.Now().UnixMilli(), AccountID: e.caller.AccountID, Name: "restored"}); err != nil {
		t.Fatal(err)
	}
	if n := e.tick(t); n != 0 {
		t.Fatalf("tick before the window's end made %d changes", n)
	}
	e.clock.Advance(7*24*time.Hour - time.Millisecond)
	if n := e.tick(t); n != 0 {
		t.Fatalf("tick a millisecond before the window's end made %d changes", n)
	}
	e.secret(t, "doomed")
	e.clock.Advance(time.Millisecond)
	e.store.setLeader(false)
	if n := e.tick(t); n != 0 {
		t.Fatalf("a follower's tick made %d changes", n)
	}
	e.store.setLeader(true)
	if n := e.tick(t); n != 1 {
		t.Fatalf("tick at the window's end made %d changes, want 1", n)
	}
	if _, ok := e.fsm.Secret(e.caller.AccountID, "doomed"); ok {
		t.Error("the secret is still there after its window")
	}
	e.secret(t, "restored")
	e.secret(t, "kept")
	if n := e.tick(t); n != 0 {
		t.Errorf("a second tick made %d changes", n)
	}
}

// The scheduler leaves alone Generic secrets, secrets without automatic
// rotation and those whose date has not come; it needs no envelope to
// decide that.
func TestScheduler_RotatesOnlyDueRAMSecrets(t *testing.T) {
	e := newSvcEnv(t)
	id, _ := e.ramUser(t, "app")
	e.rawSecret(t, fsm.Secret{Name: "generic", Type: fsm.SecretTypeGeneric, AutoRotation: true, RotationInterval: 6 * 3600}, "")
	e.rawSecret(t, fsm.Secret{Name: "manual", Type: fsm.SecretTypeRAMCredentials, RAMUser: "app"}, id)
	e.rawSecret(t, fsm.Secret{Name: "auto", Type: fsm.SecretTypeRAMCredentials, RAMUser: "app", AutoRotation: true, RotationInterval: 86400}, id)
	e.clock.Advance(24*time.Hour - time.Millisecond)
	e.unchanged(t, "ticks before the date", func() {
		if n := e.tick(t); n != 0 {
			t.Errorf("tick made %d changes", n)
		}
	})
	e.clock.Advance(365 * 24 * time.Hour)
	e.store.setLeader(false)
	e.unchanged(t, "a follower's tick", func() {
		if n := e.tick(t); n != 0 {
			t.Errorf("tick made %d changes", n)
		}
	})
}

// A rotation proposed against a current version that has moved on since
// (a leader whose catalogue lagged) changes nothing.
func TestRotateRAMSecretCmd_ExpectCurrent(t *testing.T) {
	e := newSvcEnv(t)
	id, _ := e.ramUser(t, "app")
	sec := e.rawSecret(t, fsm.Secret{Name: "acs/ram/user/app", Type: fsm.SecretTypeRAMCredentials, RAMUser: "app"}, id)
	cmd := func(version, expect string) fsm.RotateRAMSecretCmd {
		now := e.clock.Now().UnixMilli()
		ak, _, err := e.svc.newAccessKey(sec.AccountID, UserArn(sec.AccountID, "app"), now)
		if err != nil {
			t.Fatal(err)
		}
		return fsm.RotateRAMSecretCmd{Now: now, AccountID: sec.AccountID, Name: sec.Name, AccessKey: ak, ExpectCurrent: expect,
			Version: fsm.SecretVersion{ID: version, CreatedAt: now, DataType: "text", Envelope: []byte("opaque"), Digest: []byte(version), AccessKeyID: ak.ID}}
	}
	e.unchanged(t, "a stale expectation", func() {
		_, err := e.svc.propose(bg, fsm.CmdRotateRAMSecret, cmd("r1", "not-current"))
		wantErr(t, "stale ExpectCurrent", err, fsm.ErrPreconditionFailed)
	})
	if _, err := e.svc.propose(bg, fsm.CmdRotateRAMSecret, cmd("r1", "v0")); err != nil {
		t.Fatalf("ExpectCurrent v0: %v", err)
	}
	e.unchanged(t, "the same expectation again", func() {
		_, err := e.svc.propose(bg, fsm.CmdRotateRAMSecret, cmd("r2", "v0"))
		wantErr(t, "ExpectCurrent v0 after r1", err, fsm.ErrPreconditionFailed)
	})
}

// ramValue opens a stage of a RAMCredentials secret and returns the access
// key it holds: a rotated version's {"AccessKeyId","AccessKeySecret",
// "GenerateTimestamp"}, or the first version's {"AccessKeys":[...]}.
func (e *svcEnv) ramValue(t *testing.T, name, stage string) (rotatedValue, string) {
	t.Helper()
	sv, err := e.svc.GetSecretValue(bg, e.caller, SecretValueInput{Name: name, VersionStage: stage})
	if err != nil {
		t.Fatalf("GetSecretValue %s %s: %v", name, stage, err)
	}
	var v rotatedValue
	if err := json.Unmarshal([]byte(sv.Data), &v); err != nil {
		t.Fatalf("%s of %s is not JSON", stage, name)
	}
	if v.AccessKeyID == "" {
		var first struct {
			AccessKeys []rotatedValue `json:"AccessKeys"`
		}
		if err := json.Unmarshal([]byte(sv.Data), &first); err != nil || len(first.AccessKeys) != 1 {
			t.Fatalf("%s of %s holds no access key", stage, name)
		}
		v = first.AccessKeys[0]
	}
	return v, sv.Version.ID
}

// Three rotations: after each, the current key and the previous key
// authenticate, the key two rotations old is gone, the user never holds
// more than two keys, and the stored value has the reference's shape.
func TestRotateSecret_ThreeRotations(t *testing.T) {
	e := newSvcEnv(t)
	id0, secret0 := e.ramUser(t, "app")
	sec, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{
		Name: "$Auto", Type: fsm.SecretTypeRAMCredentials, ExtendedConfig: ramExt("app"),
		Data: ramData(id0, secret0), VersionID: "v0", EncryptionKey: e.createKey(t, CreateKeyInput{}).ID,
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if sec.Name != "acs/ram/user/app" || sec.RAMUser != "app" {
		t.Fatalf("the secret is %q of user %q", sec.Name, sec.RAMUser)
	}
	keys, secrets := []string{id0}, []string{secret0}
	for i, vid := range []string{"r1", "r2", "r3"} {
		now := e.clock.Advance(time.Hour)
		got, gotVID, idx, err := e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: sec.Name, VersionID: vid})
		if err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if gotVID != vid || idx == 0 || got.Stages[fsm.StageCurrent] != vid || got.LastRotation != now.UnixMilli() {
			t.Fatalf("rotation %d answered %s at %d, stages %v, last rotation %d", i+1, gotVID, idx, got.Stages, got.LastRotation)
		}
		cur, curVID := e.ramValue(t, sec.Name, fsm.StageCurrent)
		if curVID != vid || cur.GenerateTimestamp != now.UTC().Format(time.RFC3339) || !strings.HasPrefix(cur.AccessKeyID, "LTAI") || len(cur.AccessKeySecret) != 30 {
			t.Fatalf("rotation %d: ACSCurrent is %s, key %s, generated %q", i+1, curVID, cur.AccessKeyID, cur.GenerateTimestamp)
		}
		if v, _ := got.Version(vid); v.AccessKeyID != cur.AccessKeyID {
			t.Fatalf("rotation %d: the version records key %s, its value holds %s", i+1, v.AccessKeyID, cur.AccessKeyID)
		}
		if err := e.authenticates(t, cur.AccessKeyID, cur.AccessKeySecret); err != nil {
			t.Fatalf("rotation %d: the current key does not authenticate: %v", i+1, err)
		}
		prev, _ := e.ramValue(t, sec.Name, fsm.StagePrevious)
		if prev.AccessKeyID != keys[len(keys)-1] {
			t.Fatalf("rotation %d: ACSPrevious holds %s, want %s", i+1, prev.AccessKeyID, keys[len(keys)-1])
		}
		if err := e.authenticates(t, prev.AccessKeyID, prev.AccessKeySecret); err != nil {
			t.Fatalf("rotation %d: the previous key does not authenticate: %v", i+1, err)
		}
		keys, secrets = append(keys, cur.AccessKeyID), append(secrets, cur.AccessKeySecret)
		if len(keys) >= 3 {
			old := keys[len(keys)-3]
			if _, ok := e.fsm.AccessKey(old); ok {
				t.Fatalf("rotation %d: the key two rotations old (%s) is still there", i+1, old)
			}
			if _, _, err := e.svc.Credential(bg, old, ""); !errors.Is(err, ErrAccessKeyNotFound) {
				t.Fatalf("rotation %d: the key two rotations old still authenticates: %v", i+1, err)
			}
		}
		if n := len(e.fsm.AccessKeysOf(UserArn(e.caller.AccountID, "app"))); n > 2 {
			t.Fatalf("rotation %d: the user holds %d access keys", i+1, n)
		}
	}
	// No access key secret is in the catalogue in the clear.
	var snap bytes.Buffer
	if _, err := e.fsm.WriteSnapshotTo(&snap); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if bytes.Contains(snap.Bytes(), []byte(s)) {
			t.Fatal("an access key secret is in the snapshot in the clear")
		}
	}
	// The same rotation again is a success that changes nothing; an older
	// VersionId is refused.
	e.unchanged(t, "RotateSecret retried", func() {
		_, vid, _, err := e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: sec.Name, VersionID: "r3"})
		if err != nil || vid != "r3" {
			t.Errorf("the same VersionId again: %s, %v", vid, err)
		}
		_, _, _, err = e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: sec.Name, VersionID: "r1"})
		wantErr(t, "an older VersionId", err, fsm.ErrSecretVersionExists)
	})
}

// Automatic rotation: the leader's scheduler rotates a RAMCredentials
// secret when its date comes (injected clock), sets the next date, and the
// keys behave as under RotateSecret.
func TestScheduler_RotatesRAMSecrets(t *testing.T) {
	e := newSvcEnv(t)
	id0, secret0 := e.ramUser(t, "app")
	sec, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{
		Name: "$Auto", Type: fsm.SecretTypeRAMCredentials, ExtendedConfig: ramExt("app"),
		Data: ramData(id0, secret0), VersionID: "v0", EncryptionKey: e.createKey(t, CreateKeyInput{}).ID,
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if _, err := e.svc.UpdateSecretRotationPolicy(bg, e.caller, SecretRotationPolicyInput{Name: sec.Name, Enable: true, RotationInterval: "1d"}); err != nil {
		t.Fatal(err)
	}
	keys := []string{id0}
	for round := 1; round <= 3; round++ {
		e.clock.Advance(24*time.Hour - time.Second)
		e.unchanged(t, "a tick before the date", func() {
			if n := e.tick(t); n != 0 {
				t.Fatalf("round %d: tick before the date made %d changes", round, n)
			}
		})
		now := e.clock.Advance(time.Second)
		e.store.setLeader(false)
		e.unchanged(t, "a follower's tick", func() { e.tick(t) })
		e.store.setLeader(true)
		if n := e.tick(t); n != 1 {
			t.Fatalf("round %d: tick at the date made %d changes, want 1", round, n)
		}
		s := e.secret(t, sec.Name)
		if s.LastRotation != now.UnixMilli() || s.NextRotation != now.Add(24*time.Hour).UnixMilli() {
			t.Fatalf("round %d: last rotation %d, next %d", round, s.LastRotation, s.NextRotation)
		}
		cur, _ := e.ramValue(t, sec.Name, fsm.StageCurrent)
		if err := e.authenticates(t, cur.AccessKeyID, cur.AccessKeySecret); err != nil {
			t.Fatalf("round %d: the current key does not authenticate: %v", round, err)
		}
		prev, _ := e.ramValue(t, sec.Name, fsm.StagePrevious)
		if prev.AccessKeyID != keys[len(keys)-1] || e.authenticates(t, prev.AccessKeyID, prev.AccessKeySecret) != nil {
			t.Fatalf("round %d: the previous key %s does not authenticate", round, prev.AccessKeyID)
		}
		keys = append(keys, cur.AccessKeyID)
		if len(keys) >= 3 {
			if _, ok := e.fsm.AccessKey(keys[len(keys)-3]); ok {
				t.Fatalf("round %d: the key two rotations old is still there", round)
			}
		}
		if n := len(e.fsm.AccessKeysOf(UserArn(e.caller.AccountID, "app"))); n > 2 {
			t.Fatalf("round %d: the user holds %d access keys", round, n)
		}
		if n := e.tick(t); n != 0 {
			t.Fatalf("round %d: a second tick made %d changes", round, n)
		}
	}
}

// A RAM user holding a key of its own beside the secret's cannot rotate
// (two keys at most): RotateSecret says so, and the scheduler proposes
// nothing on any tick until a key is deleted.
func TestRotation_UserWithAKeyOfItsOwn(t *testing.T) {
	e := newSvcEnv(t)
	id, _ := e.ramUser(t, "app")
	if _, err := e.svc.CreateAccessKey(bg, e.caller, "app"); err != nil {
		t.Fatal(err)
	}
	e.rawSecret(t, fsm.Secret{Name: "acs/ram/user/app", Type: fsm.SecretTypeRAMCredentials, RAMUser: "app", AutoRotation: true, RotationInterval: 86400}, id)
	e.clock.Advance(48 * time.Hour)
	e.unchanged(t, "a blocked rotation", func() {
		_, _, _, err := e.svc.RotateSecret(bg, e.caller, RotateSecretInput{Name: "acs/ram/user/app", VersionID: "r1"})
		wantErr(t, "RotateSecret", err, fsm.ErrAccessKeyLimit)
		before := e.store.index
		n, err := e.svc.SchedulerTick(bg)
		wantErr(t, "SchedulerTick", err, fsm.ErrAccessKeyLimit)
		if n != 0 || e.store.index != before {
			t.Errorf("the scheduler made %d changes, %d proposals", n, e.store.index-before)
		}
	})
}

// Rotating seals a new value: like PutSecretValue it needs
// kms:GenerateDataKey on the secret's encryption key besides
// kms:RotateSecret on the secret.
func TestRotateSecret_NeedsTheEncryptionKey(t *testing.T) {
	e := newSvcEnv(t)
	id0, secret0 := e.ramUser(t, "app")
	sec, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{
		Name: "$Auto", Type: fsm.SecretTypeRAMCredentials, ExtendedConfig: ramExt("app"),
		Data: ramData(id0, secret0), VersionID: "v0", EncryptionKey: e.createKey(t, CreateKeyInput{}).ID,
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	admin := e.mkUser(t, "secadmin", PolicySecretAdminAccess)
	e.unchanged(t, "a rotation without the key's permission", func() {
		_, _, _, err := e.svc.RotateSecret(bg, admin, RotateSecretInput{Name: sec.Name, VersionID: "r1"})
		wantErr(t, "RotateSecret without kms:GenerateDataKey", err, ErrNoPermission)
	})
	if _, err := e.svc.AttachPolicy(bg, e.caller, PolicyAttachmentInput{To: AttachToUser, Name: "secadmin", PolicyType: "System", PolicyName: PolicyCryptoUserAccess}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.svc.RotateSecret(bg, admin, RotateSecretInput{Name: e.svc.SecretArn(sec), VersionID: "r1"}); err != nil {
		t.Fatalf("RotateSecret by ARN with both permissions: %v", err)
	}
	if e.secret(t, sec.Name).Stages[fsm.StageCurrent] != "r1" {
		t.Fatal("r1 is not current")
	}
}
