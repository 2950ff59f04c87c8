package fsm

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// CommandType is the first byte of every Raft log entry this FSM applies.
type CommandType uint8

// IgnoreUnknownFlag marks a command type that older nodes may skip. A new
// command that only adds optional information sets it, so a rolling upgrade
// does not stop replicas that do not know it yet. Without the flag an
// unknown type is corruption and Apply panics. Since log levels
// (version.go) a new command needs no flag: it gets the next level, and kms
// proposes it only once every server applies that level.
const IgnoreUnknownFlag CommandType = 0x80

// Command types. Values are part of the on-disk log format: never reuse one.
const (
	CmdNoop                  CommandType = 1
	CmdInit                  CommandType = 2
	CmdCreateKey             CommandType = 3
	CmdUpdateKeyDescription  CommandType = 4
	CmdSetKeyState           CommandType = 5
	CmdCreateKeyVersion      CommandType = 6
	CmdCreateAlias           CommandType = 7
	CmdUpdateAlias           CommandType = 8
	CmdDeleteAlias           CommandType = 9
	CmdTagResource           CommandType = 10
	CmdUntagResource         CommandType = 11
	CmdCreateInstance        CommandType = 12
	CmdUpdateRotationPolicy  CommandType = 13
	CmdScheduleKeyDeletion   CommandType = 14
	CmdCancelKeyDeletion     CommandType = 15
	CmdSetDeletionProtection CommandType = 16
	CmdDeleteKey             CommandType = 17
	CmdCreateImportToken     CommandType = 18
	CmdDeleteImportToken     CommandType = 19
	CmdImportKeyMaterial     CommandType = 20
	CmdDeleteKeyMaterial     CommandType = 21
	CmdSetKeyPolicy          CommandType = 22
	CmdCreateAccount         CommandType = 23
	CmdCreateUser            CommandType = 24
	CmdDeleteUser            CommandType = 25
	CmdCreateRole            CommandType = 26
	CmdDeleteRole            CommandType = 27
	CmdCreateAccessKey       CommandType = 28
	CmdUpdateAccessKey       CommandType = 29
	CmdDeleteAccessKey       CommandType = 30
	CmdAttachPolicy          CommandType = 31
	CmdSetRateLimit          CommandType = 32
	CmdRegisterHSMDomain     CommandType = 33
	CmdSignedWrite           CommandType = 34
	CmdSetInstanceLimit      CommandType = 35
	// Application access (aap.go): 36–49 are reserved for it.
	CmdCreateNetworkRule      CommandType = 36
	CmdUpdateNetworkRule      CommandType = 37
	CmdDeleteNetworkRule      CommandType = 38
	CmdCreatePermissionPolicy CommandType = 39
	CmdUpdatePermissionPolicy CommandType = 40
	CmdDeletePermissionPolicy CommandType = 41
	CmdCreateAAP              CommandType = 42
	CmdUpdateAAP              CommandType = 43
	CmdDeleteAAP              CommandType = 44
	CmdCreateClientKey        CommandType = 45
	CmdDeleteClientKey        CommandType = 46
)

