// Command kms-jepsen runs raftkms under faults and checks what clients saw
// (see docs/JEPSEN.md):
//
//	kms-jepsen run [--nodes 5] [--time-limit 60s] [--nemesis all] [--workload all]
//	               [--rate 200] [--concurrency 10] [--seed S] [--out DIR]
//	kms-jepsen check --workload register|set|crypto|key-state|secrets FILE
//
// run needs root (network namespaces, nftables). It exits 0 when every
// checker found the history valid, 1 when one did not, 2 on a usage error
// or when the run could not be carried out. check exits 0 (valid) or 1
// (invalid, with the reason on stderr), 2 when the file cannot be read.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/raftkms/raftkms/jepsen"
)

const usage = `kms-jepsen — fault injection and history checking for raftkms.

  kms-jepsen run [flags]                 run a cluster under faults (as root) and check it
  kms-jepsen check --workload W FILE     re-check a stored history.jsonl

Run "kms-jepsen run --help" or "kms-jepsen check --help" for the flags.
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "check":
		return checkCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "kms-jepsen: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parseInterspersed lets flags follow positional arguments
// (check FILE --workload set).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func defaultKmsd() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "kmsd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "bin/kmsd"
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kms-jepsen run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      jepsen.Config
		nemesis  = fs.String("nemesis", "all", "faults: comma list of partition, kill, pause, membership; or all, none")
		workload = fs.String("workload", "all", "workloads: comma list of register, set, crypto, key-state, secrets; or all")
		seed     = fs.Int64("seed", 0, "seed of the fault schedule and client choices (default: from the clock, printed)")
		kmsd     = fs.String("kmsd", defaultKmsd(), "the kmsd binary")
	)
	fs.IntVar(&cfg.Nodes, "nodes", 5, "number of kmsd nodes")
	fs.DurationVar(&cfg.TimeLimit, "time-limit", 60*time.Second, "how long the workloads run under faults")
	fs.Float64Var(&cfg.Rate, "rate", 200, "operations per second, all workloads together")
	fs.IntVar(&cfg.Concurrency, "concurrency", 10, "client processes, all workloads together")
	fs.StringVar(&cfg.Out, "out", "", "output directory (default: jepsen-out/<time>-seed<S>)")
	fs.DurationVar(&cfg.MaxStaleness, "max-staleness", 2*time.Second, "kmsd --max-staleness, and the key-state bound the checker holds it to")
	fs.DurationVar(&cfg.RaftTimeout, "raft-timeout", 500*time.Millisecond, "kmsd --raft-timeout")
	fs.DurationVar(&cfg.DeadServerTimeout, "dead-server-timeout", 8*time.Second, "kmsd --dead-server-timeout (how long a removed node takes to leave Raft)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 3*time.Second, "client timeout of one request (then its outcome is unknown: info)")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "kms-jepsen run: unexpected argument %q\n", pos[0])
		return 2
	}
	if cfg.Nemeses, err = jepsen.ParseList(*nemesis, jepsen.AllNemeses, "nemesis"); err != nil {
		fmt.Fprintln(stderr, "kms-jepsen run:", err)
		return 2
	}
	if cfg.Workloads, err = jepsen.ParseList(*workload, jepsen.AllWorkloads, "workload"); err != nil || len(cfg.Workloads) == 0 {
		if err == nil {
			err = errors.New("--workload none: nothing to run")
		}
		fmt.Fprintln(stderr, "kms-jepsen run:", err)
		return 2
	}
	if cfg.Rate <= 0 || cfg.Concurrency < 1 || cfg.TimeLimit <= 0 || cfg.Nodes < 1 {
		fmt.Fprintln(stderr, "kms-jepsen run: --rate, --concurrency, --time-limit and --nodes must be positive")
		return 2
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1_000_000_000
	}
	cfg.Seed = uint64(*seed)
	if cfg.Out == "" {
		cfg.Out = filepath.Join("jepsen-out", fmt.Sprintf("%s-seed%d", time.Now().Format("20060102-150405"), cfg.Seed))
	}
	cfg.Kmsd, _ = filepath.Abs(*kmsd)
	cfg.Stderr = stderr
	if err := jepsen.CheckPrerequisites(); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 2)
	// SIGHUP (the terminal went away) and SIGPIPE (stderr piped into a
	// reader that quit) would otherwise end the process without cleaning up.
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sig)
	go func() {
		s, ok := <-sig
		if !ok {
			return
		}
		fmt.Fprintf(stderr, "kms-jepsen: %s: stopping, cleaning up (again to clean up at once)\n", s)
		cancel()
		if _, ok := <-sig; ok {
			jepsen.EmergencyCleanup()
			os.Exit(130)
		}
	}()

	fmt.Fprintf(stderr, "kms-jepsen run --seed %d --nodes %d --time-limit %s --nemesis %s --workload %s --rate %g --concurrency %d --out %s\n",
		cfg.Seed, cfg.Nodes, cfg.TimeLimit, orNone(cfg.Nemeses), strings.Join(cfg.Workloads, ","), cfg.Rate, cfg.Concurrency, cfg.Out)
	res, err := jepsen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "kms-jepsen run:", err)
		return 2
	}
	abs, _ := filepath.Abs(cfg.Out)
	if res.Valid {
		fmt.Fprintf(stdout, "VALID: every checker passed (seed %d, %d ok, %d fail, %d info); results in %s\n",
			cfg.Seed, res.OK, res.Fail, res.Info, abs)
		return 0
	}
	fmt.Fprintf(stdout, "INVALID (seed %d); results in %s\n", cfg.Seed, abs)
	for _, name := range cfg.Workloads {
		if r := res.Workloads[name]; !r.Valid {
			fmt.Fprintf(stdout, "  %s: %s\n", name, r.Reason)
		}
	}
	if !res.Hash.Valid {
		fmt.Fprintf(stdout, "  catalogue hash: %s\n", res.Hash.Reason)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(stdout, "  %s\n", e)
	}
	return 1
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kms-jepsen check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workload := fs.String("workload", "", "register, set, crypto, key-state or secrets")
	bound := fs.Duration("max-staleness", 0, "key-state bound (default: max_staleness of results.json beside FILE, else 5s, kmsd's default)")
	html := fs.String("html", "", "register, secrets: write porcupine's visualization here when the history is not linearizable")
	timeout := fs.Duration("timeout", 2*time.Minute, "register, secrets: give up the linearizability search after this long (invalid: no verdict)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kms-jepsen check --workload register|set|crypto|key-state|secrets FILE")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) != 1 || *workload == "" {
		fs.Usage()
		return 2
	}
	path := pos[0]
	ops, err := jepsen.ReadHistoryFile(path)
	if err != nil {
		fmt.Fprintln(stderr, "kms-jepsen check:", err)
		return 2
	}
	opt := jepsen.CheckOptions{Bound: *bound, VisualizationPath: *html, LinearizabilityTimeout: *timeout}
	if opt.Bound == 0 {
		opt.Bound = 5 * time.Second
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "results.json")); err == nil {
			var r struct {
				MaxStaleness string `json:"max_staleness"`
			}
			if json.Unmarshal(b, &r) == nil {
				if d, err := time.ParseDuration(r.MaxStaleness); err == nil && d > 0 {
					opt.Bound = d
				}
			}
		}
	}
	if evs, err := jepsen.ReadNemesisFile(jepsen.NemesisFileBeside(path)); err == nil {
		opt.Nemesis = evs
	}
	res, err := jepsen.Check(*workload, ops, opt)
	if err != nil {
		fmt.Fprintln(stderr, "kms-jepsen check:", err)
		return 2
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Fprintln(stdout, string(b))
	if !res.Valid {
		fmt.Fprintf(stderr, "invalid: %s\n", res.Reason)
		return 1
	}
	fmt.Fprintf(stderr, "valid: %s history of %d ok, %d fail, %d info operations\n", *workload, res.OK, res.Fail, res.Info)
	return 0
}
