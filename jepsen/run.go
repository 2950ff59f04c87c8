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
//
// It reads as the run does, one phase after the other, like etcd's
// robustness tests: validate, start, run phases, final reads, check, report.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	if err := clearOut(cfg.Out); err != nil {
		return nil, err
	}
	h := newHarness(cfg)
	// Deferred, so that an error, an interrupt or a panic in any phase
	// still stops the nodes and removes the network.
	defer h.close()

	if err := h.start(ctx); err != nil {
		return nil, err
	}
	if err := h.runPhases(ctx); err != nil {
		return nil, err
	}
	h.finalReads(ctx)
	h.stopCluster()
	if err := h.check(); err != nil {
		return nil, err
	}
	return h.report()
}

// validate refuses a run that cannot start (missing tools, no kmsd binary,
// nothing to run) and fills in what the options leave to the harness.
func validate(cfg Config) (Config, error) {
	if err := CheckPrerequisites(); err != nil {
		return cfg, err
	}
	if _, err := os.Stat(cfg.Kmsd); err != nil {
		return cfg, fmt.Errorf("kmsd binary: %w (run make build)", err)
	}
	if len(cfg.Workloads) == 0 {
		return cfg, errors.New("no workload selected")
	}
	if cfg.Nodes < 1 {
		return cfg, errors.New("--nodes must be at least 1")
	}
	if cfg.Concurrency < len(cfg.Workloads) {
		cfg.Concurrency = len(cfg.Workloads)
	}
	return cfg, nil
}

// clearOut creates OUT and removes what an earlier run left in it: its
// files in the same directory would mislead.
func clearOut(out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"history.jsonl", "nemesis.jsonl", "results.json", "latency.png", "throughput.png", "logs", "data",
		"register.html", "set.html", "crypto.html", "key-state.html", "secrets.html"} {
		_ = os.RemoveAll(filepath.Join(out, name))
	}
	return nil
}

// harness is one run's state, handed from phase to phase.
type harness struct {
	cfg   Config
	log   func(string, ...any)
	began time.Time

	// Set by start.
	nw        *Network
	cl        *Cluster
	cleanOnce sync.Once
	rec       *Recorder
	e         *env
	share     map[string]int // client processes per workload
	wls       map[string]workload
	barrier   string // the key of the final write

	// Set by runPhases.
	nm *Nemesis

	// Filled by finalReads, check and report.
	results *Results
	ops     []Op
	events  []NemesisEvent
}

func newHarness(cfg Config) *harness {
	began := time.Now()
	lg := &logger{w: cfg.Stderr, start: began}
	return &harness{cfg: cfg, log: lg.logf, began: began,
		results: &Results{Seed: cfg.Seed, Nodes: cfg.Nodes, TimeLimit: cfg.TimeLimit.String(), Nemesis: nonNil(cfg.Nemeses),
			WorkloadList: cfg.Workloads, MaxStaleness: cfg.MaxStaleness.String(), Rate: cfg.Rate, Concurrency: cfg.Concurrency,
			Command: strings.Join(os.Args, " "), Workloads: map[string]Result{}}}
}

// start brings the cluster up and the clients' keys into it.
func (h *harness) start(ctx context.Context) error {
	if err := h.startCluster(ctx); err != nil {
		return err
	}
	return h.startClients(ctx)
}

// startCluster creates the network and N kmsd nodes that form one cluster
// (--bootstrap-expect N), and initializes it as an operator would.
func (h *harness) startCluster(ctx context.Context) error {
	cfg, log := h.cfg, h.log
	if gone := CleanLeftovers(); len(gone) > 0 {
		log("removed leftovers of earlier runs: %s", strings.Join(gone, ", "))
	}
	nw, err := NewNetwork(ctx, log)
	if err != nil {
		return err
	}
	h.nw = nw
	cl, err := NewCluster(ClusterConfig{Kmsd: cfg.Kmsd, Dir: cfg.Out, RaftTimeout: cfg.RaftTimeout, MaxStaleness: cfg.MaxStaleness,
		DeadServerTimeout: cfg.DeadServerTimeout, RequestTimeout: cfg.RequestTimeout}, nw, log)
	if err != nil {
		return err
	}
	h.cl = cl
	SetEmergencyCleanup(h.cleanup)

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
			return err
		}
	}
	if err := cl.WaitHealthy(ctx, 60*time.Second); err != nil {
		return fmt.Errorf("the cluster did not form: %w (logs in %s)", err, filepath.Join(cfg.Out, "logs"))
	}
	if err := cl.Init(ctx); err != nil {
		return err
	}
	log("cluster formed and initialized (%s)", time.Since(h.began).Round(100*time.Millisecond))
	return nil
}

