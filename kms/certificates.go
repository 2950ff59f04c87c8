package kms

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/hsm"
)

// Certificates (fsm/certificates.go holds the model): the core's
// operations.
//
//   - CreateCertificate makes a key pair in the store a key of the same
//     instance would use (software: wrapped under the root key, as key
//     versions are; a hardware instance: generated in a token of its HSM
//     domain) and signs a PKCS#10 request with it. The private key never
//     leaves the cluster: the SDK (v3.2.3) has no action that exports a
//     certificate's private key, so ExportablePrivateKey is recorded and
//     answered by DescribeCertificate, and nothing ever exports it.
//   - UploadCertificate takes the issued certificate only if its public key
//     is the pair's.
//   - The private-key operations (CertificatePrivateKeySign,
//     CertificatePrivateKeyDecrypt) need an ACTIVE certificate within its
//     validity; the public-key ones (CertificatePublicKeyVerify,
//     CertificatePublicKeyEncrypt) need the certificate uploaded.
//   - Authorization: RAM actions kms:<Action> on
//     acs:kms:<region>:<account>:certificate/<id> (certificates_authz.go).

// Certificate message types.
const (
	MessageTypeRaw    = "RAW"
	MessageTypeDigest = "DIGEST"
)

// Sizes of what UploadCertificate keeps in the catalogue (and so in the
// Raft log): a certificate, and its chain, in PEM.
const (
	MaxCertificatePEM      = 16 << 10
	MaxCertificateChainPEM = 64 << 10
)

// MaxCertificateMessage is the largest RAW message signed or verified
// (the reference's 4 KiB, as AsymmetricSign's digest is small).
const MaxCertificateMessage = 4096

// CertificateInput is CreateCertificate's input.
type CertificateInput struct {
	KeySpec    string
	Subject    string // RFC 2253 DN, or a JSON object of its attributes
	SANs       string // JSON: an array of names, or an object of names
	Exportable bool
	InstanceID string // DKMSInstanceId (an extension of raftkms); "": software
	Tags       map[string]string
}

// CertificateSignInput is CertificatePrivateKeySign's and (with
// Signature) CertificatePublicKeyVerify's input.
type CertificateSignInput struct {
	ID          string
	Algorithm   string
	Message     []byte
	MessageType string // RAW (default) or DIGEST
	Signature   []byte
}

// CertificateCryptInput is CertificatePublicKeyEncrypt's (Data: plaintext)
// and CertificatePrivateKeyDecrypt's (Data: ciphertext) input.
type CertificateCryptInput struct {
	ID        string
	Algorithm string
	Data      []byte
}

// CertificateArn is a certificate's ARN:
// acs:kms:<region>:<account>:certificate/<id>.
func (s *Service) CertificateArn(x *fsm.Certificate) string {
	return "acs:kms:" + s.cfg.Region + ":" + x.AccountID + ":certificate/" + x.ID
}

// certificateKey is the key a certificate's pair is to the key stores: the
// certificate's id, its spec and instance. An RSA pair has the HSM usage
// of certificates (a token key signs and decrypts: hsm.UsageCertificate);
// an EC pair signs.
func certificateKey(x *fsm.Certificate) *fsm.Key {
	usage := UsageSignVerify
	if kcrypto.IsRSA(x.KeySpec) {
		usage = string(hsm.UsageCertificate)
	}
	return &fsm.Key{ID: x.ID, AccountID: x.AccountID, InstanceID: x.InstanceID, Spec: x.KeySpec,
		Usage: usage, Versions: []string{x.Key.ID}}
}

func checkCertificateSpec(spec string) error {
	switch spec {
	case "":
		return missing(FieldKeySpec)
	case kcrypto.SpecRSA2048, kcrypto.SpecRSA3072, kcrypto.SpecECP256, kcrypto.SpecECP256K:
		return nil
	}
	return invalid(FieldKeySpec, fmt.Sprintf("%q is not RSA_2048, RSA_3072, EC_P256 or EC_P256K", shorten(spec)))
}

