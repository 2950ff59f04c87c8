// Command kms-load is raftkms's load generator: it drives one API action
// against one or more nodes with a fixed number of concurrent clients for a
// fixed time, and reports throughput, latency percentiles and errors by code.
//
//	kms-load --credentials creds.json --action Encrypt --concurrency 16 --duration 10s
//
// It talks only to the HTTP API, like any client.
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
	fs.StringVar(&o.action, "action", "Encrypt", "Encrypt, Decrypt, GenerateDataKey, AsymmetricSign, DescribeKey or UpdateKeyDescription (a Raft write)")
	fs.StringVar(&o.keyID, "key", "", "key to use (default: a new key made for the run in the credentials' instance)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run")
	fs.IntVar(&o.size, "size", 64, "plaintext bytes for Encrypt/Decrypt")
	fs.StringVar(&o.signature, "signature", "v3", "v3 or v1")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.concurrency < 1 || o.duration <= 0 || o.size < 1 || o.size > 6144 {
		fmt.Fprintln(stderr, "kms-load: --concurrency ≥ 1, --duration > 0, --size 1–6144")
		return 2
	}
	cr, err := client.ResolveCredentials(o.credentials, "")
	if err != nil {
		fmt.Fprintln(stderr, "kms-load:", err)
		return 2
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.endpoints = append(o.endpoints, e)
		}
	}
	if len(o.endpoints) == 0 {
		o.endpoints = []string{cr.Endpoint}
	}
	res, err := load(o, cr, stderr)
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
	MaxMs       float64        `json:"max_ms"`
}

func (r result) print(w io.Writer) {
	fmt.Fprintf(w, "%s × %d clients for %.1fs against %s\n", r.Action, r.Concurrency, r.Seconds, strings.Join(r.Endpoints, ", "))
	fmt.Fprintf(w, "  ok %d (%.0f/s)  latency p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms\n", r.OK, r.PerSecond, r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	for code, n := range r.Errors {
		fmt.Fprintf(w, "  error %s: %d\n", code, n)
	}
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
		p := map[string]string{"KeySpec": spec, "Description": "kms-load " + time.Now().UTC().Format(time.RFC3339)}
		if cr.InstanceId != "" {
			p["DKMSInstanceId"] = cr.InstanceId
		}
		if spec == "EC_P256" {
			p["KeyUsage"] = "SIGN/VERIFY"
		}
		resp, err := c.Call(ctx, "CreateKey", p)
		if err != nil {
			return nil, fmt.Errorf("create a key for the run (or pass --key): %w", err)
		}
		var out struct {
			KeyMetadata struct{ KeyId, PrimaryKeyVersion string }
		}
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			return nil, err
		}
		key, version = out.KeyMetadata.KeyId, out.KeyMetadata.PrimaryKeyVersion
	}
	raw := make([]byte, o.size*3/4+1)
	rand.Read(raw)
	plaintext := base64.StdEncoding.EncodeToString(raw)[:o.size]
	switch o.action {
	case "Encrypt":
		return func() map[string]string { return map[string]string{"KeyId": key, "Plaintext": plaintext} }, nil
	case "GenerateDataKey":
		return func() map[string]string { return map[string]string{"KeyId": key} }, nil
	case "DescribeKey":
		return func() map[string]string { return map[string]string{"KeyId": key} }, nil
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

func load(o options, cr client.Credentials, stderr io.Writer) (result, error) {
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
	fmt.Fprintf(stderr, "running %s with %d clients for %s ...\n", o.action, o.concurrency, o.duration)
	deadline := time.Now().Add(o.duration)
	var mu sync.Mutex
	var latencies []time.Duration
	errs := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clients[w%len(clients)]
			var mine []time.Duration
			mineErrs := map[string]int{}
			for time.Now().Before(deadline) {
				t0 := time.Now()
				_, err := c.Call(context.Background(), o.action, params())
				d := time.Since(t0)
				if err != nil {
					code := "transport"
					var ae *client.APIError
					if errors.As(err, &ae) {
						code = ae.Code
					}
					mineErrs[code]++
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			for k, v := range mineErrs {
				errs[k] += v
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	return result{
		Action: o.action, Endpoints: o.endpoints, Concurrency: o.concurrency, Seconds: elapsed,
		OK: len(latencies), Errors: errs, PerSecond: float64(len(latencies)) / elapsed,
		P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99), MaxMs: pct(1),
	}, nil
}
