// Package fsm is the replicated key catalogue: the Raft state machine that
// holds accounts, access keys, KMS instances, keys, key versions (material
// wrapped under the root key), aliases and tags.
//
// A log entry is one type byte followed by a msgpack body (commands.go).
// Apply is deterministic: it never reads a clock, random numbers, the
// network, an HSM or the disk. Everything it needs arrives in the command.
// An entry whose body does not decode panics, because a replica that skips
// it would silently diverge from the others. Domain errors (key not found,
// wrong state) are returned as the entry's response and change nothing.
//
// See fsm/DESIGN.md for the snapshot format and the consistency notes.
package fsm

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftkms/raftkms/internal/mpdecode"
)

// FSM implements raft.FSM over the key catalogue.
type FSM struct {
	logger hclog.Logger

	mu      sync.RWMutex
	cat     *catalogue
	applied uint64
	// advanced is closed and replaced each time applied moves (or the state
	// is replaced by a restore), waking WaitForIndex callers.
	advanced chan struct{}

	// staged is an operator snapshot already verified and decoded
	// (ResealAndStage, PrepareRestore), with where its bytes can be read
	// again. restoreMu is held by Restore while it reads a staged
	// snapshot's bytes, and by Unstage, so that the bytes are not closed
	// under it.
	stagedMu  sync.Mutex
	staged    *stagedRestore
	restoreMu sync.Mutex

	// snapshotKey authenticates snapshots (HMAC-SHA256). It is
	// configuration, fixed at construction: Apply never uses it.
	snapshotKey []byte

	// afterLoad runs after Restore installs at least afterLoadKeys keys.
	afterLoad     func()
	afterLoadKeys int
}

type stagedRestore struct {
	src  io.ReaderAt // the staged bytes, verified
	size int64
	hdr  SnapshotHeader
	cat  *catalogue
}

// SnapshotBytes is a snapshot that can be read in order and read again at
// any offset: *os.File and *bytes.Reader are.
type SnapshotBytes interface {
	io.ReadSeeker
	io.ReaderAt
}

// Option configures an FSM at construction.
type Option func(*FSM)

// WithSnapshotKey sets the key that authenticates snapshots, the root key's
// Derive(crypto.LabelSnapshotMAC). Every replica of a cluster must have the
// same one. Without it the FSM can neither persist nor restore a snapshot
// (ErrNoSnapshotKey).
func WithSnapshotKey(key []byte) Option {
	return func(f *FSM) { f.snapshotKey = bytes.Clone(key) }
}

// WithAfterLoad has f called at the end of each Restore that installed a
// catalogue of at least keys keys (a restart, a snapshot the leader
// installs, an operator restore); f must not block (Restore holds the
// FSM's lock). A large load leaves behind
// the decoding's garbage and the catalogue it replaced (about the size of
// the new one each); kmsd returns that memory to the system then rather
// than leaving the node's footprint at twice its catalogue until the
// runtime's scavenger gets to it (issue 16).
func WithAfterLoad(keys int, f func()) Option {
	return func(fm *FSM) { fm.afterLoad, fm.afterLoadKeys = f, keys }
}

// New returns an empty FSM.
func New(logger hclog.Logger, opts ...Option) *FSM {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	f := &FSM{logger: logger, cat: newCatalogue(), advanced: make(chan struct{})}
	for _, o := range opts {
		o(f)
	}
	return f
}

var _ raft.FSM = (*FSM)(nil)

// Apply applies one committed log entry. Its return value is nil or a
// domain error.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) == 0 {
		panic(fmt.Sprintf("fsm: empty log entry at index %d", l.Index))
	}
	t := CommandType(l.Data[0])
	body := l.Data[1:]

	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.advance(l.Index)
	if t == CmdSignedWrite {
		return f.applySignedWrite(l, body)
	}
	return f.dispatch(l, t, body)
}

// applySignedWrite admits a signed write's nonce, then applies its inner
// command. A refused nonce changes nothing. Caller holds mu.
func (f *FSM) applySignedWrite(l *raft.Log, body []byte) any {
	var w SignedWriteCmd
	mustDecode(CmdSignedWrite, l.Index, body, &w)
	if len(w.Inner) == 0 || CommandType(w.Inner[0]) == CmdSignedWrite || w.AccessKeyID == "" || w.Nonce == "" {
		// Never proposed by this code: refused the same way on every
		// replica rather than crashing them all.
		return fmt.Errorf("fsm: malformed signed write at index %d", l.Index)
	}
	if err := f.cat.applySignedWrite(&w); err != nil {
		return err
	}
	return f.dispatch(l, CommandType(w.Inner[0]), w.Inner[1:])
}

