package fsm

import (
	"errors"
	"fmt"
	"strings"
)

// Domain errors. Apply returns them as the log entry's response; they mean
// "this command was applied and changed nothing". They travel between nodes
// by name (EncodeError/DecodeError) when a write was forwarded to the leader.
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

var errorNames = map[string]error{
	"AlreadyInitialized":  ErrAlreadyInitialized,
	"NotInitialized":      ErrNotInitialized,
	"AccountNotFound":     ErrAccountNotFound,
	"InstanceNotFound":    ErrInstanceNotFound,
	"KeyNotFound":         ErrKeyNotFound,
	"KeyExists":           ErrKeyExists,
	"KeyState":            ErrKeyState,
	"VersionLimit":        ErrVersionLimit,
	"AliasExists":         ErrAliasExists,
	"AliasNotFound":       ErrAliasNotFound,
	"TagLimit":            ErrTagLimit,
	"InstanceExists":      ErrInstanceExists,
	"DefaultKeyExists":    ErrDefaultKeyExists,
	"QuotaExceeded":       ErrQuotaExceeded,
	"DeletionProtected":   ErrDeletionProtected,
	"MaterialMismatch":    ErrMaterialMismatch,
	"NotExternal":         ErrNotExternal,
	"ImportTokenNotFound": ErrImportTokenNotFound,
	"PreconditionFailed":  ErrPreconditionFailed,
	"AccessQuotaExceeded": ErrAccessQuotaExceeded,
	"NonceUsed":           ErrNonceUsed,
	"SignatureExpired":    ErrSignatureExpired,
}

// EncodeError turns a domain error into a name and message for the wire.
// Errors that are not domain errors get an empty name.
func EncodeError(err error) (name, msg string) {
	if err == nil {
		return "", ""
	}
	if state, ok := KeyStateOf(err); ok {
		return "KeyState/" + state, err.Error()
	}
	for n, sentinel := range errorNames {
		if errors.Is(err, sentinel) {
			return n, err.Error()
		}
	}
	return "", err.Error()
}

// DecodeError rebuilds an error from EncodeError's output so that errors.Is
// (and KeyStateOf) see the same thing on the proposer as on the leader.
func DecodeError(name, msg string) error {
	if name == "" && msg == "" {
		return nil
	}
	if state, ok := strings.CutPrefix(name, "KeyState/"); ok {
		return &stateError{State: state, msg: msg}
	}
	if sentinel, ok := errorNames[name]; ok {
		return &remoteError{msg: msg, sentinel: sentinel}
	}
	return errors.New(msg)
}

type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

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

// NewKeyStateError builds the same error Apply returns for an operation
// refused in a state, for callers that check state before proposing.
func NewKeyStateError(op, state string) error { return newStateError(op, state) }
