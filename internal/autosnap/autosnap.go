// Package autosnap writes the leader's automatic disaster-recovery
// snapshots (kmsd --snapshot-interval): at each tick, when this node leads
// and the catalogue changed since the last file, it writes the same
// authenticated format-2 file `kmsctl operator snapshot save` produces into
// a directory, keeps the newest N of its own files, and runs an optional
// hook with the new file's path.
//
// It owns only files named raftkms-<UTC time>-idx<index>.snap (and its own
// temporary files) in that directory: nothing else there is read, renamed
// or removed. A snapshot is no more secret than the Raft log (key material
// in it is wrapped under the root key), but it is written 0600 in a 0700
// directory all the same.
package autosnap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// Source is the state being saved: the FSM (fsm.FSM satisfies it).
type Source interface {
	// Hash digests the catalogue and tells the applied index it stands for.
	Hash() ([32]byte, uint64)
	// WriteSnapshotTo writes an authenticated snapshot and returns its index.
	WriteSnapshotTo(w io.Writer) (uint64, error)
}

// DefaultCommandTimeout bounds the hook when Config.CommandTimeout is 0.
const DefaultCommandTimeout = 5 * time.Minute

// Config configures a Snapshotter.
type Config struct {
	Dir    string
	Retain int // files kept, at least 1
	// Command, when set, is run after each snapshot written: its
	// whitespace-separated words are the program and its first arguments,
	// and the file's path is appended as the last argument (no shell).
	Command        string
	CommandTimeout time.Duration
	Source         Source
	IsLeader       func() bool
	// Now is the clock that names files and stamps the metrics (default
	// time.Now).
	Now        func() time.Time
	Logger     hclog.Logger
	Registerer prometheus.Registerer
}

// Snapshotter writes the automatic snapshots. Its methods are not safe for
// concurrent use: one loop (Run) drives it.
type Snapshotter struct {
	cfg     Config
	log     hclog.Logger
	m       *metrics
	argv    []string
	last    [32]byte
	hasLast bool
	lastIdx uint64
}

type metrics struct {
	lastSuccess    prometheus.Gauge
	lastSize       prometheus.Gauge
	lastIndex      prometheus.Gauge
	written        prometheus.Counter
	skipped        prometheus.Counter
	failures       prometheus.Counter
	commandFailure prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kms_snapshot_last_success_timestamp_seconds",
			Help: "Unix time of the last automatic snapshot written by this node."}),
		lastSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kms_snapshot_last_size_bytes",
			Help: "Size of the last automatic snapshot written by this node."}),
		lastIndex: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kms_snapshot_last_index",
			Help: "Applied index captured by the last automatic snapshot written by this node."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "kms_snapshots_written_total",
			Help: "Automatic snapshots written."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "kms_snapshots_skipped_total",
			Help: "Automatic snapshot ticks on the leader skipped because nothing changed since the last file."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "kms_snapshot_failures_total",
			Help: "Automatic snapshots that could not be written."}),
		commandFailure: prometheus.NewCounter(prometheus.CounterOpts{Name: "kms_snapshot_command_failures_total",
			Help: "Runs of --snapshot-command that failed or timed out."}),
	}
	if reg != nil {
		reg.MustRegister(m.lastSuccess, m.lastSize, m.lastIndex, m.written, m.skipped, m.failures, m.commandFailure)
	}
	return m
}

// New checks cfg, creates the directory (0700) and registers the metrics.
func New(cfg Config) (*Snapshotter, error) {
	if cfg.Dir == "" {
		return nil, errors.New("autosnap: no directory")
	}
	if cfg.Retain < 1 {
		return nil, errors.New("autosnap: retain must be at least 1")
	}
	if cfg.Source == nil || cfg.IsLeader == nil {
		return nil, errors.New("autosnap: no source or leadership check")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot dir: %w", err)
	}
	if fi, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("snapshot dir: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("snapshot dir %s is not a directory", cfg.Dir)
	} else if fi.Mode().Perm()&0o077 != 0 {
		cfg.Logger.Warn("the snapshot dir is open to group or others (snapshots are written 0600 all the same); chmod 700 it", "dir", cfg.Dir, "mode", fi.Mode().Perm().String())
	}
	// Temporary files of a write a crash interrupted are ours to remove.
	if stale, err := filepath.Glob(filepath.Join(cfg.Dir, tmpPattern)); err == nil {
		for _, p := range stale {
			if err := os.Remove(p); err != nil {
				cfg.Logger.Warn("cannot remove an interrupted snapshot's temporary file", "path", p, "error", err)
			}
		}
	}
	s := &Snapshotter{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer), argv: strings.Fields(cfg.Command)}
	// A restarted node does not rewrite the state its newest file holds.
	if files, err := s.Files(); err == nil && len(files) > 0 {
		s.lastIdx = files[len(files)-1].Index
	}
	return s, nil
}

// File is one automatic snapshot in the directory.
type File struct {
	Name  string
	Time  time.Time
	Index uint64
}

var fileRE = regexp.MustCompile(`^raftkms-(\d{8}T\d{6}Z)-idx(\d+)\.snap$`)

const timeLayout = "20060102T150405Z"

// tmpPattern names the temporary file of a write in progress.
const tmpPattern = ".raftkms-snapshot-*.tmp"

// FileName is the name of a snapshot taken at t of the state at index.
func FileName(t time.Time, index uint64) string {
	return fmt.Sprintf("raftkms-%s-idx%d.snap", t.UTC().Format(timeLayout), index)
}

