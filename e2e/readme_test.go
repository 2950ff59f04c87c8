package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README test: every ```sh block of README.md runs as written, in
// order, in one bash session (set -Eeuo pipefail), in a scratch copy of the
// repository as a fresh clone has it (tracked and untracked-but-not-ignored
// files, no bin/, no .tmp/). A failure names the block, the README line and
// the command.
//
// A block may be preceded by one visible directive, an HTML comment:
//
//	<!-- readme-test: skip (why) -->
//	    not run; listed in the test log. Only for what cannot run in a test.
//	<!-- readme-test: background until URL answers 200[ and FILE exists] -->
//	    a block that runs in the foreground for ever (make run): it runs in
//	    the background, and the next block waits (at most readmeWait) until
//	    GET URL answers 200 and FILE exists.
//	<!-- readme-test: stop the background blocks first (why) -->
//	    does what the README's prose asks the reader to do by hand before the
//	    block (stop the dev node): SIGTERM to the background blocks, and wait.
//
// Whatever the blocks start with `&` is stopped at the end (SIGTERM, then
// SIGKILL to the session's process group).

const (
	readmeTimeout = 12 * time.Minute
	readmeWait    = 3 * time.Minute
)

type readmeBlock struct {
	N         int    // 1-based, among the ```sh blocks
	Line      int    // README line of the block's first line
	Heading   string // the section it is in
	Body      string
	Directive string // after "readme-test: ", "" if none
}

func (b readmeBlock) String() string {
	return fmt.Sprintf("block %d (README.md line %d, section %q)", b.N, b.Line, b.Heading)
}

var directiveRE = regexp.MustCompile(`^<!--\s*readme-test:\s*(.*?)\s*-->$`)

// readmeBlocks returns README.md's ```sh blocks in order.
func readmeBlocks(t *testing.T, readme []byte) []readmeBlock {
	t.Helper()
	var (
		out       []readmeBlock
		heading   string
		lastLine  string // last non-blank line outside blocks
		in        bool
		cur       readmeBlock
		body      []string
		lineNo    int
		otherCode bool // inside a non-sh fence
	)
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case in && strings.TrimSpace(line) == "```":
			cur.Body = strings.Join(body, "\n") + "\n"
			out = append(out, cur)
			in, body, lastLine = false, nil, ""
		case in:
			body = append(body, line)
		case otherCode:
			if strings.TrimSpace(line) == "```" {
				otherCode = false
			}
		case line == "```sh":
			in = true
			cur = readmeBlock{N: len(out) + 1, Line: lineNo + 1, Heading: heading}
			if m := directiveRE.FindStringSubmatch(lastLine); m != nil {
				cur.Directive = m[1]
			}
		case strings.HasPrefix(line, "```"):
			otherCode = true
		case strings.HasPrefix(line, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
			lastLine = ""
		case strings.TrimSpace(line) != "":
			lastLine = strings.TrimSpace(line)
		}
	}
	if in {
		t.Fatalf("README.md: the ```sh block at line %d is not closed", cur.Line-1)
	}
	if strings.Contains(string(readme), "readme-test:") {
		// A directive that does not sit right before a block would be
		// silently ignored: refuse it.
		n := 0
		for _, b := range out {
			if b.Directive != "" {
				n++
			}
		}
		if c := strings.Count(string(readme), "readme-test:"); c != n {
			t.Fatalf("README.md has %d readme-test directives but only %d sit right before a ```sh block", c, n)
		}
	}
	return out
}

var (
	backgroundRE = regexp.MustCompile(`^background until (\S+) answers 200(?: and (\S+) exists)?$`)
	stopBgRE     = regexp.MustCompile(`^stop the background blocks first\b`)
	skipRE       = regexp.MustCompile(`^skip\b`)
	portRE       = regexp.MustCompile(`127\.0\.0\.1:(\d{2,5})\b`)
	logLineRE    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}`)
	orEcho       = regexp.MustCompile(`\|\|\s*echo\s+"([^"]*)"\s*$`)
)

