package jepsen

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// h builds a history from JSON lines; "index" is filled in from the order.
func h(t *testing.T, lines ...string) []Op {
	t.Helper()
	ops, err := ReadHistory(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

const sec = int64(time.Second)

func check(t *testing.T, workload string, ops []Op, opt CheckOptions) Result {
	t.Helper()
	if opt.Bound == 0 {
		opt.Bound = 2 * time.Second
	}
	r, err := Check(workload, ops, opt)
	if err != nil {
		t.Fatalf("%s checker: %v", workload, err)
	}
	return r
}

func TestCheckRegister(t *testing.T) {
	cases := []struct {
		name  string
		ops   []string
		valid bool
		why   string
	}{
		{
			name: "sequential writes and reads, null before the first write",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"read","key":"k","value":null,"node":"n1"}`,
				`{"time":2,"process":0,"type":"ok","f":"read","key":"k","value":null,"node":"n1"}`,
				`{"time":3,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
				`{"time":4,"process":0,"type":"ok","f":"write","key":"k","value":"a","node":"n1"}`,
				`{"time":5,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n2"}`,
				`{"time":6,"process":1,"type":"ok","f":"read","key":"k","value":"a","node":"n2"}`,
			},
			valid: true,
		},
		{
			name: "stale read: a read after an acknowledged write returns the old value",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
				`{"time":2,"process":0,"type":"ok","f":"write","key":"k","value":"a","node":"n1"}`,
				`{"time":3,"process":0,"type":"invoke","f":"write","key":"k","value":"b","node":"n1"}`,
				`{"time":4,"process":0,"type":"ok","f":"write","key":"k","value":"b","node":"n1"}`,
				`{"time":5,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n3"}`,
				`{"time":6,"process":1,"type":"ok","f":"read","key":"k","value":"a","node":"n3"}`,
			},
			why: "not linearizable",
		},
		{
			name: "a write with an unknown outcome may appear later",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
				`{"time":2,"process":0,"type":"info","f":"write","key":"k","value":"a","node":"n1"}`,
				`{"time":3,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n2"}`,
				`{"time":4,"process":1,"type":"ok","f":"read","key":"k","value":null,"node":"n2"}`,
				`{"time":5,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n2"}`,
				`{"time":6,"process":1,"type":"ok","f":"read","key":"k","value":"a","node":"n2"}`,
			},
			valid: true,
		},
		{
			name: "a failed write never happened",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
				`{"time":2,"process":0,"type":"fail","f":"write","key":"k","value":"a","node":"n1"}`,
				`{"time":3,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n2"}`,
				`{"time":4,"process":1,"type":"ok","f":"read","key":"k","value":"a","node":"n2"}`,
			},
			why: "not linearizable",
		},
		{
			name: "keys are independent registers",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"write","key":"k1","value":"a","node":"n1"}`,
				`{"time":2,"process":0,"type":"ok","f":"write","key":"k1","value":"a","node":"n1"}`,
				`{"time":3,"process":1,"type":"invoke","f":"read","key":"k2","value":null,"node":"n2"}`,
				`{"time":4,"process":1,"type":"ok","f":"read","key":"k2","value":null,"node":"n2"}`,
			},
			valid: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := check(t, WorkloadRegister, h(t, c.ops...), CheckOptions{})
			if r.Valid != c.valid {
				t.Fatalf("valid = %v, want %v (%+v)", r.Valid, c.valid, r)
			}
			if !c.valid && !strings.Contains(r.Reason, c.why) {
				t.Errorf("reason %q does not say %q", r.Reason, c.why)
			}
		})
	}
}

func TestCheckRegister_WritesVisualizationWithNemesis(t *testing.T) {
	ops := h(t,
		`{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"time":2,"process":0,"type":"ok","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"time":3,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n2"}`,
		`{"time":4,"process":1,"type":"ok","f":"read","key":"k","value":null,"node":"n2"}`,
	)
	path := t.TempDir() + "/register.html"
	r := check(t, WorkloadRegister, ops, CheckOptions{VisualizationPath: path,
		Nemesis: []NemesisEvent{{Kind: "partition", Description: "isolate n2", Start: 1, End: 3}}})
	if r.Valid {
		t.Fatal("stale read accepted")
	}
	b := readFile(t, path)
	if !strings.Contains(b, "isolate n2") {
		t.Error("the visualization does not mark the nemesis window")
	}
}

func TestCheckSet(t *testing.T) {
	cases := []struct {
		name  string
		ops   []string
		valid bool
		why   string
	}{
		{
			name: "every acknowledged add read on every node; an unknown add may or may not be there",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"add","key":"","value":"a","node":"n1"}`,
				`{"time":2,"process":0,"type":"ok","f":"add","key":"","value":"a","node":"n1"}`,
				`{"time":3,"process":1,"type":"invoke","f":"add","key":"","value":"b","node":"n2"}`,
				`{"time":4,"process":1,"type":"info","f":"add","key":"","value":"b","node":"n2"}`,
				`{"time":5,"process":2,"type":"invoke","f":"add","key":"","value":"c","node":"n2"}`,
				`{"time":6,"process":2,"type":"fail","f":"add","key":"","value":"c","node":"n2"}`,
				`{"time":7,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n1"}`,
				`{"time":8,"process":0,"type":"ok","f":"read","key":"","value":["a","b"],"node":"n1"}`,
				`{"time":9,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n2"}`,
				`{"time":10,"process":0,"type":"ok","f":"read","key":"","value":["a"],"node":"n2"}`,
			},
			valid: true,
		},
		{
			name: "lost acknowledged write",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"add","key":"","value":"a","node":"n1"}`,
				`{"time":2,"process":0,"type":"ok","f":"add","key":"","value":"a","node":"n1"}`,
				`{"time":3,"process":0,"type":"invoke","f":"add","key":"","value":"b","node":"n1"}`,
				`{"time":4,"process":0,"type":"ok","f":"add","key":"","value":"b","node":"n1"}`,
				`{"time":7,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n1"}`,
				`{"time":8,"process":0,"type":"ok","f":"read","key":"","value":["a","b"],"node":"n1"}`,
				`{"time":9,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n3"}`,
				`{"time":10,"process":0,"type":"ok","f":"read","key":"","value":["a"],"node":"n3"}`,
			},
			why: "misses 1 acknowledged add(s): b",
		},
		{
			name: "a value nobody added",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"add","key":"","value":"a","node":"n1"}`,
				`{"time":2,"process":0,"type":"ok","f":"add","key":"","value":"a","node":"n1"}`,
				`{"time":7,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n1"}`,
				`{"time":8,"process":0,"type":"ok","f":"read","key":"","value":["a","z"],"node":"n1"}`,
			},
			why: "which no add attempted",
		},
		{
			name: "a node whose reads all failed",
			ops: []string{
				`{"time":1,"process":0,"type":"invoke","f":"add","key":"","value":"a","node":"n1"}`,
				`{"time":2,"process":0,"type":"ok","f":"add","key":"","value":"a","node":"n1"}`,
				`{"time":7,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n1"}`,
				`{"time":8,"process":0,"type":"ok","f":"read","key":"","value":["a"],"node":"n1"}`,
				`{"time":9,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n2"}`,
				`{"time":10,"process":0,"type":"fail","f":"read","key":"","value":null,"node":"n2"}`,
			},
			why: `node "n2": no read succeeded`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := check(t, WorkloadSet, h(t, c.ops...), CheckOptions{})
			if r.Valid != c.valid {
				t.Fatalf("valid = %v, want %v (%+v)", r.Valid, c.valid, r)
			}
			if !c.valid && !strings.Contains(r.Reason, c.why) {
				t.Errorf("reason %q does not say %q", r.Reason, c.why)
			}
		})
	}
}

