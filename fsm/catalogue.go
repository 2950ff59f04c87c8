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
	tokens      map[string]*ImportToken
	users       map[string]*User // by identityKey(account, name)
	roles       map[string]*Role // by identityKey(account, name)
	hsmDomains  map[string]*HSMDomain
	replay      *replayGuard       // nonces of applied signed writes (replay.go)
	aap         *aapState          // application access objects (aap.go)
	instanceCA  *InstanceCA        // nil until recorded (instanceca.go)
	secrets     map[string]*Secret // by secretKey(account, name) (secrets.go)
	// certs holds the certificates by id (certificates.go).
	certs map[string]*Certificate
	// finalLevel is the level CmdFinalizeLevel recorded (version.go).
	finalLevel int
	// consoleSessions holds the console's sessions by id (sessions.go).
	consoleSessions map[string]*ConsoleSession
	// kidx orders keys for listing and finds default keys (keyindex.go).
	// Only the live catalogue has one: the copies Snapshot and Hash take
	// never list keys.
	kidx *keyIndex
	// loading is a snapshot load in progress (readSnapshot), nil
	// otherwise: loadRecord then takes the fast decoders of fastdecode.go
	// and collects keys, versions and nonces for finishLoad.
	loading *snapshotLoad
}

func newCatalogue() *catalogue {
	return &catalogue{
		accounts:   map[string]*Account{},
		accessKeys: map[string]*AccessKey{},
		instances:  map[string]*Instance{},
		keys:       map[string]*Key{},
		versions:   map[string]*KeyVersion{},
		aliases:    map[string]*Alias{},
		tokens:     map[string]*ImportToken{},
		users:      map[string]*User{},
		roles:      map[string]*Role{},
		hsmDomains: map[string]*HSMDomain{},
		replay:     newReplayGuard(),
		aap:        newAAPState(),
		secrets:    map[string]*Secret{},
		certs:      map[string]*Certificate{},

		consoleSessions: map[string]*ConsoleSession{},
		kidx:            newKeyIndex(),
	}
}

// putKey stores a new or changed key (records are replaced, never changed
// in place) and keeps the scheduler's duty index (keyindex.go) current.
func (c *catalogue) putKey(k *Key) {
	c.keys[k.ID] = k
	c.kidx.track(k)
}

func aliasKey(accountID, name string) string { return accountID + "\x00" + name }

func (c *catalogue) shallowCopy() *catalogue {
	// maps.Clone copies a map's table as it is, without inserting each
	// entry again: a million keys, versions and nonces in ~0.3 s instead
	// of ~1.1 s, while Snapshot holds the FSM's lock (issue 16).
	return &catalogue{
		initialized: c.initialized,
		rootCheck:   c.rootCheck,
		accounts:    copyMap(c.accounts),
		accessKeys:  copyMap(c.accessKeys),
		instances:   copyMap(c.instances),
		keys:        copyMap(c.keys),
		versions:    copyMap(c.versions),
		aliases:     copyMap(c.aliases),
		tokens:      copyMap(c.tokens),
		users:       copyMap(c.users),
		roles:       copyMap(c.roles),
		hsmDomains:  copyMap(c.hsmDomains),
		replay:      c.replay.readOnlyCopy(),
		aap:         c.aap.shallowCopy(),
		instanceCA:  c.instanceCA,
		secrets:     copyMap(c.secrets),
		certs:       copyMap(c.certs),
		finalLevel:  c.finalLevel,

		consoleSessions: copyMap(c.consoleSessions),
	}
}

func (c *catalogue) applyInit(cmd *InitCmd, index uint64) error {
	if c.initialized {
		return ErrAlreadyInitialized
	}
	if ca := cmd.InstanceCA; ca != nil && (len(ca.CertDER) == 0 || len(ca.WrappedKey) == 0) {
		return fmt.Errorf("%w: an instance CA needs a certificate and a wrapped key", ErrPreconditionFailed)
	}
	acct, ak, inst := cmd.Account, cmd.AccessKey, cmd.Instance
	acct.ModifyIndex, ak.ModifyIndex, inst.ModifyIndex = index, index, index
	c.initialized = true
	c.rootCheck = append([]byte(nil), cmd.RootCheck...)
	c.accounts[acct.ID] = &acct
	c.accessKeys[ak.ID] = &ak
	c.instances[inst.ID] = &inst
	if cmd.InstanceCA != nil && c.instanceCA == nil {
		// Checked above: it cannot fail.
		return c.setInstanceCA(*cmd.InstanceCA, index)
	}
	return nil
}

