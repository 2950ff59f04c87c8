//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// Domain keys are token objects with CKA_ID "raftkms:domain:<name>" and
// CKA_LABEL "raftkms domain <name>"; the prefix keeps them apart from any
// other object an operator keeps in the token.
const domainIDPrefix = "raftkms:domain:"

func domainID(domain string) []byte { return []byte(domainIDPrefix + domain) }

func attr(typ uint, v any) *pkcs11.Attribute { return pkcs11.NewAttribute(typ, v) }

func mech(m uint, param any) []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, param)}
}

// SoftHSM turns on every usage attribute a template leaves out, so every
// template below names every usage, true or false.

func secretUsage(encrypt, wrap bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_ENCRYPT, encrypt), attr(pkcs11.CKA_DECRYPT, encrypt),
		attr(pkcs11.CKA_WRAP, wrap), attr(pkcs11.CKA_UNWRAP, wrap),
		attr(pkcs11.CKA_SIGN, false), attr(pkcs11.CKA_VERIFY, false),
		attr(pkcs11.CKA_DERIVE, false),
	}
}

func privateUsage(sign, decrypt bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_SIGN, sign), attr(pkcs11.CKA_DECRYPT, decrypt),
		attr(pkcs11.CKA_SIGN_RECOVER, false), attr(pkcs11.CKA_UNWRAP, false),
		attr(pkcs11.CKA_DERIVE, false),
	}
}

func publicUsage(verify, encrypt bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_VERIFY, verify), attr(pkcs11.CKA_ENCRYPT, encrypt),
		attr(pkcs11.CKA_VERIFY_RECOVER, false), attr(pkcs11.CKA_WRAP, false),
		attr(pkcs11.CKA_DERIVE, false),
	}
}

// domainKeyTemplate: a token object that can only wrap and unwrap. It is
// not modifiable, because a domain key with CKA_DECRYPT turned on could
// undo any wrap block by block with CKM_AES_ECB; not copyable for the same
// reason.
func domainKeyTemplate(domain string, key []byte) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, false),
		attr(pkcs11.CKA_MODIFIABLE, false),
		attr(pkcs11.CKA_COPYABLE, false),
		attr(pkcs11.CKA_LABEL, "raftkms domain "+domain),
		attr(pkcs11.CKA_ID, domainID(domain)),
		attr(pkcs11.CKA_VALUE, key),
	}, secretUsage(false, true)...)
}

// workingTemplate is what an unwrapped working key looks like: a session
// object of the keeper, sensitive, not extractable (so it can never leave
// the token again, not even wrapped), with only its usage turned on.
// (SoftHSM refuses CKA_MODIFIABLE in an unwrap template with
// CKR_ATTRIBUTE_READ_ONLY; a session object is visible to this process
// only, and EXTRACTABLE and SENSITIVE cannot be undone anyway.)
func workingTemplate(spec KeySpec, usage Usage) []*pkcs11.Attribute {
	base := []*pkcs11.Attribute{
		attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, false),
	}
	switch {
	case spec.IsSymmetric():
		base = append(base, attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES))
		return append(base, secretUsage(true, false)...)
	case spec.IsRSA():
		base = append(base, attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA))
		return append(base, privateUsage(usage.Signs(), usage.Decrypts())...)
	default:
		base = append(base, attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC))
		return append(base, privateUsage(true, false)...)
	}
}

// domainKey returns the handle of the domain's key, looking it up by CKA_ID
// on the first use after the keeper opened.
func (t *Token) domainKey(domain string) (pkcs11.ObjectHandle, error) {
	t.kmu.Lock()
	defer t.kmu.Unlock()
	return t.domainKeyLocked(domain)
}

