package api

import (
	"fmt"
	"net/http"

	"github.com/raftkms/raftkms/kms"
)

// plainFace is a face made only for tests, to show that a new way in is one
// file that plugs into the pipeline without touching it: GET
// <path>?op=describe&key=<KeyId>, signed with ACS3-HMAC-SHA256, answered in
// plain text ("OK <request id> <key id>" or "ERR <request id> <code>"). It
// gets the request id, deadline, admission, metrics, audit line (with the
// key the core resolved) and the one error table from the pipeline.
type plainFace struct{ s *Server }

// MountPlainFace serves path with the test-only plain-text face.
func MountPlainFace(s *Server, path string) { s.mount(path, plainFace{s}) }

func (f plainFace) decode(c *call) error {
	if c.r.Method != http.MethodGet {
		return fmt.Errorf("%w: use GET", errMethod)
	}
	c.action = "Plain" + c.r.URL.Query().Get("op")
	return nil
}

func (f plainFace) authenticate(c *call) error {
	_, caller, err := f.s.authenticateV3(c.ctx, c.r, nil)
	if err != nil {
		return err
	}
	c.caller, c.authenticated = caller, true
	return nil
}

func (f plainFace) route(action string) (route, error) {
	if action != "Plaindescribe" {
		return route{}, fmt.Errorf("%w: %q", errUnknownAction, action)
	}
	return route{class: kms.ClassRead, handle: func(c *call) (any, error) {
		k, err := f.s.cfg.Service.DescribeKey(c.ctx, c.caller, c.r.URL.Query().Get("key"))
		if err != nil {
			return nil, err
		}
		return k.ID, nil
	}}, nil
}

func (f plainFace) written(c *call) (string, string) { return c.r.URL.Query().Get("key"), "" }

func (f plainFace) answer(w http.ResponseWriter, c *call, resp any) {
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "OK %s %s\n", c.requestID, resp)
}

func (f plainFace) fail(w http.ResponseWriter, c *call, err error) {
	e, _ := classify(err)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(e.status)
	fmt.Fprintf(w, "ERR %s %s\n", c.requestID, e.code)
}
