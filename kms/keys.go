package kms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// Names the service uses.
const (
	SpecAES256          = kcrypto.SpecAES256
	UsageEncryptDecrypt = "ENCRYPT/DECRYPT"
	UsageSignVerify     = "SIGN/VERIFY"
	OriginKMS           = "Aliyun_KMS"
	OriginExternal      = "EXTERNAL"
	ProtectionSoftware  = "SOFTWARE"
	ProtectionHSM       = "HSM"
	InstanceSoftware    = "software"
	// DefaultKeyQuota is the key quota of a new instance when the operator
	// gives none.
	DefaultKeyQuota = 1000
	// MaxKeyQuota bounds the key quota the operator may give an instance
	// (`kmsctl operator instance create --key-quota N`). A key costs about
	// 1 KiB of memory on every node (docs/BENCHMARKS.md, "A million keys"),
	// so the bound is ~10 GiB per node for one full instance.
	MaxKeyQuota = 10_000_000
	// MaxDescription is the longest key description the service accepts.
	MaxDescription = 8192
	// Rotation interval bounds for automatic rotation, in seconds.
	MinRotationInterval = 7 * 24 * 3600
	MaxRotationInterval = 365 * 24 * 3600
)

// Page selects one page of a list: PageNumber from 1, PageSize 1–100.
type Page struct{ Number, Size int }

func (p Page) normalize() (Page, error) {
	if p.Number == 0 {
		p.Number = 1
	}
	if p.Size == 0 {
		p.Size = 10
	}
	if p.Number < 1 {
		return p, invalid(FieldPageNumber, "must be 1 or more")
	}
	if p.Size < 1 || p.Size > 100 {
		return p, invalid(FieldPageSize, "must be between 1 and 100")
	}
	return p, nil
}

// Listing is one page of a list: its items, how many there are in all and
// the page (after defaults) that was cut.
type Listing[T any] struct {
	Items []T
	Total int
	Page  Page
}

// listing cuts page p (normalized) out of all.
func listing[T any](all []T, p Page) Listing[T] {
	start, end := p.bounds(len(all))
	return Listing[T]{Items: all[start:end], Total: len(all), Page: p}
}

// offset is where the page starts; a page number so large that the
// product would overflow starts past any listing.
func (p Page) offset() int {
	if p.Number-1 > (1<<50)/p.Size {
		return 1 << 50
	}
	return (p.Number - 1) * p.Size
}

// bounds returns the slice bounds of the page within n items. A page far
// past the end is empty (computed without overflowing).
func (p Page) bounds(n int) (int, int) {
	if p.Number-1 > n/p.Size {
		return n, n
	}
	start := (p.Number - 1) * p.Size
	if start > n {
		start = n
	}
	end := start + p.Size
	if end > n {
		end = n
	}
	return start, end
}

// InitResult is what operator init hands out, once.
type InitResult struct {
	AccountID       string
	AccessKeyID     string
	AccessKeySecret string
	InstanceID      string
	Index           uint64
}

// Init initializes a new cluster: the operator account, its first access
// key, one software KMS instance, the instance endpoint's CA, and the check
// value of this node's root key. It fails with fsm.ErrAlreadyInitialized,
// changing nothing, once done.
func (s *Service) Init(ctx context.Context) (InitResult, error) {
	if ok, _ := s.fsm.Initialized(); ok {
		return InitResult{}, fsm.ErrAlreadyInitialized
	}
	now := s.nowMillis()
	acct := newAccountID()
	akID, secret := newAccessKeyID(), newAccessKeySecret()
	wrapped, err := s.root.Wrap([]byte(secret), kcrypto.SecretAAD(akID))
	if err != nil {
		return InitResult{}, err
	}
	inst := newInstanceID()
	// The instance endpoint's CA comes with the cluster (instanceca.go).
	ca, err := newInstanceCA(s.root, s.now(), s.cfg.NodeID)
	if err != nil {
		return InitResult{}, err
	}
	idx, err := s.propose(ctx, fsm.CmdInit, fsm.InitCmd{
		Now:        now,
		RootCheck:  s.root.CheckValue(),
		Account:    fsm.Account{ID: acct, Name: "operator", Operator: true, CreatedAt: now},
		AccessKey:  fsm.AccessKey{ID: akID, AccountID: acct, Principal: rootPrincipal(acct), WrappedSecret: wrapped, Status: "Active", CreatedAt: now},
		Instance:   fsm.Instance{ID: inst, AccountID: acct, Name: "default", Type: InstanceSoftware, KeyQuota: DefaultKeyQuota, CreatedAt: now},
		InstanceCA: &ca,
	})
	if err != nil {
		return InitResult{}, err
	}
	return InitResult{AccountID: acct, AccessKeyID: akID, AccessKeySecret: secret, InstanceID: inst, Index: idx}, nil
}