// startClients opens the history, shares the client processes among the
// workloads and lets each create its keys (not recorded), plus the key of
// the final write.
func (h *harness) startClients(ctx context.Context) error {
	cfg := h.cfg
	rec, err := NewRecorder(filepath.Join(cfg.Out, "history.jsonl"), time.Now())
	if err != nil {
		return err
	}
	h.rec = rec
	e := &env{rec: rec, cl: h.cl, timeout: cfg.RequestTimeout, seed: cfg.Seed, bound: cfg.MaxStaleness,
		tallies: map[string]*tally{}}
	e.nextProc.Store(int64(cfg.Concurrency))
	h.e = e

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
	h.share = share
	e.maxAdds = int(cfg.Rate*cfg.TimeLimit.Seconds()*float64(share[WorkloadSet])/float64(cfg.Concurrency)) + 100

	h.wls = map[string]workload{}
	for _, name := range cfg.Workloads {
		w := newWorkload(name)
		e.tallies[name] = &tally{}
		if err := w.setup(ctx, e); err != nil {
			return fmt.Errorf("%s setup: %w", name, err)
		}
		h.wls[name] = w
	}
	if h.barrier, err = e.createKey(ctx, h.cl.Instance(), "barrier"); err != nil {
		return err
	}
	return nil
}

// runPhases draws the fault schedule from the seed and runs the workloads
// at the rate limit, their background processes, the nemesis and the
// progress lines until the time limit; then it waits for the operations in
// flight. An interrupted ctx ends the run with an error.
func (h *harness) runPhases(ctx context.Context) error {
	cfg, log := h.cfg, h.log
	plan := Plan(cfg.Seed, cfg.TimeLimit, cfg.Nemeses)
	log("seed %d: %d faults planned over %s; workloads %s with %v processes at %.0f ops/s",
		cfg.Seed, len(plan), cfg.TimeLimit, strings.Join(cfg.Workloads, ","), h.share, cfg.Rate)
	for _, f := range plan {
		log("  plan: %s", f)
	}

	runCtx, stop := context.WithTimeout(ctx, cfg.TimeLimit)
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup // the limiter, the clients, the background processes, the nemesis
	tokens := h.pace(runCtx, &wg)
	h.startProcesses(runCtx, tokens, &wg)
	h.nm = NewNemesis(h.cl, h.rec, log)
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.nm.Run(runCtx, start, plan)
	}()
	progressDone := make(chan struct{})
	go h.logProgress(progressDone)

	<-runCtx.Done()
	interrupted := ctx.Err() != nil
	log("time limit reached; waiting for operations in flight")
	wg.Wait()
	close(progressDone)
	log("ops: %s", progress(h.e, cfg.Workloads))
	if interrupted {
		return errors.New("interrupted")
	}
	return nil
}

// pace hands out one token per operation at the configured rate, all
// workloads together, until ctx ends. A token nobody takes is dropped.
func (h *harness) pace(ctx context.Context, wg *sync.WaitGroup) <-chan struct{} {
	tokens := make(chan struct{}, h.cfg.Concurrency)
	wg.Add(1)
	go func() {
		defer wg.Done()
		interval := time.Duration(float64(time.Second) / h.cfg.Rate)
		t := time.NewTicker(max(interval, 100*time.Microsecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		}
	}()
	return tokens
}

// startProcesses starts each workload's background processes and its share
// of client processes; a client runs one operation per token until ctx
// ends.
func (h *harness) startProcesses(ctx context.Context, tokens <-chan struct{}, wg *sync.WaitGroup) {
	procID := 0
	for _, name := range h.cfg.Workloads {
		w := h.wls[name]
		w.background(ctx, h.e, wg)
		for i := 0; i < h.share[name]; i++ {
			p := &proc{id: procID}
			p.rng = h.e.newProc().rng
			procID++
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tokens:
					}
					w.step(h.e, p)
				}
			}()
		}
	}
}

// logProgress logs the operation counts every 5 s until done is closed.
func (h *harness) logProgress(done <-chan struct{}) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			h.log("ops: %s", progress(h.e, h.cfg.Workloads))
		}
	}
}

