package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/raftkms/raftkms/fsm"
)

// Application access (fsm/aap.go): network rules, permission policies,
// application access points and their client keys, managed through the
// OpenAPI actions of the same names. Every action is authorized by the
// caller's RAM policies like any other action that names no key
// (kms:<Action>), every object belongs to the caller's account and is
// invisible to others (a miss and another account's object answer the same
// not-found). Shapes are checked here; existence, references and counts
// again in Apply. Updates and deletions return once every reachable member
// has applied them (waitEverywhere), as access-key revocation does, so a
// revoked client key stops working everywhere before the call returns.

// Permission templates a permission policy may grant.
const (
	PermissionKeyUser    = "RbacPermission/Template/CryptoServiceKeyUser"
	PermissionSecretUser = "RbacPermission/Template/CryptoServiceSecretUser"
)

// AuthenticationClientKey is the only authentication method of an AAP.
const AuthenticationClientKey = "ClientKey"

// NetworkTypePrivate is the only type of network rule.
const NetworkTypePrivate = "Private"

// Client key constants.
const (
	ClientKeyPrefix    = "KAAP."
	ClientKeyAlgorithm = "RSA_2048"
	ClientKeyOrigin    = "Aliyun_KMS"
	clientKeyBits      = 2048
	// DefaultClientKeyValidity is a client key's validity when NotAfter is
	// not given.
	DefaultClientKeyValidity = 5 * 365 * 24 * time.Hour
)

// Bounds on what one object may hold.
const (
	MaxSourcesPerRule        = 32 // addresses and CIDR blocks of one network rule
	MaxResourcesPerPolicy    = 50
	MaxNetworkRulesPerPolicy = 10
	maxListDocument          = 16384
)

// NetworkRuleInput describes a network rule to create or update. On
// update, nil leaves a field as it is (Type cannot change).
type NetworkRuleInput struct {
	Name            string
	Type            string    // Private (create only)
	SourcePrivateIP *[]string // addresses and CIDR blocks (ParseSourcePrivateIPs)
	Description     *string
}

// PermissionPolicyInput describes a permission policy to create or update.
// On update, nil leaves a field as it is (KmsInstance cannot change).
type PermissionPolicyInput struct {
	Name         string
	KmsInstance  string    // create only
	Permissions  *[]string // ParsePermissions
	Resources    *[]string // ParseResources
	NetworkRules *[]string // ParseAccessControlRules
	Description  *string
}

// AAPInput describes an application access point to create or update.
type AAPInput struct {
	Name                 string
	AuthenticationMethod string    // ClientKey (the default; create only)
	Policies             *[]string // permission policy names (ParseNameList)
	Description          *string
}

// ClientKeyInput describes a client key to create.
type ClientKeyInput struct {
	AAPName   string
	Password  string    // protects the PKCS#12 handed out; never stored
	NotBefore time.Time // zero: now
	NotAfter  time.Time // zero: NotBefore + DefaultClientKeyValidity
}

// NewClientKey is a created client key with its private part, which exists
// only in this answer.
type NewClientKey struct {
	Key *fsm.ClientKey
	// PrivateKeyData is a PKCS#12 (legacy PBE: SHA1-3DES key and cert
	// bags, SHA-1 MAC) holding the certificate, then the RSA private key,
	// under the caller's password.
	PrivateKeyData []byte
	Index          uint64
}

// Parsers of the JSON documents the management actions take. They meet
// untrusted input: bounded in size and count, and fuzzed.

func parseJSONStrings(field Field, text string, max int) ([]string, error) {
	if len(text) > maxListDocument {
		return nil, invalid(field, fmt.Sprintf("at most %d bytes", maxListDocument))
	}
	var l []string
	dec := json.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(&l); err != nil || dec.More() {
		return nil, invalid(field, `must be a JSON array of strings, e.g. ["a","b"]`)
	}
	if len(l) > max {
		return nil, invalid(field, fmt.Sprintf("at most %d entries", max))
	}
	seen := make(map[string]bool, len(l))
	for _, s := range l {
		if seen[s] {
			return nil, invalid(field, fmt.Sprintf("%q appears twice", shorten(s)))
		}
		seen[s] = true
	}
	return l, nil
}

// ParseNameList reads a JSON array of 1 to max object names (the Policies
// of an AAP).
func ParseNameList(field Field, text string, max int) ([]string, error) {
	l, err := parseJSONStrings(field, text, max)
	if err != nil {
		return nil, err
	}
	return l, checkNames(field, l, max)
}

// checkNames checks a list of at most max distinct object names.
func checkNames(field Field, l []string, max int) error {
	if len(l) > max {
		return invalid(field, fmt.Sprintf("at most %d entries", max))
	}
	seen := make(map[string]bool, len(l))
	for _, n := range l {
		if err := checkName(field, n); err != nil {
			return err
		}
		if seen[n] {
			return invalid(field, fmt.Sprintf("%q appears twice", n))
		}
		seen[n] = true
	}
	return nil
}

