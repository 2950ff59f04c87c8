package fsm

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"unique"
)

// keyIndex orders each account's keys for listing and finds its default
// key, so that neither ListKeys nor CreateKey has to visit every key of the
// catalogue (issue 16: a million keys). Only Apply and a snapshot load
// change it, under the FSM's write lock; readers use it under the read lock
// and copy out what they return.
type keyIndex struct {
	// byAccount holds each account's key ids in the order ListKeys shows:
	// by CreateIndex, then id. A key is created at the index of its
	// CreateKey entry, always past every existing key, so a creation is an
	// append.
	byAccount map[string][]string
	// defaults is the account's default key (the one outside every
	// instance), by account id.
	defaults map[string]string
	// duties holds the ids of the keys the leader's scheduler may have to
	// act on (hasDuty), so that it visits those rather than every key
	// each second (issue 16: at a million keys that scan was a third of
	// a node's CPU during a restore).
	duties map[string]struct{}
}

func newKeyIndex() *keyIndex {
	return &keyIndex{byAccount: map[string][]string{}, defaults: map[string]string{}, duties: map[string]struct{}{}}
}

// keyBefore is the listing order.
func keyBefore(a, b *Key) bool {
	if a.CreateIndex != b.CreateIndex {
		return a.CreateIndex < b.CreateIndex
	}
	return a.ID < b.ID
}

// search is the position of k in ids (or where it would go); keys resolves
// ids, all of which it holds.
func (x *keyIndex) search(ids []string, keys map[string]*Key, k *Key) int {
	return sort.Search(len(ids), func(i int) bool { return !keyBefore(keys[ids[i]], k) })
}

// add indexes a key just stored in keys.
func (x *keyIndex) add(keys map[string]*Key, k *Key) {
	ids := x.byAccount[k.AccountID]
	if n := len(ids); n == 0 || keyBefore(keys[ids[n-1]], k) {
		x.byAccount[k.AccountID] = append(ids, k.ID)
	} else {
		// Not reached by Apply (creation indexes only grow); kept correct
		// for any order.
		i := x.search(ids, keys, k)
		ids = append(ids, "")
		copy(ids[i+1:], ids[i:])
		ids[i] = k.ID
		x.byAccount[k.AccountID] = ids
	}
	if k.InstanceID == "" {
		x.defaults[k.AccountID] = k.ID
	}
}

// hasDuty reports whether the scheduler may ever act on k as it is: the
// end of its deletion window, an automatic rotation, the expiry of its
// imported material (kms.SchedulerTick; a superset of what it acts on).
func hasDuty(k *Key) bool {
	return k.State == StatePendingDeletion || k.RotationInterval > 0 || k.MaterialExpireTime > 0
}

// track records whether k, just stored, has a duty.
func (x *keyIndex) track(k *Key) {
	if hasDuty(k) {
		x.duties[k.ID] = struct{}{}
	} else if _, ok := x.duties[k.ID]; ok {
		delete(x.duties, k.ID)
	}
}

// remove drops a key that keys still holds: O(log n) to find, one memmove
// of the account's list to close the gap (deletion is rare).
func (x *keyIndex) remove(keys map[string]*Key, k *Key) {
	ids := x.byAccount[k.AccountID]
	i := x.search(ids, keys, k)
	if i < len(ids) && ids[i] == k.ID {
		copy(ids[i:], ids[i+1:])
		ids[len(ids)-1] = ""
		ids = ids[:len(ids)-1]
		if len(ids) == 0 {
			delete(x.byAccount, k.AccountID)
		} else {
			x.byAccount[k.AccountID] = ids
		}
	}
	delete(x.duties, k.ID)
	if x.defaults[k.AccountID] == k.ID {
		delete(x.defaults, k.AccountID)
	}
}

