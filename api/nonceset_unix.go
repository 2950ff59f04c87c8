//go:build unix

package api

import (
	"syscall"
	"unsafe"
)

// allocSlots maps n zeroed slots outside the Go heap (anonymous, private);
// the kernel backs a page only once it is written. Should the mapping fail
// (an address-space limit), the slots come from the heap instead.
func allocSlots(n int) ([]uint64, []byte) {
	mem, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]uint64, n), nil
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(mem))), n), mem
}

func freeSlots(mem []byte) {
	if mem != nil {
		syscall.Munmap(mem)
	}
}
