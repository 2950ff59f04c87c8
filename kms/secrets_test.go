package kms

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/testutil"
	"github.com/raftkms/raftkms/store"
	"github.com/raftkms/raftkms/transport"
)

// secretValue is a value no test data could hold by chance, so that a scan
// for it finds only a leak.
func secretValue(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "s3cr3t-" + hex.EncodeToString(b)
}

// mkSecret creates a Generic secret under key (the env's instance key when
// ""), first version v1.
func (e *svcEnv) mkSecret(t testing.TB, name, key, data string) *fsm.Secret {
	t.Helper()
	if key == "" {
		key = e.createKey(t, CreateKeyInput{}).ID
	}
	sec, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{Name: name, Data: data, VersionID: "v1", EncryptionKey: key})
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
	return sec
}

func (e *svcEnv) put(t testing.TB, name, version, data string, stages ...string) SecretVersionInfo {
	t.Helper()
	info, _, err := e.svc.PutSecretValue(bg, e.caller, PutSecretValueInput{Name: name, VersionID: version, Data: data, Stages: stages})
	if err != nil {
		t.Fatalf("PutSecretValue %s %s: %v", name, version, err)
	}
	return info
}

// value reads a secret as c; sel is "" (ACSCurrent), a version id, or
// "stage:<label>".
func (e *svcEnv) value(c Caller, name, sel string) (SecretValue, error) {
	in := SecretValueInput{Name: name}
	if st, ok := strings.CutPrefix(sel, "stage:"); ok {
		in.VersionStage = st
	} else {
		in.VersionID = sel
	}
	return e.svc.GetSecretValue(bg, c, in)
}

func (e *svcEnv) mustValue(t testing.TB, name, sel string) SecretValue {
	t.Helper()
	v, err := e.value(e.caller, name, sel)
	if err != nil {
		t.Fatalf("GetSecretValue %s %q: %v", name, sel, err)
	}
	return v
}

func (e *svcEnv) secret(t testing.TB, name string) *fsm.Secret {
	t.Helper()
	s, ok := e.fsm.Secret(e.caller.AccountID, name)
	if !ok {
		t.Fatalf("secret %s is not in the catalogue", name)
	}
	return s
}

func stagesOf(e *svcEnv, t testing.TB, name string) map[string]string {
	return e.secret(t, name).Stages
}

