package fsm

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/raftkms/raftkms/internal/mpdecode"
)

// Snapshot file layout (also what `kmsctl operator snapshot save` writes):
//
//	"RAFTKMS\x00"                 8-byte magic
//	uint16 big-endian             format version (2)
//	uint32 + msgpack              header: format, last applied index, root key check value
//	records, each:                type byte, uint32 big-endian length, msgpack body
//	0x00                          end-of-records marker
//	32 bytes                      HMAC-SHA256 of every byte before it, under
//	                              the snapshot key (root key, HKDF label
//	                              crypto.LabelSnapshotMAC)
//
// Format 1 was the same with a plain SHA-256 trailer, which anyone who edits
// the file recomputes. It is still read where the caller allows it (see
// readOptions), never written.
//
// Records appear by type (meta, accounts, access keys, instances, keys,
// versions, aliases, import tokens, users, roles, HSM domains, then the
// replay records of replay.go, the application access records of aap.go,
// the instance CA, the secrets of secrets.go, the certificates and the console
// sessions of sessions.go), each sorted by id, so two replicas with the same state
// write the same bytes after the header. Key material inside is wrapped under
// the root key: a snapshot is no more secret than the Raft log.
const (
	snapshotMagic = "RAFTKMS\x00"
	// snapshotFormatSHA256 is the old format, unauthenticated: read only.
	snapshotFormatSHA256 = 1
	// snapshotFormat is what this build writes: MAC-authenticated.
	snapshotFormat  = 2
	maxRecordSize   = 16 << 20
	recEnd          = 0x00
	recMeta         = 0x01
	recAccount      = 0x02
	recAccessKey    = 0x03
	recInstance     = 0x04
	recKey          = 0x05
	recKeyVersion   = 0x06
	recAlias        = 0x07
	recImportToken  = 0x08
	recUser         = 0x09
	recRole         = 0x0a
	recHSMDomain    = 0x0b
	snapshotSumSize = sha256.Size
)

// ErrBadSnapshot means a snapshot is truncated, corrupted, altered, made
// under another root key, or not a raftkms snapshot at all.
var ErrBadSnapshot = errors.New("not a valid raftkms snapshot (truncated or corrupted)")

// ErrUnauthenticatedSnapshot is a format 1 snapshot offered where only
// authenticated ones are accepted. It is an ErrBadSnapshot.
var ErrUnauthenticatedSnapshot = fmt.Errorf("%w: format 1 snapshot, made before snapshots were authenticated: "+
	"its checksum is a plain SHA-256 that anyone who edits the file can recompute", ErrBadSnapshot)

// ErrNoSnapshotKey means the FSM was built without WithSnapshotKey, so it
// can neither write nor check a snapshot.
var ErrNoSnapshotKey = errors.New("fsm: no snapshot key configured")

// readOptions say which snapshots a reader accepts.
type readOptions struct {
	key []byte // HMAC key of format 2
	// acceptSHA256 accepts format 1 (plain SHA-256 trailer).
	acceptSHA256 bool
}