// finalReads heals every fault, waits until the cluster is healthy, makes
// one more write (index I) and waits until every node applied it, then runs
// each workload's final reads and compares the replicas' catalogue hashes.
// What goes wrong here is recorded in the results, not returned: the
// history so far is still worth checking.
func (h *harness) finalReads(ctx context.Context) {
	log, results := h.log, h.results
	log("healing every fault")
	h.nm.HealAll(ctx)
	if err := h.cl.WaitHealthy(ctx, 90*time.Second); err != nil {
		msg := fmt.Sprintf("the cluster did not recover after healing: %v", err)
		log("%s", msg)
		results.Errors = append(results.Errors, msg)
	} else {
		log("cluster healthy again; final reads")
	}
	index, err := barrierWrite(ctx, h.e, h.barrier)
	if err != nil {
		results.Errors = append(results.Errors, fmt.Sprintf("final write: %v", err))
	} else if err := waitApplied(ctx, h.cl, index); err != nil {
		results.Errors = append(results.Errors, fmt.Sprintf("waiting for every node to apply index %d: %v", index, err))
	}
	var finals sync.WaitGroup
	for _, name := range h.cfg.Workloads {
		finals.Add(1)
		go func(w workload) {
			defer finals.Done()
			w.final(ctx, h.e, index)
		}(h.wls[name])
	}
	finals.Wait()
	results.Hash = compareHashes(ctx, h.cl, index)
	if results.Hash.Valid {
		log("catalogue hash identical on every node at index %d", results.Hash.Index)
	} else {
		log("catalogue hash check failed: %s", results.Hash.Reason)
	}
}

// stopCluster stops every node and removes the network; the checks need
// neither.
func (h *harness) stopCluster() {
	h.cleanup()
	h.log("nodes stopped, network removed; checking")
}

// cleanup stops the nodes and removes the network, once, whoever calls it
// first: the run itself, its deferred close or EmergencyCleanup.
func (h *harness) cleanup() {
	h.cleanOnce.Do(func() {
		if h.cl != nil {
			h.cl.StopAll()
		}
		if h.nw != nil {
			h.nw.Teardown()
		}
	})
}

// close releases whatever the run still holds, whichever phase it ended in.
func (h *harness) close() {
	if h.rec != nil {
		_ = h.rec.Close()
	}
	h.cleanup()
	SetEmergencyCleanup(nil)
}

// check closes the history, stores the nemesis events beside it (so that
// kms-jepsen check can re-check the run) and runs every workload's checker
// on the history. The run is valid when every checker, the catalogue hash
// comparison and the final phase found nothing wrong.
func (h *harness) check() error {
	cfg, log, results := h.cfg, h.log, h.results
	if err := h.rec.Close(); err != nil {
		return err
	}
	h.events = h.nm.Events()
	if err := writeNemesisFile(filepath.Join(cfg.Out, "nemesis.jsonl"), h.events); err != nil {
		return err
	}
	h.ops = h.rec.Ops()
	results.Valid = results.Hash.Valid
	for _, name := range cfg.Workloads {
		r, err := Check(name, h.ops, CheckOptions{Bound: cfg.MaxStaleness, Nemesis: h.events,
			VisualizationPath: filepath.Join(cfg.Out, name+".html")})
		if err != nil {
			return fmt.Errorf("%s checker: %w", name, err)
		}
		results.Workloads[name] = r
		results.Valid = results.Valid && r.Valid
		verdict := "valid"
		if !r.Valid {
			verdict = "INVALID: " + r.Reason
		}
		log("%-9s ok=%d fail=%d info=%d: %s", name, r.OK, r.Fail, r.Info, verdict)
	}
	results.Counts = countOps(h.ops)
	results.Events = h.events
	for _, n := range h.cl.AllNodes() {
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
	return nil
}

// report writes the plots and results.json, and removes the nodes' data
// directories when the run is valid (they are only worth keeping when
// something is wrong).
func (h *harness) report() (*Results, error) {
	cfg, results := h.cfg, h.results
	if err := Plots(cfg.Out, h.ops, h.events); err != nil {
		h.log("plots: %v", err)
	}
	results.Elapsed = time.Since(h.began).Round(time.Millisecond).String()
	b, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.Out, "results.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if results.Valid {
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
