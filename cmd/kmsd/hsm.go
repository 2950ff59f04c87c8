package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/hsm"
)

// hsmConfig is the HSM part of kmsd's flags.
type hsmConfig struct {
	module     string // --hsm-module
	tokenLabel string // --hsm-token-label
	pinFile    string // --hsm-pin-file
	domain     string // --hsm-domain
	seal       string // --seal: keyfile | pkcs11
	sealedFile string // --sealed-root-key-file
}

const (
	sealKeyFile = "keyfile"
	sealPKCS11  = "pkcs11"
)

// errNoCgo is what a binary built without cgo says when asked for an HSM.
var errNoCgo = fmt.Errorf("built without cgo: no HSM support (%w)", hsm.ErrNoHSMSupport)

func (h *hsmConfig) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&h.module, "hsm-module", "", "PKCS#11 library of this node's HSM (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so); serves the hardware keys of --hsm-domain")
	fs.StringVar(&h.tokenLabel, "hsm-token-label", "", "label of the HSM token to use")
	fs.StringVar(&h.pinFile, "hsm-pin-file", "", "file holding the token's user PIN")
	fs.StringVar(&h.domain, "hsm-domain", "", "HSM domain this node's token is enrolled in (kmsd hsm enroll); advertised to the cluster")
	fs.StringVar(&h.seal, "seal", sealKeyFile, "how the root key reaches this node: keyfile (--root-key-file) or pkcs11 (--sealed-root-key-file, opened by the HSM)")
	fs.StringVar(&h.sealedFile, "sealed-root-key-file", "", "with --seal pkcs11: the root key sealed by the HSM domain's tokens (default <data-dir>/root-key.sealed; created with a new root key if missing; kmsd hsm seal-root makes one from an existing root key)")
}

// attached reports whether any HSM flag was given.
func (h *hsmConfig) attached() bool {
	return h.module != "" || h.tokenLabel != "" || h.pinFile != "" || h.domain != "" || h.seal == sealPKCS11
}

// check validates the HSM flags together with the rest of the config.
func (h *hsmConfig) check(c *config) error {
	switch h.seal {
	case sealKeyFile, sealPKCS11:
	default:
		return fmt.Errorf("--seal must be keyfile or pkcs11, not %q", h.seal)
	}
	if !h.attached() {
		if h.sealedFile != "" {
			return errors.New("--sealed-root-key-file needs --seal pkcs11")
		}
		return nil
	}
	if !hsmBuilt {
		return errNoCgo
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"--hsm-module", h.module}, {"--hsm-token-label", h.tokenLabel}, {"--hsm-pin-file", h.pinFile}, {"--hsm-domain", h.domain},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("an HSM needs --hsm-module, --hsm-token-label, --hsm-pin-file and --hsm-domain; missing %s", strings.Join(missing, ", "))
	}
	if h.seal == sealPKCS11 && c.rootKeyFile != "" {
		return errors.New("--seal pkcs11 does not read --root-key-file: the root key comes from --sealed-root-key-file (seal an existing one with: kmsd hsm seal-root --root-key-file FILE ...)")
	}
	if h.seal != sealPKCS11 && h.sealedFile != "" {
		return errors.New("--sealed-root-key-file needs --seal pkcs11")
	}
	return nil
}

// tokenConfig is the hsm.Config of the node's token.
func (h *hsmConfig) tokenConfig() *hsm.Config {
	if h.module == "" {
		return nil
	}
	return &hsm.Config{ModulePath: h.module, TokenLabel: h.tokenLabel, PinFile: h.pinFile}
}

