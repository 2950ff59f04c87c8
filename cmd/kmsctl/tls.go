package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// tlsCommand is `kmsctl operator tls ...`: a private CA and node
// certificates for a cluster, made locally.
func tlsCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Make a CA and node certificates for HTTPS and mutual TLS between nodes (local files)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("tls needs a subcommand: create-ca DIR, or create-cert --ca DIR --name NODE --ip IP[,IP...] OUTDIR")
		},
	}
	var caOpts certOptions
	createCA := &cobra.Command{
		Use:   "create-ca DIR",
		Short: "Make a certificate authority: writes DIR/ca.crt and DIR/ca.key",
		Long: `Make a private certificate authority for one cluster: DIR/ca.crt (give it to
every node as --cluster-ca-file and to clients as --ca-file) and DIR/ca.key
(mode 0600; it signs node certificates — keep it off the nodes). The key is
ECDSA P-256. Existing files are not overwritten unless --force.`,
		Args: exactArgs(1, "tls create-ca needs the DIR to write ca.crt and ca.key into"),
		RunE: func(_ *cobra.Command, args []string) error { return createCAFiles(args[0], caOpts, stdout) },
	}
	createCA.Flags().IntVar(&caOpts.days, "days", 3650, "validity in days")
	createCA.Flags().StringVar(&caOpts.name, "name", "raftkms cluster CA", "the CA's common name")
	createCA.Flags().BoolVar(&caOpts.force, "force", false, "overwrite existing files")
	createCA.Flags().BoolVar(&caOpts.keep, "keep-existing", false, "exit 0 without writing when both files exist (for init containers that run again)")

	var certOpts certOptions
	var caDir, ips string
	createCert := &cobra.Command{
		Use:   "create-cert --ca DIR --name NODE --ip IP[,IP...] OUTDIR",
		Short: "Make a node certificate signed by the CA: writes OUTDIR/NODE.crt and OUTDIR/NODE.key",
		Long: `Make a certificate for one node, signed by the CA in DIR (from create-ca):
OUTDIR/NODE.crt and OUTDIR/NODE.key (mode 0600), PEM, ECDSA P-256. It serves
both as the node's server certificate (API and cluster port) and as its
client certificate towards other nodes (extended key usage server and client
auth). Its names: the --ip addresses, NODE as a DNS name, and 127.0.0.1, ::1
and localhost so that the node can also be reached on loopback. Every address
that clients or peers dial (the --http-addr and --cluster-addr hosts) must be
among them. Existing files are not overwritten unless --force.`,
		Args: exactArgs(1, "tls create-cert needs the OUTDIR to write NODE.crt and NODE.key into"),
		RunE: func(_ *cobra.Command, args []string) error {
			return createCertFiles(caDir, args[0], ips, certOpts, stdout)
		},
	}
	createCert.Flags().StringVar(&caDir, "ca", "", "directory holding ca.crt and ca.key (from create-ca)")
	createCert.Flags().StringVar(&certOpts.name, "name", "", "node name: file names, common name and DNS name of the certificate")
	createCert.Flags().StringVar(&ips, "ip", "", "IP addresses of the node, comma-separated")
	createCert.Flags().StringVar(&certOpts.dns, "dns", "", "more DNS names, comma-separated")
	createCert.Flags().IntVar(&certOpts.days, "days", 825, "validity in days")
	createCert.Flags().BoolVar(&certOpts.force, "force", false, "overwrite existing files")
	createCert.Flags().BoolVar(&certOpts.keep, "keep-existing", false, "exit 0 without writing when both files exist (for init containers that run again)")
	cmd.AddCommand(createCA, createCert)
	return cmd
}

type certOptions struct {
	name  string
	dns   string
	days  int
	force bool
	keep  bool // --keep-existing
}

// nodeName is what may name a node's files and DNS name.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

func createCAFiles(dir string, o certOptions, stdout io.Writer) error {
	if o.days <= 0 {
		return usagef("--days must be positive")
	}
	crtPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if keepExisting(o, stdout, crtPath, keyPath) {
		return nil
	}
	if err := refuseOverwrite(o.force, crtPath, keyPath); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.name},
		NotBefore:             now.Add(-time.Hour), // other machines' clocks
		NotAfter:              now.AddDate(0, 0, o.days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // signs node certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := writeKeyPair(dir, crtPath, keyPath, der, key); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote %s (the CA certificate: --cluster-ca-file for every node, --ca-file for clients)\n", crtPath)
	fmt.Fprintf(stdout, "Wrote %s (the CA's private key, mode 0600: it signs node certificates; keep it off the nodes)\n", keyPath)
	return nil
}

