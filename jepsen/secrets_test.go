package jepsen

import (
	"strings"
	"testing"
	"time"
)

func TestCheckSecrets(t *testing.T) {
	// op renders one line of a secrets history on secret s1.
	op := func(time, proc int, typ, f, value string, extra ...string) string {
		line := `{"time":` + itoa(int64(time)) + `,"process":` + itoa(int64(proc)) + `,"type":"` + typ + `","f":"` + f +
			`","key":"s1","value":` + value + `,"node":"n1","workload":"secrets"`
		for _, e := range extra {
			line += "," + e
		}
		return line + "}"
	}
	cases := []struct {
		name  string
		ops   []string
		valid bool
		why   string
	}{
		{
			name: "reads see the initial value (null), then each acknowledged write",
			ops: []string{
				op(1, 0, "invoke", "read", `null`), op(2, 0, "ok", "read", `null`),
				op(3, 0, "invoke", "write", `"a"`), op(4, 0, "ok", "write", `"a"`),
				op(5, 1, "invoke", "read", `null`), op(6, 1, "ok", "read", `"a"`),
				op(7, 1, "invoke", "write", `"b"`), op(8, 1, "ok", "write", `"b"`),
				op(9, 0, "invoke", "read", `null`), op(10, 0, "ok", "read", `"b"`),
			},
			valid: true,
		},
		{
			name: "stale read: ACSCurrent read after a newer write was acknowledged",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "ok", "write", `"a"`),
				op(3, 0, "invoke", "write", `"b"`), op(4, 0, "ok", "write", `"b"`),
				op(5, 1, "invoke", "read", `null`), op(6, 1, "ok", "read", `"a"`),
			},
			why: "the secrets history is not linearizable",
		},
		{
			name: "stale read of the initial value after an acknowledged write",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "ok", "write", `"a"`),
				op(3, 1, "invoke", "read", `null`), op(4, 1, "ok", "read", `null`),
			},
			why: "not linearizable",
		},
		{
			name: "a retry of a write that was already applied changes nothing (the version is still there)",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "info", "write", `"a"`),
				op(3, 1, "invoke", "read", `null`), op(4, 1, "ok", "read", `"a"`),
				op(5, 2, "invoke", "write", `"b"`), op(6, 2, "ok", "write", `"b"`),
				op(7, 3, "invoke", "write", `"a"`), op(8, 3, "ok", "write", `"a"`),
				op(9, 1, "invoke", "read", `null`), op(10, 1, "ok", "read", `"b"`),
			},
			valid: true,
		},
		{
			name: "a retry of a write whose version was dropped makes it current again",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "info", "write", `"a"`),
				op(3, 1, "invoke", "read", `null`), op(4, 1, "ok", "read", `"a"`),
				op(5, 2, "invoke", "write", `"b"`), op(6, 2, "ok", "write", `"b"`),
				op(7, 3, "invoke", "write", `"a"`), op(8, 3, "ok", "write", `"a"`),
				op(9, 1, "invoke", "read", `null`), op(10, 1, "ok", "read", `"a"`),
			},
			valid: true,
		},
		{
			name: "the retry is the first application when the original never took effect",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "info", "write", `"a"`),
				op(3, 3, "invoke", "write", `"a"`), op(4, 3, "ok", "write", `"a"`),
				op(5, 1, "invoke", "read", `null`), op(6, 1, "ok", "read", `"a"`),
			},
			valid: true,
		},
		{
			name: "an acknowledged retry took effect: the initial value is stale after it",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "info", "write", `"a"`),
				op(3, 3, "invoke", "write", `"a"`), op(4, 3, "ok", "write", `"a"`),
				op(5, 1, "invoke", "read", `null`), op(6, 1, "ok", "read", `null`),
			},
			why: "not linearizable",
		},
		{
			name: "a write made once does not take effect twice",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "ok", "write", `"a"`),
				op(3, 1, "invoke", "read", `null`), op(4, 1, "ok", "read", `"a"`),
				op(5, 2, "invoke", "write", `"b"`), op(6, 2, "ok", "write", `"b"`),
				op(7, 1, "invoke", "read", `null`), op(8, 1, "ok", "read", `"b"`),
				op(9, 1, "invoke", "read", `null`), op(10, 1, "ok", "read", `"a"`),
			},
			why: "not linearizable",
		},
		{
			name: "a write of unknown outcome may take effect late, once",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "info", "write", `"a"`),
				op(3, 2, "invoke", "write", `"b"`), op(4, 2, "ok", "write", `"b"`),
				op(5, 1, "invoke", "read", `null`), op(6, 1, "ok", "read", `"b"`),
				op(7, 1, "invoke", "read", `null`), op(8, 1, "ok", "read", `"a"`),
			},
			valid: true,
		},
		{
			name: "a failed write never happened",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "fail", "write", `"a"`, `"error":"ServiceUnavailableTemporary"`),
				op(3, 1, "invoke", "read", `null`), op(4, 1, "ok", "read", `"a"`),
			},
			why: "not linearizable",
		},
		{
			name: "data read under a VersionId its write did not use",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "ok", "write", `"a"`),
				op(3, 1, "invoke", "read", `null`), op(4, 1, "ok", "read", `"a@v-b"`),
			},
			why: `returned "a@v-b", which no write that may have taken effect wrote`,
		},
		{
			name: "a retry with the same VersionId and data refused as another version",
			ops: []string{
				op(1, 0, "invoke", "write", `"a"`), op(2, 0, "info", "write", `"a"`),
				op(3, 3, "invoke", "write", `"a"`), op(4, 3, "fail", "write", `"a"`, `"error":"Rejected.ResourceExist"`),
				op(5, 1, "invoke", "read", `null`), op(6, 1, "ok", "read", `"a"`),
			},
			why: "refused as Rejected.ResourceExist",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := check(t, WorkloadSecrets, h(t, c.ops...), CheckOptions{})
			if r.Valid != c.valid {
				t.Fatalf("valid = %v, want %v (%+v)", r.Valid, c.valid, r)
			}
			if !c.valid && !strings.Contains(r.Reason, c.why) {
				t.Errorf("reason %q does not say %q", r.Reason, c.why)
			}
		})
	}
}

