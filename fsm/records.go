package fsm

// Records are immutable once they are in the catalogue: Apply replaces a
// record with a modified copy rather than changing it in place. Readers may
// therefore keep a pointer they got from the FSM without holding a lock, and
// a snapshot is a copy of the maps, not of the records.
//
// Times are Unix milliseconds stamped by the proposer; the FSM never reads a
// clock. CreateIndex/ModifyIndex are Raft indexes.

// Key states, as the service names them.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
	StatePendingImport   = "PendingImport"
)

// Account is a tenant: every key, alias and access key belongs to one.
type Account struct {
	ID       string `msgpack:"id"`
	Name     string `msgpack:"name"`
	Operator bool   `msgpack:"op"` // the account made by operator init
	// RateLimits are the operator's per-node request rate limits for the
	// account, in requests per second by action class (none: unlimited).
	RateLimits  map[string]float64 `msgpack:"limits"`
	CreatedAt   int64              `msgpack:"ct"`
	ModifyIndex uint64             `msgpack:"mi"`

	// MaxInstances is how many KMS instances the account may have, set by
	// the operator; 0 means DefaultMaxInstances.
	MaxInstances int `msgpack:"maxinst,omitempty"`
}

// AccessKey authenticates requests. The secret is stored only wrapped under
// the root key (crypto.SecretAAD binds it to the id).
type AccessKey struct {
	ID            string `msgpack:"id"`
	AccountID     string `msgpack:"acct"`
	Principal     string `msgpack:"pr"` // e.g. acs:ram::<uid>:root
	WrappedSecret []byte `msgpack:"ws"`
	Status        string `msgpack:"st"` // Active | Inactive
	CreatedAt     int64  `msgpack:"ct"`
	ModifyIndex   uint64 `msgpack:"mi"`
}

// Instance is a KMS instance: a key store of one protection type.
type Instance struct {
	ID        string `msgpack:"id"`
	AccountID string `msgpack:"acct"`
	Name      string `msgpack:"name"`
	Type      string `msgpack:"type"` // software | hardware
	KeyQuota  int    `msgpack:"quota"`
	// HSMDomain is the HSM domain of a hardware instance: its keys are
	// generated in, and served by, the tokens of that domain.
	HSMDomain string `msgpack:"hsm,omitempty"`
	KeysUsed  int    `msgpack:"used"`
	// AccessQuota bounds the cross-account principals the instance's key
	// policies may name; AccessUsed counts them.
	AccessQuota int    `msgpack:"aquota"`
	AccessUsed  int    `msgpack:"aused"`
	CreatedAt   int64  `msgpack:"ct"`
	ModifyIndex uint64 `msgpack:"mi"`
	// Networks and zones (ConnectKmsInstance, UpdateKmsInstanceBindVpc;
	// instances.go). omitempty: an instance without them encodes as before.
	VpcID      string        `msgpack:"vpc,omitempty"`
	VSwitchIDs []string      `msgpack:"vsw,omitempty"`
	ZoneIDs    []string      `msgpack:"zones,omitempty"`
	BindVpcs   []InstanceVpc `msgpack:"bind,omitempty"`
}

// Key is a customer master key.
type Key struct {
	ID              string   `msgpack:"id"`
	AccountID       string   `msgpack:"acct"`
	InstanceID      string   `msgpack:"inst"`
	Spec            string   `msgpack:"spec"`
	Usage           string   `msgpack:"usage"`
	Origin          string   `msgpack:"origin"`
	ProtectionLevel string   `msgpack:"prot"`
	State           string   `msgpack:"state"`
	Description     string   `msgpack:"desc"`
	Creator         string   `msgpack:"creator"`
	CreatedAt       int64    `msgpack:"ct"`
	PrimaryVersion  string   `msgpack:"primary"`
	Versions        []string `msgpack:"versions"` // oldest first
	LastRotation    int64    `msgpack:"lastrot"`
	// RotationInterval is in seconds; 0 means automatic rotation is off.
	RotationInterval int64 `msgpack:"rotint"`
	// DeleteDate is when a key in PendingDeletion is deleted.
	DeleteDate                    int64  `msgpack:"deldate"`
	DeletionProtection            bool   `msgpack:"delprot"`
	DeletionProtectionDescription string `msgpack:"delprotdesc"`
	// MaterialExpireTime is when imported material expires (0: never).
	MaterialExpireTime int64 `msgpack:"matexp"`
	// MaterialFingerprint identifies the material imported into an
	// EXTERNAL key (a MAC under a root-derived key), so only the same
	// material can be imported again.
	MaterialFingerprint []byte `msgpack:"matfp"`
	Policy              string `msgpack:"policy"`
	CreatorType         string `msgpack:"creatortype"`
	// CrossAccount is how many principals of other accounts the key policy
	// names (each uses one unit of the instance's access quota).
	CrossAccount int               `msgpack:"xacct"`
	Tags         map[string]string `msgpack:"tags"`
	CreateIndex  uint64            `msgpack:"ci"`
	ModifyIndex  uint64            `msgpack:"mi"`
}

// clone returns a copy that Apply may change. Slices and maps are copied so
// that the original, which readers may hold, never changes.
func (k *Key) clone() *Key {
	c := *k
	c.Versions = append([]string(nil), k.Versions...)
	if k.Tags != nil {
		c.Tags = make(map[string]string, len(k.Tags))
		for t, v := range k.Tags {
			c.Tags[t] = v
		}
	}
	return &c
}

// KeyVersion is one generation of a key's material, wrapped under the root
// key with crypto.MaterialAAD(KeyID, ID) — or, when Domain is set, wrapped
// inside an HSM token under that domain's key (RFC 5649,
// CKM_AES_KEY_WRAP_PAD): such material was generated in a token, exists
// in the clear only inside tokens of the domain, and nothing else about it
// is stored.
type KeyVersion struct {
	ID              string `msgpack:"id"`
	KeyID           string `msgpack:"key"`
	CreatedAt       int64  `msgpack:"ct"`
	WrappedMaterial []byte `msgpack:"wm"`  // empty: an EXTERNAL key awaiting import
	PublicKey       []byte `msgpack:"pub"` // DER SubjectPublicKeyInfo (asymmetric keys)
	CreateIndex     uint64 `msgpack:"ci"`
	// Domain names the HSM domain whose key wraps WrappedMaterial; empty
	// for material wrapped under the root key.
	Domain string `msgpack:"dom,omitempty"`
}

// ImportToken lets a caller import material into one EXTERNAL key until it
// expires. Its RSA private key is stored only wrapped under the root key.
type ImportToken struct {
	ID                string `msgpack:"id"`
	KeyID             string `msgpack:"key"`
	AccountID         string `msgpack:"acct"`
	WrappingAlgorithm string `msgpack:"alg"`
	PublicKey         []byte `msgpack:"pub"`
	WrappedPrivateKey []byte `msgpack:"wpk"`
	CreatedAt         int64  `msgpack:"ct"`
	ExpireAt          int64  `msgpack:"exp"`
}

// Alias is a friendly name for a key, unique within an account.
type Alias struct {
	Name        string `msgpack:"name"` // alias/...
	AccountID   string `msgpack:"acct"`
	KeyID       string `msgpack:"key"`
	CreatedAt   int64  `msgpack:"ct"`
	UpdatedAt   int64  `msgpack:"ut"`
	ModifyIndex uint64 `msgpack:"mi"`
}

// MaxTagsPerKey is the service's limit on tags on one key.
const MaxTagsPerKey = 20

// MaxVersionsPerKey bounds manual version creation (the service allows 50).
const MaxVersionsPerKey = 50