// trailerHash returns the hash whose sum ends a snapshot of the given
// format, or why that format is not accepted.
func trailerHash(format uint16, o readOptions) (hash.Hash, error) {
	switch format {
	case snapshotFormat:
		if len(o.key) == 0 {
			return nil, ErrNoSnapshotKey
		}
		return hmac.New(sha256.New, o.key), nil
	case snapshotFormatSHA256:
		if !o.acceptSHA256 {
			return nil, ErrUnauthenticatedSnapshot
		}
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("%w: unsupported format version %d (this build reads %d and %d)",
		ErrBadSnapshot, format, snapshotFormatSHA256, snapshotFormat)
}

// SnapshotHeader describes a snapshot without its records.
type SnapshotHeader struct {
	Format    int    `msgpack:"format"`
	LastIndex uint64 `msgpack:"index"`
	RootCheck []byte `msgpack:"rootcheck"`
	// NeedsLevel is the lowest log level that reads the snapshot completely
	// (version.go): the highest level of its record types, and its
	// finalized level. Computed when the records are read, never stored.
	NeedsLevel int `msgpack:"-"`
}

// SnapshotInfo is what VerifySnapshot learned from a complete, intact
// snapshot.
type SnapshotInfo struct {
	SnapshotHeader
	Initialized  bool
	Accounts     int
	AccessKeys   int
	Instances    int
	Keys         int
	Versions     int
	Aliases      int
	ImportTokens int
	Users        int
	Roles        int
	HSMDomains   int
	Secrets      int
}

// Authenticated reports whether the snapshot carried a MAC (format 2), as
// opposed to an old format 1 file accepted with AcceptUnauthenticated.
func (i SnapshotInfo) Authenticated() bool { return i.Format == snapshotFormat }

type metaRecord struct {
	Initialized bool   `msgpack:"init"`
	RootCheck   []byte `msgpack:"rootcheck"`
	// Level is the finalized level (version.go), omitted while 0 so a
	// catalogue that never finalized persists to the bytes older builds
	// wrote. Older builds ignore the field (msgpack skips unknown keys).
	Level int `msgpack:"level,omitempty"`
}

type snapshot struct {
	cat   *catalogue
	index uint64
	key   []byte
}

// Persist writes the snapshot; on any error it cancels the sink so Raft
// never keeps half a snapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.cat, s.index, s.key); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// writeSnapshot writes format 2: everything is fed to an HMAC under key,
// whose sum is the trailer.
func writeSnapshot(w io.Writer, c *catalogue, index uint64, key []byte) error {
	if len(key) == 0 {
		return ErrNoSnapshotKey
	}
	sum := hmac.New(sha256.New, key)
	bw := bufio.NewWriter(io.MultiWriter(w, sum))
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return err
	}
	var u16 [2]byte
	binary.BigEndian.PutUint16(u16[:], snapshotFormat)
	bw.Write(u16[:])
	hdr, err := msgpack.Marshal(SnapshotHeader{Format: snapshotFormat, LastIndex: index, RootCheck: c.rootCheck})
	if err != nil {
		return err
	}
	if err := writeFrame(bw, hdr); err != nil {
		return err
	}
	if err := c.writeRecords(bw); err != nil {
		return err
	}
	if err := bw.WriteByte(recEnd); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(sum.Sum(nil))
	return err
}

func writeFrame(w io.Writer, body []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// writeRecord encodes with map keys sorted (tags are a map): equal
// catalogues must persist and hash to equal bytes.
func writeRecord(w io.Writer, typ byte, v any) error {
	// One buffer and encoder per writer at a time, reused across records
	// (a snapshot of a million keys writes three million records).
	re := recordEncoders.Get().(*recordEncoder)
	defer recordEncoders.Put(re)
	re.buf.Reset()
	var err error
	switch v := v.(type) {
	case *Key:
		err = encodeKeyRecord(re.enc, v)
	case *KeyVersion:
		err = encodeVersionRecord(re.enc, v)
	default:
		err = re.enc.Encode(v)
	}
	if err != nil {
		return err
	}
	return re.writeTo(w, typ)
}

// writeNonceRecord is writeRecord of one signed-write nonce, passed by
// pointer: a record in an interface would be one allocation each, and a
// snapshot writes one per signed write still in the replay window.
func writeNonceRecord(w io.Writer, r *signedNonceRecord) error {
	re := recordEncoders.Get().(*recordEncoder)
	defer recordEncoders.Put(re)
	re.buf.Reset()
	if err := encodeNonceRecord(re.enc, r); err != nil {
		return err
	}
	return re.writeTo(w, recSignedNonce)
}

type recordEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	// hdr is a record's type and its frame's length, written as one
	// piece from here: a local array handed to an io.Writer would move to
	// the heap, two allocations per record.
	hdr [5]byte
}