func TestCheckCrypto(t *testing.T) {
	enc := []string{
		`{"time":1,"process":0,"type":"invoke","f":"encrypt","key":"k","value":{"key":"k","plaintext":"p1","ciphertext":null},"node":"n1"}`,
		`{"time":2,"process":0,"type":"ok","f":"encrypt","key":"k","value":{"key":"k","plaintext":"p1","ciphertext":"c1"},"node":"n1"}`,
		`{"time":3,"process":1,"type":"invoke","f":"encrypt","key":"k","value":{"key":"k","plaintext":"p2","ciphertext":null},"node":"n2"}`,
		`{"time":4,"process":1,"type":"info","f":"encrypt","key":"k","value":{"key":"k","plaintext":"p2","ciphertext":null},"node":"n2"}`,
	}
	cases := []struct {
		name  string
		ops   []string
		valid bool
		why   string
	}{
		{
			name: "decrypts return the plaintext, on every node of the final phase",
			ops: append(append([]string{}, enc...),
				`{"time":5,"process":2,"type":"invoke","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n2"}`,
				`{"time":6,"process":2,"type":"ok","f":"decrypt","key":"k","value":{"key":"k","plaintext":"p1","ciphertext":"c1"},"node":"n2"}`,
				`{"time":7,"process":2,"type":"invoke","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n3"}`,
				`{"time":8,"process":2,"type":"info","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n3"}`,
				`{"time":9,"process":3,"type":"invoke","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n1","final":true}`,
				`{"time":10,"process":3,"type":"ok","f":"decrypt","key":"k","value":{"key":"k","plaintext":"p1","ciphertext":"c1"},"node":"n1","final":true}`,
				`{"time":11,"process":3,"type":"invoke","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n2","final":true}`,
				`{"time":12,"process":3,"type":"ok","f":"decrypt","key":"k","value":{"key":"k","plaintext":"p1","ciphertext":"c1"},"node":"n2","final":true}`,
			),
			valid: true,
		},
		{
			name: "wrong plaintext",
			ops: append(append([]string{}, enc...),
				`{"time":5,"process":2,"type":"invoke","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n2"}`,
				`{"time":6,"process":2,"type":"ok","f":"decrypt","key":"k","value":{"key":"k","plaintext":"p2","ciphertext":"c1"},"node":"n2"}`,
			),
			why: `returned plaintext "p2", but the ciphertext was made from "p1"`,
		},
		{
			name: "an acknowledged ciphertext that does not decrypt on one node at the end",
			ops: append(append([]string{}, enc...),
				`{"time":9,"process":3,"type":"invoke","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n1","final":true}`,
				`{"time":10,"process":3,"type":"ok","f":"decrypt","key":"k","value":{"key":"k","plaintext":"p1","ciphertext":"c1"},"node":"n1","final":true}`,
				`{"time":11,"process":3,"type":"invoke","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n2","final":true}`,
				`{"time":12,"process":3,"type":"fail","f":"decrypt","key":"k","value":{"key":"k","plaintext":null,"ciphertext":"c1"},"node":"n2","final":true,"error":"InvalidCiphertext"}`,
			),
			why: "refused as invalid",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := check(t, WorkloadCrypto, h(t, c.ops...), CheckOptions{})
			if r.Valid != c.valid {
				t.Fatalf("valid = %v, want %v (%+v)", r.Valid, c.valid, r)
			}
			if !c.valid && !strings.Contains(r.Reason, c.why) {
				t.Errorf("reason %q does not say %q", r.Reason, c.why)
			}
		})
	}
}