// The same history is not a register history: the register model has no
// idempotent retry, so the no-op retry case is what sets the two apart.
func TestCheckRegister_RetryIsAWriteAgain(t *testing.T) {
	ops := h(t,
		`{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"time":2,"process":0,"type":"info","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"time":3,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n1"}`,
		`{"time":4,"process":1,"type":"ok","f":"read","key":"k","value":"a","node":"n1"}`,
		`{"time":5,"process":2,"type":"invoke","f":"write","key":"k","value":"b","node":"n1"}`,
		`{"time":6,"process":2,"type":"ok","f":"write","key":"k","value":"b","node":"n1"}`,
		`{"time":7,"process":3,"type":"invoke","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"time":8,"process":3,"type":"ok","f":"write","key":"k","value":"a","node":"n1"}`,
		`{"time":9,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n1"}`,
		`{"time":10,"process":1,"type":"ok","f":"read","key":"k","value":"b","node":"n1"}`,
	)
	if r := check(t, WorkloadRegister, ops, CheckOptions{}); r.Valid {
		t.Fatal("the register checker accepted a write that took no effect")
	}
	if r := check(t, WorkloadSecrets, ops, CheckOptions{}); !r.Valid {
		t.Fatalf("the secrets checker refused an idempotent retry: %+v", r)
	}
}

func TestCheckSecrets_WritesVisualization(t *testing.T) {
	ops := h(t,
		`{"time":1,"process":0,"type":"invoke","f":"write","key":"s1","value":"a","node":"n1","workload":"secrets"}`,
		`{"time":2,"process":0,"type":"ok","f":"write","key":"s1","value":"a","node":"n1","workload":"secrets"}`,
		`{"time":3,"process":1,"type":"invoke","f":"read","key":"s1","value":null,"node":"n2","workload":"secrets"}`,
		`{"time":4,"process":1,"type":"ok","f":"read","key":"s1","value":null,"node":"n2","workload":"secrets"}`,
	)
	path := t.TempDir() + "/secrets.html"
	r := check(t, WorkloadSecrets, ops, CheckOptions{VisualizationPath: path,
		Nemesis: []NemesisEvent{{Kind: "pause", Description: "pause n2", Start: 1, End: 3}}})
	if r.Valid {
		t.Fatal("stale read accepted")
	}
	if b := readFile(t, path); !strings.Contains(b, "pause n2") {
		t.Error("the visualization does not mark the nemesis window")
	}
}

