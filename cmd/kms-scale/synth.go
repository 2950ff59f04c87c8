package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

// synthesize gets a real node holding --keys keys in minutes rather than
// the half hour the API takes on a small machine: it starts a dev node,
// saves its (almost empty) snapshot, applies --keys signed CreateKey
// entries to that state in this process — shaped as kms.CreateKey
// proposes them: UUID ids, fresh material wrapped under the node's root
// key (read from the dev data dir), the account's default policy, one
// signature nonce each, as after a bulk load through the API — writes the
// authenticated snapshot, restores it into the node with `kmsctl operator
// snapshot restore`, and then measures as a loaded run does (finish: save,
// restart to healthy, restore). The keys stay for `--reuse`.
func synthesize(o options, stdout, stderr io.Writer) error {
	fr, err := startFresh(o)
	if err != nil {
		return err
	}
	defer fr.close()
	n, c, cr, rss0 := fr.n, fr.c, fr.cr, fr.rss0
	ctx := context.Background()
	base := filepath.Join(o.dir, "base.snap")
	if err := kmsctl(o, stderr, "operator", "snapshot", "save", base); err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}

	t0 := time.Now()
	root, err := kcrypto.LoadRootKeyFile(filepath.Join(o.dataDir(), "root.key"))
	if err != nil {
		return err
	}
	f := fsm.New(hclog.NewNullLogger(), fsm.WithSnapshotKey(root.Derive(kcrypto.LabelSnapshotMAC)))
	bf, err := os.Open(base)
	if err != nil {
		return err
	}
	if err := f.Restore(bf); err != nil {
		return fmt.Errorf("load %s: %w", base, err)
	}
	ak, ok := f.AccessKey(cr.AccessKeyId)
	if !ok {
		return fmt.Errorf("access key %s not in the node's snapshot", cr.AccessKeyId)
	}
	account := ak.AccountID
	policy := kms.DefaultPolicy(account)
	xacct := kms.CrossAccountPrincipals(policy, account)
	idx := f.AppliedIndex()
	ids := make([]string, 0, o.keys)
	for i := 0; i < o.keys; i++ {
		now := time.Now().UnixMilli()
		key := fsm.Key{
			ID: uuid.NewString(), AccountID: account, InstanceID: fr.instance,
			Spec: "Aliyun_AES_256", Usage: "ENCRYPT/DECRYPT", Origin: "Aliyun_KMS", ProtectionLevel: "SOFTWARE",
			State: fsm.StateEnabled, Description: "kms-scale", Creator: account, CreatorType: "User", CreatedAt: now,
			LastRotation: now, Policy: policy, Tags: map[string]string{}, CrossAccount: xacct,
		}
		v := fsm.KeyVersion{ID: uuid.NewString(), KeyID: key.ID, CreatedAt: now}
		material, _, err := kcrypto.GenerateKeyMaterial(key.Spec)
		if err != nil {
			return err
		}
		v.WrappedMaterial, err = root.Wrap(material, kcrypto.MaterialAAD(key.ID, v.ID))
		clear(material)
		if err != nil {
			return err
		}
		inner, err := fsm.Encode(fsm.CmdCreateKey, fsm.CreateKeyCmd{Now: now, Key: key, Version: v})
		if err != nil {
			return err
		}
		data, err := fsm.EncodeSignedWrite(fsm.SignedWriteCmd{Now: now, AccessKeyID: cr.AccessKeyId, Nonce: uuid.NewString(), SignedAt: now}, inner)
		if err != nil {
			return err
		}
		idx++
		if r := f.Apply(&raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}); r != nil {
			return fmt.Errorf("apply key %d: %v", i, r)
		}
		ids = append(ids, key.ID)
	}
	snap := filepath.Join(o.dir, "synth.snap")
	sf, err := os.Create(snap)
	if err != nil {
		return err
	}
	if _, err := f.WriteSnapshotTo(sf); err != nil {
		sf.Close()
		return err
	}
	if err := sf.Close(); err != nil {
		return err
	}
	f = nil
	st, _ := os.Stat(snap)
	fmt.Fprintf(stdout, "kms-scale --synthesize: %d keys built in process in %s, snapshot %s\n", o.keys, time.Since(t0).Round(10*time.Millisecond), mib(st.Size()))

	t0 = time.Now()
	if err := kmsctl(o, stderr, "operator", "snapshot", "restore", "--force", snap); err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	fmt.Fprintf(stdout, "snapshot restore of the synthesized keys: %s\n", time.Since(t0).Round(10*time.Millisecond))
	if _, err := c.Call(ctx, "DescribeKey", map[string]string{"KeyId": ids[len(ids)/2]}); err != nil {
		return fmt.Errorf("after the restore: %w", err)
	}
	return finish(o, n, c, ids, rss0, stdout, stderr)
}
