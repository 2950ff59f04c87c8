package fsm

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"time"

	"github.com/raftkms/raftkms/internal/mpdecode"
)

// NonceWindow is how long the catalogue remembers the signature nonce of a
// signed write: the signature's validity window (the API's default clock
// skew), measured on the times the commands carry (when the receiving node
// verified each signature), never on a replica's clock. It is part of the
// log's meaning: changing it changes what replicas accept.
const NonceWindow = 15 * time.Minute

const nonceWindowMs = int64(NonceWindow / time.Millisecond)

// Replay errors: a signed write refused before its inner command ran. It
// changed nothing (not even the nonce table).
var (
	ErrNonceUsed        = errors.New("the signature nonce has been used already by a write applied in the cluster")
	ErrSignatureExpired = errors.New("the signed write is outside the signature's validity window")
)

// nonceKey names one signed write: the access key that signed the request,
// its signature nonce, and the position of the write among those the one
// request proposed (almost always 0).
type nonceKey struct {
	AccessKeyID string
	Nonce       string
	Seq         uint32
}

func (k nonceKey) less(o nonceKey) bool {
	if k.AccessKeyID != o.AccessKeyID {
		return k.AccessKeyID < o.AccessKeyID
	}
	if k.Nonce != o.Nonce {
		return k.Nonce < o.Nonce
	}
	return k.Seq < o.Seq
}

// replayGuard is the catalogue's table of applied signed-write nonces.
//
// clock is the latest verification time (Unix ms, SignedWriteCmd.Now) of a
// signed write it accepted; nothing else moves it, and it never reads a
// real clock. A nonce
// is kept until clock passes its expiry (SignedAt + NonceWindow) and a
// signed write whose expiry clock has passed is refused outright, so a
// nonce that was pruned can never be accepted again: whatever the table
// forgot, the expiry check refuses.
type replayGuard struct {
	clock int64
	// clockLoaded refuses a second clock record in a snapshot.
	clockLoaded bool
	seen        map[nonceKey]int64 // expiry, Unix ms
	// queue orders seen by expiry for pruning; nil in a read-only copy.
	queue *expiryQueue
	// unordered is set while a snapshot load appends to queue without
	// keeping it a heap; heapify ends it.
	unordered bool
}

// heapify makes queue a heap again after a snapshot load.
func (g *replayGuard) heapify() {
	if g.unordered {
		heap.Init(g.queue)
		g.unordered = false
	}
}

func newReplayGuard() *replayGuard {
	return &replayGuard{seen: map[nonceKey]int64{}, queue: &expiryQueue{}}
}

// readOnlyCopy is for snapshots and hashes: the table and the clock, not
// the pruning queue.
func (g *replayGuard) readOnlyCopy() *replayGuard {
	n := &replayGuard{clock: g.clock, seen: maps.Clone(g.seen)}
	if n.seen == nil {
		n.seen = map[nonceKey]int64{}
	}
	return n
}

// admit decides whether a signed write may run and, if so, records its
// nonce. A refusal changes nothing.
func (g *replayGuard) admit(cmd *SignedWriteCmd) error {
	k := nonceKey{AccessKeyID: cmd.AccessKeyID, Nonce: cmd.Nonce, Seq: cmd.Seq}
	if _, used := g.seen[k]; used {
		return fmt.Errorf("%w: nonce %q of access key %s", ErrNonceUsed, cmd.Nonce, cmd.AccessKeyID)
	}
	clock := max(g.clock, cmd.Now)
	expires := cmd.SignedAt + nonceWindowMs
	if expires <= clock {
		return fmt.Errorf("%w: signed at %s, the cluster's clock is at %s; sign the request again",
			ErrSignatureExpired, msTime(cmd.SignedAt), msTime(clock))
	}
	if cmd.SignedAt > cmd.Now+nonceWindowMs {
		// Bounds how long an entry can live: never more than two windows
		// past the time its signature was verified.
		return fmt.Errorf("%w: signed at %s, more than %s after it was verified at %s",
			ErrSignatureExpired, msTime(cmd.SignedAt), NonceWindow, msTime(cmd.Now))
	}
	g.clock = clock
	g.prune()
	// One copy of the access key id for all its nonces (a bulk load keeps
	// a nonce per write for the whole window).
	k.AccessKeyID = intern(k.AccessKeyID)
	g.seen[k] = expires
	heap.Push(g.queue, expiryItem{key: k, expires: expires})
	return nil
}

