package fsm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

// declaredConsts parses this package's sources (not its tests) and returns
// the literal values of the constants whose names start with prefix.
func declaredConsts(t *testing.T, prefix string, skip ...string) map[string]int64 {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, prefix) || slices.Contains(skip, id.Name) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.INT {
						t.Fatalf("%s: %s must be an integer literal (an on-disk number)", fset.Position(id.Pos()), id.Name)
					}
					v, err := strconv.ParseInt(lit.Value, 0, 64)
					if err != nil {
						t.Fatal(err)
					}
					out[id.Name] = v
				}
			}
		}
	}
	return out
}

// TestLevels_EveryCommandAndRecordHasALevel: a command type or snapshot
// record type declared anywhere in the package without an entry in
// commandLevels/recordLevels fails here, as does a level above LogLevel or
// a LogLevel that no command or record uses.
func TestLevels_EveryCommandAndRecordHasALevel(t *testing.T) {
	top := 0
	cmds := declaredConsts(t, "Cmd")
	for name, v := range cmds {
		l, ok := CommandLevel(CommandType(v))
		if !ok {
			t.Errorf("%s (%d) has no level: add it to commandLevels in version.go with level LogLevel+1 and bump LogLevel (fsm/DESIGN.md, Versions and upgrades)", name, v)
			continue
		}
		top = max(top, l)
	}
	if len(cmds) != len(commandLevels) {
		t.Errorf("%d command constants declared, %d in commandLevels", len(cmds), len(commandLevels))
	}
	recs := declaredConsts(t, "rec", "recEnd")
	for name, v := range recs {
		l, ok := recordLevels[byte(v)]
		if !ok {
			t.Errorf("record %s (0x%02x) has no level: add it to recordLevels in version.go with level LogLevel+1 and bump LogLevel", name, v)
			continue
		}
		top = max(top, l)
	}
	if len(recs) != len(recordLevels) {
		t.Errorf("%d record constants declared, %d in recordLevels", len(recs), len(recordLevels))
	}
	for typ, l := range commandLevels {
		if l < BaseLevel || l > LogLevel {
			t.Errorf("command %s has level %d, outside %d..LogLevel %d", typ, l, BaseLevel, LogLevel)
		}
	}
	for typ, l := range recordLevels {
		if l < BaseLevel || l > LogLevel {
			t.Errorf("record 0x%02x has level %d, outside %d..LogLevel %d", typ, l, BaseLevel, LogLevel)
		}
	}
	if top != LogLevel {
		t.Errorf("LogLevel is %d but the highest level in use is %d", LogLevel, top)
	}
}

// levelLines renders the levels as testdata/levels.txt holds them.
func levelLines() []string {
	var out []string
	for l := BaseLevel; l <= LogLevel; l++ {
		var cmds, recs []int
		for t, cl := range commandLevels {
			if cl == l {
				cmds = append(cmds, int(t))
			}
		}
		for r, rl := range recordLevels {
			if rl == l {
				recs = append(recs, int(r))
			}
		}
		out = append(out, fmt.Sprintf("level %d: commands %s; records %s", l, ranges(cmds), ranges(recs)))
	}
	return out
}

