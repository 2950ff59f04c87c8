package fsm

import (
	"errors"
	"fmt"

	"github.com/raftkms/raftkms/internal/mpdecode"
)

// LogLevel is the log level of this build: the highest level of any command
// type or snapshot record it can apply. Every command type and record type
// belongs to the level that introduced it (commandLevels, recordLevels); a
// build of level N applies every entry and reads every snapshot of levels
// 1..N. The number is bumped whenever a command or record type is added
// (TestLevels_* make forgetting it impossible: see fsm/DESIGN.md, "Versions
// and upgrades").
//
// Nodes advertise their level in gossip; kms refuses to propose an entry of
// a level above the lowest level among the Raft servers, so a node never
// receives an entry it would panic on.
const LogLevel = 2

// BaseLevel is the level of a node that advertises none: every build from
// before levels existed. Level 1 is the command and record set of those
// builds (as of the first build with levels).
const BaseLevel = 1

// commandLevels maps every command type to the level that introduced it.
// Levels are frozen once on main (fsm/testdata/levels.txt): a new command
// gets LogLevel+1 and LogLevel is bumped with it.
var commandLevels = map[CommandType]int{
	CmdNoop: 1, CmdInit: 1, CmdCreateKey: 1, CmdUpdateKeyDescription: 1, CmdSetKeyState: 1,
	CmdCreateKeyVersion: 1, CmdCreateAlias: 1, CmdUpdateAlias: 1, CmdDeleteAlias: 1,
	CmdTagResource: 1, CmdUntagResource: 1, CmdCreateInstance: 1, CmdUpdateRotationPolicy: 1,
	CmdScheduleKeyDeletion: 1, CmdCancelKeyDeletion: 1, CmdSetDeletionProtection: 1, CmdDeleteKey: 1,
	CmdCreateImportToken: 1, CmdDeleteImportToken: 1, CmdImportKeyMaterial: 1, CmdDeleteKeyMaterial: 1,
	CmdSetKeyPolicy: 1, CmdCreateAccount: 1, CmdCreateUser: 1, CmdDeleteUser: 1, CmdCreateRole: 1,
	CmdDeleteRole: 1, CmdCreateAccessKey: 1, CmdUpdateAccessKey: 1, CmdDeleteAccessKey: 1,
	CmdAttachPolicy: 1, CmdSetRateLimit: 1, CmdRegisterHSMDomain: 1, CmdSignedWrite: 1,
	CmdSetInstanceLimit:  1,
	CmdCreateNetworkRule: 1, CmdUpdateNetworkRule: 1, CmdDeleteNetworkRule: 1,
	CmdCreatePermissionPolicy: 1, CmdUpdatePermissionPolicy: 1, CmdDeletePermissionPolicy: 1,
	CmdCreateAAP: 1, CmdUpdateAAP: 1, CmdDeleteAAP: 1, CmdCreateClientKey: 1, CmdDeleteClientKey: 1,
	CmdSetInstanceCA: 1,
	CmdCreateSecret:  1, CmdPutSecretValue: 1, CmdUpdateSecret: 1, CmdUpdateSecretVersionStage: 1,
	CmdSecretRotationPolicy: 1, CmdSetSecretPolicy: 1, CmdDeleteSecret: 1, CmdRestoreSecret: 1,
	CmdPurgeSecret: 1, CmdRotateRAMSecret: 1, CmdTagSecret: 1,
	CmdCreateCertificate: 1, CmdUploadCertificate: 1, CmdUpdateCertificateStatus: 1,
	CmdDeleteCertificate: 1, CmdTagCertificate: 1,
	CmdTagResources: 1, CmdConnectInstance: 1, CmdBindInstanceVpcs: 1,

	// Level 2: the console's sessions (sessions.go) and versions and
	// upgrades (this file).
	CmdCreateConsoleSession: 2, CmdTouchConsoleSession: 2, CmdDeleteConsoleSession: 2,
	CmdFinalizeLevel: 2,
}

// recordLevels maps every snapshot record type to the level that
// introduced it. A record of level L may only hold state that commands of
// level >= L create, and is written only when there is such state (see
// snapshot.go), so a snapshot taken while a server of a lower level is in
// the configuration is one that server reads.
var recordLevels = map[byte]int{
	recMeta: 1, recAccount: 1, recAccessKey: 1, recInstance: 1, recKey: 1, recKeyVersion: 1,
	recAlias: 1, recImportToken: 1, recUser: 1, recRole: 1, recHSMDomain: 1,
	recReplayClock: 1, recSignedNonce: 1,
	recNetworkRule: 1, recPermissionPolicy: 1, recAAP: 1, recClientKey: 1,
	recInstanceCA: 1, recSecret: 1, recCertificate: 1,

	recConsoleSession: 2,
}

// CommandLevel is the level that introduced command type t (the
// ignore-unknown flag aside); false for a type this build does not know.
func CommandLevel(t CommandType) (int, bool) {
	l, ok := commandLevels[t&^IgnoreUnknownFlag]
	return l, ok
}

// ErrUnknownCommand is an entry whose type this build does not know; kms
// never proposes one.
var ErrUnknownCommand = errors.New("fsm: unknown command type")

// EntryLevel is the level a node needs to apply the encoded entry: its
// type's level and, for a signed write, its inner command's.
func EntryLevel(entry []byte) (int, error) {
	if len(entry) == 0 {
		return 0, fmt.Errorf("%w: empty entry", ErrUnknownCommand)
	}
	t := CommandType(entry[0])
	l, ok := CommandLevel(t)
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrUnknownCommand, uint8(t))
	}
	if t&^IgnoreUnknownFlag == CmdSignedWrite {
		var w SignedWriteCmd
		if err := mpdecode.Unmarshal(entry[1:], &w); err != nil {
			return 0, fmt.Errorf("%w: signed write: %v", ErrUnknownCommand, err)
		}
		inner, err := EntryLevel(w.Inner)
		if err != nil {
			return 0, err
		}
		l = max(l, inner)
	}
	return l, nil
}

// CmdFinalizeLevel records that every server of the cluster runs a build of
// at least the given level (kmsctl operator upgrade finalize). From then on
// the leader's reconciler adds no server that advertises a lower level: the
// log may hold entries such a build would stop at.
const CmdFinalizeLevel CommandType = 75

// FinalizeLevelCmd is CmdFinalizeLevel's body. Apply keeps the highest level
// recorded: finalizing a lower or equal level changes nothing.
type FinalizeLevelCmd struct {
	Now   int64 `msgpack:"now"`
	Level int   `msgpack:"level"`
}

func (c *catalogue) applyFinalizeLevel(cmd *FinalizeLevelCmd) any {
	if !c.initialized {
		return ErrNotInitialized
	}
	if cmd.Level > c.finalLevel {
		c.finalLevel = cmd.Level
	}
	return nil
}

// FinalizedLevel is the highest level recorded by CmdFinalizeLevel (0:
// never finalized).
func (f *FSM) FinalizedLevel() int {
	var l int
	f.read(func(c *catalogue) { l = c.finalLevel })
	return l
}
