package fsm

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// Certificates in Apply: the key pair and the certificate are opaque bytes
// here (kms makes and checks them).

func certificateRecord(id string) Certificate {
	return Certificate{ID: id, AccountID: acct, KeySpec: "RSA_2048", Subject: "CN=a,OU=b,O=c,C=CN",
		Key: KeyVersion{ID: id + "-key", KeyID: id, WrappedMaterial: []byte("wrapped-" + id), PublicKey: []byte("spki-" + id)},
		CSR: []byte("csr-" + id), Tags: map[string]string{}}
}

func certificateHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.init()
	h.mustApply(CmdCreateCertificate, CreateCertificateCmd{Now: 3000, Certificate: certificateRecord("c1")})
	return h
}

func (h *harness) certificate(id string) *Certificate {
	h.t.Helper()
	x, ok := h.f.Certificate(id)
	if !ok {
		h.t.Fatalf("certificate %s missing", id)
	}
	return x
}

func upload(id string) UploadCertificateCmd {
	return UploadCertificateCmd{Now: 4000, AccountID: acct, ID: id, Cert: []byte("cert-" + id), Chain: "chain", PublicKey: []byte("spki-" + id), NotBefore: 1000, NotAfter: 9000}
}

func TestCertificateApply_Lifecycle(t *testing.T) {
	h := certificateHarness(t)
	x := h.certificate("c1")
	if x.Status != CertPending || x.CreatedAt != 3000 || x.ModifyIndex != h.index || x.Key.CreateIndex != h.index {
		t.Fatalf("created %+v", x)
	}
	base := certificateRecord("c2")
	with := func(f func(*Certificate)) CreateCertificateCmd {
		c := base
		f(&c)
		return CreateCertificateCmd{Now: 3000, Certificate: c}
	}
	h.refused("the id taken", ErrKeyExists, CmdCreateCertificate, CreateCertificateCmd{Now: 3000, Certificate: certificateRecord("c1")})
	h.refused("an unknown account", ErrAccountNotFound, CmdCreateCertificate, with(func(c *Certificate) { c.AccountID = "999" }))
	h.refused("no key pair", ErrPreconditionFailed, CmdCreateCertificate, with(func(c *Certificate) { c.Key.WrappedMaterial = nil }))
	h.refused("a key pair of another id", ErrPreconditionFailed, CmdCreateCertificate, with(func(c *Certificate) { c.Key.KeyID = "c1" }))
	h.refused("no CSR", ErrPreconditionFailed, CmdCreateCertificate, with(func(c *Certificate) { c.CSR = nil }))
	h.refused("an unknown instance", ErrInstanceNotFound, CmdCreateCertificate, with(func(c *Certificate) { c.InstanceID = "kst-nope" }))
	h.refused("21 tags", ErrTagLimit, CmdCreateCertificate, with(func(c *Certificate) {
		c.Tags = map[string]string{}
		for i := range 21 {
			c.Tags[fmt.Sprint(i)] = "v"
		}
	}))

	// Status changes need the certificate uploaded.
	h.refused("ACTIVE before upload", ErrCertificateStatus, CmdUpdateCertificateStatus, UpdateCertificateStatusCmd{Now: 3500, AccountID: acct, ID: "c1", Status: CertActive})
	wrong := upload("c1")
	wrong.PublicKey = []byte("another key")
	h.refused("another public key", ErrCertificateMismatch, CmdUploadCertificate, wrong)
	other := upload("c1")
	other.AccountID = "2222"
	h.refused("another account", ErrCertificateNotFound, CmdUploadCertificate, other)
	h.mustApply(CmdUploadCertificate, upload("c1"))
	x = h.certificate("c1")
	if x.Status != CertActive || string(x.Cert) != "cert-c1" || x.Chain != "chain" || x.NotBefore != 1000 || x.NotAfter != 9000 || x.UpdatedAt != 4000 {
		t.Fatalf("uploaded %+v", x)
	}
	h.refused("a second upload", ErrCertificateStatus, CmdUploadCertificate, upload("c1"))
	h.refused("an unknown status", ErrPreconditionFailed, CmdUpdateCertificateStatus, UpdateCertificateStatusCmd{AccountID: acct, ID: "c1", Status: "PENDING"})
	for _, st := range []string{CertInactive, CertActive, CertRevoked, CertRevoked} {
		h.mustApply(CmdUpdateCertificateStatus, UpdateCertificateStatusCmd{Now: 5000, AccountID: acct, ID: "c1", Status: st})
		if got := h.certificate("c1").Status; got != st {
			t.Fatalf("status %s, want %s", got, st)
		}
	}
	h.refused("out of REVOKED", ErrCertificateStatus, CmdUpdateCertificateStatus, UpdateCertificateStatusCmd{AccountID: acct, ID: "c1", Status: CertActive})

	h.mustApply(CmdTagCertificate, TagCertificateCmd{Now: 6000, AccountID: acct, ID: "c1", Tags: map[string]string{"a": "1", "b": "2"}})
	h.mustApply(CmdTagCertificate, TagCertificateCmd{Now: 6000, AccountID: acct, ID: "c1", Remove: []string{"a"}})
	if tags := h.certificate("c1").Tags; len(tags) != 1 || tags["b"] != "2" {
		t.Fatalf("tags %v", tags)
	}
	h.refused("delete in another account", ErrCertificateNotFound, CmdDeleteCertificate, DeleteCertificateCmd{AccountID: "2222", ID: "c1"})
	h.mustApply(CmdDeleteCertificate, DeleteCertificateCmd{Now: 7000, AccountID: acct, ID: "c1"})
	if _, ok := h.f.Certificate("c1"); ok {
		t.Fatal("deleted certificate still there")
	}
	h.refused("delete twice", ErrCertificateNotFound, CmdDeleteCertificate, DeleteCertificateCmd{AccountID: acct, ID: "c1"})
}

