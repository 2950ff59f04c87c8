package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// Caller is the authenticated identity behind a request.
type Caller struct {
	AccountID   string
	Principal   string // acs:ram::<uid>:root | :user/<name> | :role/<name>
	Kind        string // root | user | role
	Name        string // user or role name
	Session     string // role session name
	AccessKeyID string
	SourceIP    string
	Temporary   bool // STS credentials
	// Signature identifies the verified signed request this caller made;
	// writes proposed for it carry it (see WithSignature).
	Signature SignedRequest
	// Client is set when the caller is a client key of an application
	// access point (the instance API): its AAP's permission policies, not
	// RAM or key policies, decide what it may do (authorizeClientKey).
	Client *ClientKeyCaller
}

// ClientKeyCaller is the principal of an instance API request: a client key
// of an AAP, with the AAP's policies as resolved when the request was
// authenticated (ClientKey).
type ClientKeyCaller struct {
	ID       string
	AAPName  string
	Policies []ClientKeyPolicy
	// NamedAlias is the alias (alias/<name>) the request named its key
	// by, if any: a policy resource alias/<name> then covers the key that
	// alias points to.
	NamedAlias string
}

// Errors of authentication.
var (
	ErrAccessKeyNotFound = errors.New("the access key id does not exist")
	ErrAccessKeyInactive = errors.New("the access key is not active")
)

// Credential returns the secret of an access key, for signature
// verification, and the caller it stands for. An access key created on
// another node a moment ago may not be applied here yet, so a miss costs one
// read-index round trip before it is final.
func (s *Service) Credential(ctx context.Context, accessKeyID, securityToken string) ([]byte, Caller, error) {
	// A node cut off from the leader may not know a key was revoked.
	if err := s.fresh(ctx); err != nil {
		return nil, Caller{}, err
	}
	if strings.HasPrefix(accessKeyID, stsPrefix) || securityToken != "" {
		if securityToken == "" {
			return nil, Caller{}, fmt.Errorf("%w: temporary credentials need their SecurityToken", ErrSTSToken)
		}
		return s.stsCredential(ctx, accessKeyID, securityToken)
	}
	ak, ok := s.fsm.AccessKey(accessKeyID)
	if !ok {
		if err := s.confirmAbsent(ctx, "the access key"); err != nil {
			return nil, Caller{}, err
		}
		ak, ok = s.fsm.AccessKey(accessKeyID)
	}
	if !ok {
		return nil, Caller{}, fmt.Errorf("%w: %s", ErrAccessKeyNotFound, accessKeyID)
	}
	if ak.Status != "Active" {
		return nil, Caller{}, fmt.Errorf("%w: %s", ErrAccessKeyInactive, accessKeyID)
	}
	if c, ok := s.secrets.Get(ak.ID); ok && c.modifyIndex == ak.ModifyIndex {
		return c.secret, callerOfKey(ak), nil
	}
	secret, err := s.root.Unwrap(ak.WrappedSecret, kcrypto.SecretAAD(ak.ID))
	if err != nil {
		return nil, Caller{}, fmt.Errorf("access key %s: %w", ak.ID, err)
	}
	s.secrets.Add(ak.ID, cachedSecret{modifyIndex: ak.ModifyIndex, secret: secret})
	return secret, callerOfKey(ak), nil
}

// KeyArn is the ARN of a key in this region.
func (s *Service) KeyArn(k *fsm.Key) string {
	return "acs:kms:" + s.cfg.Region + ":" + k.AccountID + ":key/" + k.ID
}

// AliasArn is the ARN of an alias in this region.
func (s *Service) AliasArn(a *fsm.Alias) string {
	return fmt.Sprintf("acs:kms:%s:%s:%s", s.cfg.Region, a.AccountID, a.Name)
}

// resolveKey finds the key a KeyId parameter names: a key id, an alias
// (alias/...) or an ARN of either. Keys of other accounts are reported as
// not found, so a caller learns nothing about keys it may not see. A miss
// costs one read-index round trip before it is final: the key may have been
// created through another node a moment ago.
func (s *Service) resolveKey(ctx context.Context, c Caller, param Field, ref string) (*fsm.Key, error) {
	if ref == "" {
		return nil, missing(param)
	}
	k, err := s.lookupKey(c, param, ref)
	if errors.Is(err, fsm.ErrKeyNotFound) || errors.Is(err, fsm.ErrAliasNotFound) || errors.Is(err, errForeignKeyUnknown) {
		if rerr := s.confirmAbsent(ctx, "the key"); rerr != nil {
			return nil, rerr
		}
		k, err = s.lookupKey(c, param, ref)
	}
	if err == nil {
		noteKey(ctx, k.ID, "")
	}
	return k, err
}

