package fsm

import (
	"fmt"
)

// catalogue is the whole replicated state. Only Apply (holding the FSM's
// write lock) changes it, and it changes it by replacing records.
type catalogue struct {
	initialized bool
	rootCheck   []byte
	accounts    map[string]*Account
	accessKeys  map[string]*AccessKey
	instances   map[string]*Instance
	keys        map[string]*Key
	versions    map[string]*KeyVersion
	aliases     map[string]*Alias // by aliasKey(account, name)
}

func newCatalogue() *catalogue {
	return &catalogue{
		accounts:   map[string]*Account{},
		accessKeys: map[string]*AccessKey{},
		instances:  map[string]*Instance{},
		keys:       map[string]*Key{},
		versions:   map[string]*KeyVersion{},
		aliases:    map[string]*Alias{},
	}
}

func aliasKey(accountID, name string) string { return accountID + "\x00" + name }

func (c *catalogue) shallowCopy() *catalogue {
	n := &catalogue{
		initialized: c.initialized,
		rootCheck:   c.rootCheck,
		accounts:    make(map[string]*Account, len(c.accounts)),
		accessKeys:  make(map[string]*AccessKey, len(c.accessKeys)),
		instances:   make(map[string]*Instance, len(c.instances)),
		keys:        make(map[string]*Key, len(c.keys)),
		versions:    make(map[string]*KeyVersion, len(c.versions)),
		aliases:     make(map[string]*Alias, len(c.aliases)),
	}
	for k, v := range c.accounts {
		n.accounts[k] = v
	}
	for k, v := range c.accessKeys {
		n.accessKeys[k] = v
	}
	for k, v := range c.instances {
		n.instances[k] = v
	}
	for k, v := range c.keys {
		n.keys[k] = v
	}
	for k, v := range c.versions {
		n.versions[k] = v
	}
	for k, v := range c.aliases {
		n.aliases[k] = v
	}
	return n
}

func (c *catalogue) applyInit(cmd *InitCmd, index uint64) error {
	if c.initialized {
		return ErrAlreadyInitialized
	}
	acct, ak, inst := cmd.Account, cmd.AccessKey, cmd.Instance
	acct.ModifyIndex, ak.ModifyIndex, inst.ModifyIndex = index, index, index
	c.initialized = true
	c.rootCheck = append([]byte(nil), cmd.RootCheck...)
	c.accounts[acct.ID] = &acct
	c.accessKeys[ak.ID] = &ak
	c.instances[inst.ID] = &inst
	return nil
}

func (c *catalogue) applyCreateInstance(cmd *CreateInstanceCmd, index uint64) error {
	if _, ok := c.accounts[cmd.Instance.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, cmd.Instance.AccountID)
	}
	if _, ok := c.instances[cmd.Instance.ID]; ok {
		return fmt.Errorf("%w: %s", ErrInstanceExists, cmd.Instance.ID)
	}
	inst := cmd.Instance
	inst.ModifyIndex = index
	c.instances[inst.ID] = &inst
	return nil
}

func (c *catalogue) applyCreateKey(cmd *CreateKeyCmd, index uint64) error {
	k, v := cmd.Key, cmd.Version
	if _, ok := c.accounts[k.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, k.AccountID)
	}
	if k.InstanceID != "" {
		inst, ok := c.instances[k.InstanceID]
		if !ok || inst.AccountID != k.AccountID {
			return fmt.Errorf("%w: %s", ErrInstanceNotFound, k.InstanceID)
		}
	} else {
		// A key outside every instance is the account's default key, and
		// there is one per account. Checked here, not only by the proposer,
		// because two concurrent proposals would both pass a local check.
		for _, other := range c.keys {
			if other.AccountID == k.AccountID && other.InstanceID == "" {
				return fmt.Errorf("%w (%s)", ErrDefaultKeyExists, other.ID)
			}
		}
	}
	if _, ok := c.keys[k.ID]; ok {
		return fmt.Errorf("%w: %s", ErrKeyExists, k.ID)
	}
	if _, ok := c.versions[v.ID]; ok {
		return fmt.Errorf("%w: version %s", ErrKeyExists, v.ID)
	}
	k.Versions = []string{v.ID}
	k.PrimaryVersion = v.ID
	k.CreateIndex, k.ModifyIndex = index, index
	if k.Tags == nil {
		k.Tags = map[string]string{}
	}
	v.KeyID = k.ID
	v.CreateIndex = index
	c.keys[k.ID] = &k
	c.versions[v.ID] = &v
	return nil
}

