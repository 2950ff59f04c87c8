package kms

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
)

// GetRandomPassword: a password drawn from crypto/rand.
//
// The alphabet is the reference's: lowercase and uppercase ASCII letters,
// digits, and the 32 ASCII punctuation characters (no space), less the
// excluded classes and characters. A class whose every character is
// excluded through ExcludeCharacters counts as excluded.
//
// RequireEachIncludedType: the reference's default is true, but the input
// is a bool, so the face decides the default: the Alibaba face must pass
// true when the parameter is absent. With it, every included class appears
// at least once. The password is then drawn by rejection: whole passwords
// are drawn uniformly from the alphabet until one holds every class, so
// every acceptable password is equally likely. Should that take implausibly
// many draws (a class of one character among many, length 8: about a
// hundred draws is the worst real case), one character of each class is
// placed and the rest drawn from the whole alphabet, then shuffled.

// Character classes of a password.
const (
	pwLower       = "abcdefghijklmnopqrstuvwxyz"
	pwUpper       = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	pwDigits      = "0123456789"
	pwPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

// Password lengths.
const (
	MinPasswordLength     = 8
	MaxPasswordLength     = 128
	DefaultPasswordLength = 32
)

// passwordDraws bounds the rejection sampling of a password that must hold
// every included class.
const passwordDraws = 10000

// GetRandomPassword makes a password from crypto/rand. It is an
// account-level action (kms:GetRandomPassword) and changes nothing.
func (s *Service) GetRandomPassword(ctx context.Context, c Caller, in RandomPasswordInput) (string, error) {
	if err := s.authorizeAccount(ctx, c, "kms:GetRandomPassword"); err != nil {
		return "", err
	}
	classes, length, err := passwordClasses(in)
	if err != nil {
		return "", err
	}
	return randomPassword(classes, length, in.RequireEachIncludedType, passwordDraws)
}

// passwordClasses validates the input and returns the characters left in
// each included class (empty classes dropped) and the length.
func passwordClasses(in RandomPasswordInput) ([]string, int, error) {
	length := DefaultPasswordLength
	if in.Length != nil {
		length = *in.Length
	}
	if length < MinPasswordLength || length > MaxPasswordLength {
		return nil, 0, invalid(FieldPasswordLength, fmt.Sprintf("must be between %d and %d", MinPasswordLength, MaxPasswordLength))
	}
	var classes []string
	for _, cl := range []struct {
		chars   string
		exclude bool
	}{
		{pwLower, in.ExcludeLowercase},
		{pwUpper, in.ExcludeUppercase},
		{pwDigits, in.ExcludeNumbers},
		{pwPunctuation, in.ExcludePunctuation},
	} {
		if cl.exclude {
			continue
		}
		left := strings.Map(func(r rune) rune {
			if strings.ContainsRune(in.ExcludeCharacters, r) {
				return -1
			}
			return r
		}, cl.chars)
		if left != "" {
			classes = append(classes, left)
		}
	}
	if len(classes) == 0 {
		return nil, 0, invalid(FieldExcludeCharacters, "every character is excluded: the exclusions leave nothing to make a password of")
	}
	if in.RequireEachIncludedType && length < len(classes) {
		return nil, 0, invalid(FieldPasswordLength, fmt.Sprintf("%d characters cannot hold one of each of the %d included character types", length, len(classes)))
	}
	return classes, length, nil
}

// randomPassword draws length characters uniformly from the union of
// classes; with requireEach, every class appears (see the file comment;
// draws bounds the rejection sampling).
func randomPassword(classes []string, length int, requireEach bool, draws int) (string, error) {
	alphabet := strings.Join(classes, "")
	out := make([]byte, length)
	for try := 0; ; try++ {
		for i := range out {
			b, err := pick(alphabet)
			if err != nil {
				return "", err
			}
			out[i] = b
		}
		if !requireEach || holdsEach(out, classes) {
			return string(out), nil
		}
		if try+1 >= draws {
			break
		}
	}
	// Place one of each class, fill from the whole alphabet, shuffle.
	for i, cl := range classes {
		b, err := pick(cl)
		if err != nil {
			return "", err
		}
		out[i] = b
	}
	for i := len(classes); i < length; i++ {
		b, err := pick(alphabet)
		if err != nil {
			return "", err
		}
		out[i] = b
	}
	for i := length - 1; i > 0; i-- {
		j, err := uniform(i + 1)
		if err != nil {
			return "", err
		}
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}

// holdsEach reports whether p holds a character of every class.
func holdsEach(p []byte, classes []string) bool {
	for _, cl := range classes {
		if !strings.ContainsAny(string(p), cl) {
			return false
		}
	}
	return true
}

// pick returns a character of chars, each equally likely.
func pick(chars string) (byte, error) {
	i, err := uniform(len(chars))
	if err != nil {
		return 0, err
	}
	return chars[i], nil
}

// uniform returns an int in [0, n) from crypto/rand without modulo bias
// (rand.Int rejects the values beyond the largest multiple of n).
func uniform(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("the system random source failed: %w", err)
	}
	return int(v.Int64()), nil
}
