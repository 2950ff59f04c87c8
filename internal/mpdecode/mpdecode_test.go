package mpdecode

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
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
