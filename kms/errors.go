package kms

import (
	"errors"
	"fmt"
	"strings"
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

func (e *FieldError) Error() string { return e.Message(func(f Field) string { return string(f) }) }

func (e *FieldError) Unwrap() error { return e.Err }

// Message is the error's text with every field named as name says: the
// input the error is about, and any other input its Reason mentions
// (Field.Ref). A face passes its own parameter names.
func (e *FieldError) Message(name func(Field) string) string {
	param := name(e.Field)
	if e.Err == ErrMissingParameter {
		return fmt.Sprintf("%v: the parameter %q is needed but not provided", e.Err, param)
	}
	return fmt.Sprintf("%v: the parameter %q is not valid: %s", e.Err, param, renderRefs(e.Reason, name))
}

// Field references inside a Reason: Ref marks a field's name so that
// Message can name it as the face does. The markers are control characters,
// which a Reason never holds otherwise (values in it are quoted with %q).
const (
	refOpen  = "\x00field:"
	refClose = "\x00"
)

// Ref is the field as a FieldError's Reason mentions it ("needs a KMS
// instance (" + FieldInstanceID.Ref() + ")"); the face that reports the
// error names it with its own parameter name.
func (f Field) Ref() string { return refOpen + string(f) + refClose }

func renderRefs(reason string, name func(Field) string) string {
	var b strings.Builder
	for {
		i := strings.Index(reason, refOpen)
		if i < 0 {
			break
		}
		j := strings.Index(reason[i+len(refOpen):], refClose)
		if j < 0 {
			break
		}
		b.WriteString(reason[:i])
		b.WriteString(name(Field(reason[i+len(refOpen) : i+len(refOpen)+j])))
		reason = reason[i+len(refOpen)+j+len(refClose):]
	}
	b.WriteString(reason)
	return b.String()
}

func missing(f Field) error {
	return &FieldError{Field: f, Err: ErrMissingParameter}
}

func invalid(f Field, why string) error {
	return &FieldError{Field: f, Err: ErrInvalidParameter, Reason: why}
}
