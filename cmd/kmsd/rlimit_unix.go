//go:build unix

package main

import (
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// raiseOpenFileLimit raises the soft limit on open files to the hard limit:
// every API connection, Raft peer and log file is a descriptor, and the
// default soft limit (often 1024) is far below what --max-connections
// allows. It returns the limit in force afterwards.
func raiseOpenFileLimit(logger hclog.Logger) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn("cannot read the open-file limit", "error", err)
		return 0
	}
	if lim.Cur < lim.Max {
		old := lim.Cur
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			logger.Warn("cannot raise the open-file limit to the hard limit", "soft", old, "hard", lim.Max, "error", err)
			return old
		}
	}
	logger.Info("open-file limit", "soft", lim.Cur, "hard", lim.Max)
	return lim.Cur
}
