package api

import (
	"context"
	"errors"
	"net/http"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
	"github.com/raftkms/raftkms/store"
)

// Errors of the API layer itself.
var (
	errUnknownAction = errors.New("the action is not supported")
	errTimeSkew      = errors.New("the request time is outside the allowed clock skew")
	errNonceReplay   = errors.New("the signature nonce has been used already")
	errBodyTooLarge  = errors.New("the request body is too large")
	errBadRequest    = errors.New("the request cannot be parsed")
	errNotFound      = errors.New("no such path")
	errMethod        = errors.New("method not allowed")
)

// apiError is one row of the mapping: an HTTP status and the service's code.
type apiError struct {
	status int
	code   string
}

// errorTable maps every error the service can return to the reference
// service's code and HTTP status. Order matters: the first row whose
// sentinel matches wins. Anything unmatched is an internal failure.
var errorTable = []struct {
	err error
	apiError
}{
	{signature.ErrNotSigned, apiError{400, "IncompleteSignature"}},
	{signature.ErrMissing, apiError{400, "IncompleteSignature"}},
	{signature.ErrMalformed, apiError{400, "IncompleteSignature"}},
	{signature.ErrUnsupported, apiError{400, "IncompleteSignature"}},
	{signature.ErrContentHashMismatch, apiError{400, "SignatureDoesNotMatch"}},
	{signature.ErrSignatureMismatch, apiError{400, "SignatureDoesNotMatch"}},
	{errTimeSkew, apiError{400, "InvalidTimeStamp.Expired"}},
	{errNonceReplay, apiError{400, "SignatureNonceUsed"}},
	{fsm.ErrNonceUsed, apiError{400, "SignatureNonceUsed"}},
	{fsm.ErrSignatureExpired, apiError{400, "InvalidTimeStamp.Expired"}},
	{kms.ErrAccessKeyNotFound, apiError{404, "InvalidAccessKeyId.NotFound"}},
	{kms.ErrAccessKeyInactive, apiError{403, "Forbidden.AccessKey"}},
	{errThrottled, apiError{429, "Rejected.Throttling"}},
	{kms.ErrNoPermission, apiError{403, "Forbidden.NoPermission"}},
	{kms.ErrSTSExpired, apiError{400, "InvalidSecurityToken.Expired"}},
	{kms.ErrSTSRevoked, apiError{400, "InvalidSecurityToken.Expired"}},
	{kms.ErrSTSToken, apiError{400, "InvalidSecurityToken.MismatchWithAccessKey"}},
	{kms.ErrAssumeRoleDenied, apiError{403, "NoPermission"}},
	{fsm.ErrUserExists, apiError{409, "EntityAlreadyExists.User"}},
	{fsm.ErrUserNotFound, apiError{404, "EntityNotExist.User"}},
	{fsm.ErrRoleExists, apiError{409, "EntityAlreadyExists.Role"}},
	{fsm.ErrRoleNotFound, apiError{404, "EntityNotExist.Role"}},
	{fsm.ErrAccessKeyMissing, apiError{404, "EntityNotExist.User.AccessKey"}},
	{fsm.ErrDeleteConflict, apiError{409, "DeleteConflict"}},
	{fsm.ErrAccessKeyLimit, apiError{409, "LimitExceeded.User.AccessKey"}},
	{fsm.ErrAccessQuotaExceeded, apiError{400, "Rejected.LimitExceeded"}},
	{kms.ErrConsoleSecret, apiError{400, "SignatureDoesNotMatch"}},
	{kms.ErrConsoleSession, apiError{401, "ConsoleSession.Expired"}},
	{fsm.ErrConsoleSessionNotFound, apiError{401, "ConsoleSession.Expired"}},
	{fsm.ErrConsoleSessionLimit, apiError{400, "Rejected.LimitExceeded"}},
	{errCSRF, apiError{403, "Forbidden.CsrfToken"}},
	{errUnknownAction, apiError{404, "InvalidAction.NotFound"}},
	{errNotFound, apiError{404, "InvalidPath.NotFound"}},
	{errMethod, apiError{405, "UnsupportedHTTPMethod"}},
	{errBodyTooLarge, apiError{413, "RequestEntityTooLarge"}},
	{errBadRequest, apiError{400, "ParseRequestParameterException"}},
	{kms.ErrDryRun, apiError{412, "DryRunOperationError"}},
	{kms.ErrMissingParameter, apiError{400, "MissingParameter"}},
	{kms.ErrInvalidParameter, apiError{400, "InvalidParameter"}},
	{kcrypto.ErrInvalidContext, apiError{400, "InvalidParameter"}},
	{kms.ErrKeyUsage, apiError{400, "InvalidKeyUsage"}},
	{kms.ErrUnsupported, apiError{400, "Rejected.UnsupportedOperation"}},
	{kcrypto.ErrInvalidCiphertext, apiError{400, "InvalidCiphertext"}},
	{kcrypto.ErrAlgorithm, apiError{400, "InvalidParameter"}},
	{kms.ErrInvalidImportToken, apiError{400, "InvalidImportToken"}},
	{fsm.ErrImportTokenNotFound, apiError{400, "InvalidImportToken"}},
	{kms.ErrExpiredImportToken, apiError{400, "ExpiredImportToken"}},
	{kms.ErrInvalidKeyMaterial, apiError{400, "InvalidKeyMaterial"}},
	{fsm.ErrMaterialMismatch, apiError{400, "InvalidKeyMaterial"}},
	{fsm.ErrNotExternal, apiError{400, "Unsupported.Origin"}},
	{fsm.ErrDeletionProtected, apiError{403, "Forbidden.DeletionProtection"}},
	{fsm.ErrQuotaExceeded, apiError{400, "Rejected.LimitExceeded"}},
	{fsm.ErrInstanceLimitExceeded, apiError{400, "Rejected.LimitExceeded"}},
	{fsm.ErrKeyNotFound, apiError{404, "Forbidden.KeyNotFound"}},
	{fsm.ErrAliasNotFound, apiError{404, "Forbidden.AliasNotFound"}},
	{kms.ErrKeyVersionNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrInstanceNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrNetworkRuleNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrPermissionPolicyNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrAAPNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrClientKeyNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{kms.ErrClientKeyUnknown, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrSecretNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrSecretVersionNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrSecretExists, apiError{409, "Rejected.ResourceExist"}},
	{fsm.ErrSecretVersionExists, apiError{409, "Rejected.ResourceExist"}},
	{fsm.ErrSecretPendingDeletion, apiError{400, "Rejected.PendingDeletion"}},
	{fsm.ErrSecretNotPendingDeletion, apiError{400, "Rejected.NotPendingDeletion"}},
	{fsm.ErrSecretStageMismatch, apiError{400, "InvalidParameter"}},
	{fsm.ErrSecretLimitExceeded, apiError{400, "Rejected.LimitExceeded"}},
	{fsm.ErrSecretType, apiError{400, "Rejected.UnsupportedOperation"}},
	{fsm.ErrCertificateNotFound, apiError{404, "Forbidden.ResourceNotFound"}},
	{fsm.ErrCertificateStatus, apiError{409, "Rejected.Disabled"}},
	{fsm.ErrCertificateExpired, apiError{409, "Rejected.Expired"}},
	{fsm.ErrCertificateMismatch, apiError{400, "InvalidParameter"}},
	{fsm.ErrCertificateLimitExceeded, apiError{400, "Rejected.LimitExceeded"}},
	{fsm.ErrNetworkRuleExists, apiError{409, "Rejected.ResourceExist"}},
	{fsm.ErrPermissionPolicyExists, apiError{409, "Rejected.ResourceExist"}},
	{fsm.ErrAAPExists, apiError{409, "Rejected.ResourceExist"}},
	{fsm.ErrClientKeyExists, apiError{409, "Rejected.ResourceExist"}},
	{fsm.ErrResourceInUse, apiError{409, "Rejected.ResourceInUse"}},
	{fsm.ErrAAPLimitExceeded, apiError{400, "Rejected.LimitExceeded"}},
	{fsm.ErrAliasExists, apiError{400, "AliasAlreadyExists"}},
	{fsm.ErrTagLimit, apiError{400, "Rejected.LimitExceeded"}},
	{fsm.ErrVersionLimit, apiError{400, "Rejected.LimitExceeded"}},
	{fsm.ErrDefaultKeyExists, apiError{400, "Rejected.LimitExceeded"}},
	{kms.ErrLimitExceeded, apiError{400, "Rejected.LimitExceeded"}},
	{fsm.ErrAlreadyInitialized, apiError{409, "Rejected.AlreadyInitialized"}},
	{kms.ErrRootKeyMismatch, apiError{400, "Rejected.RootKeyMismatch"}},
	{kms.ErrNodeRootKey, apiError{503, "ServiceUnavailable.RootKeyMismatch"}},
	{fsm.ErrBadSnapshot, apiError{400, "InvalidSnapshot"}},
	{errRestoreInProgress, apiError{409, "Rejected.RestoreInProgress"}},
	{kms.ErrRestoreInProgress, apiError{409, "Rejected.RestoreInProgress"}},
	{kms.ErrSnapshotTooLargeToForward, apiError{413, "RequestEntityTooLarge"}},
	{kms.ErrHSMUnavailable, apiError{503, "ServiceUnavailable.HSM"}},
	{kms.ErrStale, apiError{503, "ServiceUnavailable.Stale"}},
	{kms.ErrUpgrading, apiError{503, "ServiceUnavailable.Upgrading"}},
	{kms.ErrIndexNotReached, apiError{503, "ServiceUnavailable.IndexNotReached"}},
	{store.ErrUnknownOutcome, apiError{503, "ServiceUnavailable.OutcomeUnknown"}},
	{store.ErrNoLeader, apiError{503, "ServiceUnavailableTemporary"}},
	{store.ErrNotLeader, apiError{503, "ServiceUnavailableTemporary"}},
	{kms.ErrNoLeaderForRestore, apiError{503, "ServiceUnavailableTemporary"}},
	{store.ErrShutdown, apiError{503, "ServiceUnavailableTemporary"}},
	{context.DeadlineExceeded, apiError{503, "ServiceUnavailable.Timeout"}},
	// A request whose context ended (the client left, the node is
	// stopping) mid-way, e.g. during a policy evaluation: not the
	// server's fault, never an InternalFailure.
	{context.Canceled, apiError{503, "ServiceUnavailable.Timeout"}},
}

// stateCodes name the state errors as the service does.
var stateCodes = map[string]string{
	fsm.StateDisabled:        "Rejected.Disabled",
	fsm.StatePendingDeletion: "Rejected.PendingDeletion",
	fsm.StatePendingImport:   "Rejected.PendingImport",
	fsm.StateEnabled:         "Rejected.Enabled",
}

// classify returns the status and code for err, and whether it is the
// server's own fault (logged, counted, answered without internal detail).
func classify(err error) (apiError, bool) {
	if state, ok := fsm.KeyStateOf(err); ok {
		code, known := stateCodes[state]
		if !known {
			code = "Rejected.StateModifiedFailed"
		}
		return apiError{http.StatusConflict, code}, false
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.apiError, false
		}
	}
	return apiError{http.StatusInternalServerError, "InternalFailure"}, true
}