func (t *Token) domainKeyLocked(domain string) (pkcs11.ObjectHandle, error) {
	if !t.keeperLocked() {
		return 0, errKeeperLost
	}
	if h, ok := t.domains[domain]; ok {
		return h, nil
	}
	hs, err := t.findLocked([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_ID, domainID(domain)),
	})
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, fmt.Errorf("%w: %q in token %q", ErrDomainNotEnrolled, domain, t.cfg.TokenLabel)
	case 1:
		t.domains[domain] = hs[0]
		return hs[0], nil
	}
	return 0, fmt.Errorf("hsm: token %q holds %d keys for domain %q", t.cfg.TokenLabel, len(hs), domain)
}

// findLocked lists the objects matching tmpl through the keeper session.
func (t *Token) findLocked(tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := t.ctx.FindObjectsInit(t.keeper.h, tmpl); err != nil {
		return nil, err
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := t.ctx.FindObjects(t.keeper.h, 64)
		if err != nil {
			_ = t.ctx.FindObjectsFinal(t.keeper.h)
			return nil, err
		}
		all = append(all, hs...)
		if len(hs) < 64 {
			break
		}
	}
	return all, t.ctx.FindObjectsFinal(t.keeper.h)
}

// checkDomainName rejects names that cannot be an HSM domain.
func checkDomainName(domain string) error {
	if domain == "" || len(domain) > 64 || strings.TrimSpace(domain) != domain {
		return fmt.Errorf("%w: domain name %q (1-64 characters, no surrounding spaces)", ErrInvalidParameter, domain)
	}
	return nil
}

// Enroll imports key as the token's domain key for domain: a token object
// that only wraps and unwraps, sensitive and never extractable. It is
// idempotent: if the token already holds this very key for the domain,
// Created is false. A different key for the domain is ErrDomainKeyMismatch.
func (t *Token) Enroll(ctx context.Context, domain string, key []byte) (EnrollResult, error) {
	if err := checkDomainName(domain); err != nil {
		return EnrollResult{}, err
	}
	if len(key) != DomainKeySize {
		return EnrollResult{}, fmt.Errorf("%w: a domain key is %d bytes, got %d", ErrInvalidParameter, DomainKeySize, len(key))
	}
	kcv, err := KeyCheckValue(key)
	if err != nil {
		return EnrollResult{}, err
	}
	res := EnrollResult{Domain: domain, CheckValue: kcv}
	err = t.run(ctx, "enroll", func(pkcs11.SessionHandle, uint64) error {
		t.kmu.Lock()
		defer t.kmu.Unlock()
		delete(t.domains, domain) // look again: someone may have enrolled meanwhile
		h, err := t.domainKeyLocked(domain)
		switch {
		case err == nil:
			res.Created = false
			return t.sameDomainKeyLocked(domain, h, key, kcv)
		case !isNotEnrolled(err):
			return err
		}
		h, err = t.ctx.CreateObject(t.keeper.h, domainKeyTemplate(domain, key))
		if err != nil {
			return fmt.Errorf("create domain key: %w", err)
		}
		got, err := t.checkValueLocked(h)
		if err != nil || !bytes.Equal(got, kcv) {
			// The token computed a different KCV than Go: do not leave a
			// key behind that the cluster would then mistrust.
			_ = t.ctx.DestroyObject(t.keeper.h, h)
			if err == nil {
				err = fmt.Errorf("hsm: token reports check value %x for the new domain key, expected %x", got, kcv)
			}
			return err
		}
		t.domains[domain] = h
		res.Created = true
		return nil
	})
	if err == nil {
		t.log.Info("domain enrolled", "domain", domain, "kcv", fmt.Sprintf("%x", kcv), "created", res.Created)
	}
	return res, err
}

func isNotEnrolled(err error) bool { return err != nil && errors.Is(err, ErrDomainNotEnrolled) }

