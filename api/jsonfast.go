package api

import (
	"slices"
	"sync"
	"unicode/utf8"
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
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[k].(string))
	}
	return append(dst, '}', '\n'), true
}

// appendJSONString is encoding/json's string encoding with HTML escaping
// off: '"', '\\' and control characters escaped (\b \f \n \r \t by name),
// invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028 and \u2029.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// answerBufs recycles the buffers of flat answers (answers are small; a
// buffer that grew past 64 KiB is dropped rather than kept).
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
