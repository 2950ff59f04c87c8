package fsm

import (
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/hashicorp/raft"
)

// Application access: how applications reach keys through a KMS instance's
// own API (the instance face) rather than with access keys.
//
//   - A NetworkRule lists the private addresses and CIDR blocks a request
//     may come from.
//   - A PermissionPolicy grants permission templates (key user, secret
//     user) on resources (key/..., alias/..., secret/...) of one KMS
//     instance, optionally only from the addresses of some network rules.
//   - An AAP (application access point) names up to MaxPoliciesPerAAP
//     permission policies.
//   - A ClientKey authenticates an application as one AAP. The cluster
//     keeps only its public key and certificate; the private key was handed
//     to the caller once, by the node that generated it.
//
// Every object belongs to an account; names are unique per account. Apply
// checks what concurrent proposals could both pass on the proposer side:
// existence, references between the objects (a policy's instance and
// network rules, an AAP's policies, a client key's AAP), deletions of
// objects still referenced, and the per-account counts. Shapes (name
// syntax, JSON, addresses, patterns) are the proposer's (kms) checks.

// Limits on application access objects, checked in Apply.
const (
	MaxNetworkRulesPerAccount = 100
	MaxPoliciesPerAccount     = 100
	MaxAAPsPerAccount         = 100
	MaxPoliciesPerAAP         = 3
	MaxClientKeysPerAAP       = 10
)

// Errors of application access objects.
var (
	ErrNetworkRuleNotFound      = errors.New("network rule not found")
	ErrNetworkRuleExists        = errors.New("a network rule with that name already exists")
	ErrPermissionPolicyNotFound = errors.New("permission policy not found")
	ErrPermissionPolicyExists   = errors.New("a permission policy with that name already exists")
	ErrAAPNotFound              = errors.New("application access point not found")
	ErrAAPExists                = errors.New("an application access point with that name already exists")
	ErrClientKeyNotFound        = errors.New("client key not found")
	ErrClientKeyExists          = errors.New("client key id already exists")
	// ErrResourceInUse refuses the deletion of an object another one still
	// names (a network rule in a policy, a policy in an AAP, an AAP with
	// client keys).
	ErrResourceInUse = errors.New("the resource is still in use")
	// ErrAAPLimitExceeded refuses an object beyond the limits above.
	ErrAAPLimitExceeded = errors.New("the limit on application access objects is reached")
)

// NetworkRule lists the source addresses a permission policy may allow.
type NetworkRule struct {
	AccountID   string `msgpack:"acct"`
	Name        string `msgpack:"name"`
	Type        string `msgpack:"type"` // Private
	Description string `msgpack:"desc"`
	// SourcePrivateIP holds addresses and CIDR blocks in canonical form
	// (netip), in the order given.
	SourcePrivateIP []string `msgpack:"ips"`
	CreatedAt       int64    `msgpack:"ct"`
	UpdatedAt       int64    `msgpack:"ut"`
	ModifyIndex     uint64   `msgpack:"mi"`
}

// PermissionPolicy grants permission templates on resources of one KMS
// instance.
type PermissionPolicy struct {
	AccountID   string   `msgpack:"acct"`
	Name        string   `msgpack:"name"`
	KmsInstance string   `msgpack:"inst"`
	Description string   `msgpack:"desc"`
	Permissions []string `msgpack:"perms"` // RbacPermission/Template/...
	Resources   []string `msgpack:"res"`   // key/*, key/<id>, alias/<name>, secret/*, ...
	// NetworkRules names the account's network rules whose addresses the
	// request must come from; empty: any address.
	NetworkRules []string `msgpack:"rules"`
	CreatedAt    int64    `msgpack:"ct"`
	UpdatedAt    int64    `msgpack:"ut"`
	ModifyIndex  uint64   `msgpack:"mi"`
}

