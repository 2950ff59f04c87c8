// Command kms-load is raftkms's load generator: it drives one API action
// against one or more nodes with a fixed number of concurrent clients for a
// fixed time, and reports throughput, latency percentiles and errors by code.
//
//	kms-load --credentials creds.json --action Encrypt --concurrency 16 --duration 10s
//
// It talks only to the HTTP API, like any client. With --api instance it
// drives the instance API instead, through the official KMS Instance SDK
// (github.com/aliyun/alibabacloud-dkms-gcs-go-sdk): one SDK client per
// concurrent client, authenticated by an application access point's client
// key (kmsctl client-key create) over TLS under the instance CA. With --api
// openbao or --api local-kms it drives one of the systems raftkms is
// measured beside (peers.go), so one generator measures all of them.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/raftkms/raftkms/client"
)

type options struct {
	endpoints   []string
	credentials string
	action      string
	keyID       string
	concurrency int
	duration    time.Duration
	size        int
	signature   string
	jsonOut     bool
	// rate > 0: open loop, this many requests per second at fixed
	// intended send times, latency timed from the intended time.
	rate   int
	warmup time.Duration

	// --api instance: the instance API through the official SDK.
	api               string
	clientKeyFile     string
	clientKeyPassword string
	instanceEndpoint  string
	instanceCA        string

	// --api openbao: the token (peers.go).
	token string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	var endpoints string
	fs := flag.NewFlagSet("kms-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&endpoints, "endpoints", "", "comma-separated API endpoints to spread requests over (default: the credentials' endpoint)")
	fs.StringVar(&o.credentials, "credentials", "", "credentials file (default: KMS_CREDENTIALS / KMS_* variables)")
	fs.StringVar(&o.action, "action", "Encrypt", "Encrypt, Decrypt, GenerateDataKey, AsymmetricSign, DescribeKey, UpdateKeyDescription or CreateKey (Raft writes)")
	fs.StringVar(&o.keyID, "key", "", "key to use (default: a new key made for the run in the credentials' instance)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run")
	fs.IntVar(&o.size, "size", 64, "plaintext bytes for Encrypt/Decrypt")
	fs.StringVar(&o.signature, "signature", "v3", "v3 or v1")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	fs.IntVar(&o.rate, "rate", 0, "open loop: send this many requests per second at fixed times (--concurrency workers serve them), each timed from its intended send time (no coordinated omission); 0: closed loop")
	fs.DurationVar(&o.warmup, "warmup", 0, "run this long before measuring (results discarded)")
	fs.StringVar(&o.api, "api", "openapi", "openapi (the KMS OpenAPI, signed with the access key), instance (the instance API through the official KMS Instance SDK; Encrypt, Decrypt or GenerateDataKey), or a peer measured beside raftkms: openbao (OpenBao's transit engine mounted at transit/) or local-kms (the AWS KMS emulator); a peer takes its URL from --endpoints and drives Encrypt, Decrypt, GenerateDataKey or CreateKey")
	fs.StringVar(&o.clientKeyFile, "client-key-file", "", "--api instance: the SDK's client key file (kmsctl client-key create --out)")
	var passwordFile, cpuProfile, tokenFile string
	fs.StringVar(&tokenFile, "token-file", "", "--api openbao: file holding the token (default: BAO_TOKEN or VAULT_TOKEN)")
	fs.StringVar(&passwordFile, "client-key-password-file", "", "--api instance: file holding the client key's password (one trailing newline is not part of it)")
	fs.StringVar(&o.instanceEndpoint, "instance-endpoint", "", "--api instance: host:port of the instance API (default: the credentials' InstanceEndpoint)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file (go tool pprof; to see what the generator costs the machine it shares with the nodes)")
	fs.StringVar(&o.instanceCA, "instance-ca", "", "--api instance: PEM CA file of the instance API (default: the credentials' InstanceCaFile)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.concurrency < 1 || o.duration <= 0 || o.size < 1 || o.size > 6144 || o.rate < 0 || o.rate > 1_000_000 || o.warmup < 0 {
		fmt.Fprintln(stderr, "kms-load: --concurrency ≥ 1, --duration > 0, --size 1–6144, --rate 0–1000000, --warmup ≥ 0")
		return 2
	}
	var load func(options, io.Writer) (result, error)
	if isPeer(o.api) {
		if o.credentials != "" || passwordFile != "" {
			fmt.Fprintf(stderr, "kms-load: --credentials and --client-key-password-file are not for --api %s\n", o.api)
			return 2
		}
		if err := o.resolvePeer(endpoints, tokenFile); err != nil {
			fmt.Fprintln(stderr, "kms-load:", err)
			return 2
		}
		load = loadPeer
	} else {
		if tokenFile != "" {
			fmt.Fprintln(stderr, "kms-load: --token-file is for --api openbao")
			return 2
		}
		cr, err := client.ResolveCredentials(o.credentials, "")
		if err != nil {
			fmt.Fprintln(stderr, "kms-load:", err)
			return 2
		}
		if err := o.resolveInstance(cr, passwordFile); err != nil {
			fmt.Fprintln(stderr, "kms-load:", err)
			return 2
		}
		o.endpoints = splitEndpoints(endpoints)
		if len(o.endpoints) == 0 {
			o.endpoints = []string{cr.Endpoint}
		}
		load = func(o options, stderr io.Writer) (result, error) { return loadOpenAPI(o, cr, stderr) }
		if o.api == apiInstance {
			load = func(o options, stderr io.Writer) (result, error) { return loadInstance(o, cr, stderr) }
		}
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "kms-load:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "kms-load:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	res, err := load(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "kms-load:", err)
		return 1
	}
	if o.jsonOut {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		res.print(stdout)
	}
	return 0
}

// result is one run's outcome.
type result struct {
	API         string         `json:"api"`
	Action      string         `json:"action"`
	Endpoints   []string       `json:"endpoints"`
	Concurrency int            `json:"concurrency"`
	Seconds     float64        `json:"seconds"`
	OK          int            `json:"ok"`
	Errors      map[string]int `json:"errors"`
	PerSecond   float64        `json:"ok_per_second"`
	P50ms       float64        `json:"p50_ms"`
	P90ms       float64        `json:"p90_ms"`
	P99ms       float64        `json:"p99_ms"`
	P999ms      float64        `json:"p999_ms"`
	MaxMs       float64        `json:"max_ms"`
	// Open loop (--rate) only: the target rate and how late the
	// generator itself sent (its own lag is part of every latency).
	Rate         int     `json:"rate,omitempty"`
	SendLagP99ms float64 `json:"send_lag_p99_ms,omitempty"`
	SendLagMaxMs float64 `json:"send_lag_max_ms,omitempty"`
}

func (r result) print(w io.Writer) {
	action := r.Action
	if r.API == apiInstance {
		action += " (instance API, official SDK)"
	}
	fmt.Fprintf(w, "%s × %d clients for %.1fs against %s\n", action, r.Concurrency, r.Seconds, strings.Join(r.Endpoints, ", "))
	if r.Rate > 0 {
		fmt.Fprintf(w, "  open loop at %d/s; the generator's send lag p99 %.3fms max %.2fms\n", r.Rate, r.SendLagP99ms, r.SendLagMaxMs)
	}
	fmt.Fprintf(w, "  ok %d (%.0f/s)  latency p50 %.2fms  p90 %.2fms  p99 %.2fms  p99.9 %.2fms  max %.2fms\n", r.OK, r.PerSecond, r.P50ms, r.P90ms, r.P99ms, r.P999ms, r.MaxMs)
	for code, n := range r.Errors {
		fmt.Fprintf(w, "  error %s: %d\n", code, n)
	}
}

// createKey makes a key of spec for the run in the credentials' instance and
// returns its id and primary version.
func createKey(ctx context.Context, cr client.Credentials, c *client.Client, spec string) (key, version string, err error) {
	p := map[string]string{"KeySpec": spec, "Description": "kms-load " + time.Now().UTC().Format(time.RFC3339)}
	if cr.InstanceId != "" {
		p["DKMSInstanceId"] = cr.InstanceId
	}
	if spec == "EC_P256" {
		p["KeyUsage"] = "SIGN/VERIFY"
	}
	resp, err := c.Call(ctx, "CreateKey", p)
	if err != nil {
		return "", "", fmt.Errorf("create a key for the run (or pass --key): %w", err)
	}
	var out struct {
		KeyMetadata struct{ KeyId, PrimaryKeyVersion string }
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return "", "", err
	}
	return out.KeyMetadata.KeyId, out.KeyMetadata.PrimaryKeyVersion, nil
}

// plaintextOf returns random bytes and a printable plaintext of size bytes
// made from them.
func plaintextOf(size int) (raw []byte, plaintext string) {
	raw = make([]byte, size*3/4+1)
	rand.Read(raw)
	return raw, base64.StdEncoding.EncodeToString(raw)[:size]
}

// request builds the parameters of one call of the action.
type request func() map[string]string

func prepare(ctx context.Context, o options, cr client.Credentials, c *client.Client) (request, error) {
	spec := "Aliyun_AES_256"
	if o.action == "AsymmetricSign" {
		spec = "EC_P256"
	}
	key, version := o.keyID, ""
	if key == "" {
		var err error
		if key, version, err = createKey(ctx, cr, c, spec); err != nil {
			return nil, err
		}
	}
	raw, plaintext := plaintextOf(o.size)
	switch o.action {
	case "Encrypt":
		return func() map[string]string { return map[string]string{"KeyId": key, "Plaintext": plaintext} }, nil
	case "GenerateDataKey":
		return func() map[string]string { return map[string]string{"KeyId": key} }, nil
	case "DescribeKey":
		return func() map[string]string { return map[string]string{"KeyId": key} }, nil
	case "CreateKey":
		// A Raft write per request that adds a key (an instance holds
		// 1,000: keep runs short).
		return func() map[string]string {
			p := map[string]string{"KeySpec": "Aliyun_AES_256", "Description": "kms-load"}
			if cr.InstanceId != "" {
				p["DKMSInstanceId"] = cr.InstanceId
			}
			return p
		}, nil
	case "UpdateKeyDescription":
		// A Raft write per request: commit on a majority, then apply.
		var n sync.Mutex
		i := 0
		return func() map[string]string {
			n.Lock()
			i++
			d := fmt.Sprintf("kms-load write %d", i)
			n.Unlock()
			return map[string]string{"KeyId": key, "Description": d}
		}, nil
	case "Decrypt":
		resp, err := c.Call(ctx, "Encrypt", map[string]string{"KeyId": key, "Plaintext": plaintext})
		if err != nil {
			return nil, err
		}
		var out struct{ CiphertextBlob string }
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			return nil, err
		}
		return func() map[string]string { return map[string]string{"CiphertextBlob": out.CiphertextBlob} }, nil
	case "AsymmetricSign":
		if version == "" {
			resp, err := c.Call(ctx, "DescribeKey", map[string]string{"KeyId": key})
			if err != nil {
				return nil, err
			}
			var out struct {
				KeyMetadata struct{ PrimaryKeyVersion string }
			}
			json.Unmarshal(resp.Body, &out)
			version = out.KeyMetadata.PrimaryKeyVersion
		}
		digest := sha256.Sum256(raw)
		d := base64.StdEncoding.EncodeToString(digest[:])
		return func() map[string]string {
			return map[string]string{"KeyId": key, "KeyVersionId": version, "Algorithm": "ECDSA_SHA_256", "Digest": d}
		}, nil
	}
	return nil, fmt.Errorf("unknown --action %q", o.action)
}

func loadOpenAPI(o options, cr client.Credentials, stderr io.Writer) (result, error) {
	var clients []*client.Client
	for _, e := range o.endpoints {
		c, err := client.New(e, cr.AccessKeyId, cr.AccessKeySecret, client.WithSignatureVersion(o.signature))
		if err != nil {
			return result{}, err
		}
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	params, err := prepare(ctx, o, cr, clients[0])
	cancel()
	if err != nil {
		return result{}, err
	}
	worker := func(w int) func() error {
		c := clients[w%len(clients)]
		return func() error {
			_, err := c.Call(context.Background(), o.action, params())
			return err
		}
	}
	codeOf := func(err error) string {
		var ae *client.APIError
		if errors.As(err, &ae) {
			return ae.Code
		}
		return "transport"
	}
	res := measure(o, worker, codeOf, stderr)
	res.API, res.Endpoints = apiOpenAPI, o.endpoints
	return res, nil
}

// measure runs o.concurrency workers, each calling its own call function in
// a loop until o.duration has passed, and sums up their latencies and
// errors (by codeOf).
func measure(o options, worker func(w int) func() error, codeOf func(error) string, stderr io.Writer) result {
	calls := make([]func() error, o.concurrency)
	for w := range calls {
		calls[w] = worker(w)
	}
	if o.warmup > 0 {
		fmt.Fprintf(stderr, "warming up for %s ...\n", o.warmup)
		w := o
		w.duration, w.warmup = o.warmup, 0
		if w.rate > 0 {
			measureOpen(w, calls, codeOf)
		} else {
			measureClosed(w, calls, codeOf)
		}
	}
	if o.rate > 0 {
		fmt.Fprintf(stderr, "running %s at %d/s (open loop, %d workers) for %s ...\n", o.action, o.rate, o.concurrency, o.duration)
		return measureOpen(o, calls, codeOf)
	}
	fmt.Fprintf(stderr, "running %s with %d clients for %s ...\n", o.action, o.concurrency, o.duration)
	return measureClosed(o, calls, codeOf)
}

// measureClosed: o.concurrency workers each call in a loop until
// o.duration has passed.
func measureClosed(o options, calls []func() error, codeOf func(error) string) result {
	deadline := time.Now().Add(o.duration)
	t := newTally(0)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func(call func() error) {
			defer wg.Done()
			mine := workerTally{errs: map[string]int{}}
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := call()
				mine.record(time.Since(t0), err, codeOf)
			}
			t.merge(&mine)
		}(calls[w])
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	return summarize(o, t.latencies, t.errs, elapsed)
}

// tally gathers the workers' latencies of answered calls and counts of
// refused ones; each worker keeps its own (workerTally) and merges once.
type tally struct {
	mu        sync.Mutex
	latencies []time.Duration
	errs      map[string]int
}

func newTally(capacity int) *tally {
	return &tally{latencies: make([]time.Duration, 0, capacity), errs: map[string]int{}}
}

func (t *tally) merge(w *workerTally) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latencies = append(t.latencies, w.ok...)
	for k, v := range w.errs {
		t.errs[k] += v
	}
}

type workerTally struct {
	ok   []time.Duration
	errs map[string]int
}

// record notes one call: its latency if it was answered, its error code
// if not.
func (w *workerTally) record(d time.Duration, err error, codeOf func(error) string) {
	if err != nil {
		w.errs[codeOf(err)]++
		return
	}
	w.ok = append(w.ok, d)
}

// percentile returns the p-quantile of sorted durations in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(p*float64(len(sorted)-1))].Microseconds()) / 1000
}

func summarize(o options, latencies []time.Duration, errs map[string]int, elapsed float64) result {
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) float64 { return percentile(latencies, p) }
	return result{
		Action: o.action, Concurrency: o.concurrency, Seconds: elapsed,
		OK: len(latencies), Errors: errs, PerSecond: float64(len(latencies)) / elapsed,
		P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99), P999ms: pct(0.999), MaxMs: pct(1),
	}
}

// splitEndpoints is --endpoints as a list: comma-separated, blanks trimmed,
// empty entries dropped.
func splitEndpoints(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
