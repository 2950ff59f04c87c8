//go:build !unix

package api

func allocSlots(n int) ([]uint64, []byte) { return make([]uint64, n), nil }

func freeSlots([]byte) {}
