// Package client is a small Go client for the raftkms HTTP API: signed
// RPC-style calls of the KMS OpenAPI (2016-01-20) actions, and signed raw
// requests to the operator paths (/v1/...). kmsctl, the tests and the
// fault-injection harness use it; it talks to nothing but the HTTP API.
//
// Error contract, which the harness relies on: an error that is an
// *APIError (errors.As) is an answer from the server — the request was
// received and refused. Any other error (connection refused or reset,
// timeout, a truncated or non-JSON success body) means the outcome is
// unknown: a write may or may not have been applied. The client never
// retries on its own, so one Call is at most one request on the wire.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftkms/raftkms/signature"
)

const (
	// APIVersion is the KMS OpenAPI version every call names.
	APIVersion = "2016-01-20"

	// HeaderIndex carries the Raft index of the state a response reflects
	// (for a write: the index at which it was applied).
	HeaderIndex = "X-Kms-Index"
	// HeaderMinIndex asks the node to answer only once it has applied at
	// least this index (read-your-writes across nodes).
	HeaderMinIndex = "X-Kms-Min-Index"

	// DefaultCallTimeout bounds a Call whose context has no deadline.
	DefaultCallTimeout = 30 * time.Second

	// Signature versions.
	SignatureV3 = "v3" // ACS3-HMAC-SHA256, the SDKs' default
	SignatureV1 = "v1" // HMAC-SHA1 in the query, as old SDKs send

	maxResponseBytes = 16 << 20
	maxErrorBytes    = 1 << 20
)

// Client calls one raftkms endpoint. Configure it (directly or through New
// and options) before first use; after that it is safe for concurrent use.
type Client struct {
	// Endpoint is the base URL, e.g. "http://127.0.0.1:9700" or
	// "https://kms.example:9700". A bare "host:port" means http.
	Endpoint        string
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string // only for temporary credentials
	// SignatureVersion is SignatureV3 (default when empty) or SignatureV1.
	// Do always signs with V3: V1 does not cover the path.
	SignatureVersion string
	// HTTPClient, when set, is used as is (TLSConfig is then ignored).
	HTTPClient *http.Client
	// TLSConfig is used by the default HTTP client for https endpoints.
	TLSConfig *tls.Config
	// Timeout bounds a Call whose context has no deadline: 0 means
	// DefaultCallTimeout, negative means no bound. Do is never bounded
	// here, since it streams; use the context.
	Timeout time.Duration

	once        sync.Once
	defaultHTTP *http.Client
}

// Option configures a Client in New.
type Option func(*Client) error

// New returns a client for endpoint with long-term credentials.
func New(endpoint, accessKeyID, accessKeySecret string, opts ...Option) (*Client, error) {
	c := &Client{Endpoint: endpoint, AccessKeyID: accessKeyID, AccessKeySecret: accessKeySecret}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if _, err := c.baseURL(); err != nil {
		return nil, err
	}
	// Credentials may be absent: the unsigned endpoints (status, operator
	// init, a restore into a new cluster) need only the endpoint. Signed
	// calls check for them.
	if _, err := c.signatureVersion(); err != nil {
		return nil, err
	}
	return c, nil
}

// NewFromCredentials is New with the fields of a credentials file.
func NewFromCredentials(cr Credentials, opts ...Option) (*Client, error) {
	if cr.SecurityToken != "" {
		opts = append([]Option{WithSecurityToken(cr.SecurityToken)}, opts...)
	}
	return New(cr.Endpoint, cr.AccessKeyId, cr.AccessKeySecret, opts...)
}

// WithSecurityToken sets an STS token to send with every request.
func WithSecurityToken(token string) Option {
	return func(c *Client) error { c.SecurityToken = token; return nil }
}

// WithSignatureVersion selects SignatureV3 or SignatureV1 for Call.
func WithSignatureVersion(v string) Option {
	return func(c *Client) error {
		c.SignatureVersion = v
		_, err := c.signatureVersion()
		return err
	}
}

// WithHTTPClient replaces the default HTTP client.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) error { c.HTTPClient = h; return nil }
}

// WithTLSConfig sets the TLS configuration of the default HTTP client.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) error { c.TLSConfig = cfg; return nil }
}

// WithTimeout sets Client.Timeout.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error { c.Timeout = d; return nil }
}

// WithCAFile trusts the PEM certificates in path (instead of the system
// roots) for https endpoints: the usual setup for a cluster with its own CA.
func WithCAFile(path string) Option {
	return func(c *Client) error {
		pemBytes, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("client: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return fmt.Errorf("client: CA file %s holds no PEM certificate", path)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSConfig != nil {
			cfg = c.TLSConfig.Clone()
		}
		cfg.RootCAs = pool
		c.TLSConfig = cfg
		return nil
	}
}

