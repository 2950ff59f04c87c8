package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"
)

// EnrollOptions are the inputs of `kmsd hsm enroll`.
type EnrollOptions struct {
	ModulePath    string // --hsm-module
	TokenLabel    string // --hsm-token-label
	PinFile       string // --hsm-pin-file
	Domain        string // --domain
	DomainKeyFile string // --domain-key-file: base64 of 32 bytes
	Logger        hclog.Logger
}

// RunEnroll is `kmsd hsm enroll`: it reads the domain key file, opens the
// token, imports the key as the domain's wrap/unwrap-only key (or confirms
// the token already holds it) and closes the token. The result's
// CheckValue is what the cluster will record for the domain; printing it
// lets the operator compare tokens. The key bytes are cleared before
// returning.
func RunEnroll(ctx context.Context, o EnrollOptions) (EnrollResult, error) {
	switch {
	case o.ModulePath == "":
		return EnrollResult{}, errors.New("hsm enroll: --hsm-module is required")
	case o.TokenLabel == "":
		return EnrollResult{}, errors.New("hsm enroll: --hsm-token-label is required")
	case o.PinFile == "":
		return EnrollResult{}, errors.New("hsm enroll: --hsm-pin-file is required")
	case o.Domain == "":
		return EnrollResult{}, errors.New("hsm enroll: --domain is required")
	case o.DomainKeyFile == "":
		return EnrollResult{}, errors.New("hsm enroll: --domain-key-file is required")
	}
	key, err := ReadDomainKeyFile(o.DomainKeyFile)
	if err != nil {
		return EnrollResult{}, err
	}
	defer clear(key)
	tok, err := Open(Config{
		ModulePath: o.ModulePath, TokenLabel: o.TokenLabel, PinFile: o.PinFile,
		PoolSize: 1, HealthInterval: -1, Logger: o.Logger,
	})
	if err != nil {
		return EnrollResult{}, err
	}
	defer tok.Close()
	res, err := tok.Enroll(ctx, o.Domain, key)
	if err != nil {
		return EnrollResult{}, fmt.Errorf("hsm enroll: %w", err)
	}
	return res, nil
}

// String is the line `kmsd hsm enroll` prints.
func (r EnrollResult) String() string {
	verb := "enrolled"
	if !r.Created {
		verb = "already enrolled (same key)"
	}
	return fmt.Sprintf("domain %q %s; key check value %x", r.Domain, verb, r.CheckValue)
}
