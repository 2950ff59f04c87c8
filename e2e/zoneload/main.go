// Command zoneload is the client side of the zone-failure tests of the
// Compose deployment (scripts/test-deploy.sh): steady Encrypt and CreateKey
// load through the nodes of the zones that stay up, every outcome recorded
// with its time, then a check of what the issue promises.
//
//	zoneload run   --out DIR --endpoints URL,... --key KEY --instance ID [--ca-file F] [--credentials F]
//	zoneload check --out DIR --since UNIXSECONDS --write-budget 2s [--endpoint URL]
//
// run loads until SIGTERM or SIGINT, writes DIR/ready once every endpoint
// has answered both actions, DIR/resumed once, after the test wrote the
// moment of a fault (Unix seconds) into DIR/since, a CreateKey started after
// it has been acknowledged through every endpoint, and at the end
// DIR/report.json. check reads the
// report: no Encrypt failed, CreateKey was acknowledged through every
// endpoint within --write-budget of --since (the moment of the cut), and
// every key ever acknowledged is there (DescribeKey with linearizable
// consistency: nothing acknowledged was lost). It exits 1 with the reasons
// when one does not hold.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftkms/raftkms/client"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: zoneload run|check [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "check":
		err = check(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: run or check", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "zoneload:", err)
		os.Exit(1)
	}
}

// event is one request's outcome.
type event struct {
	Action   string  `json:"action"`
	Endpoint string  `json:"endpoint"`
	Start    float64 `json:"start"` // Unix seconds
	End      float64 `json:"end"`
	Code     string  `json:"code,omitempty"` // "" when it succeeded
	KeyID    string  `json:"key_id,omitempty"`
}

type report struct {
	Events []event `json:"events"`
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

type common struct {
	credentials, caFile string
}

func (c *common) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.credentials, "credentials", "", "credentials file (kmsctl operator init --out)")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM CA of the nodes' HTTPS certificates")
}

func (c *common) client(endpoint string) (*client.Client, error) {
	cr, err := client.ResolveCredentials(c.credentials, endpoint)
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithTimeout(2 * time.Second)}
	if c.caFile != "" {
		opts = append(opts, client.WithCAFile(c.caFile))
	}
	return client.New(endpoint, cr.AccessKeyId, cr.AccessKeySecret, opts...)
}

func codeOf(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "transport"
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c common
	c.flags(fs)
	out := fs.String("out", "", "directory for ready and report.json")
	endpoints := fs.String("endpoints", "", "comma-separated API endpoints (the surviving zones' nodes)")
	key := fs.String("key", "", "key to encrypt with")
	instance := fs.String("instance", "", "instance the new keys go into")
	encryptEvery := fs.Duration("encrypt-every", 20*time.Millisecond, "each encrypting client starts a request this often")
	writeEvery := fs.Duration("write-every", 100*time.Millisecond, "each writing client starts a CreateKey this often")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *endpoints == "" || *key == "" || *instance == "" {
		return errors.New("run needs --out, --endpoints, --key and --instance")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var mu sync.Mutex
	var events []event
	answered := map[string]bool{} // action + endpoint that succeeded once
	eps := strings.Split(*endpoints, ",")
	wantReady := 2 * len(eps)
	readyWritten, resumedWritten := false, false
	since := 0.0                 // read from DIR/since once it exists
	resumed := map[string]bool{} // endpoints with a CreateKey started after since and acknowledged
	record := func(e event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
		if e.Code != "" {
			return
		}
		if !readyWritten {
			answered[e.Action+" "+e.Endpoint] = true
			if len(answered) == wantReady {
				readyWritten = true
				os.WriteFile(filepath.Join(*out, "ready"), nil, 0o644)
			}
		}
		if since == 0 {
			if b, err := os.ReadFile(filepath.Join(*out, "since")); err == nil {
				fmt.Sscanf(strings.TrimSpace(string(b)), "%g", &since)
			}
		}
		if since > 0 && !resumedWritten && e.Action == "CreateKey" && e.Start >= since {
			resumed[e.Endpoint] = true
			if len(resumed) == len(eps) {
				resumedWritten = true
				os.WriteFile(filepath.Join(*out, "resumed"), nil, 0o644)
			}
		}
	}
	var wg sync.WaitGroup
	for _, ep := range eps {
		cl, err := c.client(ep)
		if err != nil {
			return err
		}
		// Two encrypting clients and one writing client per endpoint, each
		// one request at a time.
		for _, action := range []string{"Encrypt", "Encrypt", "CreateKey"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					p := map[string]string{"KeyId": *key, "Plaintext": "em9uZSBsb2Fk"}
					if action == "CreateKey" {
						p = map[string]string{"DKMSInstanceId": *instance, "Description": fmt.Sprintf("zoneload %s %d", ep, i)}
					}
					t0 := time.Now()
					resp, err := cl.Call(context.Background(), action, p)
					e := event{Action: action, Endpoint: ep, Start: unix(t0), End: unix(time.Now())}
					if err != nil {
						e.Code = codeOf(err)
					} else if action == "CreateKey" {
						var r struct{ KeyMetadata struct{ KeyId string } }
						if json.Unmarshal(resp.Body, &r) == nil {
							e.KeyID = r.KeyMetadata.KeyId
						}
					}
					record(e)
					// Steady load, not saturation: the next request starts
					// one period after this one started (a failed one is
					// retried after at most a period).
					every := *encryptEvery
					if action == "CreateKey" {
						every = *writeEvery
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Until(t0.Add(every))):
					}
				}
			}()
		}
	}
	<-ctx.Done()
	wg.Wait()
	b, err := json.Marshal(report{Events: events})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*out, "report.json"), b, 0o644)
}

