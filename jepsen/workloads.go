package jepsen

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkms/raftkms/client"
)

// workload generates one kind of operation and its final reads.
type workload interface {
	name() string
	// setup creates the keys the workload uses (not recorded).
	setup(ctx context.Context, e *env) error
	// step runs one operation by process p.
	step(e *env, p *proc)
	// background runs the workload's own processes (rotations, state
	// toggles) until ctx ends.
	background(ctx context.Context, e *env, wg *sync.WaitGroup)
	// final runs the final reads after every fault healed, on every node;
	// minIndex is an index every node has applied.
	final(ctx context.Context, e *env, minIndex uint64)
}

// weight is each workload's share of the client processes.
var weight = map[string]int{WorkloadRegister: 3, WorkloadCrypto: 3, WorkloadKeyState: 2, WorkloadSet: 2, WorkloadSecrets: 2}

func newWorkload(name string) workload {
	switch name {
	case WorkloadRegister:
		return &registerWorkload{keys: 3}
	case WorkloadSet:
		return &setWorkload{}
	case WorkloadCrypto:
		return &cryptoWorkload{keys: 3}
	case WorkloadKeyState:
		return &keyStateWorkload{keys: 2}
	case WorkloadSecrets:
		return &secretsWorkload{secrets: 2}
	}
	return nil
}

// finalRetries bounds how often a final read is tried on one node.
const finalRetries = 5

// retryFinal runs op until it succeeds or finalRetries attempts failed.
func retryFinal(ctx context.Context, op func() opResult) {
	for i := 0; i < finalRetries && ctx.Err() == nil; i++ {
		if op().typ == TypeOK {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(i+1) * 300 * time.Millisecond):
		}
	}
}

// ---- register: UpdateKeyDescription / DescribeKey (linearizable) ----

type registerWorkload struct {
	keys   int
	ids    []string
	writes atomic.Int64
}

func (w *registerWorkload) name() string { return WorkloadRegister }

func (w *registerWorkload) setup(ctx context.Context, e *env) error {
	for i := 0; i < w.keys; i++ {
		id, err := e.createKey(ctx, e.cl.Instance(), "")
		if err != nil {
			return err
		}
		w.ids = append(w.ids, id)
	}
	return nil
}

func (w *registerWorkload) step(e *env, p *proc) {
	key := w.ids[p.rng.IntN(len(w.ids))]
	node := e.randomNode(p)
	if p.rng.IntN(10) < 4 {
		v := fmt.Sprintf("w%d-%d", p.id, w.writes.Add(1))
		e.call(p, w.name(), "write", key, v, node, false, func(ctx context.Context, c *client.Client) (any, error) {
			_, err := callAPI(ctx, c, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": v}, nil)
			return v, err
		})
		return
	}
	w.read(e, p, key, node, false)
}

func (w *registerWorkload) read(e *env, p *proc, key string, node *Node, final bool) opResult {
	return e.call(p, w.name(), "read", key, nil, node, final, func(ctx context.Context, c *client.Client) (any, error) {
		var out struct{ KeyMetadata struct{ Description string } }
		if _, err := callAPI(ctx, c, "DescribeKey", map[string]string{"KeyId": key}, &out, linearizable); err != nil {
			return nil, err
		}
		if out.KeyMetadata.Description == "" {
			return nil, nil
		}
		return out.KeyMetadata.Description, nil
	})
}

func (w *registerWorkload) background(context.Context, *env, *sync.WaitGroup) {}

func (w *registerWorkload) final(ctx context.Context, e *env, _ uint64) {
	var wg sync.WaitGroup
	for _, n := range e.cl.Nodes() {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			p := e.newProc()
			for _, k := range w.ids {
				retryFinal(ctx, func() opResult { return w.read(e, p, k, n, true) })
			}
		}(n)
	}
	wg.Wait()
}

// ---- set: CreateKey with a unique description; final ListKeys per node ----

const setPrefix = "set-"

type setWorkload struct {
	instances []string
	adds      atomic.Int64
	full      atomic.Bool
}

// keysPerInstance stays under the instance quota (1000) with room for adds
// of unknown outcome.
const keysPerInstance = 900

func (w *setWorkload) name() string { return WorkloadSet }

func (w *setWorkload) setup(ctx context.Context, e *env) error {
	// Enough instances for every add the run can make.
	need := e.maxAdds/keysPerInstance + 1
	w.instances = append(w.instances, e.cl.Instance())
	for len(w.instances) < need {
		var id string
		err := e.setup(ctx, "create instance", func(ctx context.Context, n *Node) error {
			var err error
			id, err = e.cl.CreateInstance(ctx, n)
			return err
		})
		if err != nil {
			return err
		}
		w.instances = append(w.instances, id)
	}
	return nil
}

