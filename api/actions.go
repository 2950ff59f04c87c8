package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/raftkms/raftkms/apispec"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

// handlers maps each supported action to its handler. Handlers decode
// parameters, call kms, and format the answer with the service's field
// names; nothing else. Which actions exist and which parameters each takes
// is apispec's table; actionTable joins the two.
func (s *Server) handlers() map[string]actionFunc {
	return map[string]actionFunc{
		"CreateKey":                       s.createKey,
		"DescribeKey":                     s.describeKey,
		"ListKeys":                        s.listKeys,
		"UpdateKeyDescription":            s.updateKeyDescription,
		"EnableKey":                       s.enableKey,
		"DisableKey":                      s.disableKey,
		"CreateKeyVersion":                s.createKeyVersion,
		"ListKeyVersions":                 s.listKeyVersions,
		"DescribeKeyVersion":              s.describeKeyVersion,
		"Encrypt":                         s.encrypt,
		"Decrypt":                         s.decrypt,
		"GenerateDataKey":                 s.generateDataKey,
		"GenerateDataKeyWithoutPlaintext": s.generateDataKeyWithoutPlaintext,
		"ReEncrypt":                       s.reEncrypt,
		"CreateAlias":                     s.createAlias,
		"UpdateAlias":                     s.updateAlias,
		"DeleteAlias":                     s.deleteAlias,
		"ListAliases":                     s.listAliases,
		"ListAliasesByKeyId":              s.listAliasesByKeyID,
		"TagResource":                     s.tagResource,
		"UntagResource":                   s.untagResource,
		"ListResourceTags":                s.listResourceTags,
		"UpdateRotationPolicy":            s.updateRotationPolicy,
		"ScheduleKeyDeletion":             s.scheduleKeyDeletion,
		"CancelKeyDeletion":               s.cancelKeyDeletion,
		"SetDeletionProtection":           s.setDeletionProtection,
		"GetKeyPolicy":                    s.getKeyPolicy,
		"SetKeyPolicy":                    s.setKeyPolicy,
		"AsymmetricSign":                  s.asymmetricSign,
		"AsymmetricVerify":                s.asymmetricVerify,
		"AsymmetricEncrypt":               s.asymmetricEncrypt,
		"AsymmetricDecrypt":               s.asymmetricDecrypt,
		"GetPublicKey":                    s.getPublicKey,
		"GenerateAndExportDataKey":        s.generateAndExportDataKey,
		"ExportDataKey":                   s.exportDataKey,
		"GetParametersForImport":          s.getParametersForImport,
		"ImportKeyMaterial":               s.importKeyMaterial,
		"DeleteKeyMaterial":               s.deleteKeyMaterial,
		"ListKmsInstances":                s.listKmsInstances,
		"GetKmsInstance":                  s.getKmsInstance,
		// Application access (aap.go).
		"CreateNetworkRule":              s.createNetworkRule,
		"DescribeNetworkRule":            s.describeNetworkRule,
		"ListNetworkRules":               s.listNetworkRules,
		"UpdateNetworkRule":              s.updateNetworkRule,
		"DeleteNetworkRule":              s.deleteNetworkRule,
		"CreatePolicy":                   s.createPolicy,
		"DescribePolicy":                 s.describePolicy,
		"ListPolicies":                   s.listPolicies,
		"UpdatePolicy":                   s.updatePolicy,
		"DeletePolicy":                   s.deletePolicy,
		"CreateApplicationAccessPoint":   s.createApplicationAccessPoint,
		"DescribeApplicationAccessPoint": s.describeApplicationAccessPoint,
		"ListApplicationAccessPoints":    s.listApplicationAccessPoints,
		"UpdateApplicationAccessPoint":   s.updateApplicationAccessPoint,
		"DeleteApplicationAccessPoint":   s.deleteApplicationAccessPoint,
		"CreateClientKey":                s.createClientKey,
		"GetClientKey":                   s.getClientKey,
		"ListClientKeys":                 s.listClientKeys,
		"DeleteClientKey":                s.deleteClientKey,
		// Secrets (secrets.go).
		"CreateSecret":               s.createSecret,
		"GetSecretValue":             s.getSecretValue,
		"PutSecretValue":             s.putSecretValue,
		"UpdateSecret":               s.updateSecret,
		"UpdateSecretVersionStage":   s.updateSecretVersionStage,
		"ListSecretVersionIds":       s.listSecretVersionIds,
		"ListSecrets":                s.listSecrets,
		"DescribeSecret":             s.describeSecret,
		"DeleteSecret":               s.deleteSecret,
		"RestoreSecret":              s.restoreSecret,
		"RotateSecret":               s.rotateSecret,
		"UpdateSecretRotationPolicy": s.updateSecretRotationPolicy,
		"GetSecretPolicy":            s.getSecretPolicy,
		"SetSecretPolicy":            s.setSecretPolicy,
		"GetRandomPassword":          s.getRandomPassword,
		// Batch tags (batchtags.go) and the cloud-shaped actions (cloud.go).
		"TagResources":             s.tagResources,
		"UntagResources":           s.untagResources,
		"ListTagResources":         s.listTagResources,
		"DescribeRegions":          s.describeRegions,
		"DescribeAccountKmsStatus": s.describeAccountKmsStatus,
		"OpenKmsService":           s.openKmsService,
		"ConnectKmsInstance":       s.connectKmsInstance,
		"UpdateKmsInstanceBindVpc": s.updateKmsInstanceBindVpc,
		// Certificates (certificates.go).
		"CreateCertificate":            s.createCertificate,
		"UploadCertificate":            s.uploadCertificate,
		"GetCertificate":               s.getCertificate,
		"DescribeCertificate":          s.describeCertificate,
		"UpdateCertificateStatus":      s.updateCertificateStatus,
		"DeleteCertificate":            s.deleteCertificate,
		"CertificatePrivateKeySign":    s.certificatePrivateKeySign,
		"CertificatePublicKeyVerify":   s.certificatePublicKeyVerify,
		"CertificatePublicKeyEncrypt":  s.certificatePublicKeyEncrypt,
		"CertificatePrivateKeyDecrypt": s.certificatePrivateKeyDecrypt,
		// RAM (2015-05-01) and STS (2015-04-01) actions on the same endpoint.
		"CreateUser":           s.createUser,
		"GetUser":              s.getUser,
		"ListUsers":            s.listUsers,
		"DeleteUser":           s.deleteUser,
		"CreateAccessKey":      s.createAccessKey,
		"ListAccessKeys":       s.listAccessKeys,
		"UpdateAccessKey":      s.updateAccessKey,
		"DeleteAccessKey":      s.deleteAccessKey,
		"CreateRole":           s.createRole,
		"GetRole":              s.getRole,
		"ListRoles":            s.listRoles,
		"DeleteRole":           s.deleteRole,
		"AttachPolicyToUser":   s.attachPolicy(kms.AttachToUser, false),
		"DetachPolicyFromUser": s.attachPolicy(kms.AttachToUser, true),
		"AttachPolicyToRole":   s.attachPolicy(kms.AttachToRole, false),
		"DetachPolicyFromRole": s.attachPolicy(kms.AttachToRole, true),
		"ListPoliciesForUser":  s.listPoliciesForUser,
		"AssumeRole":           s.assumeRole,
	}
}

