package api

import (
	"strconv"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

// Handlers of the RAM (API 2015-05-01) and STS (2015-04-01) actions, with
// the reference APIs' parameter and field names.

func userJSON(u *fsm.User) map[string]any {
	return map[string]any{
		"UserId": u.ID, "UserName": u.Name, "DisplayName": u.DisplayName, "Comments": u.Comments,
		"CreateDate": isoTime(u.CreatedAt), "UpdateDate": isoTime(u.UpdatedAt),
	}
}

func roleJSON(r *fsm.Role) map[string]any {
	return map[string]any{
		"RoleId": r.ID, "RoleName": r.Name, "Arn": kms.RoleArn(r.AccountID, r.Name), "Description": r.Description,
		"AssumeRolePolicyDocument": r.AssumeRolePolicy, "MaxSessionDuration": r.MaxSessionDuration,
		"CreateDate": isoTime(r.CreatedAt), "UpdateDate": isoTime(r.UpdatedAt),
	}
}

func (s *Server) createUser(c *call) (any, error) {
	u, idx, err := s.cfg.Service.CreateUser(c.ctx, c.caller, kms.UserInput{
		Name: c.p.str("UserName"), DisplayName: c.p.str("DisplayName"), Comments: c.p.str("Comments"),
	})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"User": userJSON(u)}, nil
}

func (s *Server) getUser(c *call) (any, error) {
	u, err := s.cfg.Service.GetUser(c.ctx, c.caller, c.p.str("UserName"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"User": userJSON(u)}, nil
}

func (s *Server) listUsers(c *call) (any, error) {
	users, err := s.cfg.Service.ListUsers(c.ctx, c.caller)
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(users))
	for _, u := range users {
		list = append(list, userJSON(u))
	}
	return map[string]any{"Users": map[string]any{"User": list}, "IsTruncated": false}, nil
}

func (s *Server) deleteUser(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteUser(c.ctx, c.caller, c.p.str("UserName"))
	c.index = idx
	return nil, err
}

func (s *Server) createAccessKey(c *call) (any, error) {
	ak, err := s.cfg.Service.CreateAccessKey(c.ctx, c.caller, c.p.str("UserName"))
	c.index = ak.Index
	if err != nil {
		return nil, err
	}
	return map[string]any{"AccessKey": map[string]any{
		"AccessKeyId": ak.AccessKey.ID, "AccessKeySecret": ak.Secret, "Status": ak.AccessKey.Status,
		"CreateDate": isoTime(ak.AccessKey.CreatedAt),
	}}, nil
}

func (s *Server) listAccessKeys(c *call) (any, error) {
	keys, err := s.cfg.Service.ListAccessKeys(c.ctx, c.caller, c.p.str("UserName"))
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(keys))
	for _, ak := range keys {
		list = append(list, map[string]any{"AccessKeyId": ak.ID, "Status": ak.Status, "CreateDate": isoTime(ak.CreatedAt)})
	}
	return map[string]any{"AccessKeys": map[string]any{"AccessKey": list}}, nil
}

func (s *Server) updateAccessKey(c *call) (any, error) {
	idx, err := s.cfg.Service.UpdateAccessKey(c.ctx, c.caller, accessKeyRef(c), c.p.str("Status"))
	c.index = idx
	return nil, err
}

func accessKeyRef(c *call) kms.AccessKeyRef {
	return kms.AccessKeyRef{User: c.p.str("UserName"), ID: c.p.str("UserAccessKeyId")}
}

func (s *Server) deleteAccessKey(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteAccessKey(c.ctx, c.caller, accessKeyRef(c))
	c.index = idx
	return nil, err
}

func (s *Server) createRole(c *call) (any, error) {
	var maxSession int64
	if v := c.p.str("MaxSessionDuration"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalidParam("MaxSessionDuration", "must be seconds")
		}
		maxSession = n
	}
	r, idx, err := s.cfg.Service.CreateRole(c.ctx, c.caller, kms.RoleInput{
		Name: c.p.str("RoleName"), TrustPolicy: c.p.str("AssumeRolePolicyDocument"),
		Description: c.p.str("Description"), MaxSessionDuration: maxSession,
	})
	c.index = idx
	if err != nil {
		return nil, err
	}
	return map[string]any{"Role": roleJSON(r)}, nil
}

func (s *Server) getRole(c *call) (any, error) {
	r, err := s.cfg.Service.GetRole(c.ctx, c.caller, c.p.str("RoleName"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"Role": roleJSON(r)}, nil
}

func (s *Server) listRoles(c *call) (any, error) {
	roles, err := s.cfg.Service.ListRoles(c.ctx, c.caller)
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(roles))
	for _, r := range roles {
		list = append(list, roleJSON(r))
	}
	return map[string]any{"Roles": map[string]any{"Role": list}, "IsTruncated": false}, nil
}

func (s *Server) deleteRole(c *call) (any, error) {
	idx, err := s.cfg.Service.DeleteRole(c.ctx, c.caller, c.p.str("RoleName"))
	c.index = idx
	return nil, err
}

func (s *Server) attachPolicy(to string, detach bool) actionFunc {
	return func(c *call) (any, error) {
		name := c.p.str("UserName")
		if to == kms.AttachToRole {
			name = c.p.str("RoleName")
		}
		idx, err := s.cfg.Service.AttachPolicy(c.ctx, c.caller, kms.PolicyAttachmentInput{
			To: to, Name: name, PolicyType: c.p.str("PolicyType"), PolicyName: c.p.str("PolicyName"), Detach: detach,
		})
		c.index = idx
		return nil, err
	}
}

func (s *Server) listPoliciesForUser(c *call) (any, error) {
	names, err := s.cfg.Service.ListPoliciesForUser(c.ctx, c.caller, c.p.str("UserName"))
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(names))
	for _, n := range names {
		list = append(list, map[string]any{"PolicyName": n, "PolicyType": "System", "DefaultVersion": "v1"})
	}
	return map[string]any{"Policies": map[string]any{"Policy": list}}, nil
}

func (s *Server) assumeRole(c *call) (any, error) {
	var duration int64
	if v := c.p.str("DurationSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalidParam("DurationSeconds", "must be seconds")
		}
		duration = n
	}
	t, err := s.cfg.Service.AssumeRole(c.ctx, c.caller, kms.AssumeRoleInput{
		RoleArn: c.p.str("RoleArn"), SessionName: c.p.str("RoleSessionName"), DurationSeconds: duration,
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"Credentials": map[string]any{
			"AccessKeyId": t.AccessKeyID, "AccessKeySecret": t.AccessKeySecret, "SecurityToken": t.SecurityToken,
			"Expiration": t.Expiration.UTC().Format("2006-01-02T15:04:05Z"),
		},
		"AssumedRoleUser": map[string]any{"Arn": t.AssumedRoleArn, "AssumedRoleId": t.AssumedRoleID},
	}, nil
}
