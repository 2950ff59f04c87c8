package kms

import (
	"fmt"
	"strings"

	kcrypto "github.com/raftkms/raftkms/crypto"
)

// specInfo says what a key spec allows in a software instance.
type specInfo struct {
	usages       []string // allowed, the first is the default
	rotates      bool     // automatic rotation possible (symmetric only)
	softwareOnly bool
	hsmOnly      bool
}

var specs = map[string]specInfo{
	kcrypto.SpecAES256:  {usages: []string{UsageEncryptDecrypt}, rotates: true},
	kcrypto.SpecAES128:  {usages: []string{UsageEncryptDecrypt}, rotates: true, hsmOnly: true},
	kcrypto.SpecAES192:  {usages: []string{UsageEncryptDecrypt}, rotates: true, hsmOnly: true},
	kcrypto.SpecRSA2048: {usages: []string{UsageEncryptDecrypt, UsageSignVerify}},
	kcrypto.SpecRSA3072: {usages: []string{UsageEncryptDecrypt, UsageSignVerify}},
	kcrypto.SpecRSA4096: {usages: []string{UsageEncryptDecrypt, UsageSignVerify}},
	kcrypto.SpecECP256:  {usages: []string{UsageSignVerify}},
	kcrypto.SpecECP256K: {usages: []string{UsageSignVerify}},
}

// checkSpecUsage validates KeySpec and KeyUsage together and returns the
// usage to use (the spec's default when none was given).
func checkSpecUsage(spec, usage string, hsm bool) (string, error) {
	info, ok := specs[spec]
	if !ok || (info.hsmOnly && !hsm) {
		names := []string{kcrypto.SpecAES256, kcrypto.SpecRSA2048, kcrypto.SpecRSA3072, kcrypto.SpecRSA4096, kcrypto.SpecECP256, kcrypto.SpecECP256K}
		if ok {
			return "", invalid(FieldKeySpec, fmt.Sprintf("%s exists only in hardware (HSM) instances; software keys use %s", spec, strings.Join(names, ", ")))
		}
		return "", invalid(FieldKeySpec, fmt.Sprintf("%q is not a key spec; use one of %s", spec, strings.Join(names, ", ")))
	}
	if usage == "" {
		return info.usages[0], nil
	}
	for _, u := range info.usages {
		if u == usage {
			return usage, nil
		}
	}
	return "", invalid(FieldKeyUsage, fmt.Sprintf("%s keys support %s, not %q", spec, strings.Join(info.usages, " or "), usage))
}
