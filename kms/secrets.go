package kms

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/raftkms/raftkms/fsm"
)

// Secrets (fsm/secrets.go holds the model): the core's operations.
//
//   - A version's value is sealed with a fresh 256-bit data key under the
//     secret's encryption key (any symmetric ENCRYPT/DECRYPT key of the
//     account, software or HSM; the account's default key when none is
//     named); only the envelope enters the log (secrets_envelope.go).
//   - Reading a value needs kms:GetSecretValue on the secret (RAM policy,
//     secret policy) AND kms:Decrypt on its encryption key; a disabled or
//     pending-deletion encryption key refuses with the key state's error.
//     Sealing one (CreateSecret, PutSecretValue) needs kms:GenerateDataKey
//     on the key (secrets_authz.go).
//   - Client keys (the instance face) read with CryptoServiceSecretUser on
//     secret/<name> of the secret's instance (secrets_authz.go).
//   - Managed rotation and random passwords: secrets_rotation.go.

// errSecretsTODO answers the parts not written yet (secrets_rotation.go).
var errSecretsTODO = errors.New("secrets: not implemented yet")

// SecretInput is CreateSecret's input.
type SecretInput struct {
	Name           string
	Data           string // as the client sent it (binary: Base64 text)
	DataType       string // text (default) | binary
	VersionID      string
	EncryptionKey  string // id, alias or ARN; "": the account's default key
	InstanceID     string // DKMSInstanceId; "": none
	Description    string
	Tags           map[string]string
	Type           string // Generic (default) | RAMCredentials
	ExtendedConfig string // JSON object text
	AutoRotation   *bool
	// RotationInterval as the reference writes it: "30d", "6h", "3600s".
	RotationInterval string
	Policy           string // a secret policy document; "": the default
}

// SecretValueInput names the version GetSecretValue reads: VersionID, or
// VersionStage (default ACSCurrent).
type SecretValueInput struct {
	Name                string
	VersionID           string
	VersionStage        string
	FetchExtendedConfig bool
}

// SecretValue is a version's value with its secret and stages.
type SecretValue struct {
	Secret  *fsm.Secret
	Version fsm.SecretVersion
	Data    string // the value as it was put (binary: Base64 text)
	Stages  []string
}

// PutSecretValueInput adds a version.
type PutSecretValueInput struct {
	Name      string
	VersionID string
	Data      string
	DataType  string   // text (default) | binary
	Stages    []string // nil: ACSCurrent
}

// SecretVersionInfo describes a version without its value.
type SecretVersionInfo struct {
	ID        string
	CreatedAt int64 // Unix ms
	Stages    []string
}

// UpdateSecretInput changes a secret's description and/or the CustomData
// member of its extended configuration (JSON object text).
type UpdateSecretInput struct {
	Name        string
	Description *string
	CustomData  *string
}

// SecretStageInput moves or removes a stage label.
type SecretStageInput struct {
	Name       string
	Stage      string
	RemoveFrom string
	MoveTo     string
}

// SecretVersionsInput lists a secret's versions.
type SecretVersionsInput struct {
	Name              string
	IncludeDeprecated bool
	Page              Page
}

// SecretFilter is one ListSecrets filter: Key is SecretName, Description,
// TagKey or TagValue; a secret matches when the key's value matches any of
// Values.
type SecretFilter struct {
	Key    string
	Values []string
}

// ListSecretsInput lists an account's secrets.
type ListSecretsInput struct {
	Filters []SecretFilter
	Page    Page
}

// SecretDeletionInput schedules (RecoveryWindowDays, default 30, 7 to 30)
// or forces a secret's deletion.
type SecretDeletionInput struct {
	Name               string
	RecoveryWindowDays *int
	Force              bool
}

// RotateSecretInput rotates a RAMCredentials secret now; VersionID names
// the new version.
type RotateSecretInput struct {
	Name      string
	VersionID string
}

// SecretRotationPolicyInput turns automatic rotation on or off.
type SecretRotationPolicyInput struct {
	Name             string
	Enable           bool
	RotationInterval string // required when Enable
}

// SecretPolicyInput reads or sets a secret's policy (PolicyName "default").
type SecretPolicyInput struct {
	Name       string
	PolicyName string
	Policy     string
}

// RandomPasswordInput is GetRandomPassword's input.
type RandomPasswordInput struct {
	Length                  *int // 8 to 128, default 32
	ExcludeCharacters       string
	ExcludeLowercase        bool
	ExcludeUppercase        bool
	ExcludeNumbers          bool
	ExcludePunctuation      bool
	RequireEachIncludedType bool
}

// SecretArn is a secret's ARN: acs:kms:<region>:<account>:secret/<name>.
func (s *Service) SecretArn(sec *fsm.Secret) string {
	return "acs:kms:" + s.cfg.Region + ":" + sec.AccountID + ":secret/" + sec.Name
}

// Limits of secrets' inputs (the reference's).
const (
	MaxSecretDataSize       = 30720 // bytes of text, or of binary data once decoded
	MaxSecretDescription    = 1024  // characters
	MaxExtendedConfigSize   = 1024  // bytes of JSON
	MaxSecretStagesPerCall  = 10
	DefaultRecoveryWindow   = 30 // days
	MinRecoveryWindow       = 7
	MaxRecoveryWindow       = 30
	MinSecretRotationPeriod = 6 * 3600    // seconds
	MaxSecretRotationPeriod = 8760 * 3600 // seconds
)

