package store

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/testutil"
)

// Durable writes through a follower of a 3-node cluster in this process
// (real Raft logs on disk, the cluster transport on loopback): what a write
// costs the three nodes together besides the API, with 16 writers. cpu-ns/op
// is the process's CPU per write (all three nodes).
func BenchmarkPropose_ThroughFollower(b *testing.B) {
	c := newTestClusterWith(b, 3, FastTiming(), func(cfg *Config) { cfg.Logger = hclog.NewNullLogger() })
	f := c.follower()
	noop, err := fsm.Encode(fsm.CmdNoop, fsm.NoopCmd{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := f.store.Propose(ctx, noop); err != nil {
		b.Fatal(err)
	}
	testutil.RunParallelCPU(b, 8, func(pb *testing.PB) {
		for pb.Next() {
			if res, err := f.store.Propose(ctx, noop); err != nil || res.Err != nil {
				b.Errorf("propose: %v %v", err, res.Err)
				return
			}
		}
	})
}