// A reader's copy does not change under later commands.
func TestCertificateApply_ReadersKeepTheirCopy(t *testing.T) {
	h := certificateHarness(t)
	x := h.certificate("c1")
	h.mustApply(CmdTagCertificate, TagCertificateCmd{AccountID: acct, ID: "c1", Tags: map[string]string{"a": "1"}})
	h.mustApply(CmdUploadCertificate, upload("c1"))
	if x.Status != CertPending || len(x.Tags) != 0 || x.Cert != nil {
		t.Fatalf("the reader's copy changed: %+v", x)
	}
}

func TestSnapshot_RoundTripsCertificates(t *testing.T) {
	h := certificateHarness(t)
	h.mustApply(CmdUploadCertificate, upload("c1"))
	h.mustApply(CmdTagCertificate, TagCertificateCmd{AccountID: acct, ID: "c1", Tags: map[string]string{"a": "b"}})
	h.mustApply(CmdCreateCertificate, CreateCertificateCmd{Now: 3000, Certificate: certificateRecord("c2")})
	data := snapshotBytes(t, h.f)
	want, _ := h.f.Hash()
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Hash(); got != want {
		t.Fatal("the restored catalogue differs")
	}
	x, ok := g.Certificate("c1")
	if !ok || x.Status != CertActive || x.Tags["a"] != "b" || !bytes.Equal(x.Key.WrappedMaterial, []byte("wrapped-c1")) || x.NotAfter != 9000 {
		t.Fatalf("restored c1 = %+v", x)
	}
	if all := g.Certificates(acct); len(all) != 2 || all[0].ID != "c1" {
		t.Fatalf("Certificates = %v", all)
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("re-persisted snapshot differs")
	}
}

func TestCertificateCommands_HaveNames(t *testing.T) {
	for typ, name := range map[CommandType]string{CmdCreateCertificate: "CreateCertificate", CmdUploadCertificate: "UploadCertificate",
		CmdUpdateCertificateStatus: "UpdateCertificateStatus", CmdDeleteCertificate: "DeleteCertificate", CmdTagCertificate: "TagCertificate"} {
		if typ.String() != name {
			t.Errorf("%d.String() = %q, want %q", typ, typ.String(), name)
		}
	}
}
