package fsm

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/raft"
)

// Secrets: named, versioned values kept encrypted under a KMS key.
//
// The FSM never sees a secret value. Each version carries an envelope made
// by the proposer (kms): the value sealed under a fresh data key, and that
// data key sealed under the secret's encryption key. The FSM keeps the
// envelope, a keyed digest of the value (so that "the same VersionId with
// the same data" can be told from "with other data" without the value),
// and the bookkeeping: versions, stage labels, rotation and deletion dates.
//
// Stages. A stage label names at most one version of a secret. Moving
// ACSCurrent to another version moves ACSPrevious to the version
// ACSCurrent left. A version without any label is deprecated: it is listed
// only on request, and once a secret holds more than MaxSecretVersions
// versions the oldest deprecated ones are dropped.
//
// Deletion. DeleteSecret schedules the end (PlannedDeleteAt); the name stays
// taken and the secret unreadable until the leader's scheduler purges it
// (PurgeSecretCmd) or RestoreSecret cancels. A forced deletion removes the
// secret at once.
//
// Managed rotation of RAM credentials (RotateRAMSecretCmd) is one command,
// so the catalogue never holds a state in between: it adds the new access
// key of the secret's RAM user, the version holding it as ACSCurrent,
// moves ACSPrevious to the version that was current, and deletes the access
// key of the version that just lost ACSPrevious (two rotations old).

// Command types of secrets (51–61).
const (
	CmdCreateSecret             CommandType = 51
	CmdPutSecretValue           CommandType = 52
	CmdUpdateSecret             CommandType = 53
	CmdUpdateSecretVersionStage CommandType = 54
	CmdSecretRotationPolicy     CommandType = 55
	CmdSetSecretPolicy          CommandType = 56
	CmdDeleteSecret             CommandType = 57
	CmdRestoreSecret            CommandType = 58
	CmdPurgeSecret              CommandType = 59
	CmdRotateRAMSecret          CommandType = 60
	CmdTagSecret                CommandType = 61
)

// recSecret is the snapshot record of a secret, written after the instance
// CA.
const recSecret = 0x15

// Stage labels with a meaning of their own.
const (
	StageCurrent  = "ACSCurrent"
	StagePrevious = "ACSPrevious"
)

// Secret types.
const (
	SecretTypeGeneric        = "Generic"
	SecretTypeRAMCredentials = "RAMCredentials"
)

// Limits on secrets, checked in Apply.
const (
	MaxSecretsPerAccount = 1000
	// MaxSecretVersions versions are kept per secret; beyond it the
	// oldest deprecated (unlabelled) versions are dropped.
	MaxSecretVersions = 20
	// MaxSecretStages labels may exist on one secret (ACSCurrent and
	// ACSPrevious included). It is below MaxSecretVersions, so a version
	// without labels can always be dropped.
	MaxSecretStages  = 10
	MaxTagsPerSecret = MaxTagsPerKey
)

// Errors of secrets.
var (
	ErrSecretNotFound = errors.New("the secret does not exist")
	// ErrSecretExists: the name is taken, also by a secret waiting for the
	// end of its recovery window.
	ErrSecretExists          = errors.New("a secret with that name already exists")
	ErrSecretVersionNotFound = errors.New("the secret version does not exist")
	// ErrSecretVersionExists: the VersionId is taken by a version with
	// other data (the same data is an idempotent success).
	ErrSecretVersionExists = errors.New("the secret already has a version with that VersionId and other data")
	// ErrSecretPendingDeletion refuses every use of a secret scheduled for
	// deletion except RestoreSecret and a forced DeleteSecret.
	ErrSecretPendingDeletion = errors.New("the secret is scheduled for deletion; restore it first (RestoreSecret)")
	// ErrSecretNotPendingDeletion refuses RestoreSecret on a live secret.
	ErrSecretNotPendingDeletion = errors.New("the secret is not scheduled for deletion")
	// ErrSecretStageMismatch: RemoveFromVersion does not hold the stage.
	ErrSecretStageMismatch = errors.New("the stage is not on the version named by RemoveFromVersion")
	// ErrSecretLimitExceeded refuses a secret, stage or tag beyond the
	// limits above.
	ErrSecretLimitExceeded = errors.New("the limit on secrets is reached")
	// ErrSecretType refuses an operation the secret's type does not have
	// (RotateSecret on a Generic secret).
	ErrSecretType = errors.New("the secret's type does not support this operation")
)

