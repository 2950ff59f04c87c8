package fsm

import (
	"errors"
	"fmt"
	"sort"
)

// RAM-style identities inside an account: users and roles, with the system
// policies attached to them. Access keys belong to the account's root or to
// a user (AccessKey.Principal).

// User is a RAM user.
type User struct {
	ID          string   `msgpack:"id"`
	AccountID   string   `msgpack:"acct"`
	Name        string   `msgpack:"name"`
	DisplayName string   `msgpack:"display"`
	Comments    string   `msgpack:"comments"`
	Policies    []string `msgpack:"policies"` // attached system policies, sorted
	CreatedAt   int64    `msgpack:"ct"`
	UpdatedAt   int64    `msgpack:"ut"`
	ModifyIndex uint64   `msgpack:"mi"`
}

// Role is a RAM role that identities named by its trust policy may assume.
type Role struct {
	ID                 string   `msgpack:"id"`
	AccountID          string   `msgpack:"acct"`
	Name               string   `msgpack:"name"`
	Description        string   `msgpack:"desc"`
	AssumeRolePolicy   string   `msgpack:"trust"`
	MaxSessionDuration int64    `msgpack:"maxsess"`
	Policies           []string `msgpack:"policies"`
	CreatedAt          int64    `msgpack:"ct"`
	UpdatedAt          int64    `msgpack:"ut"`
	ModifyIndex        uint64   `msgpack:"mi"`
}

// Identity errors.
var (
	ErrUserExists       = errors.New("a user with that name already exists")
	ErrUserNotFound     = errors.New("user not found")
	ErrRoleExists       = errors.New("a role with that name already exists")
	ErrRoleNotFound     = errors.New("role not found")
	ErrAccessKeyMissing = errors.New("access key not found")
	ErrDeleteConflict   = errors.New("the identity still has access keys or attached policies")
	ErrAccessKeyLimit   = errors.New("an identity may have at most 2 access keys")
	ErrAccountExists    = errors.New("account id already exists")
)

// MaxAccessKeysPerIdentity is RAM's limit on access keys per user (and root).
const MaxAccessKeysPerIdentity = 2

func identityKey(accountID, name string) string { return accountID + "\x00" + name }

// Identity commands.

// CreateAccountCmd adds an account with its root's first access key.
type CreateAccountCmd struct {
	Now       int64     `msgpack:"now"`
	Account   Account   `msgpack:"account"`
	AccessKey AccessKey `msgpack:"ak"`
}

// UserCmd creates or deletes a user.
type UserCmd struct {
	Now  int64  `msgpack:"now"`
	User User   `msgpack:"user"`
	Name string `msgpack:"name"` // delete
	Acct string `msgpack:"acct"` // delete
}

// RoleCmd creates or deletes a role.
type RoleCmd struct {
	Now  int64  `msgpack:"now"`
	Role Role   `msgpack:"role"`
	Name string `msgpack:"name"`
	Acct string `msgpack:"acct"`
}

// AccessKeyCmd creates (AccessKey set), updates the status of, or deletes
// an access key.
type AccessKeyCmd struct {
	Now       int64     `msgpack:"now"`
	AccessKey AccessKey `msgpack:"ak"`
	ID        string    `msgpack:"id"`
	Status    string    `msgpack:"status"`
}

// AttachPolicyCmd attaches or detaches a system policy to a user or role.
type AttachPolicyCmd struct {
	Now        int64  `msgpack:"now"`
	AccountID  string `msgpack:"acct"`
	Kind       string `msgpack:"kind"` // User | Role
	Name       string `msgpack:"name"`
	PolicyName string `msgpack:"policy"`
	Detach     bool   `msgpack:"detach"`
}

func (c *catalogue) applyCreateAccount(cmd *CreateAccountCmd, index uint64) error {
	if _, ok := c.accounts[cmd.Account.ID]; ok {
		return fmt.Errorf("%w: %s", ErrAccountExists, cmd.Account.ID)
	}
	a, ak := cmd.Account, cmd.AccessKey
	a.ModifyIndex, ak.ModifyIndex = index, index
	c.accounts[a.ID] = &a
	c.accessKeys[ak.ID] = &ak
	return nil
}

func (c *catalogue) applyCreateUser(cmd *UserCmd, index uint64) error {
	u := cmd.User
	if _, ok := c.accounts[u.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, u.AccountID)
	}
	k := identityKey(u.AccountID, u.Name)
	if _, ok := c.users[k]; ok {
		return fmt.Errorf("%w: %s", ErrUserExists, u.Name)
	}
	u.ModifyIndex = index
	c.users[k] = &u
	return nil
}