// rebuild indexes every key of a loaded catalogue.
func (x *keyIndex) rebuild(keys []*Key) {
	*x = *newKeyIndex()
	// Sorted as values, not as pointers to the keys: a million keys'
	// comparisons then read one array instead of a million scattered
	// records (issue 16: restart of a million keys).
	byAccount := map[string][]indexEntry{}
	for _, k := range keys {
		byAccount[k.AccountID] = append(byAccount[k.AccountID], indexEntry{k.CreateIndex, k.ID})
		if k.InstanceID == "" {
			x.defaults[k.AccountID] = k.ID
		}
		if hasDuty(k) {
			x.duties[k.ID] = struct{}{}
		}
	}
	for acct, es := range byAccount {
		sortIndexEntries(es)
		ids := make([]string, len(es))
		for i, e := range es {
			ids[i] = e.id
		}
		x.byAccount[acct] = ids
	}
}

// indexEntry is a key's place in its account's list: by create index, then
// id.
type indexEntry struct {
	ci uint64
	id string
}

func compareIndexEntries(a, b indexEntry) int {
	if c := cmp.Compare(a.ci, b.ci); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// sortIndexEntries sorts es by create index, then id. A large list is
// sorted by a radix sort on the create index (a million keys: ~40 ms
// instead of ~0.6 s comparing; issue 16), then each run of equal create
// indexes (keys made by one entry) by id.
func sortIndexEntries(es []indexEntry) {
	const digit = 11
	if len(es) < 4096 {
		slices.SortFunc(es, compareIndexEntries)
		return
	}
	var top uint64
	for _, e := range es {
		top |= e.ci
	}
	src, dst := es, make([]indexEntry, len(es))
	for shift := 0; shift < 64 && top>>shift != 0; shift += digit {
		var count [1<<digit + 1]int
		for _, e := range src {
			count[(e.ci>>shift)&(1<<digit-1)+1]++
		}
		for i := 1; i < len(count); i++ {
			count[i] += count[i-1]
		}
		for _, e := range src {
			d := (e.ci >> shift) & (1<<digit - 1)
			dst[count[d]] = e
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &es[0] {
		copy(es, src)
	}
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].ci == es[i].ci {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(es[i:j], compareIndexEntries)
		}
		i = j
	}
}

// intern returns the canonical copy of a string that many records repeat
// (account and instance ids, specs, states): a million keys then share a
// handful of copies instead of holding a million each. unique keeps a copy
// only while something refers to it.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// noTags is the shared empty tag map of every key without tags. Records
// are never changed in place (clone copies a non-nil map), so sharing it is
// safe, and it still encodes as {} like a key's own empty map did.
var noTags = map[string]string{}

// compact makes a key record share what it can: interned repeated strings
// and the shared empty tag map. It changes no value.
func (k *Key) compact() { k.compactWith(intern) }

func (k *Key) compactWith(intern func(string) string) {
	k.AccountID = intern(k.AccountID)
	k.InstanceID = intern(k.InstanceID)
	k.Spec = intern(k.Spec)
	k.Usage = intern(k.Usage)
	k.Origin = intern(k.Origin)
	k.ProtectionLevel = intern(k.ProtectionLevel)
	k.State = intern(k.State)
	k.Creator = intern(k.Creator)
	k.CreatorType = intern(k.CreatorType)
	// Most keys carry their account's default policy, ~170 bytes each.
	k.Policy = intern(k.Policy)
	if k.Tags != nil && len(k.Tags) == 0 {
		k.Tags = noTags
	}
}

// compactLoaded finishes a loaded catalogue: keys share the empty tag map
// and the key index is built. (The strings keys repeat were interned as
// they were decoded, decodeShared; a key and its versions were made to
// share their ids by checkReferences.) Called once a snapshot has decoded
// and passed its reference checks.
func (c *catalogue) compactLoaded(keys []*Key) {
	for _, k := range keys {
		if k.Tags != nil && len(k.Tags) == 0 {
			k.Tags = noTags
		}
	}
	c.kidx.rebuild(keys)
	c.replay.heapify()
}