func TestSecrets_EnvelopeRoundTrip(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	text := secretValue(t)
	bin := base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff, 0xfe})
	sec := e.mkSecret(t, "db/password", k.ID, text)
	if sec.Type != fsm.SecretTypeGeneric || sec.EncryptionKeyID != k.ID || sec.Stages[fsm.StageCurrent] != "v1" {
		t.Fatalf("created %+v", sec)
	}
	got := e.mustValue(t, "db/password", "")
	if got.Data != text || got.Version.ID != "v1" || got.Version.DataType != SecretDataText || len(got.Stages) != 1 || got.Stages[0] != fsm.StageCurrent {
		t.Fatalf("GetSecretValue = %+v", got)
	}
	// Binary data comes back as the Base64 text it was put as.
	if _, _, err := e.svc.PutSecretValue(bg, e.caller, PutSecretValueInput{Name: "db/password", VersionID: "v2", Data: bin, DataType: SecretDataBinary}); err != nil {
		t.Fatal(err)
	}
	if got := e.mustValue(t, "db/password", ""); got.Data != bin || got.Version.DataType != SecretDataBinary {
		t.Fatalf("binary version = %+v", got)
	}
	// The key rotates: old versions still open, new ones use the new
	// primary version.
	if _, _, err := e.svc.CreateKeyVersion(bg, e.caller, k.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.mustValue(t, "db/password", "v1"); got.Data != text {
		t.Fatalf("after rotation v1 = %q", got.Data)
	}
	e.put(t, "db/password", "v3", "after rotation")
	v3, _ := e.secret(t, "db/password").Version("v3")
	dk, _, err := splitSecretEnvelope(v3.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := kcrypto.ParseCiphertext(dk)
	if h.VersionID != e.key(t, k.ID).PrimaryVersion {
		t.Fatalf("v3's data key is sealed under %s, the primary version is %s", h.VersionID, e.key(t, k.ID).PrimaryVersion)
	}
	if got := e.mustValue(t, "db/password", ""); got.Data != "after rotation" {
		t.Fatalf("v3 = %q", got.Data)
	}

	// An envelope binds its secret and version: moved to another name or
	// version id, or damaged, it does not open.
	cur := e.secret(t, "db/password")
	v1, _ := cur.Version("v1")
	other := *cur
	other.Name = "db/other"
	moved := v1
	moved.ID = "v2"
	damaged := v1
	damaged.Envelope = bytes.Clone(v1.Envelope)
	damaged.Envelope[len(damaged.Envelope)-1] ^= 1
	for name, c := range map[string]struct {
		sec *fsm.Secret
		v   fsm.SecretVersion
	}{
		"another secret":     {&other, v1},
		"another version id": {cur, moved},
		"a damaged envelope": {cur, damaged},
	} {
		if _, err := e.svc.openSecretVersion(bg, c.sec, c.v); !errors.Is(err, kcrypto.ErrInvalidCiphertext) {
			t.Errorf("%s: err = %v, want ErrInvalidCiphertext", name, err)
		}
	}
	for _, v := range cur.Versions {
		if bytes.Contains(v.Envelope, []byte(text)) || bytes.Contains(v.Envelope, []byte("after rotation")) {
			t.Fatalf("version %s's envelope holds the value", v.ID)
		}
		if len(v.Digest) != 32 {
			t.Fatalf("version %s's digest is %d bytes", v.ID, len(v.Digest))
		}
	}
}

// The value is never in the Raft log, the data dir or a snapshot: a real
// single-node Raft store on disk, written through, snapshotted, and every
// file of its data dir scanned, with the catalogue's snapshot.
func TestSecrets_ValueNeverOnDiskOrInSnapshots(t *testing.T) {
	dir := t.TempDir()
	root, err := kcrypto.NewRootKey(bytes.Repeat([]byte{0x42}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transport.New(transport.Config{BindAddr: "127.0.0.1:0", AuthKey: root.Derive(kcrypto.LabelClusterAuth), Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	f := fsm.New(nil, fsm.WithSnapshotKey(root.Derive(kcrypto.LabelSnapshotMAC)))
	st, err := store.Open(store.Config{NodeID: "n1", DataDir: dir, Transport: tr, FSM: f, Timing: store.FastTiming(), Errors: WireErrors, SnapshotThreshold: 1 << 20})
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Shutdown(); tr.Close() })
	if err := st.BootstrapSelf(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a leader", 10*time.Second, st.IsLeader)
	svc, err := New(Config{RootKey: root, FSM: f, Store: st, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Init(bg)
	if err != nil {
		t.Fatal(err)
	}
	e := &svcEnv{svc: svc, fsm: f, root: root, caller: rootCaller(res.AccountID, res.AccessKeyID), inst: res.InstanceID}

	values := []string{secretValue(t), secretValue(t), secretValue(t)}
	e.mkSecret(t, "app/token", "", values[0])
	e.put(t, "app/token", "v2", values[1])
	bin := []byte(values[2])
	if _, _, err := e.svc.PutSecretValue(bg, e.caller, PutSecretValueInput{Name: "app/token", VersionID: "v3", Data: base64.StdEncoding.EncodeToString(bin), DataType: SecretDataBinary}); err != nil {
		t.Fatal(err)
	}
	// A refused write with the value must not carry it anywhere either.
	_, _, err = e.svc.PutSecretValue(bg, e.caller, PutSecretValueInput{Name: "app/token", VersionID: "v2", Data: values[0]})
	wantErr(t, "the same VersionId with other data", err, fsm.ErrSecretVersionExists)
	if strings.Contains(err.Error(), values[0]) {
		t.Fatalf("the error quotes the value: %v", err)
	}
	for i, want := range []string{values[0], values[1]} {
		if got := e.mustValue(t, "app/token", fmt.Sprintf("v%d", i+1)); got.Data != want {
			t.Fatalf("v%d = %q", i+1, got.Data)
		}
	}
	if err := st.Snapshot(); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if _, err := svc.SaveSnapshot(bg, e.caller, &snap); err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{}
	for _, v := range values {
		needles = append(needles, []byte(v), []byte(base64.StdEncoding.EncodeToString([]byte(v))))
	}
	scan := func(where string, b []byte) {
		t.Helper()
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds a secret value (%q)", where, n)
			}
		}
	}
	scan("the operator's snapshot", snap.Bytes())
	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		scan(path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*", "state.bin"))
	if files < 2 || len(snaps) == 0 {
		t.Fatalf("scanned %d files, %d Raft snapshots: the test did not see the log and a snapshot", files, len(snaps))
	}
	// And the snapshot holds the envelopes the catalogue has (the scan saw
	// the secrets, not an empty catalogue).
	v1, _ := e.secret(t, "app/token").Version("v1")
	if !bytes.Contains(snap.Bytes(), v1.Envelope) {
		t.Fatal("the snapshot does not hold the secret's envelope")
	}
}

func TestSecrets_Stages(t *testing.T) {
	e := newSvcEnv(t)
	e.mkSecret(t, "s", "", "one")
	e.put(t, "s", "v2", "two")
	if st := stagesOf(e, t, "s"); st[fsm.StageCurrent] != "v2" || st[fsm.StagePrevious] != "v1" {
		t.Fatalf("after v2: %v", st)
	}
	// A version with only a custom stage leaves ACSCurrent where it is.
	if info := e.put(t, "s", "v3", "three", "beta"); len(info.Stages) != 1 || info.Stages[0] != "beta" {
		t.Fatalf("v3 info = %+v", info)
	}
	if got := e.mustValue(t, "s", "").Data; got != "two" {
		t.Fatalf("ACSCurrent = %q", got)
	}
	if got := e.mustValue(t, "s", "stage:beta").Data; got != "three" {
		t.Fatalf("beta = %q", got)
	}
	if got := e.mustValue(t, "s", "stage:ACSPrevious").Data; got != "one" {
		t.Fatalf("ACSPrevious = %q", got)
	}
	// Moving ACSCurrent moves ACSPrevious to the version it left; v1 loses
	// its last stage and is deprecated.
	if _, err := e.svc.UpdateSecretVersionStage(bg, e.caller, SecretStageInput{Name: "s", Stage: fsm.StageCurrent, RemoveFrom: "v2", MoveTo: "v3"}); err != nil {
		t.Fatal(err)
	}
	if st := stagesOf(e, t, "s"); st[fsm.StageCurrent] != "v3" || st[fsm.StagePrevious] != "v2" || st["beta"] != "v3" {
		t.Fatalf("after the move: %v", st)
	}
	_, l, err := e.svc.ListSecretVersionIds(bg, e.caller, SecretVersionsInput{Name: "s"})
	if err != nil || l.Total != 2 || l.Items[0].ID != "v3" || l.Items[1].ID != "v2" {
		t.Fatalf("versions without deprecated = %+v, %v", l, err)
	}
	_, l, err = e.svc.ListSecretVersionIds(bg, e.caller, SecretVersionsInput{Name: "s", IncludeDeprecated: true})
	if err != nil || l.Total != 3 || l.Items[2].ID != "v1" || len(l.Items[2].Stages) != 0 {
		t.Fatalf("versions with deprecated = %+v, %v", l, err)
	}
	_, l, err = e.svc.ListSecretVersionIds(bg, e.caller, SecretVersionsInput{Name: "s", IncludeDeprecated: true, Page: Page{Number: 2, Size: 2}})
	if err != nil || l.Total != 3 || len(l.Items) != 1 || l.Items[0].ID != "v1" {
		t.Fatalf("page 2 = %+v, %v", l, err)
	}
	// A deprecated version is still readable by id.
	if got := e.mustValue(t, "s", "v1").Data; got != "one" {
		t.Fatalf("v1 = %q", got)
	}

	refusals := []struct {
		name string
		in   SecretStageInput
		want error
	}{
		{"RemoveFromVersion does not hold the stage", SecretStageInput{Name: "s", Stage: "beta", RemoveFrom: "v1"}, fsm.ErrSecretStageMismatch},
		{"RemoveFromVersion does not hold ACSCurrent", SecretStageInput{Name: "s", Stage: fsm.StageCurrent, RemoveFrom: "v2", MoveTo: "v1"}, fsm.ErrSecretStageMismatch},
		{"ACSCurrent removed without a new home", SecretStageInput{Name: "s", Stage: fsm.StageCurrent, RemoveFrom: "v3"}, fsm.ErrSecretStageMismatch},
		{"MoveToVersion does not exist", SecretStageInput{Name: "s", Stage: "beta", MoveTo: "v9"}, fsm.ErrSecretVersionNotFound},
		{"neither version", SecretStageInput{Name: "s", Stage: "beta"}, ErrMissingParameter},
		{"a bad stage label", SecretStageInput{Name: "s", Stage: "be ta", MoveTo: "v1"}, ErrInvalidParameter},
		{"no such secret", SecretStageInput{Name: "nope", Stage: "beta", MoveTo: "v1"}, fsm.ErrSecretNotFound},
	}
	for _, r := range refusals {
		e.unchanged(t, r.name, func() {
			_, err := e.svc.UpdateSecretVersionStage(bg, e.caller, r.in)
			wantErr(t, r.name, err, r.want)
		})
	}
	// A custom stage can be removed, and moved back.
	if _, err := e.svc.UpdateSecretVersionStage(bg, e.caller, SecretStageInput{Name: "s", Stage: "beta", RemoveFrom: "v3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.value(e.caller, "s", "stage:beta"); !errors.Is(err, fsm.ErrSecretVersionNotFound) {
		t.Fatalf("a removed stage reads: %v", err)
	}
	if _, err := e.svc.UpdateSecretVersionStage(bg, e.caller, SecretStageInput{Name: "s", Stage: "beta", MoveTo: "v1"}); err != nil {
		t.Fatal(err)
	}
	if got := e.mustValue(t, "s", "stage:beta").Data; got != "one" {
		t.Fatalf("beta moved to v1 = %q", got)
	}
	// VersionId and VersionStage together must agree.
	if _, err := e.svc.GetSecretValue(bg, e.caller, SecretValueInput{Name: "s", VersionID: "v2", VersionStage: "beta"}); !errors.Is(err, fsm.ErrSecretVersionNotFound) {
		t.Fatalf("v2 read as beta: %v", err)
	}
	if got, err := e.svc.GetSecretValue(bg, e.caller, SecretValueInput{Name: "s", VersionID: "v1", VersionStage: "beta"}); err != nil || got.Data != "one" {
		t.Fatalf("v1 read as beta: %+v %v", got, err)
	}
}

func TestSecrets_VersionIDIsIdempotent(t *testing.T) {
	e := newSvcEnv(t)
	e.mkSecret(t, "s", "", "one")
	e.put(t, "s", "v2", "two")
	e.unchanged(t, "the same VersionId with the same data", func() {
		info := e.put(t, "s", "v2", "two")
		if info.ID != "v2" || len(info.Stages) != 1 || info.Stages[0] != fsm.StageCurrent {
			t.Fatalf("repeated put = %+v", info)
		}
		// Also with a stage that would move: nothing moves.
		e.put(t, "s", "v1", "one")
	})
	if got := e.mustValue(t, "s", "").Data; got != "two" {
		t.Fatalf("ACSCurrent after repeats = %q", got)
	}
	for name, in := range map[string]PutSecretValueInput{
		"other data":      {Name: "s", VersionID: "v2", Data: "TWO"},
		"other data type": {Name: "s", VersionID: "v2", Data: "two", DataType: SecretDataBinary},
	} {
		if in.DataType == SecretDataBinary {
			in.Data = base64.StdEncoding.EncodeToString([]byte("two"))
		}
		e.unchanged(t, name, func() {
			_, _, err := e.svc.PutSecretValue(bg, e.caller, in)
			wantErr(t, name, err, fsm.ErrSecretVersionExists)
		})
	}
}

func TestSecrets_VersionCapDropsOldestDeprecated(t *testing.T) {
	e := newSvcEnv(t)
	e.mkSecret(t, "s", "", "value 1")
	// v1 keeps a custom stage: it stays however many versions follow.
	if _, err := e.svc.UpdateSecretVersionStage(bg, e.caller, SecretStageInput{Name: "s", Stage: "pinned", MoveTo: "v1"}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 30; i++ {
		e.put(t, "s", fmt.Sprintf("v%d", i), fmt.Sprintf("value %d", i))
	}
	sec := e.secret(t, "s")
	if len(sec.Versions) != fsm.MaxSecretVersions {
		t.Fatalf("%d versions kept, want %d", len(sec.Versions), fsm.MaxSecretVersions)
	}
	ids := map[string]bool{}
	for _, v := range sec.Versions {
		ids[v.ID] = true
	}
	// Kept: v1 (pinned) and the 19 newest, v12..v30.
	for i := 1; i <= 30; i++ {
		want := i == 1 || i >= 12
		if ids[fmt.Sprintf("v%d", i)] != want {
			t.Errorf("v%d kept = %v, want %v", i, !want, want)
		}
	}
	if got := e.mustValue(t, "s", "stage:pinned").Data; got != "value 1" {
		t.Fatalf("pinned = %q", got)
	}
	if got := e.mustValue(t, "s", "stage:ACSPrevious").Data; got != "value 29" {
		t.Fatalf("ACSPrevious = %q", got)
	}
	if _, err := e.value(e.caller, "s", "v2"); !errors.Is(err, fsm.ErrSecretVersionNotFound) {
		t.Fatalf("a dropped version reads: %v", err)
	}
}

func TestSecrets_DeletionWindowRestoreForceAndNameReuse(t *testing.T) {
	e := newSvcEnv(t)
	key := e.createKey(t, CreateKeyInput{}).ID
	e.mkSecret(t, "s", key, "one")
	now := e.clock.Now()
	sec, _, err := e.svc.DeleteSecret(bg, e.caller, SecretDeletionInput{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(30 * 24 * time.Hour).UnixMilli(); sec.PlannedDeleteAt != want {
		t.Fatalf("PlannedDeleteAt = %d, want %d (30 days)", sec.PlannedDeleteAt, want)
	}
	// While pending: unreadable, unchangeable, still described, name taken.
	_, err = e.value(e.caller, "s", "")
	wantErr(t, "GetSecretValue while pending", err, fsm.ErrSecretPendingDeletion)
	_, _, err = e.svc.PutSecretValue(bg, e.caller, PutSecretValueInput{Name: "s", VersionID: "v2", Data: "two"})
	wantErr(t, "PutSecretValue while pending", err, fsm.ErrSecretPendingDeletion)
	_, _, err = e.svc.DeleteSecret(bg, e.caller, SecretDeletionInput{Name: "s"})
	wantErr(t, "DeleteSecret while pending", err, fsm.ErrSecretPendingDeletion)
	if d, err := e.svc.DescribeSecret(bg, e.caller, "s"); err != nil || !d.PendingDeletion() {
		t.Fatalf("DescribeSecret while pending: %+v %v", d, err)
	}
	_, _, err = e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "s", Data: "x", VersionID: "v1", EncryptionKey: key})
	wantErr(t, "CreateSecret with the name of a pending secret", err, fsm.ErrSecretExists)
	if l, err := e.svc.ListSecrets(bg, e.caller, ListSecretsInput{}); err != nil || l.Total != 1 {
		t.Fatalf("ListSecrets while pending: %+v %v", l, err)
	}

	if _, err := e.svc.RestoreSecret(bg, e.caller, "s"); err != nil {
		t.Fatal(err)
	}
	if got := e.mustValue(t, "s", "").Data; got != "one" {
		t.Fatalf("after restore: %q", got)
	}
	_, err = e.svc.RestoreSecret(bg, e.caller, "s")
	wantErr(t, "RestoreSecret on a live secret", err, fsm.ErrSecretNotPendingDeletion)

	for _, bad := range []int{6, 31, 0, -1} {
		_, _, err := e.svc.DeleteSecret(bg, e.caller, SecretDeletionInput{Name: "s", RecoveryWindowDays: ptr(bad)})
		wantField(t, fmt.Sprintf("a window of %d days", bad), err, FieldRecoveryWindowDays)
	}
	_, _, err = e.svc.DeleteSecret(bg, e.caller, SecretDeletionInput{Name: "s", RecoveryWindowDays: ptr(7), Force: true})
	wantField(t, "a forced deletion with a window", err, FieldRecoveryWindowDays)

	sec, _, err = e.svc.DeleteSecret(bg, e.caller, SecretDeletionInput{Name: "s", RecoveryWindowDays: ptr(7)})
	if err != nil || sec.PlannedDeleteAt != e.clock.Now().Add(7*24*time.Hour).UnixMilli() {
		t.Fatalf("a 7-day window: %+v %v", sec, err)
	}
	purge := func() error {
		_, err := e.svc.propose(bg, fsm.CmdPurgeSecret, fsm.SecretNameCmd{Now: e.svc.nowMillis(), AccountID: e.caller.AccountID, Name: "s"})
		return err
	}
	e.clock.Advance(7*24*time.Hour - time.Second)
	wantErr(t, "a purge before the end of the window", purge(), fsm.ErrPreconditionFailed)
	e.clock.Advance(time.Second)
	if err := purge(); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.DescribeSecret(bg, e.caller, "s")
	wantErr(t, "DescribeSecret after the purge", err, fsm.ErrSecretNotFound)
	e.mkSecret(t, "s", key, "reborn")

	// Forced: gone at once, whether live or pending.
	if _, _, err := e.svc.DeleteSecret(bg, e.caller, SecretDeletionInput{Name: "s", Force: true}); err != nil {
		t.Fatal(err)
	}
	e.mkSecret(t, "s", key, "again")
	if _, _, err := e.svc.DeleteSecret(bg, e.caller, SecretDeletionInput{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.DeleteSecret(bg, e.caller, SecretDeletionInput{Name: "s", Force: true}); err != nil {
		t.Fatalf("forcing a pending deletion: %v", err)
	}
	_, err = e.svc.RestoreSecret(bg, e.caller, "s")
	wantErr(t, "RestoreSecret after a forced deletion", err, fsm.ErrSecretNotFound)
	e.mkSecret(t, "s", key, "and again")
}

func TestSecrets_EncryptionKeyStateDecidesReadability(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	e.mkSecret(t, "s", k.ID, "one")
	if _, err := e.svc.SetKeyEnabled(bg, e.caller, k.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err := e.value(e.caller, "s", "")
	wantState(t, "GetSecretValue under a disabled key", err, fsm.StateDisabled)
	_, err = e.svc.GetSecretValue(WithDryRun(bg), e.caller, SecretValueInput{Name: "s"})
	wantState(t, "a dry run under a disabled key", err, fsm.StateDisabled)
	_, _, err = e.svc.PutSecretValue(bg, e.caller, PutSecretValueInput{Name: "s", VersionID: "v2", Data: "two"})
	wantState(t, "PutSecretValue under a disabled key", err, fsm.StateDisabled)
	_, _, err = e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "t", Data: "x", EncryptionKey: k.ID})
	wantState(t, "CreateSecret under a disabled key", err, fsm.StateDisabled)
	if _, err := e.svc.SetKeyEnabled(bg, e.caller, k.ID, true); err != nil {
		t.Fatal(err)
	}
	if got := e.mustValue(t, "s", "").Data; got != "one" {
		t.Fatalf("after EnableKey: %q", got)
	}
	if _, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID, PendingWindowDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.value(e.caller, "s", "")
	wantState(t, "GetSecretValue under a key pending deletion", err, fsm.StatePendingDeletion)
}

func TestSecrets_DryRun(t *testing.T) {
	e := newSvcEnv(t)
	e.mkSecret(t, "s", "", "one")
	ctx, r := WithResolved(WithDryRun(bg))
	_, err := e.svc.GetSecretValue(ctx, e.caller, SecretValueInput{Name: "s"})
	wantErr(t, "a dry run", err, ErrDryRun)
	if k, _ := r.Key(); k != e.secret(t, "s").EncryptionKeyID {
		t.Fatalf("the dry run noted key %q", k)
	}
	_, err = e.svc.GetSecretValue(WithDryRun(bg), e.caller, SecretValueInput{Name: "s", VersionID: "v9"})
	wantErr(t, "a dry run of a missing version", err, fsm.ErrSecretVersionNotFound)
}

// The audit record names the encryption key and the version that sealed
// the value read.
func TestSecrets_AuditNotesTheEncryptionKey(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	e.mkSecret(t, "s", k.ID, "one")
	ctx, r := WithResolved(bg)
	if _, err := e.svc.GetSecretValue(ctx, e.caller, SecretValueInput{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	if kid, vid := r.Key(); kid != k.ID || vid != k.PrimaryVersion {
		t.Fatalf("noted %s/%s, want %s/%s", kid, vid, k.ID, k.PrimaryVersion)
	}
	ctx, r = WithResolved(bg)
	if _, _, err := e.svc.PutSecretValue(ctx, e.caller, PutSecretValueInput{Name: "s", VersionID: "v2", Data: "two"}); err != nil {
		t.Fatal(err)
	}
	if kid, vid := r.Key(); kid != k.ID || vid != k.PrimaryVersion {
		t.Fatalf("PutSecretValue noted %s/%s", kid, vid)
	}
}

func TestSecrets_DefaultKey(t *testing.T) {
	e := newSvcEnv(t)
	_, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "s", Data: "x"})
	wantField(t, "no key and no default key", err, FieldEncryptionKey)
	if err == nil || !strings.Contains(err.Error(), "CreateKey") {
		t.Fatalf("the refusal does not say what to do: %v", err)
	}
	def := e.createKey(t, CreateKeyInput{DKMSInstanceID: "-"})
	sec, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "s", Data: "x"})
	if err != nil || sec.EncryptionKeyID != def.ID || sec.InstanceID != "" {
		t.Fatalf("with the default key: %+v %v", sec, err)
	}
	if len(sec.Versions) != 1 || sec.Versions[0].ID == "" {
		t.Fatalf("a VersionId left empty: %+v", sec.Versions)
	}
	if got := e.mustValue(t, "s", "").Data; got != "x" {
		t.Fatalf("value = %q", got)
	}
	// A secret of an instance needs a key of that instance.
	_, _, err = e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "t", Data: "x", InstanceID: e.inst})
	wantField(t, "an instance without a key", err, FieldEncryptionKey)
	_, _, err = e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "t", Data: "x", InstanceID: e.inst, EncryptionKey: def.ID})
	wantField(t, "an instance with the default key", err, FieldEncryptionKey)
	_, _, err = e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "t", Data: "x", InstanceID: "kst-nope", EncryptionKey: def.ID})
	wantErr(t, "an unknown instance", err, fsm.ErrInstanceNotFound)
	k := e.createKey(t, CreateKeyInput{})
	sec, _, err = e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "t", Data: "x", InstanceID: e.inst, EncryptionKey: "acs:kms:local:" + e.caller.AccountID + ":key/" + k.ID})
	if err != nil || sec.InstanceID != e.inst || sec.EncryptionKeyID != k.ID {
		t.Fatalf("a key of the instance by ARN: %+v %v", sec, err)
	}
}

