package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/fsm"
)

// snapshotVerify checks a snapshot file offline (no node involved): its MAC
// under the snapshot key derived from the root key, then every record. It
// links fsm's snapshot reader and crypto's key derivation, nothing of the
// server. A file that does not verify is an error (exit 1) naming why.
func snapshotVerify(path, rootKeyFile string, stdout io.Writer) error {
	if rootKeyFile == "" {
		return usagef("snapshot verify needs --root-key-file (the root key of the cluster that saved the snapshot)")
	}
	root, err := kcrypto.LoadRootKeyFile(rootKeyFile)
	if err != nil {
		return usagef("snapshot verify: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return usagef("snapshot verify: %v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return usagef("snapshot verify: %s is a directory, not a snapshot file", path)
	}
	key := root.Derive(kcrypto.LabelSnapshotMAC)
	defer clear(key)
	info, err := fsm.New(hclog.NewNullLogger(), fsm.WithSnapshotKey(key)).VerifySnapshot(f, fsm.VerifyOptions{})
	if err != nil {
		if errors.Is(err, fsm.ErrBadSnapshot) && !errors.Is(err, fsm.ErrUnauthenticatedSnapshot) {
			if _, serr := f.Seek(0, io.SeekStart); serr == nil {
				hdr, herr := fsm.PeekSnapshotHeader(f)
				if herr == nil && len(hdr.RootCheck) > 0 && !bytes.Equal(hdr.RootCheck, root.CheckValue()) {
					return fmt.Errorf("snapshot %s does not verify: its header names another root key than %s (made under another root key, or altered): %w",
						path, rootKeyFile, err)
				}
			}
		}
		return fmt.Errorf("snapshot %s does not verify: %w", path, err)
	}
	if len(info.RootCheck) > 0 && !bytes.Equal(info.RootCheck, root.CheckValue()) {
		return fmt.Errorf("snapshot %s: its MAC verifies but its catalogue names another root key than %s", path, rootKeyFile)
	}
	fmt.Fprintf(stdout, "snapshot %s: intact (format %d, authenticated under the root key), Raft index %d, initialized %v\n",
		path, info.Format, info.LastIndex, info.Initialized)
	fmt.Fprintf(stdout, "  %d keys, %d key versions, %d aliases, %d secrets, %d accounts, %d access keys, %d users, %d roles, %d instances, %d HSM domains, %d import tokens\n",
		info.Keys, info.Versions, info.Aliases, info.Secrets, info.Accounts, info.AccessKeys, info.Users, info.Roles,
		info.Instances, info.HSMDomains, info.ImportTokens)
	if !info.Initialized {
		fmt.Fprintln(stdout, "  note: it holds a cluster that was never initialized; a restore refuses it")
	}
	return nil
}
