package kms

import (
	"context"
	"errors"

	"github.com/raftkms/raftkms/fsm"
)

// Secrets (fsm/secrets.go holds the model): the core's operations.
//
// CONTRACT (filled in by the secrets work; stubs answer errSecretsTODO):
//   - A version's value is sealed with a fresh 256-bit data key under the
//     secret's encryption key (any symmetric ENCRYPT/DECRYPT key of the
//     account, software or HSM; the account's default key when none is
//     named); only the envelope enters the log (secrets_envelope.go).
//   - Reading a value needs kms:GetSecretValue on the secret (RAM policy,
//     secret policy) AND kms:Decrypt on its encryption key; a disabled or
//     pending-deletion encryption key refuses with the key state's error.
//   - Client keys (the instance face) read with CryptoServiceSecretUser on
//     secret/<name> of the encryption key's instance.

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

// CreateSecret creates a secret with its first version (stage ACSCurrent).
func (s *Service) CreateSecret(ctx context.Context, c Caller, in SecretInput) (*fsm.Secret, uint64, error) {
	return nil, 0, errSecretsTODO
}

// GetSecretValue opens one version of a secret.
func (s *Service) GetSecretValue(ctx context.Context, c Caller, in SecretValueInput) (SecretValue, error) {
	return SecretValue{}, errSecretsTODO
}

// PutSecretValue adds a version.
func (s *Service) PutSecretValue(ctx context.Context, c Caller, in PutSecretValueInput) (SecretVersionInfo, uint64, error) {
	return SecretVersionInfo{}, 0, errSecretsTODO
}

// UpdateSecret changes a secret's description or custom data.
func (s *Service) UpdateSecret(ctx context.Context, c Caller, in UpdateSecretInput) (*fsm.Secret, uint64, error) {
	return nil, 0, errSecretsTODO
}

// UpdateSecretVersionStage moves or removes a stage label.
func (s *Service) UpdateSecretVersionStage(ctx context.Context, c Caller, in SecretStageInput) (uint64, error) {
	return 0, errSecretsTODO
}

// ListSecretVersionIds lists a secret's versions, newest first.
func (s *Service) ListSecretVersionIds(ctx context.Context, c Caller, in SecretVersionsInput) (*fsm.Secret, Listing[SecretVersionInfo], error) {
	return nil, Listing[SecretVersionInfo]{}, errSecretsTODO
}

// ListSecrets lists the caller's account's secrets, sorted by name.
func (s *Service) ListSecrets(ctx context.Context, c Caller, in ListSecretsInput) (Listing[*fsm.Secret], error) {
	return Listing[*fsm.Secret]{}, errSecretsTODO
}

// DescribeSecret returns a secret's metadata (also while it is scheduled
// for deletion).
func (s *Service) DescribeSecret(ctx context.Context, c Caller, name string) (*fsm.Secret, error) {
	return nil, errSecretsTODO
}

// DeleteSecret schedules or forces a secret's deletion; the secret returned
// carries PlannedDeleteAt.
func (s *Service) DeleteSecret(ctx context.Context, c Caller, in SecretDeletionInput) (*fsm.Secret, uint64, error) {
	return nil, 0, errSecretsTODO
}

// RestoreSecret cancels a scheduled deletion.
func (s *Service) RestoreSecret(ctx context.Context, c Caller, name string) (uint64, error) {
	return 0, errSecretsTODO
}

// GetSecretPolicy returns a secret's policy document (the default one when
// none was set).
func (s *Service) GetSecretPolicy(ctx context.Context, c Caller, in SecretPolicyInput) (string, error) {
	return "", errSecretsTODO
}

// SetSecretPolicy replaces a secret's policy document.
func (s *Service) SetSecretPolicy(ctx context.Context, c Caller, in SecretPolicyInput) (uint64, error) {
	return 0, errSecretsTODO
}

// sealSecretVersion seals data as version versionID of secret (account,
// name) under encryption key keyID: a fresh data key sealed under the key,
// the value under the data key, and the keyed digest of the value.
// Authorization is the caller's business.
func (s *Service) sealSecretVersion(ctx context.Context, accountID, name, keyID, versionID, dataType, data string) (fsm.SecretVersion, error) {
	return fsm.SecretVersion{}, errSecretsTODO
}

// openSecretVersion opens a version sealed by sealSecretVersion. A disabled
// or pending-deletion encryption key refuses with the key state's error.
func (s *Service) openSecretVersion(ctx context.Context, sec *fsm.Secret, v fsm.SecretVersion) (string, error) {
	return "", errSecretsTODO
}
