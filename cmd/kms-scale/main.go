// Command kms-scale measures raftkms with many keys (issue 16, item 6): it
// starts a real dev kmsd, loads keys through the API (concurrent CreateKey
// clients: every key is a Raft entry, as in production), and at each
// checkpoint reports the node's memory per key and the latency of
// DescribeKey and of ListKeys (first and a deep page); at the end it times
// a snapshot save and restore with kmsctl and a restart to healthy.
//
//	make build && bin/kms-scale --keys 1000000 --checkpoints 1000,100000,1000000
//
// It is a benchmark to run by hand (`make bench-scale`), not a test: a
// million keys take minutes to load on a small machine.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/raftkms/raftkms/client"
)

type options struct {
	kmsd, kmsctl string
	dir          string
	keys         int
	checkpoints  []int
	concurrency  int
	httpPort     int
	kmsdArgs     []string
	samples      int
	reuse        bool
	synthesize   bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	var checkpoints, extra string
	fs := flag.NewFlagSet("kms-scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kmsd, "kmsd", "bin/kmsd", "kmsd binary")
	fs.StringVar(&o.kmsctl, "kmsctl", "bin/kmsctl", "kmsctl binary")
	fs.StringVar(&o.dir, "dir", ".tmp/scale", "working directory (the node's data dir is DIR/node; emptied first)")
	fs.IntVar(&o.keys, "keys", 1000000, "keys to load")
	fs.StringVar(&checkpoints, "checkpoints", "1000,100000,1000000", "key counts at which to measure (each ≤ --keys; --keys is always one)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent CreateKey clients")
	fs.IntVar(&o.httpPort, "port", 9750, "the node's API port (the two next ports are its cluster and gossip ports)")
	fs.StringVar(&extra, "kmsd-args", "", "more kmsd flags, space-separated")
	fs.IntVar(&o.samples, "samples", 300, "requests per latency measurement")
	fs.BoolVar(&o.reuse, "reuse", false, "keep the keys a previous run left in DIR/node: measure from a restart of it, without loading")
	fs.BoolVar(&o.synthesize, "synthesize", false, "build the --keys keys in this process (signed CreateKey entries applied to the node's own state, material wrapped under its root key) and restore them into the node with kmsctl, instead of loading them through the API; then measure save, restart and restore")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, s := range strings.Split(checkpoints, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > o.keys {
			fmt.Fprintf(stderr, "kms-scale: checkpoint %q is not a number from 1 to --keys\n", s)
			return 2
		}
		o.checkpoints = append(o.checkpoints, n)
	}
	if len(o.checkpoints) == 0 || o.checkpoints[len(o.checkpoints)-1] != o.keys {
		o.checkpoints = append(o.checkpoints, o.keys)
	}
	sort.Ints(o.checkpoints)
	o.kmsdArgs = strings.Fields(extra)
	if err := scale(o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "kms-scale:", err)
		return 1
	}
	return 0
}

