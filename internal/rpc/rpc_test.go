package rpc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMethods_NamesAreUniqueAndFitAFrame(t *testing.T) {
	seen := map[Method]bool{}
	for _, m := range Methods {
		if seen[m] {
			t.Errorf("method %q listed twice", m)
		}
		seen[m] = true
		if len(m) == 0 || len(m) > 255 { // transport's limit on a method name
			t.Errorf("method %q: %d bytes", m, len(m))
		}
	}
}

// TestMethods_NoPackageSpellsAMethodItself walks the module's sources (tests
// excluded) and fails where a method is named outside this package: a
// string literal equal to a method of the registry, or a string literal
// given as the method of a Handle or Call on the cluster transport.
func TestMethods_NoPackageSpellsAMethodItself(t *testing.T) {
	root := filepath.Join("..", "..")
	known := map[string]bool{}
	for _, m := range Methods {
		known[m] = true
	}
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules":
				return filepath.SkipDir
			}
			if abs, _ := filepath.Abs(path); abs == self {
				return filepath.SkipDir // this package
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		files++
		usesTransport := false
		for _, imp := range f.Imports {
			if strings.HasSuffix(imp.Path.Value, `/transport"`) {
				usesTransport = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch e := n.(type) {
			case *ast.BasicLit:
				if e.Kind == token.STRING {
					if s, err := strconv.Unquote(e.Value); err == nil && known[s] {
						t.Errorf("%s: spells the method %q; use the constant of internal/rpc", path, s)
					}
				}
			case *ast.CallExpr:
				sel, ok := e.Fun.(*ast.SelectorExpr)
				if !ok || !usesTransport || strings.HasPrefix(filepath.ToSlash(path), "../../transport/") {
					return true
				}
				arg := -1
				switch {
				case sel.Sel.Name == "Handle" && len(e.Args) == 2:
					arg = 0
				case sel.Sel.Name == "Call" && len(e.Args) == 4:
					arg = 2
				}
				if arg >= 0 {
					if lit, ok := e.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING && !strings.HasPrefix(lit.Value, `"/`) {
						t.Errorf("%s: names the RPC method %s outside internal/rpc", path, lit.Value)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("walked only %d files: the walk does not start at the module root", files)
	}
}
