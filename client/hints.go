package client

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Transport mistakes a caller can fix, recognized so that the error says
// how. Test for them with errors.Is; the error's text carries the hint.
var (
	// ErrSpeaksHTTPS: an http:// request reached a node that serves HTTPS.
	ErrSpeaksHTTPS = errors.New("the node speaks HTTPS")
	// ErrSpeaksHTTP: an https:// request reached a node that serves plain
	// HTTP.
	ErrSpeaksHTTP = errors.New("the node speaks plain HTTP")
	// ErrUntrustedCertificate: the node's certificate does not verify
	// against the trusted CAs (--ca-file), or does not name the host.
	ErrUntrustedCertificate = errors.New("the node's certificate is not trusted")
)

// hinted is an error with what to do about it. It unwraps to both the
// original error (a *url.Error, or the *APIError of a node's 400) and the
// sentinel that names the mistake.
type hinted struct {
	err  error
	kind error
	hint string
}

func (h *hinted) Error() string   { return h.err.Error() + "\n" + h.hint }
func (h *hinted) Unwrap() []error { return []error{h.err, h.kind} }

// caHint is how to trust a cluster's own CA.
const caHint = "--ca-file FILE (or set " + EnvCAFile + "=FILE) with the cluster's CA certificate, e.g. tls/ca.crt from 'kmsctl operator tls create-ca'"

// transportError adds a hint to a request that failed before any answer,
// when the cause is a mistake in the endpoint or the trusted CAs.
func (c *Client) transportError(err error) error {
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknownCA):
		return &hinted{err, ErrUntrustedCertificate,
			"the node's certificate is not signed by a CA this client trusts: pass " + caHint}
	case errors.As(err, &badHost):
		return &hinted{err, ErrUntrustedCertificate,
			fmt.Sprintf("the node's certificate does not name %q: use an address it lists, or issue it one that does ('kmsctl operator tls create-cert --ip/--dns')", badHost.Host)}
	case errors.As(err, &invalid):
		return &hinted{err, ErrUntrustedCertificate,
			"the node's certificate is not valid (expired, or not for a server); renew it, and check " + caHint}
	case strings.Contains(msg, "malformed HTTP response") && strings.Contains(msg, `"\x15\x03`):
		// A TLS alert record (content type 21, version 3.x) in answer to
		// a plain HTTP request: the node expected a TLS handshake.
		return &hinted{err, ErrSpeaksHTTPS, c.httpsHint()}
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return &hinted{err, ErrSpeaksHTTP,
			fmt.Sprintf("the node at %s speaks plain HTTP: use http:// (or start it with --tls-cert-file and --tls-key-file)", c.hostURL())}
	}
	return err
}

// answerError reads a non-2xx answer. Go's HTTPS server answers a plain
// HTTP request with a bare 400 "Client sent an HTTP request to an HTTPS
// server." — not the service's error, and nothing a user can act on
// without the hint.
func (c *Client) answerError(resp *http.Response) error {
	err := readAPIError(resp)
	if ae, ok := err.(*APIError); ok && ae.StatusCode == http.StatusBadRequest && ae.Code == "" &&
		bytes.Contains(ae.Body, []byte("Client sent an HTTP request to an HTTPS server")) {
		return &hinted{err, ErrSpeaksHTTPS, c.httpsHint()}
	}
	return err
}

func (c *Client) httpsHint() string {
	return fmt.Sprintf("the node at %s speaks HTTPS: use https:// (and --ca-file FILE, or %s, when its certificate comes from the cluster's own CA)", c.hostURL(), EnvCAFile)
}

// hostURL is the endpoint with its scheme (http for a bare host:port).
func (c *Client) hostURL() string {
	u, err := c.baseURL()
	if err != nil {
		return c.Endpoint
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
