package audit

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkms/raftkms/internal/testutil"
)

// BenchmarkAppend measures the cost of one audit line: serial (one request
// at a time, every line pays a whole fsync) and parallel (group commit
// shares fsyncs between concurrent requests), with and without fsync.
// cpu-ns/op is the process's CPU time (user and system, all threads) per
// line: on a shared machine it is steadier than the wall time.
//
//	go test -run '^$' -bench Append -benchtime 2000x ./audit/
func BenchmarkAppend(b *testing.B) {
	for _, p := range []struct {
		name   string
		policy SyncPolicy
	}{{"fsync", SyncEachLine}, {"nofsync", SyncNone}} {
		b.Run(p.name+"/serial", func(b *testing.B) {
			w := benchWriter(b, p.policy, nil)
			r := rec(1)
			b.ResetTimer()
			cpu0 := testutil.ProcessCPU()
			for i := 0; i < b.N; i++ {
				if err := w.Append(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(testutil.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
		b.Run(p.name+"/parallel", func(b *testing.B) {
			reg := prometheus.NewRegistry()
			w := benchWriter(b, p.policy, reg)
			b.SetParallelism(16) // 16 × GOMAXPROCS concurrent requests
			b.ResetTimer()
			cpu0 := testutil.ProcessCPU()
			b.RunParallel(func(pb *testing.PB) {
				r := rec(2)
				for pb.Next() {
					if err := w.Append(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(testutil.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(linesPerSync(b, reg), "lines/sync")
		})
	}
}

func benchWriter(b *testing.B, policy SyncPolicy, reg prometheus.Registerer) *Writer {
	b.Helper()
	w, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{Sync: policy, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	return w
}

// BenchmarkAppendLine is the encoding of one line alone: its members, the
// time, and the SHA-256 of the chain.
func BenchmarkAppendLine(b *testing.B) {
	r := rec(3)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = appendLine(buf[:0], r, []byte(Genesis))
	}
	b.SetBytes(int64(len(buf)))
}

// linesPerSync is the mean of kms_audit_lines_per_sync so far.
func linesPerSync(b *testing.B, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "kms_audit_lines_per_sync" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() > 0 {
				return h.GetSampleSum() / float64(h.GetSampleCount())
			}
		}
	}
	return 0
}
