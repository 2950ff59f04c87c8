package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// clientKeyCommand is `kmsctl client-key create`: CreateClientKey, with the
// answer's private part written to a new file in the shape the KMS
// instance SDK reads as its ClientKeyFile.
func clientKeyCommand(g *globals, stdout, stderr io.Writer) *cobra.Command {
	ck := &cobra.Command{
		Use:   "client-key",
		Short: "Client keys of application access points (the instance API's credentials)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return usagef("client-key needs a subcommand: create") },
	}
	var aap, passwordFile, out, notAfter string
	create := &cobra.Command{
		Use:   "create --aap NAME --password-file FILE --out FILE [--not-after RFC3339]",
		Short: "Create a client key and write it to a new file (mode 0600) for the instance SDK",
		Long: `Create a client key for an application access point (CreateClientKey) and
write {"KeyId": "KAAP....", "PrivateKeyData": "<base64 PKCS#12>"} to FILE, the
client key file of the KMS instance SDK (ClientKeyFile, with Password).

The password comes from --password-file (a trailing newline is not part of
it): 8 to 64 printable ASCII characters of at least two kinds. --out is
created with mode 0600 before the request and never overwritten: the
private key exists only in this answer.

  kmsctl client-key create --aap app --password-file pw.txt --out clientKey_app.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clientKeyCreate(g, clientKeyFlags{aap: aap, passwordFile: passwordFile, out: out, notAfter: notAfter}, stdout, stderr)
		},
	}
	create.Flags().StringVar(&aap, "aap", "", "the application access point's name")
	create.Flags().StringVar(&passwordFile, "password-file", "", "file holding the password that protects the PKCS#12")
	create.Flags().StringVar(&out, "out", "", "the new client key file (mode 0600; an existing file is never overwritten)")
	create.Flags().StringVar(&notAfter, "not-after", "", "end of validity, RFC 3339 (default: 5 years)")
	ck.AddCommand(create)
	return ck
}

type clientKeyFlags struct{ aap, passwordFile, out, notAfter string }

// readPassword reads a password file; one trailing newline (LF or CRLF),
// which editors and `echo` add, is not part of the password.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("--password-file: %v", err)
	}
	pw := string(b)
	if strings.HasSuffix(pw, "\r\n") {
		pw = strings.TrimSuffix(pw, "\r\n")
	} else {
		pw = strings.TrimSuffix(pw, "\n")
	}
	if pw == "" {
		return "", usagef("--password-file %s is empty", path)
	}
	return pw, nil
}

func clientKeyCreate(g *globals, f clientKeyFlags, stdout, stderr io.Writer) error {
	switch {
	case f.aap == "":
		return usagef("client-key create needs --aap NAME")
	case f.passwordFile == "":
		return usagef("client-key create needs --password-file FILE")
	case f.out == "":
		return usagef("client-key create needs --out FILE: the private key is shown only once")
	}
	if f.notAfter != "" {
		if _, err := time.Parse(time.RFC3339, f.notAfter); err != nil {
			return usagef("--not-after: %q is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z)", f.notAfter)
		}
	}
	password, err := readPassword(f.passwordFile)
	if err != nil {
		return err
	}
	c, err := newClient(g, true)
	if err != nil {
		return err
	}
	// Claimed before the request: a refusal afterwards would lose the only
	// copy of the private key.
	sf, err := createSecretFile(f.out)
	if err != nil {
		return err
	}
	defer sf.abandon()
	params := map[string]string{"AapName": f.aap, "Password": password}
	if f.notAfter != "" {
		params["NotAfter"] = f.notAfter
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	resp, err := c.Call(ctx, "CreateClientKey", params)
	if err != nil {
		return explain(err, c.Endpoint)
	}
	var r struct{ ClientKeyId, PrivateKeyData, NotBefore, NotAfter string }
	if err := json.Unmarshal(resp.Body, &r); err != nil || r.ClientKeyId == "" || r.PrivateKeyData == "" {
		return fmt.Errorf("unexpected CreateClientKey answer from %s", c.Endpoint)
	}
	return sf.writeNoted(map[string]any{"KeyId": r.ClientKeyId, "PrivateKeyData": r.PrivateKeyData}, stdout, stderr,
		fmt.Sprintf("client key %s (valid %s to %s) written to %s (mode 0600); give it to the instance SDK as ClientKeyFile with the same password\n",
			r.ClientKeyId, r.NotBefore, r.NotAfter, f.out))
}
