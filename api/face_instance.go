package api

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dkmsapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util/protobuf/api"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
)

// The instance endpoint (--instance-addr): the API the reference's KMS
// Instance SDK speaks (dkms-gcs-0.2). It has its own HTTPS listener, not a
// path on the API's, and goes through the same request pipeline as every
// face:
//
//   - decode: POST / only; the action in x-kms-apiname; x-kms-apiversion
//     dkms-gcs-0.2. The body is left unread until the signature verified.
//   - authenticate: authorization "Bearer <base64 RSASSA-PKCS1-v1_5
//     SHA-256>" by the client key named in x-kms-acccesskeyid (the SDK's
//     spelling), over the SDK's string to sign, which covers the body's
//     content-sha256; the date within the clock skew; the client key known
//     (kms.ClientKey) and within its validity. Only then is the body read,
//     bounded, and its hash compared. A TLS client certificate is not
//     required and never checked.
//   - authorize: the core (kms.Caller.Client, authorizeClientKey).
//   - answer: the action's protobuf <Action>Response; errors as the
//     protobuf api.Error with the one table's code and status.

// instanceAPIVersion is the only protocol version the face speaks.
const instanceAPIVersion = "dkms-gcs-0.2"

// Errors of the instance face's decoding.
var errInstanceActionUnknown = fmt.Errorf("%w: the instance API has no such action", errUnknownAction)

// instanceAction is one row of the instance API's action table.
type instanceAction struct {
	class  string
	handle func(s *Server, c *call) (proto.Message, error)
}

// instanceActions is the instance API: adding an action is one entry here,
// protoAction(class, handler) with a handler taking the SDK's generated
// <Action>Request and returning its <Action>Response.
var instanceActions = map[string]instanceAction{
	"Encrypt":         protoAction(kms.ClassSymmetric, instanceEncrypt),
	"Decrypt":         protoAction(kms.ClassSymmetric, instanceDecrypt),
	"GenerateDataKey": protoAction(kms.ClassSymmetric, instanceGenerateDataKey),
	"GenerateRandom":  protoAction(kms.ClassSymmetric, instanceGenerateRandom),
	"GetPublicKey":    protoAction(kms.ClassAsymmetric, instanceGetPublicKey),
	"Sign":            protoAction(kms.ClassAsymmetric, instanceSign),
	"Verify":          protoAction(kms.ClassAsymmetric, instanceVerify),
	"GetSecretValue":  protoAction(kms.ClassRead, instanceGetSecretValue),

	"AdvanceEncrypt":                             protoAction(kms.ClassSymmetric, instanceAdvanceEncrypt),
	"AdvanceDecrypt":                             protoAction(kms.ClassSymmetric, instanceAdvanceDecrypt),
	"AdvanceGenerateDataKey":                     protoAction(kms.ClassSymmetric, instanceAdvanceGenerateDataKey),
	"GenerateDataKeyPair":                        protoAction(kms.ClassSymmetric, instanceGenerateDataKeyPair),
	"GenerateDataKeyPairWithoutPlaintext":        protoAction(kms.ClassSymmetric, instanceGenerateDataKeyPairWithoutPlaintext),
	"AdvanceGenerateDataKeyPair":                 protoAction(kms.ClassSymmetric, instanceAdvanceGenerateDataKeyPair),
	"AdvanceGenerateDataKeyPairWithoutPlaintext": protoAction(kms.ClassSymmetric, instanceAdvanceGenerateDataKeyPairWithoutPlaintext),
}

// protoAction decodes the body into Req before calling h.
func protoAction[Req any, P interface {
	*Req
	proto.Message
}](class string, h func(s *Server, c *call, req P) (proto.Message, error)) instanceAction {
	return instanceAction{class: class, handle: func(s *Server, c *call) (proto.Message, error) {
		req := P(new(Req))
		if err := proto.Unmarshal(c.body, req); err != nil {
			return nil, fmt.Errorf("%w: the body is not a protobuf %s: %v", errBadRequest, req.ProtoReflect().Descriptor().Name(), err)
		}
		return h(s, c, req)
	}}
}

