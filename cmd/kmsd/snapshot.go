package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/raftkms/raftkms/internal/autosnap"
)

// snapshotFlags are the automatic snapshots (--snapshot-*).
type snapshotFlags struct {
	interval       time.Duration
	dir            string
	retain         int
	command        string
	commandTimeout time.Duration
}

// minSnapshotInterval keeps a production node from snapshotting in a
// tight loop; tests lower it with snapshotMinIntervalEnv.
const minSnapshotInterval = time.Minute

// snapshotMinIntervalEnv, for tests only, sets another minimum for
// --snapshot-interval (a Go duration such as 200ms).
const snapshotMinIntervalEnv = "KMSD_TEST_SNAPSHOT_MIN_INTERVAL"

func (s *snapshotFlags) addFlags(fs *flag.FlagSet) {
	fs.DurationVar(&s.interval, "snapshot-interval", 0, "the leader writes an authenticated snapshot into --snapshot-dir this often (at least 1m), skipping when nothing changed; 0: off")
	fs.StringVar(&s.dir, "snapshot-dir", "", "directory for the automatic snapshots (created 0700); files are named raftkms-<UTC time>-idx<index>.snap")
	fs.IntVar(&s.retain, "snapshot-retain", 24, "automatic snapshots kept in --snapshot-dir (the newest; other files there are never touched)")
	fs.StringVar(&s.command, "snapshot-command", "", "program run after each automatic snapshot with the file's path as its last argument (words split on spaces, no shell), e.g. to copy it elsewhere; a failure is logged and counted")
	fs.DurationVar(&s.commandTimeout, "snapshot-command-timeout", autosnap.DefaultCommandTimeout, "--snapshot-command is killed after this long")
}

func (s *snapshotFlags) check() error {
	if s.interval == 0 {
		if s.dir != "" || s.command != "" {
			return errors.New("--snapshot-dir and --snapshot-command need --snapshot-interval")
		}
		return nil
	}
	min := minSnapshotInterval
	if v := os.Getenv(snapshotMinIntervalEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s: %q is not a positive duration", snapshotMinIntervalEnv, v)
		}
		min = d
	}
	if s.interval < min {
		return fmt.Errorf("--snapshot-interval must be at least %s (or 0: off)", min)
	}
	if s.dir == "" {
		return errors.New("--snapshot-interval needs --snapshot-dir")
	}
	if s.retain < 1 {
		return errors.New("--snapshot-retain must be 1 or more")
	}
	if s.commandTimeout <= 0 {
		return errors.New("--snapshot-command-timeout must be a positive duration")
	}
	return nil
}