// dispatch applies one command by type, at l's index. Caller holds mu.
func (f *FSM) dispatch(l *raft.Log, t CommandType, body []byte) any {
	switch t &^ IgnoreUnknownFlag {
	case CmdNoop:
		return nil
	case CmdInit:
		var c InitCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyInit(&c, l.Index)
	case CmdCreateKey:
		var c CreateKeyCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCreateKey(&c, l.Index)
	case CmdUpdateKeyDescription:
		var c UpdateKeyDescriptionCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyUpdateKeyDescription(&c, l.Index)
	case CmdSetKeyState:
		var c SetKeyStateCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applySetKeyState(&c, l.Index)
	case CmdCreateKeyVersion:
		var c CreateKeyVersionCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCreateKeyVersion(&c, l.Index)
	case CmdCreateAlias:
		var c AliasCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCreateAlias(&c, l.Index)
	case CmdUpdateAlias:
		var c AliasCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyUpdateAlias(&c, l.Index)
	case CmdDeleteAlias:
		var c AliasCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyDeleteAlias(&c)
	case CmdTagResource:
		var c TagCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyTagResource(&c, l.Index)
	case CmdUntagResource:
		var c TagCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyUntagResource(&c, l.Index)
	case CmdCreateInstance:
		var c CreateInstanceCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCreateInstance(&c, l.Index)
	case CmdUpdateRotationPolicy:
		var c RotationPolicyCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyUpdateRotationPolicy(&c, l.Index)
	case CmdScheduleKeyDeletion:
		var c KeyDeletionCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyScheduleKeyDeletion(&c, l.Index)
	case CmdCancelKeyDeletion:
		var c KeyDeletionCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCancelKeyDeletion(&c, l.Index)
	case CmdSetDeletionProtection:
		var c DeletionProtectionCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applySetDeletionProtection(&c, l.Index)
	case CmdDeleteKey:
		var c KeyDeletionCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyDeleteKey(&c, l.Index)
	case CmdCreateImportToken, CmdDeleteImportToken:
		var c ImportTokenCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyImportToken(&c, t&^IgnoreUnknownFlag)
	case CmdImportKeyMaterial:
		var c ImportKeyMaterialCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyImportKeyMaterial(&c, l.Index)
	case CmdDeleteKeyMaterial:
		var c DeleteKeyMaterialCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyDeleteKeyMaterial(&c, l.Index)
	case CmdSetKeyPolicy:
		var c KeyPolicyCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applySetKeyPolicy(&c, l.Index)
	case CmdCreateAccount:
		var c CreateAccountCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCreateAccount(&c, l.Index)
	case CmdCreateUser:
		var c UserCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCreateUser(&c, l.Index)
	case CmdDeleteUser:
		var c UserCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyDeleteUser(&c)
	case CmdCreateRole:
		var c RoleCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCreateRole(&c, l.Index)
	case CmdDeleteRole:
		var c RoleCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyDeleteRole(&c)
	case CmdCreateAccessKey:
		var c AccessKeyCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyCreateAccessKey(&c, l.Index)
	case CmdUpdateAccessKey:
		var c AccessKeyCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyUpdateAccessKey(&c, l.Index)
	case CmdDeleteAccessKey:
		var c AccessKeyCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyDeleteAccessKey(&c)
	case CmdAttachPolicy:
		var c AttachPolicyCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyAttachPolicy(&c, l.Index)
	case CmdSetRateLimit:
		var c RateLimitCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applySetRateLimit(&c, l.Index)
	case CmdRegisterHSMDomain:
		var c RegisterHSMDomainCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyRegisterHSMDomain(&c, l.Index)
	case CmdSetInstanceLimit:
		var c InstanceLimitCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applySetInstanceLimit(&c, l.Index)
	case CmdCreateNetworkRule, CmdUpdateNetworkRule, CmdDeleteNetworkRule,
		CmdCreatePermissionPolicy, CmdUpdatePermissionPolicy, CmdDeletePermissionPolicy,
		CmdCreateAAP, CmdUpdateAAP, CmdDeleteAAP, CmdCreateClientKey, CmdDeleteClientKey:
		return f.cat.dispatchAAP(l, t&^IgnoreUnknownFlag, body)
	case CmdCreateSecret, CmdPutSecretValue, CmdUpdateSecret, CmdUpdateSecretVersionStage,
		CmdSecretRotationPolicy, CmdSetSecretPolicy, CmdDeleteSecret, CmdRestoreSecret,
		CmdPurgeSecret, CmdRotateRAMSecret, CmdTagSecret:
		return f.cat.dispatchSecret(l, t&^IgnoreUnknownFlag, body)
	case CmdCreateCertificate, CmdUploadCertificate, CmdUpdateCertificateStatus,
		CmdDeleteCertificate, CmdTagCertificate:
		return f.cat.dispatchCertificate(l, t&^IgnoreUnknownFlag, body)
	case CmdCreateConsoleSession, CmdTouchConsoleSession, CmdDeleteConsoleSession:
		return f.cat.dispatchConsoleSession(l, t&^IgnoreUnknownFlag, body)
	case CmdSetInstanceCA:
		var c SetInstanceCACmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applySetInstanceCA(&c, l.Index)
	case CmdTagResources:
		var c TagResourcesCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyTagResources(&c, l.Index)
	case CmdConnectInstance:
		var c ConnectInstanceCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyConnectInstance(&c, l.Index)
	case CmdBindInstanceVpcs:
		var c BindInstanceVpcsCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyBindInstanceVpcs(&c, l.Index)
	case CmdFinalizeLevel:
		var c FinalizeLevelCmd
		mustDecode(t, l.Index, body, &c)
		return f.cat.applyFinalizeLevel(&c)
	}
	if t&IgnoreUnknownFlag != 0 {
		f.logger.Warn("ignoring unknown command type (written by a newer version)", "type", uint8(t), "index", l.Index)
		return nil
	}
	panic(fmt.Sprintf("fsm: unknown command type %d at index %d: upgrade this node", uint8(t), l.Index))
}

