package kms

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// oldCluster is a service over a catalogue initialized without an instance
// CA, as clusters were before the instance endpoint.
func oldCluster(t *testing.T, leader bool) (*Service, *directStore, *fakeClock) {
	t.Helper()
	root, err := kcrypto.NewRootKey(bytes.Repeat([]byte{0x42}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	f := fsm.New(nil, fsm.WithSnapshotKey(root.Derive(kcrypto.LabelSnapshotMAC)))
	st := &directStore{fsm: f, leader: leader}
	clock := newFakeClock()
	svc, err := New(Config{RootKey: root, FSM: f, Store: st, Clock: clock.Now, NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := fsm.Encode(fsm.CmdInit, fsm.InitCmd{
		Now: 1, RootCheck: root.CheckValue(),
		Account:  fsm.Account{ID: "1234567890123456", Name: "operator", Operator: true},
		Instance: fsm.Instance{ID: "kst-old", AccountID: "1234567890123456", Type: InstanceSoftware, KeyQuota: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := st.Propose(context.Background(), cmd); res.Err != nil {
		t.Fatal(res.Err)
	}
	return svc, st, clock
}

func TestSchedulerTick_GivesAClusterWithoutInstanceCAOneOnce(t *testing.T) {
	svc, st, _ := oldCluster(t, true)
	if _, ok := svc.InstanceCAPEM(); ok {
		t.Fatal("an old cluster has a CA before any tick")
	}
	if _, err := svc.SchedulerTick(context.Background()); err != nil {
		t.Fatal(err)
	}
	ca, ok := svc.fsm.InstanceCA()
	if !ok || ca.CreatedBy != "n1" {
		t.Fatalf("after a tick: %+v, %v", ca, ok)
	}
	index := st.index
	if _, err := svc.SchedulerTick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again, _ := svc.fsm.InstanceCA(); again != ca || st.index != index {
		t.Fatal("a second tick proposed another CA")
	}
}

func TestSchedulerTick_FollowerMakesNoInstanceCA(t *testing.T) {
	svc, st, _ := oldCluster(t, false)
	index := st.index
	if _, err := svc.SchedulerTick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.fsm.InstanceCA(); ok || st.index != index {
		t.Fatal("a follower proposed a CA")
	}
}

func TestInit_GivesTheClusterAnInstanceCAWrappedUnderTheRootKey(t *testing.T) {
	e := newSvcEnv(t)
	ca, ok := e.fsm.InstanceCA()
	if !ok {
		t.Fatal("no instance CA after init")
	}
	cert, err := x509.ParseCertificate(ca.CertDER)
	if err != nil || !cert.IsCA || !cert.BasicConstraintsValid || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Fatalf("CA certificate %+v, %v", cert, err)
	}
	pk, err := e.root.Unwrap(ca.WrappedKey, kcrypto.InstanceCAAAD(ca.CertDER))
	if err != nil {
		t.Fatalf("the CA key does not unwrap under the root key with its AAD: %v", err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(pk); err != nil {
		t.Fatal(err)
	}
	// Bound to its certificate: under another certificate's AAD it does
	// not open.
	if _, err := e.root.Unwrap(ca.WrappedKey, kcrypto.InstanceCAAAD([]byte("another certificate"))); err == nil {
		t.Fatal("the CA key opens for another certificate")
	}
	pemText, _ := e.svc.InstanceCAPEM()
	if b, _ := pem.Decode([]byte(pemText)); b == nil || !bytes.Equal(b.Bytes, ca.CertDER) {
		t.Fatal("InstanceCAPEM is not the CA certificate")
	}
}

func TestInstanceCerts_RefusesWithoutACA(t *testing.T) {
	svc, _, _ := oldCluster(t, false)
	if _, err := svc.InstanceCertificates([]string{"127.0.0.1"}, 0).Current(); !errors.Is(err, ErrInstanceCertUnavailable) {
		t.Fatalf("err = %v, want ErrInstanceCertUnavailable", err)
	}
}

func TestInstanceCerts_IssuesForTheNamesAndRenewsAtTwoThirds(t *testing.T) {
	e := newSvcEnv(t)
	caPEM, _ := e.svc.InstanceCAPEM()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	const life = 9 * time.Hour
	ic := e.svc.InstanceCertificates([]string{"kms.example", "10.0.0.5", "127.0.0.1"}, life)
	first, err := ic.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kms.example", "10.0.0.5", "127.0.0.1"} {
		if _, err := first.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: e.clock.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Fatalf("the certificate does not verify for %s: %v", name, err)
		}
	}
	if err := first.Leaf.VerifyHostname("other.example"); err == nil {
		t.Fatal("the certificate names a host it was not issued for")
	}
	for _, tc := range []struct {
		advance time.Duration
		renewed bool
	}{
		{5*time.Hour + 59*time.Minute, false}, // just before 2/3 of 9 h
		{2 * time.Minute, true},               // just after
		{time.Hour, false},                    // the new one is young
	} {
		before, _ := ic.Current()
		e.clock.Advance(tc.advance)
		got, err := ic.Current()
		if err != nil {
			t.Fatal(err)
		}
		if renewed := got != before; renewed != tc.renewed {
			t.Fatalf("after %s more: renewed %v, want %v", tc.advance, renewed, tc.renewed)
		}
	}
}

func TestInstanceCerts_FailsUnderAnotherRootKey(t *testing.T) {
	e := newSvcEnv(t)
	other, err := kcrypto.NewRootKey(bytes.Repeat([]byte{0x43}, kcrypto.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{RootKey: other, FSM: e.fsm, Store: e.store, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.InstanceCertificates([]string{"127.0.0.1"}, 0).Current(); !errors.Is(err, kcrypto.ErrUnwrap) {
		t.Fatalf("err = %v, want the CA key not to unwrap", err)
	}
}
