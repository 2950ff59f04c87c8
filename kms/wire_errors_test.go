package kms

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/store"
)

// exportedSentinels parses a package's sources (tests excluded) and returns
// "<pkg>.ErrX" for every exported package-level variable whose value is
// errors.New(...) or fmt.Errorf(...).
func exportedSentinels(t *testing.T, dir, pkg string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
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
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !id.IsExported() || !strings.HasPrefix(id.Name, "Err") || i >= len(vs.Values) {
						continue
					}
					call, ok := vs.Values[i].(*ast.CallExpr)
					if !ok {
						continue
					}
					sel, ok := call.Fun.(*ast.SelectorExpr)
					if !ok {
						continue
					}
					if x, ok := sel.X.(*ast.Ident); ok && ((x.Name == "errors" && sel.Sel.Name == "New") || (x.Name == "fmt" && sel.Sel.Name == "Errorf")) {
						out = append(out, pkg+"."+id.Name)
					}
				}
			}
		}
	}
	return out
}

// tableSentinels parses wire_errors.go and returns the sentinels its table
// names, as "<pkg>.ErrX" (this package's as "kms.ErrX").
func tableSentinels(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "wire_errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		v, ok := n.(*ast.ValueSpec)
		if !ok || len(v.Names) != 1 || v.Names[0].Name != "wireErrors" {
			return true
		}
		ast.Inspect(v, func(n ast.Node) bool {
			switch e := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := e.X.(*ast.Ident); ok {
					out[x.Name+"."+e.Sel.Name] = true
				}
				return false
			case *ast.Ident:
				if strings.HasPrefix(e.Name, "Err") || strings.HasPrefix(e.Name, "err") {
					out["kms."+e.Name] = true
				}
			}
			return true
		})
		return false
	})
	return out
}

