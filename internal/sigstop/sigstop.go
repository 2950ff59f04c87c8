// Package sigstop pauses and continues processes and knows when the kernel
// has done it. kill(SIGSTOP) returns before every thread of a Go program
// has stopped, so a process can still answer a packet or apply a Raft entry
// just after Pause's kill returns; fault tests that reason about what a
// paused node saw must wait for the whole thread group to stop.
package sigstop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// pollInterval is how often the thread states are read while waiting.
const pollInterval = time.Millisecond

// Stop sends SIGSTOP to pid and returns once every thread of it is
// stopped, or an error after timeout.
func Stop(pid int, timeout time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("SIGSTOP %d: %w", pid, err)
	}
	return waitThreads(pid, timeout, true)
}

// Continue sends SIGCONT to pid and returns once no thread of it is left
// stopped, or an error after timeout.
func Continue(pid int, timeout time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("SIGCONT %d: %w", pid, err)
	}
	return waitThreads(pid, timeout, false)
}

// waitThreads polls /proc/PID/task/*/stat until every thread is stopped
// (stopped=true) or none is (stopped=false). A process that exits while
// being waited on satisfies either wait: it runs nothing.
func waitThreads(pid int, timeout time.Duration, stopped bool) error {
	deadline := time.Now().Add(timeout)
	for {
		all, none, err := threadStates(pid)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if (stopped && all) || (!stopped && none) {
			return nil
		}
		if time.Now().After(deadline) {
			want := "stop"
			if !stopped {
				want = "continue"
			}
			return fmt.Errorf("process %d did not %s within %s", pid, want, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// threadStates reports whether all threads of pid are stopped and whether
// none is. A zombie or dead thread counts as stopped.
func threadStates(pid int) (all, none bool, err error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil {
		return false, false, err
	}
	if len(tasks) == 0 {
		return false, false, os.ErrNotExist
	}
	all, none = true, true
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited between Glob and ReadFile
		}
		if err != nil {
			return false, false, err
		}
		st, ok := state(string(b))
		if !ok {
			return false, false, fmt.Errorf("%s: unexpected format", f)
		}
		halted := st == 'T' || st == 't' || st == 'Z' || st == 'X'
		all = all && halted
		none = none && !(st == 'T' || st == 't')
	}
	return all, none, nil
}

// state is the one-letter state in a /proc stat line: the field after the
// command name, which is in parentheses and may itself hold ") ".
func state(stat string) (byte, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, false
	}
	return stat[i+2], true
}
