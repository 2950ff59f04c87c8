package kms

import (
	"crypto/rand"
	"math/big"

	"github.com/google/uuid"
)

const (
	digits   = "0123456789"
	lowerAlN = "abcdefghijklmnopqrstuvwxyz0123456789"
	mixedAlN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

func randomString(alphabet string, n int) string {
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("kms: system random source failed: " + err.Error())
		}
		out[i] = alphabet[v.Int64()]
	}
	return string(out)
}

// newAccountID is 16 digits, not starting with 0, like the service's UIDs.
func newAccountID() string { return randomString("123456789", 1) + randomString(digits, 15) }

// newAccessKeyID follows the service's shape: LTAI + 20 characters.
func newAccessKeyID() string { return "LTAI" + randomString(mixedAlN, 20) }

// newAccessKeySecret is 30 characters, like the service's secrets.
func newAccessKeySecret() string { return randomString(mixedAlN, 30) }

func newInstanceID() string { return "kst-" + randomString(lowerAlN, 24) }

func newUUID() string { return uuid.NewString() }
