package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

// Handlers of application access: network rules, permission policies,
// application access points and client keys. The answers use the field
// names and types of the official SDK's models
// (github.com/alibabacloud-go/kms-20160120/v3): where the SDK reads a JSON
// list as a string (Policies, SourcePrivateIp, Permissions and Resources of
// CreatePolicy, AccessControlRules) the answer carries the JSON text;
// where it reads a list (DescribePolicy's Permissions and Resources) a
// list.

func (s *Server) arn(kind, account, name string) string {
	return fmt.Sprintf("acs:kms:%s:%s:%s/%s", s.cfg.Service.Region(), account, kind, name)
}

// jsonText is a list as the JSON text the SDK reads into a string.
func jsonText(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// optDescription is the Description parameter when the request has one.
func optDescription(c *call) *string {
	if v, given := c.p["Description"]; given {
		return &v
	}
	return nil
}

// optList parses an optional JSON parameter: nil when absent or empty.
func optList(v string, parse func(string) ([]string, error)) (*[]string, error) {
	if v == "" {
		return nil, nil
	}
	l, err := parse(v)
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// Network rules.

func (s *Server) networkRuleJSON(r *fsm.NetworkRule) map[string]any {
	return map[string]any{"Name": r.Name, "Arn": s.arn("network", r.AccountID, r.Name), "Type": r.Type,
		"Description": r.Description, "SourcePrivateIp": jsonText(r.SourcePrivateIP)}
}

func (s *Server) createNetworkRule(c *call) (any, error) {
	sources, err := optList(c.p["SourcePrivateIp"], kms.ParseSourcePrivateIPs)
	if err != nil {
		return nil, err
	}
	r, idx, err := s.cfg.Service.CreateNetworkRule(c.ctx, c.caller, kms.NetworkRuleInput{
		Name: c.p.str("Name"), Type: c.p.str("Type"), SourcePrivateIP: sources, Description: optDescription(c)})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return s.networkRuleJSON(r), nil
}

func (s *Server) describeNetworkRule(c *call) (any, error) {
	r, err := s.cfg.Service.DescribeNetworkRule(c.ctx, c.caller, c.p.str("Name"))
	if err != nil {
		return nil, err
	}
	return s.networkRuleJSON(r), nil
}

func (s *Server) listNetworkRules(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	l, err := s.cfg.Service.ListNetworkRules(c.ctx, c.caller, page)
	if err != nil {
		return nil, err
	}
	items := make([]map[string]any, 0, len(l.Items))
	for _, r := range l.Items {
		items = append(items, map[string]any{"Name": r.Name, "Type": r.Type})
	}
	return map[string]any{"NetworkRules": map[string]any{"NetworkRule": items},
		"TotalCount": l.Total, "PageNumber": l.Page.Number, "PageSize": l.Page.Size}, nil
}

func (s *Server) updateNetworkRule(c *call) (any, error) {
	sources, err := optList(c.p["SourcePrivateIp"], kms.ParseSourcePrivateIPs)
	if err != nil {
		return nil, err
	}
	idx, err := s.cfg.Service.UpdateNetworkRule(c.ctx, c.caller, kms.NetworkRuleInput{
		Name: c.p.str("Name"), SourcePrivateIP: sources, Description: optDescription(c)})
	c.index = idx
	return nil, err
}

func (s *Server) deleteNetworkRule(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteNetworkRule(c.ctx, c.caller, c.p.str("Name"))
	c.index = idx
	return nil, err
}

// Permission policies.

func accessControlRules(rules []string) string {
	if rules == nil {
		rules = []string{}
	}
	b, _ := json.Marshal(map[string][]string{"NetworkRules": rules})
	return string(b)
}

func (s *Server) policyJSON(p *fsm.PermissionPolicy, listsAsText bool) map[string]any {
	m := map[string]any{"Name": p.Name, "Arn": s.arn("policy", p.AccountID, p.Name), "KmsInstance": p.KmsInstance,
		"Description": p.Description, "AccessControlRules": accessControlRules(p.NetworkRules)}
	if listsAsText {
		m["Permissions"], m["Resources"] = jsonText(p.Permissions), jsonText(p.Resources)
	} else {
		m["Permissions"], m["Resources"] = nonNil(p.Permissions), nonNil(p.Resources)
	}
	return m
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// policyLists parses the JSON parameters of CreatePolicy and UpdatePolicy.
func policyLists(c *call) (perms, resources, rules *[]string, err error) {
	if perms, err = optList(c.p["Permissions"], kms.ParsePermissions); err != nil {
		return nil, nil, nil, err
	}
	if resources, err = optList(c.p["Resources"], kms.ParseResources); err != nil {
		return nil, nil, nil, err
	}
	if rules, err = optList(c.p["AccessControlRules"], kms.ParseAccessControlRules); err != nil {
		return nil, nil, nil, err
	}
	return perms, resources, rules, nil
}

func (s *Server) createPolicy(c *call) (any, error) {
	perms, resources, rules, err := policyLists(c)
	if err != nil {
		return nil, err
	}
	p, idx, err := s.cfg.Service.CreatePolicy(c.ctx, c.caller, kms.PermissionPolicyInput{
		Name: c.p.str("Name"), KmsInstance: c.p.str("KmsInstance"), Permissions: perms, Resources: resources,
		NetworkRules: rules, Description: optDescription(c)})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return s.policyJSON(p, true), nil
}

func (s *Server) describePolicy(c *call) (any, error) {
	p, err := s.cfg.Service.DescribePolicy(c.ctx, c.caller, c.p.str("Name"))
	if err != nil {
		return nil, err
	}
	return s.policyJSON(p, false), nil
}

func (s *Server) listPolicies(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	l, err := s.cfg.Service.ListPolicies(c.ctx, c.caller, page)
	if err != nil {
		return nil, err
	}
	items := make([]map[string]any, 0, len(l.Items))
	for _, p := range l.Items {
		items = append(items, map[string]any{"Name": p.Name})
	}
	return map[string]any{"Policies": map[string]any{"Policy": items},
		"TotalCount": l.Total, "PageNumber": l.Page.Number, "PageSize": l.Page.Size}, nil
}

func (s *Server) updatePolicy(c *call) (any, error) {
	perms, resources, rules, err := policyLists(c)
	if err != nil {
		return nil, err
	}
	idx, err := s.cfg.Service.UpdatePolicy(c.ctx, c.caller, kms.PermissionPolicyInput{
		Name: c.p.str("Name"), Permissions: perms, Resources: resources, NetworkRules: rules, Description: optDescription(c)})
	c.index = idx
	return nil, err
}

func (s *Server) deletePolicy(c *call) (any, error) {
	idx, err := s.cfg.Service.DeletePolicy(c.ctx, c.caller, c.p.str("Name"))
	c.index = idx
	return nil, err
}

// Application access points.

func (s *Server) aapJSON(a *fsm.AAP) map[string]any {
	return map[string]any{"Name": a.Name, "Arn": s.arn("applicationaccesspoint", a.AccountID, a.Name),
		"AuthenticationMethod": a.AuthenticationMethod, "Description": a.Description, "Policies": jsonText(a.Policies)}
}

func parseAAPPolicies(v string) ([]string, error) {
	return kms.ParseNameList(kms.FieldAccessPointPolicies, v, fsm.MaxPoliciesPerAAP)
}

func (s *Server) createApplicationAccessPoint(c *call) (any, error) {
	policies, err := optList(c.p["Policies"], parseAAPPolicies)
	if err != nil {
		return nil, err
	}
	a, idx, err := s.cfg.Service.CreateApplicationAccessPoint(c.ctx, c.caller, kms.AAPInput{
		Name: c.p.str("Name"), AuthenticationMethod: c.p.str("AuthenticationMethod"), Policies: policies,
		Description: optDescription(c)})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return s.aapJSON(a), nil
}

func (s *Server) describeApplicationAccessPoint(c *call) (any, error) {
	a, err := s.cfg.Service.DescribeApplicationAccessPoint(c.ctx, c.caller, c.p.str("Name"))
	if err != nil {
		return nil, err
	}
	return s.aapJSON(a), nil
}

func (s *Server) listApplicationAccessPoints(c *call) (any, error) {
	page, err := c.p.page()
	if err != nil {
		return nil, err
	}
	l, err := s.cfg.Service.ListApplicationAccessPoints(c.ctx, c.caller, page)
	if err != nil {
		return nil, err
	}
	items := make([]map[string]any, 0, len(l.Items))
	for _, a := range l.Items {
		items = append(items, map[string]any{"Name": a.Name, "AuthenticationMethod": a.AuthenticationMethod})
	}
	return map[string]any{"ApplicationAccessPoints": map[string]any{"ApplicationAccessPoint": items},
		"TotalCount": l.Total, "PageNumber": l.Page.Number, "PageSize": l.Page.Size}, nil
}

func (s *Server) updateApplicationAccessPoint(c *call) (any, error) {
	policies, err := optList(c.p["Policies"], parseAAPPolicies)
	if err != nil {
		return nil, err
	}
	idx, err := s.cfg.Service.UpdateApplicationAccessPoint(c.ctx, c.caller, kms.AAPInput{
		Name: c.p.str("Name"), Policies: policies, Description: optDescription(c)})
	c.index = idx
	return nil, err
}

func (s *Server) deleteApplicationAccessPoint(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteApplicationAccessPoint(c.ctx, c.caller, c.p.str("Name"))
	c.index = idx
	return nil, err
}

// Client keys.

// clientKeyTime reads NotBefore/NotAfter: RFC 3339, or the reference's
// "2006-01-02 15:04:05" in UTC.
func clientKeyTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalidParam(name, "must be a time in RFC 3339, e.g. 2030-01-01T00:00:00Z")
}

func clientKeyJSON(k *fsm.ClientKey) map[string]any {
	return map[string]any{"ClientKeyId": k.ID, "AapName": k.AAPName, "KeyAlgorithm": k.KeyAlgorithm,
		"KeyOrigin": k.KeyOrigin, "CreateTime": isoTime(k.CreatedAt), "NotBefore": isoTime(k.NotBefore),
		"NotAfter": isoTime(k.NotAfter), "PublicKeyData": base64.StdEncoding.EncodeToString(k.PublicKey)}
}

func (s *Server) createClientKey(c *call) (any, error) {
	notBefore, err := clientKeyTime("NotBefore", c.p.str("NotBefore"))
	if err != nil {
		return nil, err
	}
	notAfter, err := clientKeyTime("NotAfter", c.p.str("NotAfter"))
	if err != nil {
		return nil, err
	}
	k, err := s.cfg.Service.CreateClientKey(c.ctx, c.caller, kms.ClientKeyInput{
		AAPName: c.p.str("AapName"), Password: c.p.str("Password"), NotBefore: notBefore, NotAfter: notAfter})
	c.index = k.Index
	if err != nil {
		return nil, err
	}
	return map[string]any{"ClientKeyId": k.Key.ID, "KeyAlgorithm": k.Key.KeyAlgorithm,
		"NotBefore": isoTime(k.Key.NotBefore), "NotAfter": isoTime(k.Key.NotAfter),
		"PrivateKeyData": base64.StdEncoding.EncodeToString(k.PrivateKeyData)}, nil
}

func (s *Server) getClientKey(c *call) (any, error) {
	k, err := s.cfg.Service.GetClientKey(c.ctx, c.caller, c.p.str("ClientKeyId"))
	if err != nil {
		return nil, err
	}
	return clientKeyJSON(k), nil
}

func (s *Server) listClientKeys(c *call) (any, error) {
	keys, err := s.cfg.Service.ListClientKeys(c.ctx, c.caller, c.p.str("AapName"))
	if err != nil {
		return nil, err
	}
	items := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		items = append(items, clientKeyJSON(k))
	}
	return map[string]any{"ClientKeys": items}, nil
}

func (s *Server) deleteClientKey(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteClientKey(c.ctx, c.caller, c.p.str("ClientKeyId"))
	c.index = idx
	return nil, err
}