// sameDomainKeyLocked decides whether the token's domain key h equals key.
// The 3-byte KCV tells different keys apart, but equal KCVs happen by
// chance once in 2^24; so equality is proven by unwrapping, with h, a
// probe key wrapped in Go under key, and encrypting a block with it.
func (t *Token) sameDomainKeyLocked(domain string, h pkcs11.ObjectHandle, key, kcv []byte) error {
	mismatch := fmt.Errorf("%w: domain %q in token %q", ErrDomainKeyMismatch, domain, t.cfg.TokenLabel)
	got, err := t.checkValueLocked(h)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, kcv) {
		return fmt.Errorf("%w (check value %x, the given key's is %x)", mismatch, got, kcv)
	}
	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return err
	}
	defer clear(probe)
	blob, err := WrapKeyPad(key, probe)
	if err != nil {
		return err
	}
	tmpl := append([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false),
	}, secretUsage(true, false)...)
	ph, err := t.ctx.UnwrapKey(t.keeper.h, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), h, blob, tmpl)
	if err != nil {
		if t.refused(t.keeper.h, err, unwrapRefusals) {
			return mismatch
		}
		return err
	}
	defer t.ctx.DestroyObject(t.keeper.h, ph)
	if err := t.ctx.EncryptInit(t.keeper.h, mech(pkcs11.CKM_AES_ECB, nil), ph); err != nil {
		return err
	}
	ct, err := t.ctx.Encrypt(t.keeper.h, make([]byte, aes.BlockSize))
	if err != nil {
		return err
	}
	want, _ := KeyCheckValue(probe)
	if !bytes.Equal(ct[:3], want) {
		return mismatch
	}
	return nil
}

