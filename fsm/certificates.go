package fsm

import (
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// Certificates: a key pair held by the cluster and the X.509 certificate a
// CA issued for it.
//
// CreateCertificate makes the key pair (kms: software, wrapped under the
// root key as key versions are, or in a token of the HSM domain of the
// certificate's instance) and the PKCS#10 request; the FSM keeps the pair
// as a KeyVersion (wrapped private key, public key, domain) and the
// request. UploadCertificate adds the issued certificate and its chain (kms
// checks that the certificate's public key is the pair's; Apply checks it
// again against the recorded public key). Until then the certificate is
// PENDING and no private-key operation runs. UpdateCertificateStatus moves
// it between ACTIVE and INACTIVE; REVOKED is final. DeleteCertificate
// removes it at once (the reference has no recovery window).

// Command types of certificates (62–67; 67 is reserved).
const (
	CmdCreateCertificate       CommandType = 62
	CmdUploadCertificate       CommandType = 63
	CmdUpdateCertificateStatus CommandType = 64
	CmdDeleteCertificate       CommandType = 65
	CmdTagCertificate          CommandType = 66
)

// recCertificate is the snapshot record of a certificate, written after
// the secrets.
const recCertificate = 0x16

// Certificate statuses.
const (
	CertPending  = "PENDING" // created, no certificate uploaded yet
	CertActive   = "ACTIVE"
	CertInactive = "INACTIVE"
	CertRevoked  = "REVOKED"
)

// Limits on certificates.
const (
	MaxCertificatesPerAccount = 1000
	MaxTagsPerCertificate     = MaxTagsPerKey
)

// Errors of certificates.
var (
	ErrCertificateNotFound = errors.New("the certificate does not exist")
	// ErrCertificateStatus refuses what the certificate's status does not
	// allow: a private-key operation on a certificate that is not ACTIVE,
	// an upload to a certificate that is not PENDING, any change of a
	// REVOKED one.
	ErrCertificateStatus = errors.New("the certificate's status does not allow this operation")
	// ErrCertificateMismatch refuses an uploaded certificate whose public
	// key is not the certificate's key pair.
	ErrCertificateMismatch = errors.New("the certificate's public key is not the key pair of the certificate")
	// ErrCertificateExpired refuses a private-key operation outside the
	// certificate's validity (NotBefore to NotAfter).
	ErrCertificateExpired = errors.New("the certificate is expired or not yet valid")
	// ErrCertificateLimitExceeded refuses a certificate beyond
	// MaxCertificatesPerAccount.
	ErrCertificateLimitExceeded = errors.New("the limit on certificates is reached")
)

// Certificate is a key pair of an account and, once uploaded, its
// certificate.
type Certificate struct {
	ID         string `msgpack:"id"`
	AccountID  string `msgpack:"acct"`
	InstanceID string `msgpack:"inst,omitempty"`
	KeySpec    string `msgpack:"spec"`
	Subject    string `msgpack:"subj"` // the subject as requested (RFC 2253)
	// SubjectAlternativeNames as requested (DNS names, IP or e-mail
	// addresses).
	SANs       []string `msgpack:"sans,omitempty"`
	Exportable bool     `msgpack:"exp,omitempty"`
	// Key is the key pair: WrappedMaterial wrapped under the root key
	// (MaterialAAD(ID, Key.ID)) or, with Domain, under the HSM domain key;
	// PublicKey is the DER SubjectPublicKeyInfo. KeyID is the certificate's
	// id.
	Key    KeyVersion `msgpack:"key"`
	CSR    []byte     `msgpack:"csr"`            // DER PKCS#10
	Cert   []byte     `msgpack:"cert,omitempty"` // DER, once uploaded
	Chain  string     `msgpack:"chain,omitempty"`
	Status string     `msgpack:"status"`
	// Issued certificate's validity (Unix ms), once uploaded.
	NotBefore   int64             `msgpack:"nb,omitempty"`
	NotAfter    int64             `msgpack:"na,omitempty"`
	Tags        map[string]string `msgpack:"tags"`
	CreatedAt   int64             `msgpack:"ct"`
	UpdatedAt   int64             `msgpack:"ut"`
	ModifyIndex uint64            `msgpack:"mi"`
}

func (c *Certificate) clone() *Certificate {
	n := *c
	n.SANs = append([]string(nil), c.SANs...)
	n.Tags = make(map[string]string, len(c.Tags))
	for k, v := range c.Tags {
		n.Tags[k] = v
	}
	return &n
}

// CreateCertificateCmd adds a PENDING certificate.
type CreateCertificateCmd struct {
	Now         int64       `msgpack:"now"`
	Certificate Certificate `msgpack:"cert"`
}

// UploadCertificateCmd adds the issued certificate (DER) and its chain.
// PublicKey is the certificate's SubjectPublicKeyInfo (the proposer parsed
// it); it must be the pair's.
type UploadCertificateCmd struct {
	Now       int64  `msgpack:"now"`
	AccountID string `msgpack:"acct"`
	ID        string `msgpack:"id"`
	Cert      []byte `msgpack:"cert"`
	Chain     string `msgpack:"chain,omitempty"`
	PublicKey []byte `msgpack:"pub"`
	NotBefore int64  `msgpack:"nb"`
	NotAfter  int64  `msgpack:"na"`
}

// UpdateCertificateStatusCmd sets the status (ACTIVE, INACTIVE, REVOKED).
type UpdateCertificateStatusCmd struct {
	Now       int64  `msgpack:"now"`
	AccountID string `msgpack:"acct"`
	ID        string `msgpack:"id"`
	Status    string `msgpack:"status"`
}

// DeleteCertificateCmd removes a certificate.
type DeleteCertificateCmd struct {
	Now       int64  `msgpack:"now"`
	AccountID string `msgpack:"acct"`
	ID        string `msgpack:"id"`
}

// TagCertificateCmd sets Tags and removes Remove (tag keys).
type TagCertificateCmd struct {
	Now       int64             `msgpack:"now"`
	AccountID string            `msgpack:"acct"`
	ID        string            `msgpack:"id"`
	Tags      map[string]string `msgpack:"tags,omitempty"`
	Remove    []string          `msgpack:"remove,omitempty"`
}

func (c *catalogue) dispatchCertificate(l *raft.Log, t CommandType, body []byte) any {
	switch t {
	case CmdCreateCertificate:
		var cmd CreateCertificateCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.applyCreateCertificate(&cmd, l.Index)
	case CmdUploadCertificate:
		var cmd UploadCertificateCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.updateCertificate(cmd.AccountID, cmd.ID, cmd.Now, l.Index, func(x *Certificate) error {
			if x.Status != CertPending {
				return fmt.Errorf("%w: certificate %s is %s; a certificate is uploaded once", ErrCertificateStatus, x.ID, x.Status)
			}
			if len(cmd.Cert) == 0 || string(cmd.PublicKey) != string(x.Key.PublicKey) {
				return fmt.Errorf("%w: %s", ErrCertificateMismatch, x.ID)
			}
			x.Cert, x.Chain, x.NotBefore, x.NotAfter, x.Status = cmd.Cert, cmd.Chain, cmd.NotBefore, cmd.NotAfter, CertActive
			return nil
		})
	case CmdUpdateCertificateStatus:
		var cmd UpdateCertificateStatusCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.updateCertificate(cmd.AccountID, cmd.ID, cmd.Now, l.Index, func(x *Certificate) error {
			switch cmd.Status {
			case CertActive, CertInactive, CertRevoked:
			default:
				return fmt.Errorf("%w: unknown certificate status %q", ErrPreconditionFailed, cmd.Status)
			}
			if x.Status == CertRevoked && cmd.Status != CertRevoked {
				return fmt.Errorf("%w: certificate %s is revoked", ErrCertificateStatus, x.ID)
			}
			if x.Status == CertPending {
				return fmt.Errorf("%w: certificate %s has no certificate yet (UploadCertificate)", ErrCertificateStatus, x.ID)
			}
			x.Status = cmd.Status
			return nil
		})
	case CmdDeleteCertificate:
		var cmd DeleteCertificateCmd
		mustDecode(t, l.Index, body, &cmd)
		x, ok := c.certs[cmd.ID]
		if !ok || x.AccountID != cmd.AccountID {
			return fmt.Errorf("%w: %s", ErrCertificateNotFound, cmd.ID)
		}
		delete(c.certs, cmd.ID)
		return nil
	case CmdTagCertificate:
		var cmd TagCertificateCmd
		mustDecode(t, l.Index, body, &cmd)
		return c.updateCertificate(cmd.AccountID, cmd.ID, cmd.Now, l.Index, func(x *Certificate) error {
			for k, v := range cmd.Tags {
				x.Tags[k] = v
			}
			for _, k := range cmd.Remove {
				delete(x.Tags, k)
			}
			if len(x.Tags) > MaxTagsPerCertificate {
				return fmt.Errorf("%w: a certificate may carry at most %d tags", ErrTagLimit, MaxTagsPerCertificate)
			}
			return nil
		})
	}
	return fmt.Errorf("fsm: command type %d is not a certificates command", uint8(t))
}

func (c *catalogue) applyCreateCertificate(cmd *CreateCertificateCmd, index uint64) error {
	x := cmd.Certificate
	if _, ok := c.accounts[x.AccountID]; !ok {
		return fmt.Errorf("%w: %s", ErrAccountNotFound, x.AccountID)
	}
	if x.ID == "" || x.Key.KeyID != x.ID || len(x.Key.WrappedMaterial) == 0 || len(x.Key.PublicKey) == 0 || len(x.CSR) == 0 {
		return fmt.Errorf("%w: a certificate needs an id, a key pair and a request", ErrPreconditionFailed)
	}
	if _, ok := c.certs[x.ID]; ok {
		return fmt.Errorf("%w: certificate %s", ErrKeyExists, x.ID)
	}
	if x.InstanceID != "" {
		inst, ok := c.instances[x.InstanceID]
		if !ok || inst.AccountID != x.AccountID {
			return fmt.Errorf("%w: %s", ErrInstanceNotFound, x.InstanceID)
		}
	}
	if n := countAccount(c.certs, func(x *Certificate) string { return x.AccountID }, x.AccountID); n >= MaxCertificatesPerAccount {
		return fmt.Errorf("%w: an account may have at most %d certificates", ErrCertificateLimitExceeded, MaxCertificatesPerAccount)
	}
	n := x.clone()
	if len(n.Tags) > MaxTagsPerCertificate {
		return fmt.Errorf("%w: a certificate may carry at most %d tags", ErrTagLimit, MaxTagsPerCertificate)
	}
	n.Status, n.Cert, n.Chain, n.NotBefore, n.NotAfter = CertPending, nil, "", 0, 0
	n.CreatedAt, n.UpdatedAt, n.ModifyIndex = cmd.Now, cmd.Now, index
	n.Key.CreateIndex = index
	c.certs[n.ID] = n
	return nil
}

// updateCertificate applies change to a copy of an account's certificate
// and stores it; a change that fails leaves the catalogue as it was.
func (c *catalogue) updateCertificate(accountID, id string, now int64, index uint64, change func(*Certificate) error) error {
	x, ok := c.certs[id]
	if !ok || x.AccountID != accountID {
		return fmt.Errorf("%w: %s", ErrCertificateNotFound, id)
	}
	n := x.clone()
	if err := change(n); err != nil {
		return err
	}
	n.UpdatedAt, n.ModifyIndex = now, index
	c.certs[id] = n
	return nil
}

// Reads.

// Certificate returns a certificate by id.
func (f *FSM) Certificate(id string) (*Certificate, bool) {
	var x *Certificate
	var ok bool
	f.read(func(c *catalogue) { x, ok = c.certs[id] })
	return x, ok
}

// Certificates returns an account's certificates sorted by id.
func (f *FSM) Certificates(accountID string) []*Certificate {
	return selectSorted(f, func(c *catalogue) map[string]*Certificate { return c.certs },
		func(x *Certificate) bool { return x.AccountID == accountID },
		func(a, b *Certificate) bool { return a.ID < b.ID })
}

// Snapshot records.

func (c *catalogue) writeCertificates(w io.Writer) error {
	return writeAll(w, recCertificate, c.certs)
}

func (c *catalogue) loadCertificate(body []byte) error {
	return loadInto(c.certs, body, func(x *Certificate) string {
		if x.ID == "" || x.AccountID == "" {
			return ""
		}
		if x.Tags == nil {
			x.Tags = map[string]string{}
		}
		return x.ID
	})
}

// checkCertificateReferences: every certificate belongs to an account.
func (c *catalogue) checkCertificateReferences() error {
	for id, x := range c.certs {
		if _, ok := c.accounts[x.AccountID]; !ok {
			return fmt.Errorf("certificate %s belongs to a missing account", id)
		}
	}
	return nil
}
