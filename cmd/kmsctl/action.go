package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkms/raftkms/apispec"
	"github.com/raftkms/raftkms/client"
)

// runAction sends `kmsctl [globals] Action [--Param value]...`. The action
// and its parameters are checked against apispec's table (the one the
// server routes by) before any request: a mistake exits 2 with the names
// that would have worked.
func runAction(args []string, at int, g *globals, stdout, stderr io.Writer) int {
	name := args[at]
	action, known := apispec.Lookup(name)
	if !known {
		msg := fmt.Sprintf("unknown action %q", name)
		if s := apispec.Suggest(name, apispec.Names()); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return exitCode(usagef("%s (kmsctl actions lists them all)", msg), stderr)
	}
	params := map[string]string{}
	rest := append(append([]string{}, args[:at]...), args[at+1:]...)
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "-h" || a == "--help" {
			printActionHelp(stdout, action)
			return exitOK
		}
		if !strings.HasPrefix(a, "--") || len(a) < 3 {
			return exitCode(actionUsagef(name, "%s: unexpected argument %q; parameters are written --Name value", name, a), stderr)
		}
		pname, value, hasValue := strings.Cut(a[2:], "=")
		if takesValue, global := globalFlagNames[pname]; global {
			if !takesValue && !hasValue {
				value = "true"
			} else if !hasValue {
				if i+1 >= len(rest) {
					return exitCode(actionUsagef(name, "%s: --%s needs a value", name, pname), stderr)
				}
				i++
				value = rest[i]
			}
			if err := setGlobal(g, pname, value); err != nil {
				return exitCode(err, stderr)
			}
			continue
		}
		if _, ok := action.Param(pname); !ok {
			return exitCode(unknownParam(action, pname), stderr)
		}
		if !hasValue {
			if i+1 >= len(rest) {
				return exitCode(actionUsagef(name, "%s: --%s needs a value", name, pname), stderr)
			}
			i++
			value = rest[i]
		}
		if _, dup := params[pname]; dup {
			return exitCode(actionUsagef(name, "%s: --%s given twice", name, pname), stderr)
		}
		params[pname] = value
	}
	if g.timeout == 0 {
		g.timeout = 30 * time.Second
	}
	if g.signature == "" {
		g.signature = "v3"
	}
	c, err := newClient(g, true)
	if err != nil {
		return exitCode(err, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	var opts []client.CallOption
	if g.minIndex > 0 {
		opts = append(opts, client.WithMinIndex(g.minIndex))
	}
	resp, err := c.Call(ctx, name, params, opts...)
	if err != nil {
		return exitCode(explain(err, c.Endpoint), stderr)
	}
	if g.showIndex && resp.Index > 0 {
		fmt.Fprintf(stderr, "%s: %d\n", client.HeaderIndex, resp.Index)
	}
	printJSON(stdout, resp.Body)
	return exitOK
}

// unknownParam is the usage error for a parameter the action does not
// take: the right spelling when only the capitals are wrong, else the
// parameters it does take.
func unknownParam(a apispec.Action, name string) error {
	known := a.ParamNames()
	if s := apispec.Suggest(name, known); len(s) > 0 && strings.EqualFold(s[0], name) {
		return actionUsagef(a.Name, "%s: unknown parameter --%s; did you mean --%s? (parameter names are case-sensitive)", a.Name, name, s[0])
	}
	if s := apispec.Suggest(name, globalNames()); len(s) > 0 && name != "" && name[0] >= 'a' && name[0] <= 'z' {
		return actionUsagef(a.Name, "%s: unknown flag --%s; did you mean --%s?", a.Name, name, s[0])
	}
	if len(known) == 0 {
		return actionUsagef(a.Name, "%s: unknown parameter --%s; %s takes no parameters", a.Name, name, a.Name)
	}
	msg := fmt.Sprintf("%s: unknown parameter --%s; %s takes --%s", a.Name, name, a.Name, strings.Join(known, ", --"))
	if s := apispec.Suggest(name, known); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean --%s?)", s[0])
	}
	return actionUsagef(a.Name, "%s", msg)
}

