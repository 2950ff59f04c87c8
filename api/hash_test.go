package api_test

import "testing"

// TestFSMHash_StableForKeyWithTags: the catalogue digest that replicas (and
// the "nothing changed" checks of these tests) compare must not change while
// nothing is written. It is computed from the msgpack encoding of every
// record (fsm/snapshot.go, writeRecord), and msgpack encodes a key's Tags
// map in Go's random map iteration order, so a key with two or more tags
// gives a different hash on almost every call. The snapshot bytes are not
// deterministic either, for the same reason.
func TestFSMHash_StableForKeyWithTags(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "tags")
	tn.must(t, "TagResource", map[string]string{"KeyId": key, "Tags": tagsJSON(20)}, nil)
	first := tn.hash()
	for i := range 50 {
		if tn.hash() != first {
			t.Fatalf("FSM.Hash changed on call %d with no write in between", i+2)
		}
	}
}
