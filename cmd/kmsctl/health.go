package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// healthCommand is `kmsctl health`: GET /v1/health of --endpoint, exit 0 when
// the node answers 200 (it can serve), 1 otherwise. It is the probe of the
// container image's HEALTHCHECK, which has no shell and no curl.
func healthCommand(g *globals, stdout io.Writer) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "health [--quiet]",
		Short: "Probe GET /v1/health of --endpoint: exit 0 when the node can serve (200), 1 otherwise",
		Long: `Probe a node's GET /v1/health (unsigned; no credentials needed). Exit 0 when
it answers 200 — a leader exists and the node's catalogue has caught up —
and 1 on any other answer or no answer. An https endpoint from the
cluster's own CA needs --ca-file. The container image runs it as its
HEALTHCHECK.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return probeHealth(cmd.Context(), g, quiet, stdout) },
	}
	cmd.Flags().BoolVar(&quiet, "quiet", false, "print nothing when healthy")
	return cmd
}

func probeHealth(ctx context.Context, g *globals, quiet bool, stdout io.Writer) error {
	c, err := newClient(g, false)
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	resp, err := c.DoUnsigned(ctx, http.MethodGet, "/v1/health", nil, nil, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s", c.Endpoint, resp.Status)
	}
	if !quiet {
		fmt.Fprintf(stdout, "healthy: %s\n", c.Endpoint)
	}
	return nil
}

// keygenCommand is `kmsctl operator keygen FILE`: base64 of random bytes in
// a new file of mode 0600 — a root key (32 bytes) or a gossip key.
func keygenCommand(stdout io.Writer) *cobra.Command {
	var size int
	var keep bool
	cmd := &cobra.Command{
		Use:   "keygen [--bytes 32] [--keep-existing] FILE",
		Short: "Write base64 of random bytes to a new file (mode 0600): a root key or a gossip key",
		Long: `Write base64 of --bytes random bytes (32: a root key for --root-key-file or a
gossip key for --gossip-key-file; gossip also takes 16 or 24) to FILE, mode
0600. An existing FILE is not overwritten: it is an error, or with
--keep-existing nothing is written and the exit is 0 (for init containers
that run again). The key is never printed.`,
		Args: exactArgs(1, "operator keygen needs the FILE to write"),
		RunE: func(_ *cobra.Command, args []string) error { return writeRandomKey(args[0], size, keep, stdout) },
	}
	cmd.Flags().IntVar(&size, "bytes", 32, "how many random bytes (16, 24 or 32)")
	cmd.Flags().BoolVar(&keep, "keep-existing", false, "exit 0 without writing when FILE exists")
	return cmd
}

func writeRandomKey(path string, size int, keep bool, stdout io.Writer) error {
	if size != 16 && size != 24 && size != 32 {
		return usagef("--bytes must be 16, 24 or 32")
	}
	if _, err := os.Lstat(path); err == nil {
		if keep {
			fmt.Fprintf(stdout, "Kept %s (it exists)\n", path)
			return nil
		}
		return fmt.Errorf("%s already exists; nothing was written", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	raw := make([]byte, size)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	fmt.Fprintf(stdout, "Wrote %s (%d random bytes, base64, mode 0600)\n", path, size)
	return nil
}