func globalNames() []string {
	out := make([]string, 0, len(globalFlagNames))
	for n := range globalFlagNames {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// printActionHelp is `kmsctl <Action> --help`, from apispec's table.
func printActionHelp(w io.Writer, a apispec.Action) {
	fmt.Fprintf(w, "%s: %s (%s API)\n\n", a.Name, a.Summary, a.API)
	fmt.Fprintf(w, "Usage: kmsctl [global flags] %s", a.Name)
	for _, p := range a.Params {
		if p.Required {
			fmt.Fprintf(w, " --%s <%s>", p.Name, p.Type)
		}
	}
	if len(a.Params) > len(a.Required()) {
		fmt.Fprint(w, " [--Param value]...")
	}
	fmt.Fprintln(w)
	if len(a.Params) > 0 {
		fmt.Fprintln(w, "\nParameters:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, p := range a.Params {
			req := "optional"
			if p.Required {
				req = "required"
			}
			fmt.Fprintf(tw, "  --%s\t%s\t%s\t%s\n", p.Name, p.Type, req, p.Doc)
		}
		tw.Flush()
	} else {
		fmt.Fprintln(w, "\nParameters: none")
	}
	fmt.Fprintf(w, "\nExample:\n  %s\n", strings.TrimSpace("kmsctl "+a.Name+" "+a.Example))
	fmt.Fprint(w, "\nThe JSON answer goes to stdout; a service error goes to stderr as JSON and exits 1.\nGlobal flags (--endpoint, --credentials, --ca-file, --security-token, --show-index, ...): kmsctl --help\n")
}

// actionsCommand is `kmsctl actions`: every action, one a line, with its
// summary.
func actionsCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "actions",
		Short: "List every API action (kmsctl <Action> --help shows one's parameters)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			for _, a := range apispec.Actions() {
				fmt.Fprintf(tw, "%s\t%s\n", a.Name, a.Summary)
			}
			return tw.Flush()
		},
	}
}

func setGlobal(g *globals, name, value string) error {
	switch name {
	case "endpoint":
		g.endpoint = value
	case "credentials":
		g.credentials = value
	case "ca-file":
		g.caFile = value
	case "security-token":
		g.securityToken = value
	case "show-index":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return usagef("--show-index: %q is not true or false", value)
		}
		g.showIndex = b
	case "signature":
		g.signature = value
	case "min-index":
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return usagef("--min-index: %q is not a Raft index", value)
		}
		g.minIndex = n
	case "timeout":
		d, err := time.ParseDuration(value)
		if err != nil {
			return usagef("--timeout: %v", err)
		}
		g.timeout = d
	}
	return nil
}

// newClient builds an API client from the global flags and the
// environment. needCreds=false allows a client with only an endpoint
// (operator init, restore into a new cluster).
func newClient(g *globals, needCreds bool) (*client.Client, error) {
	if g.signature != "v3" && g.signature != "v1" {
		return nil, usagef("--signature must be v3 or v1")
	}
	cr, err := client.ResolveCredentials(g.credentials, g.endpoint)
	if err != nil && needCreds {
		return nil, usagef("%v", err)
	}
	if cr.Endpoint == "" {
		cr.Endpoint = "http://127.0.0.1:9700"
	}
	opts := []client.Option{client.WithSignatureVersion(g.signature), client.WithTimeout(g.timeout)}
	caFile := g.caFile
	if caFile == "" {
		caFile = os.Getenv(client.EnvCAFile)
	}
	if caFile != "" {
		opts = append(opts, client.WithCAFile(caFile))
	}
	if g.securityToken != "" {
		cr.SecurityToken = g.securityToken
	}
	if cr.SecurityToken != "" {
		opts = append(opts, client.WithSecurityToken(cr.SecurityToken))
	}
	c, err := client.New(cr.Endpoint, cr.AccessKeyId, cr.AccessKeySecret, opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

// explain adds what to do next to errors that are not the service's.
func explain(err error, endpoint string) error {
	if hinted(err) {
		return err // the client's error already says what to do
	}
	var ae *client.APIError
	if asAPIError(err, &ae) {
		return err
	}
	return fmt.Errorf("%w\nIs a node running at %s? Pick another with --endpoint, or check the address in your credentials file", err, endpoint)
}

// hinted reports whether err is a transport mistake the client has
// explained (wrong scheme, untrusted certificate).
func hinted(err error) bool {
	return errors.Is(err, client.ErrSpeaksHTTPS) || errors.Is(err, client.ErrSpeaksHTTP) || errors.Is(err, client.ErrUntrustedCertificate)
}

func printJSON(w io.Writer, body []byte) {
	body = bytes.TrimSpace(body)
	var out bytes.Buffer
	if json.Indent(&out, body, "", "  ") != nil {
		w.Write(body)
		fmt.Fprintln(w)
		return
	}
	out.WriteByte('\n')
	w.Write(out.Bytes())
}

func printAPIError(w io.Writer, e *client.APIError) {
	if len(e.Body) > 0 && json.Valid(e.Body) {
		printJSON(w, e.Body)
		return
	}
	b, _ := json.MarshalIndent(map[string]any{"Code": e.Code, "Message": e.Message, "RequestId": e.RequestID, "HttpStatus": e.StatusCode}, "", "  ")
	fmt.Fprintln(w, string(b))
}