// AAP is an application access point.
type AAP struct {
	AccountID            string   `msgpack:"acct"`
	Name                 string   `msgpack:"name"`
	AuthenticationMethod string   `msgpack:"auth"` // ClientKey
	Description          string   `msgpack:"desc"`
	Policies             []string `msgpack:"policies"` // permission policy names
	CreatedAt            int64    `msgpack:"ct"`
	UpdatedAt            int64    `msgpack:"ut"`
	ModifyIndex          uint64   `msgpack:"mi"`
}

// ClientKey authenticates an application as an AAP. Only public material
// is stored.
type ClientKey struct {
	ID           string `msgpack:"id"` // KAAP.<uuid>
	AccountID    string `msgpack:"acct"`
	AAPName      string `msgpack:"aap"`
	KeyAlgorithm string `msgpack:"alg"` // RSA_2048
	KeyOrigin    string `msgpack:"origin"`
	PublicKey    []byte `msgpack:"pub"`  // DER SubjectPublicKeyInfo
	Certificate  []byte `msgpack:"cert"` // DER X.509, subject names ID
	NotBefore    int64  `msgpack:"nb"`   // Unix ms
	NotAfter     int64  `msgpack:"na"`   // Unix ms
	CreatedAt    int64  `msgpack:"ct"`
	ModifyIndex  uint64 `msgpack:"mi"`
}

// Commands of application access objects (types 36–46).

// NetworkRuleCmd creates (Rule set), updates (Rule's AccountID and Name
// name it; Description and SourcePrivateIP apply when their Set flag is
// true) or deletes (AccountID and Name) a network rule.
type NetworkRuleCmd struct {
	Now            int64       `msgpack:"now"`
	Rule           NetworkRule `msgpack:"rule"`
	SetDescription bool        `msgpack:"setdesc,omitempty"`
	SetSources     bool        `msgpack:"setips,omitempty"`
}

// PermissionPolicyCmd creates, updates (the Set flags say which fields
// apply) or deletes (AccountID and Name) a permission policy.
type PermissionPolicyCmd struct {
	Now               int64            `msgpack:"now"`
	Policy            PermissionPolicy `msgpack:"policy"`
	SetDescription    bool             `msgpack:"setdesc,omitempty"`
	SetPermissions    bool             `msgpack:"setperms,omitempty"`
	SetResources      bool             `msgpack:"setres,omitempty"`
	SetAccessControls bool             `msgpack:"setacl,omitempty"`
}

// AAPCmd creates, updates (the Set flags say which fields apply) or
// deletes (AccountID and Name) an application access point.
type AAPCmd struct {
	Now            int64 `msgpack:"now"`
	AAP            AAP   `msgpack:"aap"`
	SetDescription bool  `msgpack:"setdesc,omitempty"`
	SetPolicies    bool  `msgpack:"setpolicies,omitempty"`
}

// ClientKeyCmd creates (Key set) or deletes (AccountID and ID) a client key.
type ClientKeyCmd struct {
	Now int64     `msgpack:"now"`
	Key ClientKey `msgpack:"key"`
}

// aapState is the catalogue's part for application access. Maps by
// objectKey(account, name), client keys by id.
type aapState struct {
	rules      map[string]*NetworkRule
	policies   map[string]*PermissionPolicy
	aaps       map[string]*AAP
	clientKeys map[string]*ClientKey
}

func newAAPState() *aapState {
	return &aapState{
		rules:      map[string]*NetworkRule{},
		policies:   map[string]*PermissionPolicy{},
		aaps:       map[string]*AAP{},
		clientKeys: map[string]*ClientKey{},
	}
}

func objectKey(accountID, name string) string { return accountID + "\x00" + name }

// copyMap is a copy of m's entries (never nil).
func copyMap[T any](m map[string]*T) map[string]*T {
	if m == nil {
		return map[string]*T{}
	}
	return maps.Clone(m)
}