// AutoSecretName is the SecretName a RAMCredentials secret is created
// with: the service names it RAMSecretPrefix + <UserName>.
const (
	AutoSecretName  = "$Auto"
	RAMSecretPrefix = "acs/ram/user/"
)

var (
	secretNamePattern  = regexp.MustCompile(`^[A-Za-z0-9_/+=.@-]{1,192}$`)
	secretLabelPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`) // version ids and stage labels
)

func checkSecretName(name string) error {
	if name == "" {
		return missing(FieldSecretName)
	}
	if !secretNamePattern.MatchString(name) {
		return invalid(FieldSecretName, "1 to 192 of letters, digits and _ / + = . @ -")
	}
	return nil
}

func checkSecretLabel(f Field, v string) error {
	if v == "" {
		return missing(f)
	}
	if !secretLabelPattern.MatchString(v) {
		return invalid(f, "1 to 64 of letters, digits and _ . -")
	}
	return nil
}

// checkSecretData checks a value and returns its data type (default text).
func checkSecretData(data, dataType string) (string, error) {
	switch dataType {
	case "":
		dataType = SecretDataText
	case SecretDataText, SecretDataBinary:
	default:
		return "", invalid(FieldSecretDataType, fmt.Sprintf("%q is not text or binary", shorten(dataType)))
	}
	if data == "" {
		return "", missing(FieldSecretData)
	}
	if dataType == SecretDataText {
		if len(data) > MaxSecretDataSize {
			return "", invalid(FieldSecretData, fmt.Sprintf("at most %d bytes", MaxSecretDataSize))
		}
		return dataType, nil
	}
	if len(data) > base64.StdEncoding.EncodedLen(MaxSecretDataSize) {
		return "", invalid(FieldSecretData, fmt.Sprintf("binary data is at most %d bytes (Base64 text)", MaxSecretDataSize))
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return "", invalid(FieldSecretData, "binary data must be Base64 text")
	}
	n := len(raw)
	clear(raw)
	if n > MaxSecretDataSize {
		return "", invalid(FieldSecretData, fmt.Sprintf("binary data is at most %d bytes", MaxSecretDataSize))
	}
	return dataType, nil
}

func checkSecretDescription(d string) error {
	if !utf8.ValidString(d) {
		return invalid(FieldDescription, "must be UTF-8 text")
	}
	if utf8.RuneCountInString(d) > MaxSecretDescription {
		return invalid(FieldDescription, fmt.Sprintf("a secret's description is at most %d characters", MaxSecretDescription))
	}
	return nil
}

// checkJSONObject checks the text of a JSON object of at most
// MaxExtendedConfigSize bytes.
func checkJSONObject(f Field, text string) error {
	if len(text) > MaxExtendedConfigSize {
		return invalid(f, fmt.Sprintf("at most %d bytes", MaxExtendedConfigSize))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &m); err != nil || m == nil {
		return invalid(f, `must be a JSON object, e.g. {"a":"b"}`)
	}
	return nil
}

func checkSecretStages(stages []string) error {
	if len(stages) > MaxSecretStagesPerCall {
		return invalid(FieldSecretVersionStages, fmt.Sprintf("at most %d stage labels", MaxSecretStagesPerCall))
	}
	seen := map[string]bool{}
	for _, st := range stages {
		if err := checkSecretLabel(FieldSecretVersionStages, st); err != nil {
			return err
		}
		if seen[st] {
			return invalid(FieldSecretVersionStages, fmt.Sprintf("%q appears twice", st))
		}
		seen[st] = true
	}
	return nil
}

// parseSecretRotationInterval reads a secret's RotationInterval, "<n>d",
// "<n>h", "<n>m" or "<n>s", between 6 hours and 8760 hours, in seconds.
// (Keys have their own bounds: parseRotationInterval in keys.go.)
func parseSecretRotationInterval(v string) (int64, error) {
	if v == "" {
		return 0, invalid(FieldRotationInterval, "required when automatic rotation is enabled, e.g. 30d, 12h or 86400s")
	}
	units := map[byte]int64{'d': 86400, 'h': 3600, 'm': 60, 's': 1}
	unit, ok := units[v[len(v)-1]]
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if !ok || err != nil || n <= 0 || v[0] == '+' {
		return 0, invalid(FieldRotationInterval, fmt.Sprintf("%q is not a duration like 30d, 12h, 360m or 86400s", shorten(v)))
	}
	if n > MaxSecretRotationPeriod/unit {
		return 0, invalid(FieldRotationInterval, "must be between 6 hours and 8760 hours (365 days)")
	}
	secs := n * unit
	if secs < MinSecretRotationPeriod || secs > MaxSecretRotationPeriod {
		return 0, invalid(FieldRotationInterval, "must be between 6 hours and 8760 hours (365 days)")
	}
	return secs, nil
}

// checkSecretPolicy checks a secret policy document: the key policy
// grammar, and no principal of another account (secrets are not shared
// across accounts).
func checkSecretPolicy(doc, owner string) error {
	if err := ValidatePolicy(doc); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return &FieldError{Field: FieldSecretPolicy, Err: fe.Err, Reason: fe.Reason}
		}
		return err
	}
	if CrossAccountPrincipals(doc, owner) > 0 {
		return invalid(FieldSecretPolicy, "a secret policy may allow identities of the secret's own account only")
	}
	return nil
}

func checkSecretPolicyName(name string) error {
	if name == "" {
		return missing(FieldSecretPolicyName)
	}
	if name != "default" {
		return invalid(FieldSecretPolicyName, `a secret has one policy, named "default"`)
	}
	return nil
}

// secretName reads a SecretName parameter: a name, or the ARN of a secret
// of the caller's account. Another account's ARN is refused as a denial of
// action (whether that secret exists is not told).
func (s *Service) secretName(c Caller, action, ref string) (string, error) {
	if ref == "" {
		return "", missing(FieldSecretName)
	}
	if !strings.HasPrefix(ref, "acs:") {
		return ref, checkSecretName(ref)
	}
	parts := strings.SplitN(ref, ":", 5)
	if len(parts) != 5 || parts[1] != "kms" || !strings.HasPrefix(parts[4], "secret/") {
		return "", invalid(FieldSecretName, "a secret ARN has the form acs:kms:<region>:<account>:secret/<name>")
	}
	if parts[2] != s.cfg.Region {
		return "", fmt.Errorf("%w: %s is in region %q, this cluster serves %q", fsm.ErrSecretNotFound, ref, parts[2], s.cfg.Region)
	}
	if parts[3] != c.AccountID {
		return "", denial(action, c)
	}
	name := strings.TrimPrefix(parts[4], "secret/")
	return name, checkSecretName(name)
}

// secretFor finds a secret of the caller's account by name or ARN (a miss
// costs one read-index round trip before it is final) and authorizes action
// on it. A secret scheduled for deletion is returned; callers refuse what
// it may not do.
func (s *Service) secretFor(ctx context.Context, c Caller, action, ref string) (*fsm.Secret, error) {
	name, err := s.secretName(c, action, ref)
	if err != nil {
		return nil, err
	}
	sec, ok := s.fsm.Secret(c.AccountID, name)
	if !ok {
		if err := s.confirmAbsent(ctx, "the secret"); err != nil {
			return nil, err
		}
		sec, ok = s.fsm.Secret(c.AccountID, name)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrSecretNotFound, name)
	}
	if err := s.authorizeSecret(ctx, c, action, sec); err != nil {
		return nil, err
	}
	return sec, nil
}

func notPending(sec *fsm.Secret) error {
	if sec.PendingDeletion() {
		return fmt.Errorf("%w: %s", fsm.ErrSecretPendingDeletion, sec.Name)
	}
	return nil
}

// encryptionKey is a secret's encryption key, authorized for action (not
// for a client key, whose secret permission stands for it).
func (s *Service) encryptionKey(ctx context.Context, c Caller, action string, sec *fsm.Secret, versionID string) (*fsm.Key, error) {
	k, ok := s.fsm.Key(sec.EncryptionKeyID)
	if !ok || k.AccountID != sec.AccountID {
		return nil, fmt.Errorf("%w: the encryption key of secret %s (%s) no longer exists", fsm.ErrKeyNotFound, sec.Name, sec.EncryptionKeyID)
	}
	noteKey(ctx, k.ID, "")
	if c.Client != nil {
		return k, nil
	}
	if err := s.authorizeKey(ctx, c, action, k, secretKeyContext(sec.AccountID, sec.Name, versionID)); err != nil {
		return nil, err
	}
	return k, nil
}

// defaultKey is the account's default key (the one key outside every KMS
// instance), used when CreateSecret names none.
func (s *Service) defaultKey(ctx context.Context, accountID string) (*fsm.Key, bool, error) {
	find := func() *fsm.Key {
		k, _ := s.fsm.DefaultKey(accountID)
		return k
	}
	k := find()
	if k == nil {
		if err := s.confirmAbsent(ctx, "the account's default key"); err != nil {
			return nil, false, err
		}
		k = find()
	}
	return k, k != nil, nil
}

// CreateSecret creates a secret with its first version (stage ACSCurrent).
//
// The value is sealed under EncryptionKey (a symmetric ENCRYPT/DECRYPT key
// of the caller's account, enabled; with InstanceID, a key of that
// instance), or the account's default key when none is named; the caller
// needs kms:CreateSecret on the new secret's ARN and kms:GenerateDataKey on
// the key. A VersionID left empty is a new UUID. A RAMCredentials secret
// (SecretName "$Auto", named acs/ram/user/<UserName>) holds the access key
// of the RAM user its ExtendedConfig names (ramCredentials).
func (s *Service) CreateSecret(ctx context.Context, c Caller, in SecretInput) (*fsm.Secret, uint64, error) {
	typ := in.Type
	switch typ {
	case "":
		typ = fsm.SecretTypeGeneric
	case fsm.SecretTypeGeneric, fsm.SecretTypeRAMCredentials:
	default:
		return nil, 0, invalid(FieldSecretType, fmt.Sprintf("%q is not Generic or RAMCredentials", shorten(typ)))
	}
	name := in.Name
	if typ == fsm.SecretTypeGeneric {
		if err := checkSecretName(name); err != nil {
			return nil, 0, err
		}
		if strings.HasPrefix(strings.ToLower(name), "acs/") {
			return nil, 0, invalid(FieldSecretName, "names starting with acs/ are reserved for secrets the service names (RAMCredentials)")
		}
	} else if name == "" {
		return nil, 0, missing(FieldSecretName)
	} else if name != AutoSecretName && !strings.HasPrefix(name, RAMSecretPrefix) {
		return nil, 0, invalid(FieldSecretName, `a RAMCredentials secret is named by the service: send "$Auto"`)
	}
	dataType, err := checkSecretData(in.Data, in.DataType)
	if err != nil {
		return nil, 0, err
	}
	versionID := in.VersionID
	if versionID == "" {
		versionID = newUUID()
	} else if err := checkSecretLabel(FieldSecretVersionID, versionID); err != nil {
		return nil, 0, err
	}
	if err := checkSecretDescription(in.Description); err != nil {
		return nil, 0, err
	}
	if len(in.Tags) > fsm.MaxTagsPerSecret {
		return nil, 0, invalid(FieldTags, fmt.Sprintf("at most %d tags", fsm.MaxTagsPerSecret))
	}
	tags := make(map[string]string, len(in.Tags))
	for k, v := range in.Tags {
		if err := checkTag(Tag{Key: k, Value: v}); err != nil {
			return nil, 0, err
		}
		tags[k] = v
	}
	if in.ExtendedConfig != "" {
		if err := checkJSONObject(FieldExtendedConfig, in.ExtendedConfig); err != nil {
			return nil, 0, err
		}
	}
	auto := in.AutoRotation != nil && *in.AutoRotation
	var interval int64
	if auto || in.RotationInterval != "" {
		if interval, err = parseSecretRotationInterval(in.RotationInterval); err != nil {
			return nil, 0, err
		}
	}
	if typ == fsm.SecretTypeGeneric {
		if auto {
			return nil, 0, invalid(FieldAutomaticRotation, "Generic secrets do not rotate by themselves: put a new value with PutSecretValue")
		}
		interval = 0
	}
	if in.Policy != "" {
		if err := checkSecretPolicy(in.Policy, c.AccountID); err != nil {
			return nil, 0, err
		}
	}
	if in.InstanceID != "" {
		ok, err := s.found(ctx, func() bool { inst, ok := s.fsm.Instance(in.InstanceID); return ok && inst.AccountID == c.AccountID })
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, fmt.Errorf("%w: DKMSInstanceId %s", fsm.ErrInstanceNotFound, in.InstanceID)
		}
	}
	var ramUser, accessKeyID string
	if typ == fsm.SecretTypeRAMCredentials {
		if ramUser, accessKeyID, err = s.ramCredentials(ctx, c, in); err != nil {
			return nil, 0, err
		}
		auto := RAMSecretPrefix + ramUser
		if name != AutoSecretName && name != auto {
			return nil, 0, invalid(FieldSecretName, fmt.Sprintf(`a RAMCredentials secret is named by the service: send "$Auto" (it becomes %q)`, auto))
		}
		name = auto
		if err := checkSecretName(name); err != nil {
			return nil, 0, err
		}
	}
	if err := s.authorizeSecret(ctx, c, "kms:CreateSecret", &fsm.Secret{AccountID: c.AccountID, Name: name, InstanceID: in.InstanceID}); err != nil {
		return nil, 0, err
	}

	ref := in.EncryptionKey
	if ref == "" {
		if in.InstanceID != "" {
			return nil, 0, invalid(FieldEncryptionKey, "a secret in a KMS instance ("+FieldInstanceID.Ref()+") is sealed under a key of that instance: name it")
		}
		k, ok, err := s.defaultKey(ctx, c.AccountID)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, invalid(FieldEncryptionKey, "none was named and the account has no default key: name a symmetric key, or create the default key (CreateKey without DKMSInstanceId)")
		}
		ref = k.ID
	}
	k, err := s.keyFor(ctx, c, "kms:GenerateDataKey", FieldEncryptionKey, ref, nil)
	if err != nil {
		return nil, 0, err
	}
	if k.AccountID != c.AccountID {
		return nil, 0, invalid(FieldEncryptionKey, "a secret is sealed under a key of its own account")
	}
	if in.InstanceID != "" && k.InstanceID != in.InstanceID {
		return nil, 0, invalid(FieldEncryptionKey, "the key is not in the secret's KMS instance ("+FieldInstanceID.Ref()+")")
	}
	if err := usable(k, "CreateSecret with encryption key "+k.ID, UsageEncryptDecrypt); err != nil {
		return nil, 0, err
	}

	now := s.nowMillis()
	v, err := s.sealSecretVersion(ctx, c.AccountID, name, k.ID, versionID, dataType, in.Data)
	if err != nil {
		return nil, 0, err
	}
	v.CreatedAt, v.AccessKeyID = now, accessKeyID
	sec := fsm.Secret{
		AccountID: c.AccountID, Name: name, Type: typ, Description: in.Description,
		EncryptionKeyID: k.ID, InstanceID: in.InstanceID, ExtendedConfig: in.ExtendedConfig,
		RAMUser: ramUser, Tags: tags, Policy: in.Policy,
		AutoRotation: auto, RotationInterval: interval,
	}
	idx, err := s.propose(ctx, fsm.CmdCreateSecret, fsm.CreateSecretCmd{Now: now, Secret: sec, Version: v})
	if err != nil {
		return nil, idx, err
	}
	if got, ok := s.fsm.Secret(c.AccountID, name); ok && got.ModifyIndex == idx {
		return got, idx, nil
	}
	// Applied on the leader, not here yet: answer from what was proposed.
	sec.CreatedAt, sec.UpdatedAt, sec.ModifyIndex = now, now, idx
	sec.Versions, sec.Stages = []fsm.SecretVersion{v}, map[string]string{fsm.StageCurrent: v.ID}
	if auto && interval > 0 {
		sec.NextRotation = now + interval*1000
	}
	return &sec, idx, nil
}

// selectVersion picks the version GetSecretValue reads: VersionID (which
// must carry VersionStage when both are given), else the version
// VersionStage names (default ACSCurrent).
func selectVersion(sec *fsm.Secret, versionID, stage string) (fsm.SecretVersion, error) {
	if versionID != "" {
		v, ok := sec.Version(versionID)
		if !ok {
			return v, fmt.Errorf("%w: %s of secret %s", fsm.ErrSecretVersionNotFound, versionID, sec.Name)
		}
		if stage != "" && sec.Stages[stage] != versionID {
			return v, fmt.Errorf("%w: version %s of secret %s does not carry stage %s", fsm.ErrSecretVersionNotFound, versionID, sec.Name, stage)
		}
		return v, nil
	}
	if stage == "" {
		stage = fsm.StageCurrent
	}
	id, ok := sec.Stages[stage]
	if !ok {
		return fsm.SecretVersion{}, fmt.Errorf("%w: no version of secret %s carries stage %s", fsm.ErrSecretVersionNotFound, sec.Name, stage)
	}
	v, ok := sec.Version(id)
	if !ok {
		return v, fmt.Errorf("%w: %s of secret %s", fsm.ErrSecretVersionNotFound, id, sec.Name)
	}
	return v, nil
}

// GetSecretValue opens one version of a secret. The caller needs
// kms:GetSecretValue on the secret and kms:Decrypt on its encryption key
// (a client key: PermissionSecretUser on secret/<name>). A secret scheduled
// for deletion answers fsm.ErrSecretPendingDeletion; a disabled or
// pending-deletion encryption key the key state's error. Under a dry run
// every check runs and the answer is ErrDryRun.
func (s *Service) GetSecretValue(ctx context.Context, c Caller, in SecretValueInput) (SecretValue, error) {
	if in.Name == "" {
		return SecretValue{}, missing(FieldSecretName)
	}
	if in.VersionID != "" {
		if err := checkSecretLabel(FieldSecretVersionID, in.VersionID); err != nil {
			return SecretValue{}, err
		}
	}
	if in.VersionStage != "" {
		if err := checkSecretLabel(FieldSecretVersionStage, in.VersionStage); err != nil {
			return SecretValue{}, err
		}
	}
	if err := s.fresh(ctx); err != nil {
		return SecretValue{}, err
	}
	sec, err := s.secretFor(ctx, c, "kms:GetSecretValue", in.Name)
	if err != nil {
		return SecretValue{}, err
	}
	if err := notPending(sec); err != nil {
		return SecretValue{}, err
	}
	v, err := selectVersion(sec, in.VersionID, in.VersionStage)
	if err != nil {
		return SecretValue{}, err
	}
	k, err := s.encryptionKey(ctx, c, "kms:Decrypt", sec, v.ID)
	if err != nil {
		return SecretValue{}, err
	}
	if err := usable(k, "Reading a secret sealed with encryption key "+k.ID, UsageEncryptDecrypt); err != nil {
		return SecretValue{}, err
	}
	if isDryRun(ctx) {
		return SecretValue{}, ErrDryRun
	}
	data, err := s.openSecretVersion(ctx, sec, v)
	if err != nil {
		return SecretValue{}, err
	}
	return SecretValue{Secret: sec, Version: v, Data: data, Stages: sec.StagesOf(v.ID)}, nil
}

// PutSecretValue adds a version, labelled Stages (default ACSCurrent, which
// moves ACSPrevious to the version that was current). The same VersionID
// with the same data is a success that changes nothing; with other data it
// is fsm.ErrSecretVersionExists. RAMCredentials secrets change only by
// rotation (fsm.ErrSecretType). The caller needs kms:PutSecretValue on the
// secret and kms:GenerateDataKey on its encryption key.
func (s *Service) PutSecretValue(ctx context.Context, c Caller, in PutSecretValueInput) (SecretVersionInfo, uint64, error) {
	if in.Name == "" {
		return SecretVersionInfo{}, 0, missing(FieldSecretName)
	}
	if err := checkSecretLabel(FieldSecretVersionID, in.VersionID); err != nil {
		return SecretVersionInfo{}, 0, err
	}
	dataType, err := checkSecretData(in.Data, in.DataType)
	if err != nil {
		return SecretVersionInfo{}, 0, err
	}
	if err := checkSecretStages(in.Stages); err != nil {
		return SecretVersionInfo{}, 0, err
	}
	sec, err := s.secretFor(ctx, c, "kms:PutSecretValue", in.Name)
	if err != nil {
		return SecretVersionInfo{}, 0, err
	}
	if err := notPending(sec); err != nil {
		return SecretVersionInfo{}, 0, err
	}
	if sec.Type == fsm.SecretTypeRAMCredentials {
		return SecretVersionInfo{}, 0, fmt.Errorf("%w: a RAMCredentials secret changes by rotation (RotateSecret), not PutSecretValue", fsm.ErrSecretType)
	}
	if old, ok := sec.Version(in.VersionID); ok {
		// Told without sealing anything: the digest is deterministic.
		if old.DataType != dataType || !hmac.Equal(old.Digest, s.secretDigest(sec.AccountID, sec.Name, in.VersionID, dataType, in.Data)) {
			return SecretVersionInfo{}, 0, fmt.Errorf("%w: %s", fsm.ErrSecretVersionExists, in.VersionID)
		}
	}
	k, err := s.encryptionKey(ctx, c, "kms:GenerateDataKey", sec, in.VersionID)
	if err != nil {
		return SecretVersionInfo{}, 0, err
	}
	now := s.nowMillis()
	v, err := s.sealSecretVersion(ctx, sec.AccountID, sec.Name, k.ID, in.VersionID, dataType, in.Data)
	if err != nil {
		return SecretVersionInfo{}, 0, err
	}
	v.CreatedAt = now
	idx, err := s.propose(ctx, fsm.CmdPutSecretValue, fsm.PutSecretValueCmd{Now: now, AccountID: sec.AccountID, Name: sec.Name, Version: v, Stages: in.Stages})
	if err != nil {
		return SecretVersionInfo{}, idx, err
	}
	if cur, ok := s.fsm.Secret(sec.AccountID, sec.Name); ok {
		if got, ok := cur.Version(in.VersionID); ok {
			return SecretVersionInfo{ID: got.ID, CreatedAt: got.CreatedAt, Stages: cur.StagesOf(got.ID)}, idx, nil
		}
	}
	stages := in.Stages
	if len(stages) == 0 {
		stages = []string{fsm.StageCurrent}
	}
	return SecretVersionInfo{ID: v.ID, CreatedAt: now, Stages: stages}, idx, nil
}

// UpdateSecret changes a secret's description and/or the CustomData member
// of its extended configuration ("" removes it).
func (s *Service) UpdateSecret(ctx context.Context, c Caller, in UpdateSecretInput) (*fsm.Secret, uint64, error) {
	if in.Name == "" {
		return nil, 0, missing(FieldSecretName)
	}
	if in.Description == nil && in.CustomData == nil {
		return nil, 0, missing(FieldDescription)
	}
	if in.Description != nil {
		if err := checkSecretDescription(*in.Description); err != nil {
			return nil, 0, err
		}
	}
	if in.CustomData != nil && *in.CustomData != "" {
		if err := checkJSONObject(FieldCustomData, *in.CustomData); err != nil {
			return nil, 0, err
		}
	}
	sec, err := s.secretFor(ctx, c, "kms:UpdateSecret", in.Name)
	if err != nil {
		return nil, 0, err
	}
	if err := notPending(sec); err != nil {
		return nil, 0, err
	}
	cmd := fsm.UpdateSecretCmd{Now: s.nowMillis(), AccountID: sec.AccountID, Name: sec.Name}
	if in.Description != nil {
		cmd.Description, cmd.SetDescription = *in.Description, true
	}
	if in.CustomData != nil {
		ext, err := withCustomData(sec.ExtendedConfig, *in.CustomData)
		if err != nil {
			return nil, 0, err
		}
		cmd.ExtendedConfig, cmd.SetExtendedConfig = ext, true
	}
	idx, err := s.propose(ctx, fsm.CmdUpdateSecret, cmd)
	if err != nil {
		return nil, idx, err
	}
	if got, ok := s.fsm.Secret(sec.AccountID, sec.Name); ok {
		return got, idx, nil
	}
	return sec, idx, nil
}

// withCustomData sets (or, for "", removes) the CustomData member of an
// extended configuration.
func withCustomData(ext, custom string) (string, error) {
	m := map[string]json.RawMessage{}
	if ext != "" {
		if err := json.Unmarshal([]byte(ext), &m); err != nil || m == nil {
			m = map[string]json.RawMessage{}
		}
	}
	if custom == "" {
		delete(m, "CustomData")
	} else {
		m["CustomData"] = json.RawMessage(custom)
	}
	if len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", invalid(FieldCustomData, `must be a JSON object, e.g. {"a":"b"}`)
	}
	if len(b) > MaxExtendedConfigSize {
		return "", invalid(FieldCustomData, fmt.Sprintf("the extended configuration would exceed %d bytes", MaxExtendedConfigSize))
	}
	return string(b), nil
}

// UpdateSecretVersionStage moves a stage label to MoveTo and/or removes it
// from RemoveFrom (which must hold it: else fsm.ErrSecretStageMismatch).
// ACSCurrent can be moved, never removed; moving it moves ACSPrevious to
// the version it left.
func (s *Service) UpdateSecretVersionStage(ctx context.Context, c Caller, in SecretStageInput) (uint64, error) {
	if in.Name == "" {
		return 0, missing(FieldSecretName)
	}
	if err := checkSecretLabel(FieldSecretVersionStage, in.Stage); err != nil {
		return 0, err
	}
	if in.RemoveFrom == "" && in.MoveTo == "" {
		return 0, missing(FieldMoveToVersion)
	}
	if in.RemoveFrom != "" {
		if err := checkSecretLabel(FieldRemoveFromVersion, in.RemoveFrom); err != nil {
			return 0, err
		}
	}
	if in.MoveTo != "" {
		if err := checkSecretLabel(FieldMoveToVersion, in.MoveTo); err != nil {
			return 0, err
		}
	}
	sec, err := s.secretFor(ctx, c, "kms:UpdateSecretVersionStage", in.Name)
	if err != nil {
		return 0, err
	}
	if err := notPending(sec); err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdUpdateSecretVersionStage, fsm.UpdateSecretVersionStageCmd{
		Now: s.nowMillis(), AccountID: sec.AccountID, Name: sec.Name, Stage: in.Stage, RemoveFrom: in.RemoveFrom, MoveTo: in.MoveTo,
	})
}

// ListSecretVersionIds lists a secret's versions, newest first; deprecated
// versions (without a stage) only with IncludeDeprecated.
func (s *Service) ListSecretVersionIds(ctx context.Context, c Caller, in SecretVersionsInput) (*fsm.Secret, Listing[SecretVersionInfo], error) {
	p, err := in.Page.normalize()
	if err != nil {
		return nil, Listing[SecretVersionInfo]{}, err
	}
	if in.Name == "" {
		return nil, Listing[SecretVersionInfo]{}, missing(FieldSecretName)
	}
	if err := s.fresh(ctx); err != nil {
		return nil, Listing[SecretVersionInfo]{}, err
	}
	sec, err := s.secretFor(ctx, c, "kms:ListSecretVersionIds", in.Name)
	if err != nil {
		return nil, Listing[SecretVersionInfo]{}, err
	}
	var all []SecretVersionInfo
	for i := len(sec.Versions) - 1; i >= 0; i-- {
		v := sec.Versions[i]
		stages := sec.StagesOf(v.ID)
		if len(stages) == 0 && !in.IncludeDeprecated {
			continue
		}
		all = append(all, SecretVersionInfo{ID: v.ID, CreatedAt: v.CreatedAt, Stages: stages})
	}
	return sec, listing(all, p), nil
}

// secretFilterKeys are the ListSecrets filter keys.
var secretFilterKeys = []string{"SecretName", "Description", "TagKey", "TagValue"}

// ParseSecretFilters parses ListSecrets' Filters parameter: a JSON array of
// {"Key":…, "Values":[…]}, at most 10 filters of 1 to 10 values. Different
// keys are ANDed, the values of one key ORed.
func ParseSecretFilters(text string) ([]SecretFilter, error) {
	if text == "" {
		return nil, nil
	}
	var fs []SecretFilter
	if err := json.Unmarshal([]byte(text), &fs); err != nil {
		return nil, invalid(FieldFilters, `must be a JSON array like [{"Key":"SecretName","Values":["db"]}]`)
	}
	return fs, checkSecretFilters(fs)
}

func checkSecretFilters(fs []SecretFilter) error {
	if len(fs) > 10 {
		return invalid(FieldFilters, "at most 10 filters")
	}
	for _, f := range fs {
		if !contains(secretFilterKeys, f.Key) {
			return invalid(FieldFilters, fmt.Sprintf("%q is not a filter key (SecretName, Description, TagKey, TagValue)", shorten(f.Key)))
		}
		if len(f.Values) == 0 || len(f.Values) > 10 {
			return invalid(FieldFilters, fmt.Sprintf("filter %s needs 1 to 10 Values", f.Key))
		}
		for _, v := range f.Values {
			if v == "" || len(v) > 1024 {
				return invalid(FieldFilters, fmt.Sprintf("filter %s: values are 1 to 1024 characters", f.Key))
			}
		}
	}
	return nil
}

// secretMatches applies ListSecrets' filters: SecretName and Description
// match a value they contain, TagKey and TagValue a tag key or value equal
// to one.
func secretMatches(sec *fsm.Secret, fs []SecretFilter) bool {
	for _, f := range fs {
		hit := false
		for _, want := range f.Values {
			switch f.Key {
			case "SecretName":
				hit = strings.Contains(sec.Name, want)
			case "Description":
				hit = strings.Contains(sec.Description, want)
			case "TagKey":
				_, hit = sec.Tags[want]
			case "TagValue":
				for _, v := range sec.Tags {
					if v == want {
						hit = true
						break
					}
				}
			}
			if hit {
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// ListSecrets lists the caller's account's secrets that pass the filters
// (those scheduled for deletion included), sorted by name. Only the
// caller's RAM policies decide (kms:ListSecrets), as for ListKeys.
func (s *Service) ListSecrets(ctx context.Context, c Caller, in ListSecretsInput) (Listing[*fsm.Secret], error) {
	p, err := in.Page.normalize()
	if err != nil {
		return Listing[*fsm.Secret]{}, err
	}
	if err := checkSecretFilters(in.Filters); err != nil {
		return Listing[*fsm.Secret]{}, err
	}
	if err := s.authorizeAccount(ctx, c, "kms:ListSecrets"); err != nil {
		return Listing[*fsm.Secret]{}, err
	}
	if err := s.fresh(ctx); err != nil {
		return Listing[*fsm.Secret]{}, err
	}
	var all []*fsm.Secret
	for _, sec := range s.fsm.Secrets(c.AccountID) {
		if secretMatches(sec, in.Filters) {
			all = append(all, sec)
		}
	}
	return listing(all, p), nil
}

// DescribeSecret returns a secret's metadata (also while it is scheduled
// for deletion).
func (s *Service) DescribeSecret(ctx context.Context, c Caller, name string) (*fsm.Secret, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	return s.secretFor(ctx, c, "kms:DescribeSecret", name)
}

// DeleteSecret schedules a secret's deletion RecoveryWindowDays (7 to 30,
// default 30) from now, or (Force) deletes it at once; the secret returned
// carries PlannedDeleteAt (now, when forced). Until the end of the window
// the name stays taken and RestoreSecret can cancel; the leader's scheduler
// purges the secret then.
func (s *Service) DeleteSecret(ctx context.Context, c Caller, in SecretDeletionInput) (*fsm.Secret, uint64, error) {
	if in.Name == "" {
		return nil, 0, missing(FieldSecretName)
	}
	days := DefaultRecoveryWindow
	if in.RecoveryWindowDays != nil {
		if in.Force {
			return nil, 0, invalid(FieldRecoveryWindowDays, "a forced deletion has no recovery window")
		}
		days = *in.RecoveryWindowDays
		if days < MinRecoveryWindow || days > MaxRecoveryWindow {
			return nil, 0, invalid(FieldRecoveryWindowDays, fmt.Sprintf("must be between %d and %d days", MinRecoveryWindow, MaxRecoveryWindow))
		}
	}
	sec, err := s.secretFor(ctx, c, "kms:DeleteSecret", in.Name)
	if err != nil {
		return nil, 0, err
	}
	now := s.nowMillis()
	cmd := fsm.DeleteSecretCmd{Now: now, AccountID: sec.AccountID, Name: sec.Name, Force: in.Force}
	if !in.Force {
		cmd.PlannedDeleteAt = now + int64(days)*24*3600*1000
	}
	idx, err := s.propose(ctx, fsm.CmdDeleteSecret, cmd)
	if err != nil {
		return nil, idx, err
	}
	if !in.Force {
		if got, ok := s.fsm.Secret(sec.AccountID, sec.Name); ok && got.PendingDeletion() {
			return got, idx, nil
		}
	}
	gone := *sec
	gone.PlannedDeleteAt = cmd.PlannedDeleteAt
	if in.Force {
		gone.PlannedDeleteAt = now
	}
	return &gone, idx, nil
}

// RestoreSecret cancels a scheduled deletion.
func (s *Service) RestoreSecret(ctx context.Context, c Caller, name string) (uint64, error) {
	sec, err := s.secretFor(ctx, c, "kms:RestoreSecret", name)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdRestoreSecret, fsm.SecretNameCmd{Now: s.nowMillis(), AccountID: sec.AccountID, Name: sec.Name})
}

// GetSecretPolicy returns a secret's policy document (the default one when
// none was set).
func (s *Service) GetSecretPolicy(ctx context.Context, c Caller, in SecretPolicyInput) (string, error) {
	if in.Name == "" {
		return "", missing(FieldSecretName)
	}
	if err := checkSecretPolicyName(in.PolicyName); err != nil {
		return "", err
	}
	if err := s.fresh(ctx); err != nil {
		return "", err
	}
	sec, err := s.secretFor(ctx, c, "kms:GetSecretPolicy", in.Name)
	if err != nil {
		return "", err
	}
	if sec.Policy == "" {
		return DefaultSecretPolicy(sec.AccountID), nil
	}
	return sec.Policy, nil
}

// SetSecretPolicy replaces a secret's policy document. A policy under which
// the caller could no longer call SetSecretPolicy on the secret is refused
// (the lockout check of SetKeyPolicy, without a bypass).
func (s *Service) SetSecretPolicy(ctx context.Context, c Caller, in SecretPolicyInput) (uint64, error) {
	if in.Name == "" {
		return 0, missing(FieldSecretName)
	}
	if err := checkSecretPolicyName(in.PolicyName); err != nil {
		return 0, err
	}
	if in.Policy == "" {
		return 0, missing(FieldSecretPolicy)
	}
	sec, err := s.secretFor(ctx, c, "kms:SetSecretPolicy", in.Name)
	if err != nil {
		return 0, err
	}
	if err := checkSecretPolicy(in.Policy, sec.AccountID); err != nil {
		return 0, err
	}
	if err := notPending(sec); err != nil {
		return 0, err
	}
	next := *sec
	next.Policy = in.Policy
	if err := s.authorizeSecret(ctx, c, "kms:SetSecretPolicy", &next); errors.Is(err, ErrNoPermission) {
		return 0, invalid(FieldSecretPolicy, fmt.Sprintf("under this policy %s could no longer call SetSecretPolicy on the secret", c.Principal))
	} else if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdSetSecretPolicy, fsm.SetSecretPolicyCmd{Now: s.nowMillis(), AccountID: sec.AccountID, Name: sec.Name, Policy: in.Policy})
}

// TagSecret sets tags on a secret (kms:TagResource on the secret); a
// secret carries at most 20 (fsm.ErrTagLimit).
func (s *Service) TagSecret(ctx context.Context, c Caller, name string, tags []Tag) (uint64, error) {
	m, err := tagsToSet(tags, fsm.MaxTagsPerSecret)
	if err != nil {
		return 0, err
	}
	sec, err := s.secretFor(ctx, c, "kms:TagResource", name)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdTagSecret, fsm.TagSecretCmd{Now: s.nowMillis(), AccountID: sec.AccountID, Name: sec.Name, Tags: m})
}

// UntagSecret removes tags (by key) from a secret (kms:UntagResource on
// the secret).
func (s *Service) UntagSecret(ctx context.Context, c Caller, name string, tagKeys []string) (uint64, error) {
	if err := checkTagKeys(tagKeys, fsm.MaxTagsPerSecret); err != nil {
		return 0, err
	}
	sec, err := s.secretFor(ctx, c, "kms:UntagResource", name)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdTagSecret, fsm.TagSecretCmd{Now: s.nowMillis(), AccountID: sec.AccountID, Name: sec.Name, Remove: tagKeys})
}
