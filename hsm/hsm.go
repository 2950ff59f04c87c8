package hsm

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors. Errors returned by this package wrap one of these (and,
// where the module reported something, the pkcs11.Error) so callers can test
// them with errors.Is.
var (
	// ErrNoHSMSupport is returned by Open in a binary built without cgo.
	ErrNoHSMSupport = errors.New("this kmsd was built without cgo; HSM support needs a cgo build")
	// ErrTokenNotFound means no slot of the module holds a token with the label.
	ErrTokenNotFound = errors.New("hsm: no token with that label")
	// ErrLogin means C_Login failed (wrong PIN, locked PIN). It is sticky:
	// the token is not logged into again automatically, only by Check, so
	// a wrong PIN is never retried into a PIN lockout.
	ErrLogin = errors.New("hsm: login to the token failed")
	// ErrUnavailable means the token is unhealthy: its sessions could not be
	// reopened. The service stops advertising a token in this state.
	ErrUnavailable = errors.New("hsm: token unavailable")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("hsm: token closed")
	// ErrDomainNotEnrolled means the token holds no key for the HSM domain.
	ErrDomainNotEnrolled = errors.New("hsm: domain not enrolled in this token")
	// ErrDomainKeyMismatch means the token already holds a different key for
	// the domain.
	ErrDomainKeyMismatch = errors.New("hsm: token holds a different key for this domain")
	// ErrUnwrap means a wrapped blob does not unwrap under this token's
	// domain key (a different domain key, a corrupted blob) or does not hold
	// a key of the stated spec.
	ErrUnwrap = errors.New("hsm: wrapped key does not unwrap under the domain key")
	// ErrDecrypt means a ciphertext failed authentication or decoding (a
	// GCM tag mismatch, a bad OAEP encoding). The service answers it as an
	// invalid ciphertext.
	ErrDecrypt = errors.New("hsm: ciphertext does not decrypt")
	// ErrInvalidParameter means the caller passed something the operation
	// cannot take: a wrong IV or digest length, a spec/usage/algorithm that
	// do not go together.
	ErrInvalidParameter = errors.New("hsm: invalid parameter")
)

// KeySpec names a key type with the service's KeySpec names.
type KeySpec string

// Key specs a token can generate and serve.
const (
	SpecAES128  KeySpec = "Aliyun_AES_128"
	SpecAES192  KeySpec = "Aliyun_AES_192"
	SpecAES256  KeySpec = "Aliyun_AES_256"
	SpecRSA2048 KeySpec = "RSA_2048"
	SpecRSA3072 KeySpec = "RSA_3072"
	SpecRSA4096 KeySpec = "RSA_4096"
	SpecECP256  KeySpec = "EC_P256"
	SpecECP256K KeySpec = "EC_P256K"
)

// Specs lists every spec this package supports, in a stable order.
var Specs = []KeySpec{SpecAES128, SpecAES192, SpecAES256, SpecRSA2048, SpecRSA3072, SpecRSA4096, SpecECP256, SpecECP256K}

// IsSymmetric reports whether s is an AES spec.
func (s KeySpec) IsSymmetric() bool { return s == SpecAES128 || s == SpecAES192 || s == SpecAES256 }

// IsRSA reports whether s is an RSA spec.
func (s KeySpec) IsRSA() bool { return s == SpecRSA2048 || s == SpecRSA3072 || s == SpecRSA4096 }

// IsEC reports whether s is an elliptic-curve spec.
func (s KeySpec) IsEC() bool { return s == SpecECP256 || s == SpecECP256K }

// size is the AES key length in bytes or the RSA modulus length in bits.
func (s KeySpec) size() int {
	switch s {
	case SpecAES128:
		return 16
	case SpecAES192:
		return 24
	case SpecAES256:
		return 32
	case SpecRSA2048:
		return 2048
	case SpecRSA3072:
		return 3072
	case SpecRSA4096:
		return 4096
	}
	return 0
}

// Usage is what a key may do, with the service's KeyUsage names.
type Usage string

// Key usages.
const (
	UsageEncrypt Usage = "ENCRYPT/DECRYPT"
	UsageSign    Usage = "SIGN/VERIFY"
	// UsageCertificate is an RSA key pair of a certificate: it signs and
	// decrypts (RSA-OAEP), as the certificate actions need.
	UsageCertificate Usage = "CERTIFICATE"
)

// Signs reports whether a private key of usage u signs.
func (u Usage) Signs() bool { return u == UsageSign || u == UsageCertificate }

// Decrypts reports whether a private key of usage u decrypts.
func (u Usage) Decrypts() bool { return u == UsageEncrypt || u == UsageCertificate }

// checkUsage validates the spec/usage pair and fills in the only possible
// usage for AES and EC keys.
func checkUsage(spec KeySpec, u Usage) (Usage, error) {
	switch {
	case spec.IsSymmetric():
		if u == "" || u == UsageEncrypt {
			return UsageEncrypt, nil
		}
	case spec.IsEC():
		if u == "" || u == UsageSign {
			return UsageSign, nil
		}
	case spec.IsRSA():
		if u == UsageEncrypt || u == UsageSign || u == UsageCertificate {
			return u, nil
		}
		return "", fmt.Errorf("%w: %s needs a usage (%s or %s)", ErrInvalidParameter, spec, UsageEncrypt, UsageSign)
	default:
		return "", fmt.Errorf("%w: unsupported key spec %q", ErrInvalidParameter, spec)
	}
	return "", fmt.Errorf("%w: %s keys cannot have usage %q", ErrInvalidParameter, spec, u)
}

// SignAlgorithm names a signing algorithm with the service's names. Sign
// always takes the SHA-256 digest of the message, never the message.
type SignAlgorithm string

// Signing algorithms.
const (
	RSAPSSSHA256   SignAlgorithm = "RSA_PSS_SHA_256"   // PSS, MGF1-SHA-256, salt length 32
	RSAPKCS1SHA256 SignAlgorithm = "RSA_PKCS1_SHA_256" // PKCS #1 v1.5
	ECDSASHA256    SignAlgorithm = "ECDSA_SHA_256"     // DER signature; low-S for EC_P256K
)

// EncryptAlgorithm names an asymmetric encryption algorithm.
type EncryptAlgorithm string

// Asymmetric encryption algorithms (OAEP with MGF1 of the same hash, no label).
const (
	RSAESOAEPSHA1   EncryptAlgorithm = "RSAES_OAEP_SHA_1"
	RSAESOAEPSHA256 EncryptAlgorithm = "RSAES_OAEP_SHA_256"
)

// GCMIVSize is the IV length Encrypt and Decrypt insist on.
const GCMIVSize = 12

// GCMTagSize is the length of the tag appended to AES-GCM ciphertexts.
const GCMTagSize = 16

// DomainKeySize is the length of an HSM domain key (AES-256).
const DomainKeySize = 32

// KeyRef names a key version to a Token: everything needed to (re)load it.
// The service keeps Domain, Spec, Usage and Wrapped in its catalogue and
// passes a KeyRef to every operation; the token unwraps the blob once and
// keeps the handle in its cache under ID, reloading it by itself after an
// eviction or a lost session.
type KeyRef struct {
	// ID is the cache key, chosen by the caller (the key version id). One
	// ID must always name the same blob; a different blob under a known ID
	// replaces the cached handle.
	ID      string
	Domain  string
	Spec    KeySpec
	Usage   Usage // may be empty for AES and EC keys
	Wrapped []byte
}

// GeneratedKey is the result of generating a key inside a token: all of it
// may be stored anywhere (nothing in it is secret without the domain key).
type GeneratedKey struct {
	Domain string
	Spec   KeySpec
	Usage  Usage
	// Wrapped is the private or secret key wrapped under the domain key
	// with CKM_AES_KEY_WRAP_PAD (RFC 5649). For RSA and EC keys the
	// plaintext inside is PKCS #8, zero-padded to a multiple of 8 bytes
	// by SoftHSM.
	Wrapped []byte
	// PublicKey is the DER SubjectPublicKeyInfo of an RSA or EC key (for
	// EC_P256K with the secp256k1 OID 1.3.132.0.10); nil for AES keys.
	PublicKey []byte
}

// Ref turns a generated key into the KeyRef that uses it.
func (g *GeneratedKey) Ref(id string) KeyRef {
	return KeyRef{ID: id, Domain: g.Domain, Spec: g.Spec, Usage: g.Usage, Wrapped: g.Wrapped}
}

// Domain describes an HSM domain enrolled in a token.
type Domain struct {
	Name string
	// CheckValue is the domain key's KCV: the first 3 bytes of
	// AES-ECB(key, zero block), as the token reports it in CKA_CHECK_VALUE.
	CheckValue []byte
}

// EnrollResult says what Enroll did.
type EnrollResult struct {
	Domain     string
	CheckValue []byte
	// Created is false when the token already held this very key.
	Created bool
}

// HealthState is "ok" or "bad".
type HealthState string

// Health states. The cluster adds its own "mismatch" when a token's domain
// check value differs from the one the cluster recorded.
const (
	HealthOK  HealthState = "ok"
	HealthBad HealthState = "bad"
)

// Health is a token's last known state; reading it does no I/O.
type Health struct {
	State HealthState
	// Err says why the state is bad; nil when ok.
	Err error
	// Since is when the state last changed.
	Since time.Time
}

// Config says which token to open and how.
type Config struct {
	// ModulePath is the PKCS#11 library (for SoftHSM2:
	// /usr/lib/softhsm/libsofthsm2.so).
	ModulePath string
	// TokenLabel picks the slot: slot ids change every time a token is
	// initialized, labels do not.
	TokenLabel string
	// PIN is the user PIN. Either PIN or PinFile, not both.
	PIN string
	// PinFile holds the user PIN (surrounding whitespace is trimmed).
	PinFile string
	// PoolSize bounds the sessions used for operations (default 4).
	// Operations beyond it wait for a session or for their context.
	PoolSize int
	// KeyCacheSize bounds the unwrapped keys kept as session objects
	// (default 1024); the least recently used are destroyed.
	KeyCacheSize int
	// HealthInterval is how often a background probe checks the token
	// (default 10s; negative turns the probe off, then call Check).
	HealthInterval time.Duration
	// Logger receives the token's logs (never key material); it is named
	// "hsm". Default: discard.
	Logger hclog.Logger
	// Metrics, if set, receives the token's collectors, labelled with the
	// token label so several tokens can share a registry.
	Metrics prometheus.Registerer
}

func (c *Config) pin() (string, error) {
	switch {
	case c.PIN != "" && c.PinFile != "":
		return "", errors.New("hsm: give a PIN or a PIN file, not both")
	case c.PIN != "":
		return c.PIN, nil
	case c.PinFile != "":
		return ReadPinFile(c.PinFile)
	}
	return "", errors.New("hsm: no PIN: set PIN or PinFile")
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.PoolSize <= 0 {
		out.PoolSize = 4
	}
	if out.KeyCacheSize <= 0 {
		out.KeyCacheSize = 1024
	}
	if out.HealthInterval == 0 {
		out.HealthInterval = 10 * time.Second
	}
	if out.Logger == nil {
		out.Logger = hclog.NewNullLogger()
	}
	out.Logger = out.Logger.Named("hsm")
	return out
}

// ReadPinFile reads a PIN file: the PIN, surrounding whitespace ignored.
func ReadPinFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("hsm: read PIN file: %w", err)
	}
	pin := string(bytes.TrimSpace(data))
	if pin == "" {
		return "", fmt.Errorf("hsm: PIN file %s is empty", path)
	}
	return pin, nil
}