func (t CommandType) String() string {
	switch t &^ IgnoreUnknownFlag {
	case CmdNoop:
		return "Noop"
	case CmdInit:
		return "Init"
	case CmdCreateKey:
		return "CreateKey"
	case CmdUpdateKeyDescription:
		return "UpdateKeyDescription"
	case CmdSetKeyState:
		return "SetKeyState"
	case CmdCreateKeyVersion:
		return "CreateKeyVersion"
	case CmdCreateAlias:
		return "CreateAlias"
	case CmdUpdateAlias:
		return "UpdateAlias"
	case CmdDeleteAlias:
		return "DeleteAlias"
	case CmdTagResource:
		return "TagResource"
	case CmdUntagResource:
		return "UntagResource"
	case CmdCreateInstance:
		return "CreateInstance"
	case CmdUpdateRotationPolicy:
		return "UpdateRotationPolicy"
	case CmdScheduleKeyDeletion:
		return "ScheduleKeyDeletion"
	case CmdCancelKeyDeletion:
		return "CancelKeyDeletion"
	case CmdSetDeletionProtection:
		return "SetDeletionProtection"
	case CmdDeleteKey:
		return "DeleteKey"
	case CmdCreateImportToken:
		return "CreateImportToken"
	case CmdDeleteImportToken:
		return "DeleteImportToken"
	case CmdImportKeyMaterial:
		return "ImportKeyMaterial"
	case CmdDeleteKeyMaterial:
		return "DeleteKeyMaterial"
	case CmdSetKeyPolicy:
		return "SetKeyPolicy"
	case CmdCreateAccount:
		return "CreateAccount"
	case CmdCreateUser:
		return "CreateUser"
	case CmdDeleteUser:
		return "DeleteUser"
	case CmdCreateRole:
		return "CreateRole"
	case CmdDeleteRole:
		return "DeleteRole"
	case CmdCreateAccessKey:
		return "CreateAccessKey"
	case CmdUpdateAccessKey:
		return "UpdateAccessKey"
	case CmdDeleteAccessKey:
		return "DeleteAccessKey"
	case CmdAttachPolicy:
		return "AttachPolicy"
	case CmdSetRateLimit:
		return "SetRateLimit"
	case CmdRegisterHSMDomain:
		return "RegisterHSMDomain"
	case CmdSignedWrite:
		return "SignedWrite"
	case CmdSetInstanceLimit:
		return "SetInstanceLimit"
	case CmdCreateNetworkRule:
		return "CreateNetworkRule"
	case CmdUpdateNetworkRule:
		return "UpdateNetworkRule"
	case CmdDeleteNetworkRule:
		return "DeleteNetworkRule"
	case CmdCreatePermissionPolicy:
		return "CreatePermissionPolicy"
	case CmdUpdatePermissionPolicy:
		return "UpdatePermissionPolicy"
	case CmdDeletePermissionPolicy:
		return "DeletePermissionPolicy"
	case CmdCreateAAP:
		return "CreateAAP"
	case CmdUpdateAAP:
		return "UpdateAAP"
	case CmdDeleteAAP:
		return "DeleteAAP"
	case CmdCreateClientKey:
		return "CreateClientKey"
	case CmdDeleteClientKey:
		return "DeleteClientKey"
	case CmdSetInstanceCA:
		return "SetInstanceCA"
	case CmdCreateSecret:
		return "CreateSecret"
	case CmdPutSecretValue:
		return "PutSecretValue"
	case CmdUpdateSecret:
		return "UpdateSecret"
	case CmdUpdateSecretVersionStage:
		return "UpdateSecretVersionStage"
	case CmdSecretRotationPolicy:
		return "SecretRotationPolicy"
	case CmdSetSecretPolicy:
		return "SetSecretPolicy"
	case CmdDeleteSecret:
		return "DeleteSecret"
	case CmdRestoreSecret:
		return "RestoreSecret"
	case CmdPurgeSecret:
		return "PurgeSecret"
	case CmdRotateRAMSecret:
		return "RotateRAMSecret"
	case CmdTagSecret:
		return "TagSecret"
	case CmdTagResources:
		return "TagResources"
	case CmdConnectInstance:
		return "ConnectInstance"
	case CmdBindInstanceVpcs:
		return "BindInstanceVpcs"
	case CmdCreateCertificate:
		return "CreateCertificate"
	case CmdUploadCertificate:
		return "UploadCertificate"
	case CmdUpdateCertificateStatus:
		return "UpdateCertificateStatus"
	case CmdDeleteCertificate:
		return "DeleteCertificate"
	case CmdTagCertificate:
		return "TagCertificate"
	case CmdFinalizeLevel:
		return "FinalizeLevel"
	case CmdCreateConsoleSession:
		return "CreateConsoleSession"
	case CmdTouchConsoleSession:
		return "TouchConsoleSession"
	case CmdDeleteConsoleSession:
		return "DeleteConsoleSession"
	}
	return fmt.Sprintf("CommandType(%d)", uint8(t))
}

// Encode builds a log entry: the type byte followed by the msgpack body.
func Encode(t CommandType, body any) ([]byte, error) {
	b, err := msgpack.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return append([]byte{byte(t)}, b...), nil
}

// EncodeSignedWrite wraps an encoded entry (type byte and body) in a
// CmdSignedWrite entry carrying the signature that asked for it.
func EncodeSignedWrite(w SignedWriteCmd, inner []byte) ([]byte, error) {
	w.Inner = inner
	return Encode(CmdSignedWrite, w)
}

// Command bodies. Every time, id and piece of (wrapped) material is chosen by
// the proposer, so that Apply is a pure function of the log.

// NoopCmd changes nothing; it moves the applied index (after a restore, and
// as a write barrier).
type NoopCmd struct{}

// InitCmd initializes a new cluster: its operator account, first access key
// and first KMS instance, and the check value of the root key in use.
type InitCmd struct {
	Now       int64     `msgpack:"now"`
	RootCheck []byte    `msgpack:"rootcheck"`
	Account   Account   `msgpack:"account"`
	AccessKey AccessKey `msgpack:"ak"`
	Instance  Instance  `msgpack:"instance"`
	// InstanceCA is the cluster's instance CA (instanceca.go); absent in
	// entries written before it existed.
	InstanceCA *InstanceCA `msgpack:"ica,omitempty"`
}

// CreateKeyCmd adds a key with its first version (without material for an
// EXTERNAL key) and, optionally, an alias for it.
type CreateKeyCmd struct {
	Now     int64      `msgpack:"now"`
	Key     Key        `msgpack:"key"`
	Version KeyVersion `msgpack:"version"`
	Alias   string     `msgpack:"alias"`
}

