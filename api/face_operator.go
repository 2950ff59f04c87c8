package api

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/raftkms/raftkms/kms"
)

// operatorFace is the operator endpoints under /v1/operator/: one path per
// resource, the method picks the action (GET reads, POST changes),
// parameters from the query and a form or JSON body, ACS3-HMAC-SHA256
// signatures only (V1 covers neither the path nor the body), JSON answers
// with RequestId and the service's error format — except a snapshot
// download, which streams the file.
type operatorFace struct {
	s        *Server
	byPath   map[string]operatorPath
	byAction map[string]operatorEndpoint
}

// operatorPath is one operator endpoint's path.
type operatorPath struct {
	name    string // what the audit line names a request with a wrong method
	methods string // the methods it takes, for the 405's message
	by      map[string]operatorEndpoint
}

// operatorEndpoint is one action of an operator path.
type operatorEndpoint struct {
	action string
	class  string // rate-limit class
	auth   operatorAuth
	handle actionFunc
}

// operatorAuth is how an operator endpoint settles its caller.
type operatorAuth int

const (
	// authBody reads the body (≤ 1 MiB) and checks the signature over it.
	authBody operatorAuth = iota
	// authNoBody checks the signature of a request without a body.
	authNoBody
	// authHeaders checks the signature from the headers alone — it covers
	// the body's claimed hash — before one byte of the body is read; an
	// unsigned request has no caller (the handler decides whether that is
	// enough). The handler streams the body.
	authHeaders
	// authIfInitialized is authNoBody on an initialized cluster, and no
	// authentication on one that was never initialized.
	authIfInitialized
	// authNone takes no credentials: there are none yet (init).
	authNone
)

func (s *Server) operatorFace() operatorFace {
	ep := func(action, class string, auth operatorAuth, h actionFunc) operatorEndpoint {
		return operatorEndpoint{action: action, class: class, auth: auth, handle: h}
	}
	byPath := map[string]operatorPath{
		"/v1/operator/init": {name: "Init", methods: "use POST", by: map[string]operatorEndpoint{
			http.MethodPost: ep("Init", kms.ClassWrite, authNone, s.operatorInit),
		}},
		"/v1/operator/snapshot": {name: "Snapshot", methods: "GET saves, POST restores", by: map[string]operatorEndpoint{
			http.MethodGet:  ep("SnapshotSave", kms.ClassRead, authNoBody, s.saveSnapshot),
			http.MethodPost: ep("SnapshotRestore", kms.ClassWrite, authHeaders, s.restoreSnapshot),
			http.MethodPut:  ep("SnapshotRestore", kms.ClassWrite, authHeaders, s.restoreSnapshot),
		}},
		"/v1/operator/restore": {name: "SnapshotRestoreTarget", methods: "use GET", by: map[string]operatorEndpoint{
			http.MethodGet: ep("SnapshotRestoreTarget", kms.ClassRead, authIfInitialized, s.restoreTarget),
		}},
		"/v1/operator/instances": {name: "CreateInstance", methods: "use POST", by: map[string]operatorEndpoint{
			http.MethodPost: ep("CreateInstance", kms.ClassWrite, authBody, s.operatorCreateInstance),
		}},
		"/v1/operator/accounts": {name: "CreateAccount", methods: "use POST", by: map[string]operatorEndpoint{
			http.MethodPost: ep("CreateAccount", kms.ClassWrite, authBody, s.operatorCreateAccount),
		}},
		"/v1/operator/ratelimits": {name: "RateLimits", methods: "GET reads, POST sets", by: map[string]operatorEndpoint{
			http.MethodGet:  ep("RateLimits", kms.ClassRead, authBody, s.rateLimits),
			http.MethodPost: ep("SetRateLimit", kms.ClassWrite, authBody, s.setRateLimit),
		}},
		"/v1/operator/upgrade": {name: "FinalizeUpgrade", methods: "use POST", by: map[string]operatorEndpoint{
			http.MethodPost: ep("FinalizeUpgrade", kms.ClassWrite, authBody, s.finalizeUpgrade),
		}},
		"/v1/operator/instance-limits": {name: "InstanceLimits", methods: "GET reads, POST sets", by: map[string]operatorEndpoint{
			http.MethodGet:  ep("InstanceLimits", kms.ClassRead, authBody, s.instanceLimits),
			http.MethodPost: ep("SetInstanceLimit", kms.ClassWrite, authBody, s.setInstanceLimit),
		}},
	}
	f := operatorFace{s: s, byPath: byPath, byAction: map[string]operatorEndpoint{}}
	for _, p := range byPath {
		for _, e := range p.by {
			f.byAction[e.action] = e
		}
	}
	return f
}

// paths lists the operator paths, for mounting.
func (f operatorFace) paths() []string {
	out := make([]string, 0, len(f.byPath))
	for p := range f.byPath {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (f operatorFace) decode(c *call) error {
	p := f.byPath[c.r.URL.Path]
	e, ok := p.by[c.r.Method]
	if !ok {
		c.action = p.name
		return fmt.Errorf("%w: %s", errMethod, p.methods)
	}
	c.action = e.action
	if e.auth == authBody {
		body, err := readBody(c.r, maxBody)
		if err != nil {
			return err
		}
		c.body = body
	}
	return nil
}

func (f operatorFace) authenticate(c *call) error {
	e := f.byAction[c.action]
	switch e.auth {
	case authNone:
		return nil
	case authHeaders:
		caller, signedHash, err := f.s.authenticateRestore(c.ctx, c.r)
		if err != nil {
			return err
		}
		if caller != nil {
			c.caller, c.authenticated = *caller, true
		}
		c.signedHash = signedHash
		return nil
	case authIfInitialized:
		if init, _ := f.s.cfg.Service.Initialized(); !init {
			return nil
		}
	}
	_, caller, err := f.s.authenticateV3(c.ctx, c.r, c.body)
	if err != nil {
		return err
	}
	c.caller, c.authenticated = caller, true
	if e.auth == authBody {
		// Parameters only from a verified request.
		if c.p, err = decodeParams(c.r, c.body); err != nil {
			return err
		}
	}
	return nil
}

func (f operatorFace) route(action string) (route, error) {
	e, ok := f.byAction[action]
	if !ok {
		return route{}, fmt.Errorf("%w: %q", errUnknownAction, action)
	}
	return route{handle: e.handle, class: e.class}, nil
}

// written: operator endpoints concern no key.
func (f operatorFace) written(*call) (string, string) { return "", "" }

// snapshotDownload is a saved snapshot staged in a file, streamed as the
// answer and then removed.
type snapshotDownload struct {
	file *os.File
	size int64
}

func (f operatorFace) answer(w http.ResponseWriter, c *call, resp any) {
	d, ok := resp.(*snapshotDownload)
	if !ok {
		f.s.answerJSON(w, c, resp)
		return
	}
	defer os.Remove(d.file.Name())
	defer d.file.Close()
	// A large snapshot to a slow client outlasts the server's write
	// timeout, which suits API answers; the caller is the operator.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(restoreUploadBudget))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(d.size, 10))
	w.Header().Set("X-Request-Id", c.requestID)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, d.file); err != nil {
		f.s.log.Warn("snapshot download interrupted", "error", err)
	}
}

func (f operatorFace) fail(w http.ResponseWriter, c *call, err error) {
	f.s.writeError(w, c.r, c.action, c.requestID, err)
}
