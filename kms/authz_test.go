package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/raftkms/raftkms/fsm"
)

// pathologicalPattern made the old backtracking matcher run for longer
// than any request may: every * tries every split of the rest of the ARN.
const pathologicalPattern = "acs:kms:*?*?*?*?*?*?*?*?*?*?*?*?*?*?#"

func TestMatchGlob(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "acs:kms:cn:1:key/x", true},
		{"?", "", false},
		{"?", "é", true}, // one character, not one byte
		{"??", "é", false},
		{"kms:*", "kms:Encrypt", true},
		{"kms:Generate*", "kms:GenerateDataKey", true},
		{"kms:Generate*", "kms:Encrypt", false},
		{"kms:*Key", "kms:GenerateDataKey", true},
		{"kms:*Key", "kms:GenerateDataKeys", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*b?c", "abbxc", true},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa", false},
		{"acs:kms:*:*:key/*", "acs:kms:local:123:key/abc", true},
		{"acs:kms:*:*:key/*", "acs:kms:local:123:alias/abc", false},
		{pathologicalPattern, "acs:kms:local:1234567890123456:key/0f6a5f0e-2b51-4c1e-9f3a-4a3c2b1d0e9f", false},
		{pathologicalPattern, "acs:kms:aaaaaaaaaaaaaaaaaaaaaaaaaaaaa#", true},
	}
	for _, c := range cases {
		if got := matchGlob(c.pattern, c.s); got != c.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// referenceGlob is the plain recursive definition of a policy pattern,
// exponential in the worst case: only for checking matchGlob on short
// inputs.
func referenceGlob(p, s []rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if referenceGlob(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return len(s) > 0 && referenceGlob(p[1:], s[1:])
	default:
		return len(s) > 0 && s[0] == p[0] && referenceGlob(p[1:], s[1:])
	}
}

func FuzzMatchGlob(f *testing.F) {
	for _, seed := range [][2]string{
		{"a*b?c", "axbyc"}, {"*", ""}, {"?*?", "ab"}, {"**a", "ba"}, {"*a*a*b", "aaaab"}, {"k?s:*", "kms:Encrypt"}, {"é?", "éé"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return
		}
		p, r := []rune(pattern), []rune(s)
		if len(p) > 12 || len(r) > 16 {
			return // the reference is exponential
		}
		if got, want := matchGlob(pattern, s), referenceGlob(p, r); got != want {
			t.Fatalf("matchGlob(%q, %q) = %v, reference says %v", pattern, s, got, want)
		}
	})
}

// anyResource takes "*" for a match without building the ARN, as
// matchGlob("*", arn) is true for every ARN; any other pattern is matched
// against the ARN (which authorizeResource builds once).
func TestAnyResource_StarNeedsNoARN(t *testing.T) {
	for _, s := range []string{"", "a", "acs:kms:cn:123:key/k", "é\xff*?", strings.Repeat("x?*", 50)} {
		if !matchGlob("*", s) {
			t.Fatalf("matchGlob(*, %q) is false", s)
		}
	}
	built := 0
	arn := func() string { built++; return "acs:kms:cn:123:key/k" }
	ev := newEvaluation(context.Background())
	if !ev.anyResource([]string{"*"}, arn) || built != 0 {
		t.Fatalf("\"*\": built the ARN %d times", built)
	}
	if ev.anyResource([]string{"acs:kms:*:999:*", "acs:kms:eu:*"}, arn) || built != 2 {
		t.Fatalf("no match expected; ARN built %d times", built)
	}
	if !ev.anyResource([]string{"acs:kms:*:123:key/*"}, arn) {
		t.Fatal("the ARN's own pattern does not match")
	}
}

// setPolicyUnchecked stores a key policy through the FSM directly, as a
// catalogue written before validation existed (or restored from such a
// snapshot) would hold it.
func (e *svcEnv) setPolicyUnchecked(t *testing.T, keyID, doc string) {
	t.Helper()
	cmd, err := fsm.Encode(fsm.CmdSetKeyPolicy, fsm.KeyPolicyCmd{Now: e.svc.nowMillis(), KeyID: keyID, Policy: doc})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.store.Propose(context.Background(), cmd); err != nil || res.Err != nil {
		t.Fatalf("storing the policy: %v %v", err, res.Err)
	}
}

// A key policy whose pattern made the old matcher backtrack for hours is
// evaluated in linear time: a request naming the key answers in well
// under 10 ms, whether the pattern came through SetKeyPolicy or not.
func TestAuthorize_PathologicalPatternAnswersFast(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	e.setPolicyUnchecked(t, k.ID, fmt.Sprintf(`{"Version":"1","Statement":[
		{"Effect":"Deny","Principal":{"RAM":["acs:ram::%[1]s:*"]},"Action":["kms:*"],"Resource":[%[2]q]},
		{"Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:*"]},"Action":["kms:*"],"Resource":["*"],
		 "Condition":{"StringLike":{"kms:EncryptionContext:app":[%[2]q]}}}]}`, e.caller.AccountID, pathologicalPattern))
	user := Caller{AccountID: e.caller.AccountID, Principal: UserArn(e.caller.AccountID, "u"), Kind: KindUser, Name: "u"}
	calls := map[string]func(ctx context.Context) error{
		"Encrypt by the root": func(ctx context.Context) error {
			_, err := e.svc.Encrypt(ctx, e.caller, EncryptInput{Key: k.ID, Plaintext: []byte("x"), EncryptionContext: map[string]string{"app": strings.Repeat("a", 40)}})
			return err
		},
		"DescribeKey by a user the policy does not allow": func(ctx context.Context) error {
			_, err := e.svc.DescribeKey(ctx, user, k.ID)
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			// The fastest of a few runs: the machine may be busy, but a
			// backtracking matcher is slow every time.
			best := time.Hour
			for i := 0; i < 5; i++ {
				done := make(chan time.Duration, 1)
				go func() {
					start := time.Now()
					_ = call(context.Background())
					done <- time.Since(start)
				}()
				select {
				case d := <-done:
					best = min(best, d)
				case <-time.After(5 * time.Second):
					t.Fatal("the request did not finish within 5 s")
				}
			}
			if best >= 10*time.Millisecond {
				t.Fatalf("the request took %v, want under 10 ms", best)
			}
		})
	}
}