// node is the kmsd process under test.
type node struct {
	o    options
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func (o options) dataDir() string   { return filepath.Join(o.dir, "node") }
func (o options) credsFile() string { return filepath.Join(o.dataDir(), "credentials.json") }
func (o options) endpoint() string  { return fmt.Sprintf("http://127.0.0.1:%d", o.httpPort) }

func start(o options) (*node, error) {
	log, err := os.OpenFile(filepath.Join(o.dir, "kmsd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--dev", "--data-dir", o.dataDir(),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", o.httpPort),
		"--cluster-addr", fmt.Sprintf("127.0.0.1:%d", o.httpPort+1),
		"--gossip-addr", fmt.Sprintf("127.0.0.1:%d", o.httpPort+2)}, o.kmsdArgs...)
	cmd := exec.Command(o.kmsd, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	n := &node{o: o, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { cmd.Wait(); close(n.done) }()
	return n, nil
}

// waitHealthy polls /v1/health until it answers 200.
func (n *node) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-n.done:
			return fmt.Errorf("kmsd exited (see %s)", n.log.Name())
		default:
		}
		resp, err := http.Get(n.o.endpoint() + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := os.Stat(n.o.credsFile()); err == nil {
					return nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("kmsd not healthy after %s (see %s)", limit, n.log.Name())
}

// fresh is a node started on an empty data dir, healthy, with a client of
// its credentials and one software instance whose key quota holds them all
// (the operator's choice: kmsctl operator instance create --key-quota N).
type fresh struct {
	n        *node
	cr       client.Credentials
	c        *client.Client
	instance string
	rss0     int64 // the node's RSS before the instance
}

func startFresh(o options) (*fresh, error) {
	if err := os.RemoveAll(o.dataDir()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return nil, err
	}
	n, err := start(o)
	if err != nil {
		return nil, err
	}
	fr := &fresh{n: n}
	if err := fr.setUp(o); err != nil {
		fr.close()
		return nil, err
	}
	return fr, nil
}

func (fr *fresh) setUp(o options) error {
	if err := fr.n.waitHealthy(time.Minute); err != nil {
		return err
	}
	var err error
	if fr.cr, err = client.LoadCredentialsFile(o.credsFile()); err != nil {
		return err
	}
	if fr.c, err = client.NewFromCredentials(fr.cr, client.WithTimeout(time.Minute)); err != nil {
		return err
	}
	fr.rss0, _ = fr.n.memory()
	resp, err := fr.c.Do(context.Background(), http.MethodPost, "/v1/operator/instances",
		url.Values{"Type": {"software"}, "Name": {"scale"}, "KeyQuota": {strconv.Itoa(o.keys)}}, nil, nil)
	if err != nil {
		return fmt.Errorf("create the instance: %w", err)
	}
	var inst struct{ InstanceId string }
	err = json.NewDecoder(resp.Body).Decode(&inst)
	resp.Body.Close()
	if err != nil || inst.InstanceId == "" {
		return fmt.Errorf("create the instance: %v", err)
	}
	fr.instance = inst.InstanceId
	return nil
}

// close stops the node unless it stopped already.
func (fr *fresh) close() {
	select {
	case <-fr.n.done:
	default:
		fr.n.stop()
	}
}

func (n *node) stop() error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(2 * time.Minute):
		n.cmd.Process.Kill()
		<-n.done
		return errors.New("kmsd did not stop within 2 minutes of SIGTERM")
	}
	n.log.Close()
	return nil
}

// memory reads the node's resident memory now and at its peak, in bytes.
func (n *node) memory() (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		}
	}
	return rss, hwm
}

type latency struct{ P50, P99 time.Duration }

