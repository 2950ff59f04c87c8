package kms

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/raftkms/raftkms/fsm"
)

// The cloud-shaped actions, mapped onto a self-hosted cluster
// (docs/API.md, "Cloud-shaped actions"):
//
//   - a region is a node's --region; DescribeRegions lists the regions of
//     the cluster's alive nodes with their API endpoints;
//   - the account's KMS service is enabled once the account exists:
//     DescribeAccountKmsStatus answers Enabled, OpenKmsService succeeds
//     and changes nothing (there is nothing to open);
//   - a VPC is a network rule of the account (fsm.NetworkRule, a named
//     list of CIDR blocks), a vSwitch one of that rule's blocks, a zone a
//     cluster zone (--zone). An instance bound to networks (its VpcId and
//     its BindVpcs) serves its keys and secrets only to requests whose
//     source address lies in one of them (checkInstanceNetwork).

// NodeInfo is one cluster node as gossip advertises it.
type NodeInfo struct {
	ID, Region, Zone string
	Endpoint         string // the API's host:port
}

// nodes are the cluster's nodes, this one always included.
func (s *Service) nodes() []NodeInfo {
	var out []NodeInfo
	if s.cfg.Members != nil {
		out = s.cfg.Members()
	}
	for _, n := range out {
		if n.ID == s.cfg.NodeID {
			return out
		}
	}
	return append(out, NodeInfo{ID: s.cfg.NodeID, Region: s.cfg.Region, Zone: s.cfg.Zone})
}

// Region is one region of the cluster: its nodes' API endpoints, sorted.
type Region struct {
	ID        string
	Endpoints []string
}

