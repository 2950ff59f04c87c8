package kms

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/mpdecode"
	"github.com/raftkms/raftkms/internal/rpc"
)

// System policies that can be attached to users and roles.
const (
	PolicyFullAccess       = "AliyunKMSFullAccess"
	PolicyReadOnlyAccess   = "AliyunKMSReadOnlyAccess"
	PolicyCryptoUserAccess = "AliyunKMSCryptoUserAccess"
	// PolicySTSAssumeRoleAccess lets a RAM user call AssumeRole (each
	// role's trust policy still decides whether it may assume that role).
	PolicySTSAssumeRoleAccess = "AliyunSTSAssumeRoleAccess"
	// PolicySecretAdminAccess allows every action on secrets;
	// PolicySecretUserAccess reads them (GetSecretValue, DescribeSecret,
	// ListSecrets, ListSecretVersionIds). Sealing or reading a value also
	// needs the encryption key's permission (kms:GenerateDataKey,
	// kms:Decrypt), as for any use of a key.
	PolicySecretAdminAccess = "AliyunKMSSecretAdminAccess"
	PolicySecretUserAccess  = "AliyunKMSSecretUserAccess"
)

// Caller kinds.
const (
	KindRoot = "root"
	KindUser = "user"
	KindRole = "role" // a session of an assumed role
)

// Identity errors.
var (
	ErrSTSToken   = errors.New("the security token is invalid or does not match the access key")
	ErrSTSExpired = errors.New("the temporary credentials have expired; call AssumeRole again")
	// ErrSTSRevoked refuses a session of a role that no longer exists as
	// it was: deleted, or deleted and created again under the same name.
	ErrSTSRevoked       = errors.New("the temporary credentials are no longer valid: the role they were issued for was deleted (a role created since under the same name is another role); call AssumeRole again")
	ErrAssumeRoleDenied = errors.New("the role's trust policy does not allow this identity to assume it")
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

func checkName(param Field, name string) error {
	if name == "" {
		return missing(param)
	}
	if !namePattern.MatchString(name) {
		return invalid(param, "1 to 64 of letters, digits and . _ - @")
	}
	return nil
}

// UserArn and RoleArn name identities as policies write them.
func UserArn(account, name string) string { return "acs:ram::" + account + ":user/" + name }

// RoleArn is a role's ARN.
func RoleArn(account, name string) string { return "acs:ram::" + account + ":role/" + name }

// callerOfKey builds the Caller an access key stands for.
func callerOfKey(ak *fsm.AccessKey) Caller {
	c := Caller{AccountID: ak.AccountID, Principal: ak.Principal, AccessKeyID: ak.ID, Kind: KindRoot}
	if name, ok := strings.CutPrefix(ak.Principal, "acs:ram::"+ak.AccountID+":user/"); ok {
		c.Kind, c.Name = KindUser, name
	}
	return c
}

// requireRoot allows an identity-management call only to the account's
// root credentials.
func requireRoot(c Caller, action string) error {
	if c.Kind != KindRoot && c.Principal != rootPrincipal(c.AccountID) {
		return fmt.Errorf("%w: %s is reserved to the account's root credentials; %s may not call it", ErrNoPermission, action, c.Principal)
	}
	return nil
}

// AccountResult is what operator account create hands out, once.
type AccountResult struct {
	AccountID       string
	AccessKeyID     string
	AccessKeySecret string
	Index           uint64
}

// CreateAccount makes another account with its root's first access key.
// Only the operator account's root may.
func (s *Service) CreateAccount(ctx context.Context, c Caller, name string) (AccountResult, error) {
	if !s.IsOperator(c) {
		return AccountResult{}, fmt.Errorf("%w: only the operator account's root creates accounts", ErrNoPermission)
	}
	if len([]rune(name)) > 64 {
		return AccountResult{}, invalid(FieldAccountName, "at most 64 characters")
	}
	now := s.nowMillis()
	acct := newAccountID()
	ak, secret, err := s.newAccessKey(acct, rootPrincipal(acct), now)
	if err != nil {
		return AccountResult{}, err
	}
	idx, err := s.propose(ctx, fsm.CmdCreateAccount, fsm.CreateAccountCmd{
		Now: now, Account: fsm.Account{ID: acct, Name: name, CreatedAt: now}, AccessKey: ak,
	})
	if err != nil {
		return AccountResult{}, err
	}
	return AccountResult{AccountID: acct, AccessKeyID: ak.ID, AccessKeySecret: secret, Index: idx}, nil
}

func (s *Service) newAccessKey(account, principal string, now int64) (fsm.AccessKey, string, error) {
	id, secret := newAccessKeyID(), newAccessKeySecret()
	wrapped, err := s.root.Wrap([]byte(secret), kcrypto.SecretAAD(id))
	if err != nil {
		return fsm.AccessKey{}, "", err
	}
	return fsm.AccessKey{ID: id, AccountID: account, Principal: principal, WrappedSecret: wrapped, Status: "Active", CreatedAt: now}, secret, nil
}

// UserInput describes a RAM user to create.
type UserInput struct {
	Name        string // 1 to 64 of letters, digits and . _ - @
	DisplayName string // at most 128 characters
	Comments    string // at most 128 characters
}

// CreateUser adds a RAM user to the caller's account.
func (s *Service) CreateUser(ctx context.Context, c Caller, in UserInput) (*fsm.User, uint64, error) {
	name, display, comments := in.Name, in.DisplayName, in.Comments
	if err := requireRoot(c, "CreateUser"); err != nil {
		return nil, 0, err
	}
	if err := checkName(FieldUserName, name); err != nil {
		return nil, 0, err
	}
	if len([]rune(display)) > 128 || len([]rune(comments)) > 128 {
		return nil, 0, invalid(FieldDisplayName, FieldDisplayName.Ref()+" and "+FieldComments.Ref()+" are at most 128 characters")
	}
	now := s.nowMillis()
	u := fsm.User{ID: randomString(digits, 16), AccountID: c.AccountID, Name: name, DisplayName: display, Comments: comments, CreatedAt: now, UpdatedAt: now}
	idx, err := s.propose(ctx, fsm.CmdCreateUser, fsm.UserCmd{Now: now, User: u})
	if err != nil {
		return nil, idx, err
	}
	return &u, idx, nil
}

// GetUser returns a user of the caller's account.
func (s *Service) GetUser(ctx context.Context, c Caller, name string) (*fsm.User, error) {
	if err := requireRoot(c, "GetUser"); err != nil {
		return nil, err
	}
	if err := checkName(FieldUserName, name); err != nil {
		return nil, err
	}
	var u *fsm.User
	ok, err := s.found(ctx, func() bool {
		var hit bool
		u, hit = s.fsm.User(c.AccountID, name)
		return hit
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrUserNotFound, name)
	}
	return u, nil
}

// ListUsers returns the caller's account's users.
func (s *Service) ListUsers(ctx context.Context, c Caller) ([]*fsm.User, error) {
	if err := requireRoot(c, "ListUsers"); err != nil {
		return nil, err
	}
	return s.fsm.Users(c.AccountID), nil
}

// DeleteUser removes a user that has no access keys and no policies.
func (s *Service) DeleteUser(ctx context.Context, c Caller, name string) (uint64, error) {
	if err := requireRoot(c, "DeleteUser"); err != nil {
		return 0, err
	}
	if err := checkName(FieldUserName, name); err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdDeleteUser, fsm.UserCmd{Now: s.nowMillis(), Acct: c.AccountID, Name: name})
}