// ranges prints sorted numbers as "1-3,7" ("-" for none).
func ranges(v []int) string {
	if len(v) == 0 {
		return "-"
	}
	slices.Sort(v)
	var parts []string
	for i := 0; i < len(v); {
		j := i
		for j+1 < len(v) && v[j+1] == v[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(v[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", v[i], v[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// TestLevels_AreFrozen: testdata/levels.txt is the history of the levels,
// one line each. A line never changes: a command added to an existing level
// (forgetting the bump) changes that level's line and fails here, since
// builds of that level in the field cannot apply it. A new level is a new
// line, appended together with the bump.
func TestLevels_AreFrozen(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "levels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var frozen []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			frozen = append(frozen, line)
		}
	}
	now := levelLines()
	for i, line := range frozen {
		if i >= len(now) {
			t.Errorf("testdata/levels.txt has level %d, LogLevel is %d: levels are never removed", i+1, LogLevel)
			continue
		}
		if line != now[i] {
			t.Errorf("level %d changed: it is frozen (builds of it run somewhere and would stop at the new entry).\n"+
				"  testdata/levels.txt: %s\n  version.go:          %s\n"+
				"give the new command or record level LogLevel+1, bump LogLevel, and append its line", i+1, line, now[i])
		}
	}
	for i := len(frozen); i < len(now); i++ {
		t.Errorf("level %d is not in testdata/levels.txt: append\n%s", i+1, now[i])
	}
}

// TestLevels_EveryCommandIsDispatched: a command with a level is one Apply
// knows (it may refuse the empty body, but does not call it unknown).
func TestLevels_EveryCommandIsDispatched(t *testing.T) {
	for typ := range commandLevels {
		if strings.HasPrefix(typ.String(), "CommandType(") {
			t.Errorf("command %d has no String name", uint8(typ))
		}
		func() {
			defer func() {
				if r := recover(); r != nil && strings.Contains(fmt.Sprint(r), "unknown command type") {
					t.Errorf("%s has a level but Apply does not know it: %v", typ, r)
				}
			}()
			f := newTestFSM()
			f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{byte(typ), 0x80}})
		}()
	}
}

func TestEntryLevel_SignedWriteTakesItsInnerCommandsLevel(t *testing.T) {
	fin, _ := Encode(CmdFinalizeLevel, FinalizeLevelCmd{Level: 2})
	key, _ := Encode(CmdCreateKey, CreateKeyCmd{})
	for _, tc := range []struct {
		name  string
		entry []byte
		want  int
	}{
		{"level 1", key, 1},
		{"level 2", fin, 2},
		{"signed level 1", mustSigned(t, key), 1},
		{"signed level 2", mustSigned(t, fin), 2},
	} {
		if got, err := EntryLevel(tc.entry); err != nil || got != tc.want {
			t.Errorf("%s: EntryLevel = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	if _, err := EntryLevel([]byte{127}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("unknown type: %v", err)
	}
}

func mustSigned(t *testing.T, inner []byte) []byte {
	b, err := EncodeSignedWrite(SignedWriteCmd{AccessKeyID: "ak", Nonce: "n"}, inner)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshotRecordTypes lists the record types of a snapshot, in order, and
// the decoded meta record as a generic map.
func snapshotRecordTypes(t *testing.T, data []byte) ([]byte, map[string]any) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(data[len(snapshotMagic)+2:]))
	if _, err := readFrame(r); err != nil {
		t.Fatal(err)
	}
	var types []byte
	var meta map[string]any
	for {
		typ, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		if typ == recEnd {
			return types, meta
		}
		body, err := readFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if typ == recMeta {
			if err := msgpack.Unmarshal(body, &meta); err != nil {
				t.Fatal(err)
			}
		}
		types = append(types, typ)
	}
}

// A catalogue built by level-1 commands persists to records of level 1 only,
// with the meta record an older build wrote (no level field): a level-1
// server reads it. Finalizing adds the level to the meta record; an older
// build's meta record type (without the field) still decodes it.
func TestSnapshot_LevelOneStateWritesOnlyLevelOneRecords(t *testing.T) {
	h := newHarness(t)
	h.init()
	h.createKey("k1", "v1")
	signed := mustSigned(t, mustEncode(t, CmdCreateAlias, AliasCmd{AccountID: acct, Name: "alias/a", KeyID: "k1"}))
	h.index++
	if resp := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: signed}); resp != nil {
		t.Fatal(resp)
	}
	types, meta := snapshotRecordTypes(t, snapshotBytes(t, h.f))
	for _, typ := range types {
		if recordLevels[typ] != BaseLevel {
			t.Errorf("record 0x%02x of level %d in a snapshot of level-1 state", typ, recordLevels[typ])
		}
	}
	if _, ok := meta["level"]; ok {
		t.Errorf("meta record of a never-finalized catalogue has a level: %v", meta)
	}
	if info, err := h.f.VerifySnapshot(bytes.NewReader(snapshotBytes(t, h.f)), VerifyOptions{}); err != nil || info.NeedsLevel != BaseLevel {
		t.Errorf("a level-1 snapshot needs level %d (%v)", info.NeedsLevel, err)
	}

	h.mustApply(CmdFinalizeLevel, FinalizeLevelCmd{Now: 5000, Level: 2})
	h.mustApply(CmdFinalizeLevel, FinalizeLevelCmd{Now: 6000, Level: 1}) // lower: no change
	if got := h.f.FinalizedLevel(); got != 2 {
		t.Fatalf("FinalizedLevel = %d, want 2", got)
	}
	data := snapshotBytes(t, h.f)
	_, meta = snapshotRecordTypes(t, data)
	if fmt.Sprint(meta["level"]) != "2" {
		t.Errorf("meta record after finalize: %v", meta)
	}
	var old struct {
		Initialized bool   `msgpack:"init"`
		RootCheck   []byte `msgpack:"rootcheck"`
	}
	b, _ := msgpack.Marshal(meta)
	if err := msgpack.Unmarshal(b, &old); err != nil || !old.Initialized {
		t.Errorf("an older build's meta record type does not decode the new meta: %v %+v", err, old)
	}
	info, err := h.f.VerifySnapshot(bytes.NewReader(data), VerifyOptions{})
	if err != nil || info.NeedsLevel != 2 {
		t.Fatalf("a finalized snapshot needs level %d (%v), want 2", info.NeedsLevel, err)
	}
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if g.FinalizedLevel() != 2 {
		t.Fatalf("restored FinalizedLevel = %d", g.FinalizedLevel())
	}
	if a, _ := g.Hash(); a != mustHash(h.f) {
		t.Fatal("restored catalogue hashes differently")
	}
}

func TestFinalizeLevel_BeforeInitIsRefused(t *testing.T) {
	h := newHarness(t)
	if err := h.apply(CmdFinalizeLevel, FinalizeLevelCmd{Level: 2}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("finalize before init: %v", err)
	}
}

func mustEncode(t *testing.T, typ CommandType, body any) []byte {
	b, err := Encode(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHash(f *FSM) [32]byte { h, _ := f.Hash(); return h }
