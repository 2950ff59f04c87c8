package kms

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/raftkms/raftkms/fsm"
)

// aliasPattern is the service's alias grammar: alias/ then 1–255 of
// letters, digits, _, / and -.
var aliasPattern = regexp.MustCompile(`^alias/[A-Za-z0-9_/-]{1,255}$`)

func checkAliasName(name string) error {
	if name == "" {
		return missing(FieldAliasName)
	}
	if !aliasPattern.MatchString(name) {
		return invalid(FieldAliasName, "an alias is alias/ followed by 1 to 255 letters, digits, _, / or -")
	}
	// The service's own aliases; matched in any case, so that alias/ACS/x
	// cannot pass for one.
	for _, reserved := range []string{"alias/acs/", "alias/aliyun/"} {
		if strings.HasPrefix(strings.ToLower(name), reserved) {
			return invalid(FieldAliasName, fmt.Sprintf("the prefix %s is reserved for service keys (in any case)", reserved))
		}
	}
	return nil
}

// AliasInput names an alias and the key it points at.
type AliasInput struct {
	Name string // alias/...
	Key  string // id, alias or ARN of the key
}

// CreateAlias gives a key a new alias.
func (s *Service) CreateAlias(ctx context.Context, c Caller, in AliasInput) (uint64, error) {
	name, ref := in.Name, in.Key
	if err := checkAliasName(name); err != nil {
		return 0, err
	}
	k, err := s.keyFor(ctx, c, "kms:CreateAlias", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdCreateAlias, fsm.AliasCmd{Now: s.nowMillis(), AccountID: c.AccountID, Name: name, KeyID: k.ID})
}

// UpdateAlias points an existing alias at another key.
func (s *Service) UpdateAlias(ctx context.Context, c Caller, in AliasInput) (uint64, error) {
	name, ref := in.Name, in.Key
	if err := checkAliasName(name); err != nil {
		return 0, err
	}
	k, err := s.keyFor(ctx, c, "kms:UpdateAlias", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdUpdateAlias, fsm.AliasCmd{Now: s.nowMillis(), AccountID: c.AccountID, Name: name, KeyID: k.ID})
}

// DeleteAlias removes an alias; the key is untouched.
func (s *Service) DeleteAlias(ctx context.Context, c Caller, name string) (uint64, error) {
	if err := checkAliasName(name); err != nil {
		return 0, err
	}
	// The permission is on the key the alias points at.
	if a, ok := s.fsm.Alias(c.AccountID, name); ok {
		if k, ok := s.fsm.Key(a.KeyID); ok {
			if err := s.authorizeKey(ctx, c, "kms:DeleteAlias", k, nil); err != nil {
				return 0, err
			}
		}
	} else if err := s.authorizeAccount(ctx, c, "kms:DeleteAlias"); err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdDeleteAlias, fsm.AliasCmd{Now: s.nowMillis(), AccountID: c.AccountID, Name: name})
}

// ListAliases returns one page of the caller's aliases, by name.
func (s *Service) ListAliases(ctx context.Context, c Caller, p Page) (Listing[*fsm.Alias], error) {
	p, err := p.normalize()
	if err != nil {
		return Listing[*fsm.Alias]{}, err
	}
	if err := s.authorizeAccount(ctx, c, "kms:ListAliases"); err != nil {
		return Listing[*fsm.Alias]{}, err
	}
	return listing(s.fsm.Aliases(c.AccountID, ""), p), nil
}

// ListAliasesByKeyID returns one page of a key's aliases.
func (s *Service) ListAliasesByKeyID(ctx context.Context, c Caller, ref string, p Page) (Listing[*fsm.Alias], error) {
	p, err := p.normalize()
	if err != nil {
		return Listing[*fsm.Alias]{}, err
	}
	k, err := s.keyFor(ctx, c, "kms:ListAliasesByKeyId", FieldKey, ref, nil)
	if err != nil {
		return Listing[*fsm.Alias]{}, err
	}
	return listing(s.fsm.Aliases(c.AccountID, k.ID), p), nil
}

