package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/raftkms/raftkms/client"
)

func asAPIError(err error, target **client.APIError) bool { return errors.As(err, target) }

func operatorCommand(g *globals, stdout, stderr io.Writer) *cobra.Command {
	op := &cobra.Command{
		Use:   "operator",
		Short: "Cluster operations: init, members, snapshots, KMS instances, TLS certificates, audit log checks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("operator needs a subcommand: init, members, snapshot, instance, tls, audit, keygen, upgrade")
		},
	}
	var initOut string
	var initWait time.Duration
	initCmd := &cobra.Command{
		Use:   "init [--out FILE] [--wait DURATION]",
		Short: "Initialize a new cluster: writes the operator account's credentials, once",
		Long: `Initialize a new cluster. Creates the operator account, its first access key and
one software KMS instance, and writes them as a credentials file — the only
time the secret is shown:

  kmsctl --endpoint http://127.0.0.1:9700 operator init --out creds.json

--out writes FILE with mode 0600 and never overwrites an existing file (the
check comes before the cluster is initialized, so nothing is lost). Without
--out the credentials are printed on stdout.

A node that was just started may not have a Raft leader yet, or not listen
yet: init waits for one (up to --wait, default 30s; 0 does not wait),
reporting on stderr. A second init fails and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return operatorInit(g, initOut, initWait, stdout, stderr) },
	}
	initCmd.Flags().StringVar(&initOut, "out", "", "write the credentials to this new file (mode 0600) instead of stdout")
	initCmd.Flags().DurationVar(&initWait, "wait", 30*time.Second, "how long to wait for the node to listen and have a Raft leader")
	op.AddCommand(initCmd)
	op.AddCommand(&cobra.Command{
		Use:   "members",
		Short: "List the cluster's nodes: Raft role, zone, addresses, voter, alive, version and log level, HSM domains and their health",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return operatorMembers(g, stdout) },
	})
	snap := &cobra.Command{
		Use:   "snapshot",
		Short: "Save, restore or verify a snapshot of the whole cluster state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("snapshot needs a subcommand: save FILE, restore FILE or verify FILE")
		},
	}
	snap.PersistentFlags().BoolVar(&g.progress, "progress", false,
		"print transfer progress (bytes, rate, time left) every 2s even when stderr is not a terminal; on a terminal it is always shown, in place")
	snap.AddCommand(&cobra.Command{
		Use:   "save FILE",
		Short: "Write a consistent snapshot of the whole cluster to FILE (through any node)",
		Args:  exactArgs(1, "snapshot save needs the FILE to write"),
		RunE:  func(cmd *cobra.Command, args []string) error { return snapshotSave(g, args[0], stdout, stderr) },
	})
	var ro restoreFlags
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster's whole state with the snapshot in FILE",
		Long: `Replace the whole state of a running cluster with a snapshot. The cluster must
use the same root key as the one that saved it. A new, uninitialized cluster
accepts the restore without credentials; an initialized one needs the
operator's. A damaged or altered file or a different root key is refused and
nothing changes. After the restore the snapshot's credentials are the valid
ones.

Before replacing a cluster that holds data, kmsctl prints what it will
replace (its key count and applied index) and asks for confirmation; when
standard input is not a terminal, pass --force instead.

Any node takes the restore, up to 1 GiB: a follower hands the file to the
leader over the cluster port. (A leader of a build from before 2026-12-07
takes one cluster message only, 64 MiB by default; kmsctl then sends a
larger file to the leader's API address, which the node names, so that
address must be reachable from here.)

Snapshots saved by raftkms before snapshots were authenticated (format 1) are
refused unless --accept-unauthenticated is given, with the operator's
credentials: nothing proves such a file unaltered, so use it only for a file
kept where nobody could change it.`,
		Args: exactArgs(1, "snapshot restore needs the FILE to read"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return snapshotRestore(g, args[0], ro, stdout, stderr)
		},
	}
	restore.Flags().BoolVar(&ro.force, "force", false, "replace a cluster that holds data without asking")
	restore.Flags().BoolVar(&ro.acceptUnauthenticated, "accept-unauthenticated", false,
		"accept a snapshot saved before snapshots were authenticated (format 1)")
	snap.AddCommand(restore)
	var verifyRootKey string
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a snapshot file offline with the cluster's root key (exit 0: authentic and complete)",
		Long: `Check a snapshot file (from snapshot save or kmsd's automatic snapshots) without
any node: its MAC under the snapshot key derived from the root key, then every
record in it. Prints what it holds. Exits 1, naming what is wrong, when the file
is damaged, altered, truncated, of the old unauthenticated format, or made
under another root key.`,
		Args: exactArgs(1, "snapshot verify needs the FILE to check"),
		RunE: func(cmd *cobra.Command, args []string) error { return snapshotVerify(args[0], verifyRootKey, stdout) },
	}
	verify.Flags().StringVar(&verifyRootKey, "root-key-file", "", "file holding the cluster's root key (base64 of 32 bytes)")
	snap.AddCommand(verify)
	op.AddCommand(snap)

	inst := &cobra.Command{
		Use:   "instance",
		Short: "Manage KMS instances (key stores)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return usagef("instance needs a subcommand: create") },
	}
	var instType, instName, instDomain string
	var instQuota int
	create := &cobra.Command{
		Use:   "create --type software|hardware [--hsm-domain NAME] [--name N] [--key-quota N]",
		Short: "Create a KMS instance and print its InstanceId",
		Long: `Create a KMS instance and print its InstanceId. A software instance keeps its
keys' material wrapped under the cluster root key. A hardware instance is bound
to an HSM domain: its keys are generated inside, and used only by, the PKCS#11
tokens of that domain (nodes started with --hsm-domain NAME):

  kmsctl operator instance create --type hardware --hsm-domain prod-hsm

--key-quota sets how many keys the instance may hold (default 1000, at most
10,000,000; each key costs about 1 KiB of memory on every node):

  kmsctl operator instance create --key-quota 1000000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return instanceCreate(g, instType, instName, instDomain, instQuota, stdout)
		},
	}
	create.Flags().StringVar(&instType, "type", "software", "instance type: software or hardware")
	create.Flags().StringVar(&instName, "name", "", "instance name")
	create.Flags().StringVar(&instDomain, "hsm-domain", "", "HSM domain of a hardware instance")
	create.Flags().IntVar(&instQuota, "key-quota", 0, "how many keys the instance may hold (default 1000, at most 10000000)")
	inst.AddCommand(create, instanceLimitCommand(g, stdout))
	op.AddCommand(inst)
	op.AddCommand(accountCommand(g, stdout, stderr), rateLimitCommand(g, stdout))
	op.AddCommand(tlsCommand(stdout), auditCommand(stdout), keygenCommand(stdout))
	upgrade := &cobra.Command{
		Use:   "upgrade",
		Short: "Rolling upgrades: finalize once every node runs the new build",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return usagef("upgrade needs a subcommand: finalize") },
	}
	upgrade.AddCommand(&cobra.Command{
		Use:   "finalize",
		Short: "Record that every node runs this build's log level; older builds can no longer join",
		Long: `Record in the replicated log that every server of the cluster runs a build of the
asked node's log level (docs/OPERATIONS.md, Rolling upgrades). Refused with
ServiceUnavailable.Upgrading, naming the nodes behind, while one runs an older
build. Afterwards the leader adds no node of a lower level to Raft: a rollback
below this level is no longer possible. Optional: writes of the new level
already work once every node runs it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return operatorCall(g, http.MethodPost, "/v1/operator/upgrade", nil, stdout)
		},
	})
	op.AddCommand(upgrade)
	return op
}

func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s", msg)
		}
		return nil
	}
}

func requestContext(g *globals) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), g.timeout)
}

// doJSON performs a raw request and decodes its JSON answer. An error
// answer comes back as *client.APIError.
func doJSON(ctx context.Context, c *client.Client, method, path string, query url.Values, body io.ReadSeeker, signed bool) (map[string]any, []byte, error) {
	do := c.DoUnsigned
	if signed {
		do = c.Do
	}
	resp, err := do(ctx, method, path, query, body, nil)
	if err != nil {
		return nil, nil, explain(err, c.Endpoint)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, raw, fmt.Errorf("the node answered with something that is not JSON: %.200s", raw)
	}
	return m, raw, nil
}

func operatorInit(g *globals, out string, wait time.Duration, stdout, stderr io.Writer) error {
	c, err := newClient(g, false)
	if err != nil {
		return err
	}
	// The file is claimed before the cluster is initialized: init works
	// once, so a refusal afterwards would lose the operator's secret.
	sf, err := createSecretFile(out)
	if err != nil {
		return err
	}
	defer sf.abandon()
	if err := waitForLeader(c, wait, stderr); err != nil {
		return err
	}
	ctx, cancel := requestContext(g)
	defer cancel()
	m, _, err := doJSON(ctx, c, http.MethodPost, "/v1/operator/init", nil, nil, false)
	if err != nil {
		return err
	}
	return sf.write(map[string]any{
		"AccountId": m["AccountId"], "AccessKeyId": m["AccessKeyId"], "AccessKeySecret": m["AccessKeySecret"],
		"InstanceId": m["InstanceId"], "Endpoint": c.Endpoint,
	}, stdout, stderr)
}

// secretFile is --out FILE of the commands that print a secret once: made
// with O_EXCL and mode 0600 before the request, filled after it, removed if
// the request fails. Without --out the credentials go to stdout.
type secretFile struct {
	path string
	f    *os.File
	done bool
}

func createSecretFile(path string) (*secretFile, error) {
	if path == "" {
		return &secretFile{}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, usagef("--out %s: the file exists; kmsctl does not overwrite credentials (choose another name, or remove it first)", path)
	}
	if err != nil {
		return nil, usagef("--out: %v", err)
	}
	return &secretFile{path: path, f: f}, nil
}

// write stores the credentials; without a file it prints them.
func (s *secretFile) write(creds map[string]any, stdout, stderr io.Writer) error {
	return s.writeNoted(creds, stdout, stderr,
		fmt.Sprintf("credentials written to %s (mode 0600); use them with --credentials %s or KMS_CREDENTIALS=%s\n", s.path, s.path, s.path))
}

// writeNoted is write with the line printed on stderr once the file is
// written.
func (s *secretFile) writeNoted(creds map[string]any, stdout, stderr io.Writer, note string) error {
	b, _ := json.MarshalIndent(creds, "", "  ")
	b = append(b, '\n')
	if s.f == nil {
		_, err := stdout.Write(b)
		return err
	}
	_, err := s.f.Write(b)
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// The secret exists nowhere else: print it rather than lose it.
		os.Remove(s.path)
		s.done = true
		stdout.Write(b)
		return fmt.Errorf("writing %s: %v; the credentials are printed above instead, store them safely", s.path, err)
	}
	s.done = true
	fmt.Fprint(stderr, note)
	return nil
}

// abandon removes the file when nothing was written to it.
func (s *secretFile) abandon() {
	if s.f != nil && !s.done {
		s.f.Close()
		os.Remove(s.path)
	}
}

// waitForLeader polls the node's /v1/health until it answers 200 (it
// listens, a Raft leader is known, its catalogue is current), backing off up
// to 2 s between tries, for at most wait. Mistakes that waiting cannot fix
// (wrong scheme, untrusted certificate) end it at once.
func waitForLeader(c *client.Client, wait time.Duration, stderr io.Writer) error {
	if wait <= 0 {
		return nil
	}
	start := time.Now()
	deadline := start.Add(wait)
	backoff := 100 * time.Millisecond
	announced := false
	last := ""
	for {
		// Each try has its own short bound, so the last one, at the
		// deadline, still gets an answer (or a refusal) to report.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := c.DoUnsigned(ctx, http.MethodGet, "/v1/health", nil, nil, nil)
		cancel()
		if err == nil {
			resp.Body.Close()
			if announced {
				fmt.Fprintf(stderr, "the node at %s is ready (after %s)\n", c.Endpoint, time.Since(start).Round(100*time.Millisecond))
			}
			return nil
		}
		var ae *client.APIError
		reason := ""
		switch {
		case hinted(err):
			return err
		case errors.As(err, &ae) && ae.StatusCode == http.StatusServiceUnavailable:
			var h struct{ Reason string }
			json.Unmarshal(ae.Body, &h)
			reason = h.Reason
			if reason == "" {
				reason = "not ready"
			}
		case errors.As(err, &ae):
			// An answer that is not about readiness: let init itself
			// answer.
			return nil
		default:
			reason = shortNetError(err)
		}
		if !announced {
			fmt.Fprintf(stderr, "waiting for a leader at %s (up to %s)...\n", c.Endpoint, wait)
			announced = true
		}
		if reason != last {
			fmt.Fprintf(stderr, "  not yet: %s\n", reason)
			last = reason
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return fmt.Errorf("no leader at %s after %s (last: %s).\n"+
				"Check that kmsd is running and listens on that address (its --http-addr), that the endpoint is right (--endpoint, "+
				"or Endpoint in the credentials file), and that a new cluster's nodes all started with the same --bootstrap-expect N "+
				"and can reach each other's --gossip-addr (kmsd logs when Raft elects a leader); or wait longer with --wait",
				c.Endpoint, wait, last)
		}
		t := time.NewTimer(min(backoff, remaining))
		<-t.C
		backoff = min(2*backoff, 2*time.Second)
	}
}

// shortNetError is the cause of a failed connection, without the client's
// prefix (method, URL).
func shortNetError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		msg := op.Err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return msg
	}
	return err.Error()
}

func operatorMembers(g *globals, stdout io.Writer) error {
	c, err := newClient(g, false)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(g)
	defer cancel()
	m, _, err := doJSON(ctx, c, http.MethodGet, "/v1/status", nil, nil, false)
	if err != nil {
		return err
	}
	out := map[string]any{"Leader": m["Leader"], "AskedNode": m["NodeId"], "Members": m["Members"]}
	if up, ok := m["Upgrade"]; ok {
		out["Upgrade"] = up // absent from builds before log levels
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return nil
}

func instanceCreate(g *globals, typ, name, domain string, quota int, stdout io.Writer) error {
	q := url.Values{"Type": {typ}}
	if quota != 0 {
		q.Set("KeyQuota", strconv.Itoa(quota))
	}
	if name != "" {
		q.Set("Name", name)
	}
	if domain != "" {
		q.Set("HsmDomain", domain)
	}
	return operatorCall(g, http.MethodPost, "/v1/operator/instances", q, stdout)
}

// operatorCall sends a signed request to an operator endpoint and prints
// its JSON answer.
func operatorCall(g *globals, method, path string, q url.Values, stdout io.Writer) error {
	c, err := newClient(g, true)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(g)
	defer cancel()
	_, raw, err := doJSON(ctx, c, method, path, q, nil, true)
	if err != nil {
		return err
	}
	printJSON(stdout, raw)
	return nil
}

// progress reports a long transfer on stderr: bytes, percent, rate and
// time left, rewritten in place twice a second when stderr is a terminal,
// a line every 2 seconds with --progress when it is not, and always a
// final line with the total and the mean rate.
type progress struct {
	w     io.Writer
	what  string
	total int64
	tty   bool
	start atomic.Int64 // UnixNano
	done  atomic.Int64
	stop  chan struct{}
	ended chan struct{}
}

// isTerminal reports whether w is a terminal; tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func newProgress(w io.Writer, what string, total int64, always bool) *progress {
	p := &progress{w: w, what: what, total: total, tty: isTerminal(w), stop: make(chan struct{}), ended: make(chan struct{})}
	p.start.Store(time.Now().UnixNano())
	every := 2 * time.Second
	if p.tty {
		every = 500 * time.Millisecond
	}
	go func() {
		defer close(p.ended)
		if !p.tty && !always {
			<-p.stop
			return
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.print()
			}
		}
	}()
	return p
}

// line is the progress so far: "12.0 MiB of 48.0 MiB (25%), 6.0 MiB/s, 6s left".
func (p *progress) line() string {
	done := p.done.Load()
	secs := p.elapsed().Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / secs
	}
	out := size(done)
	if p.total > 0 {
		out += fmt.Sprintf(" of %s (%d%%)", size(p.total), done*100/p.total)
	}
	out += fmt.Sprintf(", %s/s", size(int64(rate)))
	if p.total > 0 && rate > 0 && done < p.total {
		out += fmt.Sprintf(", %s left", (time.Duration(float64(p.total-done)/rate) * time.Second / time.Second).Round(time.Second))
	}
	return out
}

func (p *progress) print() {
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s: %s", p.what, p.line())
	} else {
		fmt.Fprintf(p.w, "%s: %s\n", p.what, p.line())
	}
}

// finish stops the updates and prints the total.
func (p *progress) finish() {
	close(p.stop)
	<-p.ended
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	d := p.elapsed()
	rate := float64(p.done.Load()) / max(d.Seconds(), 1e-3)
	fmt.Fprintf(p.w, "%s %s in %s (%s/s)\n", p.what, size(p.done.Load()), d.Round(10*time.Millisecond), size(int64(rate)))
}

func (p *progress) elapsed() time.Duration {
	return time.Duration(time.Now().UnixNano() - p.start.Load())
}

// restart counts the transfer again from done bytes, now.
func (p *progress) restart(done int64) {
	p.done.Store(done)
	p.start.Store(time.Now().UnixNano())
}

func (p *progress) Write(b []byte) (int, error) {
	p.done.Add(int64(len(b)))
	return len(b), nil
}

// progressReader counts what is sent of a file being uploaded. The client
// reads the body once to hash it (the signature covers its hash), then
// rewinds it to the start and sends it: only that second pass is the
// upload, counted from the rewind. Once the whole file has been read for
// sending, the upload is over: the progress prints its final line and the
// wait for the cluster is reported apart.
type progressReader struct {
	f       *os.File
	p       *progress
	sending *bool
	over    func()
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	if !*r.sending {
		return n, err
	}
	done := r.p.done.Add(int64(n))
	if r.over != nil && (err == io.EOF || (r.p.total > 0 && done >= r.p.total)) {
		r.over()
	}
	return n, err
}

func (r progressReader) Seek(off int64, whence int) (int64, error) {
	pos, err := r.f.Seek(off, whence)
	if err == nil && whence == io.SeekStart {
		*r.sending = true
		r.p.restart(pos)
	}
	return pos, err
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func snapshotSave(g *globals, path string, stdout, stderr io.Writer) error {
	c, err := newClient(g, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout+5*time.Minute)
	defer cancel()
	fmt.Fprintf(stderr, "saving a snapshot from %s ...\n", c.Endpoint)
	watch := watchNode(c, stderr, g.progress, saveLine)
	resp, err := c.Do(ctx, http.MethodGet, "/v1/operator/snapshot", nil, nil, nil)
	watch.end()
	if err != nil {
		return explain(err, c.Endpoint)
	}
	defer resp.Body.Close()
	// Written beside the target and renamed, so FILE is never a partial
	// snapshot.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	p := newProgress(stderr, "downloaded", resp.ContentLength, g.progress)
	n, err := io.Copy(io.MultiWriter(tmp, p), resp.Body)
	p.finish()
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("the download ended after %d of %d bytes; retry", n, resp.ContentLength)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Saved snapshot at Raft index %s (%s) to %s\n", resp.Header.Get("X-Kms-Index"), size(n), path)
	return nil
}

// restoreFlags are the choices of `snapshot restore`.
type restoreFlags struct {
	force                 bool
	acceptUnauthenticated bool
}

// The confirmation of a restore reads standard input; tests replace these.
var (
	confirmInput    io.Reader = os.Stdin
	stdinIsTerminal           = func() bool {
		fd := os.Stdin.Fd()
		return isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)
	}
)

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// restoreTarget is GET /v1/operator/restore: what a restore would replace.
type restoreTarget struct {
	NodeId       string
	Initialized  bool
	Keys         int
	Accounts     int
	AppliedIndex uint64
	// A follower says what it can hand to the leader in one cluster
	// message and where the leader's API is (nodes of this version).
	IsLeader          bool
	ForwardLimitBytes int64  `json:",omitempty"`
	LeaderId          string `json:",omitempty"`
	LeaderHttpAddr    string `json:",omitempty"`
}

func snapshotRestore(g *globals, path string, ro restoreFlags, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return usagef("snapshot restore: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	c, err := newClient(g, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout+5*time.Minute)
	defer cancel()
	signed := c.AccessKeyID != "" && c.AccessKeySecret != ""

	// What would be replaced. An initialized cluster tells its operator
	// only; one that was never initialized holds nothing and takes the
	// restore without credentials (it has none to check).
	var target restoreTarget
	m, raw, err := doJSON(ctx, c, http.MethodGet, "/v1/operator/restore", nil, nil, signed)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &target); err != nil {
		return fmt.Errorf("the node's restore target answer %v: %w", m, err)
	}
	if target.Initialized {
		fmt.Fprintf(stderr, "The cluster at %s (node %s) holds %s in %s, at applied index %d.\n",
			c.Endpoint, target.NodeId, plural(target.Keys, "key"), plural(target.Accounts, "account"), target.AppliedIndex)
		fmt.Fprintf(stderr, "Restoring %s replaces all of it: keys, accounts, access keys, instances.\n", path)
		if !ro.force {
			if !stdinIsTerminal() {
				return usagef("snapshot restore: the target cluster holds data and standard input is not a terminal to confirm; pass --force to replace it")
			}
			fmt.Fprint(stderr, "Type 'yes' to replace it: ")
			line, _ := bufio.NewReader(confirmInput).ReadString('\n')
			if strings.TrimSpace(line) != "yes" {
				return errors.New("snapshot restore cancelled; nothing changed")
			}
		}
	} else {
		fmt.Fprintf(stderr, "The cluster at %s was never initialized: nothing to replace.\n", c.Endpoint)
		signed = false
	}

	// A follower hands the file to the leader in one cluster message: a
	// larger one goes to the leader's API directly.
	if !target.IsLeader && target.ForwardLimitBytes > 0 && st.Size() > target.ForwardLimitBytes {
		if target.LeaderHttpAddr == "" {
			return fmt.Errorf("snapshot restore: %s (%s) is larger than node %s can hand to the leader (%s), and it knows no leader's address now; "+
				"retry when `kmsctl operator members` shows a leader, or pass that node's address with --endpoint", path, size(st.Size()), target.NodeId, size(target.ForwardLimitBytes))
		}
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return err
		}
		u.Host, u.Path = target.LeaderHttpAddr, ""
		lg := *g
		lg.endpoint = u.String()
		if c, err = newClient(&lg, false); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "The snapshot (%s) is larger than node %s hands to the leader (%s): restoring through the leader, node %s at %s.\n",
			size(st.Size()), target.NodeId, size(target.ForwardLimitBytes), target.LeaderId, c.Endpoint)
	}

	var q url.Values
	if ro.acceptUnauthenticated {
		q = url.Values{"AcceptUnauthenticated": {"true"}}
	}
	fmt.Fprintf(stderr, "restoring %s (%s) through %s ...\n", path, size(st.Size()), c.Endpoint)
	p := newProgress(stderr, "uploaded", st.Size(), g.progress)
	t0 := time.Now()
	var once sync.Once
	var uploaded time.Time
	var watch *nodeWatch
	over := func() {
		once.Do(func() {
			p.finish()
			uploaded = time.Now()
			fmt.Fprintln(stderr, "the cluster verifies and installs the snapshot ...")
			watch = watchNode(c, stderr, g.progress, restoreLine)
		})
	}
	m, _, err = doJSON(ctx, c, http.MethodPost, "/v1/operator/snapshot", q, progressReader{f, p, new(bool), over}, signed)
	over()
	watch.end()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "restored in %s (%s after the upload)\n", time.Since(t0).Round(10*time.Millisecond), time.Since(uploaded).Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "Restored snapshot: %s keys, %s key versions, %s aliases, %s accounts, %s access keys, %s instances; cluster at Raft index %s.\n",
		jsonCount(m["Keys"]), jsonCount(m["KeyVersions"]), jsonCount(m["Aliases"]), jsonCount(m["Accounts"]),
		jsonCount(m["AccessKeys"]), jsonCount(m["Instances"]), jsonCount(m["Index"]))
	fmt.Fprintln(stdout, "The credentials of the cluster that saved the snapshot are now the valid ones.")
	return nil
}

// jsonCount prints a count decoded from JSON (a float64) as the whole
// number it is: fmt's %v printed a million keys as "1e+06".
func jsonCount(v any) string {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return fmt.Sprint(v)
}
