//go:build cgo

package hsm

import (
	"bytes"
	"container/list"
	"sync"

	"github.com/miekg/pkcs11"
)

// cachedKey is a working key unwrapped as a session object of the keeper.
// refs counts the operations using the handle right now: an evicted key is
// destroyed only when the last of them is done, so no operation ever runs
// on a handle that was destroyed under it.
type cachedKey struct {
	id      string
	h       pkcs11.ObjectHandle
	gen     uint64
	spec    KeySpec
	usage   Usage
	wrapped []byte
	refs    int
	dead    bool
	elem    *list.Element
}

// keyCache is an LRU of unwrapped keys by the caller's id.
type keyCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*cachedKey
	lru *list.List // front = most recently used
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, m: map[string]*cachedKey{}, lru: list.New()}
}

// get pins and returns the entry for ref if it is of generation gen and was
// unwrapped from the same blob with the same spec and usage.
func (c *keyCache) get(ref KeyRef, usage Usage, gen uint64) *cachedKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.m[ref.ID]
	if k == nil || k.gen != gen || k.spec != ref.Spec || k.usage != usage || !bytes.Equal(k.wrapped, ref.Wrapped) {
		return nil
	}
	k.refs++
	c.lru.MoveToFront(k.elem)
	return k
}

// add inserts k, pinned once, replacing any entry with its id. It returns
// the entries that are now unreferenced and must be destroyed.
func (c *keyCache) add(k *cachedKey) (destroy []*cachedKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k.refs = 1
	if old := c.m[k.id]; old != nil {
		destroy = c.removeLocked(old, destroy)
	}
	k.elem = c.lru.PushFront(k)
	c.m[k.id] = k
	for c.lru.Len() > c.max {
		destroy = c.removeLocked(c.lru.Back().Value.(*cachedKey), destroy)
	}
	return destroy
}

func (c *keyCache) removeLocked(k *cachedKey, destroy []*cachedKey) []*cachedKey {
	c.lru.Remove(k.elem)
	delete(c.m, k.id)
	k.dead = true
	if k.refs == 0 {
		destroy = append(destroy, k)
	}
	return destroy
}

// unpin drops one reference; it reports whether k must now be destroyed.
func (c *keyCache) unpin(k *cachedKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k.refs--
	return k.dead && k.refs == 0
}

// remove evicts id; it returns the entry if it must be destroyed now.
func (c *keyCache) remove(id string) []*cachedKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := c.m[id]; k != nil {
		return c.removeLocked(k, nil)
	}
	return nil
}

// purge forgets every entry without destroying anything: it is called when
// the keeper session, and with it every session object, is gone.
func (c *keyCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.m {
		k.dead = true
	}
	clear(c.m)
	c.lru.Init()
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
