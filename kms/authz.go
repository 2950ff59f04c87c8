package kms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/raftkms/raftkms/fsm"
)

// Authorization follows the reference service:
//
//   - In the key's own account an Allow from the caller's RAM policies or
//     from the key policy, and no explicit Deny, is enough. The account's
//     root has every RAM permission in its own account.
//   - A caller from another account needs both: the key policy must allow it
//     (naming it, or its account) and its own account's RAM policies must
//     allow the action; and it must name the key by ARN.
//   - An explicit Deny in either wins everywhere.
//
// Key policy principals `acs:ram::<uid>:*`, `acs:ram::<uid>:root` and `*`
// delegate to the RAM policies of that account (like AWS's account root
// principal): they let RAM decide, they do not grant by themselves. A named
// user or role is a direct grant.

// stmt is a policy statement prepared for evaluation.
type stmt struct {
	effect     string
	principals []string // empty: RAM policy statement (applies to its holder)
	actions    []string
	resources  []string
	conditions map[string]map[string][]string
}

// Action sets of the system policies.
var (
	cryptoActions = []string{
		"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*",
		"kms:AsymmetricEncrypt", "kms:AsymmetricDecrypt", "kms:AsymmetricSign", "kms:AsymmetricVerify",
		"kms:GetPublicKey", "kms:ExportDataKey", "kms:GenerateAndExportDataKey", "kms:GenerateMac", "kms:VerifyMac",
	}
	adminActions = []string{
		"kms:List*", "kms:Describe*", "kms:Create*", "kms:Enable*", "kms:Disable*", "kms:Get*", "kms:Set*",
		"kms:Update*", "kms:Delete*", "kms:Cancel*", "kms:TagResource", "kms:UntagResource",
		"kms:ImportKeyMaterial", "kms:ScheduleKeyDeletion",
	}
	readActions = []string{"kms:List*", "kms:Describe*", "kms:GetKeyPolicy", "kms:GetKmsInstance", "kms:GetSecretPolicy", "kms:GetCertificate"}
)

var systemPolicies = map[string][]stmt{
	PolicyFullAccess:       {{effect: "Allow", actions: []string{"kms:*"}, resources: []string{"*"}}},
	PolicyReadOnlyAccess:   {{effect: "Allow", actions: readActions, resources: []string{"*"}}},
	PolicyCryptoUserAccess: {{effect: "Allow", actions: append(append([]string{"kms:List*", "kms:Describe*"}, cryptoActions...), certificateCryptoActions...), resources: []string{"*"}}},
	// As the reference writes it: every role, the role's trust policy
	// deciding who may assume which.
	PolicySTSAssumeRoleAccess: {{effect: "Allow", actions: []string{"sts:AssumeRole"}, resources: []string{"*"}}},
	// Secrets (secrets_authz.go).
	PolicySecretAdminAccess: {{effect: "Allow", actions: secretAdminActions, resources: []string{secretResourcePattern}}},
	PolicySecretUserAccess:  {{effect: "Allow", actions: secretUserActions, resources: []string{secretResourcePattern}}},
}

// conditionOperators are the Condition operators the evaluator knows.
var conditionOperators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringEqualsIgnoreCase": true,
	"StringLike": true, "StringNotLike": true, "IpAddress": true, "NotIpAddress": true,
}

