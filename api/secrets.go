package api

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

// Handlers of secrets. The answers use the field names, nesting and types
// of the official SDK's response models (kms-20160120/v3,
// CreateSecretResponseBody and the others): lists wrapped as the service
// wraps them ({"VersionStages":{"VersionStage":[...]}}), times as the key
// actions write them, the rotation interval in seconds ("2592000s").

// secretRotation is the secret's AutomaticRotation as the service writes
// it: only RAMCredentials secrets rotate by themselves; for a Generic
// secret the setting is "Invalid".
func secretRotation(sec *fsm.Secret) string {
	switch {
	case sec.Type != fsm.SecretTypeRAMCredentials:
		return "Invalid"
	case sec.AutoRotation:
		return "Enabled"
	}
	return "Disabled"
}

// secretInterval is the rotation interval as "<seconds>s", "" when none.
func secretInterval(sec *fsm.Secret) string {
	if sec.RotationInterval <= 0 {
		return ""
	}
	return strconv.FormatInt(sec.RotationInterval, 10) + "s"
}

// secretNextRotation is the next automatic rotation's date, "" when the
// secret does not rotate by itself.
func secretNextRotation(sec *fsm.Secret) string {
	if !sec.AutoRotation {
		return ""
	}
	return isoTime(sec.NextRotation)
}

// stagesJSON is a list of stage labels as the service wraps it.
func stagesJSON(stages []string) map[string]any {
	return map[string]any{"VersionStage": nonNil(stages)}
}

// secretTagsJSON is a secret's tags, sorted by key, as the service wraps
// them.
func secretTagsJSON(tags map[string]string) map[string]any {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		list = append(list, map[string]any{"TagKey": k, "TagValue": tags[k]})
	}
	return map[string]any{"Tag": list}
}

// secretNameOf is the name the answer gives: the secret's own when the
// core returned it (CreateSecret's $Auto becomes acs/ram/user/<UserName>),
// else the one the request named.
func secretNameOf(sec *fsm.Secret, asked string) string {
	if sec != nil {
		return sec.Name
	}
	return asked
}

func (s *Server) createSecret(c *call) (any, error) {
	list, err := c.p.tags("Tags")
	if err != nil {
		return nil, err
	}
	var tags map[string]string
	if list != nil {
		tags = make(map[string]string, len(list))
		for _, t := range list {
			tags[t.Key] = t.Value
		}
		if len(tags) < len(list) {
			return nil, invalidParam("Tags", "a TagKey appears twice")
		}
	}
	rot, err := c.p.optBoolean("EnableAutomaticRotation")
	if err != nil {
		return nil, err
	}
	sec, idx, err := s.cfg.Service.CreateSecret(c.ctx, c.caller, kms.SecretInput{
		Name:             c.p.str("SecretName"),
		Data:             c.p.str("SecretData"),
		DataType:         c.p.str("SecretDataType"),
		VersionID:        c.p.str("VersionId"),
		EncryptionKey:    c.p.str("EncryptionKeyId"),
		InstanceID:       c.p.str("DKMSInstanceId"),
		Description:      c.p.str("Description"),
		Tags:             tags,
		Type:             c.p.str("SecretType"),
		ExtendedConfig:   c.p.str("ExtendedConfig"),
		AutoRotation:     rot,
		RotationInterval: c.p.str("RotationInterval"),
		Policy:           c.p.str("Policy"),
	})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"Arn":               s.cfg.Service.SecretArn(sec),
		"VersionId":         sec.Stages[fsm.StageCurrent],
		"SecretName":        sec.Name,
		"SecretType":        sec.Type,
		"DKMSInstanceId":    sec.InstanceID,
		"ExtendedConfig":    sec.ExtendedConfig,
		"AutomaticRotation": secretRotation(sec),
		"RotationInterval":  secretInterval(sec),
		"NextRotationDate":  secretNextRotation(sec),
	}, nil
}