func mustDecode(t CommandType, index uint64, body []byte, v any) {
	if err := mpdecode.Unmarshal(body, v); err != nil {
		panic(fmt.Sprintf("fsm: corrupt %s entry at index %d: %v", t, index, err))
	}
}

// advance records the applied index and wakes waiters. Caller holds mu.
func (f *FSM) advance(index uint64) {
	if index > f.applied {
		f.applied = index
	}
	close(f.advanced)
	f.advanced = make(chan struct{})
}

// AppliedIndex is the index of the last entry this FSM applied (or of the
// snapshot it was restored from).
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// WaitForIndex blocks until the FSM has applied index, or ctx ends.
func (f *FSM) WaitForIndex(ctx context.Context, index uint64) error {
	for {
		f.mu.RLock()
		applied, ch := f.applied, f.advanced
		f.mu.RUnlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for index %d (applied %d): %w", index, applied, ctx.Err())
		}
	}
}

// read runs fn against the current catalogue under the read lock.
func (f *FSM) read(fn func(c *catalogue)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.cat)
}

// Initialized reports whether the cluster has been initialized, and the root
// key check value it was initialized with.
func (f *FSM) Initialized() (bool, []byte) {
	var ok bool
	var check []byte
	f.read(func(c *catalogue) { ok, check = c.initialized, c.rootCheck })
	return ok, check
}

// Key returns a key by id.
func (f *FSM) Key(id string) (*Key, bool) {
	var k *Key
	f.read(func(c *catalogue) { k = c.keys[id] })
	return k, k != nil
}

// KeyVersion returns a key version by id.
func (f *FSM) KeyVersion(id string) (*KeyVersion, bool) {
	var v *KeyVersion
	f.read(func(c *catalogue) { v = c.versions[id] })
	return v, v != nil
}

// Keys returns the account's keys ordered by creation (then id).
func (f *FSM) Keys(accountID string) []*Key {
	var out []*Key
	f.read(func(c *catalogue) {
		ids := c.kidx.byAccount[accountID]
		out = make([]*Key, len(ids))
		for i, id := range ids {
			out[i] = c.keys[id]
		}
	})
	return out
}

