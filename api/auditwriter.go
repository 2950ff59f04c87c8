package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftkms/raftkms/audit"
	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
)

// audited reports whether requests to path go to the audit log: all but
// the unauthenticated read-only pages that monitoring polls and the
// console's static files (its API is audited).
func audited(path string) bool {
	switch path {
	case "/v1/health", "/v1/status", "/metrics":
		return false
	}
	return !isConsolePath(path) || strings.HasPrefix(path, consoleAPIPrefix)
}

// auditWriter holds a request's audit record while the request runs and
// appends it when the answer's status is decided, before any byte of the
// answer leaves: no answer goes out unaudited. When the record cannot be
// written, the answer is replaced by a 503 (a committed write then reads
// as an unknown outcome, which it is to the client).
type auditWriter struct {
	http.ResponseWriter
	s      *Server
	r      *http.Request
	start  time.Time
	rec    audit.Record
	wrote  bool // status decided and record appended (or failed)
	failed bool // record not written: the real answer is dropped
	// unavailable, when set, writes the 503 of a record not written in
	// the face's own format (the instance face's protobuf); nil: JSON.
	unavailable func(w http.ResponseWriter, requestID, msg string)
}

func (s *Server) newAuditWriter(w http.ResponseWriter, r *http.Request) *auditWriter {
	a := &auditWriter{ResponseWriter: w, s: s, r: r, start: s.now()}
	a.rec = audit.Record{Time: a.start, Node: s.cfg.NodeID, Source: r.RemoteAddr}
	if _, known := s.routes[r.URL.Path]; known && r.URL.Path != "/" {
		// Operator endpoints name themselves; this is the fallback.
		a.rec.Action = r.URL.Path
	}
	return a
}

// claimedAccessKeyID is the AccessKeyId a request claims, verified or not:
// from the ACS3 Authorization header, else the V1 AccessKeyId parameter of
// the query or a form body, else the instance API's client key id. For the audit line of a refused request only.
func claimedAccessKeyID(r *http.Request, body []byte) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if a, err := signature.ParseAuthorization(h); err == nil && a.AccessKeyID != "" {
			return a.AccessKeyID
		}
	}
	if id := r.URL.Query().Get(signature.ParamAccessKeyID); id != "" {
		return id
	}
	// The instance API's client key id (the SDK's spelling), bounded: it is
	// the client's text.
	if id := r.Header.Get("x-kms-acccesskeyid"); id != "" {
		return shorten(id)
	}
	if len(body) > 0 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil {
			return form.Get(signature.ParamAccessKeyID)
		}
	}
	return ""
}

// auditOf returns the request's audit record holder, nil when requests are
// not audited.
func auditOf(w http.ResponseWriter) *auditWriter {
	a, _ := w.(*auditWriter)
	return a
}

// setCaller records who made the request; nil-safe.
func (a *auditWriter) setCaller(c kms.Caller) {
	if a != nil {
		a.rec.Principal, a.rec.AccessKeyID = c.Principal, c.AccessKeyID
	}
}

func (a *auditWriter) WriteHeader(status int) {
	if a.wrote {
		return
	}
	a.wrote = true
	a.rec.Status = status
	if a.rec.Principal == "" && a.rec.AccessKeyID == "" {
		// An operator endpoint that refused the caller: the access key
		// the signature claimed (the body is not at hand here).
		a.rec.AccessKeyID = claimedAccessKeyID(a.r, nil)
	}
	if a.rec.Code == "" {
		a.rec.Code = "OK"
		if status >= 400 {
			a.rec.Code = "HTTP" + strconv.Itoa(status)
		}
	}
	a.rec.Latency = a.s.now().Sub(a.start)
	if err := a.s.cfg.Audit.Append(a.rec); err != nil {
		a.failed = true
		a.s.log.Error("cannot write the audit log; answering 503 instead", "request_id", a.rec.RequestID, "action", a.rec.Action, "error", err)
		h := a.ResponseWriter.Header()
		for _, k := range []string{"X-Kms-Index", "Content-Length", "Content-Disposition"} {
			h.Del(k)
		}
		const msg = "this node cannot write its audit log, so it does not answer; retry on another node (the outcome of a write is unknown)"
		if a.unavailable != nil {
			a.unavailable(a.ResponseWriter, a.rec.RequestID, msg)
			return
		}
		h.Set("Content-Type", "application/json;charset=utf-8")
		a.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
		b, _ := json.Marshal(map[string]any{
			"RequestId": a.rec.RequestID, "Code": "ServiceUnavailableTemporary",
			"Message": msg,
		})
		a.ResponseWriter.Write(append(b, '\n'))
		return
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *auditWriter) Write(b []byte) (int, error) {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	if a.failed {
		return len(b), nil
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (a *auditWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// finish audits a request whose handler wrote nothing (net/http answers
// 200 then).
func (a *auditWriter) finish() {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
}