// The sealed root key (--seal pkcs11).
//
// A root key sealed by an HSM domain is a file holding:
//   - an AES-256 sealing key generated inside a token of the domain and
//     stored only wrapped under the domain key (RFC 5649, as hardware keys
//     are), and
//   - the root key encrypted with AES-256-GCM by that sealing key inside the
//     token, with a fresh 12-byte IV and the associated data
//     "raftkms sealed root key v1" 0x00 <domain>,
//   - the root key's check value, to refuse a file that opens into another
//     root key than expected (it is public: the catalogue and snapshots carry
//     it too).
//
// Only a token enrolled in the domain can open it, so the file can be copied
// to every node of the cluster; each node's token must be enrolled in the
// domain (kmsd hsm enroll with the same domain key file). The root key is in
// the clear only in kmsd's memory, never on disk.
type sealedRootKey struct {
	Format           string
	Domain           string
	DomainCheckValue string // hex KCV of the domain key that wraps SealingKey
	SealingKey       []byte // AES-256 wrapped under the domain key
	IV               []byte
	Ciphertext       []byte // AES-GCM(sealing key, root key) ‖ tag
	RootCheckValue   string // hex
}

const sealedFormat = "raftkms-sealed-root-key-v1"

func sealAAD(domain string) []byte { return []byte("raftkms sealed root key v1\x00" + domain) }

// sealRef is how the token sees the sealing key (a cache id of its own).
func sealRef(s *sealedRootKey) hsm.KeyRef {
	return hsm.KeyRef{ID: "raftkms-root-seal:" + hex.EncodeToString(s.IV), Domain: s.Domain, Spec: hsm.SpecAES256, Usage: hsm.UsageEncrypt, Wrapped: s.SealingKey}
}

// sealRoot seals raw (32 bytes) under a new sealing key made in tok.
func sealRoot(ctx context.Context, tok *hsm.Token, domain string, raw []byte) (*sealedRootKey, error) {
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		return nil, err
	}
	kcv, err := tok.DomainCheckValue(ctx, domain)
	if err != nil {
		return nil, fmt.Errorf("HSM domain %q: %w", domain, err)
	}
	g, err := tok.GenerateKey(ctx, domain, hsm.SpecAES256, hsm.UsageEncrypt)
	if err != nil {
		return nil, fmt.Errorf("generate the sealing key: %w", err)
	}
	iv, err := kcrypto.RandomBytes(hsm.GCMIVSize)
	if err != nil {
		return nil, err
	}
	s := &sealedRootKey{
		Format: sealedFormat, Domain: domain, DomainCheckValue: hex.EncodeToString(kcv),
		SealingKey: g.Wrapped, IV: iv, RootCheckValue: hex.EncodeToString(root.CheckValue()),
	}
	ref := sealRef(s)
	defer tok.Forget(ref.ID)
	if s.Ciphertext, err = tok.Encrypt(ctx, ref, iv, raw, sealAAD(domain)); err != nil {
		return nil, fmt.Errorf("seal the root key: %w", err)
	}
	return s, nil
}

// unsealRoot opens a sealed root key with tok.
func unsealRoot(ctx context.Context, tok *hsm.Token, s *sealedRootKey) (*kcrypto.RootKey, error) {
	if s.Format != sealedFormat {
		return nil, fmt.Errorf("not a sealed root key (format %q)", s.Format)
	}
	ref := sealRef(s)
	defer tok.Forget(ref.ID)
	raw, err := tok.Decrypt(ctx, ref, s.IV, s.Ciphertext, sealAAD(s.Domain))
	if err != nil {
		if errors.Is(err, hsm.ErrUnwrap) || errors.Is(err, hsm.ErrDomainNotEnrolled) {
			return nil, fmt.Errorf("this token cannot open the sealed root key: it is sealed by HSM domain %q (key check value %s); enroll this token in that domain with the domain's key: %w",
				s.Domain, s.DomainCheckValue, err)
		}
		return nil, fmt.Errorf("open the sealed root key: %w", err)
	}
	defer clear(raw)
	root, err := kcrypto.NewRootKey(raw)
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(root.CheckValue()) != s.RootCheckValue {
		return nil, errors.New("the sealed root key opened into a key with another check value than the file states: the file is damaged")
	}
	return root, nil
}