// SecretVersion is one value of a secret, sealed. Envelope is opaque here
// (kms's format); Digest is a keyed hash of the value, never the value.
type SecretVersion struct {
	ID        string `msgpack:"id"`
	CreatedAt int64  `msgpack:"ct"` // Unix ms
	DataType  string `msgpack:"dt"` // text | binary
	Envelope  []byte `msgpack:"env"`
	Digest    []byte `msgpack:"dig"`
	// AccessKeyID is the RAM access key this version holds (RAMCredentials
	// secrets), so that rotation can delete it when it falls out of use.
	AccessKeyID string `msgpack:"ak,omitempty"`
}

// Secret is a named, versioned value of an account.
type Secret struct {
	AccountID   string `msgpack:"acct"`
	Name        string `msgpack:"name"`
	Type        string `msgpack:"type"` // Generic | RAMCredentials
	Description string `msgpack:"desc"`
	// EncryptionKeyID is the id of the KMS key whose data keys seal the
	// versions; InstanceID is the KMS instance the secret was created in
	// ("" when none was named).
	EncryptionKeyID string `msgpack:"key"`
	InstanceID      string `msgpack:"inst,omitempty"`
	// ExtendedConfig is the JSON text of the secret's extended
	// configuration (for RAMCredentials: SecretSubType and UserName).
	ExtendedConfig string `msgpack:"ext,omitempty"`
	// RAMUser is the RAM user whose access keys a RAMCredentials secret
	// holds and rotates.
	RAMUser string            `msgpack:"ramuser,omitempty"`
	Tags    map[string]string `msgpack:"tags"`
	// Policy is the secret policy document; "" means the default one.
	Policy string `msgpack:"policy,omitempty"`
	// Automatic rotation: interval in seconds; dates in Unix ms (0: none).
	AutoRotation     bool  `msgpack:"rot"`
	RotationInterval int64 `msgpack:"rotint"`
	LastRotation     int64 `msgpack:"lastrot"`
	NextRotation     int64 `msgpack:"nextrot"`
	CreatedAt        int64 `msgpack:"ct"`
	UpdatedAt        int64 `msgpack:"ut"`
	// PlannedDeleteAt is when a scheduled deletion ends (Unix ms); 0: the
	// secret is not scheduled for deletion.
	PlannedDeleteAt int64 `msgpack:"del"`
	// Versions, oldest first; Stages maps a stage label to a version id.
	Versions    []SecretVersion   `msgpack:"versions"`
	Stages      map[string]string `msgpack:"stages"`
	ModifyIndex uint64            `msgpack:"mi"`
}

// clone copies a secret deeply enough to change it: versions, stages and
// tags are copied; version envelopes are shared (never changed in place).
func (s *Secret) clone() *Secret {
	n := *s
	n.Versions = append([]SecretVersion(nil), s.Versions...)
	n.Stages = make(map[string]string, len(s.Stages))
	for k, v := range s.Stages {
		n.Stages[k] = v
	}
	n.Tags = make(map[string]string, len(s.Tags))
	for k, v := range s.Tags {
		n.Tags[k] = v
	}
	return &n
}

// Version returns the version with id.
func (s *Secret) Version(id string) (SecretVersion, bool) {
	for _, v := range s.Versions {
		if v.ID == id {
			return v, true
		}
	}
	return SecretVersion{}, false
}

// StagesOf returns the stage labels on version id, sorted.
func (s *Secret) StagesOf(id string) []string {
	var out []string
	for st, v := range s.Stages {
		if v == id {
			out = append(out, st)
		}
	}
	sort.Strings(out)
	return out
}

// PendingDeletion reports whether the secret is scheduled for deletion.
func (s *Secret) PendingDeletion() bool { return s.PlannedDeleteAt != 0 }

// Commands.

// CreateSecretCmd adds a secret with its first version, labelled
// ACSCurrent.
type CreateSecretCmd struct {
	Now     int64         `msgpack:"now"`
	Secret  Secret        `msgpack:"secret"` // without versions and stages
	Version SecretVersion `msgpack:"version"`
	// Stages of the first version; empty: ACSCurrent.
	Stages []string `msgpack:"stages,omitempty"`
}

