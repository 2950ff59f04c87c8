//go:build !cgo

package hsm

import "context"

// Token is an open PKCS#11 token. This binary was built without cgo, so no
// Token can be opened; the type exists so that callers compile unchanged.
type Token struct{}

// Open always fails with ErrNoHSMSupport in a build without cgo.
func Open(Config) (*Token, error) { return nil, ErrNoHSMSupport }

func (*Token) Label() string                        { return "" }
func (*Token) Health() Health                       { return Health{State: HealthBad, Err: ErrNoHSMSupport} }
func (*Token) Check(context.Context) error          { return ErrNoHSMSupport }
func (*Token) Close() error                         { return nil }
func (*Token) Forget(string)                        {}
func (*Token) Unwrap(context.Context, KeyRef) error { return ErrNoHSMSupport }

func (*Token) Enroll(context.Context, string, []byte) (EnrollResult, error) {
	return EnrollResult{}, ErrNoHSMSupport
}

func (*Token) DomainCheckValue(context.Context, string) ([]byte, error) {
	return nil, ErrNoHSMSupport
}

func (*Token) Domains(context.Context) ([]Domain, error) { return nil, ErrNoHSMSupport }

func (*Token) GenerateKey(context.Context, string, KeySpec, Usage) (*GeneratedKey, error) {
	return nil, ErrNoHSMSupport
}

func (*Token) ImportKey(context.Context, string, KeySpec, []byte) (*GeneratedKey, error) {
	return nil, ErrNoHSMSupport
}

func (*Token) Encrypt(context.Context, KeyRef, []byte, []byte, []byte) ([]byte, error) {
	return nil, ErrNoHSMSupport
}

func (*Token) Decrypt(context.Context, KeyRef, []byte, []byte, []byte) ([]byte, error) {
	return nil, ErrNoHSMSupport
}

func (*Token) Sign(context.Context, KeyRef, SignAlgorithm, []byte) ([]byte, error) {
	return nil, ErrNoHSMSupport
}

func (*Token) DecryptAsymmetric(context.Context, KeyRef, EncryptAlgorithm, []byte) ([]byte, error) {
	return nil, ErrNoHSMSupport
}

// InitToken always fails with ErrNoHSMSupport in a build without cgo.
func InitToken(string, string, string) (bool, error) { return false, ErrNoHSMSupport }
