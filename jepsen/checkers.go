package jepsen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Workload names, as --workload and results.json spell them.
const (
	WorkloadRegister = "register"
	WorkloadSet      = "set"
	WorkloadCrypto   = "crypto"
	WorkloadKeyState = "key-state"
	WorkloadSecrets  = "secrets"
)

// AllWorkloads in the order they are reported.
var AllWorkloads = []string{WorkloadRegister, WorkloadSet, WorkloadCrypto, WorkloadKeyState, WorkloadSecrets}

// Result is one checker's verdict, as it appears in results.json.
type Result struct {
	Valid bool `json:"valid"`
	Counts
	// Reason is the first anomaly in one line ("" when valid).
	Reason string `json:"reason,omitempty"`
	// Anomalies lists what was found (at most maxAnomalies; AnomalyCount
	// has the total).
	Anomalies    []string       `json:"anomalies,omitempty"`
	AnomalyCount int            `json:"anomaly_count,omitempty"`
	Details      map[string]any `json:"details,omitempty"`
}

const maxAnomalies = 20

func (r *Result) anomaly(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Valid = false
	if r.Reason == "" {
		r.Reason = msg
	}
	r.AnomalyCount++
	if len(r.Anomalies) < maxAnomalies {
		r.Anomalies = append(r.Anomalies, msg)
	}
}

func (r *Result) detail(k string, v any) {
	if r.Details == nil {
		r.Details = map[string]any{}
	}
	r.Details[k] = v
}

// CheckOptions tune the checkers.
type CheckOptions struct {
	// Bound is the documented key-state bound (kmsd --max-staleness): how
	// long after a DisableKey was acknowledged an encrypt may still succeed.
	Bound time.Duration
	// LinearizabilityTimeout bounds the register check (0: 2 minutes).
	LinearizabilityTimeout time.Duration
	// Nemesis windows, for the register visualization.
	Nemesis []NemesisEvent
	// VisualizationPath, when set, receives porcupine's HTML when the
	// register (or secrets) history is not linearizable.
	VisualizationPath string
}

// Check runs the named workload's checker on a history (ops of other
// workloads are ignored).
func Check(workload string, ops []Op, opt CheckOptions) (Result, error) {
	ops = filterWorkload(ops, workload)
	var (
		r   Result
		err error
	)
	switch workload {
	case WorkloadRegister:
		r, err = CheckRegister(ops, opt)
	case WorkloadSet:
		r, err = CheckSet(ops)
	case WorkloadCrypto:
		r, err = CheckCrypto(ops)
	case WorkloadKeyState:
		r, err = CheckKeyState(ops, opt.Bound)
	case WorkloadSecrets:
		r, err = CheckSecrets(ops, opt)
	default:
		return Result{}, fmt.Errorf("unknown workload %q (want register, set, crypto, key-state or secrets)", workload)
	}
	if err != nil {
		return Result{}, err
	}
	r.Counts = countOps(ops)
	return r, nil
}

// stringValue decodes a JSON string or null ("" for null). Any other JSON
// value (a hand-made history may use numbers) stands for its compact text.
func stringValue(v json.RawMessage) (string, bool, error) {
	if isNull(v) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, true, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return "", false, fmt.Errorf("value %s is not JSON", v)
	}
	return buf.String(), true, nil
}