// KeysPage returns limit of the account's keys from offset on, in the
// order of Keys, and how many keys the account has: O(limit), whatever
// the number of keys (issue 16). keep, when not nil, filters first (and
// then the page costs a pass over the account's keys, without sorting);
// it runs under the FSM's read lock and must not call the FSM.
func (f *FSM) KeysPage(accountID string, keep func(*Key) bool, offset, limit int) (page []*Key, total int) {
	f.read(func(c *catalogue) {
		ids := c.kidx.byAccount[accountID]
		if keep == nil {
			total = len(ids)
			if offset < 0 || offset >= total || limit <= 0 {
				return
			}
			end := min(total, offset+limit)
			page = make([]*Key, 0, end-offset)
			for _, id := range ids[offset:end] {
				page = append(page, c.keys[id])
			}
			return
		}
		for _, id := range ids {
			k := c.keys[id]
			if !keep(k) {
				continue
			}
			if total >= offset && total-offset < limit {
				page = append(page, k)
			}
			total++
		}
	})
	return page, total
}

// DefaultKey returns the account's default key (the one outside every KMS
// instance), if it has one.
func (f *FSM) DefaultKey(accountID string) (*Key, bool) {
	var k *Key
	f.read(func(c *catalogue) {
		if id, ok := c.kidx.defaults[accountID]; ok {
			k = c.keys[id]
		}
	})
	return k, k != nil
}

