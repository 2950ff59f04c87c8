package kms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/raftkms/raftkms/fsm"
)

// MaxPolicySize is the largest key policy document the service accepts.
const MaxPolicySize = 32768

// Bounds on one pattern (an Action, a Resource, a StringLike value): with
// them, and the linear matcher, evaluating a policy costs at most a few
// million steps however it was written.
const (
	MaxPatternLength    = 512 // bytes
	MaxPatternWildcards = 16  // * and ? together
)

// checkPattern bounds one pattern of a policy document.
func checkPattern(where, p string) error {
	if len(p) > MaxPatternLength {
		return fmt.Errorf("%s: %q is %d bytes; a pattern may have at most %d bytes", where, shorten(p), len(p), MaxPatternLength)
	}
	if n := strings.Count(p, "*") + strings.Count(p, "?"); n > MaxPatternWildcards {
		return fmt.Errorf("%s: %q has %d wildcards (* and ?); a pattern may have at most %d", where, shorten(p), n, MaxPatternWildcards)
	}
	return nil
}

// shorten keeps error messages short when they quote a long pattern.
func shorten(p string) string {
	if len(p) <= 64 {
		return p
	}
	return p[:64] + "..."
}

// PolicyDocument is the key policy grammar (Version "1").
type PolicyDocument struct {
	Version   string            `json:"Version"`
	Statement []PolicyStatement `json:"Statement"`
}

// PolicyStatement is one statement of a key policy.
type PolicyStatement struct {
	Sid       string                                `json:"Sid,omitempty"`
	Effect    string                                `json:"Effect"`
	Principal map[string]stringList                 `json:"Principal"`
	Action    stringList                            `json:"Action"`
	Resource  stringList                            `json:"Resource,omitempty"`
	Condition map[string]map[string]json.RawMessage `json:"Condition,omitempty"`
}

// stringList accepts a JSON string or an array of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("must be a string or an array of strings")
	}
	*l = many
	return nil
}

var (
	// Spaces are allowed: the service's own default policy uses the Sid
	// "Enable User Permissions".
	sidPattern       = regexp.MustCompile(`^[A-Za-z0-9_/+=.@ -]{1,128}$`)
	principalPattern = regexp.MustCompile(`^(\*|acs:ram::(\d+|\*):(\*|root|user/[^:]+|role/[^:]+))$`)
)

// DefaultPolicy is the policy of a key created without one: every
// identity of the owner account may do everything.
func DefaultPolicy(accountID string) string {
	return fmt.Sprintf(`{"Version":"1","Statement":[{"Sid":"Enable User Permissions","Effect":"Allow","Principal":{"RAM":["acs:ram::%s:*"]},"Action":["kms:*"],"Resource":["*"]}]}`, accountID)
}

// ValidatePolicy checks a key policy document against the service's
// grammar and limits and returns nil or an ErrInvalidParameter that says
// what is wrong.
func ValidatePolicy(doc string) error {
	bad := func(format string, a ...any) error { return invalid(FieldKeyPolicy, fmt.Sprintf(format, a...)) }
	if len(doc) > MaxPolicySize {
		return bad("at most %d bytes", MaxPolicySize)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.DisallowUnknownFields()
	var p PolicyDocument
	if err := dec.Decode(&p); err != nil {
		return bad("not a policy document: %v", err)
	}
	if dec.More() {
		return bad("trailing data after the document")
	}
	if p.Version != "1" {
		return bad(`Version must be "1"`)
	}
	if len(p.Statement) == 0 {
		return bad("Statement needs at least one statement")
	}
	for i, st := range p.Statement {
		where := fmt.Sprintf("Statement[%d]", i)
		if st.Sid != "" && !sidPattern.MatchString(st.Sid) {
			return bad("%s.Sid: at most 128 of letters, digits, spaces and _ / + = . @ -", where)
		}
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return bad("%s.Effect must be Allow or Deny", where)
		}
		if len(st.Principal) == 0 {
			return bad(`%s.Principal is required, e.g. {"RAM":["acs:ram::<account>:*"]}`, where)
		}
		for kind, arns := range st.Principal {
			if kind != "RAM" {
				return bad("%s.Principal: only RAM principals are supported, not %q", where, kind)
			}
			if len(arns) == 0 {
				return bad("%s.Principal.RAM is empty", where)
			}
			for _, a := range arns {
				if !principalPattern.MatchString(a) {
					return bad("%s.Principal.RAM: %q is not acs:ram::<account>:root|*|user/<name>|role/<name>", where, shorten(a))
				}
				// Each account a key grants to uses one unit of the
				// instance's access quota; a wildcard could stand for any
				// number of them, so an Allow may not use one. (A Deny
				// may: it grants nothing.)
				if st.Effect == "Allow" && isWildcardPrincipal(a) {
					return bad("%s.Principal.RAM: %q: wildcards are not allowed for principals of other accounts (each account a key is shared with counts against the instance's access quota); name the account (acs:ram::<account>:*) or the identity", where, shorten(a))
				}
			}
		}
		if len(st.Action) == 0 {
			return bad("%s.Action is required", where)
		}
		for _, a := range st.Action {
			if !strings.HasPrefix(a, "kms:") || len(a) == len("kms:") {
				return bad("%s.Action: %q does not start with kms:", where, shorten(a))
			}
			if err := checkPattern(where+".Action", a); err != nil {
				return bad("%v", err)
			}
		}
		for _, r := range st.Resource {
			if r != "*" && !strings.HasPrefix(r, "acs:kms:") {
				return bad("%s.Resource: %q is neither * nor an acs:kms: ARN", where, shorten(r))
			}
			if err := checkPattern(where+".Resource", r); err != nil {
				return bad("%v", err)
			}
		}
		for op, conds := range st.Condition {
			if !conditionOperators[op] {
				return bad("%s.Condition: operator %q is not one of StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringLike, StringNotLike, IpAddress, NotIpAddress", where, op)
			}
			if len(conds) == 0 {
				return bad("%s.Condition.%s is empty", where, op)
			}
			for key, v := range conds {
				var l stringList
				if err := json.Unmarshal(v, &l); err != nil {
					return bad("%s.Condition.%s.%s %v", where, op, key, err)
				}
				if op == "StringLike" || op == "StringNotLike" {
					for _, pat := range l {
						if err := checkPattern(fmt.Sprintf("%s.Condition.%s.%s", where, op, key), pat); err != nil {
							return bad("%v", err)
						}
					}
				}
			}
		}
	}
	return nil
}