// DescribeRegions lists the regions of the cluster's nodes, sorted.
func (s *Service) DescribeRegions(ctx context.Context, c Caller) ([]Region, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DescribeRegions"); err != nil {
		return nil, err
	}
	byID := map[string]*Region{}
	for _, n := range s.nodes() {
		r := byID[n.Region]
		if r == nil {
			r = &Region{ID: n.Region}
			byID[n.Region] = r
		}
		if n.Endpoint != "" && !containsString(r.Endpoints, n.Endpoint) {
			r.Endpoints = append(r.Endpoints, n.Endpoint)
		}
	}
	out := make([]Region, 0, len(byID))
	for _, r := range byID {
		sort.Strings(r.Endpoints)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// AccountKmsStatus is the account's KMS status: Enabled, as every account
// of the cluster has the service.
func (s *Service) AccountKmsStatus(ctx context.Context, c Caller) (string, error) {
	if err := s.authorizeAccount(ctx, c, "kms:DescribeAccountKmsStatus"); err != nil {
		return "", err
	}
	if _, ok := s.fsm.Account(c.AccountID); !ok {
		return "", fmt.Errorf("%w: %s", fsm.ErrAccountNotFound, c.AccountID)
	}
	return "Enabled", nil
}

// OpenKmsService enables the service for the account: it is enabled as
// soon as the account exists, so the call only checks that (idempotent).
func (s *Service) OpenKmsService(ctx context.Context, c Caller) error {
	_, err := s.AccountKmsStatus(ctx, c)
	return err
}

// ConnectInput are ConnectKmsInstance's parameters (comma-separated lists
// split).
type ConnectInput struct {
	InstanceID string
	KMProvider string
	VpcID      string
	VSwitchIDs []string
	ZoneIDs    []string
}

// ConnectKmsInstance sets the instance's VPC (a network rule of the
// account), vSwitches (blocks of that rule) and zones (cluster zones).
// Calling it again replaces them.
func (s *Service) ConnectKmsInstance(ctx context.Context, c Caller, in ConnectInput) (uint64, error) {
	if in.InstanceID == "" {
		return 0, missing(FieldInstanceID)
	}
	if in.KMProvider != "" && in.KMProvider != "Aliyun" {
		return 0, invalid(FieldKMProvider, "Aliyun is the only provider")
	}
	if in.VpcID == "" {
		return 0, missing(FieldVpcID)
	}
	if err := s.authorizeAccount(ctx, c, "kms:ConnectKmsInstance"); err != nil {
		return 0, err
	}
	inst, err := s.ownInstance(ctx, c, in.InstanceID)
	if err != nil {
		return 0, err
	}
	vsw, err := s.checkVSwitches(c.AccountID, in.VpcID, in.VSwitchIDs)
	if err != nil {
		return 0, err
	}
	zones := map[string]bool{}
	for _, n := range s.nodes() {
		if n.Zone != "" {
			zones[n.Zone] = true
		}
	}
	for _, z := range in.ZoneIDs {
		if !zones[z] {
			return 0, invalid(FieldZoneIDs, fmt.Sprintf("%q is not a zone of the cluster's nodes (--zone)", shorten(z)))
		}
	}
	return s.propose(ctx, fsm.CmdConnectInstance, fsm.ConnectInstanceCmd{
		Now: s.nowMillis(), AccountID: c.AccountID, InstanceID: inst.ID,
		VpcID: in.VpcID, VSwitchIDs: vsw, ZoneIDs: in.ZoneIDs,
	})
}

// checkVSwitches checks that vpc is a network rule of the account and that
// each vSwitch is one of its blocks; it returns the vSwitches in the
// rule's canonical form.
func (s *Service) checkVSwitches(accountID, vpc string, vswitches []string) ([]string, error) {
	r, ok := s.fsm.NetworkRule(accountID, vpc)
	if !ok {
		return nil, fmt.Errorf("%w: %s (a VpcId names a network rule: CreateNetworkRule)", fsm.ErrNetworkRuleNotFound, vpc)
	}
	out := make([]string, 0, len(vswitches))
	for _, v := range vswitches {
		canon := v
		if p, err := netip.ParsePrefix(v); err == nil {
			canon = p.Masked().String()
		} else if a, err := netip.ParseAddr(v); err == nil {
			canon = a.String()
		}
		if !containsString(r.SourcePrivateIP, canon) {
			return nil, invalid(FieldVSwitchIDs, fmt.Sprintf("%q is not a block of network rule %s (%s)", shorten(v), vpc, strings.Join(r.SourcePrivateIP, ", ")))
		}
		out = append(out, canon)
	}
	return out, nil
}

// UpdateKmsInstanceBindVpc replaces the networks bound to the instance
// besides its VpcId (empty: none). A vpc's RegionId, when given, is a
// region of the cluster; VpcOwnerId, when given, the caller's account.
func (s *Service) UpdateKmsInstanceBindVpc(ctx context.Context, c Caller, id string, vpcs []fsm.InstanceVpc) (uint64, error) {
	if id == "" {
		return 0, missing(FieldInstanceID)
	}
	if err := s.authorizeAccount(ctx, c, "kms:UpdateKmsInstanceBindVpc"); err != nil {
		return 0, err
	}
	inst, err := s.ownInstance(ctx, c, id)
	if err != nil {
		return 0, err
	}
	regions := map[string]bool{}
	for _, n := range s.nodes() {
		regions[n.Region] = true
	}
	out := make([]fsm.InstanceVpc, 0, len(vpcs))
	for _, v := range vpcs {
		if v.VpcID == "" {
			return 0, invalid(FieldBindVpcs, "every bound VPC needs a VpcId (a network rule's name)")
		}
		if v.RegionID != "" && !regions[v.RegionID] {
			return 0, invalid(FieldBindVpcs, fmt.Sprintf("%q is not a region of the cluster", shorten(v.RegionID)))
		}
		if v.OwnerID != "" && v.OwnerID != c.AccountID {
			return 0, invalid(FieldBindVpcs, "VpcOwnerId: only networks of the instance's own account can be bound")
		}
		var vsw []string
		if v.VSwitchID != "" {
			vsw = []string{v.VSwitchID}
		}
		canon, err := s.checkVSwitches(c.AccountID, v.VpcID, vsw)
		if err != nil {
			return 0, err
		}
		if len(canon) == 1 {
			v.VSwitchID = canon[0]
		}
		out = append(out, v)
	}
	return s.propose(ctx, fsm.CmdBindInstanceVpcs, fsm.BindInstanceVpcsCmd{
		Now: s.nowMillis(), AccountID: c.AccountID, InstanceID: inst.ID, Vpcs: out,
	})
}

// InstanceSecretCount is how many secrets belong to the instance.
func (s *Service) InstanceSecretCount(in *fsm.Instance) int {
	n := 0
	for _, sec := range s.fsm.Secrets(in.AccountID) {
		if s.secretInstance(sec) == in.ID {
			n++
		}
	}
	return n
}

// checkInstanceNetwork refuses a request for a resource of instance (""
// for none) whose source address lies outside every network bound to the
// instance; an instance without bound networks accepts any address. On
// the hot path this costs one map lookup for an unbound instance; a bound
// one parses its rules' blocks (netip, no JSON). A bound rule that no
// longer exists contributes no address (closed, not open).
func (s *Service) checkInstanceNetwork(instance string, c Caller) error {
	if instance == "" {
		return nil
	}
	in, ok := s.fsm.Instance(instance)
	if !ok || (in.VpcID == "" && len(in.BindVpcs) == 0) {
		return nil
	}
	if src, err := netip.ParseAddr(c.SourceIP); err == nil {
		src = src.Unmap()
		for _, name := range in.BoundNetworks() {
			r, ok := s.fsm.NetworkRule(in.AccountID, name)
			if !ok {
				continue
			}
			for _, b := range r.SourcePrivateIP {
				if p, err := netip.ParsePrefix(b); err == nil {
					if p.Contains(src) {
						return nil
					}
				} else if a, err := netip.ParseAddr(b); err == nil && a.Unmap() == src {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%w: the request comes from %s, outside the networks bound to KMS instance %s (ConnectKmsInstance, UpdateKmsInstanceBindVpc)", ErrNoPermission, c.SourceIP, instance)
}

// CheckRegion accepts "" or a region of the cluster's nodes (the RegionId
// parameter of the batch tag actions).
func (s *Service) CheckRegion(region string) error {
	if region == "" {
		return nil
	}
	for _, n := range s.nodes() {
		if n.Region == region {
			return nil
		}
	}
	return invalid(FieldRegionID, fmt.Sprintf("%q is not a region of the cluster (DescribeRegions)", shorten(region)))
}
