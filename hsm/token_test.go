//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"

	dto "github.com/prometheus/client_model/go"
	"github.com/raftkms/raftkms/hsm/hsmtest"
)

func TestOpen_FindsTokenByLabelAmongSeveral(t *testing.T) {
	h := newSoftHSM(t, "alpha", "beta")
	a := h.open(t, "alpha")
	b := h.open(t, "beta")
	if a.slot == b.slot {
		t.Fatalf("both labels resolved to slot %d", a.slot)
	}
	if a.Health().State != HealthOK || b.Health().State != HealthOK {
		t.Fatalf("health after open: %+v %+v", a.Health(), b.Health())
	}
}

func TestOpen_Refusals(t *testing.T) {
	h := newSoftHSM(t, "alpha")
	cfg := h.config(t, "nosuch")
	if _, err := Open(cfg); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("unknown label: got %v, want ErrTokenNotFound", err)
	}
	cfg = h.config(t, "alpha")
	cfg.PIN = "0000"
	if _, err := Open(cfg); !errors.Is(err, ErrLogin) {
		t.Fatalf("wrong PIN: got %v, want ErrLogin", err)
	}
	cfg = h.config(t, "alpha")
	cfg.PinFile = filepath.Join(t.TempDir(), "pin")
	if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("PIN and PIN file: got %v", err)
	}
	// After every refusal the module must be released again: a good open
	// works, and closes cleanly.
	cfg = h.config(t, "alpha")
	cfg.PIN = ""
	cfg.PinFile = filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(cfg.PinFile, []byte(testPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.openWith(t, cfg)
}

func TestOpen_SameTokenTwiceSharesTheLogin(t *testing.T) {
	h := newSoftHSM(t, "alpha")
	a := h.open(t, "alpha")
	b := h.openWith(t, h.config(t, "alpha"))
	key := randomBytes(t, 32)
	mustEnroll(t, a, "d1", key)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// b keeps working after a closed: a must not have logged the token out.
	if _, err := b.DomainCheckValue(testCtx(t), "d1"); err != nil {
		t.Fatalf("second Token after the first closed: %v", err)
	}
	if _, err := a.DomainCheckValue(testCtx(t), "d1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed Token: got %v, want ErrClosed", err)
	}
}

func TestEnroll_IdempotentSameKeyRefusesDifferentKey(t *testing.T) {
	h := newSoftHSM(t, "alpha")
	tok := h.open(t, "alpha")
	ctx := testCtx(t)
	key := randomBytes(t, 32)
	want, err := KeyCheckValue(key)
	if err != nil {
		t.Fatal(err)
	}

	res, err := tok.Enroll(ctx, "prod", key)
	if err != nil || !res.Created || !bytes.Equal(res.CheckValue, want) {
		t.Fatalf("first enroll: %+v %v", res, err)
	}
	res, err = tok.Enroll(ctx, "prod", key)
	if err != nil || res.Created {
		t.Fatalf("second enroll with the same key: %+v %v (want no error, Created false)", res, err)
	}
	if _, err := tok.Enroll(ctx, "prod", randomBytes(t, 32)); !errors.Is(err, ErrDomainKeyMismatch) {
		t.Fatalf("enroll with a different key: got %v, want ErrDomainKeyMismatch", err)
	}
	if _, err := tok.Enroll(ctx, "prod", key[:16]); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("16-byte domain key: got %v", err)
	}

	got, err := tok.DomainCheckValue(ctx, "prod")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("DomainCheckValue = %x, %v; Go KeyCheckValue = %x", got, err, want)
	}
	if _, err := tok.DomainCheckValue(ctx, "other"); !errors.Is(err, ErrDomainNotEnrolled) {
		t.Fatalf("unknown domain: got %v", err)
	}

	mustEnroll(t, tok, "staging", randomBytes(t, 32))
	ds, err := tok.Domains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]byte{}
	for _, d := range ds {
		names[d.Name] = d.CheckValue
	}
	if len(names) != 2 || !bytes.Equal(names["prod"], want) || names["staging"] == nil {
		t.Fatalf("Domains = %+v", ds)
	}
}

