package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/raftkms/raftkms/audit"
)

// auditCommand is `kmsctl operator audit ...`. It reads files locally and
// talks to no node.
func auditCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check a node's audit log (--audit-log) locally",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return usagef("audit needs a subcommand: verify PATH") },
	}
	var head string
	verify := &cobra.Command{
		Use:   "verify PATH",
		Short: "Check the hash chain of an audit log file: exit 0 if intact, 1 naming the first line that breaks it",
		Long: `Check every line of an audit log written by kmsd --audit-log: each line's hash
must match its content and its "prev" must be the hash of the line before.
An edited, removed, inserted or reordered line, or a file cut in the middle of
a line, breaks the chain; the first line that does is named and the exit code
is 1. An intact file exits 0 and prints its number of lines and its head (the
last line's hash).

Lines cut off the end of a file leave a valid, shorter chain. Note the head
printed by each check somewhere else, and pass it later with --head: the file
must still contain that line.

The file is read locally; no node is contacted.`,
		Args: exactArgs(1, "audit verify needs the PATH of an audit log file"),
		RunE: func(_ *cobra.Command, args []string) error { return auditVerify(args[0], head, stdout) },
	}
	verify.Flags().StringVar(&head, "head", "", "a head hash noted earlier: fail unless the file still contains that line")
	cmd.AddCommand(verify)
	return cmd
}

func auditVerify(path, head string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return usagef("audit verify: %v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return usagef("audit verify: %s is a directory, not an audit log file", path)
	}
	res, err := audit.Verify(f, audit.VerifyOptions{Head: head})
	var ce *audit.ChainError
	if errors.As(err, &ce) {
		return fmt.Errorf("audit log %s: line %d breaks the chain: %s", path, ce.Line, ce.Reason)
	}
	if err != nil {
		return fmt.Errorf("audit log %s: %w", path, err)
	}
	lines := "lines"
	if res.Lines == 1 {
		lines = "line"
	}
	fmt.Fprintf(stdout, "audit log %s: intact, %d %s, head %s\n", path, res.Lines, lines, res.Head)
	return nil
}
