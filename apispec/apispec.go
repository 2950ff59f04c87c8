// Package apispec is the declarative table of the API's actions: their
// names, their parameters (which are required, of what type) and one example
// each. The server (package api) builds its action routing from it and hands
// each handler only the parameters declared here; kmsctl builds `kmsctl
// actions`, `kmsctl <Action> --help` and its local checks of a command line
// from it. One table, so the help cannot drift from what the server reads.
//
// It imports nothing of the service (no kms, fsm, store, raft): kmsctl links
// it without linking the server.
package apispec

import (
	"sort"
	"strings"
)

// Type is how a parameter's value is written.
type Type string

// Parameter types.
const (
	String  Type = "string"
	Integer Type = "integer"
	Boolean Type = "boolean" // true or false
	JSON    Type = "JSON"    // JSON text: an object, an array
	Base64  Type = "Base64"
)

// Param is one parameter of an action.
type Param struct {
	Name     string
	Required bool
	Type     Type
	Doc      string // one line
}

// Action is one API action.
type Action struct {
	Name    string
	API     string // the OpenAPI it belongs to: KMS, RAM or STS
	Summary string // one line
	Params  []Param
	// Example is a command line after the action's name, e.g.
	// "--KeyId alias/app --Plaintext aGVsbG8=".
	Example string
}

// Param returns the action's parameter with exactly this name.
func (a Action) Param(name string) (Param, bool) {
	for _, p := range a.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ParamNames returns the names of the action's parameters, in table order.
func (a Action) ParamNames() []string {
	out := make([]string, len(a.Params))
	for i, p := range a.Params {
		out[i] = p.Name
	}
	return out
}

// Required returns the names of the action's required parameters.
func (a Action) Required() []string {
	var out []string
	for _, p := range a.Params {
		if p.Required {
			out = append(out, p.Name)
		}
	}
	return out
}

// Actions returns every action, sorted by name.
func Actions() []Action {
	out := make([]Action, len(table))
	copy(out, table)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the action with exactly this name.
func Lookup(name string) (Action, bool) {
	a, ok := byName[name]
	return a, ok
}

// Names returns every action's name, sorted.
func Names() []string {
	out := make([]string, 0, len(table))
	for _, a := range table {
		out = append(out, a.Name)
	}
	sort.Strings(out)
	return out
}

var byName = func() map[string]Action {
	m := make(map[string]Action, len(table))
	for _, a := range table {
		if _, dup := m[a.Name]; dup {
			panic("apispec: action " + a.Name + " declared twice")
		}
		m[a.Name] = a
	}
	return m
}()

// Suggest returns the candidates a mistyped name most likely meant, best
// first: the same name in other capitals, else the candidates within a
// small edit distance, else those it is a prefix of. Empty when nothing is
// close.
func Suggest(name string, candidates []string) []string {
	for _, c := range candidates {
		if strings.EqualFold(c, name) {
			return []string{c}
		}
	}
	lower := strings.ToLower(name)
	limit := 2
	if len(name) >= 8 {
		limit = 3
	}
	type scored struct {
		name string
		d    int
	}
	var close []scored
	for _, c := range candidates {
		if d := distance(lower, strings.ToLower(c)); d <= limit {
			close = append(close, scored{c, d})
		}
	}
	if len(close) == 0 && len(name) >= 3 {
		for _, c := range candidates {
			lc := strings.ToLower(c)
			if strings.HasPrefix(lc, lower) || strings.Contains(lc, lower) {
				close = append(close, scored{c, len(c) - len(name)})
			}
		}
	}
	sort.SliceStable(close, func(i, j int) bool { return close[i].d < close[j].d })
	out := make([]string, 0, 3)
	for _, s := range close {
		if len(out) == 3 {
			break
		}
		out = append(out, s.name)
	}
	return out
}

// distance is the Levenshtein distance of two strings (bytes; names are
// ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
