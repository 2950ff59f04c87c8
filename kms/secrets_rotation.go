package kms

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// Managed rotation of RAMCredentials secrets.
//
// A RAMCredentials secret holds an access key of one RAM user of the
// secret's account. Its first version is what CreateSecret was given,
// {"AccessKeys":[{"AccessKeyId","AccessKeySecret"}]}, checked against the
// catalogue by ramCredentials. Each rotation (RotateSecret now, or the
// leader's scheduler once NextRotation has come) makes a new access key for
// the user exactly as CreateAccessKey does (id, secret, the secret wrapped
// under the root key), seals
//
//	{"AccessKeyId":"LTAI...","AccessKeySecret":"...","GenerateTimestamp":"2026-03-01T12:00:00Z"}
//
// (the shape the reference stores and the secrets-manager clients parse;
// GenerateTimestamp is UTC, seconds, RFC 3339 with Z) as a new version, and
// proposes one fsm.RotateRAMSecretCmd: the key and the version, labelled
// ACSCurrent, enter together; ACSPrevious moves to the version that was
// current; the key of the version that lost ACSPrevious (two rotations old)
// is deleted. Unlike the reference, which deletes the old key at once, one
// generation stays valid, so a reader whose cache still holds the previous
// value never holds a dead key. The user therefore never has more than the
// two keys the secret names; a user with another key of its own cannot be
// rotated (fsm.ErrAccessKeyLimit) until that key is deleted.
//
// Generic secrets rotate by PutSecretValue: RotateSecret and automatic
// rotation refuse them with fsm.ErrSecretType.

// ramUserAccessKey is the SecretSubType of a RAMCredentials secret's
// extended configuration.
const ramUserAccessKey = "RamUserAccessKey"

// generateTimestampLayout is GenerateTimestamp's: UTC, to the second.
const generateTimestampLayout = "2006-01-02T15:04:05Z"

// rotatedValue is the value of a rotated version; the field order is the
// reference's.
type rotatedValue struct {
	AccessKeyID       string `json:"AccessKeyId"`
	AccessKeySecret   string `json:"AccessKeySecret"`
	GenerateTimestamp string `json:"GenerateTimestamp"`
}

// RotateSecret rotates a RAMCredentials secret now; in.VersionID (required,
// as in the reference) names the new version.
//
// Idempotency: a VersionId the secret already has is refused with
// fsm.ErrSecretVersionExists, unless it names the rotation that made the
// current version (it is ACSCurrent, holds an access key and was made at
// the secret's LastRotation): then the call is a retry of that rotation and
// succeeds without rotating again, answering that version. (The reference
// answers success for any VersionId it has; this is stricter, so that a
// VersionId reused by mistake is not silently taken for a rotation.)
func (s *Service) RotateSecret(ctx context.Context, c Caller, in RotateSecretInput) (*fsm.Secret, string, uint64, error) {
	if in.Name == "" {
		return nil, "", 0, missing(FieldSecretName)
	}
	if err := checkSecretLabel(FieldSecretVersionID, in.VersionID); err != nil {
		return nil, "", 0, err
	}
	sec, err := s.secretFor(ctx, c, "kms:RotateSecret", in.Name)
	if err != nil {
		return nil, "", 0, err
	}
	if err := notPending(sec); err != nil {
		return nil, "", 0, err
	}
	if sec.Type != fsm.SecretTypeRAMCredentials {
		return nil, "", 0, fmt.Errorf("%w: %s is a %s secret; Generic secrets rotate by PutSecretValue (the new version becomes ACSCurrent)", fsm.ErrSecretType, sec.Name, sec.Type)
	}
	if sameRotation(sec, in.VersionID) {
		return sec, in.VersionID, sec.ModifyIndex, nil
	}
	if _, ok := sec.Version(in.VersionID); ok {
		return nil, "", 0, fmt.Errorf("%w: %s", fsm.ErrSecretVersionExists, in.VersionID)
	}
	// The new value is sealed as PutSecretValue seals one.
	if _, err := s.encryptionKey(ctx, c, "kms:GenerateDataKey", sec, in.VersionID); err != nil {
		return nil, "", 0, err
	}
	if err := s.ramRotationBlocked(sec); err != nil {
		return nil, "", 0, err
	}
	cmd, err := s.ramRotation(ctx, sec, in.VersionID, s.now(), "")
	if err != nil {
		return nil, "", 0, err
	}
	idx, err := s.propose(ctx, fsm.CmdRotateRAMSecret, cmd)
	if errors.Is(err, fsm.ErrSecretVersionExists) {
		// The same VersionId applied first by a concurrent call (or by
		// this call's first attempt, forwarded twice): the same rotation.
		if cur, ok := s.fsm.Secret(sec.AccountID, sec.Name); ok && sameRotation(cur, in.VersionID) {
			return cur, in.VersionID, cur.ModifyIndex, nil
		}
	}
	if err != nil {
		return nil, "", idx, err
	}
	if cur, ok := s.fsm.Secret(sec.AccountID, sec.Name); ok && cur.ModifyIndex >= idx {
		return cur, in.VersionID, idx, nil
	}
	// Applied on the leader, not here yet: the secret as it was read
	// names it as well as the answer needs (Arn, SecretName).
	return sec, in.VersionID, idx, nil
}

