package kms

import (
	"context"

	"github.com/raftkms/raftkms/fsm"
)

// Managed rotation of RAMCredentials secrets and random passwords.
//
// CONTRACT (filled in by the secrets work; stubs answer errSecretsTODO):
// RotateSecret on a RAMCredentials secret creates a new access key for the
// secret's RAM user and stores {"AccessKeyId","AccessKeySecret",
// "GenerateTimestamp"} as the new ACSCurrent version in one command
// (fsm.RotateRAMSecretCmd), which also deletes the key two rotations old.
// The leader's scheduler rotates secrets whose NextRotation has come.

// RotateSecret rotates a RAMCredentials secret now.
func (s *Service) RotateSecret(ctx context.Context, c Caller, in RotateSecretInput) (*fsm.Secret, string, uint64, error) {
	return nil, "", 0, errSecretsTODO
}

// UpdateSecretRotationPolicy turns a secret's automatic rotation on or off.
func (s *Service) UpdateSecretRotationPolicy(ctx context.Context, c Caller, in SecretRotationPolicyInput) (uint64, error) {
	return 0, errSecretsTODO
}

// ramCredentials checks CreateSecret's input for a RAMCredentials secret
// (ExtendedConfig {"SecretSubType":"RamUserAccessKey","UserName":...},
// SecretData {"AccessKeys":[{"AccessKeyId","AccessKeySecret"}]} holding one
// of that user's current keys, checked against the stored secret) and
// returns the user's name and the access key id the first version holds.
func (s *Service) ramCredentials(ctx context.Context, c Caller, in SecretInput) (user, accessKeyID string, err error) {
	return "", "", errSecretsTODO
}