func (t *Token) checkValueLocked(h pkcs11.ObjectHandle) ([]byte, error) {
	as, err := t.ctx.GetAttributeValue(t.keeper.h, h, []*pkcs11.Attribute{attr(pkcs11.CKA_CHECK_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("read CKA_CHECK_VALUE: %w", err)
	}
	return as[0].Value, nil
}

// DomainCheckValue returns the token's CKA_CHECK_VALUE for the domain's key
// (3 bytes; KeyCheckValue of the same key gives the same bytes). The
// cluster records it when the first token of a domain joins and refuses to
// route to a token whose value differs.
func (t *Token) DomainCheckValue(ctx context.Context, domain string) ([]byte, error) {
	var kcv []byte
	err := t.run(ctx, "domain_check_value", func(pkcs11.SessionHandle, uint64) error {
		t.kmu.Lock()
		defer t.kmu.Unlock()
		h, err := t.domainKeyLocked(domain)
		if err != nil {
			return err
		}
		kcv, err = t.checkValueLocked(h)
		return err
	})
	return kcv, err
}

// Domains lists the HSM domains enrolled in the token, with check values:
// what the node advertises.
func (t *Token) Domains(ctx context.Context) ([]Domain, error) {
	var out []Domain
	err := t.run(ctx, "domains", func(pkcs11.SessionHandle, uint64) error {
		out = nil
		t.kmu.Lock()
		defer t.kmu.Unlock()
		if !t.keeperLocked() {
			return errKeeperLost
		}
		hs, err := t.findLocked([]*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			attr(pkcs11.CKA_TOKEN, true),
		})
		if err != nil {
			return err
		}
		for _, h := range hs {
			as, err := t.ctx.GetAttributeValue(t.keeper.h, h, []*pkcs11.Attribute{attr(pkcs11.CKA_ID, nil), attr(pkcs11.CKA_CHECK_VALUE, nil)})
			if err != nil {
				return err
			}
			id := string(as[0].Value)
			if name, ok := strings.CutPrefix(id, domainIDPrefix); ok {
				out = append(out, Domain{Name: name, CheckValue: as[1].Value})
			}
		}
		return nil
	})
	return out, err
}

// GenerateKey makes a key of spec inside the token and returns it wrapped
// under the domain key, with its public key. The key exists unwrapped only
// as session objects of one pool session, destroyed before returning (and
// with the session if anything fails); the token keeps nothing.
func (t *Token) GenerateKey(ctx context.Context, domain string, spec KeySpec, usage Usage) (*GeneratedKey, error) {
	usage, err := checkUsage(spec, usage)
	if err != nil {
		return nil, err
	}
	var out *GeneratedKey
	err = t.run(ctx, "generate", func(sh pkcs11.SessionHandle, _ uint64) error {
		dk, err := t.domainKey(domain)
		if err != nil {
			return err
		}
		g := &GeneratedKey{Domain: domain, Spec: spec, Usage: usage}
		var priv pkcs11.ObjectHandle
		switch {
		case spec.IsSymmetric():
			tmpl := append(generatedTemplate(pkcs11.CKO_SECRET_KEY, pkcs11.CKK_AES),
				attr(pkcs11.CKA_VALUE_LEN, spec.size()))
			tmpl = append(tmpl, secretUsage(true, false)...)
			priv, err = t.ctx.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), tmpl)
			if err != nil {
				return fmt.Errorf("generate %s: %w", spec, err)
			}
		case spec.IsRSA():
			pubT := append([]*pkcs11.Attribute{
				attr(pkcs11.CKA_TOKEN, false),
				attr(pkcs11.CKA_MODULUS_BITS, spec.size()),
				attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			}, publicUsage(usage.Signs(), usage.Decrypts())...)
			privT := append(generatedTemplate(pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_RSA),
				privateUsage(usage.Signs(), usage.Decrypts())...)
			var pub pkcs11.ObjectHandle
			pub, priv, err = t.ctx.GenerateKeyPair(sh, mech(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil), pubT, privT)
			if err != nil {
				return fmt.Errorf("generate %s: %w", spec, err)
			}
			as, err := t.ctx.GetAttributeValue(sh, pub, []*pkcs11.Attribute{attr(pkcs11.CKA_MODULUS, nil), attr(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
			_ = t.ctx.DestroyObject(sh, pub)
			if err != nil {
				_ = t.ctx.DestroyObject(sh, priv)
				return fmt.Errorf("read %s public key: %w", spec, err)
			}
			if g.PublicKey, err = rsaSPKI(as[0].Value, as[1].Value); err != nil {
				_ = t.ctx.DestroyObject(sh, priv)
				return err
			}
		default:
			pubT := append([]*pkcs11.Attribute{
				attr(pkcs11.CKA_TOKEN, false),
				attr(pkcs11.CKA_EC_PARAMS, ecParams(spec)),
			}, publicUsage(true, false)...)
			privT := append(generatedTemplate(pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_EC), privateUsage(true, false)...)
			var pub pkcs11.ObjectHandle
			pub, priv, err = t.ctx.GenerateKeyPair(sh, mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil), pubT, privT)
			if err != nil {
				return fmt.Errorf("generate %s: %w", spec, err)
			}
			as, err := t.ctx.GetAttributeValue(sh, pub, []*pkcs11.Attribute{attr(pkcs11.CKA_EC_POINT, nil)})
			_ = t.ctx.DestroyObject(sh, pub)
			if err != nil {
				_ = t.ctx.DestroyObject(sh, priv)
				return fmt.Errorf("read %s public key: %w", spec, err)
			}
			point, err := ecPoint(as[0].Value)
			if err == nil {
				g.PublicKey, err = ecSPKI(spec, point)
			}
			if err != nil {
				_ = t.ctx.DestroyObject(sh, priv)
				return err
			}
		}
		g.Wrapped, err = t.ctx.WrapKey(sh, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), dk, priv)
		_ = t.ctx.DestroyObject(sh, priv)
		if err != nil {
			return fmt.Errorf("wrap %s under domain %q: %w", spec, domain, err)
		}
		out = g
		return nil
	})
	return out, err
}

// generatedTemplate: a fresh private or secret key is a session object,
// sensitive, and extractable only so that the domain key can wrap it.
func generatedTemplate(class, keyType uint) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, class),
		attr(pkcs11.CKA_KEY_TYPE, keyType),
		attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_PRIVATE, true),
		attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, true),
	}
}