// UpdateKeyDescriptionCmd replaces a key's description.
type UpdateKeyDescriptionCmd struct {
	Now         int64  `msgpack:"now"`
	KeyID       string `msgpack:"key"`
	Description string `msgpack:"desc"`
}

// SetKeyStateCmd enables or disables a key.
type SetKeyStateCmd struct {
	Now   int64  `msgpack:"now"`
	KeyID string `msgpack:"key"`
	State string `msgpack:"state"` // Enabled | Disabled
}

// CreateKeyVersionCmd adds a version and makes it primary (rotation). An
// automatic rotation names the primary version it replaces; if another
// rotation got there first, it changes nothing.
type CreateKeyVersionCmd struct {
	Now           int64      `msgpack:"now"`
	Version       KeyVersion `msgpack:"version"`
	Automatic     bool       `msgpack:"auto"`
	ExpectPrimary string     `msgpack:"expect"`
}

// AliasCmd creates, re-points or deletes an alias (KeyID unused on delete).
type AliasCmd struct {
	Now       int64  `msgpack:"now"`
	AccountID string `msgpack:"acct"`
	Name      string `msgpack:"name"`
	KeyID     string `msgpack:"key"`
}

// TagCmd adds or overwrites tags (TagResource) or removes tag keys
// (UntagResource, Tags' values unused).
type TagCmd struct {
	Now   int64             `msgpack:"now"`
	KeyID string            `msgpack:"key"`
	Tags  map[string]string `msgpack:"tags"`
	Keys  []string          `msgpack:"keys"`
}

// CreateInstanceCmd adds a KMS instance.
type CreateInstanceCmd struct {
	Now      int64    `msgpack:"now"`
	Instance Instance `msgpack:"instance"`
}

// RotationPolicyCmd sets a key's automatic rotation (IntervalSec 0: off).
type RotationPolicyCmd struct {
	Now         int64  `msgpack:"now"`
	KeyID       string `msgpack:"key"`
	IntervalSec int64  `msgpack:"interval"`
}

// KeyDeletionCmd schedules (DeleteDate set), cancels, or — from the
// leader's scheduler once DeleteDate has passed — performs a deletion.
type KeyDeletionCmd struct {
	Now        int64  `msgpack:"now"`
	KeyID      string `msgpack:"key"`
	DeleteDate int64  `msgpack:"deldate"`
}

// DeletionProtectionCmd turns deletion protection on or off.
type DeletionProtectionCmd struct {
	Now         int64  `msgpack:"now"`
	KeyID       string `msgpack:"key"`
	Enabled     bool   `msgpack:"on"`
	Description string `msgpack:"desc"`
}

// ImportTokenCmd adds or (TokenID only) removes an import token.
type ImportTokenCmd struct {
	Now     int64       `msgpack:"now"`
	Token   ImportToken `msgpack:"token"`
	TokenID string      `msgpack:"id"`
}

// ImportKeyMaterialCmd puts imported material (wrapped under the root key)
// into an EXTERNAL key's version.
type ImportKeyMaterialCmd struct {
	Now             int64  `msgpack:"now"`
	KeyID           string `msgpack:"key"`
	WrappedMaterial []byte `msgpack:"wm"`
	Fingerprint     []byte `msgpack:"fp"`
	ExpireTime      int64  `msgpack:"exp"`
}

// DeleteKeyMaterialCmd removes an EXTERNAL key's material. Expired is set
// by the leader's scheduler: Apply then acts only if the material's expiry
// has passed at Now.
type DeleteKeyMaterialCmd struct {
	Now     int64  `msgpack:"now"`
	KeyID   string `msgpack:"key"`
	Expired bool   `msgpack:"expired"`
}

// KeyPolicyCmd replaces a key's policy document.
type KeyPolicyCmd struct {
	Now          int64  `msgpack:"now"`
	KeyID        string `msgpack:"key"`
	Policy       string `msgpack:"policy"`
	CrossAccount int    `msgpack:"xacct"`
}

// SignedWriteCmd wraps the command a client's signed request proposed, with
// the signature's identity, so that every replica refuses the same request
// applied twice (replay.go). Inner is a whole entry: type byte and body; it
// is applied only when the nonce is admitted, and never another
// SignedWriteCmd.
type SignedWriteCmd struct {
	Now         int64  `msgpack:"now"` // when the proposer verified the signature, Unix ms
	AccessKeyID string `msgpack:"ak"`  // the access key the request was signed with
	Nonce       string `msgpack:"nonce"`
	Seq         uint32 `msgpack:"seq,omitempty"` // the write's rank within its request
	SignedAt    int64  `msgpack:"signed"`        // the signed request time, Unix ms
	Inner       []byte `msgpack:"inner"`
}