// readmeScript turns the blocks into one bash script. lines maps the
// script's line numbers to README lines (0: harness code).
func readmeScript(t *testing.T, blocks []readmeBlock, logDir string) (script string, lines map[int]int, skipped []readmeBlock) {
	t.Helper()
	var sb strings.Builder
	lines = map[int]int{}
	n := 0
	emit := func(s string, readmeLine int) {
		for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
			n++
			sb.WriteString(l)
			sb.WriteByte('\n')
			if readmeLine > 0 {
				lines[n] = readmeLine
				readmeLine++
			}
		}
	}
	emit(`set -Eeuo pipefail
__readme_block=0
__readme_bg=()
trap 'echo "block=$__readme_block line=$LINENO status=$? command=$BASH_COMMAND" > "$README_TEST_FAILURE"' ERR
__readme_stop_bg() {
  local p
  for p in "${__readme_bg[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${__readme_bg[@]}"; do wait "$p" 2>/dev/null || true; done
  __readme_bg=()
}
__readme_cleanup() {
  trap - ERR
  local p
  for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap __readme_cleanup EXIT
__readme_wait() { # URL FILE BLOCK
  local deadline=$((SECONDS + `+strconv.Itoa(int(readmeWait.Seconds()))+`))
  until curl -sf -o /dev/null "$1" && { [ -z "$2" ] || [ -e "$2" ]; }; do
    if [ $SECONDS -ge $deadline ]; then
      echo "block=$3 line=0 status=1 command=waited `+readmeWait.String()+` for $1 to answer 200${2:+ and $2 to exist}" > "$README_TEST_FAILURE"
      exit 1
    fi
    sleep 0.5
  done
}`, 0)
	for _, b := range blocks {
		emit(fmt.Sprintf("__readme_block=%d; echo %d > \"$README_TEST_PROGRESS\"; echo '==== README block %d (line %d) ===='", b.N, b.N, b.N, b.Line), 0)
		switch d := b.Directive; {
		case d == "":
			emit(b.Body, b.Line)
		case skipRE.MatchString(d):
			skipped = append(skipped, b)
		case backgroundRE.MatchString(d):
			m := backgroundRE.FindStringSubmatch(d)
			cmd := strings.TrimSpace(b.Body)
			if strings.ContainsAny(cmd, "\n;&|") {
				t.Fatalf("%s: a background block must be one simple command (it is signalled like Ctrl-C would): %q", b, cmd)
			}
			emit(fmt.Sprintf("%s > %q 2>&1 &", cmd, filepath.Join(logDir, fmt.Sprintf("block-%d.log", b.N))), b.Line)
			emit(fmt.Sprintf("__readme_bg+=($!)\n__readme_wait %q %q %d", m[1], m[2], b.N), 0)
		case stopBgRE.MatchString(d):
			emit("__readme_stop_bg", 0)
			emit(b.Body, b.Line)
		default:
			t.Fatalf("%s: unknown directive %q (skip ..., background until URL answers 200 [and FILE exists], stop the background blocks first ...)", b, d)
		}
	}
	emit("echo '==== README: every block ran ===='", 0)
	return sb.String(), lines, skipped
}

// copyRepo copies the files a fresh clone has (tracked, plus untracked files
// that are not ignored, so that uncommitted work is tested too) to dst.
func copyRepo(t *testing.T, dst string) map[string]bool {
	t.Helper()
	copied := map[string]bool{}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("list the repository's files (git ls-files in %s): %v", repoRoot, err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(repoRoot, rel)
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		copied[rel] = true
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, to); err != nil {
				t.Fatal(err)
			}
		case info.Mode().IsRegular():
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, info.Mode().Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
	return copied
}

