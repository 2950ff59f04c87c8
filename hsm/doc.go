// Package hsm is raftkms's PKCS#11 provider: it keeps HSM-protected key
// material inside a token and performs the operations of hardware keys there.
//
// It owns, per token: the slot (found by token label, since slot ids are
// random per token init), one logged-in keeper session for the life of the
// process (object handles die with the last session of an application), a
// bounded pool of operation sessions, the token objects that hold HSM domain
// keys (found by CKA_ID), a cache of working keys unwrapped as non-extractable
// session objects, recovery when the module reports lost sessions or a device
// error, and a health state the service advertises.
//
// An HSM domain is a set of tokens that hold the same AES-256 domain key
// (Enroll). Keys are generated inside a token (GenerateKey) and leave it only
// wrapped under the domain key with CKM_AES_KEY_WRAP_PAD (RFC 5649); the
// caller stores that blob and hands it back in a KeyRef for every operation;
// any token of the domain can serve it.
//
// It must not be required: the PKCS#11 backend needs cgo and lives behind the
// cgo build tag; without cgo, Open returns ErrNoHSMSupport and everything else
// in the package (key check values, RFC 5649, encodings) still works. It keeps
// no package-level metrics and never logs or returns key material; the only
// process-wide state is the module registry, because a PKCS#11 module can be
// initialized once per process.
//
// See DESIGN.md in this directory for the reasoning and SoftHSM's quirks.
package hsm
