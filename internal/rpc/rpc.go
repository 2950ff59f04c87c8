// Package rpc is the one list of the node-to-node methods the cluster port
// serves (package transport carries them; it knows no method). Every
// method a package registers or calls is named here, so the whole internal
// protocol can be read in one place, and a name is never spelled twice.
//
// Errors that cross these methods travel by name, from one table:
// kms/wire_errors.go (kms.EncodeError, kms.DecodeError). It lives in kms
// because it must name the sentinels of fsm, kms and store, and kms is the
// package that sees all three; store receives it as a store.ErrorCodec.
//
// Who serves what:
//
//	method           served by  called by                     carries
//	store.apply      store      store (follower → leader)      an encoded fsm command; the FSM's answer, its error by name
//	store.readindex  store      store (follower → leader)      nothing; the leader's read index
//	kms.restore      kms        kms (follower → leader)        a verified snapshot; the new index or an error by name
//	kms.restorepart  kms        kms (follower → leader)        one part of a larger verified snapshot; after the last, as kms.restore
//	kms.waitindex    kms        kms (to every member)          an index; nothing once applied there
//	kms.hsm          kms        kms (any node → an HSM node)   a raw token operation; its result or an error by name
//	node.ping        node       node (leader → a gossip member) nothing; proves the cluster port's handshake
//
// It imports nothing of the service; it must not hold handlers or business
// rules.
package rpc

// Method is the name of a node-to-node RPC method.
type Method = string

// The methods, by the package that serves them.
const (
	StoreApply     Method = "store.apply"
	StoreReadIndex Method = "store.readindex"
	StoreCommit    Method = "store.commit"
	KMSRestore     Method = "kms.restore"
	KMSRestorePart Method = "kms.restorepart"
	KMSWaitIndex   Method = "kms.waitindex"
	KMSHSM         Method = "kms.hsm"
	NodePing       Method = "node.ping"
)

// Methods lists every method of the cluster port.
var Methods = []Method{StoreApply, StoreReadIndex, StoreCommit, KMSRestore, KMSRestorePart, KMSWaitIndex, KMSHSM, NodePing}