func (s *Server) getSecretValue(c *call) (any, error) {
	fetchExt, err := c.p.boolean("FetchExtendedConfig")
	if err != nil {
		return nil, err
	}
	v, err := s.cfg.Service.GetSecretValue(c.ctx, c.caller, kms.SecretValueInput{
		Name:                c.p.str("SecretName"),
		VersionID:           c.p.str("VersionId"),
		VersionStage:        c.p.str("VersionStage"),
		FetchExtendedConfig: fetchExt,
	})
	if err != nil {
		return nil, err
	}
	sec := v.Secret
	m := map[string]any{
		"SecretName":        sec.Name,
		"SecretType":        sec.Type,
		"SecretData":        v.Data,
		"SecretDataType":    v.Version.DataType,
		"VersionId":         v.Version.ID,
		"VersionStages":     stagesJSON(v.Stages),
		"CreateTime":        isoTime(v.Version.CreatedAt),
		"AutomaticRotation": secretRotation(sec),
		"RotationInterval":  secretInterval(sec),
		"LastRotationDate":  isoTime(sec.LastRotation),
		"NextRotationDate":  secretNextRotation(sec),
	}
	if fetchExt {
		m["ExtendedConfig"] = sec.ExtendedConfig
	}
	return m, nil
}

func (s *Server) putSecretValue(c *call) (any, error) {
	stages, err := c.p.stringList("VersionStages")
	if err != nil {
		return nil, err
	}
	if _, given := c.p["VersionStages"]; given && len(stages) == 0 {
		return nil, invalidParam("VersionStages", "needs at least one stage label")
	}
	name := c.p.str("SecretName")
	info, idx, err := s.cfg.Service.PutSecretValue(c.ctx, c.caller, kms.PutSecretValueInput{
		Name:      name,
		VersionID: c.p.str("VersionId"),
		Data:      c.p.str("SecretData"),
		DataType:  c.p.str("SecretDataType"),
		Stages:    stages,
	})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"SecretName": name, "VersionId": info.ID, "VersionStages": stagesJSON(info.Stages)}, nil
}

func (s *Server) updateSecret(c *call) (any, error) {
	var custom *string
	if v, given := c.p["ExtendedConfig.CustomData"]; given {
		custom = &v
	}
	name := c.p.str("SecretName")
	sec, idx, err := s.cfg.Service.UpdateSecret(c.ctx, c.caller, kms.UpdateSecretInput{
		Name: name, Description: optDescription(c), CustomData: custom})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"SecretName": secretNameOf(sec, name)}, nil
}

func (s *Server) updateSecretVersionStage(c *call) (any, error) {
	name := c.p.str("SecretName")
	idx, err := s.cfg.Service.UpdateSecretVersionStage(c.ctx, c.caller, kms.SecretStageInput{
		Name: name, Stage: c.p.str("VersionStage"), RemoveFrom: c.p.str("RemoveFromVersion"), MoveTo: c.p.str("MoveToVersion")})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"SecretName": name}, nil
}

func (s *Server) listSecretVersionIds(c *call) (any, error) {
	deprecated, err := c.p.boolean("IncludeDeprecated")
	if err != nil {
		return nil, err
	}
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	name := c.p.str("SecretName")
	sec, l, err := s.cfg.Service.ListSecretVersionIds(c.ctx, c.caller, kms.SecretVersionsInput{
		Name: name, IncludeDeprecated: deprecated, Page: page})
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(l.Items))
	for _, v := range l.Items {
		list = append(list, map[string]any{"VersionId": v.ID, "CreateTime": isoTime(v.CreatedAt), "VersionStages": stagesJSON(v.Stages)})
	}
	return map[string]any{"SecretName": secretNameOf(sec, name), "VersionIds": map[string]any{"VersionId": list},
		"TotalCount": l.Total, "PageNumber": l.Page.Number, "PageSize": l.Page.Size}, nil
}

// secretFilterKeys are the keys ListSecrets filters by.
var secretFilterKeys = map[string]bool{"SecretName": true, "Description": true, "TagKey": true, "TagValue": true}