func (w *setWorkload) step(e *env, p *proc) {
	i := w.adds.Add(1) - 1
	slot := int(i / keysPerInstance)
	if slot >= len(w.instances) {
		if !w.full.Swap(true) {
			e.cl.log("set: every instance is full; no more adds")
		}
		return
	}
	inst := w.instances[slot]
	v := fmt.Sprintf("%s%d-%d", setPrefix, p.id, i)
	e.call(p, w.name(), "add", "", v, e.randomNode(p), false, func(ctx context.Context, c *client.Client) (any, error) {
		_, err := callAPI(ctx, c, "CreateKey", map[string]string{"DKMSInstanceId": inst, "Description": v}, nil)
		return v, err
	})
}

func (w *setWorkload) background(context.Context, *env, *sync.WaitGroup) {}

// final reads, on every node, every key it lists and keeps the set's
// descriptions: from this node's own catalogue (the default read mode), at
// least as of minIndex, so a write a replica lost shows up as missing.
func (w *setWorkload) final(ctx context.Context, e *env, minIndex uint64) {
	var wg sync.WaitGroup
	for _, n := range e.cl.Nodes() {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			p := e.newProc()
			retryFinal(ctx, func() opResult {
				return e.call(p, w.name(), "read", "", nil, n, true, func(ctx context.Context, c *client.Client) (any, error) {
					return readAllDescriptions(ctx, c, minIndex)
				})
			})
		}(n)
	}
	wg.Wait()
}

func readAllDescriptions(_ context.Context, c *client.Client, minIndex uint64) ([]string, error) {
	// The per-request timeout is for one call; a whole listing gets more.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	at := client.WithMinIndex(minIndex)
	var ids []string
	for page := 1; ; page++ {
		var out struct {
			Keys       struct{ Key []struct{ KeyId string } }
			TotalCount int
		}
		if _, err := callAPI(ctx, c, "ListKeys", map[string]string{"PageNumber": fmt.Sprint(page), "PageSize": "100"}, &out, at); err != nil {
			return nil, err
		}
		for _, k := range out.Keys.Key {
			ids = append(ids, k.KeyId)
		}
		if len(out.Keys.Key) == 0 || len(ids) >= out.TotalCount {
			break
		}
	}
	descs := make([]string, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, id string) {
			defer wg.Done()
			defer func() { <-sem }()
			var out struct{ KeyMetadata struct{ Description string } }
			_, errs[i] = callAPI(ctx, c, "DescribeKey", map[string]string{"KeyId": id}, &out, at)
			descs[i] = out.KeyMetadata.Description
		}(i, id)
	}
	wg.Wait()
	var set []string
	for i := range ids {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if strings.HasPrefix(descs[i], setPrefix) {
			set = append(set, descs[i])
		}
	}
	sort.Strings(set)
	return set, nil
}

// ---- crypto: Encrypt / Decrypt while keys rotate ----

type cryptoWorkload struct {
	keys     int
	ids      []string
	n        atomic.Int64
	mu       sync.Mutex
	acked    []CryptoValue // acknowledged encryptions
	versions map[string]int
}

// maxRotations stays under the 50 versions a key may have.
const maxRotations = 45

func (w *cryptoWorkload) name() string { return WorkloadCrypto }

func (w *cryptoWorkload) setup(ctx context.Context, e *env) error {
	w.versions = map[string]int{}
	for i := 0; i < w.keys; i++ {
		id, err := e.createKey(ctx, e.cl.Instance(), "crypto")
		if err != nil {
			return err
		}
		w.ids = append(w.ids, id)
	}
	return nil
}

func strp(s string) *string { return &s }

func (w *cryptoWorkload) step(e *env, p *proc) {
	w.mu.Lock()
	nAcked := len(w.acked)
	w.mu.Unlock()
	if nAcked == 0 || p.rng.IntN(2) == 0 {
		key := w.ids[p.rng.IntN(len(w.ids))]
		pt := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "plaintext %d of process %d", w.n.Add(1), p.id))
		in := CryptoValue{Key: key, Plaintext: strp(pt)}
		r := e.call(p, w.name(), "encrypt", key, in, e.randomNode(p), false, func(ctx context.Context, c *client.Client) (any, error) {
			var out struct{ CiphertextBlob, KeyId string }
			if _, err := callAPI(ctx, c, "Encrypt", map[string]string{"KeyId": key, "Plaintext": pt}, &out); err != nil {
				return nil, err
			}
			return CryptoValue{Key: key, Plaintext: strp(pt), Ciphertext: strp(out.CiphertextBlob)}, nil
		})
		if r.typ == TypeOK {
			w.mu.Lock()
			w.acked = append(w.acked, r.value.(CryptoValue))
			w.mu.Unlock()
		}
		return
	}
	// Half the decrypts go to the newest ciphertexts, which other nodes
	// may not have seen the version of yet.
	w.mu.Lock()
	i := p.rng.IntN(len(w.acked))
	if p.rng.IntN(2) == 0 && len(w.acked) > 20 {
		i = len(w.acked) - 1 - p.rng.IntN(20)
	}
	cv := w.acked[i]
	w.mu.Unlock()
	w.decrypt(e, p, cv, e.randomNode(p), false)
}

