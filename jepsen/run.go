package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config is one run of the harness (kms-jepsen run).
type Config struct {
	Nodes       int
	TimeLimit   time.Duration
	Nemeses     []string
	Workloads   []string
	Rate        float64 // operations per second, all workloads together
	Concurrency int     // client processes, all workloads together
	Seed        uint64
	Out         string
	Kmsd        string // path of bin/kmsd

	MaxStaleness      time.Duration // kmsd --max-staleness, and the key-state bound
	RaftTimeout       time.Duration
	DeadServerTimeout time.Duration
	RequestTimeout    time.Duration // per client request

	Stderr io.Writer
}

// Results is results.json.
type Results struct {
	Valid        bool              `json:"valid"`
	Seed         uint64            `json:"seed"`
	Nodes        int               `json:"nodes"`
	TimeLimit    string            `json:"time_limit"`
	Nemesis      []string          `json:"nemesis"`
	WorkloadList []string          `json:"workload"`
	MaxStaleness string            `json:"max_staleness"`
	Rate         float64           `json:"rate"`
	Concurrency  int               `json:"concurrency"`
	Command      string            `json:"command"`
	Workloads    map[string]Result `json:"workloads"`
	Hash         HashResult        `json:"catalogue_hash"`
	Counts
	Events  []NemesisEvent `json:"nemesis_events"`
	Crashes map[string]int `json:"kmsd_crashes,omitempty"`
	Errors  []string       `json:"errors,omitempty"`
	Elapsed string         `json:"elapsed"`
}

// MarshalJSON puts every workload's verdict at the top level too
// ("register": {"valid": ...}), besides "workloads".
func (r Results) MarshalJSON() ([]byte, error) {
	type plain Results
	b, err := json.Marshal(plain(r))
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for name, res := range r.Workloads {
		rb, err := json.Marshal(res)
		if err != nil {
			return nil, err
		}
		m[name] = rb
	}
	return json.Marshal(m)
}

// HashResult is the final replica comparison.
type HashResult struct {
	Valid  bool              `json:"valid"`
	Index  uint64            `json:"index"`
	Hashes map[string]string `json:"hashes"`
	Reason string            `json:"reason,omitempty"`
}