// parseSecretFilters reads ListSecrets' Filters: a JSON array of at most 10
// {"Key":…, "Values":[…]} with 1 to 10 values each.
func parseSecretFilters(text string) ([]kms.SecretFilter, error) {
	if text == "" {
		return nil, nil
	}
	invalid := func(reason string) error {
		return &kms.FieldError{Field: kms.FieldFilters, Err: kms.ErrInvalidParameter, Reason: reason}
	}
	var raw []struct {
		Key    string
		Values []string
	}
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return nil, invalid(`must be a JSON array like [{"Key":"SecretName","Values":["db-password"]}]`)
	}
	if len(raw) > 10 {
		return nil, invalid("at most 10 filters")
	}
	out := make([]kms.SecretFilter, 0, len(raw))
	for _, f := range raw {
		if !secretFilterKeys[f.Key] {
			return nil, invalid(strconv.Quote(shorten(f.Key)) + " is not a filter key (SecretName, Description, TagKey, TagValue)")
		}
		if len(f.Values) == 0 || len(f.Values) > 10 {
			return nil, invalid("filter " + f.Key + " needs 1 to 10 Values")
		}
		out = append(out, kms.SecretFilter{Key: f.Key, Values: f.Values})
	}
	return out, nil
}

func (s *Server) listSecrets(c *call) (any, error) {
	fetchTags, err := c.p.boolean("FetchTags")
	if err != nil {
		return nil, err
	}
	filters, err := parseSecretFilters(c.p.str("Filters"))
	if err != nil {
		return nil, err
	}
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	l, err := s.cfg.Service.ListSecrets(c.ctx, c.caller, kms.ListSecretsInput{Filters: filters, Page: page})
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(l.Items))
	for _, sec := range l.Items {
		m := map[string]any{"SecretName": sec.Name, "SecretType": sec.Type, "CreateTime": isoTime(sec.CreatedAt),
			"UpdateTime": isoTime(sec.UpdatedAt), "PlannedDeleteTime": isoTime(sec.PlannedDeleteAt)}
		if fetchTags {
			m["Tags"] = secretTagsJSON(sec.Tags)
		}
		list = append(list, m)
	}
	return map[string]any{"SecretList": map[string]any{"Secret": list},
		"TotalCount": l.Total, "PageNumber": l.Page.Number, "PageSize": l.Page.Size}, nil
}

func (s *Server) describeSecret(c *call) (any, error) {
	fetchTags, err := c.p.boolean("FetchTags")
	if err != nil {
		return nil, err
	}
	sec, err := s.cfg.Service.DescribeSecret(c.ctx, c.caller, c.p.str("SecretName"))
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		"Arn":               s.cfg.Service.SecretArn(sec),
		"SecretName":        sec.Name,
		"SecretType":        sec.Type,
		"Description":       sec.Description,
		"EncryptionKeyId":   sec.EncryptionKeyID,
		"DKMSInstanceId":    sec.InstanceID,
		"ExtendedConfig":    sec.ExtendedConfig,
		"CreateTime":        isoTime(sec.CreatedAt),
		"UpdateTime":        isoTime(sec.UpdatedAt),
		"PlannedDeleteTime": isoTime(sec.PlannedDeleteAt),
		"AutomaticRotation": secretRotation(sec),
		"RotationInterval":  secretInterval(sec),
		"LastRotationDate":  isoTime(sec.LastRotation),
		"NextRotationDate":  secretNextRotation(sec),
	}
	if fetchTags {
		m["Tags"] = secretTagsJSON(sec.Tags)
	}
	return m, nil
}