func (s *aapState) shallowCopy() *aapState {
	return &aapState{
		rules:      copyMap(s.rules),
		policies:   copyMap(s.policies),
		aaps:       copyMap(s.aaps),
		clientKeys: copyMap(s.clientKeys),
	}
}

func countAccount[T any](m map[string]*T, acct func(*T) string, accountID string) int {
	n := 0
	for _, v := range m {
		if acct(v) == accountID {
			n++
		}
	}
	return n
}

// Network rules.

func (c *catalogue) applyCreateNetworkRule(cmd *NetworkRuleCmd, index uint64) error {
	r := cmd.Rule
	if _, ok := c.accounts[r.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, r.AccountID)
	}
	k := objectKey(r.AccountID, r.Name)
	if _, ok := c.aap.rules[k]; ok {
		return fmt.Errorf("%w: %s", ErrNetworkRuleExists, r.Name)
	}
	if n := countAccount(c.aap.rules, func(x *NetworkRule) string { return x.AccountID }, r.AccountID); n >= MaxNetworkRulesPerAccount {
		return fmt.Errorf("%w: an account may have at most %d network rules", ErrAAPLimitExceeded, MaxNetworkRulesPerAccount)
	}
	r.SourcePrivateIP = append([]string(nil), r.SourcePrivateIP...)
	r.CreatedAt, r.UpdatedAt, r.ModifyIndex = cmd.Now, cmd.Now, index
	c.aap.rules[k] = &r
	return nil
}

func (c *catalogue) applyUpdateNetworkRule(cmd *NetworkRuleCmd, index uint64) error {
	k := objectKey(cmd.Rule.AccountID, cmd.Rule.Name)
	old, ok := c.aap.rules[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNetworkRuleNotFound, cmd.Rule.Name)
	}
	n := *old
	if cmd.SetDescription {
		n.Description = cmd.Rule.Description
	}
	if cmd.SetSources {
		n.SourcePrivateIP = append([]string(nil), cmd.Rule.SourcePrivateIP...)
	}
	n.UpdatedAt, n.ModifyIndex = cmd.Now, index
	c.aap.rules[k] = &n
	return nil
}

func (c *catalogue) applyDeleteNetworkRule(cmd *NetworkRuleCmd) error {
	acct, name := cmd.Rule.AccountID, cmd.Rule.Name
	k := objectKey(acct, name)
	if _, ok := c.aap.rules[k]; !ok {
		return fmt.Errorf("%w: %s", ErrNetworkRuleNotFound, name)
	}
	for _, id := range sortedIDs(c.aap.policies) {
		p := c.aap.policies[id]
		if p.AccountID == acct && containsString(p.NetworkRules, name) {
			return fmt.Errorf("%w: permission policy %s names network rule %s; update the policy first (UpdatePolicy)", ErrResourceInUse, p.Name, name)
		}
	}
	if inst := c.instanceBinding(acct, name); inst != "" {
		return fmt.Errorf("%w: KMS instance %s is bound to network rule %s; unbind it first (UpdateKmsInstanceBindVpc)", ErrResourceInUse, inst, name)
	}
	delete(c.aap.rules, k)
	return nil
}

// Permission policies.

// checkPolicyRefs checks that a policy's instance and network rules exist
// in its account.
func (c *catalogue) checkPolicyRefs(p *PermissionPolicy) error {
	if inst, ok := c.instances[p.KmsInstance]; !ok || inst.AccountID != p.AccountID {
		return fmt.Errorf("%w: %s", ErrInstanceNotFound, p.KmsInstance)
	}
	for _, r := range p.NetworkRules {
		if _, ok := c.aap.rules[objectKey(p.AccountID, r)]; !ok {
			return fmt.Errorf("%w: %s", ErrNetworkRuleNotFound, r)
		}
	}
	return nil
}

