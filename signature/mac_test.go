package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// The pooled HMAC gives crypto/hmac's answer for every key length (short,
// exactly a block, longer than a block: hashed first), with and without
// the V1 key suffix, and a macer reused across keys keeps nothing of the
// previous one.
func TestMacer_SameAsCryptoHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, hc := range []struct {
		name string
		new  func() hash.Hash
		pool *sync.Pool
	}{{"sha256", sha256.New, &sha256Macers}, {"sha1", sha1.New, &sha1Macers}} {
		for keyLen := 0; keyLen <= 2*macBlock+1; keyLen++ {
			for _, suffix := range []string{"", "&"} {
				key := strings.Repeat("k", keyLen)
				msg := make([]byte, rng.IntN(300))
				for i := range msg {
					msg[i] = byte(rng.Uint32())
				}
				want := hmac.New(hc.new, []byte(key+suffix))
				want.Write(msg)
				m := getMacer(hc.pool)
				got := bytes.Clone(m.mac(hc.new, key, suffix, msg))
				m.put(hc.pool)
				if !bytes.Equal(got, want.Sum(nil)) {
					t.Fatalf("%s, key of %d bytes + %q: HMAC differs from crypto/hmac", hc.name, keyLen, suffix)
				}
			}
		}
	}
}

// A macer goes back to its pool without the key's pads.
func TestMacer_PutClearsThePads(t *testing.T) {
	m := newMacer(sha256.New())
	m.mac(sha256.New, "secret", "", []byte("msg"))
	var p sync.Pool
	m.put(&p)
	if m.pad != [macBlock]byte{} {
		t.Fatal("pads left in a pooled macer")
	}
}
