package jepsen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Operation types, as in Jepsen: an invocation, then exactly one completion
// by the same process. "info" means the outcome is unknown: the operation may
// or may not have taken effect (at any time after its invocation).
const (
	TypeInvoke = "invoke"
	TypeOK     = "ok"
	TypeFail   = "fail"
	TypeInfo   = "info"
)

// Op is one line of history.jsonl. The first eight fields are the contract of
// issue 4; the others are extra context the checkers may use (and hand-made
// histories may leave out).
type Op struct {
	Index   int64           `json:"index"`
	Time    int64           `json:"time"` // ns since the start of the run
	Process int             `json:"process"`
	Type    string          `json:"type"`
	F       string          `json:"f"`
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Node    string          `json:"node"`
	// Workload names the workload that produced the op ("register", "set",
	// "crypto", "key-state", "secrets"), so one history can hold all of them.
	Workload string `json:"workload,omitempty"`
	// Error is the server's error code (or the client error) of a fail or
	// info completion.
	Error string `json:"error,omitempty"`
	// Final marks the reads of the final phase, after every fault healed.
	Final bool `json:"final,omitempty"`
}

// jsonValue encodes v for Op.Value (null for nil).
func jsonValue(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("jepsen: value %T does not encode: %v", v, err))
	}
	return b
}

// isNull reports whether a raw value is absent or JSON null.
func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

// Recorder appends operations to the history, in memory and as JSON lines,
// stamping each with the next index and the time since the start. It is
// safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	start time.Time
	next  int64
	ops   []Op
	w     *bufio.Writer
	f     *os.File
	err   error
}

// NewRecorder writes to path (created or truncated); an empty path keeps the
// history in memory only.
func NewRecorder(path string, start time.Time) (*Recorder, error) {
	r := &Recorder{start: start}
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		r.f, r.w = f, bufio.NewWriterSize(f, 1<<16)
	}
	return r, nil
}

// Since is the history's clock: nanoseconds since the start (monotonic).
func (r *Recorder) Since() int64 { return int64(time.Since(r.start)) }

// Start is the instant time 0 of the history stands for.
func (r *Recorder) Start() time.Time { return r.start }

// Record stamps op with an index and, if op.Time is 0, the current time, and
// appends it. It returns the stamped op.
func (r *Recorder) Record(op Op) Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	if op.Time == 0 {
		op.Time = r.Since()
	}
	if op.Value == nil {
		op.Value = json.RawMessage("null")
	}
	op.Index = r.next
	r.next++
	r.ops = append(r.ops, op)
	if r.w != nil && r.err == nil {
		b, _ := json.Marshal(op)
		b = append(b, '\n')
		if _, err := r.w.Write(b); err != nil {
			r.err = err
		}
	}
	return op
}

// Ops returns a copy of the history so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Flush writes buffered lines to the file.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		return r.err
	}
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// Close flushes and closes the file.
func (r *Recorder) Close() error {
	err := r.Flush()
	if r.f != nil {
		if cerr := r.f.Close(); err == nil {
			err = cerr
		}
		r.f = nil
		r.w = nil
	}
	return err
}

// ReadHistory parses JSON lines (blank lines are skipped). The ops are
// returned in file order; an op without an index gets its line number.
func ReadHistory(rd io.Reader) ([]Op, error) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var ops []Op
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		// Jepsen writes the nemesis's ops with "process": "nemesis"; they
		// are not client operations and no checker reads them.
		var probe struct {
			Process json.RawMessage `json:"process"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		if p := bytes.TrimSpace(probe.Process); len(p) > 0 && p[0] == '"' {
			continue
		}
		var op Op
		op.Index = -1
		if err := json.Unmarshal(b, &op); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		if op.Index < 0 {
			op.Index = int64(len(ops))
		}
		switch op.Type {
		case TypeInvoke, TypeOK, TypeFail, TypeInfo:
		default:
			return nil, fmt.Errorf("history line %d: type %q is not invoke, ok, fail or info", line, op.Type)
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ops, nil
}

// ReadHistoryFile reads a history.jsonl file.
func ReadHistoryFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadHistory(f)
}

// Pair is an invocation and its completion. An invocation that never
// completed (the run ended first) gets a synthetic info completion at the end
// of the history: its outcome is unknown.
type Pair struct {
	Invoke   Op
	Complete Op
}

// Type is the completion's type.
func (p Pair) Type() string { return p.Complete.Type }

// Pairs matches every invocation with the next completion of the same
// process, in history order. A completion without an invocation is an error
// in the history.
func Pairs(ops []Op) ([]Pair, error) {
	sorted := append([]Op(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Index < sorted[j].Index })
	var end int64
	for _, op := range sorted {
		if op.Time > end {
			end = op.Time
		}
	}
	open := map[int]int{} // process → index in pairs
	var pairs []Pair
	for _, op := range sorted {
		if op.Type == TypeInvoke {
			if i, ok := open[op.Process]; ok {
				return nil, fmt.Errorf("history index %d: process %d invoked %q while its op at index %d is still open",
					op.Index, op.Process, op.F, pairs[i].Invoke.Index)
			}
			open[op.Process] = len(pairs)
			pairs = append(pairs, Pair{Invoke: op})
			continue
		}
		i, ok := open[op.Process]
		if !ok {
			return nil, fmt.Errorf("history index %d: %s completion of process %d without an invocation", op.Index, op.Type, op.Process)
		}
		delete(open, op.Process)
		c := op
		if c.F == "" {
			c.F = pairs[i].Invoke.F
		}
		pairs[i].Complete = c
	}
	for _, i := range open {
		inv := pairs[i].Invoke
		pairs[i].Complete = Op{Index: -1, Time: end + 1, Process: inv.Process, Type: TypeInfo, F: inv.F, Key: inv.Key,
			Value: inv.Value, Node: inv.Node, Workload: inv.Workload, Final: inv.Final, Error: "never completed"}
	}
	return pairs, nil
}

// filterWorkload keeps the ops of one workload: those naming it, and those
// naming none (hand-made histories) whose f belongs to it.
func filterWorkload(ops []Op, workload string) []Op {
	fs := workloadFs[workload]
	var out []Op
	for _, op := range ops {
		if op.Workload != "" {
			if op.Workload == workload {
				out = append(out, op)
			}
			continue
		}
		if fs[op.F] {
			out = append(out, op)
		}
	}
	return out
}

// workloadFs are the f values each workload's checker reads.
var workloadFs = map[string]map[string]bool{
	WorkloadRegister: {"write": true, "read": true},
	WorkloadSet:      {"add": true, "read": true},
	WorkloadCrypto:   {"encrypt": true, "decrypt": true, "rotate": true},
	WorkloadKeyState: {"disable": true, "enable": true, "encrypt": true},
	WorkloadSecrets:  {"write": true, "read": true},
}

// Counts are the completions of a history by type.
type Counts struct {
	OK   int `json:"ok"`
	Fail int `json:"fail"`
	Info int `json:"info"`
}

func countOps(ops []Op) Counts {
	var c Counts
	for _, op := range ops {
		switch op.Type {
		case TypeOK:
			c.OK++
		case TypeFail:
			c.Fail++
		case TypeInfo:
			c.Info++
		}
	}
	return c
}