func readSealed(path string) (*sealedRootKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s sealedRootKey
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s is not a sealed root key file: %v", path, err)
	}
	return &s, nil
}

// writeSealed writes s to path (mode 0600), refusing to overwrite.
func writeSealed(path string, s *sealedRootKey) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create sealed root key file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (h *hsmConfig) sealedPath(dataDir string) string {
	if h.sealedFile != "" {
		return h.sealedFile
	}
	return filepath.Join(dataDir, "root-key.sealed")
}

// loadSealedRootKey is --seal pkcs11: the root key from the sealed file,
// opened by this node's token; a missing file is a new cluster's first
// node, which makes a root key and seals it there.
func loadSealedRootKey(cfg config, logger hclog.Logger) (*kcrypto.RootKey, error) {
	h := cfg.hsm
	path := h.sealedPath(cfg.dataDir)
	tok, err := hsm.Open(hsm.Config{ModulePath: h.module, TokenLabel: h.tokenLabel, PinFile: h.pinFile, PoolSize: 1, HealthInterval: -1, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("--seal pkcs11: open the HSM: %w", err)
	}
	defer tok.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := readSealed(path)
	if errors.Is(err, os.ErrNotExist) {
		raw, err := kcrypto.RandomBytes(kcrypto.RootKeySize)
		if err != nil {
			return nil, err
		}
		defer clear(raw)
		if s, err = sealRoot(ctx, tok, h.domain, raw); err != nil {
			return nil, fmt.Errorf("--seal pkcs11: %w", err)
		}
		if err := writeSealed(path, s); err != nil {
			return nil, err
		}
		logger.Warn("generated a new root key sealed by the HSM: copy this file to the cluster's other nodes (it opens only in a token of the domain)",
			"path", path, "domain", h.domain)
		return kcrypto.NewRootKey(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("--seal pkcs11: %w", err)
	}
	root, err := unsealRoot(ctx, tok, s)
	if err != nil {
		return nil, fmt.Errorf("--seal pkcs11 (%s): %w", path, err)
	}
	logger.Info("root key unsealed by the HSM", "path", path, "domain", s.Domain)
	return root, nil
}

const hsmUsage = `kmsd hsm — HSM administration.

Enroll a token in an HSM domain (import the domain key as a wrap/unwrap-only,
non-extractable object; run it once per token, with the same key file for every
token of the domain):
  head -c 32 /dev/urandom | base64 > domain.key && chmod 600 domain.key
  kmsd hsm enroll --hsm-module /usr/lib/softhsm/libsofthsm2.so --hsm-token-label node1 \
       --hsm-pin-file pin.txt --domain prod --domain-key-file domain.key

Seal a root key with an HSM domain, for nodes started with --seal pkcs11
(the output opens only in a token enrolled in the domain):
  kmsd hsm seal-root --hsm-module ... --hsm-token-label node1 --hsm-pin-file pin.txt \
       --domain prod --root-key-file root.key --out root-key.sealed

Initialize a free token (SoftHSM: a fresh token directory) with a label and a
random user PIN written to a new file (mode 0600; the SO PIN is not kept); run
again, it keeps both. For one-shot containers, which have no shell:
  kmsd hsm init-token --hsm-module /usr/lib/softhsm/libsofthsm2.so \
       --hsm-token-label node1 --hsm-pin-file pin.txt

`

// runHSMCommand is "kmsd hsm ...". It returns the process exit code.
func runHSMCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, hsmUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch args[0] {
	case "enroll":
		err = hsmEnroll(args[1:], stdout, stderr)
	case "seal-root":
		err = hsmSealRoot(args[1:], stdout, stderr)
	case "init-token":
		err = hsmInitToken(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "kmsd hsm: unknown command %q (enroll, seal-root, init-token)\n", args[0])
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "kmsd hsm:", err)
		return 1
	}
	return 0
}

func hsmFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *hsm.EnrollOptions) {
	o := &hsm.EnrollOptions{}
	fs := flag.NewFlagSet("kmsd hsm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ModulePath, "hsm-module", "", "PKCS#11 library")
	fs.StringVar(&o.TokenLabel, "hsm-token-label", "", "label of the token")
	fs.StringVar(&o.PinFile, "hsm-pin-file", "", "file holding the token's user PIN")
	fs.StringVar(&o.Domain, "domain", "", "HSM domain name")
	return fs, o
}

func hsmEnroll(args []string, stdout, stderr io.Writer) error {
	fs, o := hsmFlagSet("enroll", stderr)
	fs.StringVar(&o.DomainKeyFile, "domain-key-file", "", "file holding base64 of the 32-byte domain key (the same for every token of the domain)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if !hsmBuilt {
		return errNoCgo
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := hsm.RunEnroll(ctx, *o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.String())
	return nil
}

// hsmInitToken is `kmsd hsm init-token`: a free token of the module gets
// the label and a random user PIN, written to --hsm-pin-file (for one-shot
// containers, which have no shell to choose a PIN and pass it on).
func hsmInitToken(args []string, stdout, stderr io.Writer) error {
	fs, o := hsmFlagSet("init-token", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if !hsmBuilt {
		return errNoCgo
	}
	existed, err := hsm.InitToken(o.ModulePath, o.TokenLabel, o.PinFile)
	if err != nil {
		return err
	}
	if existed {
		fmt.Fprintf(stdout, "token %q exists; kept it and %s\n", o.TokenLabel, o.PinFile)
		return nil
	}
	fmt.Fprintf(stdout, "token %q initialized; its user PIN is in %s (mode 0600)\n", o.TokenLabel, o.PinFile)
	return nil
}

func hsmSealRoot(args []string, stdout, stderr io.Writer) error {
	fs, o := hsmFlagSet("seal-root", stderr)
	var rootFile, out string
	var generate bool
	fs.StringVar(&rootFile, "root-key-file", "", "the root key to seal (base64 of 32 bytes)")
	fs.BoolVar(&generate, "generate", false, "seal a new random root key instead (a new cluster)")
	fs.StringVar(&out, "out", "", "where to write the sealed root key (not overwritten)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if !hsmBuilt {
		return errNoCgo
	}
	switch {
	case o.ModulePath == "" || o.TokenLabel == "" || o.PinFile == "" || o.Domain == "":
		return errors.New("seal-root needs --hsm-module, --hsm-token-label, --hsm-pin-file and --domain")
	case out == "":
		return errors.New("seal-root needs --out FILE")
	case (rootFile == "") == !generate:
		return errors.New("seal-root needs either --root-key-file FILE or --generate")
	}
	var raw []byte
	if generate {
		var err error
		if raw, err = kcrypto.RandomBytes(kcrypto.RootKeySize); err != nil {
			return err
		}
	} else {
		data, err := os.ReadFile(rootFile)
		if err != nil {
			return fmt.Errorf("read root key file: %w", err)
		}
		raw, err = base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
		if err != nil || len(raw) != kcrypto.RootKeySize {
			return fmt.Errorf("%w (%s)", kcrypto.ErrBadRootKeyFile, rootFile)
		}
	}
	defer clear(raw)
	tok, err := hsm.Open(hsm.Config{ModulePath: o.ModulePath, TokenLabel: o.TokenLabel, PinFile: o.PinFile, PoolSize: 1, HealthInterval: -1})
	if err != nil {
		return err
	}
	defer tok.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := sealRoot(ctx, tok, o.Domain, raw)
	if err != nil {
		return err
	}
	if err := writeSealed(out, s); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "root key (check value %s) sealed by HSM domain %q into %s\n", s.RootCheckValue, o.Domain, out)
	return nil
}