func rootPrincipal(account string) string { return "acs:ram::" + account + ":root" }

// InstanceInput holds CreateInstance's parameters.
type InstanceInput struct {
	Type string // software (default) | hardware
	Name string
	// HSMDomain binds a hardware instance to an HSM domain: its keys are
	// generated in, and served by, the tokens of that domain.
	HSMDomain string
	// KeyQuota is how many keys the instance may hold: 1 to MaxKeyQuota;
	// 0 means DefaultKeyQuota.
	KeyQuota int
}

// CreateInstance adds a KMS instance to the caller's account. A
// hardware instance needs the HSM domain its keys will live in; the domain
// must be known to the cluster (recorded, or advertised by a node).
func (s *Service) CreateInstance(ctx context.Context, c Caller, in InstanceInput) (*fsm.Instance, uint64, error) {
	if err := requireRoot(c, "operator instance create"); err != nil {
		return nil, 0, err
	}
	typ, name := in.Type, in.Name
	if typ == "" {
		typ = InstanceSoftware
	}
	switch typ {
	case InstanceSoftware:
		if in.HSMDomain != "" {
			return nil, 0, invalid(FieldHSMDomain, "only hardware instances have an HSM domain")
		}
	case InstanceHardware:
		if in.HSMDomain == "" {
			return nil, 0, invalid(FieldHSMDomain, "a hardware instance is bound to an HSM domain: give its name (kmsctl operator instance create --type hardware --hsm-domain NAME)")
		}
		if len(in.HSMDomain) > 64 || strings.TrimSpace(in.HSMDomain) != in.HSMDomain {
			return nil, 0, invalid(FieldHSMDomain, "1-64 characters, no surrounding spaces")
		}
		if !s.domainKnown(in.HSMDomain) {
			return nil, 0, invalid(FieldHSMDomain, fmt.Sprintf("no node of the cluster has HSM domain %q: enroll a token (kmsd hsm enroll --domain %s ...) and start a node with --hsm-domain %s",
				in.HSMDomain, in.HSMDomain, in.HSMDomain))
		}
	default:
		return nil, 0, invalid(FieldInstanceType, fmt.Sprintf("%q is not an instance type: software or hardware", typ))
	}
	if utf8.RuneCountInString(name) > 128 {
		return nil, 0, invalid(FieldInstanceName, "at most 128 characters")
	}
	quota := in.KeyQuota
	if quota == 0 {
		quota = DefaultKeyQuota
	}
	if quota < 1 || quota > MaxKeyQuota {
		return nil, 0, invalid(FieldKeyQuota, fmt.Sprintf("an instance may hold 1 to %d keys", MaxKeyQuota))
	}
	inst := fsm.Instance{ID: newInstanceID(), AccountID: c.AccountID, Name: name, Type: typ, HSMDomain: in.HSMDomain, KeyQuota: quota, CreatedAt: s.nowMillis()}
	idx, err := s.propose(ctx, fsm.CmdCreateInstance, fsm.CreateInstanceCmd{Now: inst.CreatedAt, Instance: inst})
	if err != nil {
		return nil, idx, err
	}
	inst.ModifyIndex = idx
	return &inst, idx, nil
}

