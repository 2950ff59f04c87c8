//go:build !cgo

package hsm

import (
	"context"
	"errors"
	"testing"
)

// Without cgo the package still builds and says clearly why there is no HSM.
func TestStub_OpenSaysCgoIsNeeded(t *testing.T) {
	tok, err := Open(Config{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "x", PIN: "1"})
	if tok != nil || !errors.Is(err, ErrNoHSMSupport) {
		t.Fatalf("Open = %v, %v", tok, err)
	}
	if err.Error() != "this kmsd was built without cgo; HSM support needs a cgo build" {
		t.Fatalf("message %q", err)
	}
	if _, err := RunEnroll(context.Background(), EnrollOptions{ModulePath: "m", TokenLabel: "l", PinFile: "p", Domain: "d", DomainKeyFile: "/dev/null"}); err == nil {
		t.Fatal("RunEnroll without cgo succeeded")
	}
}
