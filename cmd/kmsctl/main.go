// Command kmsctl is the raftkms command line. It follows the service CLI's
// convention — `kmsctl <Action> --Param value` sends any API action — and
// adds operator commands (init, members, snapshots, instances).
//
// It talks to nothing but the HTTP API.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkms/raftkms/apispec"
	"github.com/raftkms/raftkms/client"
)

// Exit codes.
const (
	exitOK      = 0
	exitService = 1 // the service (or the network) refused the request
	exitUsage   = 2 // the command line is wrong
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// globals are the lower-case flags every command takes.
type globals struct {
	endpoint      string
	credentials   string
	caFile        string
	securityToken string
	signature     string
	minIndex      uint64
	timeout       time.Duration
	showIndex     bool
	// progress prints transfer progress even when stderr is not a
	// terminal (operator snapshot save/restore --progress).
	progress bool
}

// usageError marks a mistake on the command line (exit 2). help, when set,
// is the command whose --help would have helped.
type usageError struct{ msg, help string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// actionUsagef is a mistake in an action's parameters.
func actionUsagef(action, format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...), help: action}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var g globals
	// An argument that starts with an upper-case letter is an API action:
	// its --CamelCase flags are parameters, which no fixed flag set can
	// describe, so that form is parsed by hand.
	if i := actionIndex(args); i >= 0 {
		return runAction(args, i, &g, stdout, stderr)
	}
	root := rootCommand(&g, stdout, stderr)
	if i := commandIndex(args); i >= 0 {
		// `kmsctl encrypt`: an action in the wrong capitals.
		if _, _, err := root.Find(args[i:]); err != nil {
			if s := apispec.Suggest(args[i], apispec.Names()); len(s) > 0 && strings.EqualFold(s[0], args[i]) {
				return exitCode(usagef("unknown command %q; did you mean the action %s? (actions start with a capital letter; kmsctl actions lists them)", args[i], s[0]), stderr)
			}
		}
	}
	root.SetArgs(args)
	err := root.Execute()
	return exitCode(err, stderr)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var ae *client.APIError
	switch {
	case hinted(err):
		// Before the APIError case: a plain-HTTP request to an HTTPS node
		// is a bare 400, which says nothing as the service's error JSON.
		fmt.Fprintln(stderr, "kmsctl:", err)
		return exitService
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "kmsctl:", err)
		help := "kmsctl"
		if ue.help != "" {
			help += " " + ue.help
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", help)
		return exitUsage
	case errors.As(err, &ae):
		printAPIError(stderr, ae)
		return exitService
	case isCobraUsage(err):
		fmt.Fprintln(stderr, "kmsctl:", err)
		fmt.Fprintln(stderr, "Run 'kmsctl --help' for usage.")
		return exitUsage
	}
	fmt.Fprintln(stderr, "kmsctl:", err)
	return exitService
}

// isCobraUsage recognizes cobra's own command-line errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func rootCommand(g *globals, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "kmsctl",
		Short: "Command line for raftkms, a self-hosted Alibaba Cloud KMS-compatible key management service",
		Long: `kmsctl sends API actions to a raftkms node and runs operator tasks.

API actions follow the service CLI's convention:
  kmsctl CreateKey --DKMSInstanceId kst-... --Description "my key"
  kmsctl Encrypt --KeyId alias/app --Plaintext "$(echo -n secret | base64)"
  kmsctl Decrypt --CiphertextBlob <blob>

The JSON answer goes to stdout. A service error goes to stderr as JSON and
exits 1; a mistake on the command line exits 2.

'kmsctl actions' lists the actions; 'kmsctl <Action> --help' shows one's
parameters, which are required, and an example.

Credentials come from --credentials FILE, or KMS_CREDENTIALS (a file), or
KMS_ENDPOINT, KMS_ACCESS_KEY_ID and KMS_ACCESS_KEY_SECRET (and
KMS_SECURITY_TOKEN with temporary credentials from AssumeRole). The file is
what 'kmsctl operator init --out FILE' writes (and what 'kmsd --dev' writes):
JSON with AccessKeyId, AccessKeySecret, Endpoint, and SecurityToken for
temporary credentials. An HTTPS node whose certificate comes from the
cluster's own CA needs --ca-file (or KMS_CA_FILE).`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("kmsctl {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	addGlobalFlags(root, g)
	root.AddCommand(operatorCommand(g, stdout, stderr))
	root.AddCommand(keyPolicyCommand(g, stdout))
	root.AddCommand(clientKeyCommand(g, stdout, stderr))
	root.AddCommand(actionsCommand(stdout))
	root.AddCommand(healthCommand(g, stdout))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%v", err) })
	return root
}

func addGlobalFlags(cmd *cobra.Command, g *globals) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.endpoint, "endpoint", "", "API endpoint of a node, e.g. http://127.0.0.1:9700 (overrides the credentials file)")
	pf.StringVar(&g.credentials, "credentials", "", "credentials file (JSON with AccessKeyId, AccessKeySecret, Endpoint)")
	pf.StringVar(&g.caFile, "ca-file", "", "PEM file of the CA that signed the node's HTTPS certificate (default $"+client.EnvCAFile+")")
	pf.StringVar(&g.securityToken, "security-token", "", "STS security token of temporary credentials (default $"+client.EnvSecurityToken+", or SecurityToken in the credentials file)")
	pf.StringVar(&g.signature, "signature", "v3", "request signature: v3 (ACS3-HMAC-SHA256) or v1 (HMAC-SHA1)")
	pf.Uint64Var(&g.minIndex, "min-index", 0, "serve only once the node has applied this Raft index (read your writes)")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "time limit for one request")
	pf.BoolVar(&g.showIndex, "show-index", false, "print the Raft index of an action's write (X-Kms-Index) on stderr, for --min-index")
}

// globalFlagNames are the flags runAction treats as kmsctl's own; the true
// ones take a value, the others (boolean) take none.
var globalFlagNames = map[string]bool{
	"endpoint": true, "credentials": true, "ca-file": true, "security-token": true,
	"signature": true, "min-index": true, "timeout": true, "show-index": false,
}

// actionIndex returns the position of an API action in args, or -1. Global
// flags may come before it.
func actionIndex(args []string) int {
	if i := commandIndex(args); i >= 0 && args[i][0] >= 'A' && args[i][0] <= 'Z' {
		return i
	}
	return -1
}

// commandIndex returns the position of the first argument that is not a
// global flag or its value, or -1.
func commandIndex(args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "--") {
			name := strings.TrimPrefix(a, "--")
			if takesValue, ok := globalFlagNames[name]; ok && takesValue {
				i++ // skip its value
			}
			continue
		}
		if strings.HasPrefix(a, "-") || a == "" {
			continue
		}
		return i
	}
	return -1
}