// MaxInstanceLimit bounds what the operator may set as an account's
// instance limit.
const MaxInstanceLimit = 10000

// SetInstanceLimit sets how many KMS instances an account may have. Only
// the operator may. The FSM enforces it at every CreateInstance.
func (s *Service) SetInstanceLimit(ctx context.Context, c Caller, accountID string, max int) (uint64, error) {
	if err := s.requireOperator(c, "setting an account's instance limit"); err != nil {
		return 0, err
	}
	if accountID == "" {
		return 0, missing(FieldAccountID)
	}
	if max < 1 || max > MaxInstanceLimit {
		return 0, invalid(FieldMaxInstances, fmt.Sprintf("an account may have 1 to %d KMS instances", MaxInstanceLimit))
	}
	ok, err := s.found(ctx, func() bool { _, ok := s.fsm.Account(accountID); return ok })
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: %s", fsm.ErrAccountNotFound, accountID)
	}
	return s.propose(ctx, fsm.CmdSetInstanceLimit, fsm.InstanceLimitCmd{Now: s.nowMillis(), AccountID: accountID, MaxInstances: max})
}

// InstanceLimit returns an account's instance limit and how many instances
// it has. An account reads its own; the operator any.
func (s *Service) InstanceLimit(ctx context.Context, c Caller, accountID string) (max, used int, err error) {
	if accountID == "" {
		accountID = c.AccountID
	}
	if accountID != c.AccountID {
		if err := s.requireOperator(c, "reading another account's instance limit"); err != nil {
			return 0, 0, err
		}
	} else if err := requireRoot(c, "reading the instance limit"); err != nil {
		return 0, 0, err
	}
	var a *fsm.Account
	ok, err := s.found(ctx, func() bool {
		var hit bool
		a, hit = s.fsm.Account(accountID)
		return hit
	})
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, fmt.Errorf("%w: %s", fsm.ErrAccountNotFound, accountID)
	}
	return fsm.MaxInstancesOf(a), s.fsm.InstanceCount(accountID), nil
}

// CreateKeyInput holds CreateKey's parameters.
type CreateKeyInput struct {
	KeySpec                 string
	KeyUsage                string
	Origin                  string
	ProtectionLevel         string
	Description             string
	DKMSInstanceID          string
	EnableAutomaticRotation bool
	RotationInterval        string
	Policy                  string
	Tags                    []Tag
	// AliasName is given to the key atomically with its creation (the
	// console's Enable panel for the default key asks for it).
	AliasName string
}

