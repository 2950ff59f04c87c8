package kms

import (
	"errors"
	"strings"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/store"
)

// Errors cross the cluster port by name (the method list is internal/rpc).
// A node that answers a forwarded call (a write applied on the leader, a
// restore, an HSM operation) encodes its error as a name from this table
// and its message; the caller rebuilds an error that errors.Is matches
// against the same sentinel, so the API maps it to the same code as if the
// call had run locally. An error not in the table crosses as text only —
// and then becomes a 500 — so this is the ONE table of every sentinel of
// fsm, kms and store (TestWireErrors_EverySentinelSurvivesTheWire parses
// those packages and fails for a sentinel missing here), plus the few of
// other packages that cross.
//
// Order matters: the first entry the error matches names it, so a
// sentinel that wraps another comes before the one it wraps. The fsm names
// are the ones older nodes send (a cluster upgraded one node at a time
// keeps understanding forwarded writes).
var wireErrors = []struct {
	name string
	err  error
}{
	// fsm: sentinels that wrap another sentinel first.
	{"NotExternalRotation", fsm.ErrNotExternalRotation},
	{"UnauthenticatedSnapshot", fsm.ErrUnauthenticatedSnapshot},
	// fsm: Apply's domain errors.
	{"AlreadyInitialized", fsm.ErrAlreadyInitialized},
	{"NotInitialized", fsm.ErrNotInitialized},
	{"AccountNotFound", fsm.ErrAccountNotFound},
	{"InstanceNotFound", fsm.ErrInstanceNotFound},
	{"KeyNotFound", fsm.ErrKeyNotFound},
	{"KeyExists", fsm.ErrKeyExists},
	{"KeyState", fsm.ErrKeyState},
	{"VersionLimit", fsm.ErrVersionLimit},
	{"AliasExists", fsm.ErrAliasExists},
	{"AliasNotFound", fsm.ErrAliasNotFound},
	{"TagLimit", fsm.ErrTagLimit},
	{"InstanceExists", fsm.ErrInstanceExists},
	{"DefaultKeyExists", fsm.ErrDefaultKeyExists},
	{"QuotaExceeded", fsm.ErrQuotaExceeded},
	{"DeletionProtected", fsm.ErrDeletionProtected},
	{"MaterialMismatch", fsm.ErrMaterialMismatch},
	{"NotExternal", fsm.ErrNotExternal},
	{"ImportTokenNotFound", fsm.ErrImportTokenNotFound},
	{"PreconditionFailed", fsm.ErrPreconditionFailed},
	{"AccessQuotaExceeded", fsm.ErrAccessQuotaExceeded},
	{"InstanceLimitExceeded", fsm.ErrInstanceLimitExceeded},
	{"HSMDomainMismatch", fsm.ErrHSMDomainMismatch},
	{"ProtectionMismatch", fsm.ErrProtectionMismatch},
	{"UserExists", fsm.ErrUserExists},
	{"UserNotFound", fsm.ErrUserNotFound},
	{"RoleExists", fsm.ErrRoleExists},
	{"RoleNotFound", fsm.ErrRoleNotFound},
	{"AccessKeyMissing", fsm.ErrAccessKeyMissing},
	{"DeleteConflict", fsm.ErrDeleteConflict},
	{"AccessKeyLimit", fsm.ErrAccessKeyLimit},
	{"AccountExists", fsm.ErrAccountExists},
	{"NonceUsed", fsm.ErrNonceUsed},
	{"SignatureExpired", fsm.ErrSignatureExpired},
	// fsm: application access (aap.go).
	{"NetworkRuleNotFound", fsm.ErrNetworkRuleNotFound},
	{"NetworkRuleExists", fsm.ErrNetworkRuleExists},
	{"PermissionPolicyNotFound", fsm.ErrPermissionPolicyNotFound},
	{"PermissionPolicyExists", fsm.ErrPermissionPolicyExists},
	{"AAPNotFound", fsm.ErrAAPNotFound},
	{"AAPExists", fsm.ErrAAPExists},
	{"ClientKeyNotFound", fsm.ErrClientKeyNotFound},
	{"ClientKeyExists", fsm.ErrClientKeyExists},
	{"ResourceInUse", fsm.ErrResourceInUse},
	{"AAPLimitExceeded", fsm.ErrAAPLimitExceeded},
	{"InstanceCAExists", fsm.ErrInstanceCAExists},
	// fsm: console sessions (sessions.go).
	{"ConsoleSessionNotFound", fsm.ErrConsoleSessionNotFound},
	{"ConsoleSessionLimit", fsm.ErrConsoleSessionLimit},
	// fsm: secrets (secrets.go).
	{"SecretNotFound", fsm.ErrSecretNotFound},
	{"SecretExists", fsm.ErrSecretExists},
	{"SecretVersionNotFound", fsm.ErrSecretVersionNotFound},
	{"SecretVersionExists", fsm.ErrSecretVersionExists},
	{"SecretPendingDeletion", fsm.ErrSecretPendingDeletion},
	{"SecretNotPendingDeletion", fsm.ErrSecretNotPendingDeletion},
	{"SecretStageMismatch", fsm.ErrSecretStageMismatch},
	{"SecretLimitExceeded", fsm.ErrSecretLimitExceeded},
	{"SecretType", fsm.ErrSecretType},
	{"CertificateNotFound", fsm.ErrCertificateNotFound},
	{"CertificateStatus", fsm.ErrCertificateStatus},
	{"CertificateMismatch", fsm.ErrCertificateMismatch},
	{"CertificateExpired", fsm.ErrCertificateExpired},
	{"CertificateLimitExceeded", fsm.ErrCertificateLimitExceeded},
	// fsm: snapshots (a restore forwarded to the leader).
	{"BadSnapshot", fsm.ErrBadSnapshot},
	{"NoSnapshotKey", fsm.ErrNoSnapshotKey},
	// fsm: versions (version.go).
	{"UnknownCommand", fsm.ErrUnknownCommand},

	// store: the Raft node.
	{"NotLeader", store.ErrNotLeader},
	{"NoLeader", store.ErrNoLeader},
	{"UnknownOutcome", store.ErrUnknownOutcome},
	{"Shutdown", store.ErrShutdown},

	// kms.
	{"MissingParameter", ErrMissingParameter},
	{"InvalidParameter", ErrInvalidParameter},
	{"KeyUsage", ErrKeyUsage},
	{"IndexNotReached", ErrIndexNotReached},
	{"RootKeyMismatch", ErrRootKeyMismatch},
	{"NoPermission", ErrNoPermission},
	{"Unsupported", ErrUnsupported},
	{"DryRun", ErrDryRun},
	{"HSMUnavailable", ErrHSMUnavailable},
	{"PeerUnavailable", errPeerUnavailable},
	{"STSToken", ErrSTSToken},
	{"STSExpired", ErrSTSExpired},
	{"STSRevoked", ErrSTSRevoked},
	{"AssumeRoleDenied", ErrAssumeRoleDenied},
	{"InvalidImportToken", ErrInvalidImportToken},
	{"ExpiredImportToken", ErrExpiredImportToken},
	{"InvalidKeyMaterial", ErrInvalidKeyMaterial},
	{"LimitExceeded", ErrLimitExceeded},
	{"KeyVersionNotFound", ErrKeyVersionNotFound},
	{"AccessKeyNotFound", ErrAccessKeyNotFound},
	{"AccessKeyInactive", ErrAccessKeyInactive},
	{"NodeRootKey", ErrNodeRootKey},
	{"Stale", ErrStale},
	{"NoLeaderForRestore", ErrNoLeaderForRestore},
	{"SnapshotTooLargeToForward", ErrSnapshotTooLargeToForward},
	{"RestoreInProgress", ErrRestoreInProgress},
	{"ClientKeyUnknown", ErrClientKeyUnknown},
	{"InstanceCertUnavailable", ErrInstanceCertUnavailable},
	{"Upgrading", ErrUpgrading},
	{"ConsoleSecret", ErrConsoleSecret},
	{"ConsoleSession", ErrConsoleSession},

	// crypto: what a token answers for a blob that does not open.
	{"InvalidCiphertext", kcrypto.ErrInvalidCiphertext},
}

