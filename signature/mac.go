package signature

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"sync"
)

// macer computes one HMAC (RFC 2104) at a time with a recycled digest and
// recycled buffers. The server verifies a signature on every request, and
// hmac.New costs eight allocations each time (the HMAC, two digests, both
// pads, the key copy); a macer from a pool costs none. Both hashes used
// here (SHA-256, SHA-1) have 64-byte blocks.
type macer struct {
	h   hash.Hash
	pad [64]byte // the key XOR ipad, then XOR opad; cleared after use
	msg []byte   // the message, built in place by the caller
	sum []byte   // the inner digest, then the result
	// canon is a V3 canonical request, built in place by the caller (not
	// secret: everything in it travelled in the clear).
	canon []byte
}

const macBlock = 64

var (
	sha256Macers = sync.Pool{New: func() any { return newMacer(sha256.New()) }}
	sha1Macers   = sync.Pool{New: func() any { return newMacer(sha1.New()) }}
)

func newMacer(h hash.Hash) *macer {
	return &macer{h: h, msg: make([]byte, 0, 256), sum: make([]byte, 0, 2*sha256.Size), canon: make([]byte, 0, 1024)}
}

func getMacer(p *sync.Pool) *macer { return p.Get().(*macer) }

// put returns m to its pool with neither key material nor a keyed digest
// state left in it.
func (m *macer) put(p *sync.Pool) {
	m.h.Reset()
	clear(m.pad[:])
	if cap(m.msg) > 16<<10 {
		m.msg = make([]byte, 0, 256)
	}
	m.msg = m.msg[:0]
	if cap(m.canon) > 16<<10 {
		m.canon = nil
	}
	p.Put(m)
}

// mac returns HMAC(key + keySuffix, msg), valid until the macer is put
// back. newHash is the digest's constructor, for a key longer than a block
// (hashed first, as RFC 2104 says; no real secret is that long, so that
// case simply uses crypto/hmac).
func (m *macer) mac(newHash func() hash.Hash, key, keySuffix string, msg []byte) []byte {
	if len(key)+len(keySuffix) > macBlock {
		h := hmac.New(newHash, []byte(key+keySuffix))
		h.Write(msg)
		m.sum = h.Sum(m.sum[:0])
		return m.sum
	}
	for i := range m.pad {
		m.pad[i] = 0x36
	}
	for i := 0; i < len(key); i++ {
		m.pad[i] ^= key[i]
	}
	for i := 0; i < len(keySuffix); i++ {
		m.pad[len(key)+i] ^= keySuffix[i]
	}
	h := m.h
	h.Reset()
	h.Write(m.pad[:])
	h.Write(msg)
	m.sum = h.Sum(m.sum[:0])
	for i := range m.pad {
		m.pad[i] ^= 0x36 ^ 0x5c
	}
	h.Reset()
	h.Write(m.pad[:])
	h.Write(m.sum)
	m.sum = h.Sum(m.sum[:0])
	return m.sum
}
