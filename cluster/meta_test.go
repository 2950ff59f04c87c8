package cluster

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// realisticMeta is on the generous side of what a production node gossips.
func realisticMeta() Meta {
	return Meta{
		ID:                "kms-node-eu-central-1a-0007.prod.example.internal",
		Region:            "eu-central-1",
		Zone:              "eu-central-1a",
		Version:           "v1.12.3-rc.2+g0123456789ab",
		ClusterAddr:       "[fd00:1234:5678:9abc:def0:1234:5678:9abc]:7001",
		HTTPAddr:          "[fd00:1234:5678:9abc:def0:1234:5678:9abc]:8443",
		Bootstrapped:      true,
		Expect:            5,
		BootstrapProposal: "0123456789abcdef",
		HSM: []HSMDomain{
			{Domain: "luna-prod-primary", Health: HSMHealthOK, CheckValue: "a1b2c3d4e5f6"},
			{Domain: "luna-prod-secondary", Health: HSMHealthBad, CheckValue: "0f1e2d3c4b5a"},
			{Domain: "softhsm-dr", Health: HSMHealthMismatch, CheckValue: "deadbeefcafe"},
		},
	}
}

func TestMeta_RealisticFitsMemberlistLimit(t *testing.T) {
	m := realisticMeta()
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if len(b) > MaxMetaSize {
		t.Fatalf("realistic meta is %d bytes, limit %d", len(b), MaxMetaSize)
	}
	t.Logf("realistic meta: %d of %d bytes", len(b), MaxMetaSize)
	got, err := decodeMeta(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

func TestMeta_TooLargeIsRejected(t *testing.T) {
	m := realisticMeta()
	for i := 0; i < 20; i++ {
		m.HSM = append(m.HSM, HSMDomain{Domain: "domain-with-a-long-name-xxxxxxxx", Health: HSMHealthOK, CheckValue: "0123456789ab"})
	}
	if _, err := encodeMeta(m); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("encode oversized meta: err = %v, want ErrMetaTooLarge", err)
	}
	if _, err := New(Config{BindAddr: "127.0.0.1:0", Meta: m, Fast: true}); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("New with oversized meta: err = %v, want ErrMetaTooLarge", err)
	}
}

func TestMeta_DecodeIgnoresUnknownFields(t *testing.T) {
	// A newer node may gossip fields this version does not know.
	var buf bytes.Buffer
	buf.WriteByte(metaFormatV1)
	if err := msgpack.NewEncoder(&buf).Encode(map[string]any{"id": "n1", "z": "a", "future": []int{1, 2}}); err != nil {
		t.Fatal(err)
	}
	got, err := decodeMeta(buf.Bytes())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got.ID != "n1" || got.Zone != "a" {
		t.Fatalf("got %+v", got)
	}
}

func TestMeta_DecodeRejectsUnknownFormat(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {2, 0x80}, {metaFormatV1, 0xc1}} {
		if _, err := decodeMeta(b); err == nil {
			t.Errorf("decodeMeta(%x) succeeded, want error", b)
		}
	}
}