// principalFor names the owner of an access key: a user, or (no user name)
// the account's root.
func (s *Service) principalFor(ctx context.Context, c Caller, userName string) (string, error) {
	if userName == "" {
		return rootPrincipal(c.AccountID), nil
	}
	if err := checkName(FieldUserName, userName); err != nil {
		return "", err
	}
	ok, err := s.found(ctx, func() bool { _, ok := s.fsm.User(c.AccountID, userName); return ok })
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: %s", fsm.ErrUserNotFound, userName)
	}
	return UserArn(c.AccountID, userName), nil
}

// NewAccessKey is CreateAccessKey's answer: the secret is shown only here.
type NewAccessKey struct {
	AccessKey *fsm.AccessKey
	Secret    string
	Index     uint64
}

// CreateAccessKey makes an access key for a user (or the root).
func (s *Service) CreateAccessKey(ctx context.Context, c Caller, userName string) (NewAccessKey, error) {
	if err := requireRoot(c, "CreateAccessKey"); err != nil {
		return NewAccessKey{}, err
	}
	principal, err := s.principalFor(ctx, c, userName)
	if err != nil {
		return NewAccessKey{}, err
	}
	ak, secret, err := s.newAccessKey(c.AccountID, principal, s.nowMillis())
	if err != nil {
		return NewAccessKey{}, err
	}
	idx, err := s.propose(ctx, fsm.CmdCreateAccessKey, fsm.AccessKeyCmd{Now: ak.CreatedAt, AccessKey: ak})
	if err != nil {
		return NewAccessKey{}, err
	}
	return NewAccessKey{AccessKey: &ak, Secret: secret, Index: idx}, nil
}