// matchGlob matches a policy pattern: * is any run of characters (slashes
// included, unlike path.Match), ? one character.
//
// Patterns come from tenants, so the matcher must not backtrack: the
// recursive definition takes exponential time on patterns such as
// "*?*?*?...#". This is the greedy two-pointer algorithm: on a mismatch it
// returns only to the most recent *, which then swallows one more
// character. Earlier stars never need revisiting (whatever they could
// absorb, the latest one can too), so the work is at most
// len(pattern) × len(s) steps.
func matchGlob(pattern, s string) bool {
	if isASCII(pattern) && isASCII(s) {
		// Runes are bytes: the same walk without converting.
		return globWalkASCII(pattern, s)
	}
	return globWalk([]rune(pattern), []rune(s))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func globWalk(p, r []rune) bool {
	pi, si := 0, 0
	star, mark := -1, 0 // the latest * in p, and where in r it resumes
	for si < len(r) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == r[si]):
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// globWalkASCII is globWalk over bytes, for ASCII pattern and text.
func globWalkASCII(p, r string) bool {
	pi, si := 0, 0
	star, mark := -1, 0 // the latest * in p, and where in r it resumes
	for si < len(r) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == r[si]):
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// evaluation carries the request's context through one authorization:
// the first pattern match and every stopCheckEvery-th after it check it,
// so an evaluation that outlives the request stops within a few matches
// (ctx.Err is not free: the API's request context reads the clock). Once stopped, it stays stopped, and its callers
// must return err rather than any decision (a stopped StringNotLike would
// otherwise read as "holds").
type evaluation struct {
	ctx    context.Context
	err    error
	checks uint32 // calls of stopped
}

// stopCheckEvery is how many pattern matches share one look at the
// context.
const stopCheckEvery = 16

func newEvaluation(ctx context.Context) *evaluation { return &evaluation{ctx: ctx} }

func (ev *evaluation) stopped() bool {
	if ev.err == nil && ev.checks%stopCheckEvery == 0 {
		ev.err = ev.ctx.Err()
	}
	ev.checks++
	return ev.err != nil
}

// fail wraps the context's error for the action being authorized.
func (ev *evaluation) fail(action string) error {
	return fmt.Errorf("authorizing %s stopped with the request: %w", action, ev.err)
}

// anyGlob says whether s matches one of patterns; false once stopped.
func (ev *evaluation) anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if ev.stopped() {
			return false
		}
		if matchGlob(p, s) {
			return true
		}
	}
	return false
}

// anyResource is anyGlob of a resource's ARN (arn builds it), built only
// for a pattern other than "*": matchGlob("*", s) holds for every s.
func (ev *evaluation) anyResource(patterns []string, arn func() string) bool {
	for _, p := range patterns {
		if ev.stopped() {
			return false
		}
		if p == "*" || matchGlob(p, arn()) {
			return true
		}
	}
	return false
}

// env holds the condition keys of one request.
type env map[string]string

func (s *Service) envFor(c Caller, encCtx map[string]string) env {
	e := env{"acs:SourceIp": c.SourceIP}
	for k, v := range encCtx {
		e["kms:EncryptionContext:"+k] = v
	}
	return e
}

// conditionsHold evaluates a statement's Condition block.
func (ev *evaluation) conditionsHold(conds map[string]map[string][]string, e env) bool {
	for op, keys := range conds {
		for key, values := range keys {
			got, present := e[key]
			if !present {
				// A key the request does not carry: positive conditions fail,
				// negative ones hold.
				if op == "StringNotEquals" || op == "StringNotLike" || op == "NotIpAddress" {
					continue
				}
				return false
			}
			if !ev.conditionHolds(op, got, values) {
				return false
			}
		}
	}
	return true
}