// PutSecretValueCmd adds a version (or, for a VersionId already there with
// the same digest, changes nothing) and moves Stages to it.
type PutSecretValueCmd struct {
	Now       int64         `msgpack:"now"`
	AccountID string        `msgpack:"acct"`
	Name      string        `msgpack:"name"`
	Version   SecretVersion `msgpack:"version"`
	// Stages to put on the version; empty: ACSCurrent.
	Stages []string `msgpack:"stages,omitempty"`
}

// UpdateSecretCmd changes the description and/or the extended
// configuration.
type UpdateSecretCmd struct {
	Now               int64  `msgpack:"now"`
	AccountID         string `msgpack:"acct"`
	Name              string `msgpack:"name"`
	Description       string `msgpack:"desc"`
	SetDescription    bool   `msgpack:"setdesc,omitempty"`
	ExtendedConfig    string `msgpack:"ext"`
	SetExtendedConfig bool   `msgpack:"setext,omitempty"`
}

// UpdateSecretVersionStageCmd moves a stage to MoveTo and/or removes it
// from RemoveFrom (which, when given, must hold it).
type UpdateSecretVersionStageCmd struct {
	Now        int64  `msgpack:"now"`
	AccountID  string `msgpack:"acct"`
	Name       string `msgpack:"name"`
	Stage      string `msgpack:"stage"`
	RemoveFrom string `msgpack:"from,omitempty"`
	MoveTo     string `msgpack:"to,omitempty"`
}

// SecretRotationPolicyCmd turns automatic rotation on (IntervalSec > 0) or
// off.
type SecretRotationPolicyCmd struct {
	Now         int64  `msgpack:"now"`
	AccountID   string `msgpack:"acct"`
	Name        string `msgpack:"name"`
	Enable      bool   `msgpack:"enable"`
	IntervalSec int64  `msgpack:"interval"`
}

// SetSecretPolicyCmd replaces a secret's policy document.
type SetSecretPolicyCmd struct {
	Now       int64  `msgpack:"now"`
	AccountID string `msgpack:"acct"`
	Name      string `msgpack:"name"`
	Policy    string `msgpack:"policy"`
}

// DeleteSecretCmd schedules a secret's deletion at PlannedDeleteAt, or
// (Force) removes it at once.
type DeleteSecretCmd struct {
	Now             int64  `msgpack:"now"`
	AccountID       string `msgpack:"acct"`
	Name            string `msgpack:"name"`
	PlannedDeleteAt int64  `msgpack:"at"`
	Force           bool   `msgpack:"force,omitempty"`
}

// RestoreSecretCmd cancels a scheduled deletion; PurgeSecretCmd (the
// leader's scheduler) ends one whose date has come.
type SecretNameCmd struct {
	Now       int64  `msgpack:"now"`
	AccountID string `msgpack:"acct"`
	Name      string `msgpack:"name"`
}

// RotateRAMSecretCmd is one managed rotation of a RAMCredentials secret:
// AccessKey (the user's new key, its secret wrapped under the root key)
// and Version (the value holding it) are added; see the file comment.
// NextRotation is the next automatic rotation date (0: none).
type RotateRAMSecretCmd struct {
	Now          int64         `msgpack:"now"`
	AccountID    string        `msgpack:"acct"`
	Name         string        `msgpack:"name"`
	AccessKey    AccessKey     `msgpack:"ak"`
	Version      SecretVersion `msgpack:"version"`
	NextRotation int64         `msgpack:"next"`
	// ExpectCurrent, when set, is the version the proposer saw as
	// ACSCurrent: the rotation applies only if it still is (the leader's
	// scheduler sets it, so that a leader whose catalogue lags behind a
	// rotation already committed does not rotate the secret twice and
	// retire a key readers may still hold).
	ExpectCurrent string `msgpack:"expect,omitempty"`
}

// TagSecretCmd sets Tags and removes Remove (tag keys) on a secret.
type TagSecretCmd struct {
	Now       int64             `msgpack:"now"`
	AccountID string            `msgpack:"acct"`
	Name      string            `msgpack:"name"`
	Tags      map[string]string `msgpack:"tags,omitempty"`
	Remove    []string          `msgpack:"remove,omitempty"`
}

