package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHints_PlainRequestToHTTPSServer: Go's HTTPS server answers a plain
// request with a bare 400; the error names the mistake and still unwraps to
// the *APIError (the request was refused, not lost).
func TestHints_PlainRequestToHTTPSServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	plain := "http://" + strings.TrimPrefix(srv.URL, "https://")
	c, err := New(plain, "AK", "secret")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Call(context.Background(), "ListKeys", nil)
	var ae *APIError
	if !errors.Is(err, ErrSpeaksHTTPS) || !errors.As(err, &ae) || ae.StatusCode != 400 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "the node at "+plain+" speaks HTTPS: use https://") {
		t.Errorf("message: %v", err)
	}
}

// TestHints_UntrustedCertificate: the error says how to trust the CA.
func TestHints_UntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c, err := New(srv.URL, "AK", "secret")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DoUnsigned(context.Background(), http.MethodGet, "/v1/status", nil, nil, nil)
	var ae *APIError
	if !errors.Is(err, ErrUntrustedCertificate) || errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"--ca-file", EnvCAFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message does not say %q: %v", want, err)
		}
	}
}

// TestHints_OtherErrorsUnchanged: a refused connection or a service error
// carries no hint.
func TestHints_OtherErrorsUnchanged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"Code":"InvalidParameter","Message":"no","RequestId":"R"}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "AK", "secret")
	_, err := c.Call(context.Background(), "ListKeys", nil)
	if errors.Is(err, ErrSpeaksHTTPS) || errors.Is(err, ErrUntrustedCertificate) || errors.Is(err, ErrSpeaksHTTP) {
		t.Errorf("a service error got a hint: %v", err)
	}
	if _, ok := err.(*APIError); !ok {
		t.Errorf("a service error is no longer a bare *APIError: %T", err)
	}
}

func TestCredentials_SecurityTokenFromFileAndEnvironment(t *testing.T) {
	file := writeCredentials(t, Credentials{AccessKeyId: "id", AccessKeySecret: "s", SecurityToken: "FROMFILE", Endpoint: "http://e"})
	t.Setenv(EnvCredentials, "")
	t.Setenv(EnvSecurityToken, "")
	c, err := ResolveCredentials(file, "")
	if err != nil || c.SecurityToken != "FROMFILE" {
		t.Fatalf("from the file: %v, %q", err, c.SecurityToken)
	}
	t.Setenv(EnvSecurityToken, "FROMENV")
	if c, _ = ResolveCredentials(file, ""); c.SecurityToken != "FROMENV" {
		t.Errorf("the environment does not override the file: %q", c.SecurityToken)
	}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if s := fmt.Sprintf(verb, c); strings.Contains(s, "FROMENV") {
			t.Errorf("%s prints the security token: %s", verb, s)
		}
	}
	cl, err := NewFromCredentials(c)
	if err != nil || cl.SecurityToken != "FROMENV" {
		t.Errorf("NewFromCredentials drops the token: %v %q", err, cl.SecurityToken)
	}
}
