// Command baseline is the practical floor of "HTTP + JSON + AES-GCM" that
// raftkms is measured against (issue 16, `make bench`): a bare net/http
// server that answers Encrypt, Decrypt and GenerateDataKey in the shape of
// raftkms's RPC face (POST /?KeyId=…&Plaintext=…, the action in the
// x-acs-action header or the Action parameter, a JSON answer) under one
// fixed AES-256-GCM key with a fresh crypto/rand nonce per request.
//
// It checks no signature, authorizes nothing, keeps no audit log and
// replicates nothing: it is not a KMS, only the floor. It accepts any
// signed request, so the same load generator (kms-load) drives it and
// raftkms alike. It listens on loopback only.
//
// CreateKey is the floor of a durable write: a fresh 32-byte key sealed
// under the server's key, one line appended to a journal file and made
// durable (fdatasync) before the answer, concurrent writes sharing one
// write and one fdatasync (group commit) — no consensus, no index, no
// second copy.
//
//	baseline --addr 127.0.0.1:0 --ready-file F --journal J   # F gets the http://host:port once listening
package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (host:port)")
	ready := flag.String("ready-file", "", "write the endpoint (http://host:port) to this file once listening")
	journalPath := flag.String("journal", "", "CreateKey's journal file (default: baseline-journal-* in the temporary directory)")
	flag.Parse()
	if host, _, err := net.SplitHostPort(*addr); err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		fmt.Fprintln(os.Stderr, "baseline: --addr must be a loopback host:port")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	endpoint := "http://" + ln.Addr().String()
	if *ready != "" {
		if err := os.WriteFile(*ready, []byte(endpoint+"\n"), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
	}
	h := newHandler()
	if h.journal, err = openJournal(*journalPath); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	fmt.Println("baseline listening on", endpoint, "journal", h.journal.f.Name())
	if err := http.Serve(ln, h); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

// handler serves the three crypto actions under one key.
type handler struct {
	aead    cipher.AEAD
	journal *journal // CreateKey's; nil: CreateKey is refused
}

func newHandler() *handler {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &handler{aead: aead}
}

type encryptAnswer struct {
	KeyId          string
	KeyVersionId   string
	CiphertextBlob string
	RequestId      string
}

type decryptAnswer struct {
	KeyId        string
	KeyVersionId string
	Plaintext    string
	RequestId    string
}

type dataKeyAnswer struct {
	KeyId          string
	KeyVersionId   string
	CiphertextBlob string
	Plaintext      string
	RequestId      string
}

type keyMetadata struct {
	KeyId    string
	KeyState string
	KeySpec  string
}

type createKeyAnswer struct {
	KeyMetadata keyMetadata
	RequestId   string
}

type journalLine struct {
	KeyId   string
	Wrapped string
}

type errorAnswer struct {
	Code      string
	Message   string
	RequestId string
}

const requestID = "00000000-0000-0000-0000-000000000000"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		h.fail(w, http.StatusMethodNotAllowed, "UnsupportedOperation", "POST or GET")
		return
	}
	q := r.URL.Query()
	action := r.Header.Get("x-acs-action")
	if action == "" {
		action = q.Get("Action")
	}
	keyID := q.Get("KeyId")
	switch action {
	case "Encrypt":
		ct := h.seal([]byte(q.Get("Plaintext")))
		h.answer(w, encryptAnswer{KeyId: keyID, KeyVersionId: "v1", CiphertextBlob: ct, RequestId: requestID})
	case "Decrypt":
		blob, err := base64.StdEncoding.DecodeString(q.Get("CiphertextBlob"))
		ns := h.aead.NonceSize()
		if err != nil || len(blob) < ns+h.aead.Overhead() {
			h.fail(w, http.StatusBadRequest, "InvalidCiphertext", "not a ciphertext of this server")
			return
		}
		pt, err := h.aead.Open(nil, blob[:ns], blob[ns:], nil)
		if err != nil {
			h.fail(w, http.StatusBadRequest, "InvalidCiphertext", "not a ciphertext of this server")
			return
		}
		h.answer(w, decryptAnswer{KeyId: keyID, KeyVersionId: "v1", Plaintext: string(pt), RequestId: requestID})
	case "GenerateDataKey":
		dk := make([]byte, 32)
		rand.Read(dk)
		h.answer(w, dataKeyAnswer{KeyId: keyID, KeyVersionId: "v1", CiphertextBlob: h.seal(dk),
			Plaintext: base64.StdEncoding.EncodeToString(dk), RequestId: requestID})
	case "CreateKey":
		if h.journal == nil {
			h.fail(w, http.StatusBadRequest, "InvalidAction.NotFound", "no journal")
			return
		}
		var id [16]byte
		rand.Read(id[:])
		key := make([]byte, 32)
		rand.Read(key)
		keyID := hex.EncodeToString(id[:])
		line, _ := json.Marshal(journalLine{KeyId: keyID, Wrapped: h.seal(key)})
		if err := h.journal.append(append(line, '\n')); err != nil {
			h.fail(w, http.StatusInternalServerError, "InternalFailure", err.Error())
			return
		}
		h.answer(w, createKeyAnswer{KeyMetadata: keyMetadata{KeyId: keyID, KeyState: "Enabled", KeySpec: "Aliyun_AES_256"}, RequestId: requestID})
	default:
		h.fail(w, http.StatusBadRequest, "InvalidAction.NotFound", "Encrypt, Decrypt, GenerateDataKey or CreateKey")
	}
}

// seal returns base64(nonce ‖ AES-GCM(plaintext)) with a fresh random nonce.
func (h *handler) seal(pt []byte) string {
	ns := h.aead.NonceSize()
	out := make([]byte, ns, ns+len(pt)+h.aead.Overhead())
	rand.Read(out)
	out = h.aead.Seal(out, out[:ns], pt, nil)
	return base64.StdEncoding.EncodeToString(out)
}

func (h *handler) answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

func (h *handler) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorAnswer{Code: code, Message: msg, RequestId: requestID})
}