// ImportKey brings external AES key material into the domain: the token
// creates it as a sensitive session object, wraps it under the domain key
// and destroys it, so the result is like GenerateKey's. Only AES specs:
// RSA and EC material would have to be split into PKCS#11 attributes, and
// the service imports only symmetric material.
func (t *Token) ImportKey(ctx context.Context, domain string, spec KeySpec, material []byte) (*GeneratedKey, error) {
	if !spec.IsSymmetric() {
		return nil, fmt.Errorf("%w: only AES material can be imported into an HSM domain, not %s", ErrInvalidParameter, spec)
	}
	if len(material) != spec.size() {
		return nil, fmt.Errorf("%w: %s material is %d bytes, got %d", ErrInvalidParameter, spec, spec.size(), len(material))
	}
	var out *GeneratedKey
	err := t.run(ctx, "import", func(sh pkcs11.SessionHandle, _ uint64) error {
		dk, err := t.domainKey(domain)
		if err != nil {
			return err
		}
		tmpl := append(generatedTemplate(pkcs11.CKO_SECRET_KEY, pkcs11.CKK_AES), attr(pkcs11.CKA_VALUE, material))
		h, err := t.ctx.CreateObject(sh, append(tmpl, secretUsage(true, false)...))
		if err != nil {
			return fmt.Errorf("import %s: %w", spec, err)
		}
		wrapped, err := t.ctx.WrapKey(sh, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), dk, h)
		_ = t.ctx.DestroyObject(sh, h)
		if err != nil {
			return fmt.Errorf("wrap imported %s under domain %q: %w", spec, domain, err)
		}
		out = &GeneratedKey{Domain: domain, Spec: spec, Usage: UsageEncrypt, Wrapped: wrapped}
		return nil
	})
	return out, err
}

// Unwrap loads ref into the token (a no-op when it is cached) and so checks
// that this token can serve it: ErrDomainNotEnrolled or ErrUnwrap if not.
// Operations unwrap on their own; Unwrap is for warming the cache and for
// checking a blob.
func (t *Token) Unwrap(ctx context.Context, ref KeyRef) error {
	return t.run(ctx, "unwrap", func(_ pkcs11.SessionHandle, _ uint64) error {
		k, err := t.pin(ref)
		if err != nil {
			return err
		}
		t.unpin(k)
		return nil
	})
}

// Forget drops a key from the cache and destroys its session object (once
// no operation uses it). Call it when a key version is disabled or deleted.
func (t *Token) Forget(id string) {
	t.destroy(t.cache.remove(id))
	t.m.cached.Set(float64(t.cache.len()))
}

// pin returns the cached handle for ref, unwrapping it on a miss, and pins
// it until unpin.
func (t *Token) pin(ref KeyRef) (*cachedKey, error) {
	usage, err := checkUsage(ref.Spec, ref.Usage)
	if err != nil {
		return nil, err
	}
	if ref.ID == "" || len(ref.Wrapped) == 0 {
		return nil, fmt.Errorf("%w: a key reference needs an ID and a wrapped key", ErrInvalidParameter)
	}
	if k := t.cache.get(ref, usage, t.gen.Load()); k != nil {
		return k, nil
	}
	t.kmu.Lock()
	defer t.kmu.Unlock()
	// Unwraps are serialized on the keeper; whoever waited may find the
	// key loaded by the goroutine before it.
	gen := t.gen.Load()
	if k := t.cache.get(ref, usage, gen); k != nil {
		return k, nil
	}
	if ref.Spec.IsSymmetric() && len(ref.Wrapped) != 8+ref.Spec.size() {
		// RFC 5649 of an n-byte AES key (n a multiple of 8) is n+8 bytes,
		// and the token checks the length inside against the blob's.
		return nil, fmt.Errorf("%w: key %s: %d bytes cannot hold an %s key", ErrUnwrap, ref.ID, len(ref.Wrapped), ref.Spec)
	}
	dk, err := t.domainKeyLocked(ref.Domain)
	if err != nil {
		return nil, err
	}
	h, err := t.ctx.UnwrapKey(t.keeper.h, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), dk, ref.Wrapped, workingTemplate(ref.Spec, usage))
	if err != nil {
		if t.refused(t.keeper.h, err, unwrapRefusals) {
			return nil, fmt.Errorf("%w: key %s (%s) with domain %q: %v", ErrUnwrap, ref.ID, ref.Spec, ref.Domain, err)
		}
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	if err := t.checkUnwrappedLocked(h, ref.Spec); err != nil {
		_ = t.ctx.DestroyObject(t.keeper.h, h)
		if classify(err) != classNone {
			return nil, err // the token failed, not the blob
		}
		return nil, fmt.Errorf("%w: key %s: %v", ErrUnwrap, ref.ID, err)
	}
	k := &cachedKey{id: ref.ID, h: h, gen: gen, spec: ref.Spec, usage: usage, wrapped: bytes.Clone(ref.Wrapped)}
	t.destroyLocked(t.cache.add(k))
	t.m.unwraps.Inc()
	t.m.cached.Set(float64(t.cache.len()))
	return k, nil
}