// actionTable builds the routing from apispec's table: every declared action
// gets its handler, which sees only the parameters the table declares for
// it (so a parameter the table does not list cannot be read, and kmsctl's
// help, built from the same table, cannot drift from what the server
// reads); an action that declares DryRun honours it. A handler without a
// declared action, or the reverse, is a programming error, caught by every
// test that starts a server.
func (s *Server) actionTable() map[string]actionFunc {
	handlers := s.handlers()
	table := make(map[string]actionFunc, len(handlers))
	for _, a := range apispec.Actions() {
		fn, ok := handlers[a.Name]
		if !ok {
			panic(fmt.Sprintf("api: apispec declares action %s, which has no handler", a.Name))
		}
		if _, ok := a.Param("DryRun"); ok {
			fn = dryRunnable(fn)
		}
		table[a.Name] = declaredOnly(a, fn)
	}
	for name := range handlers {
		if _, ok := apispec.Lookup(name); !ok {
			panic(fmt.Sprintf("api: handler for action %s, which apispec does not declare", name))
		}
	}
	return table
}

// declaredOnly hands fn only the parameters its action declares. The
// request's other parameters (Action, Version, the V1 signature's, a
// client's extras) stay out of the handler's sight, as an unknown
// parameter always was: ignored. A JSON parameter absent as such but sent
// flattened, as the official SDK writes a map in the query
// (ExtendedConfig.CustomData.DBName=app1), is handed over as the JSON
// object those members make.
func declaredOnly(a apispec.Action, fn actionFunc) actionFunc {
	declared := make(map[string]bool, len(a.Params))
	var jsonParams []string
	for _, pa := range a.Params {
		declared[pa.Name] = true
		if pa.Type == apispec.JSON {
			jsonParams = append(jsonParams, pa.Name)
		}
	}
	return func(c *call) (any, error) {
		// The request's map is the call's own: filtered in place rather
		// than copied. Flattened members are read before they go.
		type member struct{ name, json string }
		var fbuf [4]member
		flat := fbuf[:0]
		for _, n := range jsonParams {
			if _, ok := c.p[n]; !ok {
				if v, ok := c.p.flattened(n); ok {
					flat = append(flat, member{n, v})
				}
			}
		}
		for k := range c.p {
			if !declared[k] {
				delete(c.p, k)
			}
		}
		if len(flat) > 0 && c.p == nil {
			c.p = params{}
		}
		for _, m := range flat {
			c.p[m.name] = m.json
		}
		return fn(c)
	}
}

