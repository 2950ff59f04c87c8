package fsm

import (
	"bytes"
	"errors"
	"fmt"
)

// HSM domains. A domain is a set of PKCS#11 tokens that hold the same
// AES-256 domain key; a hardware KMS instance is bound to one domain, and the
// versions of its keys hold material wrapped under that domain key
// (KeyVersion.Domain), which only tokens of the domain can unwrap.
//
// The catalogue records each domain's key check value once: the first node
// whose token holds the domain registers it, and every later registration
// must carry the same value. A token with another key under the same name is
// refused here, and the service never routes the domain's keys to it.

// HSMDomain is a domain the cluster knows, with the check value of its key.
type HSMDomain struct {
	Name string `msgpack:"name"`
	// CheckValue is the domain key's KCV (3 bytes: the first bytes of
	// AES-ECB(key, zero block)), as the first token reported it.
	CheckValue []byte `msgpack:"kcv"`
	// RegisteredBy is the node whose token registered the domain.
	RegisteredBy string `msgpack:"node"`
	CreatedAt    int64  `msgpack:"ct"`
	ModifyIndex  uint64 `msgpack:"mi"`
}

// RegisterHSMDomainCmd records a domain's check value. First writer wins:
// registering the same value again changes nothing and succeeds; another
// value is ErrHSMDomainMismatch.
type RegisterHSMDomainCmd struct {
	Now        int64  `msgpack:"now"`
	Name       string `msgpack:"name"`
	CheckValue []byte `msgpack:"kcv"`
	NodeID     string `msgpack:"node"`
}

// Instance types.
const (
	InstanceTypeSoftware = "software"
	InstanceTypeHardware = "hardware"
)

// HSM errors.
var (
	// ErrHSMDomainMismatch means a token holds a different key for a domain
	// name than the one the cluster recorded.
	ErrHSMDomainMismatch = errors.New("the token's HSM domain key differs from the key the cluster recorded for that domain")
	// ErrProtectionMismatch means a key version does not fit its instance:
	// a hardware instance's versions must be wrapped under its HSM domain,
	// a software instance's under the root key.
	ErrProtectionMismatch = errors.New("the key version's protection does not match its KMS instance")
)

func (c *catalogue) applyRegisterHSMDomain(cmd *RegisterHSMDomainCmd, index uint64) error {
	if cmd.Name == "" || len(cmd.CheckValue) == 0 {
		return fmt.Errorf("%w: a domain needs a name and a check value", ErrPreconditionFailed)
	}
	if d, ok := c.hsmDomains[cmd.Name]; ok {
		if bytes.Equal(d.CheckValue, cmd.CheckValue) {
			return nil
		}
		return fmt.Errorf("%w: domain %q was recorded with check value %x (by node %s); node %s's token has %x",
			ErrHSMDomainMismatch, cmd.Name, d.CheckValue, d.RegisteredBy, cmd.NodeID, cmd.CheckValue)
	}
	c.hsmDomains[cmd.Name] = &HSMDomain{
		Name: cmd.Name, CheckValue: append([]byte(nil), cmd.CheckValue...), RegisteredBy: cmd.NodeID,
		CreatedAt: cmd.Now, ModifyIndex: index,
	}
	return nil
}

// checkProtection refuses a version whose wrapping does not match the
// instance it would belong to. inst is nil for the default key (software).
// An EXTERNAL key's version has no material yet but already names its
// domain.
func checkProtection(inst *Instance, v *KeyVersion) error {
	want := ""
	if inst != nil && inst.Type == InstanceTypeHardware {
		want = inst.HSMDomain
	}
	if v.Domain != want {
		return fmt.Errorf("%w: version %s names HSM domain %q, the instance needs %q", ErrProtectionMismatch, v.ID, v.Domain, want)
	}
	return nil
}

// HSMDomain returns a registered domain by name.
func (f *FSM) HSMDomain(name string) (*HSMDomain, bool) {
	var d *HSMDomain
	f.read(func(c *catalogue) { d = c.hsmDomains[name] })
	return d, d != nil
}

// HSMDomains returns every registered domain sorted by name.
func (f *FSM) HSMDomains() []*HSMDomain {
	return selectSorted(f, func(c *catalogue) map[string]*HSMDomain { return c.hsmDomains },
		func(h *HSMDomain) bool { return true },
		func(a, b *HSMDomain) bool { return a.Name < b.Name })
}
