package kms

import "fmt"

// The operator account is the account `kmsctl operator init` creates. Its
// root is the only identity allowed the cluster-wide operations: snapshot
// save and restore, creating accounts, setting any account's rate and
// instance limits and reading other accounts' limits.

// IsOperator reports whether the caller is the operator account's root.
func (s *Service) IsOperator(c Caller) bool {
	a, ok := s.fsm.Account(c.AccountID)
	return ok && a.Operator && c.Principal == rootPrincipal(c.AccountID)
}

// requireOperator refuses what with ErrNoPermission unless the caller is
// the operator account's root.
func (s *Service) requireOperator(c Caller, what string) error {
	if !s.IsOperator(c) {
		return fmt.Errorf("%w: %s is reserved to the operator account's root credentials", ErrNoPermission, what)
	}
	return nil
}