func (c *catalogue) applyCreatePermissionPolicy(cmd *PermissionPolicyCmd, index uint64) error {
	p := cmd.Policy
	if _, ok := c.accounts[p.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, p.AccountID)
	}
	k := objectKey(p.AccountID, p.Name)
	if _, ok := c.aap.policies[k]; ok {
		return fmt.Errorf("%w: %s", ErrPermissionPolicyExists, p.Name)
	}
	if err := c.checkPolicyRefs(&p); err != nil {
		return err
	}
	if n := countAccount(c.aap.policies, func(x *PermissionPolicy) string { return x.AccountID }, p.AccountID); n >= MaxPoliciesPerAccount {
		return fmt.Errorf("%w: an account may have at most %d permission policies", ErrAAPLimitExceeded, MaxPoliciesPerAccount)
	}
	p.Permissions = append([]string(nil), p.Permissions...)
	p.Resources = append([]string(nil), p.Resources...)
	p.NetworkRules = append([]string(nil), p.NetworkRules...)
	p.CreatedAt, p.UpdatedAt, p.ModifyIndex = cmd.Now, cmd.Now, index
	c.aap.policies[k] = &p
	return nil
}

func (c *catalogue) applyUpdatePermissionPolicy(cmd *PermissionPolicyCmd, index uint64) error {
	k := objectKey(cmd.Policy.AccountID, cmd.Policy.Name)
	old, ok := c.aap.policies[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrPermissionPolicyNotFound, cmd.Policy.Name)
	}
	n := *old
	if cmd.SetDescription {
		n.Description = cmd.Policy.Description
	}
	if cmd.SetPermissions {
		n.Permissions = append([]string(nil), cmd.Policy.Permissions...)
	}
	if cmd.SetResources {
		n.Resources = append([]string(nil), cmd.Policy.Resources...)
	}
	if cmd.SetAccessControls {
		n.NetworkRules = append([]string(nil), cmd.Policy.NetworkRules...)
	}
	if err := c.checkPolicyRefs(&n); err != nil {
		return err
	}
	n.UpdatedAt, n.ModifyIndex = cmd.Now, index
	c.aap.policies[k] = &n
	return nil
}

func (c *catalogue) applyDeletePermissionPolicy(cmd *PermissionPolicyCmd) error {
	acct, name := cmd.Policy.AccountID, cmd.Policy.Name
	k := objectKey(acct, name)
	if _, ok := c.aap.policies[k]; !ok {
		return fmt.Errorf("%w: %s", ErrPermissionPolicyNotFound, name)
	}
	for _, id := range sortedIDs(c.aap.aaps) {
		a := c.aap.aaps[id]
		if a.AccountID == acct && containsString(a.Policies, name) {
			return fmt.Errorf("%w: application access point %s names permission policy %s; update it first (UpdateApplicationAccessPoint)", ErrResourceInUse, a.Name, name)
		}
	}
	delete(c.aap.policies, k)
	return nil
}

// Application access points.

func (c *catalogue) checkAAPRefs(a *AAP) error {
	if len(a.Policies) > MaxPoliciesPerAAP {
		return fmt.Errorf("%w: an application access point names at most %d permission policies", ErrAAPLimitExceeded, MaxPoliciesPerAAP)
	}
	for _, p := range a.Policies {
		if _, ok := c.aap.policies[objectKey(a.AccountID, p)]; !ok {
			return fmt.Errorf("%w: %s", ErrPermissionPolicyNotFound, p)
		}
	}
	return nil
}

func (c *catalogue) applyCreateAAP(cmd *AAPCmd, index uint64) error {
	a := cmd.AAP
	if _, ok := c.accounts[a.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, a.AccountID)
	}
	k := objectKey(a.AccountID, a.Name)
	if _, ok := c.aap.aaps[k]; ok {
		return fmt.Errorf("%w: %s", ErrAAPExists, a.Name)
	}
	if err := c.checkAAPRefs(&a); err != nil {
		return err
	}
	if n := countAccount(c.aap.aaps, func(x *AAP) string { return x.AccountID }, a.AccountID); n >= MaxAAPsPerAccount {
		return fmt.Errorf("%w: an account may have at most %d application access points", ErrAAPLimitExceeded, MaxAAPsPerAccount)
	}
	a.Policies = append([]string(nil), a.Policies...)
	a.CreatedAt, a.UpdatedAt, a.ModifyIndex = cmd.Now, cmd.Now, index
	c.aap.aaps[k] = &a
	return nil
}

