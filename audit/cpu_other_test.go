//go:build !unix

package audit

// processCPU is not measured here: the benchmarks' cpu-ns/op reads 0.
func processCPU() int64 { return 0 }