// CallOption adjusts one Call.
type CallOption func(*callOptions)

type callOptions struct {
	header http.Header
}

// WithMinIndex asks the node to serve the call only after it has applied
// Raft index idx (typically the Index of an earlier write's Response).
func WithMinIndex(idx uint64) CallOption {
	return WithHeader(HeaderMinIndex, strconv.FormatUint(idx, 10))
}

// WithHeader adds a request header. x-acs-* headers are signed.
func WithHeader(name, value string) CallOption {
	return func(o *callOptions) {
		if o.header == nil {
			o.header = http.Header{}
		}
		o.header.Add(name, value)
	}
}

// Response is a successful (2xx) answer to Call.
type Response struct {
	StatusCode int
	RequestID  string
	// Index is the X-Kms-Index header, 0 when absent.
	Index  uint64
	Body   json.RawMessage
	Header http.Header
}

// Decode unmarshals the body into v.
func (r *Response) Decode(v any) error {
	return json.Unmarshal(r.Body, v)
}

// APIError is a non-2xx answer from the server. Code and Message come from
// the JSON error body; they are empty when the body was not one (a proxy's
// HTML page, for instance), and Body then holds what arrived.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	HostID     string
	Body       []byte
}

func (e *APIError) Error() string {
	if e.Code == "" {
		snippet := strings.TrimSpace(string(e.Body))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		return fmt.Sprintf("kms: HTTP %d %s: %q", e.StatusCode, http.StatusText(e.StatusCode), snippet)
	}
	s := fmt.Sprintf("kms: %s: %s (HTTP %d", e.Code, e.Message, e.StatusCode)
	if e.RequestID != "" {
		s += ", RequestId " + e.RequestID
	}
	return s + ")"
}

// Call performs one RPC action: POST / with params in the query string,
// x-acs-action and x-acs-version headers, signed. A 2xx answer must be JSON.
func (c *Client) Call(ctx context.Context, action string, params map[string]string, opts ...CallOption) (*Response, error) {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	version, err := c.signatureVersion()
	if err != nil {
		return nil, err
	}
	if d := c.callTimeout(); d > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}

	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return nil, ErrNoCredentials
	}
	q := make(url.Values, len(params)+10)
	for k, v := range params {
		q.Set(k, v)
	}
	if version == SignatureV1 {
		// V1 signs the query only, so the action must be in it: a server
		// cannot trust the unsigned x-acs-action header.
		q.Set("Action", action)
		q.Set("Version", APIVersion)
		signature.SignV1(http.MethodPost, q, c.credentials(), time.Now(), signature.NewNonce())
	}
	u := *base
	u.Path = joinPath(base.Path, "/")
	// Sending the canonical form (%20 for a space) rather than the SDK's
	// "+" keeps the query unambiguous for any decoder on the way.
	u.RawQuery = signature.CanonicalQuery(q)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", action, err)
	}
	for k, vs := range o.header {
		req.Header[k] = vs
	}
	req.Header.Set("x-acs-action", action)
	req.Header.Set("x-acs-version", APIVersion)
	req.Header.Set("Accept", "application/json")
	if version == SignatureV3 {
		if err := c.signV3(req, signature.EmptyPayloadHash); err != nil {
			return nil, fmt.Errorf("client: %s: %w", action, err)
		}
	}

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, c.transportError(fmt.Errorf("client: %s %s: %w", action, c.Endpoint, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.answerError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("client: %s: reading response: %w", action, err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("client: %s: response larger than %d bytes", action, maxResponseBytes)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("client: %s: HTTP %d answer is not JSON: %q", action, resp.StatusCode, truncate(body))
	}
	r := &Response{StatusCode: resp.StatusCode, Body: body, Header: resp.Header}
	var rid struct{ RequestId string }
	if json.Unmarshal(body, &rid) == nil {
		r.RequestID = rid.RequestId
	}
	if r.Index, err = ParseIndex(resp.Header); err != nil {
		return nil, fmt.Errorf("client: %s: %w", action, err)
	}
	return r, nil
}

// ParseIndex reads the X-Kms-Index header: 0 when absent, an error when it
// is not a number (which the caller should treat as an unknown outcome).
func ParseIndex(h http.Header) (uint64, error) {
	v := h.Get(HeaderIndex)
	if v == "" {
		return 0, nil
	}
	idx, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad %s header %q", HeaderIndex, truncate([]byte(v)))
	}
	return idx, nil
}

