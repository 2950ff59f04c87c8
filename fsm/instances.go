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