// ParseSourcePrivateIPs reads a JSON array of addresses and CIDR blocks
// and returns them in canonical form (a CIDR block masked to its prefix).
func ParseSourcePrivateIPs(text string) ([]string, error) {
	l, err := parseJSONStrings(FieldSourcePrivateIP, text, MaxSourcesPerRule)
	if err != nil {
		return nil, err
	}
	return canonicalSources(l)
}

// canonicalSources checks addresses and CIDR blocks and returns them in
// canonical form.
func canonicalSources(l []string) ([]string, error) {
	if len(l) > MaxSourcesPerRule {
		return nil, invalid(FieldSourcePrivateIP, fmt.Sprintf("at most %d entries", MaxSourcesPerRule))
	}
	out := make([]string, 0, len(l))
	for _, s := range l {
		p, err := parseSource(s)
		if err != nil {
			return nil, invalid(FieldSourcePrivateIP, fmt.Sprintf("%q is not an IP address or CIDR block", shorten(s)))
		}
		out = append(out, p)
	}
	return out, nil
}

func parseSource(s string) (string, error) {
	if len(s) > 64 {
		return "", errors.New("too long")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", err
		}
		return p.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", errors.New("not an address")
	}
	return a.String(), nil
}

// SourcePrefix is a stored source (ParseSourcePrivateIPs' canonical form) as
// a prefix: an address is a prefix of its full length.
func SourcePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// ParsePermissions reads a JSON array of permission templates.
func ParsePermissions(text string) ([]string, error) {
	l, err := parseJSONStrings(FieldPermissions, text, 2)
	if err != nil {
		return nil, err
	}
	return l, checkPermissions(l)
}

func checkPermissions(l []string) error {
	if len(l) == 0 || len(l) > 2 {
		return invalid(FieldPermissions, "name one or two permissions")
	}
	for i, p := range l {
		if p != PermissionKeyUser && p != PermissionSecretUser {
			return invalid(FieldPermissions, fmt.Sprintf("%q is not a permission; use %s or %s", shorten(p), PermissionKeyUser, PermissionSecretUser))
		}
		if i > 0 && l[0] == p {
			return invalid(FieldPermissions, fmt.Sprintf("%q appears twice", p))
		}
	}
	return nil
}

// resourceKinds are the prefixes a permission policy's resource may have.
var resourceKinds = []string{"key/", "alias/", "secret/"}

// ParseResources reads a JSON array of resource patterns: key/<id or
// pattern>, alias/<name or pattern>, secret/<name or pattern>. Patterns are
// bounded as key policy patterns are (MaxPatternLength,
// MaxPatternWildcards) and matched with the same linear matcher.
func ParseResources(text string) ([]string, error) {
	l, err := parseJSONStrings(FieldResources, text, MaxResourcesPerPolicy)
	if err != nil {
		return nil, err
	}
	return l, checkResources(l)
}

func checkResources(l []string) error {
	if len(l) == 0 || len(l) > MaxResourcesPerPolicy {
		return invalid(FieldResources, fmt.Sprintf("name 1 to %d resources", MaxResourcesPerPolicy))
	}
	for _, r := range l {
		if err := checkResource(r); err != nil {
			return invalid(FieldResources, err.Error())
		}
	}
	return nil
}

func checkResource(r string) error {
	kind := ""
	for _, k := range resourceKinds {
		if strings.HasPrefix(r, k) {
			kind = k
		}
	}
	if kind == "" || len(r) == len(kind) {
		return fmt.Errorf("%q is not a resource: write key/<KeyId>, alias/<name>, secret/<name> (* and ? match any characters)", shorten(r))
	}
	for _, ch := range r {
		if !unicode.IsPrint(ch) || unicode.IsSpace(ch) {
			return fmt.Errorf("%q has a space or a control character", shorten(r))
		}
	}
	return checkPattern("resource", r)
}