func (c *catalogue) applyCreateInstance(cmd *CreateInstanceCmd, index uint64) error {
	acct, ok := c.accounts[cmd.Instance.AccountID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, cmd.Instance.AccountID)
	}
	if _, ok := c.instances[cmd.Instance.ID]; ok {
		return fmt.Errorf("%w: %s", ErrInstanceExists, cmd.Instance.ID)
	}
	if n, max := c.instancesOf(acct.ID), MaxInstancesOf(acct); n >= max {
		return fmt.Errorf("%w: account %s has %d KMS instances and may have at most %d; the operator raises the limit with `kmsctl operator instance limit --account %s --max N`",
			ErrInstanceLimitExceeded, acct.ID, n, max, acct.ID)
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
	var inst *Instance
	if k.InstanceID != "" {
		var ok bool
		inst, ok = c.instances[k.InstanceID]
		if !ok || inst.AccountID != k.AccountID {
			return fmt.Errorf("%w: %s", ErrInstanceNotFound, k.InstanceID)
		}
		if inst.KeysUsed >= inst.KeyQuota {
			return fmt.Errorf("%w: %s holds %d of %d keys", ErrQuotaExceeded, inst.ID, inst.KeysUsed, inst.KeyQuota)
		}
	} else {
		// A key outside every instance is the account's default key, and
		// there is one per account. Checked here, not only by the proposer,
		// because two concurrent proposals would both pass a local check.
		if other, ok := c.kidx.defaults[k.AccountID]; ok {
			return fmt.Errorf("%w (%s)", ErrDefaultKeyExists, other)
		}
	}
	if _, ok := c.keys[k.ID]; ok {
		return fmt.Errorf("%w: %s", ErrKeyExists, k.ID)
	}
	if _, ok := c.versions[v.ID]; ok {
		return fmt.Errorf("%w: version %s", ErrKeyExists, v.ID)
	}
	if err := checkProtection(inst, &v); err != nil {
		return err
	}
	if cmd.Alias != "" {
		if _, ok := c.aliases[aliasKey(k.AccountID, cmd.Alias)]; ok {
			return fmt.Errorf("%w: %s", ErrAliasExists, cmd.Alias)
		}
	}
	k.Versions = []string{v.ID}
	k.PrimaryVersion = v.ID
	k.CreateIndex, k.ModifyIndex = index, index
	if len(k.Tags) == 0 {
		k.Tags = noTags
	}
	// Every check before the first change: a refused command changes nothing.
	if inst != nil && k.CrossAccount > 0 && inst.AccessUsed+k.CrossAccount > accessQuota(inst) {
		return fmt.Errorf("%w: %s would use %d of %d", ErrAccessQuotaExceeded, inst.ID, inst.AccessUsed+k.CrossAccount, accessQuota(inst))
	}
	if inst == nil && k.CrossAccount > DefaultAccessQuota {
		return defaultKeyOverQuota(k.CrossAccount)
	}
	v.KeyID = k.ID
	v.CreateIndex = index
	k.compact()
	c.putKey(&k)
	c.versions[v.ID] = &v
	c.kidx.add(c.keys, &k)
	if inst != nil {
		n := *inst
		n.KeysUsed++
		n.AccessUsed += k.CrossAccount
		n.ModifyIndex = index
		c.instances[n.ID] = &n
	}
	if cmd.Alias != "" {
		c.aliases[aliasKey(k.AccountID, cmd.Alias)] = &Alias{Name: cmd.Alias, AccountID: k.AccountID, KeyID: k.ID, CreatedAt: cmd.Now, UpdatedAt: cmd.Now, ModifyIndex: index}
	}
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
	c.putKey(n)
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
	n.State = intern(cmd.State)
	n.ModifyIndex = index
	c.putKey(n)
	return nil
}

