package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

const hwInst = "kst-hardware"

func (h *harness) hardwareInstance(domain string) {
	h.t.Helper()
	h.mustApply(CmdCreateInstance, CreateInstanceCmd{Now: 1500, Instance: Instance{
		ID: hwInst, AccountID: acct, Type: InstanceTypeHardware, HSMDomain: domain, KeyQuota: 1000,
	}})
}

func TestRegisterHSMDomain_FirstWriterWins(t *testing.T) {
	h := newHarness(t)
	h.mustApply(CmdRegisterHSMDomain, RegisterHSMDomainCmd{Now: 1, Name: "d1", CheckValue: []byte{1, 2, 3}, NodeID: "n1"})
	before, _ := h.f.Hash()
	// The same value again (the second token of the domain): accepted, no change.
	h.mustApply(CmdRegisterHSMDomain, RegisterHSMDomainCmd{Now: 2, Name: "d1", CheckValue: []byte{1, 2, 3}, NodeID: "n2"})
	if after, _ := h.f.Hash(); after != before {
		t.Fatal("registering the same check value changed the catalogue")
	}
	err := h.apply(CmdRegisterHSMDomain, RegisterHSMDomainCmd{Now: 3, Name: "d1", CheckValue: []byte{9, 9, 9}, NodeID: "n3"})
	if !errors.Is(err, ErrHSMDomainMismatch) {
		t.Fatalf("another key under the same name: %v", err)
	}
	d, ok := h.f.HSMDomain("d1")
	if !ok || !bytes.Equal(d.CheckValue, []byte{1, 2, 3}) || d.RegisteredBy != "n1" || d.CreatedAt != 1 {
		t.Fatalf("domain = %+v", d)
	}
	if err := h.apply(CmdRegisterHSMDomain, RegisterHSMDomainCmd{Name: "d2"}); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("no check value: %v", err)
	}
	h.mustApply(CmdRegisterHSMDomain, RegisterHSMDomainCmd{Name: "d0", CheckValue: []byte{4, 5, 6}})
	if ds := h.f.HSMDomains(); len(ds) != 2 || ds[0].Name != "d0" || ds[1].Name != "d1" {
		t.Fatalf("domains = %+v", ds)
	}
}

func TestCreateKey_ProtectionMustMatchTheInstance(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.hardwareInstance("d1")
	key := func(id, instance string) Key {
		return Key{ID: id, AccountID: acct, InstanceID: instance, Spec: "Aliyun_AES_128", Usage: "ENCRYPT/DECRYPT", Origin: "Aliyun_KMS", ProtectionLevel: "HSM", State: StateEnabled}
	}
	before, _ := h.f.Hash()
	for _, tc := range []struct {
		name     string
		instance string
		domain   string
	}{
		{"root-wrapped version in a hardware instance", hwInst, ""},
		{"another domain's version in a hardware instance", hwInst, "d2"},
		{"domain-wrapped version in a software instance", inst, "d1"},
	} {
		err := h.apply(CmdCreateKey, CreateKeyCmd{Key: key("k-"+tc.name, tc.instance), Version: KeyVersion{ID: "v-" + tc.name, Domain: tc.domain, WrappedMaterial: []byte("w")}})
		if !errors.Is(err, ErrProtectionMismatch) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if after, _ := h.f.Hash(); after != before {
		t.Fatal("a refused CreateKey changed the catalogue")
	}
	h.mustApply(CmdCreateKey, CreateKeyCmd{Key: key("k1", hwInst), Version: KeyVersion{ID: "v1", Domain: "d1", WrappedMaterial: []byte("w1")}})
	if err := h.apply(CmdCreateKeyVersion, CreateKeyVersionCmd{Version: KeyVersion{ID: "v2", KeyID: "k1", WrappedMaterial: []byte("root-wrapped")}}); !errors.Is(err, ErrProtectionMismatch) {
		t.Fatalf("root-wrapped rotation of a hardware key: %v", err)
	}
	h.mustApply(CmdCreateKeyVersion, CreateKeyVersionCmd{Version: KeyVersion{ID: "v2", KeyID: "k1", Domain: "d1", WrappedMaterial: []byte("w2")}})
	if k, _ := h.f.Key("k1"); k.PrimaryVersion != "v2" {
		t.Fatalf("primary = %s", k.PrimaryVersion)
	}
	if in, _ := h.f.Instance(hwInst); in.KeysUsed != 1 || in.HSMDomain != "d1" || in.Type != InstanceTypeHardware {
		t.Fatalf("instance = %+v", in)
	}
}

func TestSnapshot_KeepsHSMDomainsAndDomainWrappedVersions(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.mustApply(CmdRegisterHSMDomain, RegisterHSMDomainCmd{Now: 5, Name: "d1", CheckValue: []byte{1, 2, 3}, NodeID: "n1"})
	h.hardwareInstance("d1")
	h.mustApply(CmdCreateKey, CreateKeyCmd{
		Key:     Key{ID: "k1", AccountID: acct, InstanceID: hwInst, Spec: "EC_P256", Usage: "SIGN/VERIFY", Origin: "Aliyun_KMS", ProtectionLevel: "HSM", State: StateEnabled},
		Version: KeyVersion{ID: "v1", Domain: "d1", WrappedMaterial: []byte("wrapped-under-d1"), PublicKey: []byte("spki")},
	})
	data := snapshotBytes(t, h.f)
	want, _ := h.f.Hash()
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Hash(); got != want {
		t.Fatal("restored catalogue differs")
	}
	if d, ok := g.HSMDomain("d1"); !ok || !bytes.Equal(d.CheckValue, []byte{1, 2, 3}) {
		t.Fatalf("restored domain = %+v", d)
	}
	if v, ok := g.KeyVersion("v1"); !ok || v.Domain != "d1" || string(v.WrappedMaterial) != "wrapped-under-d1" {
		t.Fatalf("restored version = %+v", v)
	}
	if in, ok := g.Instance(hwInst); !ok || in.HSMDomain != "d1" {
		t.Fatalf("restored instance = %+v", in)
	}
	info, err := h.f.VerifySnapshot(bytes.NewReader(data), VerifyOptions{})
	if err != nil || info.HSMDomains != 1 || info.Keys != 1 {
		t.Fatalf("VerifySnapshot = %+v, %v", info, err)
	}
}

// A catalogue without HSM state persists to the same bytes as before HSM
// support: the new fields are omitted when empty and there are no domain
// records.
func TestSnapshot_SoftwareCatalogueUnchangedByHSMFields(t *testing.T) {
	h := buildCatalogue(t, 3)
	data := snapshotBytes(t, h.f)
	for _, marker := range [][]byte{[]byte("\xa3hsm"), []byte("\xa3dom")} {
		if bytes.Contains(data, marker) {
			t.Fatalf("software snapshot carries the HSM field %q", marker[1:])
		}
	}
}
