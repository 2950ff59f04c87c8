package mpdecode

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raftkms/raftkms/internal/testutil"
)

type record struct {
	ID   string `msgpack:"id"`
	Size int64  `msgpack:"s"`
}

// Refused inputs that claim more than they hold cost each decode about the
// same, however many came before: nothing they made a decoder allocate is
// kept for the next one (with msgpack.Unmarshal each decode of this input
// grew a pooled buffer, the 77th by 840 MB, to the 808 MB claimed, which
// the pool then kept).
func TestUnmarshal_RefusedClaimsDoNotGrowThePool(t *testing.T) {
	// A map whose second key claims a 0x30303030-byte string and holds 24.
	claim := []byte("\x84\xa2id\xa1a\xdb000000000000000000000000")
	var ms runtime.MemStats
	var most uint64
	for i := 0; i < 100; i++ {
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		var r record
		if err := Unmarshal(claim, &r); err == nil {
			t.Fatal("decoded a string its data does not hold")
		}
		runtime.ReadMemStats(&ms)
		most = max(most, ms.TotalAlloc-before)
	}
	if most > 8<<20 {
		t.Fatalf("a refused decode allocated %d MB", most>>20)
	}
}

// It decodes what msgpack.Unmarshal decodes, and a good decode after many
// refused ones still works.
func TestUnmarshal_SameAsMsgpack(t *testing.T) {
	b, err := msgpack.Marshal(&record{ID: "key-1", Size: 42})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		var got, want record
		if err := Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if err := msgpack.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("got %+v, msgpack.Unmarshal gives %+v", got, want)
		}
		_ = Unmarshal([]byte("\x81\xa1s\xdb\xff\xff\xff\xff"), &got)
	}
}

// A slice of structs claiming 2^24 elements in a 10-byte value is refused
// before the decoder makes it (msgpack v5.4.1 made all of it: 1 GiB here,
// 128 GiB for a claim of 2^32-1, which ends the process).
func TestUnmarshal_SliceClaimsAllocateLittle(t *testing.T) {
	type item struct{ A, B, C, D int64 }
	var r struct {
		Items []item `msgpack:"items"`
	}
	for _, claim := range [][]byte{
		[]byte("\x81\xa5items\xdd\x01\x00\x00\x00\x80"),
		[]byte("\x81\xa5items\xdd\xff\xff\xff\xff\x80"),
	} {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		err := Unmarshal(claim, &r)
		runtime.ReadMemStats(&ms)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v, want io.ErrUnexpectedEOF", claim, err)
		}
		if got := ms.TotalAlloc - before; got > 64<<10 {
			t.Errorf("%q: %d bytes allocated", claim, got)
		}
	}
}

// Nesting deeper than MaxDepth is refused before the decoder recurses
// into it (2 M levels overflowed the stack and ended the process); MaxDepth
// levels decode.
func TestUnmarshal_NestingIsBounded(t *testing.T) {
	nested := func(levels int) []byte { return append(bytes.Repeat([]byte{0x91}, levels), 0xc0) }
	var v any
	if err := Unmarshal(nested(2_000_000), &v); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("2 M levels: %v, want ErrTooDeep", err)
	}
	if err := Unmarshal(nested(MaxDepth+1), &v); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("%d levels: %v, want ErrTooDeep", MaxDepth+1, err)
	}
	if err := Unmarshal(nested(MaxDepth), &v); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	// A map's values count as a level too.
	m := append(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, MaxDepth+1), 0xc0)
	if err := Unmarshal(m, &v); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("%d nested maps: %v, want ErrTooDeep", MaxDepth+1, err)
	}
}

// What check lets through, Unmarshal decodes as msgpack.Unmarshal does;
// what it refuses, msgpack.Unmarshal could not have decoded either (a value
// that claims more than the data holds) or is nested deeper than MaxDepth.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range []any{
		map[string]any{"id": "key-1", "n": int64(-3), "f": 1.5, "b": []byte{1, 2}, "l": []any{true, nil, uint64(1 << 40)}},
		[]any{"x", map[string]any{"y": []any{}}},
		record{ID: "a", Size: 1 << 33},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\xd6\xff\x00\x00\x00\x01"))              // a timestamp (fixext4)
	f.Add([]byte("\xc7\x03\x05abc"))                       // ext8
	f.Add([]byte("\x81\xa5items\xdd\xff\xff\xff\xff\x80")) // a claim
	f.Fuzz(func(t *testing.T, data []byte) {
		var got any
		err := Unmarshal(data, &got)
		if cerr := check(data); cerr != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		var want any
		werr := msgpack.Unmarshal(data, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("Unmarshal: %v; msgpack.Unmarshal: %v", err, werr)
		}
		if err == nil && !bytes.Equal(testutil.SortedMsgpack(t, got), testutil.SortedMsgpack(t, want)) {
			t.Fatalf("Unmarshal: %#v; msgpack.Unmarshal: %#v", got, want)
		}
	})
}

// The project's code decodes through Unmarshal, not msgpack.Unmarshal
// (tests may use either).
func TestNoMsgpackUnmarshalInTheProjectsCode(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".tmp" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("msgpack.Unmarshal(")) && !strings.HasSuffix(path, filepath.Join("mpdecode", "mpdecode.go")) {
			t.Errorf("%s calls msgpack.Unmarshal: use mpdecode.Unmarshal", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The walk's cost next to the decode's, on a command-sized record.
func BenchmarkUnmarshal(b *testing.B) {
	type cmd struct {
		KeyID, Description, Spec, Usage, Origin string
		Tags                                    map[string]string
		Versions                                []string
		CreatedAt, Index                        int64
	}
	data, err := msgpack.Marshal(&cmd{KeyID: "key-0123456789abcdef", Description: strings.Repeat("d", 64),
		Spec: "Aliyun_AES_256", Usage: "ENCRYPT/DECRYPT", Origin: "Aliyun_KMS",
		Tags: map[string]string{"team": "payments", "env": "prod"}, Versions: []string{"v-1", "v-2"},
		CreatedAt: 1 << 40, Index: 12345})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.Run("check", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := check(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mpdecode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var c cmd
			if err := Unmarshal(data, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("msgpack", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var c cmd
			if err := msgpack.Unmarshal(data, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