func (c *catalogue) applyCreateKeyVersion(cmd *CreateKeyVersionCmd, index uint64) error {
	k, err := c.key(cmd.Version.KeyID)
	if err != nil {
		return err
	}
	if cmd.Automatic && (k.PrimaryVersion != cmd.ExpectPrimary || k.RotationInterval == 0) {
		return fmt.Errorf("%w: key %s was rotated or its policy changed", ErrPreconditionFailed, k.ID)
	}
	if k.State != StateEnabled {
		return newStateError("CreateKeyVersion", k.State)
	}
	if k.Origin == "EXTERNAL" {
		return fmt.Errorf("%w: key %s", ErrNotExternalRotation, k.ID)
	}
	// The limit is on versions made by hand: automatic rotation goes on for
	// the life of the key.
	if !cmd.Automatic && len(k.Versions) >= MaxVersionsPerKey {
		return fmt.Errorf("%w (%d)", ErrVersionLimit, MaxVersionsPerKey)
	}
	if _, ok := c.versions[cmd.Version.ID]; ok {
		return fmt.Errorf("%w: version %s", ErrKeyExists, cmd.Version.ID)
	}
	if err := checkProtection(c.instances[k.InstanceID], &cmd.Version); err != nil {
		return err
	}
	v := cmd.Version
	v.CreateIndex = index
	n := k.clone()
	n.Versions = append(n.Versions, v.ID)
	n.PrimaryVersion = v.ID
	n.LastRotation = cmd.Now
	n.ModifyIndex = index
	c.versions[v.ID] = &v
	c.putKey(n)
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
	c.putKey(n)
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
	c.putKey(n)
	return nil
}

// ErrNotExternalRotation refuses new versions of a key whose material is
// imported: the service cannot make more of the customer's material.
var ErrNotExternalRotation = fmt.Errorf("%w: keys with imported material have one version", ErrKeyState)

func (c *catalogue) applyUpdateRotationPolicy(cmd *RotationPolicyCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.State == StatePendingDeletion {
		return newStateError("UpdateRotationPolicy", k.State)
	}
	n := k.clone()
	if n.RotationInterval == 0 && cmd.IntervalSec > 0 {
		// Rotation starts counting from when it is turned on, not from a
		// rotation long ago.
		n.LastRotation = cmd.Now
	}
	n.RotationInterval = cmd.IntervalSec
	n.ModifyIndex = index
	c.putKey(n)
	return nil
}

func (c *catalogue) applyScheduleKeyDeletion(cmd *KeyDeletionCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.State == StatePendingDeletion {
		return newStateError("ScheduleKeyDeletion", k.State)
	}
	if k.DeletionProtection {
		return fmt.Errorf("%w: key %s", ErrDeletionProtected, k.ID)
	}
	n := k.clone()
	n.State = StatePendingDeletion
	n.DeleteDate = cmd.DeleteDate
	n.ModifyIndex = index
	c.putKey(n)
	return nil
}

func (c *catalogue) applyCancelKeyDeletion(cmd *KeyDeletionCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.State != StatePendingDeletion {
		return newStateError("CancelKeyDeletion", k.State)
	}
	n := k.clone()
	n.State = StateEnabled
	if v, ok := c.versions[n.PrimaryVersion]; ok && len(v.WrappedMaterial) == 0 {
		n.State = StatePendingImport // imported material was deleted
	}
	n.DeleteDate = 0
	n.ModifyIndex = index
	c.putKey(n)
	return nil
}

func (c *catalogue) applySetDeletionProtection(cmd *DeletionProtectionCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.State == StatePendingDeletion {
		return newStateError("SetDeletionProtection", k.State)
	}
	n := k.clone()
	n.DeletionProtection = cmd.Enabled
	n.DeletionProtectionDescription = ""
	if cmd.Enabled {
		n.DeletionProtectionDescription = cmd.Description
	}
	n.ModifyIndex = index
	c.putKey(n)
	return nil
}

// applyDeleteKey ends a deletion window: the key, its versions (and so all
// its material), aliases and import tokens leave the catalogue.
func (c *catalogue) applyDeleteKey(cmd *KeyDeletionCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.State != StatePendingDeletion || k.DeleteDate > cmd.Now {
		return fmt.Errorf("%w: key %s is not due for deletion", ErrPreconditionFailed, k.ID)
	}
	for _, v := range k.Versions {
		delete(c.versions, v)
	}
	for ak, a := range c.aliases {
		if a.KeyID == k.ID {
			delete(c.aliases, ak)
		}
	}
	for id, t := range c.tokens {
		if t.KeyID == k.ID {
			delete(c.tokens, id)
		}
	}
	if inst, ok := c.instances[k.InstanceID]; ok {
		n := *inst
		n.KeysUsed--
		n.AccessUsed -= k.CrossAccount
		n.ModifyIndex = index
		c.instances[n.ID] = &n
	}
	c.kidx.remove(c.keys, k)
	delete(c.keys, k.ID)
	return nil
}