func (s *Server) deleteSecret(c *call) (any, error) {
	window, err := c.p.optInteger("RecoveryWindowInDays")
	if err != nil {
		return nil, err
	}
	force, err := c.p.boolean("ForceDeleteWithoutRecovery")
	if err != nil {
		return nil, err
	}
	name := c.p.str("SecretName")
	sec, idx, err := s.cfg.Service.DeleteSecret(c.ctx, c.caller, kms.SecretDeletionInput{Name: name, RecoveryWindowDays: window, Force: force})
	c.index = idx
	if err != nil {
		return nil, err
	}
	planned := ""
	if sec != nil {
		planned = isoTime(sec.PlannedDeleteAt)
	}
	return map[string]any{"SecretName": secretNameOf(sec, name), "PlannedDeleteTime": planned}, nil
}

func (s *Server) restoreSecret(c *call) (any, error) {
	name := c.p.str("SecretName")
	idx, err := s.cfg.Service.RestoreSecret(c.ctx, c.caller, name)
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"SecretName": name}, nil
}

func (s *Server) rotateSecret(c *call) (any, error) {
	name := c.p.str("SecretName")
	sec, version, idx, err := s.cfg.Service.RotateSecret(c.ctx, c.caller, kms.RotateSecretInput{Name: name, VersionID: c.p.str("VersionId")})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"Arn": s.cfg.Service.SecretArn(sec), "SecretName": sec.Name, "VersionId": version}, nil
}

func (s *Server) updateSecretRotationPolicy(c *call) (any, error) {
	if _, given := c.p["EnableAutomaticRotation"]; !given {
		return nil, &kms.FieldError{Field: kms.FieldAutomaticRotation, Err: kms.ErrMissingParameter}
	}
	enable, err := c.p.boolean("EnableAutomaticRotation")
	if err != nil {
		return nil, err
	}
	name := c.p.str("SecretName")
	idx, err := s.cfg.Service.UpdateSecretRotationPolicy(c.ctx, c.caller, kms.SecretRotationPolicyInput{
		Name: name, Enable: enable, RotationInterval: c.p.str("RotationInterval")})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"SecretName": name}, nil
}

// secretPolicyName is the PolicyName parameter; a secret has one policy,
// "default", which is also what an absent PolicyName names.
func secretPolicyName(c *call) string {
	if v, given := c.p["PolicyName"]; given {
		return v
	}
	return "default"
}

func (s *Server) getSecretPolicy(c *call) (any, error) {
	policy, err := s.cfg.Service.GetSecretPolicy(c.ctx, c.caller, kms.SecretPolicyInput{
		Name: c.p.str("SecretName"), PolicyName: secretPolicyName(c)})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Policy": policy}, nil
}

func (s *Server) setSecretPolicy(c *call) (any, error) {
	idx, err := s.cfg.Service.SetSecretPolicy(c.ctx, c.caller, kms.SecretPolicyInput{
		Name: c.p.str("SecretName"), PolicyName: secretPolicyName(c), Policy: c.p.str("Policy")})
	c.index = idx
	return nil, err
}

func (s *Server) getRandomPassword(c *call) (any, error) {
	length, err := c.p.optInteger("PasswordLength")
	if err != nil {
		return nil, err
	}
	in := kms.RandomPasswordInput{Length: length, ExcludeCharacters: c.p.str("ExcludeCharacters")}
	if in.ExcludeLowercase, err = c.p.boolean("ExcludeLowercase"); err != nil {
		return nil, err
	}
	if in.ExcludeUppercase, err = c.p.boolean("ExcludeUppercase"); err != nil {
		return nil, err
	}
	if in.ExcludeNumbers, err = c.p.boolean("ExcludeNumbers"); err != nil {
		return nil, err
	}
	if in.ExcludePunctuation, err = c.p.boolean("ExcludePunctuation"); err != nil {
		return nil, err
	}
	// The reference requires every included type unless told otherwise.
	each, err := c.p.optBoolean("RequireEachIncludedType")
	if err != nil {
		return nil, err
	}
	in.RequireEachIncludedType = each == nil || *each
	pw, err := s.cfg.Service.GetRandomPassword(c.ctx, c.caller, in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"RandomPassword": pw}, nil
}