// ListAccessKeys lists a user's (or the root's) access keys, without secrets.
func (s *Service) ListAccessKeys(ctx context.Context, c Caller, userName string) ([]*fsm.AccessKey, error) {
	if err := requireRoot(c, "ListAccessKeys"); err != nil {
		return nil, err
	}
	principal, err := s.principalFor(ctx, c, userName)
	if err != nil {
		return nil, err
	}
	return s.fsm.AccessKeysOf(principal), nil
}

func (s *Service) ownAccessKey(ctx context.Context, c Caller, userName, id string) (*fsm.AccessKey, error) {
	if id == "" {
		return nil, missing(FieldAccessKeyID)
	}
	principal, err := s.principalFor(ctx, c, userName)
	if err != nil {
		return nil, err
	}
	var ak *fsm.AccessKey
	ok, err := s.found(ctx, func() bool {
		var hit bool
		ak, hit = s.fsm.AccessKey(id)
		return hit
	})
	if err != nil {
		return nil, err
	}
	if !ok || ak.Principal != principal {
		return nil, fmt.Errorf("%w: %s", fsm.ErrAccessKeyMissing, id)
	}
	return ak, nil
}

// AccessKeyRef names an access key of a RAM user (User empty: of the
// account's root).
type AccessKeyRef struct {
	User string
	ID   string
}

// UpdateAccessKey sets an access key's status, Active or Inactive. It
// returns only once every reachable node has applied the change (see
// waitEverywhere).
func (s *Service) UpdateAccessKey(ctx context.Context, c Caller, ref AccessKeyRef, status string) (uint64, error) {
	userName, id := ref.User, ref.ID
	if err := requireRoot(c, "UpdateAccessKey"); err != nil {
		return 0, err
	}
	if status != "Active" && status != "Inactive" {
		return 0, invalid(FieldAccessKeyStatus, "must be Active or Inactive")
	}
	ak, err := s.ownAccessKey(ctx, c, userName, id)
	if err != nil {
		return 0, err
	}
	idx, err := s.propose(ctx, fsm.CmdUpdateAccessKey, fsm.AccessKeyCmd{Now: s.nowMillis(), ID: ak.ID, Status: status})
	if err != nil {
		return idx, err
	}
	return idx, s.waitEverywhere(ctx, idx)
}

// DeleteAccessKey deletes an access key; like UpdateAccessKey it returns
// once every reachable node has applied it.
func (s *Service) DeleteAccessKey(ctx context.Context, c Caller, ref AccessKeyRef) (uint64, error) {
	userName, id := ref.User, ref.ID
	if err := requireRoot(c, "DeleteAccessKey"); err != nil {
		return 0, err
	}
	ak, err := s.ownAccessKey(ctx, c, userName, id)
	if err != nil {
		return 0, err
	}
	if ak.ID == c.AccessKeyID {
		return 0, invalid(FieldAccessKeyID, "the request is signed with this access key; delete it with another one")
	}
	idx, err := s.propose(ctx, fsm.CmdDeleteAccessKey, fsm.AccessKeyCmd{Now: s.nowMillis(), ID: ak.ID})
	if err != nil {
		return idx, err
	}
	return idx, s.waitEverywhere(ctx, idx)
}

// RoleInput describes a role to create.
type RoleInput struct {
	Name               string // 1 to 64 of letters, digits and . _ - @
	TrustPolicy        string // who may assume the role (a policy document)
	Description        string // at most 1024 characters
	MaxSessionDuration int64  // seconds, 3600 to 43200; 0: 3600
}