// TestEnroll_KCVCollisionIsNotTakenForTheSameKey plants a token object with
// the domain's ID whose value differs but whose 3-byte check value we
// cannot control; instead it checks the proof step directly: a key with
// the right KCV claim but different bytes must be refused by the unwrap
// probe, not accepted on the KCV alone.
func TestEnroll_ProofStepRefusesADifferentKey(t *testing.T) {
	h := newSoftHSM(t, "alpha")
	tok := h.open(t, "alpha")
	key := randomBytes(t, 32)
	mustEnroll(t, tok, "prod", key)
	other := randomBytes(t, 32)
	otherKCV, _ := KeyCheckValue(other)
	tok.kmu.Lock()
	defer tok.kmu.Unlock()
	dh, err := tok.domainKeyLocked("prod")
	if err != nil {
		t.Fatal(err)
	}
	// Pretend the KCVs matched: pass the token's own KCV with other's bytes.
	kcv, _ := KeyCheckValue(key)
	if err := tok.sameDomainKeyLocked("prod", dh, other, kcv); !errors.Is(err, ErrDomainKeyMismatch) {
		t.Fatalf("proof with a different key: got %v, want ErrDomainKeyMismatch", err)
	}
	if err := tok.sameDomainKeyLocked("prod", dh, other, otherKCV); !errors.Is(err, ErrDomainKeyMismatch) {
		t.Fatalf("different KCV: got %v", err)
	}
	if err := tok.sameDomainKeyLocked("prod", dh, key, kcv); err != nil {
		t.Fatalf("proof with the same key: %v", err)
	}
}

func TestEnroll_DomainKeyIsWrapOnlySensitiveUnextractable(t *testing.T) {
	h := newSoftHSM(t, "alpha")
	tok := h.open(t, "alpha")
	mustEnroll(t, tok, "prod", randomBytes(t, 32))
	tok.kmu.Lock()
	defer tok.kmu.Unlock()
	dh, err := tok.domainKeyLocked("prod")
	if err != nil {
		t.Fatal(err)
	}
	assertBoolAttrs(t, tok, dh, map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true,
		pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_MODIFIABLE: false,
		pkcs11.CKA_WRAP: true, pkcs11.CKA_UNWRAP: true,
		pkcs11.CKA_ENCRYPT: false, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_SIGN: false,
		pkcs11.CKA_VERIFY: false, pkcs11.CKA_DERIVE: false,
	})
	assertValueRefused(t, tok, dh, pkcs11.CKA_VALUE)
	// Turning on decryption would let anyone with the PIN undo wraps with
	// CKM_AES_ECB: the object must not be modifiable.
	err = tok.ctx.SetAttributeValue(tok.keeper.h, dh, []*pkcs11.Attribute{attr(pkcs11.CKA_DECRYPT, true)})
	if err == nil {
		t.Fatal("CKA_DECRYPT could be turned on for the domain key")
	}
	if err := tok.ctx.EncryptInit(tok.keeper.h, mech(pkcs11.CKM_AES_ECB, nil), dh); !isRV(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
		t.Fatalf("ECB with the domain key: got %v, want CKR_KEY_FUNCTION_NOT_PERMITTED", err)
	}
}

func assertBoolAttrs(t *testing.T, tok *Token, h pkcs11.ObjectHandle, want map[uint]bool) {
	t.Helper()
	for typ, w := range want {
		as, err := tok.ctx.GetAttributeValue(tok.keeper.h, h, []*pkcs11.Attribute{attr(typ, nil)})
		if err != nil {
			t.Errorf("attribute %#x: %v", typ, err)
			continue
		}
		if got := len(as[0].Value) == 1 && as[0].Value[0] == 1; got != w {
			t.Errorf("attribute %#x = %v, want %v", typ, got, w)
		}
	}
}

