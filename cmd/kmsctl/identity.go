package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// accountCommand is `kmsctl operator account create [--name N] [--out FILE]`.
func accountCommand(g *globals, stdout, stderr io.Writer) *cobra.Command {
	acct := &cobra.Command{
		Use:   "account",
		Short: "Manage accounts (operator account root only)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return usagef("account needs a subcommand: create") },
	}
	var name, out string
	create := &cobra.Command{
		Use:   "create [--name N] [--out FILE]",
		Short: "Create an account and write its root's first access key, once",
		Long: `Create an account and write its root's first access key as a credentials file
for the new account — the only time the secret is shown:

  kmsctl operator account create --name payments --out payments.json

--out writes FILE with mode 0600 and never overwrites an existing file (the
check comes before the account is created). Without --out the credentials
are printed on stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(g, true)
			if err != nil {
				return err
			}
			sf, err := createSecretFile(out)
			if err != nil {
				return err
			}
			defer sf.abandon()
			ctx, cancel := requestContext(g)
			defer cancel()
			q := url.Values{}
			if name != "" {
				q.Set("Name", name)
			}
			m, _, err := doJSON(ctx, c, http.MethodPost, "/v1/operator/accounts", q, nil, true)
			if err != nil {
				return err
			}
			// The same shape as operator init's output, so the output is a
			// credentials file for the new account.
			return sf.write(map[string]any{
				"AccountId": m["AccountId"], "AccessKeyId": m["AccessKeyId"], "AccessKeySecret": m["AccessKeySecret"],
				"Endpoint": c.Endpoint,
			}, stdout, stderr)
		},
	}
	create.Flags().StringVar(&name, "name", "", "account name")
	create.Flags().StringVar(&out, "out", "", "write the credentials to this new file (mode 0600) instead of stdout")
	acct.AddCommand(create)
	return acct
}

// Action sets of the console's three key roles. Administrators manage a key
// but cannot use it; users use it but cannot manage it; cross-account users
// may encrypt and decrypt.
var (
	adminActions = []string{
		"kms:List*", "kms:Describe*", "kms:Create*", "kms:Enable*", "kms:Disable*", "kms:Get*", "kms:Set*",
		"kms:Update*", "kms:Delete*", "kms:Cancel*", "kms:TagResource", "kms:UntagResource",
		"kms:ImportKeyMaterial", "kms:ScheduleKeyDeletion",
	}
	userActions = []string{
		"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
		"kms:ReEncrypt*", "kms:AsymmetricEncrypt", "kms:AsymmetricDecrypt", "kms:AsymmetricSign",
		"kms:AsymmetricVerify", "kms:GetPublicKey", "kms:GenerateMac", "kms:VerifyMac",
	}
	crossAccountActions = []string{"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"}
)

// keyPolicyCommand is `kmsctl key-policy set --KeyId K [--administrators
// ARN,…] [--users ARN,…] [--cross-account-users ARN,…]`: it writes the
// policy document the console's three roles stand for.
func keyPolicyCommand(g *globals, stdout io.Writer) *cobra.Command {
	kp := &cobra.Command{
		Use:   "key-policy",
		Short: "Set a key's policy from the console's roles: administrators, users, cross-account users",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return usagef("key-policy needs a subcommand: set") },
	}
	var keyID, admins, users, cross string
	set := &cobra.Command{
		Use:   "set --KeyId K [--administrators ARN,...] [--users ARN,...] [--cross-account-users ARN,...]",
		Short: "Replace a key's policy with one that grants the three roles",
		Long: `Replace a key's policy. The owner account keeps its RAM-governed access; the
named administrators may manage the key (list, describe, enable, disable, tag,
rotate, schedule deletion, ...) but not use it; the named users may use it
(encrypt, decrypt, data keys, sign, verify) but not manage it; cross-account
users (principals of other accounts, e.g. acs:ram::<uid>:role/<name>) may
encrypt and decrypt, and each uses one unit of the instance's access
management quota.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyID == "" {
				return usagef("key-policy set needs --KeyId")
			}
			c, err := newClient(g, true)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
			defer cancel()
			resp, err := c.Call(ctx, "DescribeKey", map[string]string{"KeyId": keyID})
			if err != nil {
				return explain(err, c.Endpoint)
			}
			var d struct{ KeyMetadata struct{ KeyId, Arn string } }
			if err := json.Unmarshal(resp.Body, &d); err != nil {
				return err
			}
			// acs:kms:<region>:<account>:key/<id>
			parts := strings.SplitN(d.KeyMetadata.Arn, ":", 5)
			if len(parts) != 5 {
				return fmt.Errorf("unexpected key ARN %q", d.KeyMetadata.Arn)
			}
			doc, err := rolePolicy(parts[3], splitList(admins), splitList(users), splitList(cross))
			if err != nil {
				return err
			}
			resp, err = c.Call(ctx, "SetKeyPolicy", map[string]string{"KeyId": d.KeyMetadata.KeyId, "PolicyName": "default", "Policy": doc})
			if err != nil {
				return explain(err, c.Endpoint)
			}
			printJSON(stdout, resp.Body)
			return nil
		},
	}
	set.Flags().StringVar(&keyID, "KeyId", "", "the key: id, alias or ARN")
	set.Flags().StringVar(&admins, "administrators", "", "comma-separated principal ARNs that manage the key")
	set.Flags().StringVar(&users, "users", "", "comma-separated principal ARNs that use the key")
	set.Flags().StringVar(&cross, "cross-account-users", "", "comma-separated principal ARNs of other accounts that may encrypt and decrypt")
	kp.AddCommand(set)
	return kp
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func rolePolicy(owner string, admins, users, cross []string) (string, error) {
	type statement struct {
		Sid       string              `json:"Sid"`
		Effect    string              `json:"Effect"`
		Principal map[string][]string `json:"Principal"`
		Action    []string            `json:"Action"`
		Resource  []string            `json:"Resource"`
	}
	sts := []statement{{Sid: "Enable User Permissions", Effect: "Allow", Principal: map[string][]string{"RAM": {"acs:ram::" + owner + ":*"}}, Action: []string{"kms:*"}, Resource: []string{"*"}}}
	for _, l := range [][]string{admins, users, cross} {
		for _, p := range l {
			if !strings.HasPrefix(p, "acs:ram::") {
				return "", usagef("%q is not a principal ARN like acs:ram::<account>:user/<name>", p)
			}
		}
	}
	for _, p := range cross {
		if strings.HasPrefix(p, "acs:ram::"+owner+":") {
			return "", usagef("%q is in the key's own account; name it under --users", p)
		}
	}
	if len(admins) > 0 {
		sts = append(sts, statement{Sid: "Key Administrators", Effect: "Allow", Principal: map[string][]string{"RAM": admins}, Action: adminActions, Resource: []string{"*"}})
	}
	if len(users) > 0 {
		sts = append(sts, statement{Sid: "Key Users", Effect: "Allow", Principal: map[string][]string{"RAM": users}, Action: userActions, Resource: []string{"*"}})
	}
	if len(cross) > 0 {
		sts = append(sts, statement{Sid: "Cross-account Users", Effect: "Allow", Principal: map[string][]string{"RAM": cross}, Action: crossAccountActions, Resource: []string{"*"}})
	}
	b, err := json.Marshal(map[string]any{"Version": "1", "Statement": sts})
	return string(b), err
}

// rateLimitCommand is `kmsctl operator ratelimit set|get`.
func rateLimitCommand(g *globals, stdout io.Writer) *cobra.Command {
	rl := &cobra.Command{
		Use:   "ratelimit",
		Short: "Per-account request rate limits by action class (enforced on every node)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return usagef("ratelimit needs a subcommand: set or get") },
	}
	var account, class string
	var rate float64
	set := &cobra.Command{
		Use:   "set --account ID --class symmetric|asymmetric|read|write --rate N",
		Short: "Limit an account to N requests per second of one class on each node (0 removes the limit)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if account == "" || class == "" || !cmd.Flags().Changed("rate") {
				return usagef("ratelimit set needs --account, --class and --rate")
			}
			q := url.Values{"AccountId": {account}, "Class": {class}, "Rate": {fmt.Sprint(rate)}}
			return operatorCall(g, http.MethodPost, "/v1/operator/ratelimits", q, stdout)
		},
	}
	set.Flags().StringVar(&account, "account", "", "account id")
	set.Flags().StringVar(&class, "class", "", "symmetric (Encrypt, Decrypt, data keys), asymmetric (sign, verify, RSA), read (Describe/List/Get), write (the rest)")
	set.Flags().Float64Var(&rate, "rate", 0, "requests per second per node; 0 removes the limit")
	get := &cobra.Command{
		Use:   "get [--account ID]",
		Short: "Show an account's limits (default: your own)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if account != "" {
				q.Set("AccountId", account)
			}
			return operatorCall(g, http.MethodGet, "/v1/operator/ratelimits", q, stdout)
		},
	}
	get.Flags().StringVar(&account, "account", "", "account id")
	rl.AddCommand(set, get)
	return rl
}