// instanceFace is the instance API's face on the pipeline.
type instanceFace struct{ s *Server }

// InstanceHandler serves the instance endpoint: every path, through the
// request pipeline with the instance face. It is mounted on the instance
// listener by the node, never on the API's routes.
func (s *Server) InstanceHandler() http.Handler { return instanceHandler{s} }

type instanceHandler struct{ s *Server }

func (h instanceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.s.guard(w, r, instanceListener, func(w http.ResponseWriter) { h.s.serve(w, r, instanceFace{h.s}) })
}

var instanceListener = listener{
	name:         "instance",
	audited:      func(string) bool { return true },
	servesAnyway: func(string) bool { return false },
	fail: func(s *Server, w http.ResponseWriter, _ *http.Request, requestID string, err error) {
		writeInstanceError(s, w, requestID, err)
	},
	// A node that cannot audit answers 503 in the SDK's format, with the
	// code the SDK retries.
	auditRefusal: func(w http.ResponseWriter, requestID, msg string) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(encodeInstanceError(http.StatusServiceUnavailable, "ServiceUnavailableTemporary", msg, requestID))
	},
}

// maxInstanceActionName bounds the action name a request may carry into the
// audit line.
const maxInstanceActionName = 64

func (f instanceFace) decode(c *call) error {
	// The action names the audit line; only a plausible name is kept.
	if a := c.r.Header.Get("x-kms-apiname"); isActionName(a) {
		c.action = a
	}
	if c.r.Method != http.MethodPost {
		return fmt.Errorf("%w: the instance API takes POST, not %s", errMethod, shorten(c.r.Method))
	}
	if c.r.URL.Path != "/" {
		return fmt.Errorf("%w: the instance API is served at /", errNotFound)
	}
	if v := c.r.Header.Get("x-kms-apiversion"); v != instanceAPIVersion {
		return invalidParam("x-kms-apiversion", "must be "+instanceAPIVersion)
	}
	if c.action == "" {
		return fmt.Errorf("%w: x-kms-apiname names no action", errInstanceActionUnknown)
	}
	// The body stays unread: authenticate reads it once the signature
	// over its hash verified.
	return nil
}

// isActionName accepts 1-64 ASCII letters and digits.
func isActionName(a string) bool {
	if a == "" || len(a) > maxInstanceActionName {
		return false
	}
	for i := 0; i < len(a); i++ {
		ch := a[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9') {
			return false
		}
	}
	return true
}

// shorten bounds a client's string quoted in an error.
func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// instanceStringToSign is the SDK's string to sign (openapi-util
// GetStringToSign): method, content-sha256, content-type and date, each on
// its line, then every x-kms-* header sorted by name as "name:value\n"
// (names in lower case, values trimmed), then the resource "/" (the query
// is never signed).
func instanceStringToSign(r *http.Request) string {
	var b strings.Builder
	b.WriteString("POST\n")
	b.WriteString(r.Header.Get("content-sha256") + "\n")
	b.WriteString(r.Header.Get("content-type") + "\n")
	b.WriteString(r.Header.Get("date") + "\n")
	var names []string
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-kms-") {
			names = append(names, l)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b.WriteString(n + ":" + strings.TrimSpace(r.Header.Get(n)) + "\n")
	}
	b.WriteString("/")
	return b.String()
}

