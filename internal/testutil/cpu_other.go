//go:build !unix

package testutil

import "time"

// ProcessCPU is not measured here: it reads 0, and so do the benchmarks'
// CPU per operation.
func ProcessCPU() time.Duration { return 0 }
