package jepsen

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// registerInput is one register operation for porcupine.
type registerInput struct {
	write bool
	key   string
	value string // written value, "" for none
	// repeated marks a write whose value more than one write op of the
	// history carries (the secrets workload retries a write of unknown
	// outcome with the same VersionId and data); only secretModel reads it.
	repeated bool
}

// registerModel is a register per key holding a description; "" is null
// (UpdateKeyDescription with "" clears, and DescribeKey of a key never
// written answers "", which the history records as null).
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(registerInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(registerInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in := input.(registerInput)
		if in.write {
			return fmt.Sprintf("write(%s, %q)", short(in.key), in.value)
		}
		return fmt.Sprintf("read(%s) → %s", short(in.key), nullable(output.(string)))
	},
	DescribeState: func(state any) string { return nullable(state.(string)) },
}

func short(k string) string {
	if len(k) > 8 {
		return k[:8]
	}
	return k
}

func nullable(s string) string {
	if s == "" {
		return "null"
	}
	return fmt.Sprintf("%q", s)
}

// CheckRegister checks the register history for linearizability with
// porcupine: ok writes span [invoke, complete]; writes with an unknown
// outcome span [invoke, end of history] (they may take effect any time
// after their invocation, or never — porcupine may place them last); failed
// writes and reads that did not succeed are left out (they changed nothing
// and returned nothing). On failure the HTML visualization, with the nemesis
// windows as annotations, goes to opt.VisualizationPath.
func CheckRegister(ops []Op, opt CheckOptions) (Result, error) {
	return checkLinearizable(ops, opt, registerModel, "register")
}

// checkLinearizable is CheckRegister with the model (and the name the
// anomaly gives the history) as parameters: the register and the secrets
// workloads record the same write and read ops.
func checkLinearizable(ops []Op, opt CheckOptions, model porcupine.Model, what string) (Result, error) {
	pairs, err := Pairs(ops)
	if err != nil {
		return Result{}, err
	}
	var end int64
	for _, op := range ops {
		if op.Time > end {
			end = op.Time
		}
	}
	// porcupine's visualization wants client ids 0..n-1.
	clients := map[int]int{}
	clientID := func(proc int) int {
		if id, ok := clients[proc]; ok {
			return id
		}
		clients[proc] = len(clients)
		return clients[proc]
	}
	var hist []porcupine.Operation
	var where []opWhere // hist[i]'s completion, for the direct findings
	var writes, reads, unknown int
	// Values carried by more than one write op: a retry of a write.
	writesOf := map[string]int{}
	for _, p := range pairs {
		if p.Invoke.F == "write" && p.Type() != TypeFail {
			v, _, _ := stringValue(p.Invoke.Value)
			writesOf[p.Invoke.Key+"\x00"+v]++
		}
	}
	for _, p := range pairs {
		switch p.Invoke.F {
		case "write":
			v, ok, err := stringValue(p.Invoke.Value)
			if err != nil {
				return Result{}, fmt.Errorf("write at index %d: %v", p.Invoke.Index, err)
			}
			if !ok {
				v = ""
			}
			in := registerInput{write: true, key: p.Invoke.Key, value: v, repeated: writesOf[p.Invoke.Key+"\x00"+v] > 1}
			switch p.Type() {
			case TypeOK:
				writes++
				hist = append(hist, porcupine.Operation{ClientId: clientID(p.Invoke.Process), Input: in, Output: "",
					Call: p.Invoke.Time, Return: p.Complete.Time})
				where = append(where, opWhere{p.Complete.Index, p.Invoke.Node})
			case TypeInfo:
				unknown++
				hist = append(hist, porcupine.Operation{ClientId: clientID(p.Invoke.Process), Input: in, Output: "",
					Call: p.Invoke.Time, Return: end + 1})
				where = append(where, opWhere{p.Complete.Index, p.Invoke.Node})
			}
		case "read":
			if p.Type() != TypeOK {
				continue
			}
			v, _, err := stringValue(p.Complete.Value)
			if err != nil {
				return Result{}, fmt.Errorf("read at index %d: %v", p.Complete.Index, err)
			}
			reads++
			hist = append(hist, porcupine.Operation{ClientId: clientID(p.Invoke.Process),
				Input: registerInput{key: p.Invoke.Key}, Output: v, Call: p.Invoke.Time, Return: p.Complete.Time})
			where = append(where, opWhere{p.Complete.Index, p.Invoke.Node})
		}
	}
	timeout := opt.LinearizabilityTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	r := Result{Valid: true}
	r.detail("ok_writes", writes)
	r.detail("unknown_writes", unknown)
	r.detail("ok_reads", reads)
	// Reads that no order of the operations explains on their own are
	// reported directly: porcupine proves the same only by trying every
	// order, which a history with many writes of unknown outcome makes
	// take longer than any timeout. Then porcupine only gets a short try,
	// for its visualization.
	direct := impossibleReads(hist, where)
	for _, d := range direct {
		r.anomaly("the %s history is not linearizable: %s", what, d)
	}
	if len(direct) > 0 {
		timeout = min(timeout, 10*time.Second)
	}
	res, info := porcupine.CheckOperationsVerbose(model, hist, timeout)
	switch res {
	case porcupine.Ok:
		if len(direct) > 0 {
			// The model and impossibleReads disagree: a bug here.
			r.anomaly("porcupine found a linearization although reads above are impossible: check the checker")
		}
		return r, nil
	case porcupine.Unknown:
		if len(direct) == 0 {
			r.anomaly("the linearizability check did not finish within %s: no verdict", timeout)
		}
		return r, nil
	}
	if len(direct) == 0 {
		r.anomaly("the %s history is not linearizable: %s", what, describeIllegal(model, info, hist))
	}
	if opt.VisualizationPath != "" {
		var ann []porcupine.Annotation
		for _, ev := range opt.Nemesis {
			stop := ev.End
			if stop == 0 {
				stop = end
			}
			ann = append(ann, porcupine.Annotation{Tag: "nemesis", Start: ev.Start, End: stop,
				Description: ev.Kind, Details: ev.Description, BackgroundColor: "#f3c5c5"})
		}
		info.AddAnnotations(ann)
		if err := porcupine.VisualizePath(model, info, opt.VisualizationPath); err != nil {
			r.detail("visualization_error", err.Error())
		} else {
			r.detail("visualization", opt.VisualizationPath)
		}
	}
	return r, nil
}