func (ev *evaluation) conditionHolds(op, got string, values []string) bool {
	switch op {
	case "StringEquals":
		return contains(values, got)
	case "StringNotEquals":
		return !contains(values, got)
	case "StringEqualsIgnoreCase":
		for _, v := range values {
			if strings.EqualFold(v, got) {
				return true
			}
		}
		return false
	case "StringLike":
		return ev.anyGlob(values, got)
	case "StringNotLike":
		return !ev.anyGlob(values, got)
	case "IpAddress", "NotIpAddress":
		ip, err := netip.ParseAddr(got)
		in := false
		if err == nil {
			for _, v := range values {
				if p, err := netip.ParsePrefix(v); err == nil && p.Contains(ip) {
					in = true
				} else if a, err := netip.ParseAddr(v); err == nil && a == ip {
					in = true
				}
			}
		}
		if op == "IpAddress" {
			return in
		}
		return err == nil && !in
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// parsePolicy turns a stored policy document (a key's, a secret's) into
// statements, once per distinct document: authorization runs on every
// request, and parsing the JSON each time was a tenth of a node's CPU
// under load (issue 16). Documents are immutable once stored — a change
// stores a new text — so a parse stays right for as long as the text is
// in use. The statements returned are shared: callers only read them.
func parsePolicy(doc string) []stmt {
	return policies.get(doc)
}

// policies is parsePolicy's memo. It is a cache of a pure function, so
// every Service of the process may share it.
var policies = policyCache{m: map[string][]stmt{}}

// policyCacheMax bounds the documents remembered. Past it the cache starts
// over: a tenant storing many distinct policies costs reparses, never
// unbounded memory (a document is at most MaxPolicySize).
const policyCacheMax = 4096

type policyCache struct {
	mu sync.RWMutex
	m  map[string][]stmt
}

func (pc *policyCache) get(doc string) []stmt {
	pc.mu.RLock()
	st, ok := pc.m[doc]
	pc.mu.RUnlock()
	if ok {
		return st
	}
	st = parsePolicyText(doc)
	pc.mu.Lock()
	if len(pc.m) >= policyCacheMax {
		pc.m = make(map[string][]stmt, policyCacheMax)
	}
	pc.m[doc] = st
	pc.mu.Unlock()
	return st
}

// parsePolicyText parses a stored policy document. Stored documents were
// validated when set.
func parsePolicyText(doc string) []stmt {
	var p PolicyDocument
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return nil
	}
	out := make([]stmt, 0, len(p.Statement))
	for _, st := range p.Statement {
		x := stmt{effect: st.Effect, principals: st.Principal["RAM"], actions: st.Action, resources: st.Resource}
		if len(x.resources) == 0 {
			x.resources = []string{"*"}
		}
		if len(st.Condition) > 0 {
			x.conditions = map[string]map[string][]string{}
			for op, keys := range st.Condition {
				x.conditions[op] = map[string][]string{}
				for k, raw := range keys {
					var l stringList
					_ = json.Unmarshal(raw, &l)
					x.conditions[op][k] = l
				}
			}
		}
		out = append(out, x)
	}
	return out
}

// principalMatch says whether a key-policy principal names the caller, and
// whether it does so directly (a named user or role) or by delegating to
// the caller's account. An Allow's wildcard principal (`*`, an account of
// `*`) stands only for the key's own account: SetKeyPolicy refuses
// wildcards for other accounts, whose access has to be counted against the
// instance's quota, and a policy stored before that rule gains nothing
// from one. A Deny's wildcard matches everyone.
func principalMatch(p string, c Caller, owner, effect string) (match, direct bool) {
	if effect == "Allow" && c.AccountID != owner && isWildcardPrincipal(p) {
		return false, false
	}
	switch {
	case p == "*":
		return true, false
	case p == "acs:ram::"+c.AccountID+":*", p == "acs:ram::*:*":
		return true, false
	case p == rootPrincipal(c.AccountID):
		return true, c.Kind == KindRoot
	case p == c.Principal:
		return true, true
	}
	return false, false
}

// isWildcardPrincipal says whether a principal could stand for more than
// one account: `*`, or an ARN whose account or name holds * or ?. The
// form acs:ram::<account>:* names one account and is no wildcard here.
func isWildcardPrincipal(p string) bool {
	if p == "*" {
		return true
	}
	rest, ok := strings.CutPrefix(p, "acs:ram::")
	if !ok {
		return strings.ContainsAny(p, "*?")
	}
	acct, name, _ := strings.Cut(rest, ":")
	return strings.ContainsAny(acct, "*?") || (name != "*" && strings.ContainsAny(name, "*?"))
}

// rootStatements are the RAM permissions of an account's root: every
// action in its own account.
var rootStatements = append(append([]stmt(nil), systemPolicies[PolicyFullAccess]...), systemPolicies[PolicySTSAssumeRoleAccess]...)

// ramStatements are the caller's own RAM policy statements; root has them
// all.
func (s *Service) ramStatements(c Caller) []stmt {
	var names []string
	kind := c.Kind
	if c.Principal == rootPrincipal(c.AccountID) {
		kind = KindRoot
	}
	switch kind {
	case KindRoot:
		return rootStatements
	case KindUser:
		if u, ok := s.fsm.User(c.AccountID, c.Name); ok {
			names = u.Policies
		}
	case KindRole:
		if r, ok := s.fsm.Role(c.AccountID, c.Name); ok {
			names = r.Policies
		}
	}
	var out []stmt
	for _, n := range names {
		out = append(out, systemPolicies[n]...)
	}
	return out
}

// denial is the one answer to every refused authorization: it names the
// action and the principal, and says nothing about whether the key exists.
func denial(action string, c Caller) error {
	return fmt.Errorf("%w: %s is not allowed to perform %s on this resource", ErrNoPermission, c.Principal, action)
}

// authorizeAccount checks an action that names no key (CreateKey, List*):
// only the caller's RAM policies decide.
func (s *Service) authorizeAccount(ctx context.Context, c Caller, action string) error {
	if c.Client != nil {
		// A client key has no account-wide permission.
		return denial(action, c)
	}
	ev := newEvaluation(ctx)
	for _, st := range s.ramStatements(c) {
		if st.effect == "Allow" && ev.anyGlob(st.actions, action) {
			return nil
		}
	}
	if ev.stopped() {
		return ev.fail(action)
	}
	return denial(action, c)
}

// authorizeRAM checks an action on a resource that only the caller's RAM
// policies govern (sts:AssumeRole on a role): an Allow and no Deny.
func (s *Service) authorizeRAM(ctx context.Context, c Caller, action, resource string) error {
	if c.Client != nil {
		return denial(action, c)
	}
	ev := newEvaluation(ctx)
	e := s.envFor(c, nil)
	allow := false
	for _, st := range s.ramStatements(c) {
		if ev.anyGlob(st.actions, action) && ev.anyGlob(st.resources, resource) && ev.conditionsHold(st.conditions, e) {
			if st.effect == "Deny" {
				allow = false
				break
			}
			allow = true
		}
	}
	if ev.stopped() {
		return ev.fail(action)
	}
	if !allow {
		return fmt.Errorf("%w: %s is not allowed to perform %s on %s; attach a policy that allows it (e.g. %s)", ErrNoPermission, c.Principal, action, resource, PolicySTSAssumeRoleAccess)
	}
	return nil
}

// authorizeKey checks an action on a key. The request's context bounds the
// evaluation: it is checked before every pattern match.
func (s *Service) authorizeKey(ctx context.Context, c Caller, action string, k *fsm.Key, encCtx map[string]string) error {
	if err := s.checkInstanceNetwork(k.InstanceID, c); err != nil {
		return err
	}
	if c.Client != nil {
		return s.authorizeClientKey(ctx, c, action, k)
	}
	policy := k.Policy
	if policy == "" {
		policy = DefaultPolicy(k.AccountID)
	}
	return s.authorizeResource(ctx, c, action, k.AccountID, func() string { return s.KeyArn(k) }, policy, encCtx)
}

// authorizeResource decides an action on a resource that has a policy (a
// key, a secret): the caller's RAM statements and the resource's policy,
// both against the resource's ARN, with encCtx for conditions. An explicit
// Deny in either wins. In the owner's account an Allow from either is
// enough; another account needs both (the policy must name the caller or
// its account, and the caller's own RAM policies must allow the action).
//
// arn builds the ARN, at most once, when a Resource pattern other than "*"
// needs it: the usual policies (the default key policy, the system
// policies) match every resource, and building the ARN to match it against
// "*" cost an allocation and two walks over it per request.
func (s *Service) authorizeResource(ctx context.Context, c Caller, action, owner string, arn func() string, policy string, encCtx map[string]string) error {
	resource := ""
	arnOnce := func() string {
		if resource == "" {
			resource = arn()
		}
		return resource
	}
	ev := newEvaluation(ctx)
	e := s.envFor(c, encCtx)
	ramAllow := false
	for _, st := range s.ramStatements(c) {
		if ev.anyGlob(st.actions, action) && ev.anyResource(st.resources, arnOnce) && ev.conditionsHold(st.conditions, e) {
			if ev.stopped() {
				return ev.fail(action)
			}
			if st.effect == "Deny" {
				return denial(action, c)
			}
			ramAllow = true
		}
	}
	direct, delegated := false, false
	for _, st := range parsePolicy(policy) {
		if ev.stopped() {
			return ev.fail(action)
		}
		if !ev.anyGlob(st.actions, action) || !ev.anyResource(st.resources, arnOnce) {
			continue
		}
		match, isDirect := false, false
		for _, p := range st.principals {
			m, d := principalMatch(p, c, owner, st.effect)
			match = match || m
			isDirect = isDirect || (m && d)
		}
		if !match || !ev.conditionsHold(st.conditions, e) {
			continue
		}
		if ev.stopped() {
			return ev.fail(action)
		}
		if st.effect == "Deny" {
			return denial(action, c)
		}
		if isDirect {
			direct = true
		} else {
			delegated = true
		}
	}
	if ev.stopped() {
		return ev.fail(action)
	}
	if c.AccountID == owner {
		if ramAllow || direct {
			return nil
		}
		return denial(action, c)
	}
	if (direct || delegated) && ramAllow {
		return nil
	}
	return denial(action, c)
}

// keyFor resolves a KeyId parameter and authorizes action on the key. For
// a caller from another account, a key that does not exist and a key it may
// not use give the same answer.
func (s *Service) keyFor(ctx context.Context, c Caller, action string, param Field, ref string, encCtx map[string]string) (*fsm.Key, error) {
	k, err := s.resolveKey(ctx, c, param, ref)
	if err != nil {
		if errors.Is(err, errForeignKeyUnknown) {
			return nil, denial(action, c)
		}
		return nil, err
	}
	if err := s.authorizeKey(ctx, c, action, k, encCtx); err != nil {
		return nil, err
	}
	return k, nil
}

// errForeignKeyUnknown marks a miss on another account's ARN, which must
// not be told apart from a denial.
var errForeignKeyUnknown = errors.New("no such key in that account")

// trusts says whether a role's trust policy lets the caller assume it.
func trusts(ctx context.Context, doc string, c Caller) (bool, error) {
	ev := newEvaluation(ctx)
	var p trustDocument
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return false, nil
	}
	allowed := false
	for _, st := range p.Statement {
		if !ev.anyGlob(st.Action, "sts:AssumeRole") {
			if ev.stopped() {
				return false, ev.fail("sts:AssumeRole")
			}
			continue
		}
		match := false
		for _, pr := range st.Principal["RAM"] {
			// In a trust policy an account's root ARN stands for the account:
			// any of its identities may assume the role.
			if pr == "*" || pr == c.Principal || pr == rootPrincipal(c.AccountID) || pr == "acs:ram::"+c.AccountID+":*" {
				match = true
			}
		}
		if !match {
			continue
		}
		if st.Effect == "Deny" {
			return false, nil
		}
		if st.Effect == "Allow" {
			allowed = true
		}
	}
	return allowed, nil
}