// ParseList expands a comma list with "all" and "none".
func ParseList(s string, all []string, what string) ([]string, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "all":
		return append([]string(nil), all...), nil
	case "none", "":
		return nil, nil
	}
	known := map[string]bool{}
	for _, a := range all {
		known[a] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if !known[p] {
			return nil, fmt.Errorf("unknown %s %q (want %s, all or none)", what, p, strings.Join(all, ", "))
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

type logger struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (l *logger) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "[%7.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run sets up the cluster, runs the workloads under the nemesis for
// TimeLimit, heals, does the final reads, checks everything and writes OUT.
// Namespaces and processes are removed before it returns, whatever happens
// (an interrupted ctx, an error, a panic).
func Run(ctx context.Context, cfg Config) (res *Results, err error) {
	if err := CheckPrerequisites(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Kmsd); err != nil {
		return nil, fmt.Errorf("kmsd binary: %w (run make build)", err)
	}
	if len(cfg.Workloads) == 0 {
		return nil, errors.New("no workload selected")
	}
	if cfg.Nodes < 1 {
		return nil, errors.New("--nodes must be at least 1")
	}
	if cfg.Concurrency < len(cfg.Workloads) {
		cfg.Concurrency = len(cfg.Workloads)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	// An earlier run's files in the same directory would mislead.
	for _, name := range []string{"history.jsonl", "nemesis.jsonl", "results.json", "latency.png", "throughput.png", "logs", "data",
		"register.html", "set.html", "crypto.html", "key-state.html"} {
		_ = os.RemoveAll(filepath.Join(cfg.Out, name))
	}
	began := time.Now()
	lg := &logger{w: cfg.Stderr, start: began}
	log := lg.logf

	if gone := CleanLeftovers(); len(gone) > 0 {
		log("removed leftovers of earlier runs: %s", strings.Join(gone, ", "))
	}
	nw, err := NewNetwork(ctx, log)
	if err != nil {
		return nil, err
	}
	cl, err := NewCluster(ClusterConfig{Kmsd: cfg.Kmsd, Dir: cfg.Out, RaftTimeout: cfg.RaftTimeout, MaxStaleness: cfg.MaxStaleness,
		DeadServerTimeout: cfg.DeadServerTimeout, RequestTimeout: cfg.RequestTimeout}, nw, log)
	if err != nil {
		nw.Teardown()
		return nil, err
	}
	var cleanOnce sync.Once
	cleanup := func() {
		cleanOnce.Do(func() {
			cl.StopAll()
			nw.Teardown()
		})
	}
	SetEmergencyCleanup(cleanup)
	defer SetEmergencyCleanup(nil)
	defer cleanup()
	defer func() {
		if p := recover(); p != nil {
			cleanup()
			panic(p)
		}
	}()

	log("network %s: host %s; starting %d kmsd nodes", nw.subnet, nw.HostIP(), cfg.Nodes)
	var join []string
	for i := 1; i <= cfg.Nodes; i++ {
		join = append(join, fmt.Sprintf("%s:%s", nw.addr(10+i), gossipPort))
	}
	for i := 0; i < cfg.Nodes; i++ {
		expect := cfg.Nodes
		if cfg.Nodes == 1 {
			expect = 1
		}
		if _, err := cl.AddNode(ctx, expect, join); err != nil {
			return nil, err
		}
	}
	if err := cl.WaitHealthy(ctx, 60*time.Second); err != nil {
		return nil, fmt.Errorf("the cluster did not form: %w (logs in %s)", err, filepath.Join(cfg.Out, "logs"))
	}
	if err := cl.Init(ctx); err != nil {
		return nil, err
	}
	log("cluster formed and initialized (%s)", time.Since(began).Round(100*time.Millisecond))

	rec, err := NewRecorder(filepath.Join(cfg.Out, "history.jsonl"), time.Now())
	if err != nil {
		return nil, err
	}
	defer rec.Close()
	e := &env{rec: rec, cl: cl, timeout: cfg.RequestTimeout, seed: cfg.Seed, bound: cfg.MaxStaleness,
		tallies: map[string]*tally{}}
	e.nextProc.Store(int64(cfg.Concurrency))

	// Processes per workload: at least one each, the rest by weight (each
	// slot goes to the workload furthest below its weighted share).
	share := map[string]int{}
	for _, w := range cfg.Workloads {
		share[w] = 1
	}
	for left := cfg.Concurrency - len(cfg.Workloads); left > 0; left-- {
		best := ""
		for _, w := range cfg.Workloads {
			if best == "" || float64(share[w])/float64(weight[w]) < float64(share[best])/float64(weight[best]) {
				best = w
			}
		}
		share[best]++
	}
	e.maxAdds = int(cfg.Rate*cfg.TimeLimit.Seconds()*float64(share[WorkloadSet])/float64(cfg.Concurrency)) + 100

	wls := map[string]workload{}
	var barrierKey string
	for _, name := range cfg.Workloads {
		w := newWorkload(name)
		e.tallies[name] = &tally{}
		if err := w.setup(ctx, e); err != nil {
			return nil, fmt.Errorf("%s setup: %w", name, err)
		}
		wls[name] = w
	}
	if barrierKey, err = e.createKey(ctx, cl.Instance(), "barrier"); err != nil {
		return nil, err
	}

	plan := Plan(cfg.Seed, cfg.TimeLimit, cfg.Nemeses)
	log("seed %d: %d faults planned over %s; workloads %s with %v processes at %.0f ops/s",
		cfg.Seed, len(plan), cfg.TimeLimit, strings.Join(cfg.Workloads, ","), share, cfg.Rate)
	for _, f := range plan {
		log("  plan: %s", f)
	}

	// The workload phase.
	runCtx, stop := context.WithTimeout(ctx, cfg.TimeLimit)
	defer stop()
	start := time.Now()
	tokens := make(chan struct{}, cfg.Concurrency)
	var limiterWG sync.WaitGroup
	limiterWG.Add(1)
	go func() {
		defer limiterWG.Done()
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		t := time.NewTicker(max(interval, 100*time.Microsecond))
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		}
	}()
	var workers, background sync.WaitGroup
	procID := 0
	for _, name := range cfg.Workloads {
		w := wls[name]
		w.background(runCtx, e, &background)
		for i := 0; i < share[name]; i++ {
			p := &proc{id: procID}
			p.rng = e.newProc().rng
			procID++
			workers.Add(1)
			go func() {
				defer workers.Done()
				for {
					select {
					case <-runCtx.Done():
						return
					case <-tokens:
					}
					w.step(e, p)
				}
			}()
		}
	}
	nm := NewNemesis(cl, rec, log)
	var nemesisWG sync.WaitGroup
	nemesisWG.Add(1)
	go func() {
		defer nemesisWG.Done()
		nm.Run(runCtx, start, plan)
	}()
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				log("ops: %s", progress(e, cfg.Workloads))
			}
		}
	}()

	<-runCtx.Done()
	interrupted := ctx.Err() != nil
	log("time limit reached; waiting for operations in flight")
	workers.Wait()
	background.Wait()
	limiterWG.Wait()
	nemesisWG.Wait()
	close(progressDone)
	log("ops: %s", progress(e, cfg.Workloads))
	if interrupted {
		return nil, errors.New("interrupted")
	}

	// Heal, converge, final reads.
	results := &Results{Seed: cfg.Seed, Nodes: cfg.Nodes, TimeLimit: cfg.TimeLimit.String(), Nemesis: nonNil(cfg.Nemeses),
		WorkloadList: cfg.Workloads, MaxStaleness: cfg.MaxStaleness.String(), Rate: cfg.Rate, Concurrency: cfg.Concurrency,
		Command: strings.Join(os.Args, " "), Workloads: map[string]Result{}}
	log("healing every fault")
	nm.HealAll(ctx)
	if err := cl.WaitHealthy(ctx, 90*time.Second); err != nil {
		msg := fmt.Sprintf("the cluster did not recover after healing: %v", err)
		log("%s", msg)
		results.Errors = append(results.Errors, msg)
	} else {
		log("cluster healthy again; final reads")
	}
	index, err := barrierWrite(ctx, e, barrierKey)
	if err != nil {
		results.Errors = append(results.Errors, fmt.Sprintf("final write: %v", err))
	} else if err := waitApplied(ctx, cl, index); err != nil {
		results.Errors = append(results.Errors, fmt.Sprintf("waiting for every node to apply index %d: %v", index, err))
	}
	var finals sync.WaitGroup
	for _, name := range cfg.Workloads {
		finals.Add(1)
		go func(w workload) {
			defer finals.Done()
			w.final(ctx, e, index)
		}(wls[name])
	}
	finals.Wait()
	results.Hash = compareHashes(ctx, cl, index)
	if results.Hash.Valid {
		log("catalogue hash identical on every node at index %d", results.Hash.Index)
	} else {
		log("catalogue hash check failed: %s", results.Hash.Reason)
	}
	cleanup()
	log("nodes stopped, network removed; checking")

	if err := rec.Close(); err != nil {
		return nil, err
	}
	events := nm.Events()
	if err := writeNemesisFile(filepath.Join(cfg.Out, "nemesis.jsonl"), events); err != nil {
		return nil, err
	}
	ops := rec.Ops()
	results.Valid = results.Hash.Valid
	for _, name := range cfg.Workloads {
		r, err := Check(name, ops, CheckOptions{Bound: cfg.MaxStaleness, Nemesis: events,
			VisualizationPath: filepath.Join(cfg.Out, name+".html")})
		if err != nil {
			return nil, fmt.Errorf("%s checker: %w", name, err)
		}
		results.Workloads[name] = r
		results.Valid = results.Valid && r.Valid
		verdict := "valid"
		if !r.Valid {
			verdict = "INVALID: " + r.Reason
		}
		log("%-9s ok=%d fail=%d info=%d: %s", name, r.OK, r.Fail, r.Info, verdict)
	}
	results.Counts = countOps(ops)
	results.Events = events
	for _, n := range cl.AllNodes() {
		if n.crashes > 0 {
			if results.Crashes == nil {
				results.Crashes = map[string]int{}
			}
			results.Crashes[n.ID] = n.crashes
		}
	}
	if len(results.Errors) > 0 {
		results.Valid = false
	}
	if err := Plots(cfg.Out, ops, events); err != nil {
		log("plots: %v", err)
	}
	results.Elapsed = time.Since(began).Round(time.Millisecond).String()
	b, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.Out, "results.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if results.Valid {
		// Data dirs are only worth keeping when something is wrong.
		_ = os.RemoveAll(filepath.Join(cfg.Out, "data"))
	}
	return results, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func progress(e *env, names []string) string {
	var parts []string
	var ok, fail, info int64
	for _, n := range names {
		t := e.tallies[n]
		parts = append(parts, fmt.Sprintf("%s %d/%d/%d", n, t.ok.Load(), t.fail.Load(), t.info.Load()))
		ok += t.ok.Load()
		fail += t.fail.Load()
		info += t.info.Load()
	}
	return fmt.Sprintf("ok=%d fail=%d info=%d (ok/fail/info: %s)", ok, fail, info, strings.Join(parts, ", "))
}