// secretKey is the map key of a secret: names are unique per account.
func secretKey(accountID, name string) string { return accountID + "\x00" + name }

func (c *catalogue) dispatchSecret(l *raft.Log, t CommandType, body []byte) any {
	switch t {
	case CmdCreateSecret:
		var cmd CreateSecretCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyCreateSecret(&cmd, l.Index)
	case CmdPutSecretValue:
		var cmd PutSecretValueCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyPutSecretValue(&cmd, l.Index)
	case CmdUpdateSecret:
		var cmd UpdateSecretCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.updateSecret(cmd.AccountID, cmd.Name, cmd.Now, l.Index, func(s *Secret) error {
			if cmd.SetDescription {
				s.Description = cmd.Description
			}
			if cmd.SetExtendedConfig {
				s.ExtendedConfig = cmd.ExtendedConfig
			}
			return nil
		})
	case CmdUpdateSecretVersionStage:
		var cmd UpdateSecretVersionStageCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.updateSecret(cmd.AccountID, cmd.Name, cmd.Now, l.Index, func(s *Secret) error {
			return s.moveStage(cmd.Stage, cmd.RemoveFrom, cmd.MoveTo)
		})
	case CmdSecretRotationPolicy:
		var cmd SecretRotationPolicyCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.updateSecret(cmd.AccountID, cmd.Name, cmd.Now, l.Index, func(s *Secret) error {
			s.AutoRotation = cmd.Enable
			s.NextRotation = 0
			if cmd.Enable {
				if cmd.IntervalSec <= 0 {
					return fmt.Errorf("%w: a rotation interval must be positive", ErrPreconditionFailed)
				}
				s.RotationInterval = cmd.IntervalSec
				base := s.LastRotation
				if base == 0 {
					base = cmd.Now
				}
				s.NextRotation = base + cmd.IntervalSec*1000
			}
			return nil
		})
	case CmdSetSecretPolicy:
		var cmd SetSecretPolicyCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.updateSecret(cmd.AccountID, cmd.Name, cmd.Now, l.Index, func(s *Secret) error {
			s.Policy = cmd.Policy
			return nil
		})
	case CmdDeleteSecret:
		var cmd DeleteSecretCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyDeleteSecret(&cmd, l.Index)
	case CmdRestoreSecret:
		var cmd SecretNameCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyRestoreSecret(&cmd, l.Index)
	case CmdPurgeSecret:
		var cmd SecretNameCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyPurgeSecret(&cmd)
	case CmdRotateRAMSecret:
		var cmd RotateRAMSecretCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyRotateRAMSecret(&cmd, l.Index)
	case CmdTagSecret:
		var cmd TagSecretCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.updateSecret(cmd.AccountID, cmd.Name, cmd.Now, l.Index, func(s *Secret) error {
			for k, v := range cmd.Tags {
				s.Tags[k] = v
			}
			for _, k := range cmd.Remove {
				delete(s.Tags, k)
			}
			if len(s.Tags) > MaxTagsPerSecret {
				return fmt.Errorf("%w: a secret may carry at most %d tags", ErrTagLimit, MaxTagsPerSecret)
			}
			return nil
		})
	}
	return fmt.Errorf("fsm: command type %d is not a secrets command", uint8(t))
}

// secret returns a live (not deletion-pending) secret.
func (c *catalogue) liveSecret(accountID, name string) (*Secret, error) {
	s, ok := c.secrets[secretKey(accountID, name)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrSecretNotFound, name)
	}
	if s.PendingDeletion() {
		return nil, fmt.Errorf("%w: %s", ErrSecretPendingDeletion, name)
	}
	return s, nil
}

// updateSecret applies change to a copy of a live secret and stores it.
// A change that fails leaves the catalogue as it was.
func (c *catalogue) updateSecret(accountID, name string, now int64, index uint64, change func(*Secret) error) error {
	s, err := c.liveSecret(accountID, name)
	if err != nil {
		return err
	}
	n := s.clone()
	if err := change(n); err != nil {
		return err
	}
	n.UpdatedAt, n.ModifyIndex = now, index
	c.secrets[secretKey(accountID, name)] = n
	return nil
}