// notIgnored lists the files under work that the README's commands wrote
// (not among copied) and that the repository's .gitignore does not cover:
// a reader who follows the README must not see them in `git status`.
func notIgnored(t *testing.T, work string, copied map[string]bool) []string {
	t.Helper()
	var written []string
	filepath.WalkDir(work, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(work, p)
		if !copied[rel] {
			written = append(written, rel)
		}
		return nil
	})
	if len(written) == 0 {
		return nil
	}
	cmd := exec.Command("git", "check-ignore", "--no-index", "--stdin")
	cmd.Dir = repoRoot
	cmd.Stdin = strings.NewReader(strings.Join(written, "\n") + "\n")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: none ignored
		t.Fatalf("git check-ignore: %v", err)
	}
	ignored := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		ignored[l] = true
	}
	var missing []string
	for _, w := range written {
		if !ignored[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

// busyPorts lists the README's loopback ports that something listens on.
func busyPorts(readme []byte) []string {
	seen := map[string]bool{}
	var busy []string
	for _, m := range portRE.FindAllSubmatch(readme, -1) {
		port := string(m[1])
		if seen[port] {
			continue
		}
		seen[port] = true
		addr := "127.0.0.1:" + port
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			busy = append(busy, addr+" (tcp)")
			continue
		}
		ln.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			busy = append(busy, addr+" (udp)")
			continue
		}
		pc.Close()
	}
	sort.Strings(busy)
	return busy
}

func TestReadme_EveryShellBlockRunsAsWritten(t *testing.T) {
	for _, tool := range []string{"bash", "git", "make", "jq", "curl", "softhsm2-util"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README uses %s, which is not installed: run `make deps`", tool)
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, readme)
	if len(blocks) < 5 {
		t.Fatalf("README.md has %d ```sh blocks; the test expects the whole tour", len(blocks))
	}
	if busy := busyPorts(readme); len(busy) > 0 {
		t.Fatalf("ports the README's commands use are taken: %s — stop whatever listens there (a `make run`, `make cluster`, or a README tour in another shell?) and run this test again", strings.Join(busy, ", "))
	}

	work := t.TempDir()
	copied := copyRepo(t, work)
	logDir := t.TempDir()
	script, lines, skipped := readmeScript(t, blocks, logDir)
	for _, b := range skipped {
		t.Logf("skipped, as README.md says: %s: %s", b, b.Directive)
	}
	scriptPath := filepath.Join(logDir, "readme.sh")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	failure := filepath.Join(logDir, "failure")
	progress := filepath.Join(logDir, "progress")

	ctx, cancel := context.WithTimeout(context.Background(), readmeTimeout)
	defer cancel()
	cmd := exec.Command("bash", scriptPath)
	cmd.Dir = work
	env := []string{"PWD=" + work, "README_TEST_FAILURE=" + failure, "README_TEST_PROGRESS=" + progress,
		"PATH=" + filepath.Dir(goTool()) + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "SOFTHSM2_CONF=") && !strings.HasPrefix(kv, "PWD=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	// Whatever happens, nothing the README started outlives the test.
	defer killGroup(t, pgid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		syscall.Kill(-pgid, syscall.SIGTERM)
		runErr = <-done
		b, _ := os.ReadFile(progress)
		runErr = fmt.Errorf("the README did not finish within %s; it was running block %s: %v", readmeTimeout, strings.TrimSpace(string(b)), runErr)
	}

	report := func() string {
		var r strings.Builder
		// The nodes the README starts with & log to the same stderr as the
		// commands: their lines are shown apart.
		var cmds, nodeLogs []string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if logLineRE.MatchString(l) {
				nodeLogs = append(nodeLogs, l)
			} else {
				cmds = append(cmds, l)
			}
		}
		fmt.Fprintf(&r, "---- stdout (last 80 lines) ----\n%s\n---- stderr of the commands (last 40 lines) ----\n%s\n---- stderr of the nodes started with & (last 60 lines) ----\n%s\n",
			lastLines(stdout.String(), 80), lastLines(strings.Join(cmds, "\n"), 40), lastLines(strings.Join(nodeLogs, "\n"), 60))
		logs, _ := filepath.Glob(filepath.Join(logDir, "block-*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			fmt.Fprintf(&r, "---- background %s (last 30 lines) ----\n%s\n", filepath.Base(l), lastLines(string(b), 30))
		}
		return r.String()
	}
	if runErr != nil {
		what := ""
		if b, err := os.ReadFile(failure); err == nil {
			what = describeFailure(string(b), blocks, lines)
		}
		t.Fatalf("the README does not run as written: %v\n%s\n%s", runErr, what, report())
	}

	// Lines ending in `|| echo "..."` show a refusal: they must have failed,
	// so their echo ran.
	checked := 0
	for _, b := range blocks {
		if b.Directive != "" && skipRE.MatchString(b.Directive) {
			continue
		}
		for _, line := range strings.Split(b.Body, "\n") {
			if m := orEcho.FindStringSubmatch(line); m != nil {
				checked++
				if !strings.Contains(stdout.String(), m[1]) {
					t.Errorf("%s: this line should have failed and printed %q, but did not:\n  %s", b, m[1], line)
				}
			}
		}
	}
	if missing := notIgnored(t, work, copied); len(missing) > 0 {
		t.Errorf(".gitignore does not cover %d files the README's commands write: %s", len(missing), strings.Join(missing[:min(len(missing), 20)], ", "))
	}
	if checked == 0 {
		t.Errorf("the README has no `|| echo` line: the refusals it shows are not checked")
	}
	// What the README says the reader will see.
	for _, want := range []string{"hello, kms", "made before the backup", "HSM"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the README's output lacks %q", want)
		}
	}
	// Every node the README starts stops with SIGTERM at the end (graceful
	// leave, one after the other or all at once): a normal run and a normal
	// stop log no error on any node.
	var errLines []string
	nodeOutput := stderr.String()
	bgLogs, _ := filepath.Glob(filepath.Join(logDir, "block-*.log")) // the dev node's
	for _, l := range bgLogs {
		b, _ := os.ReadFile(l)
		nodeOutput += "\n" + string(b)
	}
	for _, l := range strings.Split(nodeOutput, "\n") {
		if logLineRE.MatchString(l) && strings.Contains(l, "[ERROR]") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) > 0 {
		t.Errorf("the nodes logged %d [ERROR] lines during the README's tour and their SIGTERM at its end:\n%s",
			len(errLines), lastLines(strings.Join(errLines, "\n"), 30))
	}
	if t.Failed() {
		t.Log(report())
	}
}

