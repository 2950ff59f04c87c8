package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/raftkms/raftkms/client"
)

// nodeWatch shows, while a long snapshot request waits for the node, what
// the node's /v1/status says it is doing (issue 16: a million keys' save
// or restore spends tens of seconds on the node after or before the
// transfer). On a terminal the line is rewritten in place every second;
// with --progress off a terminal a line is printed every 2 seconds; else
// nothing. Failing to ask (an older node, a node that now holds other
// credentials) shows nothing.
type nodeWatch struct {
	stop  chan struct{}
	ended chan struct{}
	once  sync.Once
}

// How often a nodeWatch asks (tests shorten them).
var watchEvery, watchEveryTTY = 2 * time.Second, time.Second

// watchNode starts a nodeWatch; line turns the node's status into the line
// to show ("" for none yet).
func watchNode(c *client.Client, w io.Writer, always bool, line func(status map[string]any) string) *nodeWatch {
	nw := &nodeWatch{stop: make(chan struct{}), ended: make(chan struct{})}
	tty := isTerminal(w)
	if !tty && !always {
		close(nw.ended)
		return nw
	}
	every := watchEvery
	if tty {
		every = watchEveryTTY
	}
	go func() {
		defer close(nw.ended)
		t := time.NewTicker(every)
		defer t.Stop()
		shown := false
		defer func() {
			if tty && shown {
				fmt.Fprint(w, "\r\x1b[K")
			}
		}()
		for {
			select {
			case <-nw.stop:
				return
			case <-t.C:
			}
			st, err := nodeStatus(c, every)
			if err != nil {
				continue
			}
			l := line(st)
			if l == "" {
				continue
			}
			select {
			case <-nw.stop: // the answer came while asking: show nothing more
				return
			default:
			}
			if tty {
				fmt.Fprintf(w, "\r\x1b[K%s", l)
			} else {
				fmt.Fprintln(w, l)
			}
			shown = true
		}
	}()
	return nw
}

// end stops the watch and waits for it.
func (nw *nodeWatch) end() {
	nw.once.Do(func() { close(nw.stop) })
	<-nw.ended
}

func nodeStatus(c *client.Client, timeout time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := c.DoUnsigned(ctx, http.MethodGet, "/v1/status", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, err
	}
	return st, nil
}

// restorePhases say what a restore's phase (kms.Restore*) means.
var restorePhases = map[string]string{
	"verifying":   "verifies the snapshot (its MAC, then every record)",
	"forwarded":   "has handed the snapshot to the leader, which restores it",
	"storing":     "stores the snapshot in Raft and installs it",
	"replicating": "has installed the snapshot; the followers receive and install it",
}

// restoreLine is what a node's status says of the restore it runs.
func restoreLine(st map[string]any) string {
	r, ok := st["Restore"].(map[string]any)
	if !ok {
		return ""
	}
	phase, _ := r["Phase"].(string)
	what, ok := restorePhases[phase]
	if !ok {
		what = phase
	}
	secs, _ := r["Seconds"].(float64)
	return fmt.Sprintf("node %v %s (%s)", st["NodeId"], what, (time.Duration(secs) * time.Second).Round(time.Second))
}

// saveLine is what a node's status says of the snapshot it writes.
func saveLine(st map[string]any) string {
	r, ok := st["SnapshotSave"].(map[string]any)
	if !ok {
		return ""
	}
	secs, _ := r["Seconds"].(float64)
	b, _ := r["Bytes"].(float64)
	return fmt.Sprintf("node %v writes the snapshot: %s (%s)", st["NodeId"], size(int64(b)), (time.Duration(secs) * time.Second).Round(time.Second))
}