type trustDocument struct {
	Version   string `json:"Version"`
	Statement []struct {
		Effect    string                `json:"Effect"`
		Action    stringList            `json:"Action"`
		Principal map[string]stringList `json:"Principal"`
	} `json:"Statement"`
}

// ValidateTrustPolicy checks a role's AssumeRolePolicyDocument.
func ValidateTrustPolicy(doc string) error {
	bad := func(format string, a ...any) error {
		return invalid(FieldTrustPolicy, fmt.Sprintf(format, a...))
	}
	if len(doc) > 2048 {
		return bad("at most 2048 bytes")
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	var p trustDocument
	if err := dec.Decode(&p); err != nil {
		return bad("not a policy document: %v", err)
	}
	if p.Version != "1" {
		return bad(`Version must be "1"`)
	}
	if len(p.Statement) == 0 {
		return bad("Statement needs at least one statement")
	}
	for i, st := range p.Statement {
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return bad("Statement[%d].Effect must be Allow or Deny", i)
		}
		if !contains(st.Action, "sts:AssumeRole") {
			return bad(`Statement[%d].Action must include "sts:AssumeRole"`, i)
		}
		for _, a := range st.Action {
			if err := checkPattern(fmt.Sprintf("Statement[%d].Action", i), a); err != nil {
				return bad("%v", err)
			}
		}
		if len(st.Principal["RAM"]) == 0 && len(st.Principal["Service"]) == 0 {
			return bad(`Statement[%d].Principal needs RAM (e.g. ["acs:ram::<account>:root"])`, i)
		}
		for _, pr := range st.Principal["RAM"] {
			if !principalPattern.MatchString(pr) {
				return bad("Statement[%d].Principal.RAM: %q is not acs:ram::<account>:root|*|user/<name>|role/<name>", i, pr)
			}
		}
	}
	return nil
}