// Tag is one resource tag.
type Tag struct{ Key, Value string }

// tagPattern is the character set the service allows in tag keys and values.
var tagPattern = regexp.MustCompile(`^[\p{L}\p{N} /\\_\-.+=:@]*$`)

func checkTag(t Tag) error {
	switch {
	case t.Key == "":
		return invalid(FieldTags, "a tag needs a TagKey")
	case len([]rune(t.Key)) > 128 || len([]rune(t.Value)) > 128:
		return invalid(FieldTags, "tag keys and values are at most 128 characters")
	case !tagPattern.MatchString(t.Key) || !tagPattern.MatchString(t.Value):
		return invalid(FieldTags, fmt.Sprintf("tag %q: keys and values use letters, digits, spaces and / \\ _ - . + = : @", t.Key))
	case strings.HasPrefix(strings.ToLower(t.Key), "aliyun") || strings.HasPrefix(strings.ToLower(t.Key), "acs:"):
		return invalid(FieldTags, fmt.Sprintf("tag key %q: keys must not start with aliyun or acs:", t.Key))
	}
	return nil
}

// TagResource adds tags to a key, overwriting values of existing tag keys.
// A key carries at most 20 tags.
func (s *Service) TagResource(ctx context.Context, c Caller, ref string, tags []Tag) (uint64, error) {
	m, err := tagsToSet(tags, fsm.MaxTagsPerKey)
	if err != nil {
		return 0, err
	}
	k, err := s.keyFor(ctx, c, "kms:TagResource", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdTagResource, fsm.TagCmd{Now: s.nowMillis(), KeyID: k.ID, Tags: m})
}

// tagsToSet checks the tags a Tag* action sets on one resource (1 to max,
// each by the tag rules) and returns them as a map.
func tagsToSet(tags []Tag, max int) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, missing(FieldTags)
	}
	if len(tags) > max {
		return nil, invalid(FieldTags, fmt.Sprintf("at most %d tags", max))
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		if err := checkTag(t); err != nil {
			return nil, err
		}
		m[t.Key] = t.Value
	}
	return m, nil
}

// checkTagKeys checks the tag keys an Untag* action removes (1 to max, each
// 1 to 128 characters).
func checkTagKeys(tagKeys []string, max int) error {
	if len(tagKeys) == 0 {
		return missing(FieldTagKeys)
	}
	if len(tagKeys) > max {
		return invalid(FieldTagKeys, fmt.Sprintf("at most %d tag keys", max))
	}
	for _, t := range tagKeys {
		if t == "" || len([]rune(t)) > 128 {
			return invalid(FieldTagKeys, "tag keys are 1 to 128 characters")
		}
	}
	return nil
}

// UntagResource removes tag keys from a key; absent keys are ignored.
func (s *Service) UntagResource(ctx context.Context, c Caller, ref string, tagKeys []string) (uint64, error) {
	if err := checkTagKeys(tagKeys, fsm.MaxTagsPerKey); err != nil {
		return 0, err
	}
	k, err := s.keyFor(ctx, c, "kms:UntagResource", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdUntagResource, fsm.TagCmd{Now: s.nowMillis(), KeyID: k.ID, Keys: tagKeys})
}

// ResourceTags are a key's tags.
type ResourceTags struct {
	Key  *fsm.Key
	Tags []Tag // sorted by tag key
}

// ListResourceTags returns a key's tags sorted by tag key.
func (s *Service) ListResourceTags(ctx context.Context, c Caller, ref string) (ResourceTags, error) {
	k, err := s.keyFor(ctx, c, "kms:ListResourceTags", FieldKey, ref, nil)
	if err != nil {
		return ResourceTags{}, err
	}
	out := make([]Tag, 0, len(k.Tags))
	for key, v := range k.Tags {
		out = append(out, Tag{Key: key, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return ResourceTags{Key: k, Tags: out}, nil
}