// CrossAccountPrincipals counts the distinct principals of other accounts
// that a key policy allows: each uses one unit of the instance's access
// management quota.
func CrossAccountPrincipals(doc, owner string) int {
	seen := map[string]bool{}
	for _, st := range parsePolicyText(doc) {
		if st.effect != "Allow" {
			continue
		}
		for _, p := range st.principals {
			rest, ok := strings.CutPrefix(p, "acs:ram::")
			if !ok {
				continue
			}
			acct, _, _ := strings.Cut(rest, ":")
			if acct != owner && acct != "*" {
				seen[p] = true
			}
		}
	}
	return len(seen)
}

func checkPolicyName(name string) error {
	if name == "" {
		return missing(FieldKeyPolicyName)
	}
	if name != "default" {
		return invalid(FieldKeyPolicyName, `a key has one policy, named "default"`)
	}
	return nil
}

// GetKeyPolicy returns a key's policy document.
func (s *Service) GetKeyPolicy(ctx context.Context, c Caller, ref, name string) (string, error) {
	if err := checkPolicyName(name); err != nil {
		return "", err
	}
	k, err := s.keyFor(ctx, c, "kms:GetKeyPolicy", FieldKey, ref, nil)
	if err != nil {
		return "", err
	}
	if k.Policy == "" {
		return DefaultPolicy(k.AccountID), nil
	}
	return k.Policy, nil
}

// KeyPolicyInput is a key's new policy document.
type KeyPolicyInput struct {
	Key        string // id, alias or ARN
	PolicyName string // always "default"
	Policy     string // the document
	// BypassLockoutCheck accepts a policy under which the caller could no
	// longer call SetKeyPolicy on the key.
	BypassLockoutCheck bool
}

// SetKeyPolicy replaces a key's policy document.
func (s *Service) SetKeyPolicy(ctx context.Context, c Caller, in KeyPolicyInput) (uint64, error) {
	ref, name, doc, bypassLockoutCheck := in.Key, in.PolicyName, in.Policy, in.BypassLockoutCheck
	if err := checkPolicyName(name); err != nil {
		return 0, err
	}
	if doc == "" {
		return 0, missing(FieldKeyPolicy)
	}
	if err := ValidatePolicy(doc); err != nil {
		return 0, err
	}
	k, err := s.keyFor(ctx, c, "kms:SetKeyPolicy", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	if !bypassLockoutCheck {
		if err := s.lockoutCheck(ctx, c, k, doc); err != nil {
			return 0, err
		}
	}
	idx, err := s.propose(ctx, fsm.CmdSetKeyPolicy, fsm.KeyPolicyCmd{Now: s.nowMillis(), KeyID: k.ID, Policy: doc, CrossAccount: CrossAccountPrincipals(doc, k.AccountID)})
	if errors.Is(err, fsm.ErrAccessQuotaExceeded) {
		return idx, fmt.Errorf("%w: %v", ErrLimitExceeded, err)
	}
	return idx, err
}

// lockoutCheck refuses a key policy under which the caller could no
// longer change the key's policy: it evaluates kms:SetKeyPolicy for the
// caller against the key as it would be, with the caller's RAM policies, as
// the real authorization does. Whoever means it passes
// BypassPolicyLockoutSafetyCheck=true.
func (s *Service) lockoutCheck(ctx context.Context, c Caller, k *fsm.Key, doc string) error {
	next := *k
	next.Policy = doc
	err := s.authorizeKey(ctx, c, "kms:SetKeyPolicy", &next, nil)
	if errors.Is(err, ErrNoPermission) {
		return invalid(FieldKeyPolicy, fmt.Sprintf("under this policy %s could no longer call SetKeyPolicy on the key (the policy lockout safety check); "+
			"to set it anyway, pass BypassPolicyLockoutSafetyCheck=true", c.Principal))
	}
	return err
}