// sameRotation reports whether version id is the one the secret's latest
// rotation made and it is still current.
func sameRotation(sec *fsm.Secret, id string) bool {
	v, ok := sec.Version(id)
	return ok && v.AccessKeyID != "" && sec.Stages[fsm.StageCurrent] == id &&
		sec.LastRotation != 0 && v.CreatedAt == sec.LastRotation
}

// ramRotationBlocked tells, from this node's catalogue, why a rotation of
// sec would be refused: its RAM user is gone, or holds a key of its own
// beside the ones the secret names, so that a new key would exceed
// fsm.MaxAccessKeysPerIdentity. The catalogue decides again when the
// rotation applies; checking first spares the scheduler a refused
// proposal on every tick while the user's keys stay as they are.
func (s *Service) ramRotationBlocked(sec *fsm.Secret) error {
	if _, ok := s.fsm.User(sec.AccountID, sec.RAMUser); !ok {
		return fmt.Errorf("%w: %s (the RAM user of secret %s)", fsm.ErrUserNotFound, sec.RAMUser, sec.Name)
	}
	var retired string
	if prev, ok := sec.Stages[fsm.StagePrevious]; ok {
		if v, ok := sec.Version(prev); ok {
			retired = v.AccessKeyID
		}
	}
	n := 0
	for _, ak := range s.fsm.AccessKeysOf(UserArn(sec.AccountID, sec.RAMUser)) {
		if ak.ID != retired {
			n++
		}
	}
	if n >= fsm.MaxAccessKeysPerIdentity {
		return fmt.Errorf("%w: RAM user %s has %d access keys besides the one this rotation retires; delete one that secret %s does not hold", fsm.ErrAccessKeyLimit, sec.RAMUser, n, sec.Name)
	}
	return nil
}

// ramRotation builds one rotation of a RAMCredentials secret: a new access
// key of the secret's user and the version holding it, sealed under the
// secret's encryption key. expectCurrent, if set, makes the command apply
// only while that version is still ACSCurrent. The plaintext value exists
// only in this call.
func (s *Service) ramRotation(ctx context.Context, sec *fsm.Secret, versionID string, now time.Time, expectCurrent string) (fsm.RotateRAMSecretCmd, error) {
	nowMs := now.UnixMilli()
	ak, secret, err := s.newAccessKey(sec.AccountID, UserArn(sec.AccountID, sec.RAMUser), nowMs)
	if err != nil {
		return fsm.RotateRAMSecretCmd{}, err
	}
	value, err := json.Marshal(rotatedValue{
		AccessKeyID: ak.ID, AccessKeySecret: secret,
		GenerateTimestamp: now.UTC().Format(generateTimestampLayout),
	})
	if err != nil {
		return fsm.RotateRAMSecretCmd{}, err
	}
	v, err := s.sealSecretVersion(ctx, sec.AccountID, sec.Name, sec.EncryptionKeyID, versionID, SecretDataText, string(value))
	clear(value)
	if err != nil {
		return fsm.RotateRAMSecretCmd{}, fmt.Errorf("rotating secret %s: %w", sec.Name, err)
	}
	v.CreatedAt, v.AccessKeyID = nowMs, ak.ID
	var next int64
	if sec.AutoRotation && sec.RotationInterval > 0 {
		next = nowMs + sec.RotationInterval*1000
	}
	return fsm.RotateRAMSecretCmd{
		Now: nowMs, AccountID: sec.AccountID, Name: sec.Name,
		AccessKey: ak, Version: v, NextRotation: next, ExpectCurrent: expectCurrent,
	}, nil
}

// UpdateSecretRotationPolicy turns a secret's automatic rotation on (with
// RotationInterval, required then, "<n>d|h|m|s" between 6 hours and 365
// days) or off (RotationInterval ignored). Only RAMCredentials secrets
// rotate by themselves: turning it on for a Generic secret is refused with
// fsm.ErrSecretType, as RotateSecret refuses it (and as UpdateRotationPolicy
// refuses a key that cannot rotate); turning it off is allowed for any
// secret.
func (s *Service) UpdateSecretRotationPolicy(ctx context.Context, c Caller, in SecretRotationPolicyInput) (uint64, error) {
	if in.Name == "" {
		return 0, missing(FieldSecretName)
	}
	var secs int64
	if in.Enable {
		var err error
		if secs, err = parseSecretRotationInterval(in.RotationInterval); err != nil {
			return 0, err
		}
	}
	sec, err := s.secretFor(ctx, c, "kms:UpdateSecretRotationPolicy", in.Name)
	if err != nil {
		return 0, err
	}
	if err := notPending(sec); err != nil {
		return 0, err
	}
	if in.Enable && sec.Type != fsm.SecretTypeRAMCredentials {
		return 0, fmt.Errorf("%w: %s is a %s secret; only RAMCredentials secrets rotate automatically (Generic secrets rotate by PutSecretValue)", fsm.ErrSecretType, sec.Name, sec.Type)
	}
	return s.propose(ctx, fsm.CmdSecretRotationPolicy, fsm.SecretRotationPolicyCmd{
		Now: s.nowMillis(), AccountID: sec.AccountID, Name: sec.Name, Enable: in.Enable, IntervalSec: secs,
	})
}