// CreateCertificate makes a key pair and its certificate request.
func (s *Service) CreateCertificate(ctx context.Context, c Caller, in CertificateInput) (*fsm.Certificate, uint64, error) {
	if err := checkCertificateSpec(in.KeySpec); err != nil {
		return nil, 0, err
	}
	attrs, err := parseSubject(in.Subject)
	if err != nil {
		return nil, 0, err
	}
	sans, err := parseSANs(in.SANs)
	if err != nil {
		return nil, 0, err
	}
	if len(in.Tags) > fsm.MaxTagsPerCertificate {
		return nil, 0, invalid(FieldTags, fmt.Sprintf("at most %d tags", fsm.MaxTagsPerCertificate))
	}
	tags := make(map[string]string, len(in.Tags))
	for k, v := range in.Tags {
		if err := checkTag(Tag{Key: k, Value: v}); err != nil {
			return nil, 0, err
		}
		tags[k] = v
	}
	if in.InstanceID != "" {
		ok, err := s.found(ctx, func() bool { inst, ok := s.fsm.Instance(in.InstanceID); return ok && inst.AccountID == c.AccountID })
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, fmt.Errorf("%w: DKMSInstanceId %s", fsm.ErrInstanceNotFound, in.InstanceID)
		}
	}
	x := fsm.Certificate{
		ID: newUUID(), AccountID: c.AccountID, InstanceID: in.InstanceID, KeySpec: in.KeySpec,
		Subject: subjectDN(attrs), SANs: sans, Exportable: in.Exportable, Tags: tags,
	}
	if err := s.authorizeCertificate(ctx, c, "kms:CreateCertificate", &x); err != nil {
		return nil, 0, err
	}
	if isDryRun(ctx) {
		return nil, 0, ErrDryRun
	}
	now := s.nowMillis()
	k := certificateKey(&x)
	if x.Key, err = s.storeForKey(k).NewVersion(ctx, k, now); err != nil {
		return nil, 0, err
	}
	info, alg, algID, err := csrToBeSigned(x.KeySpec, attrs, sans, x.Key.PublicKey)
	if err != nil {
		return nil, 0, err
	}
	digest := sha256.Sum256(info)
	sig, err := s.storeFor(&x.Key).Sign(ctx, k, &x.Key, alg, digest[:])
	if err != nil {
		return nil, 0, err
	}
	if x.CSR, err = marshalSigned(info, algID, sig); err != nil {
		return nil, 0, err
	}
	idx, err := s.propose(ctx, fsm.CmdCreateCertificate, fsm.CreateCertificateCmd{Now: now, Certificate: x})
	if err != nil {
		return nil, idx, err
	}
	if got, ok := s.fsm.Certificate(x.ID); ok {
		return got, idx, nil
	}
	x.Status, x.CreatedAt, x.UpdatedAt, x.ModifyIndex = fsm.CertPending, now, now, idx
	return &x, idx, nil
}

// certificateFor finds a certificate of the caller's account (a miss costs
// one read-index round trip before it is final) and authorizes action on
// it. Another account's certificate is not found.
func (s *Service) certificateFor(ctx context.Context, c Caller, action, id string) (*fsm.Certificate, error) {
	if id == "" {
		return nil, missing(FieldCertificateID)
	}
	if len(id) > 128 {
		return nil, invalid(FieldCertificateID, "at most 128 characters")
	}
	x, ok := s.fsm.Certificate(id)
	if !ok || x.AccountID != c.AccountID {
		if err := s.confirmAbsent(ctx, "the certificate"); err != nil {
			return nil, err
		}
		x, ok = s.fsm.Certificate(id)
	}
	if !ok || x.AccountID != c.AccountID {
		return nil, fmt.Errorf("%w: %s", fsm.ErrCertificateNotFound, id)
	}
	if err := s.authorizeCertificate(ctx, c, action, x); err != nil {
		return nil, err
	}
	return x, nil
}

