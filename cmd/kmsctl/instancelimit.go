package main

import (
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// instanceLimitCommand is `kmsctl operator instance limit`: how many KMS
// instances an account may have (10 until the operator says otherwise).
func instanceLimitCommand(g *globals, stdout io.Writer) *cobra.Command {
	var account string
	var max int
	cmd := &cobra.Command{
		Use:   "limit [--account ID] [--max N]",
		Short: "Show an account's KMS instance limit, or set it (--max, operator only; default 10)",
		Long: `Show how many KMS instances an account may have and how many it has (default:
your own account). With --max, the operator account's root sets the limit for
--account; every node enforces it when an instance is created:

  kmsctl operator instance limit --account 1234567890123456 --max 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if account != "" {
				q.Set("AccountId", account)
			}
			if !cmd.Flags().Changed("max") {
				return operatorCall(g, http.MethodGet, "/v1/operator/instance-limits", q, stdout)
			}
			if account == "" {
				return usagef("instance limit --max needs --account")
			}
			q.Set("MaxInstances", strconv.Itoa(max))
			return operatorCall(g, http.MethodPost, "/v1/operator/instance-limits", q, stdout)
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account id")
	cmd.Flags().IntVar(&max, "max", 0, "how many KMS instances the account may have (1 to 10000)")
	return cmd
}