// dryRunnable wraps an action that takes the service's DryRun parameter:
// when it is true the call's context is marked, and the service then makes
// every check of the real call and answers DryRunOperationError instead of
// doing the work.
func dryRunnable(fn actionFunc) actionFunc {
	return func(c *call) (any, error) {
		v, err := c.p.boolean("DryRun")
		if err != nil {
			return nil, err
		}
		if v {
			c.ctx = kms.WithDryRun(c.ctx)
		}
		return fn(c)
	}
}

// isoTime formats a time the way the service does (UTC, seconds).
func isoTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05Z")
}

func (s *Server) keyMetadata(k *fsm.Key, full bool) map[string]any {
	rotation := "Disabled"
	interval := ""
	next := ""
	if k.RotationInterval > 0 {
		rotation = "Enabled"
		interval = strconv.FormatInt(k.RotationInterval, 10) + "s"
		next = kms.NextRotation(k).UTC().Format("2006-01-02T15:04:05Z")
	}
	creatorType := k.CreatorType
	if creatorType == "" {
		creatorType = "User"
	}
	m := map[string]any{
		"KeyId":              k.ID,
		"Arn":                s.cfg.Service.KeyArn(k),
		"KeyState":           k.State,
		"KeySpec":            k.Spec,
		"KeyUsage":           k.Usage,
		"ProtectionLevel":    k.ProtectionLevel,
		"Origin":             k.Origin,
		"Description":        k.Description,
		"CreationDate":       isoTime(k.CreatedAt),
		"Creator":            k.Creator,
		"DKMSInstanceId":     k.InstanceID,
		"PrimaryKeyVersion":  k.PrimaryVersion,
		"AutomaticRotation":  rotation,
		"RotationInterval":   interval,
		"LastRotationDate":   isoTime(k.LastRotation),
		"NextRotationDate":   next,
		"DeleteDate":         isoTime(k.DeleteDate),
		"MaterialExpireTime": isoTime(k.MaterialExpireTime),
	}
	if full {
		m["CreatorType"] = creatorType
		m["DeletionProtection"] = "Disabled"
		m["DeletionProtectionDescription"] = ""
		if k.DeletionProtection {
			m["DeletionProtection"] = "Enabled"
			m["DeletionProtectionDescription"] = k.DeletionProtectionDescription
		}
	}
	return m
}