func (c *catalogue) applyUpdateAAP(cmd *AAPCmd, index uint64) error {
	k := objectKey(cmd.AAP.AccountID, cmd.AAP.Name)
	old, ok := c.aap.aaps[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrAAPNotFound, cmd.AAP.Name)
	}
	n := *old
	if cmd.SetDescription {
		n.Description = cmd.AAP.Description
	}
	if cmd.SetPolicies {
		n.Policies = append([]string(nil), cmd.AAP.Policies...)
	}
	if err := c.checkAAPRefs(&n); err != nil {
		return err
	}
	n.UpdatedAt, n.ModifyIndex = cmd.Now, index
	c.aap.aaps[k] = &n
	return nil
}

func (c *catalogue) applyDeleteAAP(cmd *AAPCmd) error {
	acct, name := cmd.AAP.AccountID, cmd.AAP.Name
	k := objectKey(acct, name)
	if _, ok := c.aap.aaps[k]; !ok {
		return fmt.Errorf("%w: %s", ErrAAPNotFound, name)
	}
	for _, id := range sortedIDs(c.aap.clientKeys) {
		ck := c.aap.clientKeys[id]
		if ck.AccountID == acct && ck.AAPName == name {
			return fmt.Errorf("%w: application access point %s has client key %s; delete it first (DeleteClientKey)", ErrResourceInUse, name, ck.ID)
		}
	}
	delete(c.aap.aaps, k)
	return nil
}

// Client keys.

func (c *catalogue) clientKeysOf(accountID, aap string) int {
	n := 0
	for _, ck := range c.aap.clientKeys {
		if ck.AccountID == accountID && ck.AAPName == aap {
			n++
		}
	}
	return n
}

func (c *catalogue) applyCreateClientKey(cmd *ClientKeyCmd, index uint64) error {
	ck := cmd.Key
	if ck.ID == "" {
		return fmt.Errorf("%w: a client key needs an id", ErrPreconditionFailed)
	}
	if _, ok := c.aap.aaps[objectKey(ck.AccountID, ck.AAPName)]; !ok {
		return fmt.Errorf("%w: %s", ErrAAPNotFound, ck.AAPName)
	}
	if _, ok := c.aap.clientKeys[ck.ID]; ok {
		return fmt.Errorf("%w: %s", ErrClientKeyExists, ck.ID)
	}
	if n := c.clientKeysOf(ck.AccountID, ck.AAPName); n >= MaxClientKeysPerAAP {
		return fmt.Errorf("%w: an application access point may have at most %d client keys", ErrAAPLimitExceeded, MaxClientKeysPerAAP)
	}
	ck.PublicKey = append([]byte(nil), ck.PublicKey...)
	ck.Certificate = append([]byte(nil), ck.Certificate...)
	ck.CreatedAt, ck.ModifyIndex = cmd.Now, index
	c.aap.clientKeys[ck.ID] = &ck
	return nil
}

