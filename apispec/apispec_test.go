package apispec

import (
	"regexp"
	"slices"
	"testing"
)

// exampleParam is a parameter in an example: a name, or a member of a JSON
// parameter (--ExtendedConfig.CustomData).
var exampleParam = regexp.MustCompile(`(?:^|\s)--([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)`)

// TestTable_EveryActionIsDocumentedAndItsExampleIsValid: a summary, an API,
// every parameter typed and documented once, and an example that uses only
// declared parameters and gives every required one.
func TestTable_EveryActionIsDocumentedAndItsExampleIsValid(t *testing.T) {
	if len(Actions()) < 50 {
		t.Fatalf("only %d actions", len(Actions()))
	}
	for _, a := range Actions() {
		if a.Summary == "" || (a.API != "KMS" && a.API != "RAM" && a.API != "STS") {
			t.Errorf("%s: summary %q, API %q", a.Name, a.Summary, a.API)
		}
		seen := map[string]bool{}
		for _, p := range a.Params {
			if seen[p.Name] {
				t.Errorf("%s: %s declared twice", a.Name, p.Name)
			}
			seen[p.Name] = true
			if p.Doc == "" || p.Type == "" {
				t.Errorf("%s: %s has no doc or type", a.Name, p.Name)
			}
		}
		if len(a.Params) > 0 && a.Example == "" {
			t.Errorf("%s: no example", a.Name)
		}
		var used []string
		for _, m := range exampleParam.FindAllStringSubmatch(a.Example, -1) {
			used = append(used, m[1])
			if _, ok := a.Param(m[1]); !ok {
				t.Errorf("%s: the example uses --%s, which is not declared", a.Name, m[1])
			}
		}
		for _, r := range a.Required() {
			if !slices.Contains(used, r) {
				t.Errorf("%s: the example lacks the required --%s: %s", a.Name, r, a.Example)
			}
		}
	}
}

func TestLookup_IsExactAndCaseSensitive(t *testing.T) {
	if a, ok := Lookup("Encrypt"); !ok || a.Name != "Encrypt" {
		t.Fatal("Encrypt not found")
	}
	for _, name := range []string{"encrypt", "ENCRYPT", "Encrypt ", ""} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found an action", name)
		}
	}
}

func TestSuggest_FindsTheIntendedName(t *testing.T) {
	names := Names()
	for _, tc := range []struct {
		in, want string
	}{
		{"encrypt", "Encrypt"},
		{"Encrpyt", "Encrypt"},
		{"DescribeKeys", "DescribeKey"},
		{"GenerateDataKeyWithoutPlaintxt", "GenerateDataKeyWithoutPlaintext"},
		{"ListAlias", "ListAliases"},
		{"AssumeRol", "AssumeRole"},
	} {
		got := Suggest(tc.in, names)
		if len(got) == 0 || got[0] != tc.want {
			t.Errorf("Suggest(%q) = %v, want %s first", tc.in, got, tc.want)
		}
	}
	if got := Suggest("KeyID", []string{"KeyId", "KeyVersionId"}); len(got) != 1 || got[0] != "KeyId" {
		t.Errorf("Suggest(KeyID) = %v", got)
	}
	if got := Suggest("Zzzzzzzz", names); len(got) != 0 {
		t.Errorf("Suggest of nonsense = %v, want nothing", got)
	}
}
