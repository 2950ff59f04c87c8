package fsm

import (
	"errors"
	"fmt"
)

// How many KMS instances an account may have. The limit is checked here,
// in Apply, against the catalogue's own count: two creations proposed at
// the same time through different nodes cannot both pass it.

// DefaultMaxInstances is an account's instance limit until the operator
// sets another (Account.MaxInstances 0).
const DefaultMaxInstances = 10

// ErrInstanceLimitExceeded refuses a KMS instance beyond the account's
// limit.
var ErrInstanceLimitExceeded = errors.New("the account has as many KMS instances as it may have")

// InstanceLimitCmd sets an account's instance limit (the operator's
// decision; MaxInstances > 0).
type InstanceLimitCmd struct {
	Now          int64  `msgpack:"now"`
	AccountID    string `msgpack:"acct"`
	MaxInstances int    `msgpack:"max"`
}

// MaxInstancesOf is the account's instance limit.
func MaxInstancesOf(a *Account) int {
	if a.MaxInstances > 0 {
		return a.MaxInstances
	}
	return DefaultMaxInstances
}

func (c *catalogue) instancesOf(accountID string) int {
	n := 0
	for _, in := range c.instances {
		if in.AccountID == accountID {
			n++
		}
	}
	return n
}

func (c *catalogue) applySetInstanceLimit(cmd *InstanceLimitCmd, index uint64) error {
	a, ok := c.accounts[cmd.AccountID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, cmd.AccountID)
	}
	if cmd.MaxInstances < 1 {
		return fmt.Errorf("%w: an instance limit must be 1 or more, not %d", ErrPreconditionFailed, cmd.MaxInstances)
	}
	n := *a
	n.MaxInstances = cmd.MaxInstances
	n.ModifyIndex = index
	c.accounts[n.ID] = &n
	return nil
}

// InstanceCount returns how many KMS instances an account has.
func (f *FSM) InstanceCount(accountID string) int {
	var n int
	f.read(func(c *catalogue) { n = c.instancesOf(accountID) })
	return n
}

// Networks and zones of a KMS instance (ConnectKmsInstance,
// UpdateKmsInstanceBindVpc). A VPC of the reference is a network rule of
// the account here (a named list of CIDR blocks), a vSwitch one of that
// rule's blocks, a zone a cluster zone name. The binding names the rule:
// an UpdateNetworkRule moves the instance's boundary with it, and a bound
// rule cannot be deleted.

const (
	// CmdConnectInstance sets an instance's VPC, vSwitches and zones.
	CmdConnectInstance CommandType = 69
	// CmdBindInstanceVpcs replaces the instance's further bound VPCs.
	CmdBindInstanceVpcs CommandType = 70
)

// InstanceVpc is one network bound to an instance.
type InstanceVpc struct {
	VpcID     string `msgpack:"vpc"`
	VSwitchID string `msgpack:"vsw,omitempty"`
	RegionID  string `msgpack:"rg,omitempty"`
	OwnerID   string `msgpack:"owner,omitempty"`
}

// ConnectInstanceCmd sets an instance's VPC (a network rule's name), its
// vSwitches (blocks of that rule) and zones (checked by the proposer
// against the cluster's zones, which the FSM does not know).
type ConnectInstanceCmd struct {
	Now        int64    `msgpack:"now"`
	AccountID  string   `msgpack:"acct"`
	InstanceID string   `msgpack:"inst"`
	VpcID      string   `msgpack:"vpc"`
	VSwitchIDs []string `msgpack:"vsw,omitempty"`
	ZoneIDs    []string `msgpack:"zones,omitempty"`
}

// BindInstanceVpcsCmd replaces the VPCs bound to an instance besides the
// one ConnectKmsInstance set (empty: none).
type BindInstanceVpcsCmd struct {
	Now        int64         `msgpack:"now"`
	AccountID  string        `msgpack:"acct"`
	InstanceID string        `msgpack:"inst"`
	Vpcs       []InstanceVpc `msgpack:"vpcs,omitempty"`
}

// BoundNetworks are the names of the network rules bound to an instance:
// its VPC and the further bound ones, without repeats. Empty: the instance
// accepts requests from any address.
func (in *Instance) BoundNetworks() []string {
	var out []string
	add := func(n string) {
		if n != "" && !containsString(out, n) {
			out = append(out, n)
		}
	}
	add(in.VpcID)
	for _, v := range in.BindVpcs {
		add(v.VpcID)
	}
	return out
}

func (c *catalogue) accountInstance(accountID, id string) (*Instance, error) {
	in, ok := c.instances[id]
	if !ok || in.AccountID != accountID {
		return nil, fmt.Errorf("%w: %s", ErrInstanceNotFound, id)
	}
	return in, nil
}

// checkVpc checks that vpc names a network rule of the account and that
// each vSwitch is one of its blocks.
func (c *catalogue) checkVpc(accountID, vpc string, vswitches []string) error {
	r, ok := c.aap.rules[objectKey(accountID, vpc)]
	if !ok {
		return fmt.Errorf("%w: %s (a VpcId names a network rule)", ErrNetworkRuleNotFound, vpc)
	}
	for _, v := range vswitches {
		if !containsString(r.SourcePrivateIP, v) {
			return fmt.Errorf("%w: vSwitch %s is not a block of network rule %s", ErrPreconditionFailed, v, vpc)
		}
	}
	return nil
}

func (c *catalogue) applyConnectInstance(cmd *ConnectInstanceCmd, index uint64) error {
	in, err := c.accountInstance(cmd.AccountID, cmd.InstanceID)
	if err != nil {
		return err
	}
	if err := c.checkVpc(cmd.AccountID, cmd.VpcID, cmd.VSwitchIDs); err != nil {
		return err
	}
	n := *in
	n.VpcID, n.VSwitchIDs, n.ZoneIDs = cmd.VpcID, cmd.VSwitchIDs, cmd.ZoneIDs
	n.ModifyIndex = index
	c.instances[n.ID] = &n
	return nil
}

func (c *catalogue) applyBindInstanceVpcs(cmd *BindInstanceVpcsCmd, index uint64) error {
	in, err := c.accountInstance(cmd.AccountID, cmd.InstanceID)
	if err != nil {
		return err
	}
	for _, v := range cmd.Vpcs {
		var vsw []string
		if v.VSwitchID != "" {
			vsw = []string{v.VSwitchID}
		}
		if err := c.checkVpc(cmd.AccountID, v.VpcID, vsw); err != nil {
			return err
		}
	}
	n := *in
	n.BindVpcs = cmd.Vpcs
	n.ModifyIndex = index
	c.instances[n.ID] = &n
	return nil
}

// instanceBinding names an instance bound to the account's network rule
// ("" if none): such a rule may not be deleted.
func (c *catalogue) instanceBinding(accountID, rule string) string {
	for _, id := range sortedIDs(c.instances) {
		in := c.instances[id]
		if in.AccountID == accountID && containsString(in.BoundNetworks(), rule) {
			return in.ID
		}
	}
	return ""
}