func (c *catalogue) applyDeleteClientKey(cmd *ClientKeyCmd) error {
	ck, ok := c.aap.clientKeys[cmd.Key.ID]
	if !ok || ck.AccountID != cmd.Key.AccountID {
		return fmt.Errorf("%w: %s", ErrClientKeyNotFound, cmd.Key.ID)
	}
	delete(c.aap.clientKeys, ck.ID)
	return nil
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Reads.

// NetworkRule returns an account's network rule by name.
func (f *FSM) NetworkRule(accountID, name string) (*NetworkRule, bool) {
	var r *NetworkRule
	f.read(func(c *catalogue) { r = c.aap.rules[objectKey(accountID, name)] })
	return r, r != nil
}

// NetworkRules returns an account's network rules sorted by name.
func (f *FSM) NetworkRules(accountID string) []*NetworkRule {
	return selectSorted(f, func(c *catalogue) map[string]*NetworkRule { return c.aap.rules },
		func(r *NetworkRule) bool { return r.AccountID == accountID },
		func(a, b *NetworkRule) bool { return a.Name < b.Name })
}

// PermissionPolicy returns an account's permission policy by name.
func (f *FSM) PermissionPolicy(accountID, name string) (*PermissionPolicy, bool) {
	var p *PermissionPolicy
	f.read(func(c *catalogue) { p = c.aap.policies[objectKey(accountID, name)] })
	return p, p != nil
}

// PermissionPolicies returns an account's permission policies sorted by
// name.
func (f *FSM) PermissionPolicies(accountID string) []*PermissionPolicy {
	return selectSorted(f, func(c *catalogue) map[string]*PermissionPolicy { return c.aap.policies },
		func(p *PermissionPolicy) bool { return p.AccountID == accountID },
		func(a, b *PermissionPolicy) bool { return a.Name < b.Name })
}

// AAP returns an account's application access point by name.
func (f *FSM) AAP(accountID, name string) (*AAP, bool) {
	var a *AAP
	f.read(func(c *catalogue) { a = c.aap.aaps[objectKey(accountID, name)] })
	return a, a != nil
}

// AAPs returns an account's application access points sorted by name.
func (f *FSM) AAPs(accountID string) []*AAP {
	return selectSorted(f, func(c *catalogue) map[string]*AAP { return c.aap.aaps },
		func(a *AAP) bool { return a.AccountID == accountID },
		func(a, b *AAP) bool { return a.Name < b.Name })
}

// ClientKey returns a client key by id (of any account).
func (f *FSM) ClientKey(id string) (*ClientKey, bool) {
	var k *ClientKey
	f.read(func(c *catalogue) { k = c.aap.clientKeys[id] })
	return k, k != nil
}

// ClientKeys returns an account's client keys, of one AAP when aap is not
// empty, oldest first (then by id).
func (f *FSM) ClientKeys(accountID, aap string) []*ClientKey {
	return selectSorted(f, func(c *catalogue) map[string]*ClientKey { return c.aap.clientKeys },
		func(k *ClientKey) bool { return k.AccountID == accountID && (aap == "" || k.AAPName == aap) },
		func(a, b *ClientKey) bool {
			if a.CreatedAt != b.CreatedAt {
				return a.CreatedAt < b.CreatedAt
			}
			return a.ID < b.ID
		})
}

// Snapshot records (0x0e–0x11), written after the replay records and only
// when there are objects, so a catalogue without any persists to the bytes
// older versions wrote.
const (
	recNetworkRule      = 0x0e
	recPermissionPolicy = 0x0f
	recAAP              = 0x10
	recClientKey        = 0x11
)

func (s *aapState) writeRecords(w io.Writer) error {
	if err := writeAll(w, recNetworkRule, s.rules); err != nil {
		return err
	}
	if err := writeAll(w, recPermissionPolicy, s.policies); err != nil {
		return err
	}
	if err := writeAll(w, recAAP, s.aaps); err != nil {
		return err
	}
	return writeAll(w, recClientKey, s.clientKeys)
}

func namedKey(acct, name string) string {
	if acct == "" || name == "" {
		return ""
	}
	return objectKey(acct, name)
}

func (s *aapState) loadRecord(typ byte, body []byte) (handled bool, err error) {
	switch typ {
	case recNetworkRule:
		return true, loadInto(s.rules, body, func(r *NetworkRule) string { return namedKey(r.AccountID, r.Name) })
	case recPermissionPolicy:
		return true, loadInto(s.policies, body, func(p *PermissionPolicy) string { return namedKey(p.AccountID, p.Name) })
	case recAAP:
		return true, loadInto(s.aaps, body, func(a *AAP) string { return namedKey(a.AccountID, a.Name) })
	case recClientKey:
		return true, loadInto(s.clientKeys, body, func(k *ClientKey) string { return k.ID })
	}
	return false, nil
}

// checkAAPReferences refuses a snapshot whose application access objects
// name what it does not hold.
func (c *catalogue) checkAAPReferences() error {
	for _, id := range sortedIDs(c.aap.rules) {
		if r := c.aap.rules[id]; c.accounts[r.AccountID] == nil {
			return fmt.Errorf("network rule %s belongs to a missing account", r.Name)
		}
	}
	for _, id := range sortedIDs(c.aap.policies) {
		p := c.aap.policies[id]
		if c.accounts[p.AccountID] == nil {
			return fmt.Errorf("permission policy %s belongs to a missing account", p.Name)
		}
		if err := c.checkPolicyRefs(p); err != nil {
			return fmt.Errorf("permission policy %s: %v", p.Name, err)
		}
	}
	for _, id := range sortedIDs(c.aap.aaps) {
		a := c.aap.aaps[id]
		if c.accounts[a.AccountID] == nil {
			return fmt.Errorf("application access point %s belongs to a missing account", a.Name)
		}
		if err := c.checkAAPRefs(a); err != nil {
			return fmt.Errorf("application access point %s: %v", a.Name, err)
		}
	}
	for _, id := range sortedIDs(c.aap.clientKeys) {
		k := c.aap.clientKeys[id]
		if c.aap.aaps[objectKey(k.AccountID, k.AAPName)] == nil {
			return fmt.Errorf("client key %s belongs to a missing application access point", k.ID)
		}
	}
	return nil
}

// dispatchAAP applies the application access commands. Caller holds the
// FSM's write lock.
func (c *catalogue) dispatchAAP(l *raft.Log, t CommandType, body []byte) error {
	switch t {
	case CmdCreateNetworkRule, CmdUpdateNetworkRule, CmdDeleteNetworkRule:
		var cmd NetworkRuleCmd
		mustDecode(t, l.Index, body, &cmd)
		switch t {
		case CmdCreateNetworkRule:
			return c.applyCreateNetworkRule(&cmd, l.Index)
		case CmdUpdateNetworkRule:
			return c.applyUpdateNetworkRule(&cmd, l.Index)
		}
		return c.applyDeleteNetworkRule(&cmd)
	case CmdCreatePermissionPolicy, CmdUpdatePermissionPolicy, CmdDeletePermissionPolicy:
		var cmd PermissionPolicyCmd
		mustDecode(t, l.Index, body, &cmd)
		switch t {
		case CmdCreatePermissionPolicy:
			return c.applyCreatePermissionPolicy(&cmd, l.Index)
		case CmdUpdatePermissionPolicy:
			return c.applyUpdatePermissionPolicy(&cmd, l.Index)
		}
		return c.applyDeletePermissionPolicy(&cmd)
	case CmdCreateAAP, CmdUpdateAAP, CmdDeleteAAP:
		var cmd AAPCmd
		mustDecode(t, l.Index, body, &cmd)
		switch t {
		case CmdCreateAAP:
			return c.applyCreateAAP(&cmd, l.Index)
		case CmdUpdateAAP:
			return c.applyUpdateAAP(&cmd, l.Index)
		}
		return c.applyDeleteAAP(&cmd)
	case CmdCreateClientKey, CmdDeleteClientKey:
		var cmd ClientKeyCmd
		mustDecode(t, l.Index, body, &cmd)
		if t == CmdCreateClientKey {
			return c.applyCreateClientKey(&cmd, l.Index)
		}
		return c.applyDeleteClientKey(&cmd)
	}
	panic(fmt.Sprintf("fsm: dispatchAAP given %s", t))
}
