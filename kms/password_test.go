package kms

import (
	"errors"
	"strings"
	"testing"
)

const pwAll = pwLower + pwUpper + pwDigits + pwPunctuation

// wantRefusal: err is a FieldError of kind on field.
func wantRefusal(t *testing.T, what string, err error, kind error, field Field) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, kind) || fe.Field != field {
		t.Errorf("%s: err = %v, want %v on %q", what, err, kind, field)
	}
}

func TestGetRandomPassword_Length(t *testing.T) {
	e := newSvcEnv(t)
	p, err := e.svc.GetRandomPassword(bg, e.caller, RandomPasswordInput{RequireEachIncludedType: true})
	if err != nil || len(p) != DefaultPasswordLength {
		t.Fatalf("default: %q, %v; want %d characters", p, err, DefaultPasswordLength)
	}
	for _, n := range []int{MinPasswordLength, 9, 64, MaxPasswordLength} {
		p, err := e.svc.GetRandomPassword(bg, e.caller, RandomPasswordInput{Length: ptr(n), RequireEachIncludedType: true})
		if err != nil || len(p) != n {
			t.Errorf("length %d: %q, %v", n, p, err)
		}
	}
	for _, n := range []int{-1, 0, 7, 129, 1 << 20} {
		_, err := e.svc.GetRandomPassword(bg, e.caller, RandomPasswordInput{Length: ptr(n)})
		wantRefusal(t, "length", err, ErrInvalidParameter, FieldPasswordLength)
	}
}

// Over many draws every allowed character appears, at about the same rate,
// and no excluded one ever does.
func TestGetRandomPassword_Distribution(t *testing.T) {
	e := newSvcEnv(t)
	cases := []struct {
		name    string
		in      RandomPasswordInput
		allowed string
	}{
		{"everything", RandomPasswordInput{}, pwAll},
		{"exclusions", RandomPasswordInput{ExcludeCharacters: "ABCabc012!@\\\"'", ExcludePunctuation: false},
			strings.NewReplacer("A", "", "B", "", "C", "", "a", "", "b", "", "c", "", "0", "", "1", "", "2", "", "!", "", "@", "", "\\", "", "\"", "", "'", "").Replace(pwAll)},
		{"no punctuation, no uppercase", RandomPasswordInput{ExcludePunctuation: true, ExcludeUppercase: true}, pwLower + pwDigits},
		{"digits only", RandomPasswordInput{ExcludeLowercase: true, ExcludeUppercase: true, ExcludePunctuation: true}, pwDigits},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			counts := map[rune]int{}
			total := 0
			for range 2000 {
				c.in.Length = ptr(32)
				p, err := e.svc.GetRandomPassword(bg, e.caller, c.in)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range p {
					counts[r]++
					total++
				}
			}
			for r := range counts {
				if !strings.ContainsRune(c.allowed, r) {
					t.Fatalf("excluded character %q appeared", r)
				}
			}
			want := float64(total) / float64(len(c.allowed))
			for _, r := range c.allowed {
				// ±30% is more than 8 standard deviations here.
				if n := float64(counts[r]); n < 0.7*want || n > 1.3*want {
					t.Errorf("%q appeared %v times, want about %.0f", r, n, want)
				}
			}
		})
	}
}

func TestGetRandomPassword_RequireEachIncludedType(t *testing.T) {
	e := newSvcEnv(t)
	cases := []struct {
		in      RandomPasswordInput
		classes []string
	}{
		{RandomPasswordInput{Length: ptr(8), RequireEachIncludedType: true}, []string{pwLower, pwUpper, pwDigits, pwPunctuation}},
		// One digit left among 85 characters: still in every password.
		{RandomPasswordInput{Length: ptr(8), RequireEachIncludedType: true, ExcludeCharacters: "012346789"}, []string{pwLower, pwUpper, "5", pwPunctuation}},
		// A class excluded character by character counts as excluded.
		{RandomPasswordInput{Length: ptr(8), RequireEachIncludedType: true, ExcludeCharacters: pwDigits, ExcludePunctuation: true}, []string{pwLower, pwUpper}},
	}
	for _, c := range cases {
		for range 300 {
			p, err := e.svc.GetRandomPassword(bg, e.caller, c.in)
			if err != nil {
				t.Fatalf("%+v: %v", c.in, err)
			}
			for _, cl := range c.classes {
				if !strings.ContainsAny(p, cl) {
					t.Fatalf("%+v: %q holds none of %q", c.in, p, cl)
				}
			}
			if strings.ContainsAny(p, c.in.ExcludeCharacters) {
				t.Fatalf("%q holds an excluded character", p)
			}
		}
	}
}

// When rejection sampling gives up, the fallback still holds every class
// and only allowed characters.
func TestRandomPassword_FallbackHoldsEachClass(t *testing.T) {
	classes := []string{pwLower, "Z", "5", "!"}
	seen := map[byte]bool{}
	for range 500 {
		p, err := randomPassword(classes, 8, true, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range classes {
			if !strings.ContainsAny(p, cl) {
				t.Fatalf("%q holds none of %q", p, cl)
			}
		}
		for i := range len(p) {
			if !strings.ContainsRune(pwLower+"Z5!", rune(p[i])) {
				t.Fatalf("%q holds %q", p, p[i])
			}
			seen[p[i]] = true
		}
		// The placed characters are shuffled, not always first.
	}
	if len(seen) != 26+3 {
		t.Errorf("%d distinct characters over 500 passwords, want 29", len(seen))
	}
}

func TestGetRandomPassword_RefusesImpossibleInputs(t *testing.T) {
	e := newSvcEnv(t)
	for _, in := range []RandomPasswordInput{
		{ExcludeLowercase: true, ExcludeUppercase: true, ExcludeNumbers: true, ExcludePunctuation: true},
		{ExcludeCharacters: pwAll},
		{ExcludeCharacters: pwLower + pwUpper + pwDigits, ExcludePunctuation: true, RequireEachIncludedType: true},
	} {
		_, err := e.svc.GetRandomPassword(bg, e.caller, in)
		wantRefusal(t, "everything excluded", err, ErrInvalidParameter, FieldExcludeCharacters)
	}
}

func TestGetRandomPassword_Authorization(t *testing.T) {
	e := newSvcEnv(t)
	nobody := e.mkUser(t, "nobody")
	_, err := e.svc.GetRandomPassword(bg, nobody, RandomPasswordInput{})
	wantErr(t, "a user without policies", err, ErrNoPermission)
	admin := e.mkUser(t, "admin", PolicyFullAccess)
	if _, err := e.svc.GetRandomPassword(bg, admin, RandomPasswordInput{}); err != nil {
		t.Errorf("a user with %s: %v", PolicyFullAccess, err)
	}
	if _, err := e.svc.GetRandomPassword(bg, e.mkUser(t, "secrets", PolicySecretAdminAccess), RandomPasswordInput{}); err != nil {
		t.Errorf("a user with %s: %v", PolicySecretAdminAccess, err)
	}
	_, err = e.svc.GetRandomPassword(bg, e.mkUser(t, "reader", PolicyReadOnlyAccess), RandomPasswordInput{})
	wantErr(t, "a user with "+PolicyReadOnlyAccess, err, ErrNoPermission)
	client := e.caller
	client.Client = &ClientKeyCaller{ID: "KAAP.x"}
	_, err = e.svc.GetRandomPassword(bg, client, RandomPasswordInput{})
	wantErr(t, "a client key", err, ErrNoPermission)
}