func (w *cryptoWorkload) decrypt(e *env, p *proc, cv CryptoValue, n *Node, final bool) opResult {
	in := CryptoValue{Key: cv.Key, Ciphertext: cv.Ciphertext}
	return e.call(p, w.name(), "decrypt", cv.Key, in, n, final, func(ctx context.Context, c *client.Client) (any, error) {
		var out struct{ Plaintext string }
		if _, err := callAPI(ctx, c, "Decrypt", map[string]string{"CiphertextBlob": *cv.Ciphertext}, &out); err != nil {
			return nil, err
		}
		return CryptoValue{Key: cv.Key, Plaintext: strp(out.Plaintext), Ciphertext: cv.Ciphertext}, nil
	})
}

// background rotates a random key about every second (CreateKeyVersion),
// so encryptions use versions other nodes may not have applied yet.
func (w *cryptoWorkload) background(ctx context.Context, e *env, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := e.newProc()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(700+p.rng.IntN(600)) * time.Millisecond):
			}
			key := w.ids[p.rng.IntN(len(w.ids))]
			w.mu.Lock()
			n := w.versions[key]
			w.versions[key]++
			w.mu.Unlock()
			if n >= maxRotations {
				continue
			}
			e.call(p, w.name(), "rotate", key, nil, e.randomNode(p), false, func(ctx context.Context, c *client.Client) (any, error) {
				var out struct{ KeyVersion struct{ KeyVersionId string } }
				_, err := callAPI(ctx, c, "CreateKeyVersion", map[string]string{"KeyId": key}, &out)
				return out.KeyVersion.KeyVersionId, err
			})
		}
	}()
}

// final decrypts every acknowledged ciphertext on every node.
func (w *cryptoWorkload) final(ctx context.Context, e *env, _ uint64) {
	w.mu.Lock()
	acked := append([]CryptoValue(nil), w.acked...)
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range e.cl.Nodes() {
		const par = 4
		for j := 0; j < par; j++ {
			wg.Add(1)
			go func(n *Node, j int) {
				defer wg.Done()
				p := e.newProc()
				for i := j; i < len(acked); i += par {
					retryFinal(ctx, func() opResult { return w.decrypt(e, p, acked[i], n, true) })
				}
			}(n, j)
		}
	}
	wg.Wait()
}

// ---- key-state: DisableKey / EnableKey / Encrypt ----

type keyStateWorkload struct {
	keys int
	ids  []string
}

func (w *keyStateWorkload) name() string { return WorkloadKeyState }

func (w *keyStateWorkload) setup(ctx context.Context, e *env) error {
	for i := 0; i < w.keys; i++ {
		id, err := e.createKey(ctx, e.cl.Instance(), "key-state")
		if err != nil {
			return err
		}
		w.ids = append(w.ids, id)
	}
	return nil
}

func (w *keyStateWorkload) step(e *env, p *proc) {
	key := w.ids[p.rng.IntN(len(w.ids))]
	pt := base64.StdEncoding.EncodeToString([]byte("key-state"))
	in := CryptoValue{Key: key, Plaintext: strp(pt)}
	e.call(p, w.name(), "encrypt", key, in, e.randomNode(p), false, func(ctx context.Context, c *client.Client) (any, error) {
		var out struct{ CiphertextBlob string }
		if _, err := callAPI(ctx, c, "Encrypt", map[string]string{"KeyId": key, "Plaintext": pt}, &out); err != nil {
			return nil, err
		}
		return CryptoValue{Key: key, Plaintext: strp(pt), Ciphertext: strp(out.CiphertextBlob)}, nil
	})
}

// background toggles each key: disable, keep it disabled for longer than
// the bound (so encrypts fall in the window where they must fail), enable,
// keep it enabled for a while.
func (w *keyStateWorkload) background(ctx context.Context, e *env, wg *sync.WaitGroup) {
	for _, key := range w.ids {
		wg.Add(1)
		go func(key string) {
			defer wg.Done()
			p := e.newProc()
			wait := func(d time.Duration) bool {
				select {
				case <-ctx.Done():
					return false
				case <-time.After(d):
					return true
				}
			}
			if !wait(time.Duration(p.rng.IntN(1000)) * time.Millisecond) {
				return
			}
			for {
				for _, f := range []string{"disable", "enable"} {
					action := map[string]string{"disable": "DisableKey", "enable": "EnableKey"}[f]
					e.call(p, w.name(), f, key, nil, e.randomNode(p), false, func(ctx context.Context, c *client.Client) (any, error) {
						_, err := callAPI(ctx, c, action, map[string]string{"KeyId": key}, nil)
						return nil, err
					})
					hold := time.Duration(500+p.rng.IntN(1000)) * time.Millisecond
					if f == "disable" {
						hold += e.bound + time.Second
					}
					if !wait(hold) {
						return
					}
				}
			}
		}(key)
	}
}

func (w *keyStateWorkload) final(context.Context, *env, uint64) {}