func (c *catalogue) applyImportToken(cmd *ImportTokenCmd, t CommandType) error {
	if t == CmdDeleteImportToken {
		if _, ok := c.tokens[cmd.TokenID]; !ok {
			return fmt.Errorf("%w: %s", ErrImportTokenNotFound, cmd.TokenID)
		}
		delete(c.tokens, cmd.TokenID)
		return nil
	}
	k, err := c.key(cmd.Token.KeyID)
	if err != nil {
		return err
	}
	if k.Origin != "EXTERNAL" {
		return fmt.Errorf("%w: key %s", ErrNotExternal, k.ID)
	}
	tok := cmd.Token
	c.tokens[tok.ID] = &tok
	return nil
}

func (c *catalogue) applyImportKeyMaterial(cmd *ImportKeyMaterialCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.Origin != "EXTERNAL" {
		return fmt.Errorf("%w: key %s", ErrNotExternal, k.ID)
	}
	if k.State != StatePendingImport && k.State != StateEnabled {
		return newStateError("ImportKeyMaterial", k.State)
	}
	if len(k.MaterialFingerprint) > 0 && string(k.MaterialFingerprint) != string(cmd.Fingerprint) {
		return fmt.Errorf("%w: key %s", ErrMaterialMismatch, k.ID)
	}
	v, ok := c.versions[k.PrimaryVersion]
	if !ok {
		return fmt.Errorf("%w: key %s has no version", ErrKeyNotFound, k.ID)
	}
	nv := *v
	nv.WrappedMaterial = cmd.WrappedMaterial
	n := k.clone()
	n.MaterialFingerprint = cmd.Fingerprint
	n.MaterialExpireTime = cmd.ExpireTime
	n.State = StateEnabled
	n.ModifyIndex = index
	c.versions[nv.ID] = &nv
	c.putKey(n)
	return nil
}

func (c *catalogue) applyDeleteKeyMaterial(cmd *DeleteKeyMaterialCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if k.Origin != "EXTERNAL" {
		return fmt.Errorf("%w: key %s", ErrNotExternal, k.ID)
	}
	if cmd.Expired && (k.MaterialExpireTime == 0 || k.MaterialExpireTime > cmd.Now) {
		return fmt.Errorf("%w: key %s's material has not expired", ErrPreconditionFailed, k.ID)
	}
	if k.State == StatePendingDeletion {
		return newStateError("DeleteKeyMaterial", k.State)
	}
	if v, ok := c.versions[k.PrimaryVersion]; ok {
		nv := *v
		nv.WrappedMaterial = nil
		c.versions[nv.ID] = &nv
	}
	n := k.clone()
	n.State = StatePendingImport
	n.MaterialExpireTime = 0
	n.ModifyIndex = index
	c.putKey(n)
	return nil
}

// DefaultAccessQuota is an instance's access management quota when none
// was set.
const DefaultAccessQuota = 10

func accessQuota(inst *Instance) int {
	if inst.AccessQuota == 0 {
		return DefaultAccessQuota
	}
	return inst.AccessQuota
}

// defaultKeyOverQuota refuses a policy of an account's default key (which
// belongs to no instance) that names more principals of other accounts
// than an instance's default access quota allows a whole instance.
func defaultKeyOverQuota(n int) error {
	return fmt.Errorf("%w: the default key's policy would name %d principals of other accounts; at most %d", ErrAccessQuotaExceeded, n, DefaultAccessQuota)
}

func (c *catalogue) applySetKeyPolicy(cmd *KeyPolicyCmd, index uint64) error {
	k, err := c.key(cmd.KeyID)
	if err != nil {
		return err
	}
	if inst, ok := c.instances[k.InstanceID]; ok && cmd.CrossAccount != k.CrossAccount {
		used := inst.AccessUsed - k.CrossAccount + cmd.CrossAccount
		if cmd.CrossAccount > k.CrossAccount && used > accessQuota(inst) {
			return fmt.Errorf("%w: %s would use %d of %d", ErrAccessQuotaExceeded, inst.ID, used, accessQuota(inst))
		}
		ni := *inst
		ni.AccessUsed = used
		ni.ModifyIndex = index
		c.instances[ni.ID] = &ni
	}
	if _, ok := c.instances[k.InstanceID]; !ok && cmd.CrossAccount > k.CrossAccount && cmd.CrossAccount > DefaultAccessQuota {
		return defaultKeyOverQuota(cmd.CrossAccount)
	}
	n := k.clone()
	n.CrossAccount = cmd.CrossAccount
	n.Policy = intern(cmd.Policy)
	n.ModifyIndex = index
	c.putKey(n)
	return nil
}
