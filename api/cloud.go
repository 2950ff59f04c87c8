package api

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

// The cloud-shaped actions (kms/cloud.go has the mapping).

func (s *Server) describeRegions(c *call) (any, error) {
	regions, err := s.cfg.Service.DescribeRegions(c.ctx, c.caller)
	if err != nil {
		return nil, err
	}
	list := make([]map[string]any, 0, len(regions))
	for _, r := range regions {
		// RegionId is the SDK model's only field; RegionEndpoint and
		// Endpoints (every node of the region) are this service's.
		m := map[string]any{"RegionId": r.ID, "Endpoints": map[string]any{"Endpoint": r.Endpoints}}
		if len(r.Endpoints) > 0 {
			m["RegionEndpoint"] = r.Endpoints[0]
		}
		list = append(list, m)
	}
	return map[string]any{"Regions": map[string]any{"Region": list}}, nil
}

func (s *Server) describeAccountKmsStatus(c *call) (any, error) {
	st, err := s.cfg.Service.AccountKmsStatus(c.ctx, c.caller)
	if err != nil {
		return nil, err
	}
	return map[string]any{"AccountStatus": st}, nil
}

func (s *Server) openKmsService(c *call) (any, error) {
	return nil, s.cfg.Service.OpenKmsService(c.ctx, c.caller)
}

// commaList splits a comma-separated parameter (VSwitchIds, ZoneIds),
// dropping empty members and spaces.
func commaList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) connectKmsInstance(c *call) (any, error) {
	var err error
	c.index, err = s.cfg.Service.ConnectKmsInstance(c.ctx, c.caller, kms.ConnectInput{
		InstanceID: c.p.str("KmsInstanceId"), KMProvider: c.p.str("KMProvider"), VpcID: c.p.str("VpcId"),
		VSwitchIDs: commaList(c.p.str("VSwitchIds")), ZoneIDs: commaList(c.p.str("ZoneIds")),
	})
	return nil, err
}

func (s *Server) updateKmsInstanceBindVpc(c *call) (any, error) {
	raw, err := c.p.required("BindVpcs")
	if err != nil {
		return nil, err
	}
	var in []struct{ VpcId, VSwitchId, RegionId, VpcOwnerId json.RawMessage }
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return nil, invalidParam("BindVpcs", `must be a JSON array like [{"VpcId":"lab","VSwitchId":"10.1.0.0/16"}]`)
	}
	vpcs := make([]fsm.InstanceVpc, 0, len(in))
	for _, v := range in {
		var fields [4]string
		for i, r := range []json.RawMessage{v.VpcId, v.VSwitchId, v.RegionId, v.VpcOwnerId} {
			if fields[i], err = jsonScalar(r); err != nil {
				return nil, invalidParam("BindVpcs", "VpcId, VSwitchId, RegionId and VpcOwnerId are strings")
			}
		}
		vpcs = append(vpcs, fsm.InstanceVpc{VpcID: fields[0], VSwitchID: fields[1], RegionID: fields[2], OwnerID: fields[3]})
	}
	c.index, err = s.cfg.Service.UpdateKmsInstanceBindVpc(c.ctx, c.caller, c.p.str("KmsInstanceId"), vpcs)
	return nil, err
}

// jsonScalar reads a JSON string or number (an account id may come as a
// number) as text; absent is "".
func jsonScalar(r json.RawMessage) (string, error) {
	if len(r) == 0 || string(r) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(r, &n); err != nil {
		return "", err
	}
	return n.String(), nil
}

// instanceNetworkFields are GetKmsInstance's network and zone fields.
func (s *Server) instanceNetworkFields(in *fsm.Instance, out map[string]any) {
	bind := make([]map[string]any, 0, len(in.BindVpcs)+1)
	if in.VpcID != "" {
		vsw := ""
		if len(in.VSwitchIDs) > 0 {
			vsw = in.VSwitchIDs[0]
		}
		bind = append(bind, map[string]any{"VpcId": in.VpcID, "VSwitchId": vsw, "RegionId": s.cfg.Service.Region(), "VpcOwnerId": in.AccountID})
	}
	for _, v := range in.BindVpcs {
		region, owner := v.RegionID, v.OwnerID
		if region == "" {
			region = s.cfg.Service.Region()
		}
		if owner == "" {
			owner = in.AccountID
		}
		bind = append(bind, map[string]any{"VpcId": v.VpcID, "VSwitchId": v.VSwitchID, "RegionId": region, "VpcOwnerId": owner})
	}
	out["BindVpcs"] = map[string]any{"BindVpc": bind}
	out["VpcId"] = in.VpcID
	out["VswitchIds"] = strings.Join(in.VSwitchIDs, ",")
	out["ZoneIds"] = strings.Join(in.ZoneIDs, ",")
	out["VpcNum"] = len(in.BoundNetworks())
	out["SecretNum"] = strconv.Itoa(s.cfg.Service.InstanceSecretCount(in))
}
