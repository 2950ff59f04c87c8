package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/kms"
)

// params are an action's parameters, from the query string and from a form
// or JSON body. The official SDKs send everything in the query; other
// clients post forms or JSON. A parameter present in both body and query
// takes the body's value.
type params map[string]string

// decodeParams merges the query and the body. Map-valued parameters
// (EncryptionContext, Tags) arrive as JSON text; in a JSON body they may
// also arrive as JSON objects, which are kept as their JSON text.
func decodeParams(r *http.Request, body []byte) (params, error) {
	p, _, err := decodeParamsQuery(r, body)
	return p, err
}

// decodeParamsQuery is decodeParams that also returns the decoded query
// (url.ParseQuery of r.URL.RawQuery), for the signature check to reuse.
func decodeParamsQuery(r *http.Request, body []byte) (params, url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: query string: %v", errBadRequest, err)
	}
	p := make(params, len(q))
	for k, v := range q {
		p[k] = v[0]
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, q, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: form body: %v", errBadRequest, err)
		}
		for k, v := range form {
			p[k] = v[0]
		}
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, nil, fmt.Errorf("%w: JSON body must be an object: %v", errBadRequest, err)
		}
		for k, raw := range m {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				p[k] = s
				continue
			}
			if string(raw) == "null" {
				continue
			}
			p[k] = string(raw) // numbers, booleans, objects, arrays as JSON text
		}
	default:
		return nil, nil, fmt.Errorf("%w: unsupported Content-Type %q (use a query string, a form or JSON)", errBadRequest, ct)
	}
	return p, q, nil
}

// flatQueryMax bounds the parameters parseFlatQuery decodes; a longer
// query goes to url.ParseQuery (which has its own limit and error).
const flatQueryMax = 64

// parseFlatQuery decodes a query string exactly as url.ParseQuery does, but
// into one map of each name's value: what params holds, and, as every name
// came once, all a signature needs of the query too (one map per request
// instead of url.Values and params). ok is false when url.ParseQuery would
// fail or find a name twice, or the query is long: use it then.
func parseFlatQuery(query string) (p params, ok bool) {
	return parseFlatQueryInto(nil, query)
}

// parseFlatQueryInto is parseFlatQuery into into, an empty map (nil: a new
// one), which it returns when ok (and leaves partly filled when not).
func parseFlatQueryInto(into params, query string) (p params, ok bool) {
	n := strings.Count(query, "&") + 1
	if n > flatQueryMax {
		return nil, false
	}
	p = into
	if p == nil {
		p = make(params, n)
	}
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if strings.Contains(pair, ";") {
			return nil, false
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := queryUnescape(k)
		if err != nil {
			return nil, false
		}
		if v, err = queryUnescape(v); err != nil {
			return nil, false
		}
		if _, dup := p[k]; dup {
			return nil, false
		}
		p[k] = v
	}
	return p, true
}

// queryUnescape is url.QueryUnescape, result and error alike
// (FuzzQueryUnescape), copying the runs between escapes whole: the SDKs
// escape every base64 value ('=', '/', '+'), and url.QueryUnescape builds
// such a value a byte at a time: more than half of the query's decoding
// (docs/BENCHMARKS.md).
func queryUnescape(s string) (string, error) {
	i := indexQueryEscape(s)
	if i < 0 {
		return s, nil
	}
	var b strings.Builder
	// Each escape shrinks to one byte (a bad one is url's to refuse).
	b.Grow(max(len(s)-2*strings.Count(s[i:], "%"), 0))
	b.WriteString(s[:i])
	for i < len(s) {
		if s[i] == '+' {
			b.WriteByte(' ')
			i++
		} else {
			if i+2 >= len(s) || unhexQuery(s[i+1]) < 0 || unhexQuery(s[i+2]) < 0 {
				// A bad escape: url's own error, with its text.
				return url.QueryUnescape(s)
			}
			b.WriteByte(byte(unhexQuery(s[i+1])<<4 | unhexQuery(s[i+2])))
			i += 3
		}
		j := indexQueryEscape(s[i:])
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		i += j
	}
	return b.String(), nil
}

// indexQueryEscape is the index of the first '%' or '+' in s, or -1.
func indexQueryEscape(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c == '+' {
			return i
		}
	}
	return -1
}