func createCertFiles(caDir, outDir, ipList string, o certOptions, stdout io.Writer) error {
	if caDir == "" {
		return usagef("tls create-cert needs --ca DIR (the directory create-ca wrote)")
	}
	if o.name == "" {
		return usagef("tls create-cert needs --name NODE")
	}
	if !nodeName.MatchString(o.name) {
		return usagef("--name %q: use letters, digits, '.' and '-' (it names files and is the certificate's DNS name)", o.name)
	}
	if o.days <= 0 {
		return usagef("--days must be positive")
	}
	ipSet := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, s := range splitCSV(ipList) {
		ip := net.ParseIP(s)
		if ip == nil {
			return usagef("--ip: %q is not an IP address", s)
		}
		ipSet = appendUniqueIP(ipSet, ip)
	}
	dnsSet := []string{o.name}
	for _, d := range append(splitCSV(o.dns), "localhost") {
		if !nodeName.MatchString(d) {
			return usagef("--dns: %q is not a DNS name", d)
		}
		if !containsNameFold(dnsSet, d) {
			dnsSet = append(dnsSet, d)
		}
	}
	caCert, caKey, err := loadCA(caDir)
	if err != nil {
		return err
	}
	crtPath, keyPath := filepath.Join(outDir, o.name+".crt"), filepath.Join(outDir, o.name+".key")
	if keepExisting(o, stdout, crtPath, keyPath) {
		return nil
	}
	if err := refuseOverwrite(o.force, crtPath, keyPath); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	notAfter := now.AddDate(0, 0, o.days)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  ipSet,
		DNSNames:     dnsSet,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writeKeyPair(outDir, crtPath, keyPath, der, key); err != nil {
		return err
	}
	names := make([]string, 0, len(ipSet)+len(dnsSet))
	for _, ip := range ipSet {
		names = append(names, ip.String())
	}
	names = append(names, dnsSet...)
	fmt.Fprintf(stdout, "Wrote %s (node certificate for %s, valid until %s)\n", crtPath, strings.Join(names, ", "), notAfter.UTC().Format("2006-01-02"))
	fmt.Fprintf(stdout, "Wrote %s (its private key, mode 0600)\n", keyPath)
	return nil
}

func loadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	crtPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, nil, usagef("--ca %s: %v (make a CA with: kmsctl operator tls create-ca %s)", dir, err, dir)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, nil, usagef("--ca %s: %v", dir, err)
	}
	cb, _ := pem.Decode(crtPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", filepath.Join(dir, "ca.crt"))
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, "ca.crt"), err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, "ca.crt"))
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%s: no PEM private key", filepath.Join(dir, "ca.key"))
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			return nil, nil, fmt.Errorf("%s: not a PKCS#8 or EC private key", filepath.Join(dir, "ca.key"))
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: unsupported key type", filepath.Join(dir, "ca.key"))
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not belong to %s", filepath.Join(dir, "ca.key"), filepath.Join(dir, "ca.crt"))
	}
	return cert, signer, nil
}

// refuseOverwrite fails if any of paths exists, unless force.
// keepExisting reports whether --keep-existing (without --force) applies:
// every path exists, so nothing is to be written.
func keepExisting(o certOptions, stdout io.Writer, paths ...string) bool {
	if !o.keep || o.force {
		return false
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			return false
		}
	}
	fmt.Fprintf(stdout, "Kept %s (they exist)\n", strings.Join(paths, " and "))
	return true
}

func refuseOverwrite(force bool, paths ...string) error {
	if force {
		return nil
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s already exists; nothing was written (use --force to replace it)", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeKeyPair writes the certificate (0644) and the private key (0600) as
// PEM, each through a temporary file and a rename, so a failure never
// leaves half a file under either name.
func writeKeyPair(dir, crtPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	clear(keyDER)
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	clear(keyPEM)
	return writeFileAtomic(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; the mode is set before any
	// byte is written.
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func splitCSV(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func appendUniqueIP(ips []net.IP, ip net.IP) []net.IP {
	for _, have := range ips {
		if have.Equal(ip) {
			return ips
		}
	}
	return append(ips, ip)
}

func containsNameFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
