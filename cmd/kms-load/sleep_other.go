//go:build !linux

package main

import "time"

// sleepUntil sleeps with Go's timer (see sleep_linux.go for Linux).
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