// Files lists this package's snapshots in the directory, oldest first.
func (s *Snapshotter) Files() ([]File, error) {
	return List(s.cfg.Dir)
}

// List lists the automatic snapshots in dir, oldest first (by time, then
// index). Files not named like one are left out.
func List(dir string) ([]File, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range ents {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		t, err1 := time.Parse(timeLayout, m[1])
		idx, err2 := strconv.ParseUint(m[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, File{Name: e.Name(), Time: t, Index: idx})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Index < out[j].Index
	})
	return out, nil
}

// Run takes a snapshot at each tick until ctx ends.
func (s *Snapshotter) Run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			s.Once(ctx)
		}
	}
}

// Result is what one tick did.
type Result struct {
	Path    string // the file written; empty when none
	Skipped bool   // leader, but nothing changed since the last file
	Err     error  // the snapshot failed (a hook failure is not one)
	HookErr error
}

// Once does one tick's work: nothing on a follower; on the leader a new
// file unless the catalogue is what the last file holds.
func (s *Snapshotter) Once(ctx context.Context) Result {
	if !s.cfg.IsLeader() {
		return Result{}
	}
	sum, hashIdx := s.cfg.Source.Hash()
	if hashIdx == s.lastIdx || (s.hasLast && sum == s.last) {
		s.m.skipped.Inc()
		return Result{Skipped: true}
	}
	path, size, idx, err := s.write()
	if err != nil {
		s.m.failures.Inc()
		s.log.Error("automatic snapshot failed", "dir", s.cfg.Dir, "error", err)
		return Result{Err: err}
	}
	// The file may capture a later index than the hash did: remember a
	// hash only when it describes the file's state — the one taken before
	// the write, or one taken after it. Entries that change nothing (the
	// leader's commit nudges, store/DESIGN.md) keep moving the applied
	// index; with the hash remembered, the next tick still sees nothing
	// changed.
	s.lastIdx, s.hasLast = idx, false
	if idx == hashIdx {
		s.last, s.hasLast = sum, true
	} else if h, i := s.cfg.Source.Hash(); i == idx {
		s.last, s.hasLast = h, true
	}
	now := s.cfg.Now()
	s.m.written.Inc()
	s.m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	s.m.lastSize.Set(float64(size))
	s.m.lastIndex.Set(float64(idx))
	s.log.Info("automatic snapshot written", "path", path, "index", idx, "bytes", size)
	s.prune()
	res := Result{Path: path}
	if len(s.argv) > 0 {
		if err := s.runCommand(ctx, path); err != nil {
			s.m.commandFailure.Inc()
			s.log.Error("--snapshot-command failed (the snapshot itself is kept)", "path", path, "error", err)
			res.HookErr = err
		}
	}
	return res
}

// write writes the snapshot to a temporary file in the directory, syncs it
// and renames it to its final name, so a crash leaves either a whole file
// or a temporary one, never a truncated snapshot under a snapshot's name.
func (s *Snapshotter) write() (path string, size int64, idx uint64, err error) {
	tmp, err := os.CreateTemp(s.cfg.Dir, tmpPattern)
	if err != nil {
		return "", 0, 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return "", 0, 0, err
	}
	if idx, err = s.cfg.Source.WriteSnapshotTo(tmp); err != nil {
		return "", 0, 0, err
	}
	if err = tmp.Sync(); err != nil {
		return "", 0, 0, err
	}
	if size, err = tmp.Seek(0, io.SeekCurrent); err != nil {
		return "", 0, 0, err
	}
	if err = tmp.Close(); err != nil {
		return "", 0, 0, err
	}
	path = filepath.Join(s.cfg.Dir, FileName(s.cfg.Now(), idx))
	if err = os.Rename(tmp.Name(), path); err != nil {
		return "", 0, 0, err
	}
	if d, derr := os.Open(s.cfg.Dir); derr == nil {
		// The rename is durable once the directory is.
		d.Sync()
		d.Close()
	}
	return path, size, idx, nil
}

// prune removes this package's oldest files beyond Retain.
func (s *Snapshotter) prune() {
	files, err := s.Files()
	if err != nil {
		s.log.Warn("cannot list the snapshot dir to prune it", "error", err)
		return
	}
	for len(files) > s.cfg.Retain {
		p := filepath.Join(s.cfg.Dir, files[0].Name)
		if err := os.Remove(p); err != nil {
			s.log.Warn("cannot remove an old automatic snapshot", "path", p, "error", err)
		}
		files = files[1:]
	}
}

// maxCommandOutput bounds how much of the hook's output is logged.
const maxCommandOutput = 4096

// runCommand runs the hook with path as its last argument, without a
// shell, bounded by CommandTimeout.
func (s *Snapshotter) runCommand(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
	defer cancel()
	args := append(append([]string(nil), s.argv[1:]...), path)
	cmd := exec.CommandContext(ctx, s.argv[0], args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A hook that leaves a child holding its output open must not hold
	// the loop after it is killed.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s: %w", s.cfg.CommandTimeout, err)
	}
	if err != nil {
		o := out.Bytes()
		if len(o) > maxCommandOutput {
			o = o[:maxCommandOutput]
		}
		return fmt.Errorf("%s: %w (output: %q)", s.argv[0], err, bytes.TrimSpace(o))
	}
	return nil
}
