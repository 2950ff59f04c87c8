package api

import (
	"slices"
	"sync"

	"github.com/raftkms/raftkms/internal/jsonenc"
)

// appendFlatJSON appends, for an answer whose values are all strings
// (Encrypt, Decrypt, GenerateDataKey and many more), exactly what
// json.Encoder with SetEscapeHTML(false) writes for it — members sorted by
// name, the trailing newline — without reflection. ok is false when a
// value is not a string or there are more than 16 members: then use
// encoding/json.
func appendFlatJSON(dst []byte, m map[string]any) (out []byte, ok bool) {
	if len(m) > 16 {
		return dst, false
	}
	var kbuf [16]string
	keys := kbuf[:0]
	for k, v := range m {
		if _, isString := v.(string); !isString {
			return dst, false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, k, false)
		dst = append(dst, ':')
		dst = jsonenc.AppendString(dst, m[k].(string), false)
	}
	return append(dst, '}', '\n'), true
}

// answerBufs recycles the buffers of flat answers (answers are small; a
// buffer that grew past 64 KiB is dropped rather than kept).
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
