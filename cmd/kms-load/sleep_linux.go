package main

import (
	"syscall"
	"time"
)

// sleepUntil sleeps with nanosleep(2) on the calling (locked) thread, which
// wakes within tens of microseconds where Go's timers may be ~1 ms late.
func sleepUntil(t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		if err := syscall.Nanosleep(&ts, nil); err == nil {
			return
		}
	}
}