// writeTo writes the record encoded in re.buf: its type, then its frame
// (writeFrame's bytes).
func (re *recordEncoder) writeTo(w io.Writer, typ byte) error {
	body := re.buf.Bytes()
	re.hdr[0] = typ
	binary.BigEndian.PutUint32(re.hdr[1:], uint32(len(body)))
	if _, err := w.Write(re.hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

var recordEncoders = sync.Pool{New: func() any {
	re := &recordEncoder{}
	re.enc = msgpack.NewEncoder(&re.buf)
	re.enc.SetSortMapKeys(true)
	return re
}}

func sortedIDs[T any](m map[string]T) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func writeAll[T any](w io.Writer, typ byte, m map[string]*T) error {
	return writeSorted(w, typ, m, sortedIDs(m))
}

// writeSorted writes m's records in the order of ids.
func writeSorted[T any](w io.Writer, typ byte, m map[string]*T, ids []string) error {
	for _, id := range ids {
		if err := writeRecord(w, typ, m[id]); err != nil {
			return err
		}
	}
	return nil
}

// inBackground runs f on a goroutine of its own; the function it returns
// waits for f's result (and may be called again).
func inBackground[T any](f func() T) func() T {
	var v T
	done := make(chan struct{})
	go func() { v = f(); close(done) }()
	return func() T { <-done; return v }
}

func (c *catalogue) writeRecords(w io.Writer) error {
	// The versions and the nonces are sorted while the keys are written
	// (a million of each: ~0.35 s a sort; issue 16). Both sorts are over
	// before writeRecords returns, whatever the outcome.
	versionIDs := inBackground(func() []string { return sortedIDs(c.versions) })
	nonceKeys := inBackground(c.replay.sortedKeys)
	defer func() { versionIDs(); nonceKeys() }()
	if err := writeRecord(w, recMeta, metaRecord{Initialized: c.initialized, RootCheck: c.rootCheck, Level: c.finalLevel}); err != nil {
		return err
	}
	if err := writeAll(w, recAccount, c.accounts); err != nil {
		return err
	}
	if err := writeAll(w, recAccessKey, c.accessKeys); err != nil {
		return err
	}
	if err := writeAll(w, recInstance, c.instances); err != nil {
		return err
	}
	if err := writeAll(w, recKey, c.keys); err != nil {
		return err
	}
	if err := writeSorted(w, recKeyVersion, c.versions, versionIDs()); err != nil {
		return err
	}
	if err := writeAll(w, recAlias, c.aliases); err != nil {
		return err
	}
	if err := writeAll(w, recImportToken, c.tokens); err != nil {
		return err
	}
	if err := writeAll(w, recUser, c.users); err != nil {
		return err
	}
	if err := writeAll(w, recRole, c.roles); err != nil {
		return err
	}
	if err := writeAll(w, recHSMDomain, c.hsmDomains); err != nil {
		return err
	}
	if err := c.replay.writeRecords(w, nonceKeys()); err != nil {
		return err
	}
	if err := c.aap.writeRecords(w); err != nil {
		return err
	}
	if err := c.writeInstanceCA(w); err != nil {
		return err
	}
	if err := c.writeSecrets(w); err != nil {
		return err
	}
	if err := c.writeCertificates(w); err != nil {
		return err
	}
	return c.writeConsoleSessions(w)
}

func (c *catalogue) hash() [32]byte {
	h := sha256.New()
	if err := c.writeRecords(h); err != nil {
		// Writing to a hash cannot fail; encoding our own records cannot
		// either, short of a programming error.
		panic(err)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// VerifyOptions say which snapshots VerifySnapshot accepts.
type VerifyOptions struct {
	// AcceptUnauthenticated accepts a format 1 snapshot (plain SHA-256
	// trailer): the operator vouches for the file. Its SHA-256 and contents
	// are still checked.
	AcceptUnauthenticated bool
}

// VerifySnapshot reads a whole snapshot, checks that it is authentic (its
// MAC under this FSM's snapshot key) and internally consistent, and returns
// what it holds. Nothing is applied anywhere. The MAC is checked in a first
// pass, before any record is decoded, so an altered file is refused without
// interpreting its contents.
func (f *FSM) VerifySnapshot(r io.ReadSeeker, opt VerifyOptions) (SnapshotInfo, error) {
	hdr, cat, err := openSnapshot(r, f.readOptions(opt.AcceptUnauthenticated))
	if err != nil {
		return SnapshotInfo{}, err
	}
	return snapshotInfo(hdr, cat), nil
}

// CheckSnapshotMAC checks that r is a snapshot in the current,
// authenticated format whose MAC verifies under this FSM's snapshot key,
// and returns its header (authenticated by that MAC; NeedsLevel is not
// known: no record is decoded). It is for a node that hands the file on to
// the leader, which decodes and checks every record: a million keys take
// seconds to decode and a gigabyte to hold, the MAC a fraction of a second.
// A format 1 file is refused with ErrUnauthenticatedSnapshot.
func (f *FSM) CheckSnapshotMAC(r io.ReadSeeker) (SnapshotHeader, error) {
	version, err := checkTrailer(r, f.readOptions(false))
	if err != nil {
		return SnapshotHeader{}, err
	}
	hdr, err := PeekSnapshotHeader(r)
	if err != nil {
		return SnapshotHeader{}, err
	}
	if hdr.Format != int(version) {
		return SnapshotHeader{}, fmt.Errorf("%w: header names format %d, the file format %d", ErrBadSnapshot, hdr.Format, version)
	}
	return hdr, nil
}

// ResealSnapshot verifies the snapshot in r as VerifySnapshot does and
// writes the same state to w in the current, authenticated format. An
// operator restore hands Raft only the resealed bytes, so what Raft stores
// and installs on followers is always authenticated, whatever the file was.
func (f *FSM) ResealSnapshot(r io.ReadSeeker, w io.Writer, opt VerifyOptions) (SnapshotInfo, error) {
	hdr, cat, err := openSnapshot(r, f.readOptions(opt.AcceptUnauthenticated))
	if err != nil {
		return SnapshotInfo{}, err
	}
	if err := writeSnapshot(w, cat, hdr.LastIndex, f.snapshotKey); err != nil {
		return SnapshotInfo{}, err
	}
	return snapshotInfo(hdr, cat), nil
}

func (f *FSM) readOptions(acceptSHA256 bool) readOptions {
	return readOptions{key: f.snapshotKey, acceptSHA256: acceptSHA256}
}

func snapshotInfo(hdr SnapshotHeader, cat *catalogue) SnapshotInfo {
	return SnapshotInfo{
		SnapshotHeader: hdr,
		Initialized:    cat.initialized,
		Accounts:       len(cat.accounts),
		AccessKeys:     len(cat.accessKeys),
		Instances:      len(cat.instances),
		Keys:           len(cat.keys),
		Versions:       len(cat.versions),
		Aliases:        len(cat.aliases),
		ImportTokens:   len(cat.tokens),
		Users:          len(cat.users),
		Roles:          len(cat.roles),
		HSMDomains:     len(cat.hsmDomains),
		Secrets:        len(cat.secrets),
	}
}

// openSnapshot checks the trailer over the whole file first, then decodes
// it (readSnapshot checks the trailer again over exactly the bytes it
// consumed).
func openSnapshot(r io.ReadSeeker, o readOptions) (SnapshotHeader, *catalogue, error) {
	if _, err := checkTrailer(r, o); err != nil {
		return SnapshotHeader{}, nil, err
	}
	return readSnapshot(r, o)
}

// checkTrailer checks the trailer over the whole of r, before anything in
// it is interpreted, and returns the format and r rewound.
func checkTrailer(r io.ReadSeeker, o readOptions) (uint16, error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if size < int64(len(snapshotMagic))+2+snapshotSumSize {
		return 0, fmt.Errorf("%w: only %d bytes", ErrBadSnapshot, size)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	src := bufio.NewReaderSize(r, 1<<20)
	version, h, err := readPreamble(src, o)
	if err != nil {
		return 0, err
	}
	if _, err := io.CopyN(h, src, size-snapshotSumSize-int64(len(snapshotMagic))-2); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	trailer := make([]byte, snapshotSumSize)
	if _, err := io.ReadFull(src, trailer); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if !hmac.Equal(trailer, h.Sum(nil)) {
		return 0, fmt.Errorf("%w: %s", ErrBadSnapshot, errMACMismatch)
	}
	_, err = r.Seek(0, io.SeekStart)
	return version, err
}

// readPreamble reads the magic and the format version and returns the
// version and the trailer's hash, already fed with them.
func readPreamble(r io.Reader, o readOptions) (uint16, hash.Hash, error) {
	pre := make([]byte, len(snapshotMagic)+2)
	if _, err := io.ReadFull(r, pre); err != nil {
		return 0, nil, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	if string(pre[:len(snapshotMagic)]) != snapshotMagic {
		return 0, nil, fmt.Errorf("%w: wrong magic bytes", ErrBadSnapshot)
	}
	v := binary.BigEndian.Uint16(pre[len(snapshotMagic):])
	h, err := trailerHash(v, o)
	if err != nil {
		return 0, nil, err
	}
	h.Write(pre)
	return v, h, nil
}

// errMACMismatch explains a trailer that does not match.
const errMACMismatch = "checksum mismatch: the file is damaged or was altered, or was made by a cluster with another root key"

func readSnapshot(r io.Reader, o readOptions) (SnapshotHeader, *catalogue, error) {
	bad := func(format string, a ...any) (SnapshotHeader, *catalogue, error) {
		return SnapshotHeader{}, nil, fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, a...))
	}
	hr := newHashPipe(r)
	defer hr.stop()
	version, h, err := readPreamble(hr, o)
	if err != nil {
		return SnapshotHeader{}, nil, err
	}
	hr.startHashing(h)
	hdrBytes, err := readFrame(hr)
	if err != nil {
		return bad("header: %v", err)
	}
	var hdr SnapshotHeader
	if err := mpdecode.Unmarshal(hdrBytes, &hdr); err != nil {
		return bad("header: %v", err)
	}
	if hdr.Format != int(version) {
		return bad("header names format %d, the file format %d", hdr.Format, version)
	}

	cat := newCatalogue()
	cat.loading = &snapshotLoad{}
	sawMeta := false
	var scratch []byte
	hdr.NeedsLevel = BaseLevel
	for {
		var t [1]byte
		if _, err := io.ReadFull(hr, t[:]); err != nil {
			return bad("records end early")
		}
		if t[0] == recEnd {
			break
		}
		// Records are decoded into their own values (msgpack copies what
		// it keeps), so one buffer serves every small record.
		body, err := readFrameInto(hr, scratch)
		if err != nil {
			return bad("record: %v", err)
		}
		scratch = body[:0]
		if err := cat.loadRecord(t[0], body); err != nil {
			return bad("%v", err)
		}
		if t[0] == recMeta {
			sawMeta = true
		}
		hdr.NeedsLevel = max(hdr.NeedsLevel, recordLevels[t[0]])
	}
	hdr.NeedsLevel = max(hdr.NeedsLevel, cat.finalLevel)
	keys, err := cat.finishLoad()
	if err != nil {
		return bad("%v", err)
	}
	want := hr.sum()
	got := make([]byte, snapshotSumSize)
	if _, err := io.ReadFull(hr, got); err != nil {
		return bad("checksum missing")
	}
	if !hmac.Equal(got, want) {
		return bad("checksum mismatch")
	}
	if n, _ := io.ReadFull(hr, make([]byte, 1)); n != 0 {
		return bad("trailing bytes after checksum")
	}
	if !sawMeta {
		return bad("no meta record")
	}
	if !bytes.Equal(cat.rootCheck, hdr.RootCheck) {
		return bad("header and meta disagree on the root key")
	}
	if err := cat.checkReferences(keys); err != nil {
		return bad("%v", err)
	}
	cat.compactLoaded(keys) // shared strings and the key index (keyindex.go)
	return hdr, cat, nil
}

func readFrame(r io.Reader) ([]byte, error) { return readFrameInto(r, nil) }

// readFrameInto is readFrame reading a small record into scratch's array
// when it is large enough.
func readFrameInto(r io.Reader, scratch []byte) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, errors.New("truncated length")
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxRecordSize {
		return nil, fmt.Errorf("record of %d bytes exceeds the limit", size)
	}
	// A small record (every key, version and nonce) is read into a buffer
	// of its size at once.
	if size <= 64<<10 {
		body := scratch[:0]
		if cap(body) < int(size) {
			body = make([]byte, size, max(size, 4096))
		}
		body = body[:size]
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, errors.New("truncated record")
		}
		return body, nil
	}
	// Grow with the bytes that actually arrive rather than trusting the
	// length prefix: a damaged prefix must not cost 16 MiB per record.
	var body bytes.Buffer
	if _, err := io.CopyN(&body, r, int64(size)); err != nil {
		return nil, errors.New("truncated record")
	}
	return body.Bytes(), nil
}

func loadInto[T any](m map[string]*T, body []byte, id func(*T) string) error {
	v := new(T)
	if err := mpdecode.Unmarshal(body, v); err != nil {
		return err
	}
	return insertLoaded(m, v, id)
}

// insertLoaded adds a decoded record under its id, refusing an empty or a
// repeated one.
func insertLoaded[T any](m map[string]*T, v *T, id func(*T) string) error {
	k := id(v)
	if k == "" {
		return errors.New("record without id")
	}
	if _, dup := m[k]; dup {
		return fmt.Errorf("duplicate record %q", k)
	}
	m[k] = v
	return nil
}

func (c *catalogue) loadRecord(typ byte, body []byte) error {
	switch typ {
	case recMeta:
		var m metaRecord
		if err := mpdecode.Unmarshal(body, &m); err != nil {
			return err
		}
		c.initialized, c.rootCheck, c.finalLevel = m.Initialized, m.RootCheck, m.Level
		return nil
	case recAccount:
		return loadInto(c.accounts, body, func(a *Account) string { return a.ID })
	case recAccessKey:
		return loadInto(c.accessKeys, body, func(a *AccessKey) string { return a.ID })
	case recInstance:
		return loadInto(c.instances, body, func(i *Instance) string { return i.ID })
	case recKey:
		if l := c.loading; l != nil {
			k, ok := fastKey(body, &l.shared)
			if !ok {
				k = new(Key)
				if err := mpdecode.Unmarshal(body, k); err != nil {
					return err
				}
			}
			l.keys = append(l.keys, k)
			return nil
		}
		return loadInto(c.keys, body, keyID)
	case recKeyVersion:
		if l := c.loading; l != nil {
			v, ok := fastKeyVersion(body)
			if !ok {
				v = new(KeyVersion)
				if err := mpdecode.Unmarshal(body, v); err != nil {
					return err
				}
			}
			l.versions = append(l.versions, v)
			return nil
		}
		return loadInto(c.versions, body, versionID)
	case recSignedNonce:
		if l := c.loading; l != nil {
			r, ok := fastNonce(body, &l.shared)
			if !ok {
				if err := mpdecode.Unmarshal(body, &r); err != nil {
					return err
				}
			}
			if r.AccessKeyID == "" || r.Nonce == "" {
				return errNonceRecordEmpty
			}
			l.nonces = append(l.nonces, expiryItem{key: nonceKey{AccessKeyID: r.AccessKeyID, Nonce: r.Nonce, Seq: r.Seq}, expires: r.Expires})
			return nil
		}
	case recAlias:
		return loadInto(c.aliases, body, func(a *Alias) string {
			if a.Name == "" {
				return ""
			}
			return aliasKey(a.AccountID, a.Name)
		})
	case recImportToken:
		return loadInto(c.tokens, body, func(t *ImportToken) string { return t.ID })
	case recUser:
		return loadInto(c.users, body, func(u *User) string {
			if u.Name == "" {
				return ""
			}
			return identityKey(u.AccountID, u.Name)
		})
	case recRole:
		return loadInto(c.roles, body, func(r *Role) string {
			if r.Name == "" {
				return ""
			}
			return identityKey(r.AccountID, r.Name)
		})
	case recHSMDomain:
		return loadInto(c.hsmDomains, body, func(d *HSMDomain) string { return d.Name })
	case recInstanceCA:
		return c.loadInstanceCA(body)
	case recSecret:
		return c.loadSecret(body)
	case recCertificate:
		return c.loadCertificate(body)
	case recConsoleSession:
		return c.loadConsoleSession(body)
	}
	if handled, err := c.replay.loadRecord(typ, body); handled {
		return err
	}
	if handled, err := c.aap.loadRecord(typ, body); handled {
		return err
	}
	return fmt.Errorf("unknown record type %d", typ)
}

// snapshotLoad is what a snapshot load collects before finishLoad puts it
// in the catalogue's maps: a million keys go into maps made to their size
// at once, instead of maps that double and rehash along the way (a fifth of
// a restart's CPU at a million keys; issue 16).
type snapshotLoad struct {
	shared   sharedCache
	keys     []*Key
	versions []*KeyVersion
	nonces   []expiryItem
}

// finishLoad ends a snapshot load: what loadRecord collected goes into the
// catalogue, refused as the records one by one would be (an empty or a
// repeated id). It returns every key of the catalogue, for the passes
// that follow (a slice is faster to walk than a map of a million).
func (c *catalogue) finishLoad() ([]*Key, error) {
	l := c.loading
	c.loading = nil
	if l != nil {
		// Three maps of up to a million entries each, independent of one
		// another: built at once (issue 16: ~0.9 s of a million keys'
		// decode on one core). Errors are reported in the same order as
		// one after the other.
		var errs [3]error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); errs[1] = insertAll(&c.versions, l.versions, versionID) }()
		go func() { defer wg.Done(); errs[2] = c.replay.addAllLoaded(l.nonces) }()
		errs[0] = insertAll(&c.keys, l.keys, keyID)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		if len(c.keys) == len(l.keys) { // always, unless keys were stored before the load
			return l.keys, nil
		}
	}
	keys := make([]*Key, 0, len(c.keys))
	for _, k := range c.keys {
		keys = append(keys, k)
	}
	return keys, nil
}