// barrierWrite makes one more write after healing and returns its index:
// once every node has applied it, every node has every acknowledged write.
func barrierWrite(ctx context.Context, e *env, key string) (uint64, error) {
	var index uint64
	err := e.setup(ctx, "final write", func(ctx context.Context, n *Node) error {
		resp, err := callAPI(ctx, n.api, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": "final"}, nil)
		if err != nil {
			return err
		}
		index = resp.Index
		return nil
	})
	return index, err
}

func waitApplied(ctx context.Context, cl *Cluster, index uint64) error {
	return waitFor(ctx, 30*time.Second, func() error {
		for _, n := range cl.Nodes() {
			s, err := cl.Status(ctx, n, false)
			if err != nil {
				return fmt.Errorf("%s: %v", n.ID, err)
			}
			if s.AppliedIndex < index {
				return fmt.Errorf("%s has applied %d", n.ID, s.AppliedIndex)
			}
		}
		return nil
	})
}

// compareHashes waits until every node reports its catalogue hash at one
// applied index (at least minIndex; no client writes run any more) and
// compares them.
func compareHashes(ctx context.Context, cl *Cluster, minIndex uint64) HashResult {
	var last HashResult
	err := waitFor(ctx, 30*time.Second, func() error {
		last = HashResult{Hashes: map[string]string{}}
		byIndex := map[uint64]bool{}
		for _, n := range cl.Nodes() {
			s, err := cl.Status(ctx, n, true)
			if err != nil {
				return fmt.Errorf("%s: %v", n.ID, err)
			}
			last.Hashes[n.ID] = fmt.Sprintf("%s@%d", s.CatalogueHash, s.HashIndex)
			byIndex[s.HashIndex] = true
			last.Index = s.HashIndex
			if s.HashIndex < minIndex {
				return fmt.Errorf("%s: hash at index %d, before the final write %d", n.ID, s.HashIndex, minIndex)
			}
		}
		if len(byIndex) != 1 {
			return fmt.Errorf("nodes report hashes at different indexes: %v", last.Hashes)
		}
		return nil
	})
	if err != nil {
		last.Reason = "could not read every node's hash at one index: " + err.Error()
		return last
	}
	distinct := map[string][]string{}
	for id, h := range last.Hashes {
		hash := strings.SplitN(h, "@", 2)[0]
		last.Hashes[id] = hash
		distinct[hash] = append(distinct[hash], id)
	}
	if len(distinct) == 1 {
		last.Valid = true
		return last
	}
	var groups []string
	for h, ids := range distinct {
		sort.Strings(ids)
		groups = append(groups, fmt.Sprintf("%s: %s", short(h), strings.Join(ids, ",")))
	}
	sort.Strings(groups)
	last.Reason = fmt.Sprintf("replicas differ at index %d: %s", last.Index, strings.Join(groups, "; "))
	return last
}

var (
	emergencyMu      sync.Mutex
	emergencyCleanup func()
)

// SetEmergencyCleanup registers what EmergencyCleanup runs.
func SetEmergencyCleanup(f func()) {
	emergencyMu.Lock()
	emergencyCleanup = f
	emergencyMu.Unlock()
}

// EmergencyCleanup kills the run's processes and removes its network at
// once: for a second SIGINT, when waiting for the orderly end is not wanted.
func EmergencyCleanup() {
	emergencyMu.Lock()
	f := emergencyCleanup
	emergencyMu.Unlock()
	if f != nil {
		f()
	}
}
