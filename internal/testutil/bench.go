package testutil

import "testing"

// RunParallelCPU runs body as b.RunParallel does, with parallelism
// goroutines per GOMAXPROCS, and reports allocations and the process's CPU
// per operation (cpu-ns/op: every goroutine's, the runtime's and the
// kernel's on its behalf), which is the cost when wall time per operation
// is bound by waiting (an fsync, a round trip).
func RunParallelCPU(b *testing.B, parallelism int, body func(*testing.PB)) {
	b.Helper()
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	cpu0 := ProcessCPU()
	b.ResetTimer()
	b.RunParallel(body)
	b.StopTimer()
	b.ReportMetric(float64(ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}
