package audit

import (
	"os"
	"syscall"
)

// syncData forces the file's data and size to stable storage: fdatasync(2)
// skips the timestamps fsync would also write, and keeps everything a
// reader of the file needs (the appended bytes and the new length).
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
