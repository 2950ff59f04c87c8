package kms

import (
	"errors"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/fsm"
)

func TestParseRotationInterval(t *testing.T) {
	cases := []struct {
		in   string
		want int64 // seconds; -1 = invalid
	}{
		{"7d", 7 * 86400},
		{"365d", 365 * 86400},
		{"604800s", 604800},
		{"604800", 604800},
		{"30d", 30 * 86400},
		{"6d", -1},
		{"366d", -1},
		{"604799s", -1},
		{"", -1},
		{"d", -1},
		{"-7d", -1},
		{"7h", -1},
		{"1e9s", -1},
	}
	for _, c := range cases {
		got, err := parseRotationInterval(c.in)
		if c.want < 0 {
			if !errors.Is(err, ErrInvalidParameter) {
				t.Errorf("%q: err = %v, want ErrInvalidParameter", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestCheckAliasName(t *testing.T) {
	valid := []string{"alias/a", "alias/app/prod-1", "alias/" + strings.Repeat("x", 255), "alias/A_b-c/d"}
	invalid := []string{"alias/", "alias", "app", "alias/" + strings.Repeat("x", 256), "alias/a b", "alias/ä", "alias/acs/x", "ALIAS/x", "alias/a.b"}
	for _, n := range valid {
		if err := checkAliasName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range invalid {
		if err := checkAliasName(n); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%q accepted (err %v)", n, err)
		}
	}
	if err := checkAliasName(""); !errors.Is(err, ErrMissingParameter) {
		t.Errorf("empty alias: %v", err)
	}
}

func TestCheckTag(t *testing.T) {
	ok := []Tag{{"env", "prod"}, {"a/b\\c_d-e.f+g=h:i@j", ""}, {"中文", "值"}, {strings.Repeat("k", 128), strings.Repeat("v", 128)}}
	bad := []Tag{{"", "v"}, {"aliyun-x", "v"}, {"ALIYUNx", "v"}, {"acs:x", "v"}, {strings.Repeat("k", 129), "v"}, {"k", strings.Repeat("v", 129)}, {"k#", "v"}, {"k", "v!"}}
	for _, tg := range ok {
		if err := checkTag(tg); err != nil {
			t.Errorf("%q refused: %v", tg.Key, err)
		}
	}
	for _, tg := range bad {
		if err := checkTag(tg); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%q=%q accepted", tg.Key, tg.Value)
		}
	}
}

func TestPage(t *testing.T) {
	p, err := Page{}.normalize()
	if err != nil || p.Number != 1 || p.Size != 10 {
		t.Fatalf("defaults = %+v, %v", p, err)
	}
	for _, bad := range []Page{{Number: -1}, {Size: 101}, {Size: -3}} {
		if _, err := bad.normalize(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%+v accepted", bad)
		}
	}
	cases := []struct {
		p          Page
		n          int
		start, end int
	}{
		{Page{1, 10}, 25, 0, 10},
		{Page{3, 10}, 25, 20, 25},
		{Page{4, 10}, 25, 25, 25},
		{Page{1, 100}, 0, 0, 0},
	}
	for _, c := range cases {
		if s, e := c.p.bounds(c.n); s != c.start || e != c.end {
			t.Errorf("%+v of %d = [%d,%d), want [%d,%d)", c.p, c.n, s, e, c.start, c.end)
		}
	}
}

func TestUsable(t *testing.T) {
	k := &fsm.Key{ID: "k", State: fsm.StateEnabled, Usage: UsageEncryptDecrypt, Spec: SpecAES256}
	if err := usable(k, "Encrypt", UsageEncryptDecrypt); err != nil {
		t.Fatal(err)
	}
	if err := usable(k, "Sign", UsageSignVerify); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("wrong usage: %v", err)
	}
	rsa := &fsm.Key{ID: "r", State: fsm.StateEnabled, Usage: UsageEncryptDecrypt, Spec: "RSA_2048"}
	if err := usable(rsa, "Encrypt", UsageEncryptDecrypt); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("symmetric Encrypt with an RSA key: %v", err)
	}
	if err := usable(rsa, "AsymmetricEncrypt", UsageEncryptDecrypt); err != nil {
		t.Fatalf("AsymmetricEncrypt with an RSA key: %v", err)
	}
	for _, st := range []string{fsm.StateDisabled, fsm.StatePendingDeletion, fsm.StatePendingImport} {
		k := &fsm.Key{ID: "k", State: st, Usage: UsageEncryptDecrypt, Spec: SpecAES256}
		got, ok := fsm.KeyStateOf(usable(k, "Encrypt", UsageEncryptDecrypt))
		if !ok || got != st {
			t.Errorf("state %s: got %q %v", st, got, ok)
		}
	}
}
