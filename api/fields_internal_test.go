package api

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"github.com/raftkms/raftkms/kms"
)

// Every field the core declares has a name in this face: a new field
// without one would reach clients under its domain name.
func TestParamNames_CoverEveryField(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../kms/fields.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Field" {
				continue
			}
			for i, name := range vs.Names {
				v, err := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				n++
				if _, ok := paramNames[kms.Field(v)]; !ok {
					t.Errorf("kms.%s (%q) has no parameter name in paramNames", name.Name, v)
				}
			}
		}
	}
	if n != len(paramNames) {
		t.Errorf("kms/fields.go declares %d fields, paramNames names %d", n, len(paramNames))
	}
}

// A FieldError wrapped in context keeps the context and changes only the
// parameter's name.
func TestErrorMessage_RenamesAWrappedField(t *testing.T) {
	err := fmtWrap(&kms.FieldError{Field: kms.FieldKeyVersionID, Err: kms.ErrMissingParameter})
	want := `GetPublicKey: missing parameter: the parameter "KeyVersionId" is needed but not provided`
	if got := errorMessage(err); got != want {
		t.Fatalf("errorMessage = %q, want %q", got, want)
	}
}

func fmtWrap(err error) error { return fmt.Errorf("GetPublicKey: %w", err) }