func TestCheckKeyState(t *testing.T) {
	at := func(s float64) int64 { return int64(s * float64(sec)) }
	line := func(t float64, proc int, typ, f string) string {
		return `{"time":` + itoa(at(t)) + `,"process":` + itoa(int64(proc)) + `,"type":"` + typ + `","f":"` + f + `","key":"k","value":null,"node":"n1"}`
	}
	disable := []string{line(1, 0, "invoke", "disable"), line(1.1, 0, "ok", "disable")}
	cases := []struct {
		name  string
		ops   []string
		valid bool
		why   string
	}{
		{
			name:  "an encrypt that succeeded long after a disable",
			ops:   append(append([]string{}, disable...), line(10, 1, "invoke", "encrypt"), line(10.1, 1, "ok", "encrypt")),
			why:   "succeeded, started 8.9s after a DisableKey was acknowledged",
			valid: false,
		},
		{
			name:  "within the bound an encrypt may still succeed",
			ops:   append(append([]string{}, disable...), line(2.5, 1, "invoke", "encrypt"), line(2.6, 1, "ok", "encrypt")),
			valid: true,
		},
		{
			name:  "refused encrypts are what we want",
			ops:   append(append([]string{}, disable...), line(10, 1, "invoke", "encrypt"), line(10.1, 1, "fail", "encrypt")),
			valid: true,
		},
		{
			name: "an enable acknowledged in between re-enables",
			ops: append(append([]string{}, disable...), line(3, 2, "invoke", "enable"), line(3.1, 2, "ok", "enable"),
				line(10, 1, "invoke", "encrypt"), line(10.1, 1, "ok", "encrypt")),
			valid: true,
		},
		{
			name: "an enable of unknown outcome, even invoked long after, may explain it",
			ops: append(append([]string{}, disable...), line(9, 2, "invoke", "enable"), line(9.5, 2, "info", "enable"),
				line(10, 1, "invoke", "encrypt"), line(10.1, 1, "ok", "encrypt")),
			valid: true,
		},
		{
			name: "an enable concurrent with the disable may be ordered after it",
			ops: []string{line(1, 2, "invoke", "enable"), line(1, 0, "invoke", "disable"), line(1.1, 0, "ok", "disable"),
				line(1.2, 2, "ok", "enable"), line(10, 1, "invoke", "encrypt"), line(10.1, 1, "ok", "encrypt")},
			valid: true,
		},
		{
			name: "an enable acknowledged before the disable began does not excuse",
			ops: []string{line(0.5, 2, "invoke", "enable"), line(0.6, 2, "ok", "enable"),
				line(1, 0, "invoke", "disable"), line(1.1, 0, "ok", "disable"),
				line(10, 1, "invoke", "encrypt"), line(10.1, 1, "ok", "encrypt")},
			why: "with no EnableKey in between",
		},
		{
			name: "a failed enable does not excuse",
			ops: append(append([]string{}, disable...), line(3, 2, "invoke", "enable"), line(3.1, 2, "fail", "enable"),
				line(10, 1, "invoke", "encrypt"), line(10.1, 1, "ok", "encrypt")),
			why: "with no EnableKey in between",
		},
		{
			name: "an enable invoked after the encrypt completed does not excuse",
			ops: append(append([]string{}, disable...), line(10, 1, "invoke", "encrypt"), line(10.1, 1, "ok", "encrypt"),
				line(11, 2, "invoke", "enable"), line(11.1, 2, "ok", "enable")),
			why: "with no EnableKey in between",
		},
		{
			name: "a disable of unknown outcome proves nothing",
			ops: []string{line(1, 0, "invoke", "disable"), line(1.1, 0, "info", "disable"),
				line(10, 1, "invoke", "encrypt"), line(10.1, 1, "ok", "encrypt")},
			valid: true,
		},
		{
			name: "a disable of another key is another matter",
			ops: append(append([]string{}, disable...),
				`{"time":`+itoa(at(10))+`,"process":1,"type":"invoke","f":"encrypt","key":"other","value":null,"node":"n1"}`,
				`{"time":`+itoa(at(10.1))+`,"process":1,"type":"ok","f":"encrypt","key":"other","value":null,"node":"n1"}`),
			valid: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := check(t, WorkloadKeyState, h(t, c.ops...), CheckOptions{Bound: 2 * time.Second})
			if r.Valid != c.valid {
				t.Fatalf("valid = %v, want %v (%+v)", r.Valid, c.valid, r)
			}
			if !c.valid && !strings.Contains(r.Reason, c.why) {
				t.Errorf("reason %q does not say %q", r.Reason, c.why)
			}
		})
	}
}

