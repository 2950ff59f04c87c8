package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/raftkms/raftkms/client"
)

// runAction sends `kmsctl [globals] Action [--Param value]...`.
func runAction(args []string, at int, g *globals, stdout, stderr io.Writer) int {
	action := args[at]
	params := map[string]string{}
	rest := append(append([]string{}, args[:at]...), args[at+1:]...)
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "-h" || a == "--help" {
			fmt.Fprintf(stdout, "Usage: kmsctl [--endpoint URL] [--credentials FILE] %s [--Param value]...\n\nParameters are the API's, with their exact names (e.g. --KeyId, --Plaintext).\n", action)
			return exitOK
		}
		if !strings.HasPrefix(a, "--") || len(a) < 3 {
			return exitCode(usagef("%s: unexpected argument %q; parameters are written --Name value", action, a), stderr)
		}
		name, value, hasValue := strings.Cut(a[2:], "=")
		if !hasValue {
			if i+1 >= len(rest) {
				return exitCode(usagef("%s: --%s needs a value", action, name), stderr)
			}
			i++
			value = rest[i]
		}
		if globalFlagNames[name] {
			if err := setGlobal(g, name, value); err != nil {
				return exitCode(err, stderr)
			}
			continue
		}
		if name == "" || !(name[0] >= 'A' && name[0] <= 'Z') {
			return exitCode(usagef("%s: unknown flag --%s (API parameters start with a capital letter, e.g. --KeyId)", action, name), stderr)
		}
		if _, dup := params[name]; dup {
			return exitCode(usagef("%s: --%s given twice", action, name), stderr)
		}
		params[name] = value
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
	resp, err := c.Call(ctx, action, params, opts...)
	if err != nil {
		return exitCode(explain(err, c.Endpoint), stderr)
	}
	printJSON(stdout, resp.Body)
	return exitOK
}

func setGlobal(g *globals, name, value string) error {
	switch name {
	case "endpoint":
		g.endpoint = value
	case "credentials":
		g.credentials = value
	case "ca-file":
		g.caFile = value
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
	if g.caFile != "" {
		opts = append(opts, client.WithCAFile(g.caFile))
	}
	c, err := client.New(cr.Endpoint, cr.AccessKeyId, cr.AccessKeySecret, opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

// explain adds what to do next to errors that are not the service's.
func explain(err error, endpoint string) error {
	var ae *client.APIError
	if asAPIError(err, &ae) {
		return err
	}
	return fmt.Errorf("%w\nIs a node running at %s? Pick another with --endpoint, or check the address in your credentials file", err, endpoint)
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
