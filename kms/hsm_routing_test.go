package kms

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/fsm"
)

// Routing of hardware keys to HSM peers, without any token: which peers are
// eligible, in which order.

func newRoutingEnv(t *testing.T, zone string, peers []HSMPeer) *svcEnv {
	t.Helper()
	e := newSvcEnv(t)
	e.svc.cfg.NodeID, e.svc.cfg.Zone = "self", zone
	e.svc.cfg.HSMPeers = func(domain string) []HSMPeer {
		if domain != "d1" {
			return nil
		}
		return append([]HSMPeer(nil), peers...)
	}
	return e
}

func register(t *testing.T, e *svcEnv, domain string, kcv []byte) {
	t.Helper()
	if _, err := e.svc.propose(context.Background(), fsm.CmdRegisterHSMDomain, fsm.RegisterHSMDomainCmd{Name: domain, CheckValue: kcv, NodeID: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestHSMTargets_OnlyHealthyPeersWithTheRecordedKeySameZoneFirst(t *testing.T) {
	kcv, other := []byte{1, 2, 3}, []byte{9, 9, 9}
	peers := []HSMPeer{
		{ID: "far-b", ClusterAddr: "b:1", Zone: "z2", Health: HSMHealthOK, CheckValue: kcv},
		{ID: "near-a", ClusterAddr: "a:1", Zone: "z1", Health: HSMHealthOK, CheckValue: kcv},
		{ID: "far-a", ClusterAddr: "c:1", Zone: "z3", Health: HSMHealthOK, CheckValue: kcv},
		{ID: "near-b", ClusterAddr: "d:1", Zone: "z1", Health: HSMHealthOK, CheckValue: kcv},
		{ID: "bad", ClusterAddr: "e:1", Zone: "z1", Health: HSMHealthBad, CheckValue: kcv},
		{ID: "mismatch", ClusterAddr: "f:1", Zone: "z1", Health: HSMHealthMismatch, CheckValue: other},
		{ID: "liar", ClusterAddr: "g:1", Zone: "z1", Health: HSMHealthOK, CheckValue: other}, // says ok, holds another key
		{ID: "self", ClusterAddr: "h:1", Zone: "z1", Health: HSMHealthOK, CheckValue: kcv},
		{ID: "noaddr", Zone: "z1", Health: HSMHealthOK, CheckValue: kcv},
	}
	e := newRoutingEnv(t, "z1", peers)
	if got := e.svc.hsmTargets("d1"); len(got) != 0 {
		t.Fatalf("before the domain is recorded: %v", got)
	}
	register(t, e, "d1", kcv)
	firstNear, firstFar := map[string]int{}, map[string]int{}
	for i := 0; i < 20; i++ {
		got := e.svc.hsmTargets("d1")
		if len(got) != 4 {
			t.Fatalf("targets = %+v", got)
		}
		for j, p := range got {
			near := p.Zone == "z1"
			if near != (j < 2) {
				t.Fatalf("same-zone peers are not first: %+v", got)
			}
		}
		firstNear[got[0].ID]++
		firstFar[got[2].ID]++
	}
	// Round robin among equals: each same-zone peer leads half the time,
	// and so does each other-zone peer within its group.
	if firstNear["near-a"] != 10 || firstNear["near-b"] != 10 || firstFar["far-a"] != 10 || firstFar["far-b"] != 10 {
		t.Fatalf("load not spread: near %v far %v", firstNear, firstFar)
	}
	if e.svc.domainKnown("d2") {
		t.Fatal("d2 is known to nobody")
	}
}

func TestHSMDo_NoPeerIsA503NamingTheDomain(t *testing.T) {
	e := newRoutingEnv(t, "z1", []HSMPeer{{ID: "n9", ClusterAddr: "x:1", Health: HSMHealthBad, CheckValue: []byte{1, 2, 3}}})
	register(t, e, "d1", []byte{1, 2, 3})
	_, err := e.svc.hsmDo(context.Background(), hsmRequest{Op: hsmOpGenerate, Domain: "d1", Spec: "EC_P256"})
	if !errors.Is(err, ErrHSMUnavailable) || !strings.Contains(err.Error(), `"d1"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCreateInstanceWith_Hardware(t *testing.T) {
	e := newRoutingEnv(t, "z1", []HSMPeer{{ID: "n1", ClusterAddr: "a:1", Health: HSMHealthOK, CheckValue: []byte{1, 2, 3}}})
	ctx := context.Background()
	_, _, err := e.svc.CreateInstance(ctx, e.caller, InstanceInput{Type: "hardware", HSMDomain: "nope"})
	wantErr(t, "unknown domain", err, ErrInvalidParameter)
	_, _, err = e.svc.CreateInstance(ctx, e.caller, InstanceInput{Type: "hardware"})
	wantErr(t, "no domain", err, ErrInvalidParameter)
	_, _, err = e.svc.CreateInstance(ctx, e.caller, InstanceInput{Type: "software", HSMDomain: "d1"})
	wantErr(t, "software with a domain", err, ErrInvalidParameter)
	_, _, err = e.svc.CreateInstance(ctx, e.caller, InstanceInput{Type: "cloud"})
	wantErr(t, "unknown type", err, ErrInvalidParameter)
	// Advertised by a peer, not yet recorded: accepted.
	in, _, err := e.svc.CreateInstance(ctx, e.caller, InstanceInput{Type: "hardware", HSMDomain: "d1", Name: "hw"})
	if err != nil || in.Type != InstanceHardware || in.HSMDomain != "d1" {
		t.Fatalf("hardware instance: %+v %v", in, err)
	}
	// Its keys are HSM keys; with no node to generate them, a clear 503.
	e.svc.cfg.HSMPeers = func(string) []HSMPeer { return nil }
	_, _, err = e.svc.CreateKey(ctx, e.caller, CreateKeyInput{DKMSInstanceID: in.ID, KeySpec: "Aliyun_AES_128"})
	wantErr(t, "CreateKey with no HSM node", err, ErrHSMUnavailable)
	// HSM-only specs stay refused in software instances.
	_, _, err = e.svc.CreateKey(ctx, e.caller, CreateKeyInput{DKMSInstanceID: e.inst, KeySpec: "Aliyun_AES_128"})
	wantErr(t, "AES-128 in a software instance", err, ErrInvalidParameter)
}