func check(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var c common
	c.flags(fs)
	out := fs.String("out", "", "directory holding report.json")
	since := fs.Float64("since", 0, "Unix seconds of the cut")
	budget := fs.Duration("write-budget", 2*time.Second, "CreateKey must be acknowledged through every endpoint within this long after --since")
	endpoint := fs.String("endpoint", "", "endpoint to read the acknowledged keys back through")
	label := fs.String("label", "cut", "what happened at --since, for the messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(*out, "report.json"))
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	var problems []string
	encOK, encFailed := 0, map[string]int{}
	writeOK, writeFailed := 0, map[string]int{}
	firstAck := map[string]float64{} // endpoint -> first CreateKey acknowledged after since
	endpoints := map[string]bool{}
	var acked []string
	for _, e := range r.Events {
		endpoints[e.Endpoint] = true
		switch {
		case e.Action == "Encrypt" && e.Code == "":
			encOK++
		case e.Action == "Encrypt":
			encFailed[e.Code]++
		case e.Code == "":
			writeOK++
			acked = append(acked, e.KeyID)
			if e.Start >= *since {
				if t, ok := firstAck[e.Endpoint]; !ok || e.End < t {
					firstAck[e.Endpoint] = e.End
				}
			}
		default:
			writeFailed[e.Code]++
		}
	}
	fmt.Printf("Encrypt: %d ok, failed %v; CreateKey: %d acknowledged, failed %v\n", encOK, encFailed, writeOK, writeFailed)
	if len(encFailed) > 0 {
		problems = append(problems, fmt.Sprintf("Encrypt failed in the surviving zones: %v", encFailed))
	}
	worst := 0.0
	eps := make([]string, 0, len(endpoints))
	for ep := range endpoints {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	for _, ep := range eps {
		t, ok := firstAck[ep]
		if !ok {
			problems = append(problems, fmt.Sprintf("no CreateKey acknowledged through %s after the %s", ep, *label))
			continue
		}
		gap := t - *since
		fmt.Printf("CreateKey through %s: first acknowledged %.2f s after the %s\n", ep, gap, *label)
		worst = math.Max(worst, gap)
	}
	fmt.Printf("writes resumed through every surviving endpoint %.2f s after the %s (budget %s)\n", worst, *label, *budget)
	if worst > budget.Seconds() {
		problems = append(problems, fmt.Sprintf("writes resumed %.2f s after the %s, over the %s budget", worst, *label, *budget))
	}
	if *endpoint != "" {
		cl, err := c.client(*endpoint)
		if err != nil {
			return err
		}
		lost := 0
		for _, id := range acked {
			_, err := cl.Call(context.Background(), "DescribeKey", map[string]string{"KeyId": id},
				client.WithHeader("X-Kms-Read-Consistency", "linearizable"))
			if err != nil {
				lost++
				if lost <= 5 {
					problems = append(problems, fmt.Sprintf("acknowledged key %s: %v", id, err))
				}
			}
		}
		fmt.Printf("read back %d acknowledged keys through %s: %d missing\n", len(acked), *endpoint, lost)
		if lost > 0 {
			problems = append(problems, fmt.Sprintf("%d acknowledged keys lost", lost))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, strings.Join(problems, "\n"))
		return fmt.Errorf("%d problems", len(problems))
	}
	return nil
}