func (s *Service) lookupKey(c Caller, param Field, ref string) (*fsm.Key, error) {
	account, id := c.AccountID, ref
	if strings.HasPrefix(ref, "acs:") {
		// acs:kms:<region>:<account>:key/<id> or ...:alias/<name>
		parts := strings.SplitN(ref, ":", 5)
		if len(parts) != 5 || parts[1] != "kms" || parts[4] == "" {
			return nil, invalid(param, "an ARN has the form acs:kms:<region>:<account>:key/<key id>")
		}
		if parts[2] != s.cfg.Region {
			return nil, fmt.Errorf("%w: %s is in region %q, this cluster serves %q", fsm.ErrKeyNotFound, ref, parts[2], s.cfg.Region)
		}
		account, id = parts[3], parts[4]
		if rest, ok := strings.CutPrefix(id, "key/"); ok {
			id = rest
		} else if !strings.HasPrefix(id, "alias/") {
			return nil, invalid(param, "an ARN names key/<id> or alias/<name>")
		}
	}
	// Another account's key can only be named by ARN; whether it exists is
	// not told apart from whether the caller may use it (keyFor).
	foreign := account != c.AccountID
	if strings.HasPrefix(id, "alias/") {
		a, ok := s.fsm.Alias(account, id)
		if !ok {
			if foreign {
				return nil, fmt.Errorf("%w: %s", errForeignKeyUnknown, ref)
			}
			return nil, fmt.Errorf("%w: %s", fsm.ErrAliasNotFound, id)
		}
		id = a.KeyID
	}
	k, ok := s.fsm.Key(id)
	if !ok || k.AccountID != account {
		if foreign {
			return nil, fmt.Errorf("%w: %s", errForeignKeyUnknown, ref)
		}
		return nil, fmt.Errorf("%w: %s", fsm.ErrKeyNotFound, ref)
	}
	return k, nil
}

// versionOf finds a key version named by a ciphertext, with the same
// read-index retry as resolveKey, and authorizes action on its key.
func (s *Service) versionOf(ctx context.Context, c Caller, action, versionID string, encCtx map[string]string) (*fsm.Key, *fsm.KeyVersion, error) {
	v, ok := s.fsm.KeyVersion(versionID)
	if !ok {
		if err := s.confirmAbsent(ctx, "the ciphertext's key version"); err != nil {
			return nil, nil, err
		}
		v, ok = s.fsm.KeyVersion(versionID)
	}
	if !ok {
		return nil, nil, fmt.Errorf("%w: the key version the ciphertext names does not exist (the key may have been deleted)", kcrypto.ErrInvalidCiphertext)
	}
	k, ok := s.fsm.Key(v.KeyID)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the key version the ciphertext names does not exist (the key may have been deleted)", kcrypto.ErrInvalidCiphertext)
	}
	noteKey(ctx, k.ID, v.ID)
	if err := s.authorizeKey(ctx, c, action, k, encCtx); err != nil {
		return nil, nil, err
	}
	return k, v, nil
}

// usable checks that a key may serve a cryptographic operation.
func usable(k *fsm.Key, op, usage string) error {
	if k.State != fsm.StateEnabled {
		return fsm.NewKeyStateError(op, k.State)
	}
	if !strings.HasPrefix(op, "Asymmetric") && !strings.HasPrefix(op, "GetPublicKey") && !kcrypto.IsSymmetric(k.Spec) {
		return fmt.Errorf("%w: %s needs a symmetric key; %s is %s (use AsymmetricEncrypt/AsymmetricDecrypt)", ErrKeyUsage, op, k.ID, k.Spec)
	}
	if k.Usage != usage {
		return fmt.Errorf("%w: %s needs a key with usage %s; key %s has %s", ErrKeyUsage, op, usage, k.ID, k.Usage)
	}
	return nil
}