// ramCredentials checks CreateSecret's input for a RAMCredentials secret
// (ExtendedConfig {"SecretSubType":"RamUserAccessKey","UserName":...},
// SecretData {"AccessKeys":[{"AccessKeyId","AccessKeySecret"}]} holding
// exactly one active access key of that user, whose secret must be the
// stored one) and returns the user's name and the access key id the first
// version holds. The user must be of the caller's account. No error names
// the secret given; a key that does not exist and a key of someone else
// get the same answer.
func (s *Service) ramCredentials(ctx context.Context, c Caller, in SecretInput) (user, accessKeyID string, err error) {
	if strings.TrimSpace(in.ExtendedConfig) == "" {
		return "", "", missing(FieldExtendedConfig)
	}
	var ext struct {
		SecretSubType string `json:"SecretSubType"`
		UserName      string `json:"UserName"`
	}
	if err := json.Unmarshal([]byte(in.ExtendedConfig), &ext); err != nil {
		return "", "", invalid(FieldExtendedConfig, `must be a JSON object like {"SecretSubType":"RamUserAccessKey","UserName":"..."}`)
	}
	if ext.SecretSubType != ramUserAccessKey {
		return "", "", invalid(FieldExtendedConfig, `a RAMCredentials secret needs "SecretSubType":"RamUserAccessKey"`)
	}
	if ext.UserName == "" || !namePattern.MatchString(ext.UserName) {
		return "", "", invalid(FieldExtendedConfig, "UserName must name a RAM user: 1 to 64 of letters, digits and . _ - @")
	}
	if in.DataType != "" && in.DataType != SecretDataText {
		return "", "", invalid(FieldSecretDataType, "a RAMCredentials secret holds text")
	}
	var data struct {
		AccessKeys []struct {
			AccessKeyID     string `json:"AccessKeyId"`
			AccessKeySecret string `json:"AccessKeySecret"`
		} `json:"AccessKeys"`
	}
	// The decoder's error may quote the data: never pass it on.
	if in.Data == "" {
		return "", "", missing(FieldSecretData)
	}
	if err := json.Unmarshal([]byte(in.Data), &data); err != nil || len(data.AccessKeys) != 1 ||
		data.AccessKeys[0].AccessKeyID == "" || data.AccessKeys[0].AccessKeySecret == "" {
		return "", "", invalid(FieldSecretData, `a RAMCredentials secret's data is {"AccessKeys":[{"AccessKeyId":"...","AccessKeySecret":"..."}]}, with exactly one access key of the user`)
	}
	id, given := data.AccessKeys[0].AccessKeyID, data.AccessKeys[0].AccessKeySecret
	ok, err := s.found(ctx, func() bool { _, ok := s.fsm.User(c.AccountID, ext.UserName); return ok })
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", fmt.Errorf("%w: %s", fsm.ErrUserNotFound, ext.UserName)
	}
	var ak *fsm.AccessKey
	ok, err = s.found(ctx, func() bool {
		var hit bool
		ak, hit = s.fsm.AccessKey(id)
		return hit
	})
	if err != nil {
		return "", "", err
	}
	if !ok || ak.AccountID != c.AccountID || ak.Principal != UserArn(c.AccountID, ext.UserName) {
		return "", "", fmt.Errorf("%w: %q is not an access key of RAM user %s", fsm.ErrAccessKeyMissing, shortID(id), ext.UserName)
	}
	if ak.Status != "Active" {
		return "", "", invalid(FieldSecretData, fmt.Sprintf("access key %s is not active", ak.ID))
	}
	stored, err := s.root.Unwrap(ak.WrappedSecret, kcrypto.SecretAAD(ak.ID))
	if err != nil {
		return "", "", fmt.Errorf("access key %s: %w", ak.ID, err)
	}
	match := subtle.ConstantTimeCompare(stored, []byte(given)) == 1
	clear(stored)
	if !match {
		return "", "", invalid(FieldSecretData, fmt.Sprintf("the AccessKeySecret is not the secret of access key %s", ak.ID))
	}
	return ext.UserName, ak.ID, nil
}

// shortID bounds a client-given id quoted in an error.
func shortID(id string) string {
	if len(id) > 64 {
		return id[:64] + "..."
	}
	return id
}
