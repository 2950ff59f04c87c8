package api

// nonceSet is one generation of the nonce cache: a set of non-zero 64-bit
// hashes, open addressing with linear probing, in memory mapped outside the
// Go heap (nonceset_unix.go). Outside the heap, a full cache — hundreds of
// megabytes at a high sustained rate — neither makes the collector's pacer
// let the heap grow by GOGC times its size nor is visited by it, and a
// dropped generation goes back to the kernel at once. A slot is 8 bytes and
// the table at most 3/4 full: 10.7 to 21 bytes per entry, ~14 on average,
// against ~28 live (and a multiple of that in RSS) for a Go map.
//
// Not safe for concurrent use: the cache's shard lock guards it.
type nonceSet struct {
	slots []uint64 // power-of-two length; 0 marks an empty slot
	n     int
	mem   []byte // the mapping behind slots (nil: slots is on the heap)
}

// minNonceSlots is one page of slots.
const minNonceSlots = 512

// newNonceSet returns a set with room for about hint entries before it grows.
func newNonceSet(hint int) *nonceSet {
	c := minNonceSlots
	for c*3/4 < hint {
		c *= 2
	}
	s := &nonceSet{}
	s.slots, s.mem = allocSlots(c)
	return s
}

// nonZero maps the one hash the table cannot hold onto another.
func nonZero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

func (s *nonceSet) has(h uint64) bool {
	h = nonZero(h)
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// add inserts h (not already there), growing the table past 3/4 full.
func (s *nonceSet) add(h uint64) {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	s.insert(nonZero(h))
	s.n++
}

func (s *nonceSet) insert(h uint64) {
	mask := uint64(len(s.slots) - 1)
	i := h & mask
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = h
}

func (s *nonceSet) grow() {
	old, oldMem := s.slots, s.mem
	s.slots, s.mem = allocSlots(2 * len(old))
	for _, h := range old {
		if h != 0 {
			s.insert(h)
		}
	}
	freeSlots(oldMem)
}

func (s *nonceSet) len() int { return s.n }

// free returns the table's memory; the set must not be used after.
func (s *nonceSet) free() {
	freeSlots(s.mem)
	s.slots, s.mem, s.n = nil, nil, 0
}
