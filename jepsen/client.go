package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/raftkms/raftkms/client"
)

// Classify turns a client error into the op's completion type and an error
// code for the history. The rule (client package contract, docs/API.md):
//
//   - no error: ok;
//   - an answer from the server (*client.APIError): fail when the server
//     says the request certainly had no effect — every 4xx, and the 503s
//     ServiceUnavailableTemporary (refused before reaching a leader),
//     ServiceUnavailable.Stale and ServiceUnavailable.IndexNotReached
//     (refused before doing anything); info for every other 5xx, which may
//     have been applied (OutcomeUnknown, Timeout, InternalFailure);
//   - connection refused: fail (nothing reached a server);
//   - anything else (timeout, reset, a broken answer): info.
func Classify(err error) (typ, code string) {
	if err == nil {
		return TypeOK, ""
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		code = ae.Code
		if code == "" {
			code = fmt.Sprintf("HTTP %d", ae.StatusCode)
		}
		if ae.StatusCode < 500 {
			return TypeFail, code
		}
		switch ae.Code {
		case "ServiceUnavailableTemporary", "ServiceUnavailable.Stale", "ServiceUnavailable.IndexNotReached":
			return TypeFail, code
		}
		return TypeInfo, code
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return TypeFail, "connection refused"
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline exceeded") {
		return TypeInfo, "timeout"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i < 80 {
		msg = msg[i+2:]
	}
	return TypeInfo, msg
}

// proc is one logical client process. After an op with an unknown outcome
// the process takes a new id (the old one may still be acting), as Jepsen
// does.
type proc struct {
	id  int
	rng *rand.Rand
}

// tally counts completions per workload for the progress lines.
type tally struct{ ok, fail, info atomic.Int64 }

func (t *tally) add(typ string) {
	switch typ {
	case TypeOK:
		t.ok.Add(1)
	case TypeFail:
		t.fail.Add(1)
	case TypeInfo:
		t.info.Add(1)
	}
}

// env is what every workload uses to run operations.
type env struct {
	rec      *Recorder
	cl       *Cluster
	timeout  time.Duration
	nextProc atomic.Int64
	tallies  map[string]*tally
	seed     uint64
	bound    time.Duration
	maxAdds  int
	mu       sync.Mutex
}

func (e *env) newProc() *proc {
	id := int(e.nextProc.Add(1) - 1)
	return &proc{id: id, rng: rand.New(rand.NewPCG(e.seed, uint64(id)+1))}
}

// randomNode picks any member node: clients talk to every node, whatever
// the nemesis did to it.
func (e *env) randomNode(p *proc) *Node {
	nodes := e.cl.Nodes()
	return nodes[p.rng.IntN(len(nodes))]
}

// opResult is what a call returns for the completion.
type opResult struct {
	typ   string
	code  string
	value any
}

// call records the invocation, runs fn against node with the per-request
// timeout, classifies the outcome and records the completion (value on ok,
// the invocation's value otherwise). An info completion retires the
// process id.
func (e *env) call(p *proc, workload, f, key string, value any, node *Node, final bool,
	fn func(ctx context.Context, c *client.Client) (any, error)) opResult {
	e.rec.Record(Op{Process: p.id, Type: TypeInvoke, F: f, Key: key, Value: jsonValue(value), Node: node.ID,
		Workload: workload, Final: final})
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	out, err := fn(ctx, node.api)
	cancel()
	typ, code := Classify(err)
	if typ != TypeOK {
		out = value
	}
	e.rec.Record(Op{Process: p.id, Type: typ, F: f, Key: key, Value: jsonValue(out), Node: node.ID,
		Workload: workload, Final: final, Error: code})
	if t := e.tallies[workload]; t != nil {
		t.add(typ)
	}
	if typ == TypeInfo {
		np := e.newProc()
		p.id = np.id
	}
	return opResult{typ, code, out}
}

// callAPI is one signed action on c, decoding the answer into out.
func callAPI(ctx context.Context, c *client.Client, action string, params map[string]string, out any, opts ...client.CallOption) (*client.Response, error) {
	resp, err := c.Call(ctx, action, params, opts...)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := resp.Decode(out); err != nil {
			return nil, fmt.Errorf("%s: undecodable answer: %w", action, err)
		}
	}
	return resp, nil
}

// linearizable is the strongest read mode.
var linearizable = client.WithHeader("X-Kms-Read-Consistency", "linearizable")

// setup retries f (setup steps are not part of the history) until it
// succeeds or the deadline passes.
func (e *env) setup(ctx context.Context, what string, f func(ctx context.Context, n *Node) error) error {
	p := e.newProc()
	var last error
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := e.randomNode(p)
		cctx, cancel := context.WithTimeout(ctx, e.timeout)
		last = f(cctx, n)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %w", what, last)
}

// createKey makes a key for a workload during setup.
func (e *env) createKey(ctx context.Context, instance, description string) (string, error) {
	var id string
	err := e.setup(ctx, "create key", func(ctx context.Context, n *Node) error {
		var out struct{ KeyMetadata struct{ KeyId string } }
		_, err := callAPI(ctx, n.api, "CreateKey", map[string]string{"DKMSInstanceId": instance, "Description": description}, &out)
		id = out.KeyMetadata.KeyId
		return err
	})
	return id, err
}