// ReadDomainKeyFile reads a domain key file: base64 of 32 bytes, surrounding
// whitespace ignored (`head -c 32 /dev/urandom | base64 > domain.key`).
func ReadDomainKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hsm: read domain key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil || len(key) != DomainKeySize {
		clear(key)
		return nil, fmt.Errorf("hsm: domain key file %s must hold base64 of %d bytes", path, DomainKeySize)
	}
	return key, nil
}

// tokenAPI is the method set both builds of Token have; the assertion below
// keeps the cgo and the stub builds from drifting apart.
type tokenAPI interface {
	Label() string
	Health() Health
	Check(ctx context.Context) error
	Close() error
	Enroll(ctx context.Context, domain string, key []byte) (EnrollResult, error)
	DomainCheckValue(ctx context.Context, domain string) ([]byte, error)
	Domains(ctx context.Context) ([]Domain, error)
	GenerateKey(ctx context.Context, domain string, spec KeySpec, usage Usage) (*GeneratedKey, error)
	ImportKey(ctx context.Context, domain string, spec KeySpec, material []byte) (*GeneratedKey, error)
	Unwrap(ctx context.Context, ref KeyRef) error
	Forget(id string)
	Encrypt(ctx context.Context, ref KeyRef, iv, plaintext, aad []byte) ([]byte, error)
	Decrypt(ctx context.Context, ref KeyRef, iv, ciphertext, aad []byte) ([]byte, error)
	Sign(ctx context.Context, ref KeyRef, alg SignAlgorithm, digest []byte) ([]byte, error)
	DecryptAsymmetric(ctx context.Context, ref KeyRef, alg EncryptAlgorithm, ciphertext []byte) ([]byte, error)
}

var _ tokenAPI = (*Token)(nil)