// selectSorted collects, under the read lock, the values of one catalogue
// map that keep accepts, ordered by less: the shape of every listing.
func selectSorted[T any](f *FSM, from func(*catalogue) map[string]*T, keep func(*T) bool, less func(a, b *T) bool) []*T {
	var out []*T
	f.read(func(c *catalogue) {
		for _, v := range from(c) {
			if keep(v) {
				out = append(out, v)
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

// Alias returns an account's alias by name.
func (f *FSM) Alias(accountID, name string) (*Alias, bool) {
	var a *Alias
	f.read(func(c *catalogue) { a = c.aliases[aliasKey(accountID, name)] })
	return a, a != nil
}

// Aliases returns the account's aliases sorted by name; keyID filters when
// not empty.
func (f *FSM) Aliases(accountID, keyID string) []*Alias {
	return selectSorted(f, func(c *catalogue) map[string]*Alias { return c.aliases },
		func(a *Alias) bool { return a.AccountID == accountID && (keyID == "" || a.KeyID == keyID) },
		func(a, b *Alias) bool { return a.Name < b.Name })
}

// AccessKey returns an access key by id.
func (f *FSM) AccessKey(id string) (*AccessKey, bool) {
	var a *AccessKey
	f.read(func(c *catalogue) { a = c.accessKeys[id] })
	return a, a != nil
}

// Account returns an account by id.
func (f *FSM) Account(id string) (*Account, bool) {
	var a *Account
	f.read(func(c *catalogue) { a = c.accounts[id] })
	return a, a != nil
}

// Instance returns a KMS instance by id.
func (f *FSM) Instance(id string) (*Instance, bool) {
	var in *Instance
	f.read(func(c *catalogue) { in = c.instances[id] })
	return in, in != nil
}

// Instances returns the account's instances sorted by id.
func (f *FSM) Instances(accountID string) []*Instance {
	return selectSorted(f, func(c *catalogue) map[string]*Instance { return c.instances },
		func(i *Instance) bool { return i.AccountID == accountID },
		func(a, b *Instance) bool { return a.ID < b.ID })
}

// User returns an account's user by name.
func (f *FSM) User(accountID, name string) (*User, bool) {
	var u *User
	f.read(func(c *catalogue) { u = c.users[identityKey(accountID, name)] })
	return u, u != nil
}

// Users returns an account's users sorted by name.
func (f *FSM) Users(accountID string) []*User {
	return selectSorted(f, func(c *catalogue) map[string]*User { return c.users },
		func(u *User) bool { return u.AccountID == accountID },
		func(a, b *User) bool { return a.Name < b.Name })
}

// Role returns an account's role by name.
func (f *FSM) Role(accountID, name string) (*Role, bool) {
	var r *Role
	f.read(func(c *catalogue) { r = c.roles[identityKey(accountID, name)] })
	return r, r != nil
}

// Roles returns an account's roles sorted by name.
func (f *FSM) Roles(accountID string) []*Role {
	return selectSorted(f, func(c *catalogue) map[string]*Role { return c.roles },
		func(r *Role) bool { return r.AccountID == accountID },
		func(a, b *Role) bool { return a.Name < b.Name })
}

// AccessKeysOf returns the access keys of one principal, sorted by id.
func (f *FSM) AccessKeysOf(principal string) []*AccessKey {
	return selectSorted(f, func(c *catalogue) map[string]*AccessKey { return c.accessKeys },
		func(a *AccessKey) bool { return a.Principal == principal },
		func(a, b *AccessKey) bool { return a.ID < b.ID })
}

// ImportToken returns an import token by id.
func (f *FSM) ImportToken(id string) (*ImportToken, bool) {
	var t *ImportToken
	f.read(func(c *catalogue) { t = c.tokens[id] })
	return t, t != nil
}

// AllKeys returns every key of every account (the leader's scheduler scans
// them), in no particular order.
func (f *FSM) AllKeys() []*Key {
	var out []*Key
	f.read(func(c *catalogue) {
		out = make([]*Key, 0, len(c.keys))
		for _, k := range c.keys {
			out = append(out, k)
		}
	})
	return out
}

// KeysWithDuties returns the keys the leader's scheduler may have to act
// on: those pending deletion, rotating automatically or with imported
// material that expires (a superset; the scheduler decides). It visits
// those keys only, not the whole catalogue.
func (f *FSM) KeysWithDuties() []*Key {
	var out []*Key
	f.read(func(c *catalogue) {
		out = make([]*Key, 0, len(c.kidx.duties))
		for id := range c.kidx.duties {
			out = append(out, c.keys[id])
		}
	})
	return out
}

// ImportTokens returns every import token, for expiry.
func (f *FSM) ImportTokens() []*ImportToken {
	var out []*ImportToken
	f.read(func(c *catalogue) {
		for _, t := range c.tokens {
			out = append(out, t)
		}
	})
	return out
}

// Counts returns the number of keys per state, for metrics.
func (f *FSM) Counts() map[string]int {
	out := map[string]int{}
	f.read(func(c *catalogue) {
		for _, k := range c.keys {
			out[k.State]++
		}
	})
	return out
}

// Snapshot captures the catalogue at this point. Records are immutable, so
// copying the maps is enough and Apply may continue at once.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &snapshot{cat: f.cat.shallowCopy(), index: f.applied, key: f.snapshotKey}, nil
}

// Restore replaces the whole catalogue with a snapshot's. The snapshot is
// decoded and verified completely before anything is swapped in.
//
// Raft calls Restore for an operator restore on the leader from inside its
// leader loop, where no heartbeats go out: decoding a large catalogue there
// would let followers time out and elect another leader mid-restore. So the
// bytes are compared with those PrepareRestore (or ResealAndStage) already
// decoded as they are read, and when they are exactly those, that catalogue
// is swapped in without decoding again.
//
// Restore accepts the old unauthenticated format 1 as well: Raft calls it
// with the snapshots on this node's own disk (written by an older build
// before an upgrade) and with snapshots an older leader installs during a
// rolling upgrade. Neither is a new way in: whoever can write this node's
// disk or speak on the cluster port can already change the Raft log. An
// operator restore never reaches here with format 1: it is resealed first.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.stagedMu.Lock()
	staged := f.staged != nil
	f.stagedMu.Unlock()
	var hdr SnapshotHeader
	var cat *catalogue
	var err error
	if !staged {
		// Nothing staged (a restart, or a snapshot a leader installs):
		// decode as the bytes arrive rather than holding the whole file in
		// memory first (issue 16: a million keys is ~800 MB of snapshot).
		if hdr, cat, err = readSnapshot(bufio.NewReaderSize(rc, 1<<20), f.readOptions(true)); err != nil {
			return err
		}
	} else {
		// The bytes Raft delivers are compared with the staged ones as
		// they are read, not held in memory and hashed (issue 16: a
		// million keys is ~900 MB); different bytes are decoded as usual.
		f.restoreMu.Lock()
		defer f.restoreMu.Unlock()
		f.stagedMu.Lock()
		st := f.staged
		f.stagedMu.Unlock()
		var rest io.Reader = rc
		if st != nil {
			same, r, err := sameAsStaged(rc, st)
			if err != nil {
				return fmt.Errorf("%w: reading: %v", ErrBadSnapshot, err)
			}
			if same {
				f.stagedMu.Lock()
				if f.staged == st {
					f.staged = nil
				}
				f.stagedMu.Unlock()
				hdr, cat = st.hdr, st.cat
			}
			rest = r
		}
		if cat == nil {
			if hdr, cat, err = readSnapshot(bufio.NewReaderSize(rest, 1<<20), f.readOptions(true)); err != nil {
				return err
			}
		}
	}
	if hdr.Format == snapshotFormatSHA256 {
		f.logger.Warn("restored an unauthenticated format 1 snapshot from Raft (written before an upgrade); the next snapshot is written authenticated",
			"index", hdr.LastIndex)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cat = cat
	// The applied index follows the snapshot; entries after it arrive
	// through Apply. Waiters are woken so they re-check.
	f.applied = hdr.LastIndex
	close(f.advanced)
	f.advanced = make(chan struct{})
	if f.afterLoad != nil && len(cat.keys) >= f.afterLoadKeys {
		f.afterLoad()
	}
	return nil
}

// stagedCompareChunk is how much of a snapshot Restore compares with the
// staged bytes at a time (tests lower it).
var stagedCompareChunk = 1 << 20

// sameAsStaged reads r to its end, comparing it with st's bytes, and
// reports whether they are the same. When they are not, it returns a
// reader of r's bytes from the start: the part that matched, read again
// from st, then the rest of r.
func sameAsStaged(r io.Reader, st *stagedRestore) (bool, io.Reader, error) {
	got, want := make([]byte, stagedCompareChunk), make([]byte, stagedCompareChunk)
	var off int64
	for {
		n, err := io.ReadFull(r, got)
		if n > 0 {
			m := 0
			if off+int64(n) <= st.size {
				m, _ = st.src.ReadAt(want[:n], off)
			}
			if m < n || !bytes.Equal(got[:n], want[:n]) {
				return false, io.MultiReader(io.NewSectionReader(st.src, 0, off), bytes.NewReader(got[:n]), r), nil
			}
			off += int64(n)
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			if off == st.size {
				return true, nil, nil
			}
			return false, io.NewSectionReader(st.src, 0, off), nil
		default:
			return false, nil, err
		}
	}
}

// DecodedSnapshot is a snapshot decoded and checked by DecodeStream, not
// yet staged.
type DecodedSnapshot struct {
	hdr SnapshotHeader
	cat *catalogue
}

// DecodeStream decodes and checks the authenticated snapshot read from r in
// one pass, as Restore decodes what Raft delivers: the records as they
// arrive, the MAC over exactly the bytes decoded at the end (nothing is
// applied anywhere). It is for bytes that a node of this cluster checked
// before sending them — a follower handing the leader a restore in parts,
// decoded while the parts arrive; StageDecoded then stages the result for
// the file they were written to.
func (f *FSM) DecodeStream(r io.Reader) (*DecodedSnapshot, SnapshotInfo, error) {
	hdr, cat, err := readSnapshot(r, f.readOptions(false))
	if err != nil {
		return nil, SnapshotInfo{}, err
	}
	return &DecodedSnapshot{hdr: hdr, cat: cat}, snapshotInfo(hdr, cat), nil
}

// StageDecoded stages d for src, which must hold exactly the size bytes d
// was decoded from: PrepareRestore(src) then reads nothing, and Restore
// compares Raft's copy with src.
func (f *FSM) StageDecoded(d *DecodedSnapshot, src SnapshotBytes, size int64) {
	f.stage(&stagedRestore{src: src, size: size, hdr: d.hdr, cat: d.cat})
}

// PrepareRestore verifies and decodes an operator snapshot ahead of a
// Raft restore of the same bytes, so that Restore on the leader only has to
// recognise them. Only the authenticated format is accepted (see
// ResealSnapshot). It changes nothing visible.
func (f *FSM) PrepareRestore(r SnapshotBytes) (SnapshotInfo, error) {
	// The bytes ResealAndStage staged (the usual operator restore on the
	// leader) are not decoded, nor read, again: a million keys is seconds
	// of decoding and another catalogue in memory. Restore compares them
	// with what Raft delivers.
	f.stagedMu.Lock()
	st := f.staged
	f.stagedMu.Unlock()
	if st != nil && st.src == io.ReaderAt(r) {
		return snapshotInfo(st.hdr, st.cat), nil
	}
	hdr, cat, err := openSnapshot(r, f.readOptions(false))
	if err != nil {
		return SnapshotInfo{}, err
	}
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return SnapshotInfo{}, err
	}
	f.stage(&stagedRestore{src: r, size: size, hdr: hdr, cat: cat})
	return snapshotInfo(hdr, cat), nil
}

// HoldsStagedRestore reports whether a decoded operator snapshot is held
// for a restore (a whole catalogue in memory until Restore or Unstage).
func (f *FSM) HoldsStagedRestore() bool {
	f.stagedMu.Lock()
	defer f.stagedMu.Unlock()
	return f.staged != nil
}

func (f *FSM) stage(st *stagedRestore) {
	f.stagedMu.Lock()
	f.staged = st
	f.stagedMu.Unlock()
}

// Unstage forgets the snapshot staged from src, if it is still staged,
// once no Restore reads it: the caller may then close src. A restore that
// failed or went elsewhere must not hold a decoded catalogue in memory.
func (f *FSM) Unstage(src io.ReaderAt) {
	f.restoreMu.Lock()
	defer f.restoreMu.Unlock()
	f.stagedMu.Lock()
	defer f.stagedMu.Unlock()
	if f.staged != nil && f.staged.src == src {
		f.staged = nil
	}
}

// ResealAndStage is ResealSnapshot that also stages the state it decoded
// for a restore of the resealed bytes (as PrepareRestore would, without
// decoding them a second time), and returns those bytes. A snapshot already
// in the current authenticated format is not copied: the resealed bytes
// are r (issue 16: a copy of a million keys' 900 MB was a quarter of an
// operator restore's CPU). Else it encodes the snapshot again into the
// writer newWriter gives, which must be an *os.File, a *bytes.Buffer or
// another SnapshotBytes, to be read back. Until Unstage, the resealed bytes
// must stay readable.
func (f *FSM) ResealAndStage(r SnapshotBytes, newWriter func() (io.Writer, error), opt VerifyOptions) (SnapshotInfo, SnapshotBytes, error) {
	hdr, cat, err := openSnapshot(r, f.readOptions(opt.AcceptUnauthenticated))
	if err != nil {
		return SnapshotInfo{}, nil, err
	}
	resealed := r
	if hdr.Format != snapshotFormat {
		w, err := newWriter()
		if err != nil {
			return SnapshotInfo{}, nil, err
		}
		if err := writeSnapshot(w, cat, hdr.LastIndex, f.snapshotKey); err != nil {
			return SnapshotInfo{}, nil, err
		}
		switch w := w.(type) {
		case *bytes.Buffer:
			resealed = bytes.NewReader(w.Bytes())
		case SnapshotBytes:
			resealed = w
		default:
			return SnapshotInfo{}, nil, fmt.Errorf("fsm: cannot read back the resealed snapshot from a %T", w)
		}
	}
	size, err := resealed.Seek(0, io.SeekEnd)
	if err != nil {
		return SnapshotInfo{}, nil, err
	}
	if _, err := resealed.Seek(0, io.SeekStart); err != nil {
		return SnapshotInfo{}, nil, err
	}
	// What the resealed bytes' header says.
	st := SnapshotHeader{Format: snapshotFormat, LastIndex: hdr.LastIndex, RootCheck: cat.rootCheck, NeedsLevel: hdr.NeedsLevel}
	f.stage(&stagedRestore{src: resealed, size: size, hdr: st, cat: cat})
	return snapshotInfo(hdr, cat), resealed, nil
}

// WriteSnapshotTo writes a point-in-time snapshot of the catalogue to w, in
// the same format Raft persists, and returns the applied index it captures.
func (f *FSM) WriteSnapshotTo(w io.Writer) (uint64, error) {
	f.mu.RLock()
	cat, idx := f.cat.shallowCopy(), f.applied
	f.mu.RUnlock()
	return idx, writeSnapshot(w, cat, idx, f.snapshotKey)
}

// Hash is a digest of the whole catalogue (not of the applied index), equal
// on every replica that applied the same entries. Tests and the fault
// harness compare it across nodes at one applied index. It leaves out the
// signed-write nonce table (replay.go): a write refused by the catalogue
// spends its nonce but changes nothing the hash stands for.
func (f *FSM) Hash() ([32]byte, uint64) {
	f.mu.RLock()
	cat, idx := f.cat.shallowCopy(), f.applied
	f.mu.RUnlock()
	cat.replay = newReplayGuard()
	return cat.hash(), idx
}
