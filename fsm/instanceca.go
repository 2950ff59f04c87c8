package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/raftkms/raftkms/internal/mpdecode"
)

// The instance CA signs the serving certificates of the instance endpoint
// (--instance-addr): every node issues itself one, so a client trusts the
// whole cluster with this one certificate (GetKmsInstance's
// CaCertificateChainPem). The catalogue holds one CA: its certificate, and
// its private key wrapped under the root key (crypto.InstanceCAAAD binds
// the blob to the certificate). The key is never stored unwrapped: not in
// the log, not in snapshots.
//
// The CA arrives with `operator init` (InitCmd.InstanceCA) or, for a
// cluster initialized before the instance endpoint existed, from the
// leader's scheduler (SetInstanceCACmd, type 50). The first one wins.

// CmdSetInstanceCA records the cluster's instance CA. It has no ignore flag:
// a node that skipped it would serve no instance endpoint and hash
// differently; a node that does not know it stops, and is upgraded.
const CmdSetInstanceCA CommandType = 50

// recInstanceCA is the snapshot record of the instance CA, written after
// every other record.
const recInstanceCA = 0x14

// ErrInstanceCAExists means the cluster already has another instance CA: the
// first one recorded wins.
var ErrInstanceCAExists = errors.New("the cluster already has an instance CA")

// InstanceCA is the cluster's instance CA.
type InstanceCA struct {
	// CertDER is the CA certificate (DER): public.
	CertDER []byte `msgpack:"cert"`
	// WrappedKey is the CA's private key (PKCS#8 DER), wrapped under the root
	// key with crypto.InstanceCAAAD(CertDER) as associated data.
	WrappedKey []byte `msgpack:"wkey"`
	CreatedAt  int64  `msgpack:"ct"`
	// CreatedBy is the node that made it.
	CreatedBy   string `msgpack:"node"`
	ModifyIndex uint64 `msgpack:"mi"`
}

// SetInstanceCACmd records the instance CA of a cluster that has none.
// Recording the same certificate again changes nothing; another one is
// ErrInstanceCAExists.
type SetInstanceCACmd struct {
	Now int64      `msgpack:"now"`
	CA  InstanceCA `msgpack:"ca"`
}

func (c *catalogue) applySetInstanceCA(cmd *SetInstanceCACmd, index uint64) error {
	if !c.initialized {
		return ErrNotInitialized
	}
	return c.setInstanceCA(cmd.CA, index)
}

// setInstanceCA records ca unless one is there. Caller holds the FSM's
// write lock.
func (c *catalogue) setInstanceCA(ca InstanceCA, index uint64) error {
	if len(ca.CertDER) == 0 || len(ca.WrappedKey) == 0 {
		return fmt.Errorf("%w: an instance CA needs a certificate and a wrapped key", ErrPreconditionFailed)
	}
	if cur := c.instanceCA; cur != nil {
		if bytes.Equal(cur.CertDER, ca.CertDER) {
			return nil
		}
		return fmt.Errorf("%w (made by node %s)", ErrInstanceCAExists, cur.CreatedBy)
	}
	ca.CertDER = bytes.Clone(ca.CertDER)
	ca.WrappedKey = bytes.Clone(ca.WrappedKey)
	ca.ModifyIndex = index
	c.instanceCA = &ca
	return nil
}

// InstanceCA returns the cluster's instance CA, if it has one. The record is
// immutable: callers must not change it.
func (f *FSM) InstanceCA() (*InstanceCA, bool) {
	var ca *InstanceCA
	f.read(func(c *catalogue) { ca = c.instanceCA })
	return ca, ca != nil
}

// writeInstanceCA writes the CA's record, if there is one: a catalogue
// without one persists to the bytes older versions wrote.
func (c *catalogue) writeInstanceCA(w io.Writer) error {
	if c.instanceCA == nil {
		return nil
	}
	return writeRecord(w, recInstanceCA, c.instanceCA)
}

func (c *catalogue) loadInstanceCA(body []byte) error {
	var ca InstanceCA
	if err := mpdecode.Unmarshal(body, &ca); err != nil {
		return err
	}
	if c.instanceCA != nil {
		return errors.New("duplicate instance CA record")
	}
	if len(ca.CertDER) == 0 || len(ca.WrappedKey) == 0 {
		return errors.New("instance CA record without certificate or key")
	}
	c.instanceCA = &ca
	return nil
}