// CreateKey creates a key. With DKMSInstanceId the key lives in that
// instance (and counts against its quota); without it, it is the account's
// one default key (Aliyun_AES_256, SOFTWARE). Origin EXTERNAL creates the
// key in PendingImport, waiting for ImportKeyMaterial.
func (s *Service) CreateKey(ctx context.Context, c Caller, in CreateKeyInput) (*fsm.Key, uint64, error) {
	if err := s.authorizeAccount(ctx, c, "kms:CreateKey"); err != nil {
		return nil, 0, err
	}
	if in.KeySpec == "" {
		in.KeySpec = SpecAES256
	}
	if in.Origin == "" {
		in.Origin = OriginKMS
	}
	if in.Origin != OriginKMS && in.Origin != OriginExternal {
		return nil, 0, invalid(FieldOrigin, fmt.Sprintf("%q is not Aliyun_KMS or EXTERNAL (case-sensitive)", in.Origin))
	}
	if in.ProtectionLevel != "" && in.ProtectionLevel != ProtectionSoftware && in.ProtectionLevel != ProtectionHSM {
		return nil, 0, invalid(FieldProtectionLevel, "must be SOFTWARE or HSM")
	}
	domain := ""
	if in.DKMSInstanceID != "" {
		inst, ok := s.fsm.Instance(in.DKMSInstanceID)
		if !ok {
			// Created through another node a moment ago, perhaps: one
			// read-index round trip before it is final, as for keys.
			if err := s.confirmAbsent(ctx, "the KMS instance"); err != nil {
				return nil, 0, err
			}
			inst, ok = s.fsm.Instance(in.DKMSInstanceID)
		}
		if !ok || inst.AccountID != c.AccountID {
			return nil, 0, fmt.Errorf("%w: DKMSInstanceId %s", fsm.ErrInstanceNotFound, in.DKMSInstanceID)
		}
		if err := s.checkInstanceNetwork(inst.ID, c); err != nil {
			return nil, 0, err
		}
		// The instance decides the protection level; the parameter is
		// ignored, as the service does.
		in.ProtectionLevel = ProtectionSoftware
		if inst.Type == InstanceHardware {
			in.ProtectionLevel, domain = ProtectionHSM, inst.HSMDomain
		}
	} else {
		if in.ProtectionLevel == ProtectionHSM {
			return nil, 0, invalid(FieldProtectionLevel, "the default key is protected in software; HSM keys live in a hardware KMS instance ("+FieldInstanceID.Ref()+")")
		}
		in.ProtectionLevel = ProtectionSoftware
		if in.KeySpec != SpecAES256 {
			return nil, 0, invalid(FieldKeySpec, "the default key is Aliyun_AES_256; other specs need a KMS instance ("+FieldInstanceID.Ref()+")")
		}
	}
	usage, err := checkSpecUsage(in.KeySpec, in.KeyUsage, in.ProtectionLevel == ProtectionHSM)
	if err != nil {
		return nil, 0, err
	}
	if in.Origin == OriginExternal && !kcrypto.IsSymmetric(in.KeySpec) {
		return nil, 0, invalid(FieldOrigin, "only symmetric keys take imported material (EXTERNAL)")
	}
	if err := checkDescription(in.Description); err != nil {
		return nil, 0, err
	}
	var interval int64
	if in.EnableAutomaticRotation || in.RotationInterval != "" {
		if interval, err = parseRotationInterval(in.RotationInterval); err != nil {
			return nil, 0, err
		}
		if !in.EnableAutomaticRotation {
			interval = 0
		}
	}
	if interval > 0 && (!specs[in.KeySpec].rotates || in.Origin != OriginKMS) {
		return nil, 0, invalid(FieldAutomaticRotation, "only symmetric keys with KMS-generated material rotate automatically")
	}
	if in.AliasName != "" {
		if err := checkAliasName(in.AliasName); err != nil {
			return nil, 0, err
		}
	}
	tags := map[string]string{}
	if len(in.Tags) > fsm.MaxTagsPerKey {
		return nil, 0, invalid(FieldTags, fmt.Sprintf("at most %d tags", fsm.MaxTagsPerKey))
	}
	for _, t := range in.Tags {
		if err := checkTag(t); err != nil {
			return nil, 0, err
		}
		tags[t.Key] = t.Value
	}
	// The default policy allows the owner's account only: no principal of
	// another account to count (TestDefaultPolicy_AllowsNoOtherAccount).
	// Parsing it on every CreateKey was 8 % of a write's CPU.
	policy, crossAccount := in.Policy, 0
	if policy == "" {
		policy = DefaultPolicy(c.AccountID)
	} else if err := ValidatePolicy(policy); err != nil {
		return nil, 0, err
	} else {
		crossAccount = CrossAccountPrincipals(policy, c.AccountID)
	}

	now := s.nowMillis()
	state := fsm.StateEnabled
	if in.Origin == OriginExternal {
		state = fsm.StatePendingImport
	}
	key := fsm.Key{
		ID: newUUID(), AccountID: c.AccountID, InstanceID: in.DKMSInstanceID,
		Spec: in.KeySpec, Usage: usage, Origin: in.Origin, ProtectionLevel: in.ProtectionLevel,
		State: state, Description: in.Description, Creator: c.AccountID, CreatorType: "User", CreatedAt: now,
		RotationInterval: interval, LastRotation: now, Policy: policy, Tags: tags,
		CrossAccount: crossAccount,
	}
	var version fsm.KeyVersion
	if in.Origin == OriginExternal {
		// A hardware key's version names its domain before its material
		// is imported: the import wraps it in a token of that domain.
		version = fsm.KeyVersion{ID: newUUID(), KeyID: key.ID, CreatedAt: now, Domain: domain}
	} else if version, err = s.newKeyVersion(ctx, &key, now); err != nil {
		return nil, 0, err
	}
	idx, err := s.propose(ctx, fsm.CmdCreateKey, fsm.CreateKeyCmd{Now: now, Key: key, Version: version, Alias: in.AliasName})
	if err != nil {
		if errors.Is(err, fsm.ErrQuotaExceeded) || errors.Is(err, fsm.ErrDefaultKeyExists) || errors.Is(err, fsm.ErrAccessQuotaExceeded) {
			return nil, idx, fmt.Errorf("%w: %v", ErrLimitExceeded, err)
		}
		return nil, idx, err
	}
	noteKey(ctx, key.ID, version.ID)
	if got, ok := s.fsm.Key(key.ID); ok {
		return got, idx, nil
	}
	// Applied on the leader, not here yet: answer from what was proposed,
	// as Apply records it.
	key.PrimaryVersion, key.Versions = version.ID, []string{version.ID}
	key.CreateIndex, key.ModifyIndex = idx, idx
	return &key, idx, nil
}