// listValue decodes a JSON array of values as stringValue does.
func listValue(v json.RawMessage) ([]string, error) {
	if isNull(v) {
		return nil, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, fmt.Errorf("value is not a list: %v", err)
	}
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		s, _, err := stringValue(r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// ---- set ----

// CheckSet: every add acknowledged before a read began is in that read, and
// a read holds nothing that was never attempted. Every node that was read
// (any read invocation names its node) needs at least one successful read,
// and the history needs at least one: a set nobody read proves nothing.
func CheckSet(ops []Op) (Result, error) {
	pairs, err := Pairs(ops)
	if err != nil {
		return Result{}, err
	}
	r := Result{Valid: true}
	attempted := map[string]bool{}
	type ack struct {
		v    string
		done int64
	}
	var acked []ack
	var reads []Pair
	readNodes := map[string]bool{}
	okNodes := map[string]bool{}
	for _, p := range pairs {
		switch p.Invoke.F {
		case "add":
			v, ok, err := stringValue(p.Invoke.Value)
			if err != nil || !ok {
				return Result{}, fmt.Errorf("add at index %d: %v", p.Invoke.Index, orNull(err))
			}
			attempted[v] = true
			if p.Type() == TypeOK {
				acked = append(acked, ack{v, p.Complete.Time})
			}
		case "read":
			readNodes[p.Invoke.Node] = true
			if p.Type() == TypeOK {
				reads = append(reads, p)
				okNodes[p.Invoke.Node] = true
			}
		}
	}
	if len(reads) == 0 {
		r.anomaly("no successful read: nothing can be said about the %d acknowledged adds", len(acked))
	}
	for n := range readNodes {
		if !okNodes[n] {
			r.anomaly("node %q: no read succeeded", n)
		}
	}
	lostAll := map[string]bool{}
	unexpectedAll := map[string]bool{}
	for _, p := range reads {
		got, err := listValue(p.Complete.Value)
		if err != nil {
			return Result{}, fmt.Errorf("read at index %d: %v", p.Complete.Index, err)
		}
		seen := make(map[string]bool, len(got))
		for _, v := range got {
			seen[v] = true
			if !attempted[v] {
				unexpectedAll[v] = true
				r.anomaly("read at index %d (node %q) holds %q, which no add attempted", p.Complete.Index, p.Invoke.Node, v)
			}
		}
		var lost []string
		for _, a := range acked {
			if a.done < p.Invoke.Time && !seen[a.v] {
				lost = append(lost, a.v)
				lostAll[a.v] = true
			}
		}
		if len(lost) > 0 {
			sort.Strings(lost)
			r.anomaly("read at index %d (node %q) misses %d acknowledged add(s): %s", p.Complete.Index, p.Invoke.Node, len(lost), abbrev(lost, 5))
		}
	}
	r.detail("attempted", len(attempted))
	r.detail("acknowledged", len(acked))
	r.detail("reads", len(reads))
	r.detail("lost", len(lostAll))
	r.detail("unexpected", len(unexpectedAll))
	return r, nil
}

func orNull(err error) error {
	if err == nil {
		return fmt.Errorf("value is null")
	}
	return err
}

func abbrev(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(", ... (%d more)", len(s)-n)
}

// ---- crypto ----

// CryptoValue is the value of encrypt and decrypt ops.
type CryptoValue struct {
	Key        string  `json:"key"`
	Plaintext  *string `json:"plaintext"`
	Ciphertext *string `json:"ciphertext"`
}

func cryptoValue(v json.RawMessage) (CryptoValue, error) {
	var c CryptoValue
	if isNull(v) {
		return c, nil
	}
	err := json.Unmarshal(v, &c)
	return c, err
}

// CheckCrypto: every decrypt that succeeded returned exactly the plaintext
// its ciphertext was made from; no ciphertext was acknowledged for two
// plaintexts; an acknowledged ciphertext is never refused as invalid; and,
// when the history has a final phase (ops marked final), every acknowledged
// ciphertext decrypted to its plaintext on every node of that phase.
func CheckCrypto(ops []Op) (Result, error) {
	pairs, err := Pairs(ops)
	if err != nil {
		return Result{}, err
	}
	r := Result{Valid: true}
	type sealed struct {
		plaintext string
		key       string
		index     int64
	}
	acked := map[string]sealed{}
	var ackOrder []string
	for _, p := range pairs {
		if p.Invoke.F != "encrypt" || p.Type() != TypeOK {
			continue
		}
		in, err := cryptoValue(p.Invoke.Value)
		if err != nil {
			return Result{}, fmt.Errorf("encrypt at index %d: %v", p.Invoke.Index, err)
		}
		out, err := cryptoValue(p.Complete.Value)
		if err != nil {
			return Result{}, fmt.Errorf("encrypt at index %d: %v", p.Complete.Index, err)
		}
		pt := out.Plaintext
		if pt == nil {
			pt = in.Plaintext
		}
		if out.Ciphertext == nil || pt == nil {
			r.anomaly("encrypt acknowledged at index %d without a ciphertext or plaintext", p.Complete.Index)
			continue
		}
		if prev, dup := acked[*out.Ciphertext]; dup {
			if prev.plaintext != *pt {
				r.anomaly("ciphertext acknowledged twice, for two plaintexts (index %d and %d)", prev.index, p.Complete.Index)
			}
			continue
		}
		key := out.Key
		if key == "" {
			key = in.Key
		}
		if key == "" {
			key = p.Invoke.Key
		}
		acked[*out.Ciphertext] = sealed{*pt, key, p.Complete.Index}
		ackOrder = append(ackOrder, *out.Ciphertext)
	}

	finalNodes := map[string]bool{}
	decrypted := map[string]map[string]bool{} // ciphertext → nodes where a final decrypt returned its plaintext
	var okDecrypts, unverifiable int
	for _, p := range pairs {
		if p.Invoke.F != "decrypt" {
			continue
		}
		if p.Invoke.Final {
			finalNodes[p.Invoke.Node] = true
		}
		in, err := cryptoValue(p.Invoke.Value)
		if err != nil {
			return Result{}, fmt.Errorf("decrypt at index %d: %v", p.Invoke.Index, err)
		}
		out, err := cryptoValue(p.Complete.Value)
		if err != nil {
			return Result{}, fmt.Errorf("decrypt at index %d: %v", p.Complete.Index, err)
		}
		ct := in.Ciphertext
		if ct == nil {
			ct = out.Ciphertext
		}
		if ct == nil {
			return Result{}, fmt.Errorf("decrypt at index %d names no ciphertext", p.Invoke.Index)
		}
		want, known := acked[*ct]
		switch p.Type() {
		case TypeOK:
			okDecrypts++
			if out.Plaintext == nil {
				r.anomaly("decrypt at index %d (node %q) succeeded without a plaintext", p.Complete.Index, p.Complete.Node)
				continue
			}
			expected := ""
			switch {
			case known:
				expected = want.plaintext
			case in.Plaintext != nil:
				expected = *in.Plaintext
			default:
				unverifiable++
				continue
			}
			if *out.Plaintext != expected {
				r.anomaly("decrypt at index %d (node %q) returned plaintext %q, but the ciphertext was made from %q",
					p.Complete.Index, p.Complete.Node, *out.Plaintext, expected)
				continue
			}
			if p.Invoke.Final {
				if decrypted[*ct] == nil {
					decrypted[*ct] = map[string]bool{}
				}
				decrypted[*ct][p.Invoke.Node] = true
			}
		case TypeFail:
			if known && p.Complete.Error == "InvalidCiphertext" {
				r.anomaly("decrypt at index %d (node %q): the ciphertext acknowledged at index %d was refused as invalid",
					p.Complete.Index, p.Complete.Node, want.index)
			}
		}
	}
	if len(finalNodes) > 0 {
		nodes := sortedKeys(finalNodes)
		missing := 0
		for _, ct := range ackOrder {
			for _, n := range nodes {
				if !decrypted[ct][n] {
					missing++
					if missing <= maxAnomalies {
						r.anomaly("ciphertext acknowledged at index %d (key %s) did not decrypt to its plaintext on node %q in the final phase",
							acked[ct].index, acked[ct].key, n)
					} else {
						r.AnomalyCount++
					}
				}
			}
		}
		r.detail("final_nodes", nodes)
		r.detail("final_missing", missing)
	}
	r.detail("final_checked", len(finalNodes) > 0)
	r.detail("acknowledged_ciphertexts", len(acked))
	r.detail("ok_decrypts", okDecrypts)
	if unverifiable > 0 {
		r.detail("unverifiable_decrypts", unverifiable)
	}
	return r, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- key-state ----

// CheckKeyState flags an encrypt that succeeded although it started more
// than bound after a DisableKey of its key was acknowledged, unless an
// EnableKey may have re-enabled the key in between.
//
// The rule, for a successful encrypt X of key k invoked at X.start and
// completed at X.end: X is a violation if there is a disable D of k that
// completed ok at D.end with X.start - D.end > bound, and no enable E of k
// that did not fail (ok, info, or never completed) with
//
//	E.start < X.end   (E was invoked before X completed, so it may have taken
//	                   effect before X read the key's state), and
//	E.end   > D.start (E did not complete before D was invoked, so it may be
//	                   ordered after D; an info E counts as never completing).
//
// An enable that completed before D was invoked is ordered before D and
// cannot undo it; one invoked after X completed cannot have helped X. Every
// other enable might have, whatever the order of concurrent operations, so
// it excuses X: the rule never flags a history that some order of the
// operations explains. Failed enables are certainly not applied.
func CheckKeyState(ops []Op, bound time.Duration) (Result, error) {
	pairs, err := Pairs(ops)
	if err != nil {
		return Result{}, err
	}
	r := Result{Valid: true}
	type span struct{ start, end int64 }
	disables := map[string][]span{} // ok disables by key
	enables := map[string][]span{}  // not-failed enables by key (end = max for unknown)
	const never = int64(1<<63 - 1)
	key := func(p Pair) string {
		if p.Invoke.Key != "" {
			return p.Invoke.Key
		}
		if c, err := cryptoValue(p.Invoke.Value); err == nil {
			return c.Key
		}
		return ""
	}
	for _, p := range pairs {
		k := key(p)
		switch p.Invoke.F {
		case "disable":
			if p.Type() == TypeOK {
				disables[k] = append(disables[k], span{p.Invoke.Time, p.Complete.Time})
			}
		case "enable":
			switch p.Type() {
			case TypeOK:
				enables[k] = append(enables[k], span{p.Invoke.Time, p.Complete.Time})
			case TypeInfo:
				enables[k] = append(enables[k], span{p.Invoke.Time, never})
			}
		}
	}
	var encryptsOK, mustFail int
	for _, p := range pairs {
		if p.Invoke.F != "encrypt" {
			continue
		}
		k := key(p)
		xs, xe := p.Invoke.Time, p.Complete.Time
		// The disables this encrypt must have seen: acknowledged more
		// than bound before it started, and not possibly undone.
		var culprit *span
		for i := range disables[k] {
			d := disables[k][i]
			if xs-d.end <= int64(bound) {
				continue
			}
			excused := false
			for _, e := range enables[k] {
				if e.start < xe && e.end > d.start {
					excused = true
					break
				}
			}
			if !excused && (culprit == nil || d.end > culprit.end) {
				culprit = &disables[k][i]
			}
		}
		if culprit == nil {
			if p.Type() == TypeOK {
				encryptsOK++
			}
			continue
		}
		mustFail++
		if p.Type() == TypeOK {
			encryptsOK++
			r.anomaly("encrypt with key %s at index %d (node %q) succeeded, started %s after a DisableKey was acknowledged (bound %s) with no EnableKey in between",
				k, p.Complete.Index, p.Invoke.Node, time.Duration(xs-culprit.end).Round(time.Millisecond), bound)
		}
	}
	r.detail("bound", bound.String())
	r.detail("ok_encrypts", encryptsOK)
	r.detail("encrypts_after_bound", mustFail)
	return r, nil
}
