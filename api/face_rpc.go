package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/raftkms/raftkms/kms"
	"github.com/raftkms/raftkms/signature"
)

// rpcFace is the Alibaba Cloud KMS OpenAPI (2016-01-20, RPC style) on
// POST / (GET accepted): the action from the Action parameter or the
// x-acs-action header, parameters from the query and a form or JSON body,
// either signature the official SDKs send, JSON answers with RequestId and
// the service's error format. Its actions are actions.go's table.
type rpcFace struct{ s *Server }

func (f rpcFace) decode(c *call) error {
	if c.r.Method != http.MethodPost && c.r.Method != http.MethodGet {
		return fmt.Errorf("%w: %s", errMethod, c.r.Method)
	}
	body, err := readBody(c.r, maxBody)
	if err != nil {
		return err
	}
	c.body = body
	if len(bytes.TrimSpace(body)) == 0 {
		// Everything in the query (the SDKs): decoded once, into the one
		// map both the parameters and the signature read.
		if c.pmap == nil {
			c.pmap = make(params, 4)
		}
		c.p, c.flatQuery = parseFlatQueryInto(c.pmap, c.r.URL.RawQuery)
		if !c.flatQuery {
			// Partly filled: not reused.
			c.pmap = nil
		}
	}
	if !c.flatQuery {
		if c.p, c.query, err = decodeParamsQuery(c.r, body); err != nil {
			return err
		}
	}
	c.action = c.p.str("Action")
	if h := headerGet(c.r.Header, "X-Acs-Action"); h != "" {
		c.action = h
	}
	return nil
}

func (f rpcFace) authenticate(c *call) error {
	var signed *signature.Signed
	var err error
	if c.flatQuery {
		// c.p is the query as decoded; the handler filters it only after
		// the signature is verified.
		signed, err = signature.ParseFlatQueriedInto(&c.signed, c.r, c.body, c.p)
	} else {
		signed, err = signature.ParseQueried(c.r, c.body, c.query)
	}
	if err != nil {
		return err
	}
	signed, caller, err := f.s.authenticateSigned(c.ctx, c.r, signed, false)
	if err != nil {
		return err
	}
	if signed.Scheme == signature.SchemeV1 {
		// V1 signs the query and a form body, nothing else: the action and
		// every parameter come from what it signed, never from a JSON body
		// or the x-acs-action header an intermediary could change.
		c.p = params{}
		for k, v := range signed.Params {
			c.p[k] = v[0]
		}
		c.action = c.p.str("Action")
	}
	c.caller, c.authenticated = caller, true
	if c.action == "" {
		return fmt.Errorf("%w: the parameter \"Action\" is needed but not provided", kms.ErrMissingParameter)
	}
	return nil
}

func (f rpcFace) route(action string) (route, error) {
	fn, ok := f.s.actions[action]
	if !ok {
		return route{}, fmt.Errorf("%w: %q", errUnknownAction, action)
	}
	return route{handle: fn, class: rpcClass(action)}, nil
}

// rpcClass sorts an action into its rate-limit class.
func rpcClass(action string) string {
	switch {
	case action == "Encrypt" || action == "Decrypt" || action == "ReEncrypt" || strings.HasPrefix(action, "GenerateDataKey") ||
		action == "ExportDataKey" || action == "GenerateAndExportDataKey":
		return kms.ClassSymmetric
	case strings.HasPrefix(action, "Asymmetric") || action == "GetPublicKey" || strings.HasPrefix(action, "Certificate"):
		return kms.ClassAsymmetric
	case strings.HasPrefix(action, "Describe") || strings.HasPrefix(action, "List") ||
		(strings.HasPrefix(action, "Get") && action != "GetParametersForImport"):
		return kms.ClassRead
	}
	return kms.ClassWrite
}

// written is the KeyId and KeyVersionId parameters as the caller wrote
// them (an ARN names the key id after "key/").
func (f rpcFace) written(c *call) (keyID, versionID string) {
	keyID = c.p.str("KeyId")
	if i := strings.LastIndex(keyID, ":key/"); i >= 0 && strings.HasPrefix(keyID, "acs:kms:") {
		keyID = keyID[i+len(":key/"):]
	}
	return keyID, c.p.str("KeyVersionId")
}

func (f rpcFace) answer(w http.ResponseWriter, c *call, resp any) { f.s.answerJSON(w, c, resp) }

func (f rpcFace) fail(w http.ResponseWriter, c *call, err error) {
	f.s.writeError(w, c.r, c.action, c.requestID, err)
}
