//go:build !linux

package audit

import "os"

// syncData forces the file to stable storage (fsync; see sync_linux.go).
func syncData(f *os.File) error { return f.Sync() }
