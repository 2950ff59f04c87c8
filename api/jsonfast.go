package api

import (
	"encoding/base64"
	"slices"
	"sync"

	"github.com/raftkms/raftkms/internal/jsonenc"
)

// appendFlatJSON appends, for an answer whose values are all strings or
// maps of strings (Encrypt, Decrypt, GenerateDataKey, CreateKey's and
// DescribeKey's KeyMetadata and many more), exactly what json.Encoder with
// SetEscapeHTML(false) writes for it — members sorted by name, the trailing
// newline — without reflection. ok is false (and dst unchanged) when a
// value is anything else, a map is nested deeper, or a map has more than
// maxFlatKeys members: then use encoding/json.
func appendFlatJSON(dst []byte, m map[string]any) (out []byte, ok bool) {
	if dst, ok = appendFlatMap(dst, m, 1); !ok {
		return dst, false
	}
	return append(dst, '\n'), true
}

// maxFlatKeys bounds the members of one map appendFlatJSON writes (a full
// KeyMetadata has 22).
const maxFlatKeys = 32

// appendFlatMap appends m as encoding/json does; depth is how many levels
// of maps of strings may still be nested in it.
func appendFlatMap(dst []byte, m map[string]any, depth int) ([]byte, bool) {
	if len(m) > maxFlatKeys {
		return dst, false
	}
	var kbuf [maxFlatKeys]string
	keys := kbuf[:0]
	for k, v := range m {
		switch v.(type) {
		case string:
		case map[string]any:
			if depth == 0 {
				return dst, false
			}
		default:
			return dst, false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	start := len(dst)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, k, false)
		dst = append(dst, ':')
		switch v := m[k].(type) {
		case string:
			dst = jsonenc.AppendString(dst, v, false)
		case map[string]any:
			if v == nil {
				dst = append(dst, "null"...)
				continue
			}
			var ok bool
			if dst, ok = appendFlatMap(dst, v, depth-1); !ok {
				return dst[:start], false
			}
		}
	}
	return append(dst, '}'), true
}

// answerBufs recycles the buffers of flat answers (answers are small; a
// buffer that grew past 64 KiB is dropped rather than kept).
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// flatAnswer is an answer made only of string members (Encrypt, Decrypt,
// GenerateDataKey, ReEncrypt...), built without a map and written without
// one: exactly what appendFlatJSON writes for the map of the same members
// (sorted by name) with RequestId, so the wire answer does not change.
// Base64 members are encoded straight into the output. A handler gets one
// from its call (call.flatAnswer), so it costs no allocation either.
type flatAnswer struct {
	n int
	m [maxFlatMembers]flatMember
}

const maxFlatMembers = 8

type flatMember struct {
	name  string
	value string
	raw   []byte // written as standard Base64 when isB64
	isB64 bool
}

// str sets member name to value (a name set twice keeps the last value,
// as a map would).
func (a *flatAnswer) str(name, value string) *flatAnswer {
	a.set(flatMember{name: name, value: value})
	return a
}

// b64 sets member name to the standard Base64 of b.
func (a *flatAnswer) b64(name string, b []byte) *flatAnswer {
	a.set(flatMember{name: name, raw: b, isB64: true})
	return a
}

func (a *flatAnswer) set(m flatMember) {
	for i := 0; i < a.n; i++ {
		if a.m[i].name == m.name {
			a.m[i] = m
			return
		}
	}
	if a.n == len(a.m) {
		panic("api: too many members for a flatAnswer")
	}
	a.m[a.n] = m
	a.n++
}

// get is member name's value as a string ("" when absent).
func (a *flatAnswer) get(name string) string {
	for i := 0; i < a.n; i++ {
		if a.m[i].name == name {
			if a.m[i].isB64 {
				return base64.StdEncoding.EncodeToString(a.m[i].raw)
			}
			return a.m[i].value
		}
	}
	return ""
}

// appendJSON appends the answer as appendFlatJSON writes its map.
func (a *flatAnswer) appendJSON(dst []byte) []byte {
	ms := a.m[:a.n]
	// Insertion sort: a handful of members, no allocation.
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].name < ms[j-1].name; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	dst = append(dst, '{')
	for i := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, ms[i].name, false)
		dst = append(dst, ':')
		if ms[i].isB64 {
			// The Base64 alphabet needs no JSON escaping.
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, ms[i].raw)
			dst = append(dst, '"')
			continue
		}
		dst = jsonenc.AppendString(dst, ms[i].value, false)
	}
	return append(dst, '}', '\n')
}

// asMap is the answer as the map it stands for.
func (a *flatAnswer) asMap() map[string]any {
	m := make(map[string]any, a.n)
	for i := 0; i < a.n; i++ {
		m[a.m[i].name] = a.get(a.m[i].name)
	}
	return m
}