// UploadCertificate adds the certificate a CA issued for the request (PEM)
// and, optionally, its chain (PEM); the certificate's public key must be
// the certificate's key pair.
func (s *Service) UploadCertificate(ctx context.Context, c Caller, id, certificate, chain string) (uint64, error) {
	if certificate == "" {
		return 0, missing(FieldCertificate)
	}
	if len(certificate) > MaxCertificatePEM {
		return 0, invalid(FieldCertificate, fmt.Sprintf("at most %d bytes of PEM", MaxCertificatePEM))
	}
	if len(chain) > MaxCertificateChainPEM {
		return 0, invalid(FieldCertificateChain, fmt.Sprintf("at most %d bytes of PEM", MaxCertificateChainPEM))
	}
	ders, err := parsePEMCertificates(FieldCertificate, certificate)
	if err != nil {
		return 0, err
	}
	if len(ders) != 1 {
		return 0, invalid(FieldCertificate, "one certificate (the chain goes in CertificateChain)")
	}
	if chain != "" {
		if _, err := parsePEMCertificates(FieldCertificateChain, chain); err != nil {
			return 0, err
		}
	}
	x, err := s.certificateFor(ctx, c, "kms:UploadCertificate", id)
	if err != nil {
		return 0, err
	}
	info, err := ParseCertificateDER(ders[0])
	if err != nil {
		return 0, invalid(FieldCertificate, err.Error())
	}
	if string(info.PublicKey) != string(x.Key.PublicKey) {
		return 0, fmt.Errorf("%w: %s", fsm.ErrCertificateMismatch, x.ID)
	}
	if x.Status != fsm.CertPending {
		return 0, fmt.Errorf("%w: certificate %s is %s; a certificate is uploaded once", fsm.ErrCertificateStatus, x.ID, x.Status)
	}
	return s.propose(ctx, fsm.CmdUploadCertificate, fsm.UploadCertificateCmd{
		Now: s.nowMillis(), AccountID: x.AccountID, ID: x.ID, Cert: ders[0], Chain: chain,
		PublicKey: info.PublicKey, NotBefore: info.NotBefore.UnixMilli(), NotAfter: info.NotAfter.UnixMilli(),
	})
}

// GetCertificate returns a certificate with its request, certificate and
// chain.
func (s *Service) GetCertificate(ctx context.Context, c Caller, id string) (*fsm.Certificate, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	return s.certificateFor(ctx, c, "kms:GetCertificate", id)
}

// DescribeCertificate returns a certificate and what its X.509 says (zero
// before the upload).
func (s *Service) DescribeCertificate(ctx context.Context, c Caller, id string) (*fsm.Certificate, CertificateInfo, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, CertificateInfo{}, err
	}
	x, err := s.certificateFor(ctx, c, "kms:DescribeCertificate", id)
	if err != nil {
		return nil, CertificateInfo{}, err
	}
	if len(x.Cert) == 0 {
		return x, CertificateInfo{Subject: x.Subject, PublicKey: x.Key.PublicKey, SANs: x.SANs}, nil
	}
	info, err := ParseCertificateDER(x.Cert)
	if err != nil {
		return nil, CertificateInfo{}, fmt.Errorf("certificate %s: %w", x.ID, err)
	}
	return x, info, nil
}

// UpdateCertificateStatus sets the status: ACTIVE, INACTIVE or REVOKED
// (final).
func (s *Service) UpdateCertificateStatus(ctx context.Context, c Caller, id, status string) (uint64, error) {
	switch status {
	case "":
		return 0, missing(FieldCertificateStatus)
	case fsm.CertActive, fsm.CertInactive, fsm.CertRevoked:
	default:
		return 0, invalid(FieldCertificateStatus, fmt.Sprintf("%q is not ACTIVE, INACTIVE or REVOKED", shorten(status)))
	}
	x, err := s.certificateFor(ctx, c, "kms:UpdateCertificateStatus", id)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdUpdateCertificateStatus, fsm.UpdateCertificateStatusCmd{Now: s.nowMillis(), AccountID: x.AccountID, ID: x.ID, Status: status})
}

// DeleteCertificate removes a certificate and its key pair.
func (s *Service) DeleteCertificate(ctx context.Context, c Caller, id string) (uint64, error) {
	x, err := s.certificateFor(ctx, c, "kms:DeleteCertificate", id)
	if err != nil {
		return 0, err
	}
	idx, err := s.propose(ctx, fsm.CmdDeleteCertificate, fsm.DeleteCertificateCmd{Now: s.nowMillis(), AccountID: x.AccountID, ID: x.ID})
	if err == nil {
		s.forgetKey(certificateKey(x))
	}
	return idx, err
}

