package kms

import (
	"context"
	"fmt"

	"github.com/raftkms/raftkms/fsm"
)

// Authorization of secrets follows the keys' (authz.go):
//
//   - RAM actions kms:<Action> on acs:kms:<region>:<account>:secret/<name>;
//     CreateSecret is authorized on the ARN the new secret will have,
//     ListSecrets and GetRandomPassword on the account (authorizeAccount).
//   - The secret policy is evaluated as a key policy is, against the
//     secret's ARN; a secret without one has DefaultSecretPolicy (the
//     account's root may do everything, which is what RAM gives it anyway).
//     An explicit Deny in either wins.
//   - Using the value needs the encryption key too: reading it kms:Decrypt
//     on the key, sealing a new one (CreateSecret, PutSecretValue)
//     kms:GenerateDataKey, as the reference asks for a customer key.
//   - A client key (the instance API) may read a secret when a policy of
//     its AAP covers the secret's instance, grants PermissionSecretUser and
//     names secret/<name> (or a pattern matching it), from an allowed
//     source address. RAM and secret policies do not apply to it, and the
//     template stands for the key's decrypt permission too.

// secretResourcePattern matches every secret ARN.
const secretResourcePattern = "acs:kms:*:*:secret/*"

// Action sets of the secrets' system policies.
var (
	// secretAdminActions is every action on secrets, the use of their
	// values included (GetSecretValue, PutSecretValue); sealing or reading a
	// value still needs the encryption key's permission.
	secretAdminActions = []string{
		"kms:CreateSecret", "kms:GetSecretValue", "kms:PutSecretValue", "kms:UpdateSecret",
		"kms:UpdateSecretVersionStage", "kms:ListSecretVersionIds", "kms:ListSecrets", "kms:DescribeSecret",
		"kms:DeleteSecret", "kms:RestoreSecret", "kms:RotateSecret", "kms:UpdateSecretRotationPolicy",
		"kms:GetSecretPolicy", "kms:SetSecretPolicy", "kms:GetRandomPassword",
		"kms:TagResource", "kms:UntagResource",
	}
	// secretUserActions reads secrets.
	secretUserActions = []string{"kms:GetSecretValue", "kms:DescribeSecret", "kms:ListSecrets", "kms:ListSecretVersionIds"}
)

// clientKeySecretActions are the actions PermissionSecretUser grants.
var clientKeySecretActions = []string{"kms:GetSecretValue"}

// DefaultSecretPolicy is the policy of a secret created without one: the
// account's root may do everything; other identities of the account are
// decided by their RAM policies.
func DefaultSecretPolicy(accountID string) string {
	return fmt.Sprintf(`{"Version":"1","Statement":[{"Sid":"kms default secret policy","Effect":"Allow","Principal":{"RAM":["%s"]},"Action":["kms:*"],"Resource":["*"]}]}`, rootPrincipal(accountID))
}

// authorizeSecret checks an action on a secret. For a secret not created
// yet (CreateSecret), pass the secret it would be (its policy is then the
// default, so only RAM decides).
func (s *Service) authorizeSecret(ctx context.Context, c Caller, action string, sec *fsm.Secret) error {
	if err := s.checkInstanceNetwork(s.secretInstance(sec), c); err != nil {
		return err
	}
	if c.Client != nil {
		return s.authorizeClientKeySecret(ctx, c, action, sec)
	}
	policy := sec.Policy
	if policy == "" {
		policy = DefaultSecretPolicy(sec.AccountID)
	}
	return s.authorizeResource(ctx, c, action, sec.AccountID, func() string { return s.SecretArn(sec) }, policy, nil)
}

// secretInstance is the KMS instance a secret belongs to: the one it was
// created in, else its encryption key's ("" for the default key).
func (s *Service) secretInstance(sec *fsm.Secret) string {
	if sec.InstanceID != "" {
		return sec.InstanceID
	}
	if k, ok := s.fsm.Key(sec.EncryptionKeyID); ok {
		return k.InstanceID
	}
	return ""
}

// authorizeClientKeySecret decides action on a secret for a client-key
// caller (see the top of this file).
func (s *Service) authorizeClientKeySecret(ctx context.Context, c Caller, action string, sec *fsm.Secret) error {
	ev := newEvaluation(ctx)
	if !contains(clientKeySecretActions, action) || sec.AccountID != c.AccountID {
		return denial(action, c)
	}
	inst := s.secretInstance(sec)
	if inst == "" {
		return denial(action, c)
	}
	return clientKeyGrant(ev, c, action, inst, PermissionSecretUser, []string{"secret/" + sec.Name})
}
