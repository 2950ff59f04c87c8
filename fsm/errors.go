package fsm

import (
	"errors"
	"fmt"
)

// Domain errors. Apply returns them as the log entry's response; they mean
// "this command was applied and changed nothing". They travel between nodes
// by name when a write was forwarded to the leader: the one table of errors
// that cross the wire is kms/wire_errors.go (a test there fails for any
// sentinel of this package it lacks).
var (
	ErrAlreadyInitialized  = errors.New("the cluster is already initialized; use the credentials the first init printed")
	ErrNotInitialized      = errors.New("the cluster is not initialized")
	ErrAccountNotFound     = errors.New("account not found")
	ErrInstanceNotFound    = errors.New("KMS instance not found")
	ErrKeyNotFound         = errors.New("key not found")
	ErrKeyExists           = errors.New("key id already exists")
	ErrKeyState            = errors.New("the key's state does not allow this operation")
	ErrVersionLimit        = errors.New("the key has the maximum number of versions")
	ErrAliasExists         = errors.New("alias already exists")
	ErrAliasNotFound       = errors.New("alias not found")
	ErrTagLimit            = errors.New("a key may carry at most 20 tags")
	ErrInstanceExists      = errors.New("KMS instance id already exists")
	ErrDefaultKeyExists    = errors.New("the account already has its default key")
	ErrQuotaExceeded       = errors.New("the KMS instance's key quota is used up")
	ErrDeletionProtected   = errors.New("the key has deletion protection; turn it off first (SetDeletionProtection)")
	ErrMaterialMismatch    = errors.New("only the material imported into this key before can be imported again")
	ErrNotExternal         = errors.New("the key's material is not imported (Origin is not EXTERNAL)")
	ErrImportTokenNotFound = errors.New("the import token does not exist or has expired")
	ErrPreconditionFailed  = errors.New("the catalogue changed since the command was proposed")
	ErrAccessQuotaExceeded = errors.New("the KMS instance's access management quota (cross-account principals) is used up")
)

// stateError says which state refused the operation; the API maps the state
// to the service's own error code.
type stateError struct {
	State string
	msg   string
}

func newStateError(op, state string) *stateError {
	return &stateError{State: state, msg: fmt.Sprintf("%s is not allowed while the key is %s", op, state)}
}

func (e *stateError) Error() string { return e.msg }
func (e *stateError) Unwrap() error { return ErrKeyState }

// KeyStateOf returns the key state carried by a state error, if any.
func KeyStateOf(err error) (string, bool) {
	var se *stateError
	if errors.As(err, &se) {
		return se.State, true
	}
	return "", false
}

// KeyStateErrorWithMessage rebuilds a state error that crossed the wire:
// the state and the message the leader's Apply gave.
func KeyStateErrorWithMessage(state, msg string) error { return &stateError{State: state, msg: msg} }

// NewKeyStateError builds the same error Apply returns for an operation
// refused in a state, for callers that check state before proposing.
func NewKeyStateError(op, state string) error { return newStateError(op, state) }