func checkDescription(d string) error {
	if !utf8.ValidString(d) {
		return invalid(FieldDescription, "must be UTF-8 text")
	}
	if utf8.RuneCountInString(d) > MaxDescription {
		return invalid(FieldDescription, fmt.Sprintf("at most %d characters", MaxDescription))
	}
	return nil
}

// parseRotationInterval accepts "7d"…"365d" or seconds ("604800s" or a bare
// number) and returns seconds.
func parseRotationInterval(v string) (int64, error) {
	if v == "" {
		return 0, invalid(FieldRotationInterval, "required when automatic rotation is enabled, e.g. 30d or 2592000s")
	}
	unit := int64(1)
	num := v
	switch {
	case strings.HasSuffix(v, "d"):
		unit, num = 24*3600, strings.TrimSuffix(v, "d")
	case strings.HasSuffix(v, "s"):
		num = strings.TrimSuffix(v, "s")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, invalid(FieldRotationInterval, fmt.Sprintf("%q is not a duration like 30d or 2592000s", v))
	}
	secs := n * unit
	if secs < MinRotationInterval || secs > MaxRotationInterval {
		return 0, invalid(FieldRotationInterval, "must be between 7 and 365 days")
	}
	return secs, nil
}

// DescribeKey returns a key's metadata.
func (s *Service) DescribeKey(ctx context.Context, c Caller, ref string) (*fsm.Key, error) {
	return s.keyFor(ctx, c, "kms:DescribeKey", FieldKey, ref, nil)
}

