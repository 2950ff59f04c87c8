package api

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// nonceCache remembers the (AccessKeyId, SignatureNonce) pairs of verified
// requests for as long as a request with the same signed time could still
// be accepted, and refuses a pair it has seen.
//
// Its cost has to stay flat under sustained load (issue 16): a node at
// 20,000 requests per second must hold about 20 million nonces (the
// signature window is ±15 minutes), and the first version — one map of
// strings swept under one mutex — grew to gigabytes and stalled the request
// that ran the sweep. So:
//
//   - An entry is a 64-bit keyed hash of the pair (maphash, a seed drawn at
//     start, so nobody can aim collisions): an 8-byte slot of an
//     open-addressing table outside the Go heap (nonceset.go; ~14 bytes per
//     entry with the table's slack), not two strings — so a full cache
//     neither grows the heap the collector paces nor is scanned by it. The chance that a fresh request collides
//     with one of n remembered ones is n/2^64 (10⁻¹² with 20 M entries); it
//     would be refused as a replay and retried with a new nonce.
//   - Entries are grouped by the request's *signed* time into generations
//     of width skew/4. A request signed at T can only be accepted while
//     |now − T| ≤ skew, so a generation whose whole span is older than
//     now − skew is dropped whole — one unmapping, no sweep.
//   - 64 shards, each with its own lock and ring of generations, picked by
//     the hash's top bits: concurrent requests rarely share a lock.
//   - A bound on entries (per shard: the total / 64). When a shard is full
//     the request is refused with 429 instead of forgetting a nonce still
//     inside the window — forgetting would reopen the replay.
//
// A pair is looked up in every live generation of its shard, so reusing a
// nonce with another signed time (a new signature) is refused too.
type nonceCache struct {
	seed        maphash.Seed
	skew        int64 // ns; a request's signed time is within skew of now
	width       int64 // ns; the signed-time span of one generation
	maxPerShard int
	// pruned is the oldest live generation as of the last pass over every
	// shard (pruneAll): shards that no request touches drop theirs too.
	pruned atomic.Int64
	shards [nonceShards]nonceShard
}

const (
	nonceShards = 64
	// nonceGenerations covers signed times from now − skew to now + skew
	// (9 generations of skew/4) plus one being dropped.
	nonceGenerations = 10
	// DefaultNonceCacheEntries bounds the cache at about 8 M entries
	// (10.7–21 bytes each with the tables' slack, so ~110–170 MB at the
	// bound, outside the Go heap): an entry stays 15 to 19 minutes, so a
	// node sustains ~7,000 signed requests per second indefinitely before
	// it sheds load.
	// --nonce-cache-entries changes it.
	DefaultNonceCacheEntries = 8 << 20
)

type nonceShard struct {
	mu   sync.Mutex
	gens [nonceGenerations]nonceGeneration
	size int
	_    [64]byte // keeps two shards' locks off one cache line
}

type nonceGeneration struct {
	id  int64 // floor(signed time / width); meaningful while set != nil
	set *nonceSet
}

// errNonceCacheFull refuses a request while this node cannot remember one
// more nonce inside the signature window.
var errNonceCacheFull = errors.New("this node remembers as many signature nonces as it may; retry with backoff")

// nonceVerdict is the answer of use.
type nonceVerdict int

const (
	nonceFresh nonceVerdict = iota
	nonceReplayed
	nonceFull
)

func newNonceCache(skew time.Duration, maxEntries int) *nonceCache {
	if maxEntries <= 0 {
		maxEntries = DefaultNonceCacheEntries
	}
	width := int64(skew) / 4
	if width <= 0 {
		width = 1
	}
	per := maxEntries / nonceShards
	if per < 1 {
		per = 1
	}
	return &nonceCache{seed: maphash.MakeSeed(), skew: int64(skew), width: width, maxPerShard: per}
}

// use records the pair of a verified request signed at signed and reports
// whether it was fresh. The caller has already refused a signed time more
// than skew away from now.
func (c *nonceCache) use(accessKeyID, nonce string, signed, now time.Time) nonceVerdict {
	var mh maphash.Hash
	mh.SetSeed(c.seed)
	mh.WriteString(accessKeyID)
	mh.WriteByte(0)
	mh.WriteString(nonce)
	h := mh.Sum64()
	sh := &c.shards[h>>(64-6)] // nonceShards = 2^6
	gen := floorDiv(signed.UnixNano(), c.width)
	oldest := floorDiv(now.UnixNano()-c.skew, c.width)
	if p := c.pruned.Load(); oldest > p && c.pruned.CompareAndSwap(p, oldest) {
		// Once per generation (skew/4), one request visits every shard.
		c.pruneAll(oldest)
	}

	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.drop(oldest)
	for i := range sh.gens {
		g := &sh.gens[i]
		if g.set == nil {
			continue
		}
		if g.set.has(h) {
			return nonceReplayed
		}
	}
	if sh.size >= c.maxPerShard {
		return nonceFull
	}
	slot := &sh.gens[mod(gen, nonceGenerations)]
	if slot.set == nil || slot.id != gen {
		if slot.set != nil {
			// A generation a whole ring away: only reachable when the
			// clock jumped; its requests are outside the window now.
			sh.size -= slot.set.len()
			slot.set.free()
		}
		// Sized like the largest live generation: at a steady rate the new
		// one fills as much, without growing step by step.
		hint := 0
		for i := range sh.gens {
			if g := &sh.gens[i]; g.set != nil && g != slot && g.set.len() > hint {
				hint = g.set.len()
			}
		}
		slot.id, slot.set = gen, newNonceSet(hint)
	}
	slot.set.add(h)
	sh.size++
	return nonceFresh
}

// drop forgets the generations older than oldest: every request signed in
// them is refused for its time now. Each goes whole, its table unmapped.
// Caller holds sh.mu.
func (sh *nonceShard) drop(oldest int64) {
	for i := range sh.gens {
		if g := &sh.gens[i]; g.set != nil && g.id < oldest {
			sh.size -= g.set.len()
			g.set.free()
			g.set = nil
		}
	}
}

func (c *nonceCache) pruneAll(oldest int64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.drop(oldest)
		sh.mu.Unlock()
	}
}

// len is the number of remembered nonces.
func (c *nonceCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += sh.size
		sh.mu.Unlock()
	}
	return n
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}
