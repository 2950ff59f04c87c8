package kms

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/raftkms/raftkms/fsm"
)

// Batch tags: TagResources, UntagResources and ListTagResources name a
// resource type and a list of resources. They share the storage and the
// rules of the per-resource actions (TagResource, UntagResource,
// ListResourceTags; TagSecret, UntagSecret): the same tags on the same
// records, the same checks (checkTag, 20 tags per resource), and the same
// authorization, each resource for kms:TagResource, kms:UntagResource or
// kms:ListResourceTags. A batch write is one fsm command (CmdTagResources):
// every resource changes, or none does.

// Resource types of the batch tag actions.
const (
	ResourceTypeKey         = "key"
	ResourceTypeSecret      = "secret"
	ResourceTypeCertificate = "certificate"
)

// MaxBatchResources bounds the ResourceId list of one batch call (the
// reference's limit).
const MaxBatchResources = 50

// TagResourceEntry is one tag of one resource, as ListTagResources
// answers it.
type TagResourceEntry struct {
	ResourceType, ResourceID, Key, Value string
}

// TagResourceList is a page of ListTagResources; NextToken is empty on
// the last page.
type TagResourceList struct {
	Entries   []TagResourceEntry
	NextToken string
}

// TagResourcesPageSize is how many tags one ListTagResources page holds.
const TagResourcesPageSize = 50

// batchTargets resolves and authorizes ids of rtype for action and adds
// them to cmd. It is the one switch on the resource type (with tagsOf
// below).
func (s *Service) batchTargets(ctx context.Context, c Caller, rtype, action string, ids []string, cmd *fsm.TagResourcesCmd) error {
	if err := checkBatchIDs(ids, true); err != nil {
		return err
	}
	switch rtype {
	case ResourceTypeKey:
		for _, id := range ids {
			k, err := s.keyFor(ctx, c, action, FieldResourceID, id, nil)
			if err != nil {
				return err
			}
			if !containsString(cmd.KeyIDs, k.ID) {
				cmd.KeyIDs = append(cmd.KeyIDs, k.ID)
			}
		}
	case ResourceTypeSecret:
		for _, id := range ids {
			sec, err := s.secretFor(ctx, c, action, id)
			if err != nil {
				return err
			}
			if err := notPending(sec); err != nil {
				return err
			}
			if !containsString(cmd.Secrets, sec.Name) {
				cmd.Secrets = append(cmd.Secrets, sec.Name)
			}
		}
	case ResourceTypeCertificate:
		for _, id := range ids {
			x, err := s.certificateFor(ctx, c, action, id)
			if err != nil {
				return err
			}
			if !containsString(cmd.Certs, x.ID) {
				cmd.Certs = append(cmd.Certs, x.ID)
			}
		}
	case "":
		return missing(FieldResourceType)
	default:
		return invalid(FieldResourceType, fmt.Sprintf("%q is not a resource type (key, secret, certificate)", shorten(rtype)))
	}
	return nil
}

// checkBatch checks the resource type and the id list before anything
// else is read (so a call without parameters is told about ResourceType).
func checkBatch(rtype string, ids []string, required bool) error {
	switch rtype {
	case ResourceTypeKey, ResourceTypeSecret, ResourceTypeCertificate:
	case "":
		return missing(FieldResourceType)
	default:
		return invalid(FieldResourceType, fmt.Sprintf("%q is not a resource type (key, secret, certificate)", shorten(rtype)))
	}
	return checkBatchIDs(ids, required)
}

// asField names f in a FieldError of the per-resource checks (checkTag
// names Tags; the batch actions call the parameter Tag).
func asField(err error, f Field) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		n := *fe
		n.Field = f
		return &n
	}
	return err
}

func checkBatchIDs(ids []string, required bool) error {
	if len(ids) == 0 && required {
		return missing(FieldResourceID)
	}
	if len(ids) > MaxBatchResources {
		return invalid(FieldResourceID, fmt.Sprintf("at most %d resources", MaxBatchResources))
	}
	for _, id := range ids {
		if id == "" {
			return invalid(FieldResourceID, "a resource id is not empty")
		}
	}
	return nil
}

// TagResources sets tags on every resource of ids, all or none.
func (s *Service) TagResources(ctx context.Context, c Caller, rtype string, ids []string, tags []Tag) (uint64, error) {
	if err := checkBatch(rtype, ids, true); err != nil {
		return 0, err
	}
	if len(tags) == 0 {
		return 0, missing(FieldTag)
	}
	if len(tags) > fsm.MaxTagsPerKey {
		return 0, invalid(FieldTag, fmt.Sprintf("at most %d tags", fsm.MaxTagsPerKey))
	}
	cmd := fsm.TagResourcesCmd{Now: s.nowMillis(), AccountID: c.AccountID, Tags: make(map[string]string, len(tags))}
	for _, t := range tags {
		if err := checkTag(t); err != nil {
			return 0, asField(err, FieldTag)
		}
		cmd.Tags[t.Key] = t.Value
	}
	if err := s.batchTargets(ctx, c, rtype, "kms:TagResource", ids, &cmd); err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdTagResources, cmd)
}

