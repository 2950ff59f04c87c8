package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// One Raft log append (a batch of entries the size of a CreateKey) on the
// real disk, as the leader does it: what bounds durable writes per second.
// The wal (the default backend) against bbolt (data dirs made before it).
func BenchmarkLogStore_Append(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(dir string) (raft.LogStore, func() error, error)
	}{
		{"wal", func(dir string) (raft.LogStore, func() error, error) {
			be, err := openUnlocked(dir, LogStoreWAL, 0, hclog.NewNullLogger())
			if err != nil {
				return nil, nil, err
			}
			return be.logs, be.close, nil
		}},
		{"bbolt defaults", openBolt(&bbolt.Options{Timeout: 2 * time.Second})},
		{"bbolt no freelist sync, map freelist", openBolt(&bbolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})},
	} {
		for _, batch := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/batch=%d", tc.name, batch), func(b *testing.B) {
				st, closeFn, err := tc.open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer closeFn()
				data := make([]byte, 700)
				idx := uint64(1)
				logs := make([]*raft.Log, batch)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range logs {
						logs[j] = &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
						idx++
					}
					if err := st.StoreLogs(logs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}

func openBolt(opts *bbolt.Options) func(dir string) (raft.LogStore, func() error, error) {
	return func(dir string) (raft.LogStore, func() error, error) {
		st, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: opts})
		if err != nil {
			return nil, nil, err
		}
		return st, st.Close, nil
	}
}
