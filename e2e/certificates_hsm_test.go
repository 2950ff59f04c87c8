//go:build cgo

package e2e

import (
	"crypto/rand"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/hsm/hsmtest"
)

// Issue 13, certificates of a hardware instance, with a real kmsd process
// and SoftHSM: the same openssl checks as TestCertificates_OpenSSL for
// every key spec, the key pairs generated and used in the token of the
// instance's HSM domain (the node's HSM metrics count the operations).
func TestCertificates_OpenSSLHardwareInstance(t *testing.T) {
	soft := hsmtest.New(t, "e2e-cert")
	pin := soft.PinFile(t)
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := hsmtest.DomainKeyFile(t, key)
	out, err := exec.Command(kmsdBin, "hsm", "enroll", "--hsm-module", soft.Module, "--hsm-token-label", "e2e-cert",
		"--hsm-pin-file", pin, "--domain", "d1", "--domain-key-file", keyFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `domain "d1" enrolled`) {
		t.Fatalf("kmsd hsm enroll: %v\n%s", err, out)
	}
	c := startClusterWith(t, "certhsm", 1, "", []string{"--hsm-module", soft.Module, "--hsm-token-label", "e2e-cert",
		"--hsm-pin-file", pin, "--hsm-domain", "d1"})
	c.Init()
	n := c.Nodes[0]
	var inst struct{ InstanceId, Type, HsmDomain string }
	eventually(t, 20*time.Second, "a hardware instance of d1", func() error {
		r := c.Ctl(n, "operator", "instance", "create", "--type", "hardware", "--hsm-domain", "d1")
		if r.Code != 0 {
			return errorString(r.String())
		}
		r.ok(t, &inst)
		return nil
	})
	if inst.Type != "hardware" || inst.HsmDomain != "d1" {
		t.Fatalf("instance create printed %+v", inst)
	}
	dir := newOpenSSLCA(t)
	before := hsmOps(t, n)
	for _, tc := range certificateSpecs {
		t.Run(tc.spec, func(t *testing.T) {
			certificateWithOpenSSL(t, c, n, dir, tc.spec, tc.algs, inst.InstanceId)
		})
	}
	// Per spec: a generation and the CSR's signature at least, plus each
	// signature and decryption.
	if after := hsmOps(t, n); after < before+2*float64(len(certificateSpecs)) {
		t.Fatalf("the token ran %v operations for %d certificates", after-before, len(certificateSpecs))
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// hsmOps is the number of operations the node's token ran (its metrics).
func hsmOps(t *testing.T, n *kmsdNode) float64 {
	t.Helper()
	text := metricsText(http.DefaultClient, n.Endpoint())
	if !strings.Contains(text, "kms_hsm_operations_total") {
		t.Fatalf("the node's /metrics has no kms_hsm_operations_total:\n%.2000s", text)
	}
	return metricSum(text, "kms_hsm_operations_total")
}
