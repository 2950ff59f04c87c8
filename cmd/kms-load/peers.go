package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// The peers kms-load also drives, so that one generator measures raftkms
// and the systems it is compared with in the same window (issue 16;
// docs/BENCHMARKS.md): OpenBao's transit engine and local-kms, an AWS KMS
// emulator. Each speaks its own protocol over plain HTTP, keep-alive, with
// the same workers, pacing and latency accounting as the other APIs.
const (
	apiOpenBao  = "openbao"
	apiLocalKMS = "local-kms"
)

// peerActions are the actions a peer is driven with: the crypto of target
// 1 and the durable key creation of target 5.
var peerActions = map[string]bool{"Encrypt": true, "Decrypt": true, "GenerateDataKey": true, "CreateKey": true}

func isPeer(api string) bool { return api == apiOpenBao || api == apiLocalKMS }

// resolvePeer checks the flags for a peer: --endpoints is required (there
// are no credentials to take it from), and OpenBao needs a token, from
// --token-file or BAO_TOKEN / VAULT_TOKEN.
func (o *options) resolvePeer(endpoints, tokenFile string) error {
	if !peerActions[o.action] {
		return fmt.Errorf("--api %s drives Encrypt, Decrypt, GenerateDataKey or CreateKey, not %q", o.api, o.action)
	}
	if o.signature != "v3" || o.clientKeyFile != "" || o.instanceEndpoint != "" || o.instanceCA != "" {
		return fmt.Errorf("--signature, --client-key-file, --instance-endpoint and --instance-ca are not for --api %s", o.api)
	}
	for _, e := range splitEndpoints(endpoints) {
		if e = strings.TrimRight(e, "/"); e != "" {
			if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
				return fmt.Errorf("--endpoints %q: want a URL such as http://127.0.0.1:8200", e)
			}
			o.endpoints = append(o.endpoints, e)
		}
	}
	if len(o.endpoints) == 0 {
		return fmt.Errorf("--api %s needs --endpoints (its URL, e.g. http://127.0.0.1:8200)", o.api)
	}
	if o.api != apiOpenBao {
		if tokenFile != "" {
			return errors.New("--token-file is for --api openbao")
		}
		return nil
	}
	o.token = firstNonEmpty(os.Getenv("BAO_TOKEN"), os.Getenv("VAULT_TOKEN"))
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		o.token = strings.TrimSpace(string(b))
	}
	if o.token == "" {
		return errors.New("--api openbao needs a token: --token-file, or BAO_TOKEN / VAULT_TOKEN")
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// peerError is a refusal by a peer: its HTTP status and, where the
// protocol has one, its error code.
type peerError struct {
	status int
	code   string
}

func (e *peerError) Error() string { return fmt.Sprintf("HTTP %d %s", e.status, e.code) }

// peer is one peer's protocol over a shared keep-alive HTTP client.
type peer struct {
	api   string
	token string
	hc    *http.Client
}

// call posts body as JSON to the peer and decodes a 2xx answer into out
// (nil: drain it). OpenBao: path is the API path; local-kms: the
// TrentService operation.
func (p *peer) call(ctx context.Context, endpoint, op string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	target := endpoint + "/"
	if p.api == apiOpenBao {
		target = endpoint + op
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if p.api == apiOpenBao {
		req.Header.Set("X-Vault-Token", p.token)
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("X-Amz-Target", "TrentService."+op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		e := &peerError{status: resp.StatusCode}
		var awsErr struct {
			Type string `json:"__type"`
		}
		if json.Unmarshal(data, &awsErr) == nil {
			e.code = awsErr.Type
		}
		return e
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

// createKey makes an AES-256 key and returns its name (OpenBao) or id
// (local-kms).
func (p *peer) createKey(ctx context.Context, endpoint, name string) (string, error) {
	if p.api == apiOpenBao {
		return name, p.call(ctx, endpoint, "/v1/transit/keys/"+url.PathEscape(name), map[string]string{"type": "aes256-gcm96"}, nil)
	}
	var out struct{ KeyMetadata struct{ KeyId string } }
	if err := p.call(ctx, endpoint, "CreateKey", map[string]string{"Description": name}, &out); err != nil {
		return "", err
	}
	if out.KeyMetadata.KeyId == "" {
		return "", errors.New("local-kms answered CreateKey without a KeyId")
	}
	return out.KeyMetadata.KeyId, nil
}

// encrypt returns the ciphertext of plaintext (base64) under key.
func (p *peer) encrypt(ctx context.Context, endpoint, key, plaintext string) (string, error) {
	if p.api == apiOpenBao {
		var out struct{ Data struct{ Ciphertext string } }
		err := p.call(ctx, endpoint, "/v1/transit/encrypt/"+url.PathEscape(key), map[string]string{"plaintext": plaintext}, &out)
		return out.Data.Ciphertext, err
	}
	var out struct{ CiphertextBlob string }
	err := p.call(ctx, endpoint, "Encrypt", map[string]string{"KeyId": key, "Plaintext": plaintext}, &out)
	return out.CiphertextBlob, err
}

func loadPeer(o options, stderr io.Writer) (result, error) {
	p := &peer{api: o.api, token: o.token, hc: &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConns: o.concurrency * len(o.endpoints), MaxIdleConnsPerHost: o.concurrency},
	}}
	var run [4]byte
	rand.Read(run[:])
	prefix := "kms-load-" + hex.EncodeToString(run[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := o.keyID
	if key == "" && o.action != "CreateKey" {
		var err error
		if key, err = p.createKey(ctx, o.endpoints[0], prefix); err != nil {
			return result{}, fmt.Errorf("create the run's key: %w", err)
		}
	}
	// The bytes of the OpenAPI run's plaintext of the same size.
	_, pt := plaintextOf(o.size)
	plaintext := base64.StdEncoding.EncodeToString([]byte(pt))
	var ciphertext string
	if o.action == "Decrypt" {
		var err error
		if ciphertext, err = p.encrypt(ctx, o.endpoints[0], key, plaintext); err != nil {
			return result{}, fmt.Errorf("encrypt the ciphertext to decrypt: %w", err)
		}
	}
	var created atomic.Int64
	worker := func(w int) func() error {
		ep := o.endpoints[w%len(o.endpoints)]
		bg := context.Background()
		switch {
		case o.action == "Encrypt":
			return func() error { _, err := p.encrypt(bg, ep, key, plaintext); return err }
		case o.action == "CreateKey":
			return func() error {
				_, err := p.createKey(bg, ep, fmt.Sprintf("%s-%d", prefix, created.Add(1)))
				return err
			}
		case p.api == apiOpenBao && o.action == "Decrypt":
			return func() error {
				return p.call(bg, ep, "/v1/transit/decrypt/"+url.PathEscape(key), map[string]string{"ciphertext": ciphertext}, nil)
			}
		case p.api == apiOpenBao: // GenerateDataKey
			return func() error {
				return p.call(bg, ep, "/v1/transit/datakey/plaintext/"+url.PathEscape(key), map[string]any{}, nil)
			}
		case o.action == "Decrypt":
			return func() error {
				return p.call(bg, ep, "Decrypt", map[string]string{"CiphertextBlob": ciphertext}, nil)
			}
		}
		return func() error {
			return p.call(bg, ep, "GenerateDataKey", map[string]string{"KeyId": key, "KeySpec": "AES_256"}, nil)
		}
	}
	codeOf := func(err error) string {
		var pe *peerError
		if errors.As(err, &pe) {
			if pe.code != "" {
				return pe.code
			}
			return fmt.Sprintf("HTTP %d", pe.status)
		}
		return "transport"
	}
	res := measure(o, worker, codeOf, stderr)
	res.API, res.Endpoints = o.api, o.endpoints
	return res, nil
}
