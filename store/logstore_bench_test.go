package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// One Raft log append (a batch of entries the size of a CreateKey) on the
// real disk, as the leader does it: what bounds durable writes per second.
func BenchmarkLogStore_Append(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts *bbolt.Options
	}{
		{"bbolt defaults", &bbolt.Options{Timeout: 2 * time.Second}},
		{"no freelist sync, map freelist", &bbolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}},
	} {
		for _, batch := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/batch=%d", tc.name, batch), func(b *testing.B) {
				st, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "raft.db"), BoltOptions: tc.opts})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
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