// TestWireErrors_EveryExportedSentinelIsInTheTable fails when a package
// gains a sentinel error that the wire table does not name: it would reach
// a forwarding node as bare text, and the API would answer 500.
func TestWireErrors_EveryExportedSentinelIsInTheTable(t *testing.T) {
	inTable := tableSentinels(t)
	var all []string
	for _, p := range []struct{ dir, pkg string }{{"../fsm", "fsm"}, {".", "kms"}, {"../store", "store"}} {
		found := exportedSentinels(t, p.dir, p.pkg)
		if len(found) == 0 {
			t.Fatalf("no sentinel found in %s: the parser is looking in the wrong place", p.dir)
		}
		all = append(all, found...)
	}
	var missing []string
	for _, s := range all {
		if !inTable[s] {
			missing = append(missing, s)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("sentinel errors missing from the wire table (kms/wire_errors.go): %s", strings.Join(missing, ", "))
	}
	if len(all) < 60 {
		t.Fatalf("found only %d sentinels; the parser misses some", len(all))
	}
}

// TestWireErrors_EverySentinelSurvivesTheWire sends every entry of the
// table, bare and wrapped with context, through the encoding a forwarded
// call uses and checks that the other side sees the same sentinel and the
// same message.
func TestWireErrors_EverySentinelSurvivesTheWire(t *testing.T) {
	names := map[string]bool{}
	for _, e := range wireErrors {
		if names[e.name] {
			t.Fatalf("name %q is in the table twice", e.name)
		}
		names[e.name] = true
		for _, err := range []error{e.err, fmt.Errorf("on node n2: %w", e.err)} {
			name, msg := EncodeError(err)
			if name != e.name {
				t.Errorf("%v: encoded as %q, want %q (an earlier entry of the table shadows it)", err, name, e.name)
			}
			back := DecodeError(name, msg)
			if back == nil || back.Error() != err.Error() {
				t.Errorf("%v: message changed on the wire: %v", err, back)
			}
			for _, s := range wireErrors {
				if errors.Is(err, s.err) != errors.Is(back, s.err) {
					t.Errorf("%v: errors.Is(%s) is %v before the wire, %v after", err, s.name, errors.Is(err, s.err), errors.Is(back, s.err))
				}
			}
		}
	}
}

// TestWireErrors_KeyStateKeepsItsState: a state error carries the state
// that refused the operation, which the API maps to its own code.
func TestWireErrors_KeyStateKeepsItsState(t *testing.T) {
	err := fmt.Errorf("apply: %w", fsm.NewKeyStateError("Encrypt", fsm.StatePendingDeletion))
	back := DecodeError(EncodeError(err))
	if back.Error() != err.Error() || !errors.Is(back, fsm.ErrKeyState) {
		t.Fatalf("state error changed on the wire: %v", back)
	}
	if s, ok := fsm.KeyStateOf(back); !ok || s != fsm.StatePendingDeletion {
		t.Fatalf("state lost on the wire: %q %v", s, ok)
	}
}

func TestWireErrors_UnknownAndNil(t *testing.T) {
	if DecodeError(EncodeError(nil)) != nil {
		t.Fatal("nil did not survive the wire")
	}
	plain := errors.New("disk on fire")
	back := DecodeError(EncodeError(plain))
	if back == nil || back.Error() != plain.Error() {
		t.Fatalf("an error outside the table lost its text: %v", back)
	}
	for _, e := range wireErrors {
		if errors.Is(back, e.err) {
			t.Fatalf("an error outside the table decoded as %s", e.name)
		}
	}
	// A name this node does not know (a newer node's) keeps the text.
	if back := DecodeError("SomethingNew", "new refusal"); back == nil || back.Error() != "new refusal" {
		t.Fatalf("unknown name: %v", back)
	}
}

// TestHandleRestore_RefusalCrossesByName: the leader's answer to a
// forwarded restore carries its refusal by name, so the follower retries
// a leadership change (store.ErrNotLeader) instead of guessing from text,
// and a damaged snapshot is fsm.ErrBadSnapshot on the follower too.
func TestHandleRestore_RefusalCrossesByName(t *testing.T) {
	e := newSvcEnv(t)
	for _, tc := range []struct {
		name   string
		leader bool
		body   []byte
		want   error
	}{
		{"not the leader any more", false, []byte("whatever"), store.ErrNotLeader},
		{"a damaged snapshot", true, []byte("not a snapshot"), fsm.ErrBadSnapshot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.store.setLeader(tc.leader)
			defer e.store.setLeader(true)
			raw, err := e.svc.handleRestore(context.Background(), tc.body)
			if err != nil {
				t.Fatalf("the handler failed instead of answering: %v", err)
			}
			var rep restoreReply
			if err := msgpack.Unmarshal(raw, &rep); err != nil {
				t.Fatal(err)
			}
			if got := DecodeError(rep.Err, rep.Msg); !errors.Is(got, tc.want) {
				t.Fatalf("the follower sees %v (name %q), want %v", got, rep.Err, tc.want)
			}
			if tc.want == store.ErrNotLeader && !retryableRestore(DecodeError(rep.Err, rep.Msg)) {
				t.Fatal("a leadership change is not retried")
			}
		})
	}
}

// TestHandleHSM_RefusalCrossesByName: a node asked to run a token
// operation for a domain it does not serve answers "not available here" by
// name, which makes the caller try the domain's next node.
func TestHandleHSM_RefusalCrossesByName(t *testing.T) {
	e := newSvcEnv(t)
	body, err := msgpack.Marshal(&hsmRequest{Op: hsmOpEncrypt, Domain: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.svc.handleHSM(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	var rep hsmReply
	if err := msgpack.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Err == "" || !errors.Is(DecodeError(rep.Err, rep.Msg), errPeerUnavailable) {
		t.Fatalf("reply = %+v, want the peer-unavailable refusal by name", rep)
	}
}

// TestLegacyHSMErrors_MeanTheSameSentinels: while a cluster is upgraded one
// node at a time, an older peer answers with kinds, not names; they mean
// the same sentinels.
func TestLegacyHSMErrors_MeanTheSameSentinels(t *testing.T) {
	for kind, want := range map[string]error{
		"decrypt":     kcrypto.ErrInvalidCiphertext,
		"invalid":     ErrInvalidParameter,
		"unavailable": errPeerUnavailable,
	} {
		name, ok := legacyHSMErrors[kind]
		if !ok || !errors.Is(DecodeError(name, "from an older node"), want) {
			t.Errorf("kind %q does not decode to %v", kind, want)
		}
	}
}
