package api

import (
	"math/rand/v2"
	"testing"
)

// The off-heap set against a Go map: every added hash is found, no other
// is, through growth from one page to many, zero included.
func TestNonceSet_SameAsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := newNonceSet(0)
	defer s.free()
	ref := map[uint64]bool{} // by nonZero(h): 0 is stored as 1, so each is "seen" once the other is
	add := func(h uint64) {
		if s.has(h) != ref[nonZero(h)] {
			t.Fatalf("has(%#x) = %v before adding, want %v", h, s.has(h), ref[nonZero(h)])
		}
		if !ref[nonZero(h)] {
			s.add(h)
			ref[nonZero(h)] = true
		}
	}
	add(0)
	add(1)
	for i := 0; i < 50_000; i++ {
		h := r.Uint64()
		if i%7 == 0 {
			h &= 0xfff // crowd a few slots: long probe runs
		}
		add(h)
	}
	if s.len() != len(ref) {
		t.Fatalf("len %d, want %d", s.len(), len(ref))
	}
	for h := range ref {
		if !s.has(h) {
			t.Fatalf("lost %#x", h)
		}
	}
	for i := 0; i < 50_000; i++ {
		if h := r.Uint64(); !ref[nonZero(h)] && s.has(h) {
			t.Fatalf("has(%#x) for a hash never added", h)
		}
	}
	if len(s.slots)*3 < s.n*4 {
		t.Fatalf("%d entries in %d slots: over 3/4 full", s.n, len(s.slots))
	}
}
