package kms

import (
	"errors"
	"fmt"
)

// Errors of the service core. Each is wrapped with the parameter or object
// it concerns; the API layer maps them to the service's error codes.
var (
	ErrMissingParameter = errors.New("missing parameter")
	ErrInvalidParameter = errors.New("invalid parameter")
	ErrKeyUsage         = errors.New("the key's usage does not allow this operation")
	ErrIndexNotReached  = errors.New("this node has not applied the requested index yet")
	ErrRootKeyMismatch  = errors.New("the snapshot was made under a different root key")
	ErrNoPermission     = errors.New("the caller may not perform this operation")
	ErrUnsupported      = errors.New("not supported")
	// ErrDryRun answers a request that asked only to be checked (DryRun):
	// it passed every check the real call makes and changed nothing.
	ErrDryRun = errors.New("the request would have succeeded; DryRun is set, so nothing was done")
)

func missing(param string) error {
	return fmt.Errorf("%w: the parameter %q is needed but not provided", ErrMissingParameter, param)
}

func invalid(param, why string) error {
	return fmt.Errorf("%w: the parameter %q is not valid: %s", ErrInvalidParameter, param, why)
}