func TestCheck_SecretsAndRegisterOpsStayApart(t *testing.T) {
	// A register write of "a" does not explain a secrets read of "a".
	ops := h(t,
		`{"time":1,"process":0,"type":"invoke","f":"write","key":"k","value":"a","node":"n1","workload":"register"}`,
		`{"time":2,"process":0,"type":"ok","f":"write","key":"k","value":"a","node":"n1","workload":"register"}`,
		`{"time":3,"process":1,"type":"invoke","f":"read","key":"k","value":null,"node":"n1","workload":"secrets"}`,
		`{"time":4,"process":1,"type":"ok","f":"read","key":"k","value":"a","node":"n1","workload":"secrets"}`,
	)
	if r := check(t, WorkloadRegister, ops, CheckOptions{}); !r.Valid {
		t.Errorf("register: %+v", r)
	}
	if r := check(t, WorkloadSecrets, ops, CheckOptions{}); r.Valid || !strings.Contains(r.Reason, "which no write that may have taken effect wrote") {
		t.Errorf("secrets: %+v", r)
	}
}

func TestCheckSecrets_ReadsDisagreeOnTheOrderOfConcurrentWrites(t *testing.T) {
	// No read is stale on its own; only the search over orders (porcupine)
	// sees that one reader saw a before b and the other b before a.
	ops := h(t,
		`{"time":1,"process":0,"type":"invoke","f":"write","key":"s1","value":"a","node":"n1"}`,
		`{"time":1,"process":1,"type":"invoke","f":"write","key":"s1","value":"b","node":"n2"}`,
		`{"time":2,"process":2,"type":"invoke","f":"read","key":"s1","value":null,"node":"n3"}`,
		`{"time":2,"process":3,"type":"invoke","f":"read","key":"s1","value":null,"node":"n4"}`,
		`{"time":3,"process":2,"type":"ok","f":"read","key":"s1","value":"a","node":"n3"}`,
		`{"time":3,"process":3,"type":"ok","f":"read","key":"s1","value":"b","node":"n4"}`,
		`{"time":4,"process":2,"type":"invoke","f":"read","key":"s1","value":null,"node":"n3"}`,
		`{"time":4,"process":3,"type":"invoke","f":"read","key":"s1","value":null,"node":"n4"}`,
		`{"time":5,"process":2,"type":"ok","f":"read","key":"s1","value":"b","node":"n3"}`,
		`{"time":5,"process":3,"type":"ok","f":"read","key":"s1","value":"a","node":"n4"}`,
		`{"time":10,"process":0,"type":"ok","f":"write","key":"s1","value":"a","node":"n1"}`,
		`{"time":10,"process":1,"type":"ok","f":"write","key":"s1","value":"b","node":"n2"}`,
	)
	r := check(t, WorkloadSecrets, ops, CheckOptions{})
	if r.Valid || !strings.Contains(r.Reason, "not linearizable: [key s1") {
		t.Fatalf("%+v", r)
	}
}

func TestCheckSecrets_StaleReadAmongManyUnknownWrites(t *testing.T) {
	// Writes of unknown outcome may take effect at any later time, so
	// porcupine would try every order of them before giving up; the stale
	// read is found without that search.
	var lines []string
	add := func(time, proc int, typ, f, value string) {
		lines = append(lines, `{"time":`+itoa(int64(time))+`,"process":`+itoa(int64(proc))+`,"type":"`+typ+`","f":"`+f+
			`","key":"s1","value":`+value+`,"node":"n1"}`)
	}
	for i := 0; i < 40; i++ {
		add(1+i, 100+i, "invoke", "write", `"u`+itoa(int64(i))+`"`)
		add(2+i, 100+i, "info", "write", `"u`+itoa(int64(i))+`"`)
	}
	add(100, 0, "invoke", "write", `"a"`)
	add(101, 0, "ok", "write", `"a"`)
	add(102, 0, "invoke", "write", `"b"`)
	add(103, 0, "ok", "write", `"b"`)
	add(104, 1, "invoke", "read", `null`)
	add(105, 1, "ok", "read", `"a"`)
	r := check(t, WorkloadSecrets, h(t, lines...), CheckOptions{LinearizabilityTimeout: time.Second})
	want := `returned "a", but a write of "b", begun after every write of "a" had completed, was acknowledged at index`
	if r.Valid || !strings.Contains(r.Reason, want) {
		t.Fatalf("%+v", r)
	}
}