// wireErrorsByName is the decoding side of wireErrors.
var wireErrorsByName = func() map[string]error {
	m := make(map[string]error, len(wireErrors))
	for _, e := range wireErrors {
		m[e.name] = e.err
	}
	return m
}()

// keyStatePrefix names a key state error together with the state that
// refused the operation (fsm.KeyStateOf), which the API maps to its own
// code.
const keyStatePrefix = "KeyState/"

// EncodeError turns an error into a name and message for the wire. An
// error that matches no entry of the table gets an empty name: it crosses
// as text.
func EncodeError(err error) (name, msg string) {
	if err == nil {
		return "", ""
	}
	if state, ok := fsm.KeyStateOf(err); ok {
		return keyStatePrefix + state, err.Error()
	}
	for _, e := range wireErrors {
		if errors.Is(err, e.err) {
			return e.name, err.Error()
		}
	}
	return "", err.Error()
}

// DecodeError rebuilds an error from EncodeError's output: the same message,
// and errors.Is (and fsm.KeyStateOf) see the same sentinel as on the node
// that encoded it.
func DecodeError(name, msg string) error {
	if name == "" && msg == "" {
		return nil
	}
	if state, ok := strings.CutPrefix(name, keyStatePrefix); ok {
		return fsm.KeyStateErrorWithMessage(state, msg)
	}
	if sentinel, ok := wireErrorsByName[name]; ok {
		return &wireError{msg: msg, sentinel: sentinel}
	}
	return errors.New(msg)
}

// WireErrors is the table as the store wants it (forwarded writes).
var WireErrors = store.ErrorCodec{Encode: EncodeError, Decode: DecodeError}

type wireError struct {
	msg      string
	sentinel error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.sentinel }
