package api

import (
	"fmt"
	"net/http"
	"runtime/debug"

	"google.golang.org/protobuf/encoding/protowire"
)

// The instance endpoint (--instance-addr): the API the reference's KMS
// Instance SDK speaks (dkms-gcs-0.2: POST / with protobuf bodies, the action
// in x-kms-apiname, errors as protobuf api.Error). It has its own HTTPS
// listener, not a path on the API's. For now its face knows no action: every
// request goes through the pipeline (request id, metrics, audit line) and is
// answered 404 InvalidAction.NotFound in the SDK's error format, so that the
// SDK raises a proper error. Decoding, authentication by request signature
// and the actions come in a later release.

// errInstanceActionsLater is the answer to every instance API request.
var errInstanceActionsLater = fmt.Errorf("%w: the instance API's actions arrive in a later release", errUnknownAction)

// instanceFace is the instance API's face on the pipeline.
type instanceFace struct{ s *Server }

// InstanceHandler serves the instance endpoint: every path, through the
// request pipeline with the instance face. It is mounted on the instance
// listener by the node, never on the API's routes.
func (s *Server) InstanceHandler() http.Handler { return instanceHandler{s} }

type instanceHandler struct{ s *Server }

func (h instanceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if s.cfg.Audit != nil {
		a := s.newAuditWriter(w, r)
		// A node that cannot audit answers 503 in the SDK's format, with
		// the code the SDK retries.
		a.unavailable = func(w http.ResponseWriter, requestID, msg string) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(encodeInstanceError(http.StatusServiceUnavailable, "ServiceUnavailableTemporary", msg, requestID))
		}
		w = a
		defer a.finish()
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving an instance API request", "panic", v, "stack", string(debug.Stack()))
			writeInstanceError(s, w, newRequestID(), fmt.Errorf("internal panic"))
		}
	}()
	if err := s.cfg.Service.RootKeyMismatch(); err != nil {
		writeInstanceError(s, w, newRequestID(), err)
		return
	}
	s.serve(w, r, instanceFace{s})
}

// maxInstanceActionName bounds the action name a request may carry into the
// audit line.
const maxInstanceActionName = 64

func (f instanceFace) decode(c *call) error {
	// The action names the audit line; only a plausible name is kept.
	if a := c.r.Header.Get("x-kms-apiname"); isActionName(a) {
		c.action = a
	}
	return nil
}

// isActionName accepts 1-64 ASCII letters and digits.
func isActionName(a string) bool {
	if a == "" || len(a) > maxInstanceActionName {
		return false
	}
	for i := 0; i < len(a); i++ {
		ch := a[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9') {
			return false
		}
	}
	return true
}

// authenticate settles nobody yet: requests are refused before any handler.
func (f instanceFace) authenticate(*call) error { return nil }

func (f instanceFace) route(string) (route, error) {
	return route{}, errInstanceActionsLater
}

func (f instanceFace) written(*call) (string, string) { return "", "" }

func (f instanceFace) answer(w http.ResponseWriter, c *call, _ any) {
	// No action answers yet (route refuses every one).
	writeInstanceError(f.s, w, c.requestID, errInstanceActionsLater)
}

func (f instanceFace) fail(w http.ResponseWriter, c *call, err error) {
	writeInstanceError(f.s, w, c.requestID, err)
}

// writeInstanceError answers err as the SDK reads errors: the protobuf
// api.Error with the code and status of the one error table. Internal
// errors are logged and answered without their detail.
func writeInstanceError(s *Server, w http.ResponseWriter, requestID string, err error) {
	e, internal := classify(err)
	if a := auditOf(w); a != nil {
		if a.rec.RequestID == "" {
			a.rec.RequestID = requestID
		}
		a.rec.Code = e.code
	}
	msg := errorMessage(err)
	if internal {
		s.log.Error("internal error", "request_id", requestID, "face", "instance", "error", err)
		msg = "The request processing has failed due to some unknown error. Request id: " + requestID
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(e.status)
	if _, err := w.Write(encodeInstanceError(int32(e.status), e.code, msg, requestID)); err != nil {
		s.log.Debug("writing response", "error", err)
	}
}

// encodeInstanceError encodes the SDK's api.Error message:
//
//	message Error { int32 StatusCode = 1; string ErrorCode = 2;
//	                string ErrorMessage = 3; string RequestId = 4; }
//
// in proto3's wire format (default values left out).
func encodeInstanceError(status int32, code, msg, requestID string) []byte {
	var b []byte
	if status != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		// int32 is sign-extended to 64 bits on the wire.
		b = protowire.AppendVarint(b, uint64(int64(status)))
	}
	for _, f := range []struct {
		num protowire.Number
		s   string
	}{{2, code}, {3, msg}, {4, requestID}} {
		if f.s != "" {
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendString(b, f.s)
		}
	}
	return b
}