func TestSecrets_EncryptionKeyMustBeASymmetricKeyOfTheAccount(t *testing.T) {
	e := newSvcEnv(t)
	rsaKey := e.createKey(t, CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: UsageEncryptDecrypt})
	signKey := e.createKey(t, CreateKeyInput{KeySpec: "EC_P256", KeyUsage: UsageSignVerify})
	other := e.otherAccount(t)
	foreign, _, err := e.svc.CreateKey(bg, other, CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		key  string
		want error
	}{
		"an RSA key":             {rsaKey.ID, ErrKeyUsage},
		"a SIGN/VERIFY key":      {signKey.ID, ErrKeyUsage},
		"a missing key":          {"00000000-0000-0000-0000-000000000000", fsm.ErrKeyNotFound},
		"another account's key":  {foreign.ID, fsm.ErrKeyNotFound},
		"another account's ARN":  {"acs:kms:local:" + other.AccountID + ":key/" + foreign.ID, ErrNoPermission},
		"an alias that is not":   {"alias/none", fsm.ErrAliasNotFound},
		"a malformed key ARN":    {"acs:kms:local", ErrInvalidParameter},
		"an ARN of another area": {"acs:kms:elsewhere:" + e.caller.AccountID + ":key/" + rsaKey.ID, fsm.ErrKeyNotFound},
	} {
		e.unchanged(t, name, func() {
			_, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "s", Data: "x", EncryptionKey: c.key})
			wantErr(t, name, err, c.want)
		})
	}
	// Cross-account: even when the foreign key's policy lets this account
	// use it, a secret is sealed under a key of its own account.
	doc := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::%s:*"]},"Action":["kms:*"],"Resource":["*"]},`+
		`{"Effect":"Allow","Principal":{"RAM":["acs:ram::%s:*"]},"Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":["*"]}]}`, other.AccountID, e.caller.AccountID)
	if _, err := e.svc.SetKeyPolicy(bg, other, KeyPolicyInput{Key: foreign.ID, PolicyName: "default", Policy: doc}); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "s", Data: "x", EncryptionKey: "acs:kms:local:" + other.AccountID + ":key/" + foreign.ID})
	wantField(t, "a foreign key the account may use", err, FieldEncryptionKey)
	// An alias of the account's own key works.
	k := e.createKey(t, CreateKeyInput{AliasName: "alias/secrets"})
	if sec, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "s", Data: "x", EncryptionKey: "alias/secrets"}); err != nil || sec.EncryptionKeyID != k.ID {
		t.Fatalf("by alias: %+v %v", sec, err)
	}
}