func (f instanceFace) authenticate(c *call) error {
	s, r := f.s, c.r
	auth := r.Header.Get("authorization")
	sigText, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || sigText == "" {
		return fmt.Errorf("%w: the instance API needs authorization: Bearer <signature>", signature.ErrMissing)
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return fmt.Errorf("%w: the Bearer signature is not Base64", signature.ErrMalformed)
	}
	if m := r.Header.Get("x-kms-signaturemethod"); m != "" && m != "RSA_PKCS1_SHA_256" {
		return fmt.Errorf("%w: x-kms-signaturemethod %q (RSA_PKCS1_SHA_256 is supported)", signature.ErrUnsupported, shorten(m))
	}
	wantHash := r.Header.Get("content-sha256")
	if wantHash == "" {
		return fmt.Errorf("%w: the content-sha256 header is missing", signature.ErrMissing)
	}
	date, err := time.Parse(time.RFC1123, r.Header.Get("date"))
	if err != nil {
		return fmt.Errorf("%w: the date header is not an RFC 1123 time", signature.ErrMalformed)
	}
	now := s.now()
	if skew := now.Sub(date); skew > s.cfg.ClockSkew || skew < -s.cfg.ClockSkew {
		return fmt.Errorf("%w: request time %s, server time %s, allowed skew %s; check the client's clock",
			errTimeSkew, date.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), s.cfg.ClockSkew)
	}
	id := r.Header.Get("x-kms-acccesskeyid")
	ck, err := s.cfg.Service.ClientKey(c.ctx, id)
	if err != nil {
		if isClientKeyUnknown(err) {
			return fmt.Errorf("%w: %w", kms.ErrAccessKeyNotFound, err)
		}
		return err
	}
	digest := sha256.Sum256([]byte(instanceStringToSign(r)))
	if err := rsa.VerifyPKCS1v15(ck.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("%w: the signature does not verify with client key %s", signature.ErrSignatureMismatch, ck.ID)
	}
	if now.Before(ck.NotBefore) || !now.Before(ck.NotAfter) {
		return fmt.Errorf("%w: client key %s is valid from %s to %s", kms.ErrAccessKeyInactive, ck.ID,
			ck.NotBefore.UTC().Format(time.RFC3339), ck.NotAfter.UTC().Format(time.RFC3339))
	}
	// Only a signed request's body is read, and no more than the limit.
	body, err := readBody(r, maxBody)
	if err != nil {
		return err
	}
	got := sha256.Sum256(body)
	if want, err := hex.DecodeString(wantHash); err != nil || !bytes.Equal(want, got[:]) {
		return fmt.Errorf("%w: the body does not match its content-sha256", signature.ErrContentHashMismatch)
	}
	c.body = body
	c.caller = kms.Caller{
		AccountID:   ck.AccountID,
		Principal:   fmt.Sprintf("acs:kms::%s:aap/%s", ck.AccountID, ck.AAPName),
		Kind:        "clientkey",
		Name:        ck.AAPName,
		AccessKeyID: ck.ID,
		SourceIP:    sourceIP(r),
		Client:      &kms.ClientKeyCaller{ID: ck.ID, AAPName: ck.AAPName, Policies: ck.Policies},
	}
	c.authenticated = true
	return nil
}

func isClientKeyUnknown(err error) bool {
	return errors.Is(err, kms.ErrClientKeyUnknown)
}

func (f instanceFace) route(action string) (route, error) {
	a, ok := instanceActions[action]
	if !ok {
		return route{}, errInstanceActionUnknown
	}
	return route{class: a.class, handle: func(c *call) (any, error) { return a.handle(f.s, c) }}, nil
}

func (f instanceFace) written(*call) (string, string) { return "", "" }

