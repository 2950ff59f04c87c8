package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
)

// authenticate checks a request's signature (either scheme the SDKs send),
// its clock skew and nonce, and returns the caller it stands for.
func (s *Server) authenticate(ctx context.Context, r *http.Request, body []byte) (*signature.Signed, kms.Caller, error) {
	return s.authenticateScheme(ctx, r, body, false)
}

// authenticateV3 is authenticate for the operator endpoints: only
// ACS3-HMAC-SHA256 covers the path and the body, so a V1 signature made
// for one API call cannot be replayed against /v1/operator/... with another
// body.
func (s *Server) authenticateV3(ctx context.Context, r *http.Request, body []byte) (*signature.Signed, kms.Caller, error) {
	return s.authenticateScheme(ctx, r, body, true)
}

func (s *Server) authenticateScheme(ctx context.Context, r *http.Request, body []byte, v3Only bool) (*signature.Signed, kms.Caller, error) {
	signed, err := signature.Parse(r, body)
	if err != nil {
		return nil, kms.Caller{}, err
	}
	return s.authenticateSigned(ctx, r, signed, v3Only)
}

// authenticateSigned checks a parsed signature: scheme, clock skew, the
// access key, the signature itself, then spends the nonce.
func (s *Server) authenticateSigned(ctx context.Context, r *http.Request, signed *signature.Signed, v3Only bool) (*signature.Signed, kms.Caller, error) {
	if v3Only && signed.Scheme != signature.SchemeV3 {
		return nil, kms.Caller{}, fmt.Errorf("%w: operator endpoints accept only ACS3-HMAC-SHA256 signatures (V1 covers neither the path nor the body)", signature.ErrUnsupported)
	}
	now := s.now()
	if skew := now.Sub(signed.Time); skew > s.cfg.ClockSkew || skew < -s.cfg.ClockSkew {
		return nil, kms.Caller{}, fmt.Errorf("%w: request time %s, server time %s, allowed skew %s; check the client's clock",
			errTimeSkew, signed.Time.Format(time.RFC3339), now.UTC().Format(time.RFC3339), s.cfg.ClockSkew)
	}
	secret, caller, err := s.cfg.Service.Credential(ctx, signed.AccessKeyID, signed.SecurityToken)
	if err != nil {
		return nil, kms.Caller{}, err
	}
	if err := signed.Verify(string(secret)); err != nil {
		return nil, kms.Caller{}, err
	}
	// Only a verified request spends its nonce, so nobody can burn another
	// client's nonces with unsigned traffic.
	switch s.nonces.use(signed.AccessKeyID, signed.Nonce, signed.Time, now) {
	case nonceReplayed:
		return nil, kms.Caller{}, fmt.Errorf("%w: nonce %q; send a fresh SignatureNonce with every request", errNonceReplay, signed.Nonce)
	case nonceFull:
		return nil, kms.Caller{}, fmt.Errorf("%w: %w", errThrottled, errNonceCacheFull)
	}
	caller.SourceIP = sourceIP(r)
	// The nonce cache above is this node's alone. A write carries the
	// signature into the Raft log (kms.WithSignature), where the catalogue
	// refuses it on every node and after restarts.
	caller.Signature = kms.SignedRequest{AccessKeyID: signed.AccessKeyID, Nonce: signed.Nonce, Time: signed.Time, Verified: now}
	return signed, caller, nil
}