// unhexQuery is the value of the hex digit c, or -1.
func unhexQuery(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func (p params) str(name string) string { return p[name] }

func (p params) required(name string) (string, error) {
	v := p[name]
	if v == "" {
		return "", fmt.Errorf("%w: the parameter %q is needed but not provided", kms.ErrMissingParameter, name)
	}
	return v, nil
}

// keyOrSecret checks that a tag action names exactly one resource, a key
// (KeyId) or a secret (SecretName), and returns the secret's name when it
// names a secret. CertificateId is not served yet.
func (p params) keyOrSecret() (string, error) {
	key, secret := p["KeyId"], p["SecretName"]
	switch {
	case key != "" && secret != "":
		return "", invalidParam("SecretName", "name either a key (KeyId) or a secret (SecretName), not both")
	case key == "" && secret == "":
		return "", fmt.Errorf("%w: the parameter %q (or SecretName) is needed but not provided", kms.ErrMissingParameter, "KeyId")
	}
	return secret, nil
}

func invalidParam(name, why string) error {
	return fmt.Errorf("%w: the parameter %q is not valid: %s", kms.ErrInvalidParameter, name, why)
}

func (p params) integer(name string) (int, error) {
	v := p[name]
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, invalidParam(name, fmt.Sprintf("%q is not an integer", v))
	}
	return n, nil
}

// optBoolean is nil when the parameter is absent, else its value.
func (p params) optBoolean(name string) (*bool, error) {
	if _, given := p[name]; !given {
		return nil, nil
	}
	v, err := p.boolean(name)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// optInteger is nil when the parameter is absent, else its value.
func (p params) optInteger(name string) (*int, error) {
	if _, given := p[name]; !given {
		return nil, nil
	}
	v, err := p.integer(name)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (p params) boolean(name string) (bool, error) {
	switch strings.ToLower(p[name]) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, invalidParam(name, "must be true or false")
}

func (p params) page() (kms.Page, error) {
	n, err := p.integer("PageNumber")
	if err != nil {
		return kms.Page{}, err
	}
	if p["PageNumber"] != "" && n < 1 {
		return kms.Page{}, invalidParam("PageNumber", "must be 1 or more")
	}
	size, err := p.integer("PageSize")
	if err != nil {
		return kms.Page{}, err
	}
	if p["PageSize"] != "" && (size < 1 || size > 100) {
		return kms.Page{}, invalidParam("PageSize", "must be between 1 and 100")
	}
	return kms.Page{Number: n, Size: size}, nil
}

func (p params) context(name string) (map[string]string, error) {
	m, err := kcrypto.ParseContext(p[name])
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, name)
	}
	return m, nil
}

// base64Param decodes a Base64 parameter (standard alphabet, padding
// optional, URL-safe accepted: clients differ).
func (p params) base64Param(name string) ([]byte, error) {
	v := p[name]
	if v == "" {
		return nil, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b, nil
		}
	}
	return nil, invalidParam(name, "must be Base64")
}

// tags parses Tags: a JSON array of {"TagKey","TagValue"}.
func (p params) tags(name string) ([]kms.Tag, error) {
	v := p[name]
	if v == "" {
		return nil, nil
	}
	var raw []struct {
		TagKey   *string
		TagValue *string
	}
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, invalidParam(name, `must be a JSON array like [{"TagKey":"env","TagValue":"prod"}]`)
	}
	out := make([]kms.Tag, 0, len(raw))
	for _, t := range raw {
		if t.TagKey == nil {
			return nil, invalidParam(name, "every tag needs a TagKey")
		}
		val := ""
		if t.TagValue != nil {
			val = *t.TagValue
		}
		out = append(out, kms.Tag{Key: *t.TagKey, Value: val})
	}
	return out, nil
}

// stringList parses a JSON array of strings (TagKeys).
func (p params) stringList(name string) ([]string, error) {
	v := p[name]
	if v == "" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, invalidParam(name, `must be a JSON array of strings like ["env","team"]`)
	}
	return out, nil
}

// flattened rebuilds the JSON object of parameter name from its members
// sent one per parameter (name.key=value, name.key.sub=value), as the
// official SDK writes a map in the query. Values are strings (the query
// carries no types). ok is false when no member was sent, or when the
// members contradict each other (a.b=1 and a.b.c=2).
func (p params) flattened(name string) (string, bool) {
	// Most requests have no flattened parameter: find that out without
	// allocating.
	has := false
	for k := range p {
		if len(k) > len(name)+1 && k[len(name)] == '.' && strings.HasPrefix(k, name) {
			has = true
			break
		}
	}
	if !has {
		return "", false
	}
	prefix := name + "."
	obj := map[string]any{}
	found := false
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			continue
		}
		found = true
		parts := strings.Split(rest, ".")
		m := obj
		for _, part := range parts[:len(parts)-1] {
			next, exists := m[part]
			if !exists {
				child := map[string]any{}
				m[part] = child
				m = child
				continue
			}
			child, isMap := next.(map[string]any)
			if !isMap {
				return "", false
			}
			m = child
		}
		last := parts[len(parts)-1]
		if _, exists := m[last]; exists {
			return "", false
		}
		m[last] = v
	}
	if !found {
		return "", false
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return "", false
	}
	return string(b), true
}