// unwrapRefusals are what modules answer when a blob is not a key wrapped
// under this domain key, or not a key of the stated type.
var unwrapRefusals = []uint{
	pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
	pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
	pkcs11.CKR_DATA_INVALID, pkcs11.CKR_DATA_LEN_RANGE,
	pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID,
	pkcs11.CKR_KEY_TYPE_INCONSISTENT, pkcs11.CKR_KEY_SIZE_RANGE,
}

// checkUnwrappedLocked makes sure an unwrapped key is of the spec the
// caller said: a blob of another key must not be used under a wrong name.
// AES keys are checked before unwrapping, by the blob's length (in pin):
// SoftHSM leaves CKA_VALUE_LEN of an unwrapped key at 0 and refuses it in
// the unwrap template (CKR_ATTRIBUTE_READ_ONLY).
func (t *Token) checkUnwrappedLocked(h pkcs11.ObjectHandle, spec KeySpec) error {
	switch {
	case spec.IsSymmetric():
		return nil
	case spec.IsRSA():
		as, err := t.ctx.GetAttributeValue(t.keeper.h, h, []*pkcs11.Attribute{attr(pkcs11.CKA_MODULUS, nil)})
		if err != nil {
			return err
		}
		if n := 8 * len(bytes.TrimLeft(as[0].Value, "\x00")); n != spec.size() {
			return fmt.Errorf("a %d-bit RSA key, not %s", n, spec)
		}
	default:
		as, err := t.ctx.GetAttributeValue(t.keeper.h, h, []*pkcs11.Attribute{attr(pkcs11.CKA_EC_PARAMS, nil)})
		if err != nil {
			return err
		}
		if !bytes.Equal(as[0].Value, ecParams(spec)) {
			return fmt.Errorf("an EC key on curve %x, not %s", as[0].Value, spec)
		}
	}
	return nil
}

func (t *Token) unpin(k *cachedKey) {
	if t.cache.unpin(k) {
		t.destroy([]*cachedKey{k})
	}
}

func (t *Token) destroy(ks []*cachedKey) {
	if len(ks) == 0 {
		return
	}
	t.kmu.Lock()
	defer t.kmu.Unlock()
	t.destroyLocked(ks)
}

// destroyLocked destroys evicted keys of the live keeper; keys of an older
// generation died with their session already.
func (t *Token) destroyLocked(ks []*cachedKey) {
	for _, k := range ks {
		if k.gen == t.gen.Load() && t.keeperLocked() {
			if err := t.ctx.DestroyObject(t.keeper.h, k.h); err != nil {
				t.log.Warn("destroy evicted key", "id", k.id, "error", err)
			}
		}
	}
}
