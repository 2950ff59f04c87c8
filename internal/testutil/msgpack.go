package testutil

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// SortedMsgpack encodes v as the reflection encoder does, with map keys
// sorted: equal values give equal bytes (NaNs included), for tests that
// compare encodings or decoded values.
func SortedMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
