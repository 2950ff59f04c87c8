package signature

import "errors"

// Sentinels. Every error the package returns wraps exactly one of them, with
// the detail (which header, which parameter) in the message.
var (
	// ErrNotSigned: the request carries neither an Authorization header nor
	// a Signature parameter.
	ErrNotSigned = errors.New("request is not signed")
	// ErrMalformed: a signature piece is present but cannot be understood
	// (bad Authorization syntax, bad timestamp, undecodable query, an x-acs-*
	// header left out of SignedHeaders).
	ErrMalformed = errors.New("malformed signature")
	// ErrMissing: a piece the scheme requires is absent (x-acs-date,
	// SignatureNonce, ...).
	ErrMissing = errors.New("missing signature field")
	// ErrUnsupported: a well-formed request in a scheme or algorithm this
	// server does not implement (ACS3-HMAC-SM3, ACS3-RSA-SHA256, ...).
	ErrUnsupported = errors.New("unsupported signature algorithm")
	// ErrContentHashMismatch: x-acs-content-sha256 is not the hash of the
	// body that arrived.
	ErrContentHashMismatch = errors.New("x-acs-content-sha256 does not match the body")
	// ErrSignatureMismatch: the signature is not the one the secret gives.
	ErrSignatureMismatch = errors.New("signature does not match")
)