// key finds a key for a command; a missing key is a domain error.
func (c *catalogue) key(id string) (*Key, error) {
	k, ok := c.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	return k, nil
}

func (c *catalogue) applyUpdateKeyDescription(cmd *UpdateKeyDescriptionCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	n := k.clone()
	n.Description = cmd.Description
	n.ModifyIndex = index
	c.keys[n.ID] = n
	return nil
}

func (c *catalogue) applySetKeyState(cmd *SetKeyStateCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	op := "EnableKey"
	if cmd.State == StateDisabled {
		op = "DisableKey"
	}
	switch k.State {
	case StateEnabled, StateDisabled:
	default:
		return newStateError(op, k.State)
	}
	if cmd.State != StateEnabled && cmd.State != StateDisabled {
		return fmt.Errorf("%w: cannot set state %q", ErrKeyState, cmd.State)
	}
	n := k.clone()
	n.State = cmd.State
	n.ModifyIndex = index
	c.keys[n.ID] = n
	return nil
}

func (c *catalogue) applyCreateKeyVersion(cmd *CreateKeyVersionCmd, index uint64) error {
	k, err := c.key(cmd.Version.KeyID)
	if err != nil {
		return err
	}
	if k.State != StateEnabled {
		return newStateError("CreateKeyVersion", k.State)
	}
	if len(k.Versions) >= MaxVersionsPerKey {
		return fmt.Errorf("%w (%d)", ErrVersionLimit, MaxVersionsPerKey)
	}
	if _, ok := c.versions[cmd.Version.ID]; ok {
		return fmt.Errorf("%w: version %s", ErrKeyExists, cmd.Version.ID)
	}
	v := cmd.Version
	v.CreateIndex = index
	n := k.clone()
	n.Versions = append(n.Versions, v.ID)
	n.PrimaryVersion = v.ID
	n.LastRotation = cmd.Now
	n.ModifyIndex = index
	c.versions[v.ID] = &v
	c.keys[n.ID] = n
	return nil
}

func (c *catalogue) applyCreateAlias(cmd *AliasCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.AccountID != cmd.AccountID {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, cmd.KeyID)
	}
	ak := aliasKey(cmd.AccountID, cmd.Name)
	if _, ok := c.aliases[ak]; ok {
		return fmt.Errorf("%w: %s", ErrAliasExists, cmd.Name)
	}
	c.aliases[ak] = &Alias{Name: cmd.Name, AccountID: cmd.AccountID, KeyID: cmd.KeyID, CreatedAt: cmd.Now, UpdatedAt: cmd.Now, ModifyIndex: index}
	return nil
}

func (c *catalogue) applyUpdateAlias(cmd *AliasCmd, index uint64) error {
	ak := aliasKey(cmd.AccountID, cmd.Name)
	a, ok := c.aliases[ak]
	if !ok {
		return fmt.Errorf("%w: %s", ErrAliasNotFound, cmd.Name)
	}
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.AccountID != cmd.AccountID {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, cmd.KeyID)
	}
	n := *a
	n.KeyID, n.UpdatedAt, n.ModifyIndex = cmd.KeyID, cmd.Now, index
	c.aliases[ak] = &n
	return nil
}

func (c *catalogue) applyDeleteAlias(cmd *AliasCmd) error {
	ak := aliasKey(cmd.AccountID, cmd.Name)
	if _, ok := c.aliases[ak]; !ok {
		return fmt.Errorf("%w: %s", ErrAliasNotFound, cmd.Name)
	}
	delete(c.aliases, ak)
	return nil
}

func (c *catalogue) applyTagResource(cmd *TagCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	n := k.clone()
	if n.Tags == nil {
		n.Tags = map[string]string{}
	}
	for t, v := range cmd.Tags {
		n.Tags[t] = v
	}
	if len(n.Tags) > MaxTagsPerKey {
		return fmt.Errorf("%w (it has %d, the request would make %d)", ErrTagLimit, len(k.Tags), len(n.Tags))
	}
	n.ModifyIndex = index
	c.keys[n.ID] = n
	return nil
}

func (c *catalogue) applyUntagResource(cmd *TagCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	n := k.clone()
	for _, t := range cmd.Keys {
		delete(n.Tags, t)
	}
	n.ModifyIndex = index
	c.keys[n.ID] = n
	return nil
}