// UntagResources removes the tag keys (all: every tag) from every resource
// of ids, all or none. Tag keys a resource does not carry are ignored.
func (s *Service) UntagResources(ctx context.Context, c Caller, rtype string, ids []string, tagKeys []string, all bool) (uint64, error) {
	if err := checkBatch(rtype, ids, true); err != nil {
		return 0, err
	}
	if len(tagKeys) == 0 && !all {
		return 0, missing(FieldTagKey)
	}
	if len(tagKeys) > fsm.MaxTagsPerKey {
		return 0, invalid(FieldTagKey, fmt.Sprintf("at most %d tag keys", fsm.MaxTagsPerKey))
	}
	for _, t := range tagKeys {
		if t == "" || len([]rune(t)) > 128 {
			return 0, invalid(FieldTagKey, "tag keys are 1 to 128 characters")
		}
	}
	cmd := fsm.TagResourcesCmd{Now: s.nowMillis(), AccountID: c.AccountID, Remove: tagKeys, All: all}
	if err := s.batchTargets(ctx, c, rtype, "kms:UntagResource", ids, &cmd); err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdTagResources, cmd)
}

// taggedResource is one resource with its tags, for listing.
type taggedResource struct {
	id   string
	tags map[string]string
}

// ListTagResources lists the tags of the resources of ids (none: every
// resource of the type in the caller's account that the caller may list
// the tags of), keeping only resources that carry every tag of filter (a
// filter tag with an empty value matches any value). Entries are sorted by
// resource id, then tag key; NextToken continues after the last entry.
func (s *Service) ListTagResources(ctx context.Context, c Caller, rtype string, ids []string, filter []Tag, token string) (TagResourceList, error) {
	if err := checkBatch(rtype, ids, false); err != nil {
		return TagResourceList{}, err
	}
	after, err := decodeTagToken(token)
	if err != nil {
		return TagResourceList{}, err
	}
	res, err := s.tagsOf(ctx, c, rtype, ids)
	if err != nil {
		return TagResourceList{}, err
	}
	sort.Slice(res, func(i, j int) bool { return res[i].id < res[j].id })
	var out TagResourceList
	for _, r := range res {
		if !carriesAll(r.tags, filter) {
			continue
		}
		keys := make([]string, 0, len(r.tags))
		for k := range r.tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			pos := r.id + "\x00" + k
			if after != "" && pos <= after {
				continue
			}
			if len(out.Entries) == TagResourcesPageSize {
				last := out.Entries[len(out.Entries)-1]
				out.NextToken = encodeTagToken(last.ResourceID + "\x00" + last.Key)
				return out, nil
			}
			out.Entries = append(out.Entries, TagResourceEntry{ResourceType: rtype, ResourceID: r.id, Key: k, Value: r.tags[k]})
		}
	}
	return out, nil
}

// tagsOf reads the tags of ids of rtype (none: the account's resources of
// rtype the caller may read the tags of). Certificates plug in here too.
func (s *Service) tagsOf(ctx context.Context, c Caller, rtype string, ids []string) ([]taggedResource, error) {
	const action = "kms:ListResourceTags"
	var out []taggedResource
	switch rtype {
	case ResourceTypeKey:
		if len(ids) == 0 {
			for _, k := range s.fsm.Keys(c.AccountID) {
				if len(k.Tags) > 0 && s.authorizeKey(ctx, c, action, k, nil) == nil {
					out = append(out, taggedResource{k.ID, k.Tags})
				}
			}
			return out, ctx.Err()
		}
		seen := map[string]bool{}
		for _, id := range ids {
			k, err := s.keyFor(ctx, c, action, FieldResourceID, id, nil)
			if err != nil {
				return nil, err
			}
			if !seen[k.ID] {
				seen[k.ID] = true
				out = append(out, taggedResource{k.ID, k.Tags})
			}
		}
	case ResourceTypeSecret:
		if len(ids) == 0 {
			for _, sec := range s.fsm.Secrets(c.AccountID) {
				if len(sec.Tags) > 0 && s.authorizeSecret(ctx, c, action, sec) == nil {
					out = append(out, taggedResource{sec.Name, sec.Tags})
				}
			}
			return out, ctx.Err()
		}
		seen := map[string]bool{}
		for _, id := range ids {
			sec, err := s.secretFor(ctx, c, action, id)
			if err != nil {
				return nil, err
			}
			if !seen[sec.Name] {
				seen[sec.Name] = true
				out = append(out, taggedResource{sec.Name, sec.Tags})
			}
		}
	case ResourceTypeCertificate:
		if len(ids) == 0 {
			for _, x := range s.fsm.Certificates(c.AccountID) {
				if len(x.Tags) > 0 && s.authorizeCertificate(ctx, c, action, x) == nil {
					out = append(out, taggedResource{x.ID, x.Tags})
				}
			}
			return out, ctx.Err()
		}
		seen := map[string]bool{}
		for _, id := range ids {
			x, err := s.certificateFor(ctx, c, action, id)
			if err != nil {
				return nil, err
			}
			if !seen[x.ID] {
				seen[x.ID] = true
				out = append(out, taggedResource{x.ID, x.Tags})
			}
		}
	case "":
		return nil, missing(FieldResourceType)
	default:
		return nil, invalid(FieldResourceType, fmt.Sprintf("%q is not a resource type (key, secret, certificate)", shorten(rtype)))
	}
	return out, nil
}

func carriesAll(tags map[string]string, filter []Tag) bool {
	for _, f := range filter {
		v, ok := tags[f.Key]
		if !ok || (f.Value != "" && v != f.Value) {
			return false
		}
	}
	return true
}

func encodeTagToken(pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pos))
}

func decodeTagToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.Contains(string(b), "\x00") {
		return "", invalid(FieldNextToken, "not a NextToken this service gave")
	}
	return string(b), nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