// Do sends a V3-signed request to a non-RPC path such as
// GET /v1/operator/snapshot or POST /v1/operator/restore. body may be nil;
// otherwise it is read once from its current offset to hash it (the
// signature covers x-acs-content-sha256, so it must be the real hash), then
// rewound and streamed — pass a *os.File for large uploads, or
// bytes.NewReader for small ones. A Content-Type in header is signed;
// a body without one is sent as application/octet-stream.
//
// On a 2xx answer the caller reads and closes resp.Body. Any other status
// is returned as *APIError, with the body already consumed and closed.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body io.ReadSeeker, header http.Header) (*http.Response, error) {
	return c.do(ctx, method, path, query, body, header, true)
}

// DoUnsigned is Do without a signature, for the endpoints that need none:
// health, status, operator init, and a restore into a cluster that was never
// initialized.
func (c *Client) DoUnsigned(ctx context.Context, method, path string, query url.Values, body io.ReadSeeker, header http.Header) (*http.Response, error) {
	return c.do(ctx, method, path, query, body, header, false)
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.ReadSeeker, header http.Header, sign bool) (*http.Response, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("client: path %q must start with /", path)
	}
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	hash := signature.EmptyPayloadHash
	var size int64
	if body != nil {
		if hash, size, err = hashFromHere(body); err != nil {
			return nil, fmt.Errorf("client: hashing request body: %w", err)
		}
	}
	u := *base
	u.Path = joinPath(base.Path, path)
	u.RawQuery = signature.CanonicalQuery(query)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if size > 0 {
		// Exactly size bytes: a file that grows after hashing must not
		// send more than was signed.
		req.Body = io.NopCloser(io.LimitReader(body, size))
		req.ContentLength = size
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
	}
	if sign {
		if err := c.signV3(req, hash); err != nil {
			return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
		}
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, c.transportError(fmt.Errorf("client: %s %s: %w", method, path, err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, c.answerError(resp)
	}
	return resp, nil
}

func hashFromHere(r io.ReadSeeker) (hash string, size int64, err error) {
	start, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	if size, err = io.Copy(h, r); err != nil {
		return "", 0, err
	}
	if _, err := r.Seek(start, io.SeekStart); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

func readAPIError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	e := &APIError{StatusCode: resp.StatusCode, Body: body}
	var wire struct {
		RequestId, HostId, Code, Message string
	}
	if json.Unmarshal(body, &wire) == nil {
		e.Code, e.Message, e.RequestID, e.HostID = wire.Code, wire.Message, wire.RequestId, wire.HostId
	}
	return e
}

func (c *Client) credentials() signature.Credentials {
	return signature.Credentials{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken}
}

// ErrNoCredentials means a signed request was attempted without an access
// key.
var ErrNoCredentials = errors.New("client: no access key: pass --credentials FILE or set KMS_ACCESS_KEY_ID and KMS_ACCESS_KEY_SECRET")

func (c *Client) signV3(req *http.Request, payloadHash string) error {
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return ErrNoCredentials
	}
	return signature.SignV3(req, payloadHash, c.credentials(), time.Now(), signature.NewNonce())
}

func (c *Client) signatureVersion() (string, error) {
	switch strings.ToLower(c.SignatureVersion) {
	case "", SignatureV3:
		return SignatureV3, nil
	case SignatureV1:
		return SignatureV1, nil
	default:
		return "", fmt.Errorf("client: signature version %q: want %q or %q", c.SignatureVersion, SignatureV3, SignatureV1)
	}
}

func (c *Client) callTimeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultCallTimeout
	}
	return c.Timeout
}

func (c *Client) baseURL() (*url.URL, error) {
	ep := strings.TrimSpace(c.Endpoint)
	if ep == "" {
		return nil, errors.New("client: no endpoint: pass --endpoint URL or set KMS_ENDPOINT (e.g. http://127.0.0.1:9700)")
	}
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil {
		return nil, fmt.Errorf("client: endpoint %q: %w", c.Endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: endpoint %q: scheme must be http or https", c.Endpoint)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: endpoint %q: want scheme://host:port with no query, fragment or user info", c.Endpoint)
	}
	return u, nil
}

// joinPath puts path under the endpoint's own path prefix, if it has one
// (a KMS behind a reverse proxy at https://gw.example/kms).
func joinPath(prefix, path string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	return prefix + path
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	c.once.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 10 * time.Second
		t.IdleConnTimeout = 90 * time.Second
		t.MaxIdleConnsPerHost = 32
		if c.TLSConfig != nil {
			t.TLSClientConfig = c.TLSConfig.Clone()
		}
		c.defaultHTTP = &http.Client{
			Transport: t,
			// A redirect would re-send a signed request somewhere the
			// signature does not name; surface it instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return c.defaultHTTP
}

func truncate(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(bytes.ToValidUTF8(b[:max], nil)) + "..."
	}
	return string(b)
}