func assertValueRefused(t *testing.T, tok *Token, h pkcs11.ObjectHandle, typ uint) {
	t.Helper()
	as, err := tok.ctx.GetAttributeValue(tok.keeper.h, h, []*pkcs11.Attribute{attr(typ, nil)})
	if !isRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
		t.Errorf("reading attribute %#x: got %v (%d bytes), want CKR_ATTRIBUTE_SENSITIVE", typ, err, lenValue(as))
	}
}

func lenValue(as []*pkcs11.Attribute) int {
	if len(as) == 0 {
		return 0
	}
	return len(as[0].Value)
}

func TestMetrics_CountOperationsPerToken(t *testing.T) {
	h := newSoftHSM(t, "alpha")
	reg := prometheus.NewRegistry()
	cfg := h.config(t, "alpha")
	cfg.Metrics = reg
	tok := h.openWith(t, cfg)
	mustEnroll(t, tok, "prod", randomBytes(t, 32))
	if _, err := tok.DomainCheckValue(context.Background(), "nosuch"); err == nil {
		t.Fatal("want an error")
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
		for _, m := range f.GetMetric() {
			if !hasLabel(m, "token", "alpha") {
				t.Errorf("%s lacks the token label: %v", f.GetName(), m.GetLabel())
			}
		}
	}
	if !seen["kms_hsm_operations_total"] || !seen["kms_hsm_up"] || !seen["kms_hsm_operation_duration_seconds"] {
		t.Fatalf("gathered %v", seen)
	}
	if v := metricValue(tok.m.ops.WithLabelValues("enroll", "ok")); v != 1 {
		t.Fatalf("enroll ok = %v", v)
	}
	if v := metricValue(tok.m.ops.WithLabelValues("domain_check_value", "error")); v != 1 {
		t.Fatalf("domain_check_value error = %v", v)
	}
	if v := metricValue(tok.m.up); v != 1 {
		t.Fatalf("up = %v", v)
	}
	// A second token on the same registry is told apart by its label, and
	// a closed token leaves the registry so it can be opened again.
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	h.openWith(t, cfg)
}

func TestRunEnroll_FromFiles(t *testing.T) {
	h := hsmtest.New(t, "alpha")
	key := randomBytes(t, 32)
	opts := EnrollOptions{ModulePath: h.Module, TokenLabel: "alpha", PinFile: h.PinFile(t), Domain: "prod",
		DomainKeyFile: hsmtest.DomainKeyFile(t, key)}
	res, err := RunEnroll(testCtx(t), opts)
	if err != nil || !res.Created {
		t.Fatalf("RunEnroll: %+v %v", res, err)
	}
	want, _ := KeyCheckValue(key)
	if !bytes.Equal(res.CheckValue, want) {
		t.Fatalf("check value %x, want %x", res.CheckValue, want)
	}
	res, err = RunEnroll(testCtx(t), opts)
	if err != nil || res.Created || !strings.Contains(res.String(), "already enrolled") {
		t.Fatalf("second RunEnroll: %v %v", res, err)
	}
	other := opts
	other.DomainKeyFile = hsmtest.DomainKeyFile(t, randomBytes(t, 32))
	if _, err := RunEnroll(testCtx(t), other); !errors.Is(err, ErrDomainKeyMismatch) {
		t.Fatalf("different key: %v", err)
	}
	bad := opts
	bad.DomainKeyFile = filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad.DomainKeyFile, []byte("not base64"), 0o600)
	if _, err := RunEnroll(testCtx(t), bad); err == nil || !strings.Contains(err.Error(), "base64 of 32 bytes") {
		t.Fatalf("bad key file: %v", err)
	}
	wrongPIN := opts
	wrongPIN.PinFile = filepath.Join(t.TempDir(), "pin")
	os.WriteFile(wrongPIN.PinFile, []byte("0000"), 0o600)
	if _, err := RunEnroll(testCtx(t), wrongPIN); !errors.Is(err, ErrLogin) {
		t.Fatalf("wrong PIN: %v", err)
	}
	missing := opts
	missing.Domain = ""
	if _, err := RunEnroll(testCtx(t), missing); err == nil || !strings.Contains(err.Error(), "--domain") {
		t.Fatalf("no domain: %v", err)
	}
}

func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