// opWhere says where a porcupine operation is in the history.
type opWhere struct {
	index int64 // of the completion
	node  string
}

// impossibleReads finds the successful reads that no linearization allows,
// whatever the model does with repeated values: a read of a value no write
// that may have taken effect wrote (null: the initial value, which only a
// write of null brings back), and a stale read, of value v, that began
// after a write of another value was acknowledged, when that write began
// after every write of v had completed. Every write of v then took effect
// before that write, which took effect before the read: the read must see
// another value than v. (A write of unknown outcome never completes: its
// value is never stale. A repeated write does not count as that write:
// secretModel may apply it as a no-op.)
func impossibleReads(hist []porcupine.Operation, where []opWhere) []string {
	type kv struct{ key, value string }
	lastDone := map[kv]int64{} // latest completion of a write of the value
	written := map[kv]bool{}
	var writes, reads []int
	for i, op := range hist {
		in := op.Input.(registerInput)
		if !in.write {
			reads = append(reads, i)
			continue
		}
		k := kv{in.key, in.value}
		written[k] = true
		lastDone[k] = max(lastDone[k], op.Return)
		if !in.repeated {
			writes = append(writes, i)
		}
	}
	// Acknowledged writes by completion, reads by invocation: a sweep
	// keeps, per key, the write that began last among those acknowledged
	// before the read began.
	sort.SliceStable(writes, func(a, b int) bool { return hist[writes[a]].Return < hist[writes[b]].Return })
	sort.SliceStable(reads, func(a, b int) bool { return hist[reads[a]].Call < hist[reads[b]].Call })
	latest := map[string]int{} // key → index in hist of that write
	var out []string
	w := 0
	for _, ri := range reads {
		rd := hist[ri]
		for ; w < len(writes) && hist[writes[w]].Return < rd.Call; w++ {
			wi := writes[w]
			k := hist[wi].Input.(registerInput).key
			if j, ok := latest[k]; !ok || hist[wi].Call > hist[j].Call {
				latest[k] = wi
			}
		}
		key, v := rd.Input.(registerInput).key, rd.Output.(string)
		at := fmt.Sprintf("read at index %d (key %s, node %q) returned %s", where[ri].index, key, where[ri].node, nullable(v))
		if !written[kv{key, v}] && v != "" {
			out = append(out, at+", which no write that may have taken effect wrote")
			continue
		}
		j, ok := latest[key]
		if !ok {
			continue
		}
		last, any := lastDone[kv{key, v}]
		if any && hist[j].Call <= last {
			continue
		}
		wv := hist[j].Input.(registerInput).value
		if v == "" && !any {
			out = append(out, fmt.Sprintf("%s (the initial value), but a write of %s was acknowledged at index %d before the read began",
				at, nullable(wv), where[j].index))
			continue
		}
		out = append(out, fmt.Sprintf("%s, but a write of %s, begun after every write of %s had completed, was acknowledged at index %d before the read began",
			at, nullable(wv), nullable(v), where[j].index))
	}
	return out
}

// describeIllegal names the keys whose histories have no linearization, and
// the longest partial linearization's last operation.
func describeIllegal(model porcupine.Model, info porcupine.LinearizationInfo, hist []porcupine.Operation) string {
	parts := model.Partition(hist)
	partials := info.PartialLinearizationsOperations()
	var bad []string
	for i, part := range parts {
		if porcupine.CheckOperationsTimeout(model, part, 10*time.Second) == porcupine.Ok {
			continue
		}
		k := part[0].Input.(registerInput).key
		msg := fmt.Sprintf("key %s (%d ops)", k, len(part))
		if i < len(partials) {
			longest := []porcupine.Operation(nil)
			for _, l := range partials[i] {
				if len(l) > len(longest) {
					longest = l
				}
			}
			if n := len(longest); n > 0 {
				last := longest[n-1]
				msg += fmt.Sprintf(": linearizable up to %s", model.DescribeOperation(last.Input, last.Output))
			}
		}
		bad = append(bad, msg)
	}
	if len(bad) == 0 {
		return "no linearization exists"
	}
	return fmt.Sprint(bad)
}
