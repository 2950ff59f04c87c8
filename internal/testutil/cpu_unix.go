//go:build unix

package testutil

import (
	"syscall"
	"time"
)

// ProcessCPU is this process's user + system CPU time so far: benchmarks
// report the CPU per operation of everything the process did (other
// goroutines, the runtime, the kernel on its behalf), not only wall time.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