func TestSecrets_InputChecks(t *testing.T) {
	e := newSvcEnv(t)
	key := e.createKey(t, CreateKeyInput{}).ID
	ok := SecretInput{Name: "s", Data: "x", VersionID: "v1", EncryptionKey: key}
	with := func(f func(*SecretInput)) SecretInput { in := ok; f(&in); return in }
	binOf := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	cases := []struct {
		name  string
		in    SecretInput
		field Field
		err   error
	}{
		{"no name", with(func(in *SecretInput) { in.Name = "" }), FieldSecretName, ErrMissingParameter},
		{"a name with a space", with(func(in *SecretInput) { in.Name = "a b" }), FieldSecretName, ErrInvalidParameter},
		{"a name of 193 characters", with(func(in *SecretInput) { in.Name = strings.Repeat("n", 193) }), FieldSecretName, ErrInvalidParameter},
		{"a reserved name", with(func(in *SecretInput) { in.Name = "acs/ram/user/bob" }), FieldSecretName, ErrInvalidParameter},
		{"$Auto for a Generic secret", with(func(in *SecretInput) { in.Name = "$Auto" }), FieldSecretName, ErrInvalidParameter},
		{"no data", with(func(in *SecretInput) { in.Data = "" }), FieldSecretData, ErrMissingParameter},
		{"30721 bytes of text", with(func(in *SecretInput) { in.Data = strings.Repeat("x", 30721) }), FieldSecretData, ErrInvalidParameter},
		{"binary that is not Base64", with(func(in *SecretInput) { in.DataType = "binary"; in.Data = "not base64!" }), FieldSecretData, ErrInvalidParameter},
		{"30721 bytes of binary", with(func(in *SecretInput) { in.DataType = "binary"; in.Data = binOf(30721) }), FieldSecretData, ErrInvalidParameter},
		{"an unknown data type", with(func(in *SecretInput) { in.DataType = "json" }), FieldSecretDataType, ErrInvalidParameter},
		{"a bad version id", with(func(in *SecretInput) { in.VersionID = "v 1" }), FieldSecretVersionID, ErrInvalidParameter},
		{"a version id of 65 characters", with(func(in *SecretInput) { in.VersionID = strings.Repeat("v", 65) }), FieldSecretVersionID, ErrInvalidParameter},
		{"a description of 1025 characters", with(func(in *SecretInput) { in.Description = strings.Repeat("d", 1025) }), FieldDescription, ErrInvalidParameter},
		{"an extended config that is not an object", with(func(in *SecretInput) { in.ExtendedConfig = `["a"]` }), FieldExtendedConfig, ErrInvalidParameter},
		{"an extended config of 1025 bytes", with(func(in *SecretInput) { in.ExtendedConfig = `{"a":"` + strings.Repeat("x", 1018) + `"}` }), FieldExtendedConfig, ErrInvalidParameter},
		{"an unknown type", with(func(in *SecretInput) { in.Type = "Rds" }), FieldSecretType, ErrInvalidParameter},
		{"automatic rotation of a Generic secret", with(func(in *SecretInput) { in.AutoRotation = yes; in.RotationInterval = "30d" }), FieldAutomaticRotation, ErrInvalidParameter},
		{"a bad rotation interval", with(func(in *SecretInput) { in.RotationInterval = "5h" }), FieldRotationInterval, ErrInvalidParameter},
		{"a bad tag", with(func(in *SecretInput) { in.Tags = map[string]string{"aliyun-x": "v"} }), FieldTags, ErrInvalidParameter},
		{"21 tags", with(func(in *SecretInput) {
			in.Tags = map[string]string{}
			for i := range 21 {
				in.Tags[fmt.Sprint("t", i)] = "v"
			}
		}), FieldTags, ErrInvalidParameter},
		{"a policy that is not one", with(func(in *SecretInput) { in.Policy = `{"Version":"2"}` }), FieldSecretPolicy, ErrInvalidParameter},
	}
	for _, c := range cases {
		e.unchanged(t, c.name, func() {
			_, _, err := e.svc.CreateSecret(bg, e.caller, c.in)
			wantField(t, c.name, err, c.field)
			wantErr(t, c.name, err, c.err)
		})
	}
	// The limits themselves are accepted.
	for name, in := range map[string]SecretInput{
		"30720 bytes of text":   with(func(in *SecretInput) { in.Name = "t1"; in.Data = strings.Repeat("x", 30720) }),
		"30720 bytes of binary": with(func(in *SecretInput) { in.Name = "t2"; in.DataType = "binary"; in.Data = binOf(30720) }),
		"192 characters":        with(func(in *SecretInput) { in.Name = strings.Repeat("n", 192) }),
		"every character":       with(func(in *SecretInput) { in.Name = "aZ09_/+=.@-" }),
		"20 tags and a description of 1024": with(func(in *SecretInput) {
			in.Name = "t3"
			in.Description = strings.Repeat("d", 1024)
			in.Tags = map[string]string{}
			for i := range 20 {
				in.Tags[fmt.Sprint("t", i)] = "v"
			}
		}),
		"a rotation interval without rotation": with(func(in *SecretInput) { in.Name = "t4"; in.RotationInterval = "6h"; in.AutoRotation = no }),
	} {
		if _, _, err := e.svc.CreateSecret(bg, e.caller, in); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// PutSecretValue's own checks.
	puts := []struct {
		name  string
		in    PutSecretValueInput
		field Field
	}{
		{"no version id", PutSecretValueInput{Name: "t1", Data: "x"}, FieldSecretVersionID},
		{"11 stages", PutSecretValueInput{Name: "t1", VersionID: "v2", Data: "x", Stages: strings.Split("a b c d e f g h i j k", " ")}, FieldSecretVersionStages},
		{"a stage twice", PutSecretValueInput{Name: "t1", VersionID: "v2", Data: "x", Stages: []string{"a", "a"}}, FieldSecretVersionStages},
		{"a bad stage", PutSecretValueInput{Name: "t1", VersionID: "v2", Data: "x", Stages: []string{"a/b"}}, FieldSecretVersionStages},
		{"no name", PutSecretValueInput{VersionID: "v2", Data: "x"}, FieldSecretName},
	}
	for _, p := range puts {
		e.unchanged(t, p.name, func() {
			_, _, err := e.svc.PutSecretValue(bg, e.caller, p.in)
			wantField(t, p.name, err, p.field)
		})
	}
}

func TestParseSecretRotationInterval(t *testing.T) {
	cases := []struct {
		in   string
		want int64 // -1: refused
	}{
		{"6h", 6 * 3600}, {"21600s", 21600}, {"360m", 21600}, {"1d", 86400}, {"30d", 30 * 86400},
		{"365d", 365 * 86400}, {"8760h", 8760 * 3600},
		{"5h", -1}, {"21599s", -1}, {"366d", -1}, {"8761h", -1}, {"", -1}, {"d", -1}, {"30", -1},
		{"-6h", -1}, {"+6h", -1}, {"6H", -1}, {"1w", -1}, {"99999999999999999d", -1}, {"1.5d", -1},
	}
	for _, c := range cases {
		got, err := parseSecretRotationInterval(c.in)
		if c.want < 0 {
			if !errors.Is(err, ErrInvalidParameter) {
				t.Errorf("%q: %d, %v; want refused", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestSecrets_ListFiltersAndPages(t *testing.T) {
	e := newSvcEnv(t)
	key := e.createKey(t, CreateKeyInput{}).ID
	for i, s := range []struct{ name, desc string }{{"db/prod", "the production database"}, {"db/test", "testing"}, {"api/key", "an API key"}} {
		_, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{Name: s.name, Data: "x", EncryptionKey: key, Description: s.desc,
			Tags: map[string]string{"env": []string{"prod", "test", "prod"}[i], fmt.Sprint("n", i): "v"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	names := func(fs []SecretFilter, p Page) ([]string, int) {
		t.Helper()
		l, err := e.svc.ListSecrets(bg, e.caller, ListSecretsInput{Filters: fs, Page: p})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range l.Items {
			out = append(out, s.Name)
		}
		return out, l.Total
	}
	cases := []struct {
		name    string
		filters []SecretFilter
		want    string
	}{
		{"none", nil, "api/key db/prod db/test"},
		{"a name part", []SecretFilter{{Key: "SecretName", Values: []string{"db/"}}}, "db/prod db/test"},
		{"names ORed", []SecretFilter{{Key: "SecretName", Values: []string{"api", "test"}}}, "api/key db/test"},
		{"a description part", []SecretFilter{{Key: "Description", Values: []string{"database"}}}, "db/prod"},
		{"a tag key", []SecretFilter{{Key: "TagKey", Values: []string{"n1"}}}, "db/test"},
		{"a tag value", []SecretFilter{{Key: "TagValue", Values: []string{"prod"}}}, "api/key db/prod"},
		{"keys ANDed", []SecretFilter{{Key: "TagValue", Values: []string{"prod"}}, {Key: "SecretName", Values: []string{"db"}}}, "db/prod"},
		{"nothing matches", []SecretFilter{{Key: "TagKey", Values: []string{"nope"}}}, ""},
	}
	for _, c := range cases {
		got, total := names(c.filters, Page{})
		if strings.Join(got, " ") != c.want || total != len(got) {
			t.Errorf("%s: %v (total %d), want %q", c.name, got, total, c.want)
		}
	}
	if got, total := names(nil, Page{Number: 2, Size: 2}); len(got) != 1 || got[0] != "db/test" || total != 3 {
		t.Fatalf("page 2 of 2: %v %d", got, total)
	}
	for name, text := range map[string]string{
		"not JSON":        `{`,
		"an unknown key":  `[{"Key":"KeyState","Values":["x"]}]`,
		"no values":       `[{"Key":"SecretName","Values":[]}]`,
		"11 values":       `[{"Key":"SecretName","Values":["1","2","3","4","5","6","7","8","9","10","11"]}]`,
		"an empty value":  `[{"Key":"SecretName","Values":[""]}]`,
		"not an array":    `{"Key":"SecretName"}`,
		"11 filters long": "[" + strings.TrimSuffix(strings.Repeat(`{"Key":"TagKey","Values":["a"]},`, 11), ",") + "]",
	} {
		if _, err := ParseSecretFilters(text); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s: %v", name, err)
		}
	}
	fs, err := ParseSecretFilters(`[{"Key":"SecretName","Values":["db"]}]`)
	if err != nil || len(fs) != 1 || fs[0].Values[0] != "db" {
		t.Fatalf("ParseSecretFilters = %+v %v", fs, err)
	}
	_, err = e.svc.ListSecrets(bg, e.caller, ListSecretsInput{Page: Page{Size: 101}})
	wantField(t, "a page of 101", err, FieldPageSize)
}

func TestSecrets_UpdateSecret(t *testing.T) {
	e := newSvcEnv(t)
	key := e.createKey(t, CreateKeyInput{}).ID
	if _, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "s", Data: "x", EncryptionKey: key, Description: "old", ExtendedConfig: `{"Owner":"me"}`}); err != nil {
		t.Fatal(err)
	}
	sec, _, err := e.svc.UpdateSecret(bg, e.caller, UpdateSecretInput{Name: "s", Description: ptr("new"), CustomData: ptr(`{"team":"a"}`)})
	if err != nil || sec.Description != "new" || sec.ExtendedConfig != `{"CustomData":{"team":"a"},"Owner":"me"}` {
		t.Fatalf("UpdateSecret = %+v %v", sec, err)
	}
	sec, _, err = e.svc.UpdateSecret(bg, e.caller, UpdateSecretInput{Name: "s", CustomData: ptr("")})
	if err != nil || sec.Description != "new" || sec.ExtendedConfig != `{"Owner":"me"}` {
		t.Fatalf("removing CustomData = %+v %v", sec, err)
	}
	for name, in := range map[string]UpdateSecretInput{
		"nothing to change":       {Name: "s"},
		"custom data not object":  {Name: "s", CustomData: ptr(`"x"`)},
		"a description too long":  {Name: "s", Description: ptr(strings.Repeat("d", 1025))},
		"custom data beyond 1024": {Name: "s", CustomData: ptr(`{"a":"` + strings.Repeat("x", 1010) + `"}`)},
	} {
		e.unchanged(t, name, func() {
			if _, _, err := e.svc.UpdateSecret(bg, e.caller, in); !errors.Is(err, ErrInvalidParameter) && !errors.Is(err, ErrMissingParameter) {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
}

func TestSecrets_Tags(t *testing.T) {
	e := newSvcEnv(t)
	e.mkSecret(t, "s", "", "x")
	if _, err := e.svc.TagSecret(bg, e.caller, "s", []Tag{{"env", "prod"}, {"team", "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UntagSecret(bg, e.caller, "s", []string{"team"}); err != nil {
		t.Fatal(err)
	}
	if tags := e.secret(t, "s").Tags; len(tags) != 1 || tags["env"] != "prod" {
		t.Fatalf("tags = %v", tags)
	}
	var many []Tag
	for i := range 20 {
		many = append(many, Tag{fmt.Sprint("k", i), "v"})
	}
	e.unchanged(t, "a 21st tag", func() {
		_, err := e.svc.TagSecret(bg, e.caller, "s", many)
		wantErr(t, "a 21st tag", err, fsm.ErrTagLimit)
	})
	_, err := e.svc.TagSecret(bg, e.caller, "nope", []Tag{{"a", "b"}})
	wantErr(t, "tagging a missing secret", err, fsm.ErrSecretNotFound)
}

func TestSecrets_SecretNameByARN(t *testing.T) {
	e := newSvcEnv(t)
	e.mkSecret(t, "app/db", "", "x")
	arn := e.svc.SecretArn(e.secret(t, "app/db"))
	if arn != "acs:kms:local:"+e.caller.AccountID+":secret/app/db" {
		t.Fatalf("ARN = %s", arn)
	}
	if got, err := e.value(e.caller, arn, ""); err != nil || got.Data != "x" {
		t.Fatalf("by ARN: %+v %v", got, err)
	}
	other := e.otherAccount(t)
	_, err := e.value(other, arn, "")
	wantErr(t, "another account's ARN", err, ErrNoPermission)
	_, err = e.value(other, "app/db", "")
	wantErr(t, "another account by name", err, fsm.ErrSecretNotFound)
	_, err = e.value(e.caller, "acs:kms:local:"+e.caller.AccountID+":key/app/db", "")
	wantField(t, "a key ARN", err, FieldSecretName)
}

func TestSecrets_Policies(t *testing.T) {
	e := newSvcEnv(t)
	e.mkSecret(t, "s", "", "x")
	got, err := e.svc.GetSecretPolicy(bg, e.caller, SecretPolicyInput{Name: "s", PolicyName: "default"})
	if err != nil || got != DefaultSecretPolicy(e.caller.AccountID) {
		t.Fatalf("default policy = %s, %v", got, err)
	}
	if err := ValidatePolicy(got); err != nil {
		t.Fatalf("the default secret policy is not valid: %v", err)
	}
	acct := e.caller.AccountID
	lockout := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Deny","Principal":{"RAM":["acs:ram::%s:root"]},"Action":["kms:*"],"Resource":["*"]}]}`, acct)
	cross := allowPolicy(acct, "acs:ram::9999999999999999:*")
	for name, in := range map[string]SecretPolicyInput{
		"another policy name":            {Name: "s", PolicyName: "mine", Policy: got},
		"no policy name":                 {Name: "s", Policy: got},
		"no document":                    {Name: "s", PolicyName: "default"},
		"not a document":                 {Name: "s", PolicyName: "default", Policy: "{"},
		"another account's principal":    {Name: "s", PolicyName: "default", Policy: cross},
		"a policy that locks the caller": {Name: "s", PolicyName: "default", Policy: lockout},
	} {
		e.unchanged(t, name, func() {
			_, err := e.svc.SetSecretPolicy(bg, e.caller, in)
			if !errors.Is(err, ErrInvalidParameter) && !errors.Is(err, ErrMissingParameter) {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	doc := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::%s:root"]},"Action":["kms:*"],"Resource":["*"]},{"Effect":"Deny","Principal":{"RAM":["acs:ram::%s:user/eve"]},"Action":["kms:GetSecretValue"],"Resource":["*"]}]}`, acct, acct)
	if _, err := e.svc.SetSecretPolicy(bg, e.caller, SecretPolicyInput{Name: "s", PolicyName: "default", Policy: doc}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.GetSecretPolicy(bg, e.caller, SecretPolicyInput{Name: "s", PolicyName: "default"}); err != nil || got != doc {
		t.Fatalf("GetSecretPolicy = %s %v", got, err)
	}
}

func TestSecrets_Authorization(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	e.mkSecret(t, "s", k.ID, "the value")
	acct := e.caller.AccountID
	nobody := e.mkUser(t, "nobody")
	reader := e.mkUser(t, "reader", PolicySecretUserAccess)                           // no Decrypt on the key
	user := e.mkUser(t, "user", PolicySecretUserAccess, PolicyCryptoUserAccess)       // Decrypt through RAM
	admin := e.mkUser(t, "admin", PolicySecretAdminAccess)                            // no key permission
	writer := e.mkUser(t, "writer", PolicySecretAdminAccess, PolicyCryptoUserAccess)  // both
	ro := e.mkUser(t, "ro", PolicyReadOnlyAccess)                                     // metadata only
	eve := e.mkUser(t, "eve", PolicySecretUserAccess, PolicyCryptoUserAccess)         // denied by the secret policy below
	full := e.mkUser(t, "full", PolicyFullAccess)                                     // everything
	keyUser := e.mkUser(t, "keyuser", PolicyCryptoUserAccess)                         // the key, not the secret
	mallory := e.mkUser(t, "mallory", PolicySecretUserAccess, PolicyCryptoUserAccess) // denied Decrypt by the key policy

	doc := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:root"]},"Action":["kms:*"],"Resource":["*"]},{"Effect":"Deny","Principal":{"RAM":["acs:ram::%[1]s:user/eve"]},"Action":["kms:GetSecretValue"],"Resource":["*"]}]}`, acct)
	if _, err := e.svc.SetSecretPolicy(bg, e.caller, SecretPolicyInput{Name: "s", PolicyName: "default", Policy: doc}); err != nil {
		t.Fatal(err)
	}
	keyDoc := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:*"]},"Action":["kms:*"],"Resource":["*"]},{"Effect":"Deny","Principal":{"RAM":["acs:ram::%[1]s:user/mallory"]},"Action":["kms:Decrypt"],"Resource":["*"]}]}`, acct)
	if _, err := e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: keyDoc}); err != nil {
		t.Fatal(err)
	}

	read := func(c Caller) error { _, err := e.value(c, "s", ""); return err }
	describe := func(c Caller) error { _, err := e.svc.DescribeSecret(bg, c, "s"); return err }
	list := func(c Caller) error { _, err := e.svc.ListSecrets(bg, c, ListSecretsInput{}); return err }
	versions := func(c Caller) error {
		_, _, err := e.svc.ListSecretVersionIds(bg, c, SecretVersionsInput{Name: "s"})
		return err
	}
	policy := func(c Caller) error {
		_, err := e.svc.GetSecretPolicy(bg, c, SecretPolicyInput{Name: "s", PolicyName: "default"})
		return err
	}
	n := 0
	put := func(c Caller) error {
		n++
		_, _, err := e.svc.PutSecretValue(bg, c, PutSecretValueInput{Name: "s", VersionID: fmt.Sprint("p", n), Data: "new"})
		return err
	}
	create := func(c Caller) error {
		n++
		_, _, err := e.svc.CreateSecret(bg, c, SecretInput{Name: fmt.Sprint("c", n), Data: "x", EncryptionKey: k.ID})
		return err
	}
	del := func(c Caller) error {
		_, err := e.svc.RestoreSecret(bg, c, "s") // the live secret: allowed callers get NotPendingDeletion
		if errors.Is(err, fsm.ErrSecretNotPendingDeletion) {
			return nil
		}
		return err
	}
	ops := map[string]func(Caller) error{
		"GetSecretValue": read, "DescribeSecret": describe, "ListSecrets": list, "ListSecretVersionIds": versions,
		"GetSecretPolicy": policy, "PutSecretValue": put, "CreateSecret": create, "RestoreSecret": del,
	}
	allowed := map[string]map[string]bool{
		"nobody":  {},
		"reader":  {"DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true},
		"user":    {"GetSecretValue": true, "DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true},
		"admin":   {"DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true, "GetSecretPolicy": true, "RestoreSecret": true},
		"writer":  {"GetSecretValue": true, "DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true, "GetSecretPolicy": true, "PutSecretValue": true, "CreateSecret": true, "RestoreSecret": true},
		"ro":      {"DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true, "GetSecretPolicy": true},
		"eve":     {"DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true},
		"full":    {"GetSecretValue": true, "DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true, "GetSecretPolicy": true, "PutSecretValue": true, "CreateSecret": true, "RestoreSecret": true},
		"keyuser": {"DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true},
		"mallory": {"DescribeSecret": true, "ListSecrets": true, "ListSecretVersionIds": true},
	}
	callers := map[string]Caller{"nobody": nobody, "reader": reader, "user": user, "admin": admin, "writer": writer, "ro": ro, "eve": eve, "full": full, "keyuser": keyUser, "mallory": mallory}
	for who, c := range callers {
		for op, call := range ops {
			err := call(c)
			if allowed[who][op] {
				if err != nil {
					t.Errorf("%s %s: %v", who, op, err)
				}
			} else if !errors.Is(err, ErrNoPermission) {
				t.Errorf("%s %s: err = %v, want ErrNoPermission", who, op, err)
			}
		}
	}
	// The allowed reader reads the value itself (v1: the writers put others).
	if got, err := e.value(user, "s", "v1"); err != nil || got.Data != "the value" {
		t.Fatalf("user reads %+v %v", got, err)
	}
	// A denial never carries the value.
	if err := read(reader); err == nil || strings.Contains(err.Error(), "the value") {
		t.Fatalf("denial: %v", err)
	}
	// Changing the policy: only with SetSecretPolicy.
	if _, err := e.svc.SetSecretPolicy(bg, user, SecretPolicyInput{Name: "s", PolicyName: "default", Policy: doc}); !errors.Is(err, ErrNoPermission) {
		t.Fatalf("SetSecretPolicy by a user: %v", err)
	}
	// A secret policy may grant a named user directly.
	grant := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:root"]},"Action":["kms:*"],"Resource":["*"]},{"Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:user/keyuser"]},"Action":["kms:GetSecretValue"],"Resource":["*"]}]}`, acct)
	if _, err := e.svc.SetSecretPolicy(bg, e.caller, SecretPolicyInput{Name: "s", PolicyName: "default", Policy: grant}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.value(keyUser, "s", "v1"); err != nil || got.Data != "the value" {
		t.Fatalf("a user the secret policy names: %+v %v", got, err)
	}
}

// Client keys (the instance API) read with PermissionSecretUser on
// secret/<name> of the secret's instance, from an allowed address; nothing
// else.
func TestSecrets_ClientKeys(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	e.mkSecret(t, "app/db", k.ID, "the value")
	def := e.createKey(t, CreateKeyInput{DKMSInstanceID: "-"})
	if _, _, err := e.svc.CreateSecret(bg, e.caller, SecretInput{Name: "plain", Data: "x", EncryptionKey: def.ID}); err != nil {
		t.Fatal(err)
	}
	client := func(ps ...ClientKeyPolicy) Caller {
		return Caller{AccountID: e.caller.AccountID, Principal: "client-key/ck", SourceIP: "10.1.2.3", Client: &ClientKeyCaller{ID: "ck", AAPName: "app", Policies: ps}}
	}
	office := netip.MustParsePrefix("10.0.0.0/8")
	secretUser := ClientKeyPolicy{Name: "p", KmsInstance: e.inst, Permissions: []string{PermissionSecretUser}, Resources: []string{"secret/app/*"}}
	cases := []struct {
		name   string
		caller Caller
		secret string
		ok     bool
	}{
		{"secret user on secret/app/*", client(secretUser), "app/db", true},
		{"secret user from an allowed address", client(with(secretUser, func(p *ClientKeyPolicy) { p.Restricted, p.Sources = true, []netip.Prefix{office} })), "app/db", true},
		{"secret user from another address", client(with(secretUser, func(p *ClientKeyPolicy) {
			p.Restricted, p.Sources = true, []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}
		})), "app/db", false},
		{"key user only", client(with(secretUser, func(p *ClientKeyPolicy) {
			p.Permissions = []string{PermissionKeyUser}
			p.Resources = []string{"key/*", "secret/*"}
		})), "app/db", false},
		{"another resource", client(with(secretUser, func(p *ClientKeyPolicy) { p.Resources = []string{"secret/other"} })), "app/db", false},
		{"another instance", client(with(secretUser, func(p *ClientKeyPolicy) { p.KmsInstance = "kst-other" })), "app/db", false},
		{"a secret under the default key", client(with(secretUser, func(p *ClientKeyPolicy) { p.Resources = []string{"secret/*"} })), "plain", false},
		{"no policy", client(), "app/db", false},
	}
	for _, c := range cases {
		got, err := e.value(c.caller, c.secret, "")
		if c.ok && (err != nil || got.Data != "the value") {
			t.Errorf("%s: %+v %v", c.name, got, err)
		}
		if !c.ok && !errors.Is(err, ErrNoPermission) {
			t.Errorf("%s: err = %v, want ErrNoPermission", c.name, err)
		}
	}
	// Only reading: every other action is refused to a client key.
	c := client(with(secretUser, func(p *ClientKeyPolicy) { p.Resources = []string{"secret/*"} }))
	if _, _, err := e.svc.PutSecretValue(bg, c, PutSecretValueInput{Name: "app/db", VersionID: "v2", Data: "x"}); !errors.Is(err, ErrNoPermission) {
		t.Errorf("PutSecretValue by a client key: %v", err)
	}
	if _, err := e.svc.DescribeSecret(bg, c, "app/db"); !errors.Is(err, ErrNoPermission) {
		t.Errorf("DescribeSecret by a client key: %v", err)
	}
	if _, err := e.svc.ListSecrets(bg, c, ListSecretsInput{}); !errors.Is(err, ErrNoPermission) {
		t.Errorf("ListSecrets by a client key: %v", err)
	}
	if _, _, err := e.svc.CreateSecret(bg, c, SecretInput{Name: "new", Data: "x", EncryptionKey: k.ID}); !errors.Is(err, ErrNoPermission) {
		t.Errorf("CreateSecret by a client key: %v", err)
	}
}

func with[T any](v T, f func(*T)) T { f(&v); return v }

// Writes and reads of one secret from many goroutines: every read sees a
// value that was put, and the race detector sees the envelope and caches.
func TestSecrets_ConcurrentPutsAndReads(t *testing.T) {
	e := newSvcEnv(t)
	e.mkSecret(t, "s", "", "v1")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 10 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if _, _, err := e.svc.PutSecretValue(bg, e.caller, PutSecretValueInput{Name: "s", VersionID: id, Data: id}); err != nil {
					errs <- err
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 10 {
				got, err := e.value(e.caller, "s", "")
				if err != nil {
					errs <- err
					continue
				}
				if got.Data != got.Version.ID {
					errs <- fmt.Errorf("version %s holds %q", got.Version.ID, got.Data)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
