package jepsen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftkms/raftkms/client"
)

// ---- secrets: PutSecretValue / GetSecretValue of ACSCurrent (linearizable) ----
//
// Each secret is a register: a write is PutSecretValue of a unique value
// under a unique VersionId (no VersionStages, so ACSCurrent moves to it), a
// read is GetSecretValue of ACSCurrent. A write of unknown outcome is
// retried once, with the same VersionId and the same data, by whichever
// process writes next after a random delay of up to retryDelay: the
// reference's idempotency (the same VersionId with the same data succeeds)
// makes that safe, and the checker holds the service to it. The delay lets
// the first attempt land first, often (faults hold 3–7 s): the retry then
// finds its version (a no-op) or, after 20 more versions, finds it dropped
// (added anew).

// secretInitial is the value every secret is created with (version
// secretInitialVersion); reads record it as null, "before any write", as
// the register workload records an empty description.
const (
	secretInitial        = "jepsen initial value"
	secretInitialVersion = "v0"
)

// secretVersionOf is the VersionId a write of value v uses: one per value,
// so a retry carries the same pair.
func secretVersionOf(v string) string { return "v-" + v }

type secretsWorkload struct {
	secrets int
	names   []string
	writes  atomic.Int64
	mu      sync.Mutex
	pending []pendingRetry // writes of unknown outcome, oldest first
}

// pendingRetry is a write of unknown outcome to retry from due on.
type pendingRetry struct {
	name, value string
	due         time.Time
}

// retryDelay bounds how long a write of unknown outcome waits for its retry.
const retryDelay = 5 * time.Second

func (w *secretsWorkload) name() string { return WorkloadSecrets }

// setup creates the encryption key and the secrets: the odd ones under
// that key (EncryptionKeyId, in the cluster's instance), the even ones under
// the account's default key (EncryptionKeyId omitted), which it creates
// too (CreateKey without DKMSInstanceId; the service has none until then).
func (w *secretsWorkload) setup(ctx context.Context, e *env) error {
	key, err := e.createKey(ctx, e.cl.Instance(), "secrets")
	if err != nil {
		return err
	}
	if w.secrets > 1 {
		err := e.setup(ctx, "create the default key", func(ctx context.Context, n *Node) error {
			_, err := callAPI(ctx, n.api, "CreateKey", map[string]string{"Description": "secrets default"}, nil)
			// The account has one default key: an earlier attempt of
			// unknown outcome made it (nothing else makes one).
			return ignoreCode(err, "Rejected.LimitExceeded")
		})
		if err != nil {
			return err
		}
	}
	for i := 1; i <= w.secrets; i++ {
		name := fmt.Sprintf("jepsen-secret-%d", i)
		params := map[string]string{"SecretName": name, "SecretData": secretInitial, "VersionId": secretInitialVersion}
		if i%2 == 1 {
			params["EncryptionKeyId"] = key
			params["DKMSInstanceId"] = e.cl.Instance()
		}
		err := e.setup(ctx, "create secret", func(ctx context.Context, n *Node) error {
			_, err := callAPI(ctx, n.api, "CreateSecret", params, nil)
			// An earlier attempt of unknown outcome created it.
			return ignoreCode(err, "Rejected.ResourceExist")
		})
		if err != nil {
			return err
		}
		w.names = append(w.names, name)
	}
	return nil
}

// ignoreCode is err, or nil when the server answered with code.
func ignoreCode(err error, code string) error {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code == code {
		return nil
	}
	return err
}

func (w *secretsWorkload) step(e *env, p *proc) {
	if p.rng.IntN(10) >= 4 {
		w.read(e, p, w.names[p.rng.IntN(len(w.names))], e.randomNode(p), false)
		return
	}
	if r, ok := w.dueRetry(); ok {
		// An op of its own (the process that began it has another id
		// now); retried once only.
		w.write(e, p, r.name, r.value, e.randomNode(p))
		return
	}
	name := w.names[p.rng.IntN(len(w.names))]
	v := fmt.Sprintf("s%d-%d", p.id, w.writes.Add(1))
	if r := w.write(e, p, name, v, e.randomNode(p)); r.typ == TypeInfo {
		w.mu.Lock()
		w.pending = append(w.pending, pendingRetry{name, v, time.Now().Add(time.Duration(p.rng.Int64N(int64(retryDelay))))})
		w.mu.Unlock()
	}
}

// dueRetry takes a pending retry whose time has come.
func (w *secretsWorkload) dueRetry() (pendingRetry, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for i, r := range w.pending {
		if !r.due.After(now) {
			w.pending = append(w.pending[:i], w.pending[i+1:]...)
			return r, true
		}
	}
	return pendingRetry{}, false
}

func (w *secretsWorkload) write(e *env, p *proc, name, v string, node *Node) opResult {
	return e.call(p, w.name(), "write", name, v, node, false, func(ctx context.Context, c *client.Client) (any, error) {
		_, err := callAPI(ctx, c, "PutSecretValue", map[string]string{"SecretName": name, "VersionId": secretVersionOf(v), "SecretData": v}, nil)
		return v, err
	})
}

// read records ACSCurrent's value, null for the initial one. A value whose
// VersionId is not the one its write used is recorded as "value@version",
// which no write wrote: the checker reports it.
func (w *secretsWorkload) read(e *env, p *proc, name string, node *Node, final bool) opResult {
	return e.call(p, w.name(), "read", name, nil, node, final, func(ctx context.Context, c *client.Client) (any, error) {
		var out struct{ SecretData, VersionId string }
		if _, err := callAPI(ctx, c, "GetSecretValue", map[string]string{"SecretName": name, "VersionStage": "ACSCurrent"}, &out, linearizable); err != nil {
			return nil, err
		}
		switch {
		case out.SecretData == secretInitial && out.VersionId == secretInitialVersion:
			return nil, nil
		case out.VersionId == secretVersionOf(out.SecretData):
			return out.SecretData, nil
		}
		return out.SecretData + "@" + out.VersionId, nil
	})
}

