package e2e

import "syscall"

// childProcAttr makes the kernel kill a kmsd when the test binary dies (a
// panic or a -timeout), when t.Cleanup never runs.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