func TestCheck_CombinedHistoryIsSplitByWorkload(t *testing.T) {
	// A key-state encrypt refused long after its disable must not confuse
	// the crypto checker, and a set read is not a register read.
	ops := h(t,
		`{"time":1,"process":0,"type":"invoke","f":"add","key":"","value":"a","node":"n1","workload":"set"}`,
		`{"time":2,"process":0,"type":"ok","f":"add","key":"","value":"a","node":"n1","workload":"set"}`,
		`{"time":3,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n1","workload":"set"}`,
		`{"time":4,"process":0,"type":"ok","f":"read","key":"","value":["a"],"node":"n1","workload":"set"}`,
		`{"time":5,"process":1,"type":"invoke","f":"read","key":"r","value":null,"node":"n1","workload":"register"}`,
		`{"time":6,"process":1,"type":"ok","f":"read","key":"r","value":null,"node":"n1","workload":"register"}`,
	)
	for _, w := range []string{WorkloadSet, WorkloadRegister} {
		if r := check(t, w, ops, CheckOptions{}); !r.Valid {
			t.Errorf("%s: %+v", w, r)
		}
	}
}

func TestPairs_RejectsCompletionWithoutInvocation(t *testing.T) {
	_, err := Pairs(h(t, `{"time":1,"process":0,"type":"ok","f":"read","key":"k","value":null,"node":"n1"}`))
	if err == nil {
		t.Fatal("accepted")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadHistory_SkipsNemesisOpsAndAcceptsNumbers(t *testing.T) {
	ops := h(t,
		`{"time":1,"process":"nemesis","type":"info","f":"start-partition","value":"isolate n1"}`,
		`{"time":2,"process":0,"type":"invoke","f":"add","key":"","value":1,"node":"n1"}`,
		`{"time":3,"process":0,"type":"ok","f":"add","key":"","value":1,"node":"n1"}`,
		`{"time":4,"process":0,"type":"invoke","f":"read","key":"","value":null,"node":"n1"}`,
		`{"time":5,"process":0,"type":"ok","f":"read","key":"","value":[1],"node":"n1"}`,
		`{"time":6,"process":"nemesis","type":"info","f":"stop-partition","value":null}`,
	)
	if len(ops) != 4 {
		t.Fatalf("%d ops, want the 4 client ops", len(ops))
	}
	if r := check(t, WorkloadSet, ops, CheckOptions{}); !r.Valid {
		t.Fatalf("%+v", r)
	}
}