func (w *secretsWorkload) background(context.Context, *env, *sync.WaitGroup) {}

// final reads every secret once more on every node.
func (w *secretsWorkload) final(ctx context.Context, e *env, _ uint64) {
	var wg sync.WaitGroup
	for _, n := range e.cl.Nodes() {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			p := e.newProc()
			for _, s := range w.names {
				retryFinal(ctx, func() opResult { return w.read(e, p, s, n, true) })
			}
		}(n)
	}
	wg.Wait()
}

// ---- the checker ----

// secretState is one secret in secretModel: ACSCurrent's value, and the
// repeated values (see registerInput.repeated) some write already applied,
// sorted and joined by NUL. A comparable struct, so == is its equality.
type secretState struct {
	current string
	applied string
}

func (s secretState) has(v string) bool {
	return s.applied != "" && slices.Contains(strings.Split(s.applied, "\x00"), v)
}

func (s secretState) with(v string) string {
	var vs []string
	if s.applied != "" {
		vs = strings.Split(s.applied, "\x00")
	}
	vs = append(vs, v)
	sort.Strings(vs)
	return strings.Join(vs, "\x00")
}

// secretModel is a register per secret whose writes are PutSecretValue with
// a VersionId per value. The first time a value is applied, ACSCurrent
// moves to it. Applying it again (a retry with the same VersionId and data)
// either changes nothing — the version is still there: the idempotent
// success — or moves ACSCurrent to it once more, when the version had been
// dropped in between (a secret keeps 20 versions; a deprecated one beyond
// that goes) and the retry added it anew. Both are correct, so the model is
// nondeterministic there; it tracks applied values only for the values
// written more than once, which keeps the states small.
var secretModel = (&porcupine.NondeterministicModel{
	Partition: registerModel.Partition,
	Init:      func() []any { return []any{secretState{}} },
	Step: func(state, input, output any) []any {
		s, in := state.(secretState), input.(registerInput)
		if !in.write {
			if output.(string) == s.current {
				return []any{s}
			}
			return nil
		}
		if !in.repeated {
			return []any{secretState{current: in.value, applied: s.applied}}
		}
		if s.has(in.value) {
			moved := secretState{current: in.value, applied: s.applied}
			if moved == s {
				return []any{s}
			}
			return []any{s, moved}
		}
		return []any{secretState{current: in.value, applied: s.with(in.value)}}
	},
	DescribeOperation: registerModel.DescribeOperation,
	DescribeState:     func(state any) string { return nullable(state.(secretState).current) },
}).ToModel()

// CheckSecrets checks the secrets history: linearizable as CheckRegister
// checks a register, with secretModel (a write retried with the same
// VersionId and data may apply twice; a read of data under another
// VersionId than its write's is a value no write wrote); and no write was
// refused as Rejected.ResourceExist, which the service may only answer for
// a VersionId with other data — every value has one VersionId here, so a
// retry must succeed.
func CheckSecrets(ops []Op, opt CheckOptions) (Result, error) {
	pairs, err := Pairs(ops)
	if err != nil {
		return Result{}, err
	}
	attempted := map[string]bool{}
	var refused []string
	retries := 0
	// The first ok read of each value, to tell the retries of a write that
	// had certainly taken effect (the idempotent no-op, or a re-add).
	firstSeen := map[string]int64{}
	for _, p := range pairs {
		if p.Invoke.F == "read" && p.Type() == TypeOK {
			if v, ok, _ := stringValue(p.Complete.Value); ok {
				k := p.Invoke.Key + "\x00" + v
				if t, seen := firstSeen[k]; !seen || p.Complete.Time < t {
					firstSeen[k] = p.Complete.Time
				}
			}
		}
	}
	retriesAfterSeen := 0
	for _, p := range pairs {
		if p.Invoke.F != "write" {
			continue
		}
		v, _, err := stringValue(p.Invoke.Value)
		if err != nil {
			return Result{}, fmt.Errorf("write at index %d: %v", p.Invoke.Index, err)
		}
		k := p.Invoke.Key + "\x00" + v
		if attempted[k] {
			retries++
			if t, seen := firstSeen[k]; seen && t < p.Invoke.Time {
				retriesAfterSeen++
			}
		}
		attempted[k] = true
		if p.Type() == TypeFail && p.Complete.Error == "Rejected.ResourceExist" {
			refused = append(refused, fmt.Sprintf("index %d (secret %s, value %q, node %q)", p.Complete.Index, p.Invoke.Key, v, p.Invoke.Node))
		}
	}
	r, err := checkLinearizable(ops, opt, secretModel, "secrets")
	if err != nil {
		return Result{}, err
	}
	// The refusals come first: they say more than a linearization does.
	direct := Result{Valid: true}
	for _, f := range refused {
		direct.anomaly("a write with the VersionId and data of an earlier write was refused as Rejected.ResourceExist at %s", f)
	}
	if !direct.Valid {
		for _, a := range r.Anomalies {
			direct.anomaly("%s", a)
		}
		direct.Details = r.Details
		r = direct
	}
	r.detail("retried_writes", retries)
	r.detail("retries_of_writes_seen_applied", retriesAfterSeen)
	return r, nil
}