// CreateRole adds a role whose trust policy names who may assume it.
func (s *Service) CreateRole(ctx context.Context, c Caller, in RoleInput) (*fsm.Role, uint64, error) {
	name, trust, desc, maxSession := in.Name, in.TrustPolicy, in.Description, in.MaxSessionDuration
	if err := requireRoot(c, "CreateRole"); err != nil {
		return nil, 0, err
	}
	if err := checkName(FieldRoleName, name); err != nil {
		return nil, 0, err
	}
	if trust == "" {
		return nil, 0, missing(FieldTrustPolicy)
	}
	if err := ValidateTrustPolicy(trust); err != nil {
		return nil, 0, err
	}
	if maxSession == 0 {
		maxSession = 3600
	}
	if maxSession < 3600 || maxSession > 43200 {
		return nil, 0, invalid(FieldMaxSessionDuration, "must be between 3600 and 43200 seconds")
	}
	if len([]rune(desc)) > 1024 {
		return nil, 0, invalid(FieldDescription, "at most 1024 characters")
	}
	now := s.nowMillis()
	r := fsm.Role{ID: randomString(digits, 19), AccountID: c.AccountID, Name: name, Description: desc,
		AssumeRolePolicy: trust, MaxSessionDuration: maxSession, CreatedAt: now, UpdatedAt: now}
	idx, err := s.propose(ctx, fsm.CmdCreateRole, fsm.RoleCmd{Now: now, Role: r})
	if err != nil {
		return nil, idx, err
	}
	return &r, idx, nil
}

// GetRole returns a role of the caller's account.
func (s *Service) GetRole(ctx context.Context, c Caller, name string) (*fsm.Role, error) {
	if err := requireRoot(c, "GetRole"); err != nil {
		return nil, err
	}
	if err := checkName(FieldRoleName, name); err != nil {
		return nil, err
	}
	var r *fsm.Role
	ok, err := s.found(ctx, func() bool {
		var hit bool
		r, hit = s.fsm.Role(c.AccountID, name)
		return hit
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrRoleNotFound, name)
	}
	return r, nil
}

// ListRoles returns the caller's account's roles.
func (s *Service) ListRoles(ctx context.Context, c Caller) ([]*fsm.Role, error) {
	if err := requireRoot(c, "ListRoles"); err != nil {
		return nil, err
	}
	return s.fsm.Roles(c.AccountID), nil
}

// DeleteRole removes a role without attached policies. Sessions of the role
// stop working at once: every request re-checks that the role exists.
func (s *Service) DeleteRole(ctx context.Context, c Caller, name string) (uint64, error) {
	if err := requireRoot(c, "DeleteRole"); err != nil {
		return 0, err
	}
	if err := checkName(FieldRoleName, name); err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdDeleteRole, fsm.RoleCmd{Now: s.nowMillis(), Acct: c.AccountID, Name: name})
}

// Whom a RAM policy is attached to (PolicyAttachmentInput.To).
const (
	AttachToUser = "User"
	AttachToRole = "Role"
)

// PolicyAttachmentInput attaches a system policy to, or detaches it from,
// a user or a role of the caller's account.
type PolicyAttachmentInput struct {
	To         string // AttachToUser or AttachToRole
	Name       string // of the user or role
	PolicyType string // only System policies exist here
	PolicyName string // AliyunKMSFullAccess, ...
	Detach     bool
}

// attachAction is RAM's name for the operation, as denials name it.
func (in PolicyAttachmentInput) attachAction() string {
	if in.Detach {
		return "DetachPolicyFrom" + in.To
	}
	return "AttachPolicyTo" + in.To
}

// AttachPolicy attaches (or detaches) a system policy to a user or role.
func (s *Service) AttachPolicy(ctx context.Context, c Caller, in PolicyAttachmentInput) (uint64, error) {
	kind, name, policyType, policy, detach := in.To, in.Name, in.PolicyType, in.PolicyName, in.Detach
	if kind != AttachToUser && kind != AttachToRole {
		return 0, fmt.Errorf("%w: a policy is attached to a %s or a %s, not %q", ErrUnsupported, AttachToUser, AttachToRole, kind)
	}
	if err := requireRoot(c, in.attachAction()); err != nil {
		return 0, err
	}
	param := FieldUserName
	if kind == AttachToRole {
		param = FieldRoleName
	}
	if err := checkName(param, name); err != nil {
		return 0, err
	}
	if policyType == "" {
		return 0, missing(FieldRAMPolicyType)
	}
	if policyType != "System" {
		return 0, invalid(FieldRAMPolicyType, "only System policies exist here")
	}
	if policy == "" {
		return 0, missing(FieldRAMPolicyName)
	}
	if _, ok := systemPolicies[policy]; !ok {
		return 0, invalid(FieldRAMPolicyName, fmt.Sprintf("%q is not AliyunKMSFullAccess, AliyunKMSReadOnlyAccess, AliyunKMSCryptoUserAccess, AliyunKMSSecretAdminAccess, AliyunKMSSecretUserAccess or AliyunSTSAssumeRoleAccess", policy))
	}
	return s.propose(ctx, fsm.CmdAttachPolicy, fsm.AttachPolicyCmd{Now: s.nowMillis(), AccountID: c.AccountID, Kind: kind, Name: name, PolicyName: policy, Detach: detach})
}