func TestValidatePolicy_RefusesUnboundedPatterns(t *testing.T) {
	const acct = "1234567890123456"
	doc := func(field string) string {
		return `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + acct + `:*"]},` + field + `}]}`
	}
	long := "acs:kms:" + strings.Repeat("x", MaxPatternLength)
	manyStars := "acs:kms:" + strings.Repeat("*x", MaxPatternWildcards+1)
	cases := map[string]struct{ doc, want string }{
		"the pathological Resource":    {doc(`"Action":["kms:*"],"Resource":["` + pathologicalPattern + `"]`), "wildcards"},
		"too many wildcards in Action": {doc(`"Action":["kms:` + strings.Repeat("?", MaxPatternWildcards+1) + `"]`), "wildcards"},
		"a Resource over the length":   {doc(`"Action":["kms:*"],"Resource":["` + long + `"]`), "bytes"},
		"a StringLike value":           {doc(`"Action":["kms:*"],"Condition":{"StringLike":{"kms:EncryptionContext:a":["` + manyStars + `"]}}`), "wildcards"},
		"a StringNotLike value":        {doc(`"Action":["kms:*"],"Condition":{"StringNotLike":{"kms:EncryptionContext:a":"` + long + `"}}`), "bytes"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := ValidatePolicy(c.doc)
			if !errors.Is(err, ErrInvalidParameter) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "at most") {
				t.Fatalf("err = %v, want InvalidParameter naming the limit (%s)", err, c.want)
			}
		})
	}
	// At the limits exactly: accepted.
	atLimit := "acs:kms:" + strings.Repeat("*", 1) + strings.Repeat("?", MaxPatternWildcards-1)
	if err := ValidatePolicy(doc(`"Action":["kms:*"],"Resource":["` + atLimit + `"]`)); err != nil {
		t.Fatalf("a pattern with %d wildcards refused: %v", MaxPatternWildcards, err)
	}
	trust := `{"Version":"1","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","` + "sts:" + strings.Repeat("*?", MaxPatternWildcards) + `"],"Principal":{"RAM":["acs:ram::` + acct + `:root"]}}]}`
	if err := ValidateTrustPolicy(trust); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("trust policy with an unbounded Action pattern: %v", err)
	}
}

// SetKeyPolicy refuses the pathological pattern and changes nothing.
func TestSetKeyPolicy_RefusesPathologicalPattern(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	doc := `{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::` + e.caller.AccountID + `:*"]},"Action":["kms:*"],"Resource":["` + pathologicalPattern + `"]}]}`
	e.unchanged(t, "a refused SetKeyPolicy", func() {
		_, err := e.svc.SetKeyPolicy(bg, e.caller, KeyPolicyInput{Key: k.ID, PolicyName: "default", Policy: doc})
		wantErr(t, "SetKeyPolicy", err, ErrInvalidParameter)
	})
}

// Authorization stops at a cancelled or expired context instead of
// finishing the evaluation, and never allows in that case.
func TestAuthorize_HonoursTheRequestContext(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{})
	var stmts []string
	for i := 0; i < 200; i++ {
		stmts = append(stmts, fmt.Sprintf(`{"Effect":"Allow","Principal":{"RAM":["acs:ram::%s:*"]},"Action":["kms:Encrypt"],"Resource":["*"],"Condition":{"StringNotLike":{"kms:EncryptionContext:app":["x%d*"]}}}`, e.caller.AccountID, i))
	}
	e.setPolicyUnchecked(t, k.ID, `{"Version":"1","Statement":[`+strings.Join(stmts, ",")+`]}`)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for name, ctx := range map[string]context.Context{"cancelled": cancelled, "expired": expired} {
		t.Run(name, func(t *testing.T) {
			err := e.svc.authorizeKey(ctx, e.caller, "kms:Encrypt", k, map[string]string{"app": "y"})
			if err == nil || !errors.Is(err, ctx.Err()) {
				t.Fatalf("err = %v, want %v", err, ctx.Err())
			}
			if err := e.svc.authorizeAccount(ctx, e.caller, "kms:CreateKey"); !errors.Is(err, ctx.Err()) {
				t.Fatalf("authorizeAccount: err = %v, want %v", err, ctx.Err())
			}
		})
	}
	// The same evaluation with a live context allows.
	if err := e.svc.authorizeKey(bg, e.caller, "kms:Encrypt", k, map[string]string{"app": "y"}); err != nil {
		t.Fatal(err)
	}
}

// The policy memo answers what a parse answers, and stays bounded.
func TestParsePolicy_MemoIsTheParseAndBounded(t *testing.T) {
	doc := DefaultPolicy("1234567890")
	if got, want := fmt.Sprint(parsePolicy(doc)), fmt.Sprint(parsePolicyText(doc)); got != want {
		t.Fatalf("memo %s, parse %s", got, want)
	}
	for i := range policyCacheMax + 10 {
		parsePolicy(DefaultPolicy(fmt.Sprint(i)))
	}
	policies.mu.RLock()
	n := len(policies.m)
	policies.mu.RUnlock()
	if n > policyCacheMax {
		t.Fatalf("the memo holds %d documents, bound %d", n, policyCacheMax)
	}
}