func (f instanceFace) answer(w http.ResponseWriter, c *call, resp any) {
	m, ok := resp.(proto.Message)
	if !ok {
		writeInstanceError(f.s, w, c.requestID, fmt.Errorf("instance action %s answered %T", c.action, resp))
		return
	}
	// Every response message has a RequestId field.
	if fd := m.ProtoReflect().Descriptor().Fields().ByName("RequestId"); fd != nil && fd.Kind() == protoreflect.StringKind {
		m.ProtoReflect().Set(fd, protoreflect.ValueOfString(c.requestID))
	}
	b, err := proto.Marshal(m)
	if err != nil {
		writeInstanceError(f.s, w, c.requestID, fmt.Errorf("encoding the %s answer: %w", c.action, err))
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(b); err != nil {
		f.s.log.Debug("writing response", "error", err)
	}
}

func (f instanceFace) fail(w http.ResponseWriter, c *call, err error) {
	writeInstanceError(f.s, w, c.requestID, err)
}

// writeInstanceError answers err as the SDK reads errors: the protobuf
// api.Error with the code and status of the one error table. Internal
// errors are logged and answered without their detail.
func writeInstanceError(s *Server, w http.ResponseWriter, requestID string, err error) {
	e, internal := classify(err)
	if a := auditOf(w); a != nil {
		if a.rec.RequestID == "" {
			a.rec.RequestID = requestID
		}
		a.rec.Code = e.code
	}
	msg := errorMessage(err)
	if internal {
		s.log.Error("internal error", "request_id", requestID, "face", "instance", "error", err)
		msg = "The request processing has failed due to some unknown error. Request id: " + requestID
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(e.status)
	if _, err := w.Write(encodeInstanceError(int32(e.status), e.code, msg, requestID)); err != nil {
		s.log.Debug("writing response", "error", err)
	}
}

// encodeInstanceError encodes the SDK's api.Error message:
//
//	message Error { int32 StatusCode = 1; string ErrorCode = 2;
//	                string ErrorMessage = 3; string RequestId = 4; }
//
// in proto3's wire format (default values left out).
func encodeInstanceError(status int32, code, msg, requestID string) []byte {
	var b []byte
	if status != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		// int32 is sign-extended to 64 bits on the wire.
		b = protowire.AppendVarint(b, uint64(int64(status)))
	}
	for _, f := range []struct {
		num protowire.Number
		s   string
	}{{2, code}, {3, msg}, {4, requestID}} {
		if f.s != "" {
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendString(b, f.s)
		}
	}
	return b
}

// The actions.

// instanceAlgorithm is the only symmetric algorithm the face speaks.
const instanceAlgorithm = "AES_GCM"

// clientFor is the call's caller, with the alias the request named its key
// by (a policy resource alias/<name> covers it).
func clientFor(c *call, keyRef string) kms.Caller {
	caller := c.caller
	if caller.Client != nil && strings.HasPrefix(keyRef, "alias/") {
		cl := *caller.Client
		cl.NamedAlias = keyRef
		caller.Client = &cl
	}
	return caller
}

func checkSymmetricAlgorithm(alg, padding string) error {
	if alg != "" && alg != instanceAlgorithm {
		return invalidParam("Algorithm", "must be "+instanceAlgorithm)
	}
	if padding != "" {
		return invalidParam("PaddingMode", "AES_GCM takes no padding")
	}
	return nil
}

func instanceEncrypt(s *Server, c *call, req *dkmsapi.EncryptRequest) (proto.Message, error) {
	if err := checkSymmetricAlgorithm(req.Algorithm, req.PaddingMode); err != nil {
		return nil, err
	}
	if len(req.Iv) > 0 {
		// The IV is chosen by the service (a random nonce for each
		// sealing), never by the caller: a caller's IV reused with the
		// same key breaks AES-GCM.
		return nil, invalidParam("Iv", "the service chooses the IV; leave it empty")
	}
	encCtx, err := kms.AADContext(req.Aad)
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.Encrypt(c.ctx, clientFor(c, req.KeyId), kms.EncryptInput{Key: req.KeyId, Plaintext: req.Plaintext, EncryptionContext: encCtx})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.EncryptResponse{KeyId: out.KeyID, CiphertextBlob: out.CiphertextBlob, Iv: kcrypto.CiphertextNonce(out.CiphertextBlob), Algorithm: instanceAlgorithm}, nil
}

func instanceDecrypt(s *Server, c *call, req *dkmsapi.DecryptRequest) (proto.Message, error) {
	if err := checkSymmetricAlgorithm(req.Algorithm, req.PaddingMode); err != nil {
		return nil, err
	}
	if len(req.Iv) > 0 && !bytes.Equal(req.Iv, kcrypto.CiphertextNonce(req.CiphertextBlob)) {
		return nil, fmt.Errorf("%w: the Iv is not the one Encrypt returned with this ciphertext", kcrypto.ErrInvalidCiphertext)
	}
	encCtx, err := kms.AADContext(req.Aad)
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.DecryptForKey(c.ctx, clientFor(c, req.KeyId), req.KeyId, kms.DecryptInput{Ciphertext: req.CiphertextBlob, EncryptionContext: encCtx})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.DecryptResponse{KeyId: out.KeyID, Plaintext: out.Plaintext, Algorithm: instanceAlgorithm}, nil
}

func instanceGenerateDataKey(s *Server, c *call, req *dkmsapi.GenerateDataKeyRequest) (proto.Message, error) {
	if err := checkSymmetricAlgorithm(req.Algorithm, ""); err != nil {
		return nil, err
	}
	encCtx, err := kms.AADContext(req.Aad)
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.GenerateRawDataKey(c.ctx, clientFor(c, req.KeyId), req.KeyId, int(req.NumberOfBytes), encCtx)
	if err != nil {
		return nil, err
	}
	return &dkmsapi.GenerateDataKeyResponse{KeyId: out.KeyID, Iv: kcrypto.CiphertextNonce(out.CiphertextBlob), Plaintext: out.Plaintext,
		CiphertextBlob: out.CiphertextBlob, Algorithm: instanceAlgorithm}, nil
}

func instanceGenerateRandom(s *Server, c *call, req *dkmsapi.GenerateRandomRequest) (proto.Message, error) {
	n := int(req.Length)
	if n == 0 {
		n = 32
	}
	b, err := s.cfg.Service.GenerateRandom(c.ctx, c.caller, n)
	if err != nil {
		return nil, err
	}
	return &dkmsapi.GenerateRandomResponse{Random: b}, nil
}

func instanceGetPublicKey(s *Server, c *call, req *dkmsapi.GetPublicKeyRequest) (proto.Message, error) {
	caller := clientFor(c, req.KeyId)
	v, err := s.cfg.Service.CurrentVersion(c.ctx, caller, req.KeyId, "GetPublicKey")
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.GetPublicKey(c.ctx, caller, kms.KeyVersionRef{Key: req.KeyId, Version: v})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.GetPublicKeyResponse{KeyId: out.KeyID, PublicKey: out.PublicKeyPEM}, nil
}

// signedDigest is the digest a Sign or Verify request is about. The SDK
// sends Message and MessageType: RAW (the default) signs the SHA-256 of the
// Message; DIGEST takes the Message as the SHA-256 digest itself. The
// proto's Digest field, which the SDK never sets, is read as a DIGEST
// Message.
func signedDigest(messageType string, digest, message []byte) (string, []byte, error) {
	if len(message) == 0 && len(digest) > 0 && messageType != "RAW" {
		return "DIGEST", digest, nil
	}
	switch messageType {
	case "", "RAW":
		if len(message) == 0 {
			return "", nil, fmt.Errorf("%w: the parameter %q is missing", kms.ErrMissingParameter, "Message")
		}
		sum := sha256.Sum256(message)
		return "RAW", sum[:], nil
	case "DIGEST":
		return "DIGEST", message, nil
	}
	return "", nil, invalidParam("MessageType", "must be RAW or DIGEST")
}

func instanceSign(s *Server, c *call, req *dkmsapi.SignRequest) (proto.Message, error) {
	mt, digest, err := signedDigest(req.MessageType, req.Digest, req.Message)
	if err != nil {
		return nil, err
	}
	caller := clientFor(c, req.KeyId)
	v, err := s.cfg.Service.CurrentVersion(c.ctx, caller, req.KeyId, "AsymmetricSign")
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.AsymmetricSign(c.ctx, caller, kms.SignInput{KeyVersionRef: kms.KeyVersionRef{Key: req.KeyId, Version: v}, Algorithm: req.Algorithm, Digest: digest})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.SignResponse{KeyId: out.KeyID, Signature: out.Value, Algorithm: req.Algorithm, MessageType: mt}, nil
}

func instanceVerify(s *Server, c *call, req *dkmsapi.VerifyRequest) (proto.Message, error) {
	mt, digest, err := signedDigest(req.MessageType, req.Digest, req.Message)
	if err != nil {
		return nil, err
	}
	caller := clientFor(c, req.KeyId)
	v, err := s.cfg.Service.CurrentVersion(c.ctx, caller, req.KeyId, "AsymmetricVerify")
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.AsymmetricVerify(c.ctx, caller, kms.VerifyInput{KeyVersionRef: kms.KeyVersionRef{Key: req.KeyId, Version: v}, Algorithm: req.Algorithm, Digest: digest, Signature: req.Signature})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.VerifyResponse{KeyId: out.KeyID, Value: out.Valid, Algorithm: req.Algorithm, MessageType: mt}, nil
}

// instanceGetSecretValue serves a secret to a client key: the core checks
// the client key's policy (CryptoServiceSecretUser on secret/<name>) and
// the encryption key. The answer carries the same fields as the RPC
// face's, in the SDK's protobuf message.
func instanceGetSecretValue(s *Server, c *call, req *dkmsapi.GetSecretValueRequest) (proto.Message, error) {
	v, err := s.cfg.Service.GetSecretValue(c.ctx, c.caller, kms.SecretValueInput{Name: req.SecretName, VersionID: req.VersionId,
		VersionStage: req.VersionStage, FetchExtendedConfig: req.FetchExtendedConfig})
	if err != nil {
		return nil, err
	}
	sec := v.Secret
	out := &dkmsapi.GetSecretValueResponse{
		SecretName:        sec.Name,
		SecretType:        sec.Type,
		SecretData:        v.Data,
		SecretDataType:    v.Version.DataType,
		VersionStages:     nonNil(v.Stages),
		VersionId:         v.Version.ID,
		CreateTime:        isoTime(v.Version.CreatedAt),
		LastRotationDate:  isoTime(sec.LastRotation),
		NextRotationDate:  secretNextRotation(sec),
		AutomaticRotation: secretRotation(sec),
		RotationInterval:  secretInterval(sec),
	}
	if req.FetchExtendedConfig {
		out.ExtendedConfig = sec.ExtendedConfig
	}
	return out, nil
}

// The Advance and data-key-pair actions: the core checks the algorithm,
// IV, padding and Aad (kms/advance.go); the handlers only map fields.

func instanceAdvanceEncrypt(s *Server, c *call, req *dkmsapi.AdvanceEncryptRequest) (proto.Message, error) {
	out, err := s.cfg.Service.AdvanceEncrypt(c.ctx, clientFor(c, req.KeyId), kms.AdvanceEncryptInput{Key: req.KeyId, Plaintext: req.Plaintext,
		Algorithm: req.Algorithm, AAD: req.Aad, IV: req.Iv, PaddingMode: req.PaddingMode})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.AdvanceEncryptResponse{KeyId: out.KeyID, KeyVersionId: out.KeyVersionID, CiphertextBlob: out.CiphertextBlob, Iv: out.IV, Algorithm: out.Algorithm}, nil
}

func instanceAdvanceDecrypt(s *Server, c *call, req *dkmsapi.AdvanceDecryptRequest) (proto.Message, error) {
	out, err := s.cfg.Service.AdvanceDecrypt(c.ctx, clientFor(c, req.KeyId), kms.AdvanceDecryptInput{Ciphertext: req.CiphertextBlob, Key: req.KeyId,
		Algorithm: req.Algorithm, AAD: req.Aad, IV: req.Iv, PaddingMode: req.PaddingMode})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.AdvanceDecryptResponse{KeyId: out.KeyID, KeyVersionId: out.KeyVersionID, Plaintext: out.Plaintext, Algorithm: kms.AlgorithmAESGCM}, nil
}

func instanceAdvanceGenerateDataKey(s *Server, c *call, req *dkmsapi.AdvanceGenerateDataKeyRequest) (proto.Message, error) {
	out, err := s.cfg.Service.AdvanceGenerateDataKey(c.ctx, clientFor(c, req.KeyId), kms.AdvanceDataKeyInput{Key: req.KeyId, NumberOfBytes: int(req.NumberOfBytes), AAD: req.Aad})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.AdvanceGenerateDataKeyResponse{KeyId: out.KeyID, KeyVersionId: out.KeyVersionID, Iv: out.IV, Plaintext: out.Plaintext,
		CiphertextBlob: out.CiphertextBlob, Algorithm: out.Algorithm}, nil
}

func instanceGenerateDataKeyPair(s *Server, c *call, req *dkmsapi.GenerateDataKeyPairRequest) (proto.Message, error) {
	out, err := s.cfg.Service.GenerateDataKeyPair(c.ctx, clientFor(c, req.KeyId), kms.DataKeyPairInput{Key: req.KeyId, KeyPairSpec: req.KeyPairSpec,
		KeyFormat: req.KeyFormat, Algorithm: req.Algorithm, AAD: req.Aad})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.GenerateDataKeyPairResponse{KeyId: out.KeyID, Iv: out.IV, KeyPairSpec: out.KeyPairSpec, PrivateKeyPlaintext: out.PrivateKeyPlaintext,
		PrivateKeyCiphertextBlob: out.PrivateKeyCiphertextBlob, PublicKey: out.PublicKey, Algorithm: out.Algorithm}, nil
}

func instanceGenerateDataKeyPairWithoutPlaintext(s *Server, c *call, req *dkmsapi.GenerateDataKeyPairWithoutPlaintextRequest) (proto.Message, error) {
	out, err := s.cfg.Service.GenerateDataKeyPairWithoutPlaintext(c.ctx, clientFor(c, req.KeyId), kms.DataKeyPairInput{Key: req.KeyId, KeyPairSpec: req.KeyPairSpec,
		KeyFormat: req.KeyFormat, Algorithm: req.Algorithm, AAD: req.Aad})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.GenerateDataKeyPairWithoutPlaintextResponse{KeyId: out.KeyID, Iv: out.IV, KeyPairSpec: out.KeyPairSpec,
		PrivateKeyCiphertextBlob: out.PrivateKeyCiphertextBlob, PublicKey: out.PublicKey, Algorithm: out.Algorithm}, nil
}

func instanceAdvanceGenerateDataKeyPair(s *Server, c *call, req *dkmsapi.AdvanceGenerateDataKeyPairRequest) (proto.Message, error) {
	out, err := s.cfg.Service.AdvanceGenerateDataKeyPair(c.ctx, clientFor(c, req.KeyId), kms.DataKeyPairInput{Key: req.KeyId, KeyPairSpec: req.KeyPairSpec,
		KeyFormat: req.KeyFormat, AAD: req.Aad})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.AdvanceGenerateDataKeyPairResponse{KeyId: out.KeyID, KeyVersionId: out.KeyVersionID, Iv: out.IV, KeyPairSpec: out.KeyPairSpec,
		PrivateKeyPlaintext: out.PrivateKeyPlaintext, PrivateKeyCiphertextBlob: out.PrivateKeyCiphertextBlob, PublicKey: out.PublicKey, Algorithm: out.Algorithm}, nil
}

func instanceAdvanceGenerateDataKeyPairWithoutPlaintext(s *Server, c *call, req *dkmsapi.AdvanceGenerateDataKeyPairWithoutPlaintextRequest) (proto.Message, error) {
	out, err := s.cfg.Service.AdvanceGenerateDataKeyPairWithoutPlaintext(c.ctx, clientFor(c, req.KeyId), kms.DataKeyPairInput{Key: req.KeyId, KeyPairSpec: req.KeyPairSpec,
		KeyFormat: req.KeyFormat, AAD: req.Aad})
	if err != nil {
		return nil, err
	}
	return &dkmsapi.AdvanceGenerateDataKeyPairWithoutPlaintextResponse{KeyId: out.KeyID, KeyVersionId: out.KeyVersionID, Iv: out.IV, KeyPairSpec: out.KeyPairSpec,
		PrivateKeyCiphertextBlob: out.PrivateKeyCiphertextBlob, PublicKey: out.PublicKey, Algorithm: out.Algorithm}, nil
}