// usableCertificate refuses a private-key operation on a certificate that
// is not ACTIVE or not within its validity.
func (s *Service) usableCertificate(x *fsm.Certificate) error {
	if x.Status != fsm.CertActive {
		return fmt.Errorf("%w: certificate %s is %s", fsm.ErrCertificateStatus, x.ID, x.Status)
	}
	now := s.nowMillis()
	if now > x.NotAfter {
		return fmt.Errorf("%w: certificate %s expired at %s", fsm.ErrCertificateExpired, x.ID, time.UnixMilli(x.NotAfter).UTC().Format(time.RFC3339))
	}
	if now < x.NotBefore {
		return fmt.Errorf("%w: certificate %s is valid from %s", fsm.ErrCertificateExpired, x.ID, time.UnixMilli(x.NotBefore).UTC().Format(time.RFC3339))
	}
	return nil
}

// uploaded refuses a public-key operation before the certificate is there.
func uploaded(x *fsm.Certificate) error {
	if len(x.Cert) == 0 {
		return fmt.Errorf("%w: certificate %s has no certificate yet (UploadCertificate)", fsm.ErrCertificateStatus, x.ID)
	}
	return nil
}

// certificateDigest is the SHA-256 digest a signature covers: of Message
// (RAW) or Message itself (DIGEST).
func certificateDigest(spec, alg, messageType string, message []byte) ([]byte, error) {
	if err := checkSignAlgorithm(spec, alg); err != nil {
		return nil, err
	}
	if len(message) == 0 {
		return nil, missing(FieldMessage)
	}
	switch messageType {
	case "", MessageTypeRaw:
		if len(message) > MaxCertificateMessage {
			return nil, invalid(FieldMessage, fmt.Sprintf("a RAW message is at most %d bytes; send its SHA-256 digest with MessageType DIGEST", MaxCertificateMessage))
		}
		d := sha256.Sum256(message)
		return d[:], nil
	case MessageTypeDigest:
		if len(message) != sha256.Size {
			return nil, invalid(FieldMessage, "a DIGEST message is a 32-byte SHA-256 digest")
		}
		return message, nil
	}
	return nil, invalid(FieldMessageType, fmt.Sprintf("%q is not RAW or DIGEST", shorten(messageType)))
}

// CertificatePrivateKeySign signs a message (or its digest) with the
// certificate's private key.
func (s *Service) CertificatePrivateKeySign(ctx context.Context, c Caller, in CertificateSignInput) ([]byte, error) {
	if in.Algorithm == "" {
		return nil, missing(FieldAlgorithm)
	}
	x, err := s.certificateFor(ctx, c, "kms:CertificatePrivateKeySign", in.ID)
	if err != nil {
		return nil, err
	}
	digest, err := certificateDigest(x.KeySpec, in.Algorithm, in.MessageType, in.Message)
	if err != nil {
		return nil, err
	}
	if err := s.usableCertificate(x); err != nil {
		return nil, err
	}
	if isDryRun(ctx) {
		return nil, ErrDryRun
	}
	return s.storeFor(&x.Key).Sign(ctx, certificateKey(x), &x.Key, in.Algorithm, digest)
}

// CertificatePublicKeyVerify checks a signature with the certificate's
// public key.
func (s *Service) CertificatePublicKeyVerify(ctx context.Context, c Caller, in CertificateSignInput) (bool, error) {
	if in.Algorithm == "" {
		return false, missing(FieldAlgorithm)
	}
	if len(in.Signature) == 0 {
		return false, missing(FieldSignatureValue)
	}
	x, err := s.certificateFor(ctx, c, "kms:CertificatePublicKeyVerify", in.ID)
	if err != nil {
		return false, err
	}
	digest, err := certificateDigest(x.KeySpec, in.Algorithm, in.MessageType, in.Message)
	if err != nil {
		return false, err
	}
	if err := uploaded(x); err != nil {
		return false, err
	}
	if isDryRun(ctx) {
		return false, ErrDryRun
	}
	return kcrypto.Verify(x.KeySpec, in.Algorithm, x.Key.PublicKey, digest, in.Signature)
}

