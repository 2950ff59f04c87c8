// Package signature computes and checks the two request signatures that the
// official Alibaba Cloud SDKs send to a KMS (OpenAPI 2016-01-20) endpoint:
//
//   - ACS3-HMAC-SHA256, the SDKs' default: an Authorization header over a
//     canonical request (method, path, query, host/content-type/x-acs-*
//     headers, body hash).
//   - V1 HMAC-SHA1, sent by old SDKs and by the current ones configured with
//     SignatureAlgorithm "v2": a Signature query parameter over the sorted
//     parameters.
//
// The package is pure: no clocks (callers pass the time), no key lookups, no
// replay cache. The server (package api) parses a request with [Parse], looks
// up the secret for [Signed.AccessKeyID], applies its own clock-skew window
// and nonce replay check to [Signed.Time] and [Signed.Nonce], then calls
// [Signed.Verify]. Clients sign with [SignV3] or [SignV1].
//
// Every failure wraps one of the package's sentinel errors (ErrNotSigned,
// ErrMalformed, ErrMissing, ErrUnsupported, ErrContentHashMismatch,
// ErrSignatureMismatch) so the API layer can map them to error codes with
// errors.Is. DESIGN.md records what the Go SDK actually puts on the wire.
package signature
