package fsm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	kcrypto "github.com/raftkms/raftkms/crypto"
)

// testCA is an instance CA record as kms makes one: a certificate (here any
// bytes stand for it) and a real P-256 key wrapped under a root key. It
// returns the key's private scalar too, to look for it where it must not
// be.
func testCA(t *testing.T, cert string) (InstanceCA, []byte) {
	t.Helper()
	root, err := kcrypto.NewRootKey(bytes.Repeat([]byte{7}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := root.Wrap(pk, kcrypto.InstanceCAAAD([]byte(cert)))
	if err != nil {
		t.Fatal(err)
	}
	return InstanceCA{CertDER: []byte(cert), WrappedKey: wrapped, CreatedAt: 1000, CreatedBy: "n1"}, key.D.FillBytes(make([]byte, 32))
}

func TestInit_RecordsTheInstanceCAItCarries(t *testing.T) {
	h := newHarness(t)
	ca, _ := testCA(t, "ca-cert")
	h.mustApply(CmdInit, InitCmd{
		Now: 1000, RootCheck: []byte("check"),
		Account:    Account{ID: acct, Name: "root", Operator: true},
		AccessKey:  AccessKey{ID: "LTAIexample", AccountID: acct, Principal: "acs:ram::" + acct + ":root", WrappedSecret: []byte{1}, Status: "Active"},
		Instance:   Instance{ID: inst, AccountID: acct, Type: "software", KeyQuota: 1000},
		InstanceCA: &ca,
	})
	got, ok := h.f.InstanceCA()
	if !ok || !bytes.Equal(got.CertDER, ca.CertDER) || !bytes.Equal(got.WrappedKey, ca.WrappedKey) || got.ModifyIndex != 1 {
		t.Fatalf("InstanceCA = %+v, %v", got, ok)
	}
}

func TestInit_RefusesAnEmptyInstanceCAChangingNothing(t *testing.T) {
	h := newHarness(t)
	err := h.apply(CmdInit, InitCmd{
		Now: 1000, RootCheck: []byte("check"),
		Account:    Account{ID: acct, Name: "root", Operator: true},
		Instance:   Instance{ID: inst, AccountID: acct, Type: "software", KeyQuota: 1000},
		InstanceCA: &InstanceCA{CertDER: []byte("cert")},
	})
	if !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("err = %v, want ErrPreconditionFailed", err)
	}
	if ok, _ := h.f.Initialized(); ok {
		t.Fatal("a refused init initialized the cluster")
	}
}

func TestSetInstanceCA_FirstOneWins(t *testing.T) {
	first, _ := testCA(t, "first")
	other, _ := testCA(t, "other")
	h := newHarness(t)
	if err := h.apply(CmdSetInstanceCA, SetInstanceCACmd{Now: 1, CA: first}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("before init: err = %v, want ErrNotInitialized", err)
	}
	h.init() // an init without a CA: a cluster from before the instance endpoint
	if _, ok := h.f.InstanceCA(); ok {
		t.Fatal("a CA out of nowhere")
	}
	h.mustApply(CmdSetInstanceCA, SetInstanceCACmd{Now: 2, CA: first})
	recorded, _ := h.f.InstanceCA()
	for _, tc := range []struct {
		name string
		ca   InstanceCA
		want error
	}{
		{"the same CA again is a no-op", first, nil},
		{"another CA is refused", other, ErrInstanceCAExists},
		{"a CA without key is refused", InstanceCA{CertDER: []byte("x")}, ErrPreconditionFailed},
		{"a CA without certificate is refused", InstanceCA{WrappedKey: []byte("x")}, ErrPreconditionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := h.f.Hash()
			err := h.apply(CmdSetInstanceCA, SetInstanceCACmd{Now: 3, CA: tc.ca})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if after, _ := h.f.Hash(); after != before {
				t.Fatal("the catalogue changed")
			}
			if got, _ := h.f.InstanceCA(); got != recorded {
				t.Fatalf("the recorded CA changed: %+v", got)
			}
		})
	}
}

func TestSnapshot_RoundTripsTheInstanceCA(t *testing.T) {
	h := buildCatalogue(t, 3)
	withoutCA := snapshotBytes(t, h.f)
	ca, _ := testCA(t, "ca-cert")
	h.mustApply(CmdSetInstanceCA, SetInstanceCACmd{Now: 5, CA: ca})
	data := snapshotBytes(t, h.f)
	want, _ := h.f.Hash()
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Hash(); got != want {
		t.Fatal("restored catalogue differs")
	}
	got, ok := g.InstanceCA()
	if !ok || !bytes.Equal(got.CertDER, ca.CertDER) || !bytes.Equal(got.WrappedKey, ca.WrappedKey) || got.CreatedBy != "n1" {
		t.Fatalf("restored CA = %+v, %v", got, ok)
	}
	if !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatal("re-persisted snapshot differs")
	}
	// A catalogue without a CA restores without one (and persists without
	// the record, as before the instance endpoint).
	e := newTestFSM()
	if err := e.Restore(io.NopCloser(bytes.NewReader(withoutCA))); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.InstanceCA(); ok {
		t.Fatal("a CA appeared from a snapshot without one")
	}
	if bytes.Contains(withoutCA, []byte("\xa4wkey")) {
		t.Fatal("a catalogue without a CA persists a CA record")
	}
}

func TestSnapshot_RefusesADuplicateInstanceCARecord(t *testing.T) {
	c := newCatalogue()
	ca, _ := testCA(t, "ca-cert")
	var rec bytes.Buffer
	if err := writeRecord(&rec, recInstanceCA, &ca); err != nil {
		t.Fatal(err)
	}
	body := rec.Bytes()[5:] // type byte and length
	if err := c.loadRecord(recInstanceCA, body); err != nil {
		t.Fatal(err)
	}
	if err := c.loadRecord(recInstanceCA, body); err == nil {
		t.Fatal("a second instance CA record was accepted")
	}
}

// The CA's private key reaches the catalogue only wrapped: neither the
// log entry that carries it nor a snapshot holds its plaintext.
func TestInstanceCA_KeyNeverInTheLogOrSnapshotsInTheClear(t *testing.T) {
	h := newHarness(t)
	h.init()
	ca, plain := testCA(t, "ca-cert")
	entry, err := Encode(CmdSetInstanceCA, SetInstanceCACmd{Now: 5, CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	h.index++
	if resp := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: entry}); resp != nil {
		t.Fatal(resp)
	}
	data := snapshotBytes(t, h.f)
	// Any 8-byte window of the private scalar would betray it.
	for name, b := range map[string][]byte{"log entry": entry, "snapshot": data} {
		if !bytes.Contains(b, ca.WrappedKey) {
			t.Fatalf("the %s does not carry the wrapped key", name)
		}
		for i := 0; i+8 <= len(plain); i += 4 {
			if bytes.Contains(b, plain[i:i+8]) {
				t.Fatalf("the %s holds plaintext of the CA key at offset %d", name, i)
			}
		}
	}
}