// CertificatePublicKeyEncrypt encrypts with the certificate's RSA public
// key (RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256).
func (s *Service) CertificatePublicKeyEncrypt(ctx context.Context, c Caller, in CertificateCryptInput) ([]byte, error) {
	if in.Algorithm == "" {
		return nil, missing(FieldAlgorithm)
	}
	if len(in.Data) == 0 {
		return nil, missing(FieldPlaintext)
	}
	x, err := s.certificateFor(ctx, c, "kms:CertificatePublicKeyEncrypt", in.ID)
	if err != nil {
		return nil, err
	}
	if err := checkOAEP(x.KeySpec, in.Algorithm); err != nil {
		return nil, err
	}
	max, err := kcrypto.MaxOAEPPlaintext(x.KeySpec, in.Algorithm)
	if err != nil {
		return nil, invalid(FieldAlgorithm, err.Error())
	}
	if len(in.Data) > max {
		return nil, invalid(FieldPlaintext, fmt.Sprintf("at most %d bytes with %s and %s", max, x.KeySpec, in.Algorithm))
	}
	if err := uploaded(x); err != nil {
		return nil, err
	}
	if isDryRun(ctx) {
		return nil, ErrDryRun
	}
	return kcrypto.EncryptOAEP(in.Algorithm, x.Key.PublicKey, in.Data)
}

// CertificatePrivateKeyDecrypt decrypts an RSA-OAEP ciphertext with the
// certificate's private key.
func (s *Service) CertificatePrivateKeyDecrypt(ctx context.Context, c Caller, in CertificateCryptInput) ([]byte, error) {
	if in.Algorithm == "" {
		return nil, missing(FieldAlgorithm)
	}
	if len(in.Data) == 0 {
		return nil, missing(FieldCiphertext)
	}
	x, err := s.certificateFor(ctx, c, "kms:CertificatePrivateKeyDecrypt", in.ID)
	if err != nil {
		return nil, err
	}
	if err := checkOAEP(x.KeySpec, in.Algorithm); err != nil {
		return nil, err
	}
	if err := s.usableCertificate(x); err != nil {
		return nil, err
	}
	if isDryRun(ctx) {
		return nil, ErrDryRun
	}
	return s.storeFor(&x.Key).DecryptAsymmetric(ctx, certificateKey(x), &x.Key, in.Algorithm, in.Data)
}

// TagCertificate sets tags on a certificate (kms:TagResource on it).
func (s *Service) TagCertificate(ctx context.Context, c Caller, id string, tags []Tag) (uint64, error) {
	m, err := tagsToSet(tags, fsm.MaxTagsPerCertificate)
	if err != nil {
		return 0, err
	}
	x, err := s.certificateFor(ctx, c, "kms:TagResource", id)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdTagCertificate, fsm.TagCertificateCmd{Now: s.nowMillis(), AccountID: x.AccountID, ID: x.ID, Tags: m})
}

// UntagCertificate removes tags (by key) from a certificate
// (kms:UntagResource on it).
func (s *Service) UntagCertificate(ctx context.Context, c Caller, id string, tagKeys []string) (uint64, error) {
	if err := checkTagKeys(tagKeys, fsm.MaxTagsPerCertificate); err != nil {
		return 0, err
	}
	x, err := s.certificateFor(ctx, c, "kms:UntagResource", id)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdTagCertificate, fsm.TagCertificateCmd{Now: s.nowMillis(), AccountID: x.AccountID, ID: x.ID, Remove: tagKeys})
}

// CertificateTags returns a certificate's tags, sorted by key
// (kms:ListTagResources on it), for the batch tag actions.
func (s *Service) CertificateTags(ctx context.Context, c Caller, id string) ([]Tag, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	x, err := s.certificateFor(ctx, c, "kms:ListTagResources", id)
	if err != nil {
		return nil, err
	}
	out := make([]Tag, 0, len(x.Tags))
	for k, v := range x.Tags {
		out = append(out, Tag{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