// UpdateKeyDescription replaces a key's description.
func (s *Service) UpdateKeyDescription(ctx context.Context, c Caller, ref, desc string) (uint64, error) {
	if err := checkDescription(desc); err != nil {
		return 0, err
	}
	k, err := s.keyFor(ctx, c, "kms:UpdateKeyDescription", FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	return s.propose(ctx, fsm.CmdUpdateKeyDescription, fsm.UpdateKeyDescriptionCmd{Now: s.nowMillis(), KeyID: k.ID, Description: desc})
}

// SetKeyEnabled enables or disables a key. Disabling also drops the key's
// unwrapped material from this node's memory.
func (s *Service) SetKeyEnabled(ctx context.Context, c Caller, ref string, enabled bool) (uint64, error) {
	k, err := s.keyFor(ctx, c, enableAction(enabled), FieldKey, ref, nil)
	if err != nil {
		return 0, err
	}
	state := fsm.StateEnabled
	if !enabled {
		state = fsm.StateDisabled
		s.forgetKey(k)
	}
	return s.propose(ctx, fsm.CmdSetKeyState, fsm.SetKeyStateCmd{Now: s.nowMillis(), KeyID: k.ID, State: state})
}

func enableAction(enabled bool) string {
	if enabled {
		return "kms:EnableKey"
	}
	return "kms:DisableKey"
}

// CreateKeyVersion rotates a key by hand: a new version becomes primary.
func (s *Service) CreateKeyVersion(ctx context.Context, c Caller, ref string) (*fsm.KeyVersion, uint64, error) {
	k, err := s.keyFor(ctx, c, "kms:CreateKeyVersion", FieldKey, ref, nil)
	if err != nil {
		return nil, 0, err
	}
	if k.State != fsm.StateEnabled {
		return nil, 0, fsm.NewKeyStateError("CreateKeyVersion", k.State)
	}
	if k.Origin == OriginExternal {
		return nil, 0, fmt.Errorf("%w: keys with imported material (EXTERNAL) have a single version", ErrUnsupported)
	}
	now := s.nowMillis()
	v, err := s.newKeyVersion(ctx, k, now)
	if err != nil {
		return nil, 0, err
	}
	idx, err := s.propose(ctx, fsm.CmdCreateKeyVersion, fsm.CreateKeyVersionCmd{Now: now, Version: v})
	if err != nil {
		if errors.Is(err, fsm.ErrVersionLimit) {
			return nil, idx, fmt.Errorf("%w: %v", ErrLimitExceeded, err)
		}
		return nil, idx, err
	}
	noteKey(ctx, k.ID, v.ID)
	v.CreateIndex = idx
	return &v, idx, nil
}

// ErrLimitExceeded means a resource limit (versions, tags, the default key)
// refused the request.
var ErrLimitExceeded = errors.New("resource limit exceeded")

// KeyVersions is one page of a key's versions.
type KeyVersions struct {
	Key *fsm.Key
	Listing[*fsm.KeyVersion]
}

// ListKeyVersions returns one page of a key's versions, oldest first.
func (s *Service) ListKeyVersions(ctx context.Context, c Caller, ref string, p Page) (KeyVersions, error) {
	p, err := p.normalize()
	if err != nil {
		return KeyVersions{}, err
	}
	k, err := s.keyFor(ctx, c, "kms:ListKeyVersions", FieldKey, ref, nil)
	if err != nil {
		return KeyVersions{}, err
	}
	start, end := p.bounds(len(k.Versions))
	var out []*fsm.KeyVersion
	for _, id := range k.Versions[start:end] {
		if v, ok := s.fsm.KeyVersion(id); ok {
			out = append(out, v)
		}
	}
	return KeyVersions{Key: k, Listing: Listing[*fsm.KeyVersion]{Items: out, Total: len(k.Versions), Page: p}}, nil
}

// DescribeKeyVersion returns one version of a key.
func (s *Service) DescribeKeyVersion(ctx context.Context, c Caller, kv KeyVersionRef) (*fsm.KeyVersion, error) {
	ref, versionID := kv.Key, kv.Version
	if versionID == "" {
		return nil, missing(FieldKeyVersionID)
	}
	k, err := s.keyFor(ctx, c, "kms:DescribeKeyVersion", FieldKey, ref, nil)
	if err != nil {
		return nil, err
	}
	v, ok := s.fsm.KeyVersion(versionID)
	if !ok || v.KeyID != k.ID {
		return nil, fmt.Errorf("%w: version %s of key %s", ErrKeyVersionNotFound, versionID, k.ID)
	}
	noteKey(ctx, k.ID, v.ID)
	return v, nil
}

// ErrKeyVersionNotFound means the key has no such version.
var ErrKeyVersionNotFound = errors.New("key version not found")

// NextRotation is when a key with automatic rotation rotates next.
func NextRotation(k *fsm.Key) time.Time {
	if k.RotationInterval == 0 {
		return time.Time{}
	}
	return time.UnixMilli(k.LastRotation).Add(time.Duration(k.RotationInterval) * time.Second)
}