// prune forgets every nonce whose expiry the clock has reached. The result
// depends only on the table and the clock, so a replica restored from a
// snapshot and one that applied the log hold the same table.
func (g *replayGuard) prune() {
	for g.queue.Len() > 0 && (*g.queue)[0].expires <= g.clock {
		it := heap.Pop(g.queue).(expiryItem)
		delete(g.seen, it.key)
	}
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

type expiryItem struct {
	key     nonceKey
	expires int64
}

type expiryQueue []expiryItem

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].expires < q[j].expires }
func (q expiryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryQueue) Push(x any)        { *q = append(*q, x.(expiryItem)) }
func (q *expiryQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// Snapshot records of the nonce table. A catalogue that never applied a
// signed write writes none, so its snapshot is byte for byte what it was
// before replay protection; a snapshot without them loads with an empty
// table.
const (
	recReplayClock = 0x0c // {clock}, once, only when the clock is set
	recSignedNonce = 0x0d // one per remembered nonce, sorted by key
)

type replayClockRecord struct {
	Clock int64 `msgpack:"clock"`
}

type signedNonceRecord struct {
	AccessKeyID string `msgpack:"ak"`
	Nonce       string `msgpack:"nonce"`
	Seq         uint32 `msgpack:"seq,omitempty"`
	Expires     int64  `msgpack:"exp"`
}

func (g *replayGuard) writeRecords(w io.Writer, keys []nonceKey) error {
	if g.clock == 0 && len(g.seen) == 0 {
		return nil
	}
	if err := writeRecord(w, recReplayClock, replayClockRecord{Clock: g.clock}); err != nil {
		return err
	}
	for _, k := range keys {
		rec := signedNonceRecord{AccessKeyID: k.AccessKeyID, Nonce: k.Nonce, Seq: k.Seq, Expires: g.seen[k]}
		if err := writeNonceRecord(w, &rec); err != nil {
			return err
		}
	}
	return nil
}

// sortedKeys is the nonces in the order writeRecords takes them.
func (g *replayGuard) sortedKeys() []nonceKey {
	keys := make([]nonceKey, 0, len(g.seen))
	for k := range g.seen {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	return keys
}

// loadRecord loads one replay record; handled is false for other types.
func (g *replayGuard) loadRecord(typ byte, body []byte) (handled bool, err error) {
	switch typ {
	case recReplayClock:
		var r replayClockRecord
		if err := mpdecode.Unmarshal(body, &r); err != nil {
			return true, err
		}
		if g.clockLoaded {
			return true, errors.New("duplicate replay clock record")
		}
		g.clock, g.clockLoaded = r.Clock, true
		return true, nil
	case recSignedNonce:
		var r signedNonceRecord
		if err := mpdecode.Unmarshal(body, &r); err != nil {
			return true, err
		}
		return true, g.addLoaded(r)
	}
	return false, nil
}

var errNonceRecordEmpty = errors.New("nonce record without access key or nonce")

// addAllLoaded adds the nonces a snapshot load collected (finishLoad), in
// a table made to its final size; the queue takes them as they are and is
// made a heap by heapify.
func (g *replayGuard) addAllLoaded(items []expiryItem) error {
	if len(items) == 0 {
		return nil
	}
	seen := make(map[nonceKey]int64, len(g.seen)+len(items))
	for k, v := range g.seen {
		seen[k] = v
	}
	for _, it := range items {
		if _, dup := seen[it.key]; dup {
			return fmt.Errorf("duplicate nonce record %q", it.key.Nonce)
		}
		seen[it.key] = it.expires
	}
	g.seen = seen
	if len(*g.queue) == 0 {
		*g.queue = items
	} else {
		*g.queue = append(*g.queue, items...)
	}
	g.unordered = true
	return nil
}

// addLoaded adds a decoded nonce record. Its access key id is interned
// already (both decoders share it).
func (g *replayGuard) addLoaded(r signedNonceRecord) error {
	if r.AccessKeyID == "" || r.Nonce == "" {
		return errNonceRecordEmpty
	}
	k := nonceKey{AccessKeyID: r.AccessKeyID, Nonce: r.Nonce, Seq: r.Seq}
	if _, dup := g.seen[k]; dup {
		return fmt.Errorf("duplicate nonce record %q", r.Nonce)
	}
	g.seen[k] = r.Expires
	// Appended, and made a heap once every record is in (heapify,
	// below): O(n) for a snapshot's million nonces, not O(n log n).
	*g.queue = append(*g.queue, expiryItem{key: k, expires: r.Expires})
	g.unordered = true
	return nil
}

// applySignedWrite is the catalogue half of a signed write: admit the nonce.
// The FSM then applies the inner command; a domain error there leaves the
// nonce recorded (the request was applied, and refused), so the same
// request sent again is a replay like any other.
func (c *catalogue) applySignedWrite(cmd *SignedWriteCmd) error {
	return c.replay.admit(cmd)
}

// NonceCount is the number of signed-write nonces the catalogue remembers.
func (f *FSM) NonceCount() int {
	var n int
	f.read(func(c *catalogue) { n = len(c.replay.seen) })
	return n
}
