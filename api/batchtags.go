package api

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/raftkms/raftkms/kms"
)

// The batch tag actions (TagResources, UntagResources, ListTagResources).
// Their lists come either as JSON text or, as the official SDK writes them,
// flattened in the query (ResourceId.1=..., Tag.1.Key=..., Tag.1.Value=...),
// which declaredOnly hands over as a JSON object keyed by position.

// jsonList decodes parameter name as a list: a JSON array, or an object
// keyed by positions 1, 2, ... (the flattened form), in position order.
func (p params) jsonList(name string) ([]json.RawMessage, error) {
	v := p[name]
	if v == "" {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(v), &list); err == nil {
		return list, nil
	}
	var byPos map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &byPos); err != nil {
		return nil, invalidParam(name, "must be a JSON array or "+name+".1, "+name+".2, ...")
	}
	type item struct {
		pos int
		v   json.RawMessage
	}
	items := make([]item, 0, len(byPos))
	for k, raw := range byPos {
		n, err := strconv.Atoi(k)
		if err != nil || n < 1 {
			return nil, invalidParam(name, "members are numbered from 1 ("+name+".1, "+name+".2, ...)")
		}
		items = append(items, item{n, raw})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].pos < items[j].pos })
	for _, it := range items {
		list = append(list, it.v)
	}
	return list, nil
}

// stringItems decodes a list of strings (ResourceId, TagKey).
func (p params) stringItems(name string) ([]string, error) {
	raw, err := p.jsonList(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return nil, invalidParam(name, "every member is a string")
		}
		out = append(out, s)
	}
	return out, nil
}

// keyValueTags decodes Tag: a list of {"Key","Value"}.
func (p params) keyValueTags(name string) ([]kms.Tag, error) {
	raw, err := p.jsonList(name)
	if err != nil {
		return nil, err
	}
	out := make([]kms.Tag, 0, len(raw))
	for _, r := range raw {
		var t struct{ Key, Value *string }
		if err := json.Unmarshal(r, &t); err != nil || t.Key == nil {
			return nil, invalidParam(name, `every tag is {"Key":"...","Value":"..."}`)
		}
		val := ""
		if t.Value != nil {
			val = *t.Value
		}
		out = append(out, kms.Tag{Key: *t.Key, Value: val})
	}
	return out, nil
}

func (s *Server) tagResources(c *call) (any, error) {
	if err := s.cfg.Service.CheckRegion(c.p.str("RegionId")); err != nil {
		return nil, err
	}
	ids, err := c.p.stringItems("ResourceId")
	if err != nil {
		return nil, err
	}
	tags, err := c.p.keyValueTags("Tag")
	if err != nil {
		return nil, err
	}
	c.index, err = s.cfg.Service.TagResources(c.ctx, c.caller, c.p.str("ResourceType"), ids, tags)
	return nil, err
}

func (s *Server) untagResources(c *call) (any, error) {
	if err := s.cfg.Service.CheckRegion(c.p.str("RegionId")); err != nil {
		return nil, err
	}
	ids, err := c.p.stringItems("ResourceId")
	if err != nil {
		return nil, err
	}
	keys, err := c.p.stringItems("TagKey")
	if err != nil {
		return nil, err
	}
	all, err := c.p.boolean("All")
	if err != nil {
		return nil, err
	}
	c.index, err = s.cfg.Service.UntagResources(c.ctx, c.caller, c.p.str("ResourceType"), ids, keys, all)
	return nil, err
}

func (s *Server) listTagResources(c *call) (any, error) {
	if err := s.cfg.Service.CheckRegion(c.p.str("RegionId")); err != nil {
		return nil, err
	}
	ids, err := c.p.stringItems("ResourceId")
	if err != nil {
		return nil, err
	}
	filter, err := c.p.keyValueTags("Tag")
	if err != nil {
		return nil, err
	}
	l, err := s.cfg.Service.ListTagResources(c.ctx, c.caller, c.p.str("ResourceType"), ids, filter, c.p.str("NextToken"))
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(l.Entries))
	for _, e := range l.Entries {
		list = append(list, map[string]any{"ResourceType": e.ResourceType, "ResourceId": e.ResourceID, "TagKey": e.Key, "TagValue": e.Value})
	}
	// NextToken is always there, "" on the last page, so a client can loop
	// until it is empty.
	return map[string]any{"TagResources": map[string]any{"TagResource": list}, "NextToken": l.NextToken}, nil
}