// insertAll adds vs to *m, in a map made to the final size.
func insertAll[T any](m *map[string]*T, vs []*T, id func(*T) string) error {
	if len(vs) == 0 {
		return nil
	}
	n := make(map[string]*T, len(*m)+len(vs))
	for k, v := range *m {
		n[k] = v
	}
	for _, v := range vs {
		if err := insertLoaded(n, v, id); err != nil {
			return err
		}
	}
	*m = n
	return nil
}

func keyID(k *Key) string            { return k.ID }
func versionID(v *KeyVersion) string { return v.ID }

// checkReferences rejects a snapshot whose records point at records it does
// not contain: a restore must never leave a key without its versions.
//
// On the way it makes a key and its versions share their ids, as Apply's
// records do (a version's KeyID is its key's ID; a key's version list and
// primary version are the versions' own ids): one lookup per version
// serves both (issue 16: a million keys).
func (c *catalogue) checkReferences(keys []*Key) error {
	listed := 0 // versions listed by their own key, each once
	var account string
	for _, k := range keys {
		id := k.ID
		// Most keys belong to one of a few accounts: the last one found
		// needs no lookup.
		if k.AccountID != account {
			if _, ok := c.accounts[k.AccountID]; !ok {
				return fmt.Errorf("key %s belongs to a missing account", id)
			}
			account = k.AccountID
		}
		for i, v := range k.Versions {
			kv, ok := c.versions[v]
			if !ok || kv.KeyID != id {
				return fmt.Errorf("key %s lists a missing version %s", id, v)
			}
			kv.KeyID = k.ID
			k.Versions[i] = kv.ID
			if k.PrimaryVersion == kv.ID {
				k.PrimaryVersion = kv.ID
			}
			if !slices.Contains(k.Versions[:i], v) {
				listed++
			}
		}
		if len(k.Versions) > 0 && k.PrimaryVersion == "" {
			return fmt.Errorf("key %s has no primary version", id)
		}
	}
	// A version listed is the version of the key listing it, so no two
	// keys list the same one: when as many distinct versions were listed
	// as there are, none is without its key. Otherwise find the one.
	if listed != len(c.versions) {
		for id, v := range c.versions {
			if _, ok := c.keys[v.KeyID]; !ok {
				return fmt.Errorf("version %s belongs to a missing key", id)
			}
		}
	}
	for _, a := range c.aliases {
		if k, ok := c.keys[a.KeyID]; !ok || k.AccountID != a.AccountID {
			return fmt.Errorf("alias %s points at a missing key", a.Name)
		}
	}
	for id, t := range c.tokens {
		if _, ok := c.keys[t.KeyID]; !ok {
			return fmt.Errorf("import token %s belongs to a missing key", id)
		}
	}
	for id, ak := range c.accessKeys {
		if _, ok := c.accounts[ak.AccountID]; !ok {
			return fmt.Errorf("access key %s belongs to a missing account", id)
		}
	}
	if err := c.checkSecretReferences(); err != nil {
		return err
	}
	if err := c.checkCertificateReferences(); err != nil {
		return err
	}
	return c.checkAAPReferences()
}

// PeekSnapshotHeader reads a snapshot's header without checking anything
// else, to explain a refusal (the header names the root key a snapshot was
// made under). Nothing it returns is authenticated.
func PeekSnapshotHeader(r io.Reader) (SnapshotHeader, error) {
	br := bufio.NewReader(r)
	pre := make([]byte, len(snapshotMagic)+2)
	if _, err := io.ReadFull(br, pre); err != nil || string(pre[:len(snapshotMagic)]) != snapshotMagic {
		return SnapshotHeader{}, fmt.Errorf("%w: not a raftkms snapshot", ErrBadSnapshot)
	}
	b, err := readFrame(br)
	if err != nil {
		return SnapshotHeader{}, fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	var hdr SnapshotHeader
	if err := mpdecode.Unmarshal(b, &hdr); err != nil {
		return SnapshotHeader{}, fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	return hdr, nil
}

// Summary counts the current catalogue as VerifySnapshot counts a snapshot,
// at the applied index: what a restore would replace.
func (f *FSM) Summary() SnapshotInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return snapshotInfo(SnapshotHeader{Format: snapshotFormat, LastIndex: f.applied, RootCheck: f.cat.rootCheck}, f.cat)
}