func (c *catalogue) applyDeleteUser(cmd *UserCmd) error {
	k := identityKey(cmd.Acct, cmd.Name)
	u, ok := c.users[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUserNotFound, cmd.Name)
	}
	principal := "acs:ram::" + u.AccountID + ":user/" + u.Name
	for _, ak := range c.accessKeys {
		if ak.Principal == principal {
			return fmt.Errorf("%w: user %s has access key %s; delete it first (DeleteAccessKey)", ErrDeleteConflict, u.Name, ak.ID)
		}
	}
	if len(u.Policies) > 0 {
		return fmt.Errorf("%w: user %s has policies attached; detach them first (DetachPolicyFromUser)", ErrDeleteConflict, u.Name)
	}
	delete(c.users, k)
	return nil
}

func (c *catalogue) applyCreateRole(cmd *RoleCmd, index uint64) error {
	r := cmd.Role
	if _, ok := c.accounts[r.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, r.AccountID)
	}
	k := identityKey(r.AccountID, r.Name)
	if _, ok := c.roles[k]; ok {
		return fmt.Errorf("%w: %s", ErrRoleExists, r.Name)
	}
	r.ModifyIndex = index
	c.roles[k] = &r
	return nil
}

func (c *catalogue) applyDeleteRole(cmd *RoleCmd) error {
	k := identityKey(cmd.Acct, cmd.Name)
	r, ok := c.roles[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrRoleNotFound, cmd.Name)
	}
	if len(r.Policies) > 0 {
		return fmt.Errorf("%w: role %s has policies attached; detach them first (DetachPolicyFromRole)", ErrDeleteConflict, r.Name)
	}
	delete(c.roles, k)
	return nil
}

func (c *catalogue) applyCreateAccessKey(cmd *AccessKeyCmd, index uint64) error {
	ak := cmd.AccessKey
	if _, ok := c.accounts[ak.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, ak.AccountID)
	}
	n := 0
	for _, other := range c.accessKeys {
		if other.Principal == ak.Principal {
			n++
		}
	}
	if n >= MaxAccessKeysPerIdentity {
		return fmt.Errorf("%w (%s has %d)", ErrAccessKeyLimit, ak.Principal, n)
	}
	if _, ok := c.accessKeys[ak.ID]; ok {
		return fmt.Errorf("%w: %s", ErrKeyExists, ak.ID)
	}
	ak.ModifyIndex = index
	c.accessKeys[ak.ID] = &ak
	return nil
}

func (c *catalogue) applyUpdateAccessKey(cmd *AccessKeyCmd, index uint64) error {
	ak, ok := c.accessKeys[cmd.ID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrAccessKeyMissing, cmd.ID)
	}
	n := *ak
	n.Status = cmd.Status
	n.ModifyIndex = index
	c.accessKeys[n.ID] = &n
	return nil
}

func (c *catalogue) applyDeleteAccessKey(cmd *AccessKeyCmd) error {
	if _, ok := c.accessKeys[cmd.ID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccessKeyMissing, cmd.ID)
	}
	delete(c.accessKeys, cmd.ID)
	return nil
}

func (c *catalogue) applyAttachPolicy(cmd *AttachPolicyCmd, index uint64) error {
	k := identityKey(cmd.AccountID, cmd.Name)
	var policies *[]string
	switch cmd.Kind {
	case "User":
		u, ok := c.users[k]
		if !ok {
			return fmt.Errorf("%w: %s", ErrUserNotFound, cmd.Name)
		}
		n := *u
		n.Policies = append([]string(nil), u.Policies...)
		n.UpdatedAt, n.ModifyIndex = cmd.Now, index
		c.users[k] = &n
		policies = &n.Policies
	case "Role":
		r, ok := c.roles[k]
		if !ok {
			return fmt.Errorf("%w: %s", ErrRoleNotFound, cmd.Name)
		}
		n := *r
		n.Policies = append([]string(nil), r.Policies...)
		n.UpdatedAt, n.ModifyIndex = cmd.Now, index
		c.roles[k] = &n
		policies = &n.Policies
	default:
		return fmt.Errorf("unknown identity kind %q", cmd.Kind)
	}
	out := (*policies)[:0]
	for _, p := range *policies {
		if p != cmd.PolicyName {
			out = append(out, p)
		}
	}
	if !cmd.Detach {
		out = append(out, cmd.PolicyName)
		sort.Strings(out)
	}
	*policies = out
	return nil
}

// RateLimitCmd sets (Rate > 0) or removes an account's rate limit for one
// action class.
type RateLimitCmd struct {
	Now       int64   `msgpack:"now"`
	AccountID string  `msgpack:"acct"`
	Class     string  `msgpack:"class"`
	Rate      float64 `msgpack:"rate"`
}

func (c *catalogue) applySetRateLimit(cmd *RateLimitCmd, index uint64) error {
	a, ok := c.accounts[cmd.AccountID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, cmd.AccountID)
	}
	n := *a
	n.RateLimits = map[string]float64{}
	for k, v := range a.RateLimits {
		n.RateLimits[k] = v
	}
	if cmd.Rate > 0 {
		n.RateLimits[cmd.Class] = cmd.Rate
	} else {
		delete(n.RateLimits, cmd.Class)
	}
	n.ModifyIndex = index
	c.accounts[n.ID] = &n
	return nil
}