func (c *catalogue) applyCreateSecret(cmd *CreateSecretCmd, index uint64) error {
	s := cmd.Secret
	if _, ok := c.accounts[s.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, s.AccountID)
	}
	k := secretKey(s.AccountID, s.Name)
	if _, ok := c.secrets[k]; ok {
		return fmt.Errorf("%w: %s", ErrSecretExists, s.Name)
	}
	if key, ok := c.keys[s.EncryptionKeyID]; !ok || key.AccountID != s.AccountID {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, s.EncryptionKeyID)
	}
	if s.Type == SecretTypeRAMCredentials {
		u, ok := c.users[identityKey(s.AccountID, s.RAMUser)]
		if !ok {
			return fmt.Errorf("%w: %s", ErrUserNotFound, s.RAMUser)
		}
		// The first version holds one of the user's access keys: checked
		// again here, since the key may have gone since it was proposed.
		if ak, ok := c.accessKeys[cmd.Version.AccessKeyID]; !ok || ak.Principal != userPrincipal(s.AccountID, u.Name) {
			return fmt.Errorf("%w: the secret's first version must hold an access key of RAM user %s", ErrPreconditionFailed, s.RAMUser)
		}
	}
	if n := countAccount(c.secrets, func(x *Secret) string { return x.AccountID }, s.AccountID); n >= MaxSecretsPerAccount {
		return fmt.Errorf("%w: an account may have at most %d secrets", ErrSecretLimitExceeded, MaxSecretsPerAccount)
	}
	n := s.clone()
	n.Versions, n.Stages = nil, map[string]string{}
	n.CreatedAt, n.UpdatedAt, n.PlannedDeleteAt, n.ModifyIndex = cmd.Now, cmd.Now, 0, index
	if n.AutoRotation && n.RotationInterval > 0 {
		n.NextRotation = cmd.Now + n.RotationInterval*1000
	} else {
		n.NextRotation = 0
	}
	if len(n.Tags) > MaxTagsPerSecret {
		return fmt.Errorf("%w: a secret may carry at most %d tags", ErrTagLimit, MaxTagsPerSecret)
	}
	if err := n.addVersion(cmd.Version, cmd.Stages); err != nil {
		return err
	}
	c.secrets[k] = n
	return nil
}

// addVersion appends v and moves stages (default ACSCurrent) to it, then
// drops the oldest deprecated versions beyond MaxSecretVersions.
func (s *Secret) addVersion(v SecretVersion, stages []string) error {
	if v.ID == "" || len(v.Envelope) == 0 {
		return fmt.Errorf("%w: a secret version needs an id and a value", ErrPreconditionFailed)
	}
	if _, ok := s.Version(v.ID); ok {
		return fmt.Errorf("%w: %s", ErrSecretVersionExists, v.ID)
	}
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	s.Versions = append(s.Versions, v)
	for _, st := range stages {
		if err := s.moveStage(st, "", v.ID); err != nil {
			return err
		}
	}
	for len(s.Versions) > MaxSecretVersions {
		drop := -1
		for i, old := range s.Versions {
			if len(s.StagesOf(old.ID)) == 0 {
				drop = i
				break
			}
		}
		if drop < 0 {
			// Cannot happen while MaxSecretStages < MaxSecretVersions.
			return fmt.Errorf("%w: every version of the secret carries a stage", ErrSecretLimitExceeded)
		}
		s.Versions = append(s.Versions[:drop], s.Versions[drop+1:]...)
	}
	return nil
}

// moveStage moves stage to version to (if given) and/or removes it from
// from (if given, it must hold the stage). Moving ACSCurrent moves
// ACSPrevious to the version it left. ACSCurrent cannot be removed without
// a new home: a secret always has a current version.
func (s *Secret) moveStage(stage, from, to string) error {
	holder, held := s.Stages[stage]
	if from != "" && (!held || holder != from) {
		return fmt.Errorf("%w: %s is not on version %s", ErrSecretStageMismatch, stage, from)
	}
	if to == "" {
		if stage == StageCurrent {
			return fmt.Errorf("%w: ACSCurrent can only be moved (MoveToVersion), never removed", ErrSecretStageMismatch)
		}
		if held {
			delete(s.Stages, stage)
		}
		return nil
	}
	if _, ok := s.Version(to); !ok {
		return fmt.Errorf("%w: %s", ErrSecretVersionNotFound, to)
	}
	if !held && len(s.Stages) >= MaxSecretStages {
		return fmt.Errorf("%w: a secret may carry at most %d stage labels", ErrSecretLimitExceeded, MaxSecretStages)
	}
	s.Stages[stage] = to
	if stage == StageCurrent && held && holder != to {
		s.Stages[StagePrevious] = holder
	}
	return nil
}

