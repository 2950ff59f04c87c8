package cluster

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/raftkms/raftkms/internal/mpdecode"
)

// HSM domain health values carried in HSMDomain.Health.
const (
	HSMHealthOK       = "ok"
	HSMHealthBad      = "bad"
	HSMHealthMismatch = "mismatch" // the token's domain key check value differs from the cluster's
)

// HSMDomain is one HSM domain a node can serve. Kept deliberately small: the
// whole Meta must fit memberlist's 512-byte node meta limit.
type HSMDomain struct {
	Domain     string `msgpack:"d"`
	Health     string `msgpack:"h,omitempty"`
	CheckValue string `msgpack:"c,omitempty"`
}

// Meta is the metadata a node gossips about itself. It is msgpack-encoded with
// short field names behind a one-byte format version; unknown fields are
// ignored on decode, so fields may be added without breaking older nodes.
type Meta struct {
	ID      string `msgpack:"id"`
	Region  string `msgpack:"rg,omitempty"`
	Zone    string `msgpack:"z,omitempty"`
	Version string `msgpack:"v,omitempty"` // the build's version (kmsd --version)
	// Level is the build's log level (fsm.LogLevel): the highest level of
	// replicated command and snapshot record it applies. 0 — a build from
	// before levels — counts as BaseLevel (see LogLevel).
	Level       int    `msgpack:"lv,omitempty"`
	ClusterAddr string `msgpack:"ca,omitempty"` // Raft + internal RPC host:port
	HTTPAddr    string `msgpack:"ha,omitempty"` // client API host:port

	// Bootstrapped: this node has Raft state (is or was part of a cluster).
	// A node seeing any Bootstrapped member never bootstraps a new cluster.
	Bootstrapped bool `msgpack:"b,omitempty"`
	// Expect is the node's --bootstrap-expect (0 = none).
	Expect int `msgpack:"e,omitempty"`

	HSM []HSMDomain `msgpack:"hsm,omitempty"`

	// BootstrapProposal is managed by RunBootstrap: a short hash of the server
	// list this node would bootstrap with. A node bootstraps only once every
	// server in its list advertises the same proposal. Do not set it yourself.
	BootstrapProposal string `msgpack:"bp,omitempty"`
	// Leaving is set by Leave just before the memberlist leave broadcast, so
	// that peers can tell a graceful leave ("left") from a failure ("failed"):
	// memberlist v0.5.4 does not report which of the two happened. Do not set
	// it yourself.
	Leaving bool `msgpack:"l,omitempty"`
}

// BaseLevel is the log level of a member that advertises none (fsm.BaseLevel;
// the package does not import fsm).
const BaseLevel = 1

// LogLevel is the member's log level, BaseLevel when it advertises none.
func (m Meta) LogLevel() int {
	if m.Level <= 0 {
		return BaseLevel
	}
	return m.Level
}

// metaFormatV1 is the first byte of every encoded Meta.
const metaFormatV1 byte = 1

// MaxMetaSize is memberlist's limit on node metadata.
const MaxMetaSize = memberlist.MetaMaxSize

// ErrMetaTooLarge is returned when an encoded Meta exceeds MaxMetaSize.
var ErrMetaTooLarge = errors.New("cluster: node metadata exceeds memberlist's 512-byte limit")

func (m Meta) clone() Meta {
	if m.HSM != nil {
		m.HSM = append([]HSMDomain(nil), m.HSM...)
	}
	return m
}

// encodeMeta returns the wire form of m: format byte + msgpack map.
func encodeMeta(m Meta) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(metaFormatV1)
	enc := msgpack.NewEncoder(&buf)
	if err := enc.Encode(&m); err != nil {
		return nil, fmt.Errorf("cluster: encode meta: %w", err)
	}
	if buf.Len() > MaxMetaSize {
		return nil, fmt.Errorf("%w (%d bytes)", ErrMetaTooLarge, buf.Len())
	}
	return buf.Bytes(), nil
}

// decodeMeta parses bytes produced by encodeMeta on any node version.
func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, errors.New("cluster: empty meta")
	}
	if b[0] != metaFormatV1 {
		return m, fmt.Errorf("cluster: unknown meta format %d", b[0])
	}
	if err := mpdecode.Unmarshal(b[1:], &m); err != nil {
		return Meta{}, fmt.Errorf("cluster: decode meta: %w", err)
	}
	return m, nil
}