func (s *Server) createKey(c *call) (any, error) {
	rot, err := c.p.boolean("EnableAutomaticRotation")
	if err != nil {
		return nil, err
	}
	tags, err := c.p.tags("Tags")
	if err != nil {
		return nil, err
	}
	k, idx, err := s.cfg.Service.CreateKey(c.ctx, c.caller, kms.CreateKeyInput{
		Tags:                    tags,
		Policy:                  c.p.str("Policy"),
		AliasName:               c.p.str("AliasName"),
		KeySpec:                 c.p.str("KeySpec"),
		KeyUsage:                c.p.str("KeyUsage"),
		Origin:                  c.p.str("Origin"),
		ProtectionLevel:         c.p.str("ProtectionLevel"),
		Description:             c.p.str("Description"),
		DKMSInstanceID:          c.p.str("DKMSInstanceId"),
		EnableAutomaticRotation: rot,
		RotationInterval:        c.p.str("RotationInterval"),
	})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyMetadata": s.keyMetadata(k, false)}, nil
}

func (s *Server) describeKey(c *call) (any, error) {
	k, err := s.cfg.Service.DescribeKey(c.ctx, c.caller, c.p.str("KeyId"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyMetadata": s.keyMetadata(k, true)}, nil
}

func (s *Server) listKeys(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	filters, err := kms.ParseKeyFilters(c.p.str("Filters"))
	if err != nil {
		return nil, err
	}
	keys, err := s.cfg.Service.ListKeys(c.ctx, c.caller, page, filters)
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(keys.Items))
	for _, k := range keys.Items {
		list = append(list, map[string]any{"KeyId": k.ID, "KeyArn": s.cfg.Service.KeyArn(k)})
	}
	return map[string]any{"Keys": map[string]any{"Key": list}, "TotalCount": keys.Total, "PageNumber": keys.Page.Number, "PageSize": keys.Page.Size}, nil
}

func (s *Server) updateKeyDescription(c *call) (any, error) {
	if _, ok := c.p["Description"]; !ok {
		return nil, fmt.Errorf("%w: the parameter \"Description\" is needed but not provided", kms.ErrMissingParameter)
	}
	idx, err := s.cfg.Service.UpdateKeyDescription(c.ctx, c.caller, c.p.str("KeyId"), c.p.str("Description"))
	c.index = idx
	return nil, err
}

func (s *Server) enableKey(c *call) (any, error) {
	idx, err := s.cfg.Service.SetKeyEnabled(c.ctx, c.caller, c.p.str("KeyId"), true)
	c.index = idx
	return nil, err
}

func (s *Server) disableKey(c *call) (any, error) {
	idx, err := s.cfg.Service.SetKeyEnabled(c.ctx, c.caller, c.p.str("KeyId"), false)
	c.index = idx
	return nil, err
}

func versionJSON(v *fsm.KeyVersion) map[string]any {
	return map[string]any{"KeyId": v.KeyID, "KeyVersionId": v.ID, "CreationDate": isoTime(v.CreatedAt)}
}

func (s *Server) createKeyVersion(c *call) (any, error) {
	v, idx, err := s.cfg.Service.CreateKeyVersion(c.ctx, c.caller, c.p.str("KeyId"))
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyVersion": versionJSON(v)}, nil
}

func (s *Server) listKeyVersions(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	versions, err := s.cfg.Service.ListKeyVersions(c.ctx, c.caller, c.p.str("KeyId"), page)
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(versions.Items))
	for _, v := range versions.Items {
		list = append(list, versionJSON(v))
	}
	return map[string]any{"KeyVersions": map[string]any{"KeyVersion": list}, "TotalCount": versions.Total, "PageNumber": versions.Page.Number, "PageSize": versions.Page.Size}, nil
}