// ListPoliciesForUser returns the system policies attached to a user.
func (s *Service) ListPoliciesForUser(ctx context.Context, c Caller, name string) ([]string, error) {
	u, err := s.GetUser(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return u.Policies, nil
}

// found runs a catalogue lookup and, on a miss, once more after a
// linearizable read: the record may have been written through another node
// a moment ago.
func (s *Service) found(ctx context.Context, lookup func() bool) (bool, error) {
	if lookup() {
		return true, nil
	}
	if err := s.confirmAbsent(ctx, "it"); err != nil {
		return false, err
	}
	return lookup(), nil
}

// confirmAbsent asks the leader for a read index before a miss in the local
// catalogue becomes a final "does not exist". A node that cannot reach the
// leader says so (503) instead: a client trusts a not-found answer.
func (s *Service) confirmAbsent(ctx context.Context, what string) error {
	if err := s.LinearizableRead(ctx); err != nil {
		return fmt.Errorf("this node cannot confirm that %s does not exist: %w; retry, or ask another node", what, err)
	}
	return nil
}

// Temporary credentials.

// stsClaims is what a SecurityToken carries, sealed under the root key: any
// node can check a temporary credential without a Raft write per session.
type stsClaims struct {
	AccessKeyID string `msgpack:"ak"`
	Secret      string `msgpack:"sk"`
	AccountID   string `msgpack:"acct"` // the role's account
	Role        string `msgpack:"role"`
	// RoleID binds the session to the role it was issued for, not to its
	// name: a role deleted and created again has a new id.
	RoleID  string `msgpack:"rid"`
	Session string `msgpack:"sess"`
	Expires int64  `msgpack:"exp"` // Unix ms
}

const stsPrefix = "STS."

func stsAAD(akid string) []byte { return []byte("sts\x00" + akid) }

// TempCredentials is AssumeRole's answer.
type TempCredentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	Expiration      time.Time
	RoleArn         string
	AssumedRoleID   string
	AssumedRoleArn  string
}

var sessionPattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{2,64}$`)

// AssumeRoleInput names the role to assume and the session to open.
type AssumeRoleInput struct {
	RoleArn         string // acs:ram::<account>:role/<name>
	SessionName     string // 2 to 64 of letters, digits and . _ - @
	DurationSeconds int64  // 900 to 43200 and at most the role's maximum; 0: 3600
}

// AssumeRole issues temporary credentials that act as a role, when the
// role's trust policy names the caller (or the caller's account).
func (s *Service) AssumeRole(ctx context.Context, c Caller, in AssumeRoleInput) (TempCredentials, error) {
	roleArn, session, duration := in.RoleArn, in.SessionName, in.DurationSeconds
	if roleArn == "" {
		return TempCredentials{}, missing(FieldRoleArn)
	}
	if session == "" {
		return TempCredentials{}, missing(FieldSessionName)
	}
	if !sessionPattern.MatchString(session) {
		return TempCredentials{}, invalid(FieldSessionName, "2 to 64 of letters, digits and . _ - @")
	}
	if duration == 0 {
		duration = 3600
	}
	if duration < 900 || duration > 43200 {
		return TempCredentials{}, invalid(FieldSessionDuration, "must be between 900 and 43200")
	}
	if c.Kind == KindRole {
		return TempCredentials{}, fmt.Errorf("%w: a role session cannot assume another role", ErrNoPermission)
	}
	acct, name, ok := parseRoleArn(roleArn)
	if !ok {
		return TempCredentials{}, invalid(FieldRoleArn, "expected acs:ram::<account>:role/<name>")
	}
	// A RAM user needs its own permission first (AliyunSTSAssumeRoleAccess),
	// as in the reference; the account's root has it. Checked before the
	// role is looked up, so the refusal says nothing about the role.
	if err := s.authorizeRAM(ctx, c, "sts:AssumeRole", roleArn); err != nil {
		return TempCredentials{}, err
	}
	r, found := s.fsm.Role(acct, name)
	if !found {
		if err := s.confirmAbsent(ctx, "the role"); err != nil {
			return TempCredentials{}, err
		}
		r, found = s.fsm.Role(acct, name)
	}
	trusted := false
	if found {
		var err error
		if trusted, err = trusts(ctx, r.AssumeRolePolicy, c); err != nil {
			return TempCredentials{}, err
		}
	}
	if !trusted {
		// Whether the role exists is not revealed to identities it does not
		// trust.
		return TempCredentials{}, fmt.Errorf("%w: %s may not assume %s", ErrAssumeRoleDenied, c.Principal, roleArn)
	}
	if duration > r.MaxSessionDuration {
		return TempCredentials{}, invalid(FieldSessionDuration, fmt.Sprintf("the role allows at most %d seconds", r.MaxSessionDuration))
	}
	exp := s.now().Add(time.Duration(duration) * time.Second)
	claims := stsClaims{
		AccessKeyID: stsPrefix + randomString(mixedAlN, 24), Secret: randomString(mixedAlN, 40),
		AccountID: acct, Role: name, RoleID: r.ID, Session: session, Expires: exp.UnixMilli(),
	}
	body, err := msgpack.Marshal(&claims)
	if err != nil {
		return TempCredentials{}, err
	}
	sealed, err := s.root.Wrap(body, stsAAD(claims.AccessKeyID))
	if err != nil {
		return TempCredentials{}, err
	}
	return TempCredentials{
		AccessKeyID: claims.AccessKeyID, AccessKeySecret: claims.Secret,
		SecurityToken: base64.RawURLEncoding.EncodeToString(sealed), Expiration: exp,
		RoleArn: roleArn, AssumedRoleID: r.ID + ":" + session,
		AssumedRoleArn: "acs:ram::" + acct + ":assumed-role/" + name + "/" + session,
	}, nil
}

func parseRoleArn(arn string) (account, name string, ok bool) {
	rest, ok := strings.CutPrefix(arn, "acs:ram::")
	if !ok {
		return "", "", false
	}
	account, name, ok = strings.Cut(rest, ":role/")
	if !ok || account == "" || name == "" {
		return "", "", false
	}
	return account, name, true
}

// stsCredential opens a SecurityToken and returns the temporary secret and
// the role session it stands for.
func (s *Service) stsCredential(ctx context.Context, akid, token string) ([]byte, Caller, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, Caller{}, ErrSTSToken
	}
	body, err := s.root.Unwrap(raw, stsAAD(akid))
	if err != nil {
		return nil, Caller{}, ErrSTSToken
	}
	var cl stsClaims
	if err := mpdecode.Unmarshal(body, &cl); err != nil || cl.AccessKeyID != akid {
		return nil, Caller{}, ErrSTSToken
	}
	if s.now().UnixMilli() >= cl.Expires {
		return nil, Caller{}, ErrSTSExpired
	}
	// The role must be the one the token was issued for, not merely one of
	// the same name. A token issued before sessions carried the role's id
	// has none, and every role has one, so it is refused too.
	if r, ok := s.fsm.Role(cl.AccountID, cl.Role); !ok || r.ID != cl.RoleID {
		return nil, Caller{}, fmt.Errorf("%w (%s)", ErrSTSRevoked, RoleArn(cl.AccountID, cl.Role))
	}
	return []byte(cl.Secret), Caller{
		AccountID: cl.AccountID, Principal: RoleArn(cl.AccountID, cl.Role), AccessKeyID: akid,
		Kind: KindRole, Name: cl.Role, Session: cl.Session, Temporary: true,
	}, nil
}

// waitEverywhere waits until every other member of the Raft configuration
// that answers has applied index, so that a revoked credential is refused
// by every node before the revocation is acknowledged. A node that cannot
// be reached cannot serve either: it stops after MaxStaleness, as the
// freshness lease that guards authentication requires.
func (s *Service) waitEverywhere(ctx context.Context, index uint64) error {
	if s.cfg.Transport == nil || s.cfg.Servers == nil {
		return nil
	}
	servers, err := s.cfg.Servers()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MaxStaleness)
	defer cancel()
	req, _ := msgpack.Marshal(index)
	var wg sync.WaitGroup
	for _, addr := range servers {
		if addr == s.cfg.Transport.Addr() {
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			if _, err := s.cfg.Transport.Call(ctx, addr, rpc.KMSWaitIndex, req); err != nil {
				s.log.Debug("peer did not confirm the revocation; it stops serving within max-staleness", "peer", addr, "error", err)
			}
		}(addr)
	}
	wg.Wait()
	return nil
}

func (s *Service) handleWaitIndex(ctx context.Context, req []byte) ([]byte, error) {
	var idx uint64
	if err := mpdecode.Unmarshal(req, &idx); err != nil {
		return nil, err
	}
	return nil, s.fsm.WaitForIndex(ctx, idx)
}