// ParseAccessControlRules reads {"NetworkRules":["<rule name>", ...]}; an
// empty text means no rule (any source address).
func ParseAccessControlRules(text string) ([]string, error) {
	if strings.TrimSpace(text) == "" {
		return []string{}, nil
	}
	if len(text) > maxListDocument {
		return nil, invalid(FieldAccessControlRules, fmt.Sprintf("at most %d bytes", maxListDocument))
	}
	var doc struct {
		NetworkRules json.RawMessage `json:"NetworkRules"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return nil, invalid(FieldAccessControlRules, `must be a JSON object like {"NetworkRules":["rule-name"]}`)
	}
	if len(doc.NetworkRules) == 0 || bytes.Equal(doc.NetworkRules, []byte("null")) {
		return []string{}, nil
	}
	return ParseNameList(FieldAccessControlRules, string(doc.NetworkRules), MaxNetworkRulesPerPolicy)
}

func checkAAPDescription(d *string) error {
	if d == nil {
		return nil
	}
	return checkDescription(*d)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// lookupOwned finds an object of the caller's account, confirming a miss
// with the leader once (it may have been created through another node a
// moment ago).
func lookupOwned[T any](ctx context.Context, s *Service, lookup func() (*T, bool)) (*T, bool, error) {
	var v *T
	ok, err := s.found(ctx, func() bool {
		var hit bool
		v, hit = lookup()
		return hit
	})
	return v, ok, err
}

// proposeAndSpread proposes a write and, for one that can revoke access
// (an update or a deletion), waits until every reachable member has
// applied it.
func (s *Service) proposeAndSpread(ctx context.Context, t fsm.CommandType, body any, spread bool) (uint64, error) {
	idx, err := s.propose(ctx, t, body)
	if err != nil || !spread {
		return idx, err
	}
	return idx, s.waitEverywhere(ctx, idx)
}

// Network rules.

// CreateNetworkRule adds a network rule to the caller's account.
func (s *Service) CreateNetworkRule(ctx context.Context, c Caller, in NetworkRuleInput) (*fsm.NetworkRule, uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:CreateNetworkRule"); err != nil {
		return nil, 0, err
	}
	if err := checkName(FieldNetworkRuleName, in.Name); err != nil {
		return nil, 0, err
	}
	if in.Type == "" {
		return nil, 0, missing(FieldNetworkType)
	}
	if in.Type != NetworkTypePrivate {
		return nil, 0, invalid(FieldNetworkType, "must be Private")
	}
	if err := checkAAPDescription(in.Description); err != nil {
		return nil, 0, err
	}
	sources, err := canonicalSources(deref(in.SourcePrivateIP))
	if err != nil {
		return nil, 0, err
	}
	now := s.nowMillis()
	r := fsm.NetworkRule{AccountID: c.AccountID, Name: in.Name, Type: in.Type, Description: deref(in.Description),
		SourcePrivateIP: sources, CreatedAt: now, UpdatedAt: now}
	idx, err := s.propose(ctx, fsm.CmdCreateNetworkRule, fsm.NetworkRuleCmd{Now: now, Rule: r})
	if err != nil {
		return nil, idx, err
	}
	return &r, idx, nil
}

// DescribeNetworkRule returns one of the caller's network rules.
func (s *Service) DescribeNetworkRule(ctx context.Context, c Caller, name string) (*fsm.NetworkRule, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DescribeNetworkRule"); err != nil {
		return nil, err
	}
	return s.ownNetworkRule(ctx, c, name)
}

func (s *Service) ownNetworkRule(ctx context.Context, c Caller, name string) (*fsm.NetworkRule, error) {
	if err := checkName(FieldNetworkRuleName, name); err != nil {
		return nil, err
	}
	r, ok, err := lookupOwned(ctx, s, func() (*fsm.NetworkRule, bool) { return s.fsm.NetworkRule(c.AccountID, name) })
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrNetworkRuleNotFound, name)
	}
	return r, nil
}

// ListNetworkRules returns one page of the caller's network rules, by name.
func (s *Service) ListNetworkRules(ctx context.Context, c Caller, p Page) (Listing[*fsm.NetworkRule], error) {
	p, err := p.normalize()
	if err != nil {
		return Listing[*fsm.NetworkRule]{}, err
	}
	if err := s.authorizeAccount(ctx, c, "kms:ListNetworkRules"); err != nil {
		return Listing[*fsm.NetworkRule]{}, err
	}
	return listing(s.fsm.NetworkRules(c.AccountID), p), nil
}

// UpdateNetworkRule changes a network rule's addresses or description; it
// returns once every reachable member has applied the change.
func (s *Service) UpdateNetworkRule(ctx context.Context, c Caller, in NetworkRuleInput) (uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:UpdateNetworkRule"); err != nil {
		return 0, err
	}
	if err := checkName(FieldNetworkRuleName, in.Name); err != nil {
		return 0, err
	}
	if err := checkAAPDescription(in.Description); err != nil {
		return 0, err
	}
	sources, err := canonicalSources(deref(in.SourcePrivateIP))
	if err != nil {
		return 0, err
	}
	if _, err := s.ownNetworkRule(ctx, c, in.Name); err != nil {
		return 0, err
	}
	cmd := fsm.NetworkRuleCmd{Now: s.nowMillis(), Rule: fsm.NetworkRule{AccountID: c.AccountID, Name: in.Name,
		Description: deref(in.Description), SourcePrivateIP: sources},
		SetDescription: in.Description != nil, SetSources: in.SourcePrivateIP != nil}
	return s.proposeAndSpread(ctx, fsm.CmdUpdateNetworkRule, cmd, true)
}

// DeleteNetworkRule deletes a network rule no permission policy names.
func (s *Service) DeleteNetworkRule(ctx context.Context, c Caller, name string) (uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DeleteNetworkRule"); err != nil {
		return 0, err
	}
	if err := checkName(FieldNetworkRuleName, name); err != nil {
		return 0, err
	}
	cmd := fsm.NetworkRuleCmd{Now: s.nowMillis(), Rule: fsm.NetworkRule{AccountID: c.AccountID, Name: name}}
	return s.proposeAndSpread(ctx, fsm.CmdDeleteNetworkRule, cmd, true)
}

// Permission policies.

// checkNetworkRulesExist gives a clear field error for a network rule the
// caller's account does not have (Apply checks again).
func (s *Service) checkNetworkRulesExist(ctx context.Context, c Caller, names []string) error {
	for _, n := range names {
		_, ok, err := lookupOwned(ctx, s, func() (*fsm.NetworkRule, bool) { return s.fsm.NetworkRule(c.AccountID, n) })
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s (named in AccessControlRules)", fsm.ErrNetworkRuleNotFound, n)
		}
	}
	return nil
}

// CreatePolicy adds a permission policy on one of the caller's KMS
// instances.
func (s *Service) CreatePolicy(ctx context.Context, c Caller, in PermissionPolicyInput) (*fsm.PermissionPolicy, uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:CreatePolicy"); err != nil {
		return nil, 0, err
	}
	if err := checkName(FieldPermissionPolicyName, in.Name); err != nil {
		return nil, 0, err
	}
	if in.KmsInstance == "" {
		return nil, 0, missing(FieldPolicyInstance)
	}
	if in.Permissions == nil {
		return nil, 0, missing(FieldPermissions)
	}
	if in.Resources == nil {
		return nil, 0, missing(FieldResources)
	}
	if err := checkPolicyInput(in); err != nil {
		return nil, 0, err
	}
	if _, err := s.ownInstance(ctx, c, in.KmsInstance); err != nil {
		return nil, 0, err
	}
	rules := append([]string{}, deref(in.NetworkRules)...)
	if err := s.checkNetworkRulesExist(ctx, c, rules); err != nil {
		return nil, 0, err
	}
	now := s.nowMillis()
	p := fsm.PermissionPolicy{AccountID: c.AccountID, Name: in.Name, KmsInstance: in.KmsInstance,
		Description: deref(in.Description), Permissions: *in.Permissions, Resources: *in.Resources,
		NetworkRules: rules, CreatedAt: now, UpdatedAt: now}
	idx, err := s.propose(ctx, fsm.CmdCreatePermissionPolicy, fsm.PermissionPolicyCmd{Now: now, Policy: p})
	if err != nil {
		return nil, idx, err
	}
	return &p, idx, nil
}

// checkPolicyInput checks the lists and description a policy input gives.
func checkPolicyInput(in PermissionPolicyInput) error {
	if in.Permissions != nil {
		if err := checkPermissions(*in.Permissions); err != nil {
			return err
		}
	}
	if in.Resources != nil {
		if err := checkResources(*in.Resources); err != nil {
			return err
		}
	}
	if in.NetworkRules != nil {
		if err := checkNames(FieldAccessControlRules, *in.NetworkRules, MaxNetworkRulesPerPolicy); err != nil {
			return err
		}
	}
	return checkAAPDescription(in.Description)
}

// ownInstance finds one of the caller's KMS instances (another account's
// answers not found).
func (s *Service) ownInstance(ctx context.Context, c Caller, id string) (*fsm.Instance, error) {
	inst, ok, err := lookupOwned(ctx, s, func() (*fsm.Instance, bool) {
		in, hit := s.fsm.Instance(id)
		return in, hit && in.AccountID == c.AccountID
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrInstanceNotFound, id)
	}
	return inst, nil
}

// DescribePolicy returns one of the caller's permission policies.
func (s *Service) DescribePolicy(ctx context.Context, c Caller, name string) (*fsm.PermissionPolicy, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DescribePolicy"); err != nil {
		return nil, err
	}
	return s.ownPolicy(ctx, c, name)
}

func (s *Service) ownPolicy(ctx context.Context, c Caller, name string) (*fsm.PermissionPolicy, error) {
	if err := checkName(FieldPermissionPolicyName, name); err != nil {
		return nil, err
	}
	p, ok, err := lookupOwned(ctx, s, func() (*fsm.PermissionPolicy, bool) { return s.fsm.PermissionPolicy(c.AccountID, name) })
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrPermissionPolicyNotFound, name)
	}
	return p, nil
}

// ListPolicies returns one page of the caller's permission policies.
func (s *Service) ListPolicies(ctx context.Context, c Caller, p Page) (Listing[*fsm.PermissionPolicy], error) {
	p, err := p.normalize()
	if err != nil {
		return Listing[*fsm.PermissionPolicy]{}, err
	}
	if err := s.authorizeAccount(ctx, c, "kms:ListPolicies"); err != nil {
		return Listing[*fsm.PermissionPolicy]{}, err
	}
	return listing(s.fsm.PermissionPolicies(c.AccountID), p), nil
}

// UpdatePolicy changes a permission policy; it returns once every
// reachable member has applied the change.
func (s *Service) UpdatePolicy(ctx context.Context, c Caller, in PermissionPolicyInput) (uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:UpdatePolicy"); err != nil {
		return 0, err
	}
	if err := checkName(FieldPermissionPolicyName, in.Name); err != nil {
		return 0, err
	}
	if err := checkPolicyInput(in); err != nil {
		return 0, err
	}
	if _, err := s.ownPolicy(ctx, c, in.Name); err != nil {
		return 0, err
	}
	if err := s.checkNetworkRulesExist(ctx, c, deref(in.NetworkRules)); err != nil {
		return 0, err
	}
	cmd := fsm.PermissionPolicyCmd{Now: s.nowMillis(),
		Policy: fsm.PermissionPolicy{AccountID: c.AccountID, Name: in.Name, Description: deref(in.Description),
			Permissions: deref(in.Permissions), Resources: deref(in.Resources), NetworkRules: deref(in.NetworkRules)},
		SetDescription: in.Description != nil, SetPermissions: in.Permissions != nil,
		SetResources: in.Resources != nil, SetAccessControls: in.NetworkRules != nil}
	return s.proposeAndSpread(ctx, fsm.CmdUpdatePermissionPolicy, cmd, true)
}

// DeletePolicy deletes a permission policy no AAP names.
func (s *Service) DeletePolicy(ctx context.Context, c Caller, name string) (uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DeletePolicy"); err != nil {
		return 0, err
	}
	if err := checkName(FieldPermissionPolicyName, name); err != nil {
		return 0, err
	}
	cmd := fsm.PermissionPolicyCmd{Now: s.nowMillis(), Policy: fsm.PermissionPolicy{AccountID: c.AccountID, Name: name}}
	return s.proposeAndSpread(ctx, fsm.CmdDeletePermissionPolicy, cmd, true)
}

// Application access points.

func (s *Service) checkPoliciesExist(ctx context.Context, c Caller, names []string) error {
	for _, n := range names {
		_, ok, err := lookupOwned(ctx, s, func() (*fsm.PermissionPolicy, bool) { return s.fsm.PermissionPolicy(c.AccountID, n) })
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s (named in Policies)", fsm.ErrPermissionPolicyNotFound, n)
		}
	}
	return nil
}

func checkAAPPolicies(l []string) error {
	if len(l) == 0 {
		return invalid(FieldAccessPointPolicies, "name at least one permission policy")
	}
	return checkNames(FieldAccessPointPolicies, l, fsm.MaxPoliciesPerAAP)
}

// CreateApplicationAccessPoint adds an AAP naming 1 to 3 permission
// policies.
func (s *Service) CreateApplicationAccessPoint(ctx context.Context, c Caller, in AAPInput) (*fsm.AAP, uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:CreateApplicationAccessPoint"); err != nil {
		return nil, 0, err
	}
	if err := checkName(FieldAccessPointName, in.Name); err != nil {
		return nil, 0, err
	}
	method := in.AuthenticationMethod
	if method == "" {
		method = AuthenticationClientKey
	}
	if method != AuthenticationClientKey {
		return nil, 0, invalid(FieldAuthenticationMethod, "must be ClientKey")
	}
	if in.Policies == nil {
		return nil, 0, missing(FieldAccessPointPolicies)
	}
	if err := checkAAPPolicies(*in.Policies); err != nil {
		return nil, 0, err
	}
	if err := checkAAPDescription(in.Description); err != nil {
		return nil, 0, err
	}
	if err := s.checkPoliciesExist(ctx, c, *in.Policies); err != nil {
		return nil, 0, err
	}
	now := s.nowMillis()
	a := fsm.AAP{AccountID: c.AccountID, Name: in.Name, AuthenticationMethod: method,
		Description: deref(in.Description), Policies: *in.Policies, CreatedAt: now, UpdatedAt: now}
	idx, err := s.propose(ctx, fsm.CmdCreateAAP, fsm.AAPCmd{Now: now, AAP: a})
	if err != nil {
		return nil, idx, err
	}
	return &a, idx, nil
}

// DescribeApplicationAccessPoint returns one of the caller's AAPs.
func (s *Service) DescribeApplicationAccessPoint(ctx context.Context, c Caller, name string) (*fsm.AAP, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DescribeApplicationAccessPoint"); err != nil {
		return nil, err
	}
	return s.ownAAP(ctx, c, FieldAccessPointName, name)
}

func (s *Service) ownAAP(ctx context.Context, c Caller, field Field, name string) (*fsm.AAP, error) {
	if err := checkName(field, name); err != nil {
		return nil, err
	}
	a, ok, err := lookupOwned(ctx, s, func() (*fsm.AAP, bool) { return s.fsm.AAP(c.AccountID, name) })
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrAAPNotFound, name)
	}
	return a, nil
}

// ListApplicationAccessPoints returns one page of the caller's AAPs.
func (s *Service) ListApplicationAccessPoints(ctx context.Context, c Caller, p Page) (Listing[*fsm.AAP], error) {
	p, err := p.normalize()
	if err != nil {
		return Listing[*fsm.AAP]{}, err
	}
	if err := s.authorizeAccount(ctx, c, "kms:ListApplicationAccessPoints"); err != nil {
		return Listing[*fsm.AAP]{}, err
	}
	return listing(s.fsm.AAPs(c.AccountID), p), nil
}

// UpdateApplicationAccessPoint changes an AAP's policies or description;
// it returns once every reachable member has applied the change.
func (s *Service) UpdateApplicationAccessPoint(ctx context.Context, c Caller, in AAPInput) (uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:UpdateApplicationAccessPoint"); err != nil {
		return 0, err
	}
	if err := checkAAPDescription(in.Description); err != nil {
		return 0, err
	}
	if in.Policies != nil {
		if err := checkAAPPolicies(*in.Policies); err != nil {
			return 0, err
		}
	}
	if _, err := s.ownAAP(ctx, c, FieldAccessPointName, in.Name); err != nil {
		return 0, err
	}
	if err := s.checkPoliciesExist(ctx, c, deref(in.Policies)); err != nil {
		return 0, err
	}
	cmd := fsm.AAPCmd{Now: s.nowMillis(),
		AAP:            fsm.AAP{AccountID: c.AccountID, Name: in.Name, Description: deref(in.Description), Policies: deref(in.Policies)},
		SetDescription: in.Description != nil, SetPolicies: in.Policies != nil}
	return s.proposeAndSpread(ctx, fsm.CmdUpdateAAP, cmd, true)
}

// DeleteApplicationAccessPoint deletes an AAP that has no client keys.
func (s *Service) DeleteApplicationAccessPoint(ctx context.Context, c Caller, name string) (uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DeleteApplicationAccessPoint"); err != nil {
		return 0, err
	}
	if err := checkName(FieldAccessPointName, name); err != nil {
		return 0, err
	}
	cmd := fsm.AAPCmd{Now: s.nowMillis(), AAP: fsm.AAP{AccountID: c.AccountID, Name: name}}
	return s.proposeAndSpread(ctx, fsm.CmdDeleteAAP, cmd, true)
}

// Client keys.

// CheckClientKeyPassword applies the reference's rule: 8 to 64 printable
// ASCII characters of at least two kinds (upper case, lower case, digits,
// others).
func CheckClientKeyPassword(pw string) error {
	if pw == "" {
		return missing(FieldPassword)
	}
	if len(pw) < 8 || len(pw) > 64 {
		return invalid(FieldPassword, "8 to 64 characters")
	}
	var upper, lower, digit, other bool
	for _, ch := range pw {
		switch {
		case ch < 0x20 || ch > 0x7e:
			return invalid(FieldPassword, "printable ASCII characters only")
		case ch >= 'A' && ch <= 'Z':
			upper = true
		case ch >= 'a' && ch <= 'z':
			lower = true
		case ch >= '0' && ch <= '9':
			digit = true
		default:
			other = true
		}
	}
	kinds := 0
	for _, k := range []bool{upper, lower, digit, other} {
		if k {
			kinds++
		}
	}
	if kinds < 2 {
		return invalid(FieldPassword, "at least two of: upper case letters, lower case letters, digits, other characters")
	}
	return nil
}

// CreateClientKey makes a client key for one of the caller's AAPs. The RSA
// key is generated here, on the receiving node; its private part is
// returned once, inside a PKCS#12 under the caller's password, and never
// stored or logged. The catalogue keeps the public key and a self-signed
// certificate whose subject names the ClientKeyId.
func (s *Service) CreateClientKey(ctx context.Context, c Caller, in ClientKeyInput) (NewClientKey, error) {
	if err := s.authorizeAccount(ctx, c, "kms:CreateClientKey"); err != nil {
		return NewClientKey{}, err
	}
	if err := checkName(FieldClientKeyAAP, in.AAPName); err != nil {
		return NewClientKey{}, err
	}
	if err := CheckClientKeyPassword(in.Password); err != nil {
		return NewClientKey{}, err
	}
	now := s.now()
	notBefore, notAfter := in.NotBefore, in.NotAfter
	if notBefore.IsZero() {
		notBefore = now
	}
	if notAfter.IsZero() {
		notAfter = notBefore.Add(DefaultClientKeyValidity)
	}
	// Certificates carry seconds; so does the record.
	notBefore, notAfter = notBefore.UTC().Truncate(time.Second), notAfter.UTC().Truncate(time.Second)
	if !notAfter.After(notBefore) {
		return NewClientKey{}, invalid(FieldNotAfter, "must be after NotBefore")
	}
	if !notAfter.After(now) {
		return NewClientKey{}, invalid(FieldNotAfter, "must be in the future")
	}
	if notAfter.Year() > 9999 || notBefore.Year() < 1950 {
		return NewClientKey{}, invalid(FieldNotAfter, "must be between 1950 and 9999")
	}
	if _, err := s.ownAAP(ctx, c, FieldClientKeyAAP, in.AAPName); err != nil {
		return NewClientKey{}, err
	}
	id := ClientKeyPrefix + uuid.NewString()
	priv, err := rsa.GenerateKey(rand.Reader, clientKeyBits)
	if err != nil {
		return NewClientKey{}, fmt.Errorf("client key: %w", err)
	}
	cert, err := clientKeyCertificate(id, priv, notBefore, notAfter)
	if err != nil {
		return NewClientKey{}, err
	}
	pfx, err := pkcs12.LegacyDES.Encode(priv, cert, nil, in.Password)
	if err != nil {
		return NewClientKey{}, fmt.Errorf("client key: encoding the PKCS#12: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return NewClientKey{}, fmt.Errorf("client key: %w", err)
	}
	ck := fsm.ClientKey{ID: id, AccountID: c.AccountID, AAPName: in.AAPName, KeyAlgorithm: ClientKeyAlgorithm,
		KeyOrigin: ClientKeyOrigin, PublicKey: pub, Certificate: cert.Raw,
		NotBefore: notBefore.UnixMilli(), NotAfter: notAfter.UnixMilli(), CreatedAt: now.UnixMilli()}
	idx, err := s.propose(ctx, fsm.CmdCreateClientKey, fsm.ClientKeyCmd{Now: ck.CreatedAt, Key: ck})
	if err != nil {
		return NewClientKey{}, err
	}
	return NewClientKey{Key: &ck, PrivateKeyData: pfx, Index: idx}, nil
}

// clientKeyCertificate is the client key's certificate, self-signed: the
// instance face authenticates a request by its signature under the stored
// public key, so the certificate only carries the key (the SDK presents it
// as its TLS client certificate). Its subject's CommonName is the
// ClientKeyId.
func clientKeyCertificate(id string, priv *rsa.PrivateKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("client key: certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// GetClientKey returns one of the caller's client keys (public part).
func (s *Service) GetClientKey(ctx context.Context, c Caller, id string) (*fsm.ClientKey, error) {
	if err := s.authorizeAccount(ctx, c, "kms:GetClientKey"); err != nil {
		return nil, err
	}
	return s.ownClientKey(ctx, c, id)
}

func (s *Service) ownClientKey(ctx context.Context, c Caller, id string) (*fsm.ClientKey, error) {
	if id == "" {
		return nil, missing(FieldClientKeyID)
	}
	if len(id) > 128 {
		return nil, invalid(FieldClientKeyID, "at most 128 characters")
	}
	k, ok, err := lookupOwned(ctx, s, func() (*fsm.ClientKey, bool) {
		k, hit := s.fsm.ClientKey(id)
		return k, hit && k.AccountID == c.AccountID
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsm.ErrClientKeyNotFound, id)
	}
	return k, nil
}

// ListClientKeys returns the caller's client keys, of one AAP when aapName
// is not empty.
func (s *Service) ListClientKeys(ctx context.Context, c Caller, aapName string) ([]*fsm.ClientKey, error) {
	if err := s.authorizeAccount(ctx, c, "kms:ListClientKeys"); err != nil {
		return nil, err
	}
	if aapName != "" {
		if _, err := s.ownAAP(ctx, c, FieldClientKeyAAP, aapName); err != nil {
			return nil, err
		}
	}
	return s.fsm.ClientKeys(c.AccountID, aapName), nil
}

// DeleteClientKey deletes a client key; it returns once every reachable
// member has applied the deletion, so the key authenticates nothing
// anywhere after that.
func (s *Service) DeleteClientKey(ctx context.Context, c Caller, id string) (uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DeleteClientKey"); err != nil {
		return 0, err
	}
	if _, err := s.ownClientKey(ctx, c, id); err != nil {
		return 0, err
	}
	cmd := fsm.ClientKeyCmd{Now: s.nowMillis(), Key: fsm.ClientKey{ID: id, AccountID: c.AccountID}}
	return s.proposeAndSpread(ctx, fsm.CmdDeleteClientKey, cmd, true)
}

// ClientKeyAccess is what a client key may do, resolved from this node's
// catalogue: the instance face authenticates a request with PublicKey and
// authorizes it against Policies.
type ClientKeyAccess struct {
	ID        string
	AccountID string
	AAPName   string
	PublicKey *rsa.PublicKey
	// Certificate is the DER certificate issued with the key.
	Certificate []byte
	NotBefore   time.Time
	NotAfter    time.Time
	Policies    []ClientKeyPolicy
}

// ClientKeyPolicy is one permission policy of the key's AAP.
type ClientKeyPolicy struct {
	Name        string
	KmsInstance string   // the instance the policy covers
	Permissions []string // PermissionKeyUser, PermissionSecretUser
	Resources   []string // patterns: key/..., alias/..., secret/... (matchGlob)
	// Restricted says the policy names network rules: a request must then
	// come from one of Sources (an empty Sources allows no address).
	// Unrestricted policies allow any source address.
	Restricted bool
	Sources    []netip.Prefix
}

// ErrClientKeyUnknown is the one answer for a client key the instance face
// cannot use: missing, deleted, or whose AAP is gone. It says nothing more,
// so a probe learns nothing about which ids exist.
var ErrClientKeyUnknown = errors.New("the client key does not exist")

// ClientKey resolves a client key for the instance face: its public key,
// validity, AAP, and the AAP's policies with their network rules' sources,
// all read from this node's catalogue. The node must be fresh (the same
// freshness lease that guards access-key authentication), so a deletion or
// a change is seen within MaxStaleness even on a node cut off from the
// leader; a miss is confirmed once with the leader (a key created a moment
// ago through another node). It does not check NotBefore/NotAfter or match
// anything: the caller decides with the request's time, resource,
// permission and source address. A policy the AAP names but that is gone
// (never, while Apply refuses such deletions) is left out.
func (s *Service) ClientKey(ctx context.Context, id string) (*ClientKeyAccess, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	if id == "" || len(id) > 128 {
		return nil, fmt.Errorf("%w: %q", ErrClientKeyUnknown, shorten(id))
	}
	k, ok := s.fsm.ClientKey(id)
	if !ok {
		if err := s.confirmAbsent(ctx, "the client key"); err != nil {
			return nil, err
		}
		k, ok = s.fsm.ClientKey(id)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrClientKeyUnknown, id)
	}
	aap, ok := s.fsm.AAP(k.AccountID, k.AAPName)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrClientKeyUnknown, id)
	}
	rsaPub, err := clientKeyPublics.get(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("client key %s: %w", id, err)
	}
	out := &ClientKeyAccess{ID: k.ID, AccountID: k.AccountID, AAPName: k.AAPName, PublicKey: rsaPub,
		Certificate: k.Certificate, NotBefore: time.UnixMilli(k.NotBefore), NotAfter: time.UnixMilli(k.NotAfter)}
	for _, name := range aap.Policies {
		p, ok := s.fsm.PermissionPolicy(k.AccountID, name)
		if !ok {
			continue
		}
		cp := ClientKeyPolicy{Name: p.Name, KmsInstance: p.KmsInstance, Permissions: append([]string(nil), p.Permissions...),
			Resources: append([]string(nil), p.Resources...), Restricted: len(p.NetworkRules) > 0}
		for _, rn := range p.NetworkRules {
			r, ok := s.fsm.NetworkRule(k.AccountID, rn)
			if !ok {
				continue
			}
			for _, src := range r.SourcePrivateIP {
				if pfx, ok := SourcePrefix(src); ok {
					cp.Sources = append(cp.Sources, pfx)
				}
			}
		}
		out.Policies = append(out.Policies, cp)
	}
	return out, nil
}

// clientKeyPublics is the stored client public keys, parsed: the instance
// API looks a client key up on every request, and parsing its DER (ASN.1,
// big integers) each time was avoidable work. A stored key never changes
// (client keys are made and deleted, not edited), so the memo is keyed by
// the DER itself and shared by every Service of the process; the keys are
// read-only after parsing. Past clientKeyPublicsMax it starts over.
var clientKeyPublics = publicKeyCache{m: map[string]*rsa.PublicKey{}}

const clientKeyPublicsMax = 4096

type publicKeyCache struct {
	mu sync.RWMutex
	m  map[string]*rsa.PublicKey
}

func (pc *publicKeyCache) get(der []byte) (*rsa.PublicKey, error) {
	pc.mu.RLock()
	pub, ok := pc.m[string(der)]
	pc.mu.RUnlock()
	if ok {
		return pub, nil
	}
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("stored public key: %w", err)
	}
	pub, ok = parsed.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("stored public key is not RSA")
	}
	pc.mu.Lock()
	if len(pc.m) >= clientKeyPublicsMax {
		pc.m = make(map[string]*rsa.PublicKey, clientKeyPublicsMax)
	}
	pc.m[string(der)] = pub
	pc.mu.Unlock()
	return pub, nil
}