func (c *catalogue) applyPutSecretValue(cmd *PutSecretValueCmd, index uint64) error {
	s, err := c.liveSecret(cmd.AccountID, cmd.Name)
	if err != nil {
		return err
	}
	if old, ok := s.Version(cmd.Version.ID); ok {
		if string(old.Digest) == string(cmd.Version.Digest) && old.DataType == cmd.Version.DataType {
			return nil // the same VersionId with the same data: done already
		}
		return fmt.Errorf("%w: %s", ErrSecretVersionExists, cmd.Version.ID)
	}
	n := s.clone()
	if err := n.addVersion(cmd.Version, cmd.Stages); err != nil {
		return err
	}
	n.UpdatedAt, n.ModifyIndex = cmd.Now, index
	c.secrets[secretKey(cmd.AccountID, cmd.Name)] = n
	return nil
}

func (c *catalogue) applyDeleteSecret(cmd *DeleteSecretCmd, index uint64) error {
	k := secretKey(cmd.AccountID, cmd.Name)
	s, ok := c.secrets[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrSecretNotFound, cmd.Name)
	}
	if cmd.Force {
		delete(c.secrets, k)
		return nil
	}
	if s.PendingDeletion() {
		return fmt.Errorf("%w: %s", ErrSecretPendingDeletion, cmd.Name)
	}
	if cmd.PlannedDeleteAt <= cmd.Now {
		return fmt.Errorf("%w: the deletion date must be in the future", ErrPreconditionFailed)
	}
	n := s.clone()
	n.PlannedDeleteAt, n.UpdatedAt, n.ModifyIndex = cmd.PlannedDeleteAt, cmd.Now, index
	c.secrets[k] = n
	return nil
}

func (c *catalogue) applyRestoreSecret(cmd *SecretNameCmd, index uint64) error {
	k := secretKey(cmd.AccountID, cmd.Name)
	s, ok := c.secrets[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrSecretNotFound, cmd.Name)
	}
	if !s.PendingDeletion() {
		return fmt.Errorf("%w: %s", ErrSecretNotPendingDeletion, cmd.Name)
	}
	n := s.clone()
	n.PlannedDeleteAt, n.UpdatedAt, n.ModifyIndex = 0, cmd.Now, index
	c.secrets[k] = n
	return nil
}

// applyPurgeSecret removes a secret whose deletion date has come. Proposed
// by the leader's scheduler; a restore or a new schedule in between makes
// it change nothing.
func (c *catalogue) applyPurgeSecret(cmd *SecretNameCmd) error {
	k := secretKey(cmd.AccountID, cmd.Name)
	s, ok := c.secrets[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrSecretNotFound, cmd.Name)
	}
	if !s.PendingDeletion() || s.PlannedDeleteAt > cmd.Now {
		return fmt.Errorf("%w: the secret's deletion date has not come", ErrPreconditionFailed)
	}
	delete(c.secrets, k)
	return nil
}

