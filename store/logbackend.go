package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"
)

// The Raft log store backends (Config.LogStore, kmsd --raft-log-store).
const (
	// LogStoreWAL is hashicorp/raft-wal: append-only segment files, one
	// fsync per append (the default for a new data dir, as in Consul).
	LogStoreWAL = "wal"
	// LogStoreBolt is hashicorp/raft-boltdb v2: one bbolt file, a
	// copy-on-write B-tree, two fdatasyncs per append.
	LogStoreBolt = "boltdb"
)

// DefaultWALSegmentSize is the size of one raft-wal segment file
// (raft-wal's own default, 64 MiB): each is preallocated when created.
var DefaultWALSegmentSize = wal.DefaultSegmentSize

// The backends' places under <data-dir>/raft.
const (
	boltFile = "raft.db"
	walDir   = "wal"
	walMeta  = "wal-meta.db" // raft-wal's metadata (a bbolt file) in walDir
	lockName = "lock"
)

// logBackend is the opened log and stable store of one node.
type logBackend struct {
	name   string
	logs   raft.LogStore
	stable raft.StableStore
	close  func() error
	lock   *os.File
}

// Close closes the store, then releases the data dir.
func (b *logBackend) Close() error {
	err := b.close()
	if b.lock != nil {
		b.lock.Close()
		b.lock = nil
	}
	return err
}

// openLogBackend locks dir (a second kmsd on the same data dir is refused
// at once) and opens the log store that is there, or the wanted one
// (LogStoreWAL when want is empty) in a dir that has none yet. A dir that
// holds one backend's log is never opened with the other: a node would
// start with an empty log and a vote it already cast forgotten.
func openLogBackend(dir, want string, segmentSize int, logger hclog.Logger) (*logBackend, error) {
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock raft dir: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open %s: the data dir is in use by another kmsd process (%v)", dir, err)
	}
	b, err := openUnlocked(dir, want, segmentSize, logger)
	if err != nil {
		lock.Close()
		return nil, err
	}
	b.lock = lock
	return b, nil
}

func openUnlocked(dir, want string, segmentSize int, logger hclog.Logger) (*logBackend, error) {
	name, err := chooseLogStore(dir, want)
	if err != nil {
		return nil, err
	}
	switch name {
	case LogStoreBolt:
		bolt, err := raftboltdb.New(raftboltdb.Options{
			Path: filepath.Join(dir, boltFile),
			// The data dir's lock is already held; this only guards
			// against a process that does not take it.
			BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
		})
		if err != nil {
			if errors.Is(err, bbolt.ErrTimeout) {
				return nil, fmt.Errorf("open %s: the data dir is in use by another process", dir)
			}
			return nil, fmt.Errorf("open raft log: %w", err)
		}
		return &logBackend{name: name, logs: bolt, stable: bolt, close: bolt.Close}, nil
	default:
		wdir := filepath.Join(dir, walDir)
		if err := os.MkdirAll(wdir, 0o700); err != nil {
			return nil, fmt.Errorf("create raft log dir: %w", err)
		}
		if segmentSize <= 0 {
			segmentSize = DefaultWALSegmentSize
		}
		w, err := wal.Open(wdir, wal.WithSegmentSize(segmentSize), wal.WithLogger(logger.Named("wal")))
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", wdir, err)
		}
		return &logBackend{name: name, logs: w, stable: w, close: w.Close}, nil
	}
}

// chooseLogStore names the backend to open in dir.
func chooseLogStore(dir, want string) (string, error) {
	switch want {
	case "", LogStoreWAL, LogStoreBolt:
	default:
		return "", fmt.Errorf("unknown Raft log store %q: use %q or %q", want, LogStoreWAL, LogStoreBolt)
	}
	hasBolt, err := exists(filepath.Join(dir, boltFile))
	if err != nil {
		return "", err
	}
	hasWAL, err := exists(filepath.Join(dir, walDir, walMeta))
	if err != nil {
		return "", err
	}
	var have string
	switch {
	case hasBolt && hasWAL:
		return "", fmt.Errorf("%s holds two Raft logs, %s (boltdb) and %s/ (wal); kmsd cannot tell which is this node's: keep the one the node last ran with, move the other out of the data dir, and start again",
			dir, boltFile, walDir)
	case hasBolt:
		have = LogStoreBolt
	case hasWAL:
		have = LogStoreWAL
	}
	switch {
	case have == "" && want == "":
		return LogStoreWAL, nil
	case have == "":
		return want, nil
	case want == "" || want == have:
		return have, nil
	}
	return "", fmt.Errorf("this node's Raft log is in %s (%s) and --raft-log-store=%s asks for %s; kmsd does not convert a log: start without --raft-log-store (or with --raft-log-store=%s) to keep it, or, to move this node to %s in a cluster of several nodes: stop it with SIGTERM (it leaves the cluster), move <data-dir>/raft aside and start it again with this flag — it rejoins and receives the state from the leader; a node alone goes through a snapshot save and restore (docs/OPERATIONS.md, \"The Raft log store\")",
		have, logPlace(have), want, want, have, want)
}

func logPlace(name string) string {
	if name == LogStoreBolt {
		return "raft/" + boltFile
	}
	return "raft/" + walDir + "/"
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, err
}