func (s *Server) describeKeyVersion(c *call) (any, error) {
	v, err := s.cfg.Service.DescribeKeyVersion(c.ctx, c.caller, c.versionRef())
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyVersion": versionJSON(v)}, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// sealedAnswer is the answer of every action that returns a ciphertext
// blob: the blob and the key version that made it.
func (c *call) sealedAnswer(s kms.Sealed) *flatAnswer {
	return c.flatAnswer().b64("CiphertextBlob", s.CiphertextBlob).str("KeyId", s.KeyID).str("KeyVersionId", s.KeyVersionID)
}

func (s *Server) encrypt(c *call) (any, error) {
	encCtx, err := c.p.context("EncryptionContext")
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.Encrypt(c.ctx, c.caller, kms.EncryptInput{
		Key: c.p.str("KeyId"), Plaintext: []byte(c.p.str("Plaintext")), EncryptionContext: encCtx,
	})
	if err != nil {
		return nil, err
	}
	return c.sealedAnswer(out), nil
}

func (s *Server) decrypt(c *call) (any, error) {
	blob, err := c.p.base64Param("CiphertextBlob")
	if err != nil {
		return nil, err
	}
	encCtx, err := c.p.context("EncryptionContext")
	if err != nil {
		return nil, err
	}
	out, err := s.cfg.Service.Decrypt(c.ctx, c.caller, kms.DecryptInput{Ciphertext: blob, EncryptionContext: encCtx})
	if err != nil {
		return nil, err
	}
	return c.flatAnswer().str("Plaintext", string(out.Plaintext)).str("KeyId", out.KeyID).str("KeyVersionId", out.KeyVersionID), nil
}

func (s *Server) dataKey(c *call) (kms.DataKey, error) {
	return s.dataKeyWith(c, s.cfg.Service.GenerateDataKey)
}

type dataKeyFunc func(ctx context.Context, c kms.Caller, in kms.DataKeyInput) (kms.DataKey, error)

func (s *Server) dataKeyWith(c *call, generate dataKeyFunc) (kms.DataKey, error) {
	in, err := c.dataKeyInput()
	if err != nil {
		return kms.DataKey{}, err
	}
	return generate(c.ctx, c.caller, in)
}

// dataKeyInput reads the parameters of the actions that make a data key.
func (c *call) dataKeyInput() (kms.DataKeyInput, error) {
	n, err := c.p.integer("NumberOfBytes")
	if err != nil {
		return kms.DataKeyInput{}, err
	}
	if c.p.str("NumberOfBytes") != "" && (n < 1 || n > 1024) {
		return kms.DataKeyInput{}, invalidParam("NumberOfBytes", "must be between 1 and 1024")
	}
	encCtx, err := c.p.context("EncryptionContext")
	if err != nil {
		return kms.DataKeyInput{}, err
	}
	return kms.DataKeyInput{Key: c.p.str("KeyId"), KeySpec: c.p.str("KeySpec"), NumberOfBytes: n, EncryptionContext: encCtx}, nil
}

func (s *Server) generateDataKey(c *call) (any, error) {
	dk, err := s.dataKey(c)
	if err != nil {
		return nil, err
	}
	return c.sealedAnswer(dk.Sealed).str("Plaintext", dk.Plaintext), nil
}

func (s *Server) generateDataKeyWithoutPlaintext(c *call) (any, error) {
	dk, err := s.dataKeyWith(c, s.cfg.Service.GenerateDataKeyWithoutPlaintext)
	if err != nil {
		return nil, err
	}
	return c.sealedAnswer(dk.Sealed), nil
}

func (s *Server) reEncrypt(c *call) (any, error) {
	blob, err := c.p.base64Param("CiphertextBlob")
	if err != nil {
		return nil, err
	}
	srcCtx, err := c.p.context("SourceEncryptionContext")
	if err != nil {
		return nil, err
	}
	dstCtx, err := c.p.context("DestinationEncryptionContext")
	if err != nil {
		return nil, err
	}
	if c.p.str("SourceKeyId") != "" || c.p.str("SourceEncryptionAlgorithm") != "" {
		return nil, fmt.Errorf("%w: re-encrypting asymmetric ciphertext (SourceKeyId, SourceEncryptionAlgorithm)", kms.ErrUnsupported)
	}
	out, err := s.cfg.Service.ReEncrypt(c.ctx, c.caller, kms.ReEncryptInput{
		Ciphertext: blob, SourceContext: srcCtx, DestinationKey: c.p.str("DestinationKeyId"), DestinationContext: dstCtx,
	})
	if err != nil {
		return nil, err
	}
	return c.sealedAnswer(out.Sealed), nil
}

func (s *Server) createAlias(c *call) (any, error) {
	idx, err := s.cfg.Service.CreateAlias(c.ctx, c.caller, kms.AliasInput{Name: c.p.str("AliasName"), Key: c.p.str("KeyId")})
	c.index = idx
	return nil, err
}

func (s *Server) updateAlias(c *call) (any, error) {
	idx, err := s.cfg.Service.UpdateAlias(c.ctx, c.caller, kms.AliasInput{Name: c.p.str("AliasName"), Key: c.p.str("KeyId")})
	c.index = idx
	return nil, err
}

func (s *Server) deleteAlias(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteAlias(c.ctx, c.caller, c.p.str("AliasName"))
	c.index = idx
	return nil, err
}

func (s *Server) aliasList(aliases kms.Listing[*fsm.Alias]) map[string]any {
	list := make([]map[string]any, 0, len(aliases.Items))
	for _, a := range aliases.Items {
		list = append(list, map[string]any{"AliasName": a.Name, "AliasArn": s.cfg.Service.AliasArn(a), "KeyId": a.KeyID})
	}
	return map[string]any{"Aliases": map[string]any{"Alias": list}, "TotalCount": aliases.Total, "PageNumber": aliases.Page.Number, "PageSize": aliases.Page.Size}
}

func (s *Server) listAliases(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	aliases, err := s.cfg.Service.ListAliases(c.ctx, c.caller, page)
	if err != nil {
		return nil, err
	}
	return s.aliasList(aliases), nil
}

func (s *Server) listAliasesByKeyID(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	aliases, err := s.cfg.Service.ListAliasesByKeyID(c.ctx, c.caller, c.p.str("KeyId"), page)
	if err != nil {
		return nil, err
	}
	return s.aliasList(aliases), nil
}

func (s *Server) tagResource(c *call) (any, error) {
	if _, err := c.p.required("Tags"); err != nil {
		return nil, err
	}
	tags, err := c.p.tags("Tags")
	if err != nil {
		return nil, err
	}
	secret, err := c.p.keyOrSecret()
	if err != nil {
		return nil, err
	}
	var idx uint64
	if secret != "" {
		idx, err = s.cfg.Service.TagSecret(c.ctx, c.caller, secret, tags)
	} else {
		idx, err = s.cfg.Service.TagResource(c.ctx, c.caller, c.p.str("KeyId"), tags)
	}
	c.index = idx
	return nil, err
}

func (s *Server) untagResource(c *call) (any, error) {
	if _, err := c.p.required("TagKeys"); err != nil {
		return nil, err
	}
	keys, err := c.p.stringList("TagKeys")
	if err != nil {
		return nil, err
	}
	secret, err := c.p.keyOrSecret()
	if err != nil {
		return nil, err
	}
	var idx uint64
	if secret != "" {
		idx, err = s.cfg.Service.UntagSecret(c.ctx, c.caller, secret, keys)
	} else {
		idx, err = s.cfg.Service.UntagResource(c.ctx, c.caller, c.p.str("KeyId"), keys)
	}
	c.index = idx
	return nil, err
}

func (s *Server) listResourceTags(c *call) (any, error) {
	rt, err := s.cfg.Service.ListResourceTags(c.ctx, c.caller, c.p.str("KeyId"))
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(rt.Tags))
	for _, t := range rt.Tags {
		list = append(list, map[string]any{"KeyId": rt.Key.ID, "TagKey": t.Key, "TagValue": t.Value})
	}
	return map[string]any{"Tags": map[string]any{"Tag": list}}, nil
}