// describeFailure turns the ERR trap's line into the block, README line and
// command.
func describeFailure(s string, blocks []readmeBlock, lines map[int]int) string {
	s = strings.TrimSpace(s)
	var blockN, scriptLine int
	var status, command string
	for _, f := range []struct {
		key string
		dst any
	}{{"block=", &blockN}, {"line=", &scriptLine}} {
		if i := strings.Index(s, f.key); i >= 0 {
			fmt.Sscanf(s[i+len(f.key):], "%d", f.dst)
		}
	}
	if i := strings.Index(s, "status="); i >= 0 {
		status, _, _ = strings.Cut(s[i+len("status="):], " ")
	}
	if i := strings.Index(s, "command="); i >= 0 {
		command = s[i+len("command="):]
	}
	where := fmt.Sprintf("block %d", blockN)
	for _, b := range blocks {
		if b.N == blockN {
			where = b.String()
		}
	}
	line := ""
	if l, ok := lines[scriptLine]; ok {
		line = fmt.Sprintf(", README.md line %d", l)
	}
	return fmt.Sprintf("failed in %s%s, exit status %s, command: %s", where, line, status, command)
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// killGroup stops what is left of the README's process group: SIGTERM (the
// nodes leave gracefully), then SIGKILL after a grace period, and waits
// until no process of the group is left, so the ports are free again.
func killGroup(t *testing.T, pgid int) {
	alive := func() bool { return syscall.Kill(-pgid, 0) == nil }
	if !alive() {
		return
	}
	syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for alive() && time.Now().Before(deadline) {
		<-tick.C
	}
	if alive() {
		t.Logf("README processes still running 30s after SIGTERM: killing them")
		syscall.Kill(-pgid, syscall.SIGKILL)
		for i := 0; alive() && i < 100; i++ {
			<-tick.C
		}
	}
}
