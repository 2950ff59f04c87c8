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

// FieldError is a refusal of one input: missing (Err is ErrMissingParameter)
// or not valid (Err is ErrInvalidParameter, Reason says why). Field is the
// domain's name for the input; a face names its own parameter with Message.
type FieldError struct {
	Field  Field
	Err    error  // ErrMissingParameter or ErrInvalidParameter
	Reason string // why the value is not valid; empty for a missing one
}

func (e *FieldError) Error() string { return e.Message(string(e.Field)) }

func (e *FieldError) Unwrap() error { return e.Err }

// Message is the error's text with the input called param, the name a
// face gives the field.
func (e *FieldError) Message(param string) string {
	if e.Err == ErrMissingParameter {
		return fmt.Sprintf("%v: the parameter %q is needed but not provided", e.Err, param)
	}
	return fmt.Sprintf("%v: the parameter %q is not valid: %s", e.Err, param, e.Reason)
}

func missing(f Field) error {
	return &FieldError{Field: f, Err: ErrMissingParameter}
}

func invalid(f Field, why string) error {
	return &FieldError{Field: f, Err: ErrInvalidParameter, Reason: why}
}
