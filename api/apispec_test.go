package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/apispec"
)

// paramReaders are the params methods whose first argument names the
// parameter they read.
var paramReaders = map[string]bool{
	"str": true, "required": true, "integer": true, "boolean": true, "context": true,
	"base64Param": true, "tags": true, "stringList": true, "optBoolean": true, "optInteger": true,
	"stringItems": true, "keyValueTags": true,
}

// handlerReads parses the package's sources and returns, for each action of
// handlers(), the parameter names its handler reads, following the calls it
// makes to the package's own functions and methods (by name: an
// over-approximation, which can only make this test stricter).
func handlerReads(t *testing.T) map[string][]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string][]*ast.FuncDecl{}
	var handlersDecl *ast.FuncDecl
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				funcs[fd.Name.Name] = append(funcs[fd.Name.Name], fd)
				if fd.Name.Name == "handlers" {
					handlersDecl = fd
				}
			}
		}
	}
	if handlersDecl == nil {
		t.Fatal("no handlers() in package api")
	}
	isParams := func(e ast.Expr) bool {
		switch x := e.(type) {
		case *ast.SelectorExpr:
			return x.Sel.Name == "p"
		case *ast.Ident:
			return x.Name == "p"
		}
		return false
	}
	literal := func(e ast.Expr) (string, bool) {
		bl, ok := e.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(bl.Value)
		return s, err == nil
	}
	// reads collects the names read in n and in everything it calls.
	var reads func(n ast.Node, seen map[*ast.FuncDecl]bool, out map[string]bool)
	reads = func(n ast.Node, seen map[*ast.FuncDecl]bool, out map[string]bool) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.IndexExpr:
				if isParams(x.X) {
					if s, ok := literal(x.Index); ok {
						out[s] = true
					}
				}
			case *ast.CallExpr:
				var name string
				switch fn := x.Fun.(type) {
				case *ast.SelectorExpr:
					name = fn.Sel.Name
					if paramReaders[name] && isParams(fn.X) && len(x.Args) > 0 {
						if s, ok := literal(x.Args[0]); ok {
							out[s] = true
						}
					}
				case *ast.Ident:
					name = fn.Name
				}
				for _, fd := range funcs[name] {
					if !seen[fd] {
						seen[fd] = true
						reads(fd.Body, seen, out)
					}
				}
			case *ast.SelectorExpr:
				// A method value (s.createKey) handed on rather than called.
				for _, fd := range funcs[x.Sel.Name] {
					if fd.Recv != nil && !seen[fd] {
						seen[fd] = true
						reads(fd.Body, seen, out)
					}
				}
			}
			return true
		})
	}
	result := map[string][]string{}
	ast.Inspect(handlersDecl.Body, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		action, ok := literal(kv.Key)
		if !ok {
			return true
		}
		out := map[string]bool{}
		reads(kv.Value, map[*ast.FuncDecl]bool{}, out)
		names := make([]string, 0, len(out))
		for n := range out {
			names = append(names, n)
		}
		sort.Strings(names)
		result[action] = names
		return false
	})
	return result
}

// TestActionTable_HandlersReadOnlyDeclaredParameters: every parameter a
// handler reads is declared for its action in apispec (the server hands
// handlers nothing else, so an undeclared one would silently read as empty),
// and every declared action has a handler and the reverse.
func TestActionTable_HandlersReadOnlyDeclaredParameters(t *testing.T) {
	reads := handlerReads(t)
	// attachPolicy serves four actions and reads the user's or the role's
	// name depending on which.
	shared := map[string][]string{
		"AttachPolicyToUser": {"RoleName"}, "DetachPolicyFromUser": {"RoleName"},
		"AttachPolicyToRole": {"UserName"}, "DetachPolicyFromRole": {"UserName"},
	}
	for action, names := range reads {
		a, ok := apispec.Lookup(action)
		if !ok {
			t.Errorf("handler for %s, which apispec does not declare", action)
			continue
		}
		for _, n := range names {
			if _, ok := a.Param(n); !ok && !slices.Contains(shared[action], n) {
				t.Errorf("the %s handler reads %q, which apispec does not declare for it (declared: %s)", action, n, strings.Join(a.ParamNames(), ", "))
			}
		}
	}
	for _, a := range apispec.Actions() {
		if _, ok := reads[a.Name]; !ok {
			t.Errorf("apispec declares %s, which has no handler", a.Name)
		}
	}
	if len(reads["Encrypt"]) == 0 || !slices.Contains(reads["ListKeys"], "PageSize") {
		t.Fatalf("the scan found too little (Encrypt reads %v, ListKeys %v): the test is broken", reads["Encrypt"], reads["ListKeys"])
	}
}

// TestActionTable_EveryDeclaredParameterIsRead: the reverse direction — a
// declared parameter no handler reads is a lie in kmsctl's help. DryRun is
// read by the table's wrapper, not by the handlers.
func TestActionTable_EveryDeclaredParameterIsRead(t *testing.T) {
	reads := handlerReads(t)
	for _, a := range apispec.Actions() {
		for _, p := range a.Params {
			if p.Name == "DryRun" || (a.Name == "SetKeyPolicy" && p.Name == "BypassPolicyLockoutSafetyCheck") {
				continue
			}
			if !slices.Contains(reads[a.Name], p.Name) {
				t.Errorf("apispec declares %s for %s, but its handler never reads it", p.Name, a.Name)
			}
		}
	}
}

// TestActionTable_HandlerSeesOnlyDeclaredParameters: the routing hands a
// handler the declared parameters and nothing else.
func TestActionTable_HandlerSeesOnlyDeclaredParameters(t *testing.T) {
	a, _ := apispec.Lookup("DescribeKey")
	var got params
	fn := declaredOnly(a, func(c *call) (any, error) { got = c.p; return nil, nil })
	fn(&call{p: params{"KeyId": "k", "Action": "DescribeKey", "Bogus": "x", "keyid": "y"}})
	if len(got) != 1 || got["KeyId"] != "k" {
		t.Fatalf("handler saw %v, want only KeyId", got)
	}
}