func (c *catalogue) applyRotateRAMSecret(cmd *RotateRAMSecretCmd, index uint64) error {
	s, err := c.liveSecret(cmd.AccountID, cmd.Name)
	if err != nil {
		return err
	}
	if s.Type != SecretTypeRAMCredentials {
		return fmt.Errorf("%w: only RAMCredentials secrets rotate by themselves", ErrSecretType)
	}
	if cmd.ExpectCurrent != "" && s.Stages[StageCurrent] != cmd.ExpectCurrent {
		return fmt.Errorf("%w: the secret's current version is no longer %s", ErrPreconditionFailed, cmd.ExpectCurrent)
	}
	u, ok := c.users[identityKey(s.AccountID, s.RAMUser)]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUserNotFound, s.RAMUser)
	}
	ak := cmd.AccessKey
	if ak.AccountID != s.AccountID || ak.Principal != userPrincipal(s.AccountID, u.Name) || cmd.Version.AccessKeyID != ak.ID {
		return fmt.Errorf("%w: the new access key is not the RAM user's", ErrPreconditionFailed)
	}
	if _, ok := c.accessKeys[ak.ID]; ok {
		return fmt.Errorf("%w: %s", ErrKeyExists, ak.ID)
	}
	n := s.clone()
	// The version that loses ACSPrevious is two rotations old: its key goes.
	var retired string
	if prev, ok := n.Stages[StagePrevious]; ok {
		if v, ok := n.Version(prev); ok {
			retired = v.AccessKeyID
		}
	}
	if err := n.addVersion(cmd.Version, nil); err != nil {
		return err
	}
	if retired != "" && n.holdsAccessKey(retired) {
		retired = "" // still named by a labelled version: keep it
	}
	count := 0
	for _, other := range c.accessKeys {
		if other.Principal == ak.Principal && other.ID != retired {
			count++
		}
	}
	if count >= MaxAccessKeysPerIdentity {
		return fmt.Errorf("%w (%s has %d; delete one the secret does not hold)", ErrAccessKeyLimit, ak.Principal, count)
	}
	if old, ok := c.accessKeys[retired]; ok && old.Principal == ak.Principal {
		delete(c.accessKeys, retired)
	}
	ak.CreatedAt, ak.ModifyIndex = cmd.Now, index
	c.accessKeys[ak.ID] = &ak
	n.LastRotation, n.NextRotation = cmd.Now, cmd.NextRotation
	n.UpdatedAt, n.ModifyIndex = cmd.Now, index
	c.secrets[secretKey(s.AccountID, s.Name)] = n
	return nil
}

// userPrincipal is the principal of a RAM user's access keys (kms.UserArn).
func userPrincipal(accountID, name string) string {
	return "acs:ram::" + accountID + ":user/" + name
}

// holdsAccessKey reports whether a labelled version holds access key id.
func (s *Secret) holdsAccessKey(id string) bool {
	for _, vid := range s.Stages {
		if v, ok := s.Version(vid); ok && v.AccessKeyID == id {
			return true
		}
	}
	return false
}

// Reads.

// Secret returns an account's secret by name (also one pending deletion).
func (f *FSM) Secret(accountID, name string) (*Secret, bool) {
	var s *Secret
	var ok bool
	f.read(func(c *catalogue) { s, ok = c.secrets[secretKey(accountID, name)] })
	return s, ok
}

// Secrets returns an account's secrets sorted by name.
func (f *FSM) Secrets(accountID string) []*Secret {
	return selectSorted(f, func(c *catalogue) map[string]*Secret { return c.secrets },
		func(s *Secret) bool { return s.AccountID == accountID },
		func(a, b *Secret) bool { return a.Name < b.Name })
}

// AllSecrets returns every secret (the leader's scheduler), sorted by
// account and name.
func (f *FSM) AllSecrets() []*Secret {
	return selectSorted(f, func(c *catalogue) map[string]*Secret { return c.secrets },
		func(*Secret) bool { return true },
		func(a, b *Secret) bool {
			return secretKey(a.AccountID, a.Name) < secretKey(b.AccountID, b.Name)
		})
}

// Snapshot records.

func (c *catalogue) writeSecrets(w io.Writer) error {
	return writeAll(w, recSecret, c.secrets)
}

func (c *catalogue) loadSecret(body []byte) error {
	return loadInto(c.secrets, body, func(s *Secret) string {
		if s.Name == "" || s.AccountID == "" {
			return ""
		}
		if s.Stages == nil {
			s.Stages = map[string]string{}
		}
		if s.Tags == nil {
			s.Tags = map[string]string{}
		}
		return secretKey(s.AccountID, s.Name)
	})
}

// checkSecretReferences: every secret belongs to an account, and its stages
// name its versions.
func (c *catalogue) checkSecretReferences() error {
	for _, s := range c.secrets {
		if _, ok := c.accounts[s.AccountID]; !ok {
			return fmt.Errorf("secret %s belongs to a missing account", s.Name)
		}
		if _, ok := s.Stages[StageCurrent]; !ok && len(s.Versions) > 0 {
			return fmt.Errorf("secret %s has no current version", s.Name)
		}
		for st, v := range s.Stages {
			if _, ok := s.Version(v); !ok {
				return fmt.Errorf("secret %s: stage %s names a missing version", s.Name, st)
			}
		}
	}
	return nil
}