func measure(samples int, f func(i int) error) (latency, error) {
	ds := make([]time.Duration, 0, samples)
	for i := 0; i < samples; i++ {
		t0 := time.Now()
		if err := f(i); err != nil {
			return latency{}, err
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return latency{ds[len(ds)/2], ds[len(ds)*99/100]}, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func scale(o options, stdout, stderr io.Writer) error {
	if o.reuse {
		return again(o, stdout, stderr)
	}
	if o.synthesize {
		return synthesize(o, stdout, stderr)
	}
	fr, err := startFresh(o)
	if err != nil {
		return err
	}
	defer fr.close()
	n, c, rss0 := fr.n, fr.c, fr.rss0
	ctx := context.Background()
	fmt.Fprintf(stdout, "kms-scale: %d keys, %d clients, node %s (pid %d), empty RSS %s\n", o.keys, o.concurrency, o.endpoint(), n.cmd.Process.Pid, mib(rss0))

	ids := make([]string, 0, o.keys)
	var idsMu sync.Mutex
	loaded := 0
	var loadTime time.Duration
	fmt.Fprintln(stdout, "| keys | load keys/s | RSS | RSS peak | RSS/key | DescribeKey p50 / p99 | ListKeys page 1 p50 / p99 | ListKeys deep page p50 / p99 |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|")
	for _, cp := range o.checkpoints {
		t0 := time.Now()
		if err := load(ctx, c, fr.instance, cp-loaded, o.concurrency, func(id string) {
			idsMu.Lock()
			ids = append(ids, id)
			idsMu.Unlock()
		}, stderr, loaded); err != nil {
			return err
		}
		d := time.Since(t0)
		loadTime += d
		rate := float64(cp-loaded) / d.Seconds()
		loaded = cp
		row, err := readings(ctx, c, n, ids, o.samples)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "| %d | %.0f | %s | %s | %s | %s |\n", cp, rate, mib(row.rss), mib(row.hwm), perKey(row.rss-rss0, cp), row.lat)
	}
	fmt.Fprintf(stdout, "loaded %d keys in %s (%.0f keys/s)\n", loaded, loadTime.Round(time.Second), float64(loaded)/loadTime.Seconds())

	return finish(o, n, c, ids, rss0, stdout, stderr)
}

func perKey(b int64, keys int) string {
	return fmt.Sprintf("%.0f B", float64(b)/float64(keys))
}

func kmsctl(o options, stderr io.Writer, args ...string) error {
	cmd := exec.Command(o.kmsctl, args...)
	cmd.Env = append(os.Environ(), "KMS_CREDENTIALS="+o.credsFile())
	cmd.Stdout, cmd.Stderr = stderr, stderr
	return cmd.Run()
}

type row struct {
	rss, hwm int64
	lat      string
}

// readings measures memory and read latency with the keys loaded so far.
func readings(ctx context.Context, c *client.Client, n *node, ids []string, samples int) (row, error) {
	var r row
	r.rss, r.hwm = n.memory()
	describe, err := measure(samples, func(int) error {
		_, err := c.Call(ctx, "DescribeKey", map[string]string{"KeyId": ids[rand.IntN(len(ids))]})
		return err
	})
	if err != nil {
		return r, fmt.Errorf("DescribeKey: %w", err)
	}
	list := func(page int) func(int) error {
		return func(int) error {
			resp, err := c.Call(ctx, "ListKeys", map[string]string{"PageSize": "100", "PageNumber": strconv.Itoa(page)})
			if err != nil {
				return err
			}
			var out struct{ TotalCount int }
			if err := json.Unmarshal(resp.Body, &out); err != nil || out.TotalCount < len(ids) {
				return fmt.Errorf("ListKeys TotalCount %d, want ≥ %d (%v)", out.TotalCount, len(ids), err)
			}
			return nil
		}
	}
	first, err := measure(samples, list(1))
	if err != nil {
		return r, fmt.Errorf("ListKeys: %w", err)
	}
	deep, err := measure(samples, list(len(ids)/100))
	if err != nil {
		return r, fmt.Errorf("ListKeys: %w", err)
	}
	r.lat = fmt.Sprintf("%s / %s | %s / %s | %s / %s", ms(describe.P50), ms(describe.P99), ms(first.P50), ms(first.P99), ms(deep.P50), ms(deep.P99))
	return r, nil
}

// load creates count keys in the instance with conc concurrent clients,
// each a CreateKey through the API (one Raft entry per key).
func load(ctx context.Context, c *client.Client, instance string, count, conc int, got func(string), stderr io.Writer, base int) error {
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		start, last := time.Now(), int64(0)
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(stderr, "  %d keys (%.0f keys/s now, %.0f on average)\n", int64(base)+d, float64(d-last)/10, float64(d)/time.Since(start).Seconds())
				last = d
			}
		}
	}()
	defer close(stop)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				var resp *client.Response
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					resp, err = c.Call(ctx, "CreateKey", map[string]string{"DKMSInstanceId": instance, "Description": "kms-scale"})
					var apiErr *client.APIError
					if err == nil || !errors.As(err, &apiErr) || apiErr.StatusCode < 500 && apiErr.StatusCode != 429 {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err == nil {
					var out struct{ KeyMetadata struct{ KeyId string } }
					if err = json.Unmarshal(resp.Body, &out); err == nil {
						got(out.KeyMetadata.KeyId)
						done.Add(1)
						continue
					}
				}
				errOnce.Do(func() { firstErr = fmt.Errorf("CreateKey: %w", err) })
				return
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// finish times a snapshot save, a restart and a snapshot restore of the
// loaded node.
func finish(o options, n *node, c *client.Client, ids []string, rss0 int64, stdout, stderr io.Writer) error {
	ctx := context.Background()
	loaded := len(ids)
	// Snapshot save and restore through kmsctl, as an operator does.
	snap := filepath.Join(o.dir, "scale.snap")
	t0 := time.Now()
	if err := kmsctl(o, stderr, "operator", "snapshot", "save", snap); err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	saveTime := time.Since(t0)
	st, _ := os.Stat(snap)
	fmt.Fprintf(stdout, "snapshot save: %s, %s\n", saveTime.Round(10*time.Millisecond), mib(st.Size()))

	// Restart to healthy: SIGTERM, start again on the same data dir.
	if err := n.stop(); err != nil {
		return err
	}
	t0 = time.Now()
	nn, err := start(o)
	if err != nil {
		return err
	}
	*n = *nn
	if err := n.waitHealthy(5 * time.Minute); err != nil {
		return err
	}
	restart := time.Since(t0)
	if _, err := c.Call(ctx, "DescribeKey", map[string]string{"KeyId": ids[len(ids)-1]}); err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	time.Sleep(5 * time.Second) // let the collector settle after the load
	rss, hwm := n.memory()
	fmt.Fprintf(stdout, "restart to healthy: %s; RSS after restart %s (peak %s), %s per key\n", restart.Round(10*time.Millisecond), mib(rss), mib(hwm), perKey(rss-rss0, loaded))

	t0 = time.Now()
	if err := kmsctl(o, stderr, "operator", "snapshot", "restore", "--force", snap); err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	fmt.Fprintf(stdout, "snapshot restore: %s\n", time.Since(t0).Round(10*time.Millisecond))
	if _, err := c.Call(ctx, "DescribeKey", map[string]string{"KeyId": ids[rand.IntN(len(ids))]}); err != nil {
		return fmt.Errorf("after the restore: %w", err)
	}
	rss, hwm = n.memory()
	fmt.Fprintf(stdout, "after the restore: RSS %s (peak %s)\n", mib(rss), mib(hwm))
	return nil
}

// again measures a node a previous run loaded: restart to healthy, then
// the same readings and the snapshot round trip.
func again(o options, stdout, stderr io.Writer) error {
	log, err := os.OpenFile(filepath.Join(o.dir, "kmsd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	log.Close()
	t0 := time.Now()
	n, err := start(o)
	if err != nil {
		return err
	}
	defer func() {
		select {
		case <-n.done:
		default:
			n.stop()
		}
	}()
	if err := n.waitHealthy(5 * time.Minute); err != nil {
		return err
	}
	restart := time.Since(t0)
	cr, err := client.LoadCredentialsFile(o.credsFile())
	if err != nil {
		return err
	}
	c, err := client.NewFromCredentials(cr, client.WithTimeout(time.Minute))
	if err != nil {
		return err
	}
	ctx := context.Background()
	// Key ids to describe: a page from the start, the middle and the end.
	var ids []string
	var total int
	for _, page := range []int{1, -2, -1} {
		pn := page
		if page < 0 {
			pn = max(1, total/100*(-page)/2)
		}
		resp, err := c.Call(ctx, "ListKeys", map[string]string{"PageSize": "100", "PageNumber": strconv.Itoa(pn)})
		if err != nil {
			return err
		}
		var out struct {
			TotalCount int
			Keys       struct{ Key []struct{ KeyId string } }
		}
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			return err
		}
		total = out.TotalCount
		for _, k := range out.Keys.Key {
			ids = append(ids, k.KeyId)
		}
	}
	rss, hwm := n.memory()
	fmt.Fprintf(stdout, "kms-scale --reuse: %d keys; restart to healthy %s; RSS %s (peak %s)\n", total, restart.Round(10*time.Millisecond), mib(rss), mib(hwm))
	all := make([]string, total) // only the count matters below, and ids to describe
	copy(all, ids)
	for i := len(ids); i < total; i++ {
		all[i] = ids[i%len(ids)]
	}
	fmt.Fprintln(stdout, "| keys | load keys/s | RSS | RSS peak | RSS/key | DescribeKey p50 / p99 | ListKeys page 1 p50 / p99 | ListKeys deep page p50 / p99 |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|")
	row, err := readings(ctx, c, n, all, o.samples)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "| %d | - | %s | %s | %s | %s |\n", total, mib(row.rss), mib(row.hwm), perKey(row.rss, total), row.lat)
	return finish(o, n, c, all, 0, stdout, stderr)
}
