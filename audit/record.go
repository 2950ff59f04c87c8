package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/raftkms/raftkms/internal/jsonenc"
)

// FormatVersion is the "v" member of every line this package writes.
const FormatVersion = 1

// Genesis is the "prev" of a file's first line.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one request as the audit log keeps it. Every field is safe to
// write: identifiers, names and numbers, never request or response data.
type Record struct {
	Time         time.Time     // when the request arrived
	RequestID    string        // the RequestId the client got
	Node         string        // the node that served it
	Principal    string        // acs:ram::<uid>:… of the verified caller; "" when not authenticated
	AccessKeyID  string        // the access key that signed the request (an id, never the secret)
	Source       string        // the client's address, host:port
	Action       string        // API action or operator endpoint name
	KeyID        string        // the key concerned, when known
	KeyVersionID string        // the key version concerned, when known
	Code         string        // "OK" or the error Code answered
	Status       int           // HTTP status answered
	Latency      time.Duration // arrival to answer
	ForwardedTo  string        // nodes whose HSMs did the key work, comma-separated; "" when done here
}

// Field length limits: values come partly from clients (an unknown action
// name, the KeyId they asked for), so a line stays bounded whatever they
// send.
const (
	maxShort = 128
	maxLong  = 512
)

// The members of a line, in this order, are part of the format; "prev"
// must stay last (the hash member is appended after it). appendLine writes
// them by hand: exactly what encoding/json's Marshal wrote for the struct
// this package used before (HTML-safe string escaping, forwarded_to
// omitted when empty), without reflection or allocation.

// TimeFormat is how "time" is written (UTC, microseconds).
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// encode returns the full line for r chained after prev, with its newline,
// and the line's hash.
func encode(r Record, prev string) ([]byte, string, error) {
	out, sum := appendLine(nil, r, []byte(prev))
	return out, hex.EncodeToString(sum[:]), nil
}

// appendLine appends the full line for r chained after prev (64 hex
// digits), with its newline, to dst and returns the line's hash.
func appendLine(dst []byte, r Record, prev []byte) ([]byte, [sha256.Size]byte) {
	start := len(dst)
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, FormatVersion, 10)
	dst = append(dst, `,"time":"`...)
	dst = appendTime(dst, r.Time)
	dst = append(dst, '"')
	dst = appendMember(dst, "request_id", clip(r.RequestID, maxShort))
	dst = appendMember(dst, "node", clip(r.Node, maxShort))
	dst = appendMember(dst, "principal", clip(r.Principal, maxLong))
	dst = appendMember(dst, "access_key_id", clip(r.AccessKeyID, maxShort))
	dst = appendMember(dst, "source", clip(r.Source, maxShort))
	dst = appendMember(dst, "action", clip(r.Action, maxShort))
	dst = appendMember(dst, "key_id", clip(r.KeyID, maxLong))
	dst = appendMember(dst, "key_version_id", clip(r.KeyVersionID, maxShort))
	dst = appendMember(dst, "code", clip(r.Code, maxShort))
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"latency_us":`...)
	dst = strconv.AppendInt(dst, r.Latency.Microseconds(), 10)
	if f := clip(r.ForwardedTo, maxLong); f != "" {
		dst = appendMember(dst, "forwarded_to", f)
	}
	dst = appendMemberBytes(dst, "prev", prev)
	dst = append(dst, '}')
	sum := sha256.Sum256(dst[start:])
	dst = dst[:len(dst)-1]
	dst = append(dst, hashMember...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, '"', '}', '\n')
	return dst, sum
}

func appendMember(dst []byte, name, value string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	// Nearly every value (ids, names, addresses, codes) is printable ASCII
	// that JSON writes as it is: copy it whole, without the encoder's byte
	// by byte escaping decisions (which are half the cost of a line).
	for i := 0; i < len(value); i++ {
		if !plainJSON[value[i]] {
			return jsonenc.AppendString(dst, value, true)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, value...)
	return append(dst, '"')
}

// appendMemberBytes is appendMember for a value held in bytes (the chain's
// head), without converting it to a string.
func appendMemberBytes(dst []byte, name string, value []byte) []byte {
	for _, c := range value {
		if !plainJSON[c] {
			return appendMember(dst, name, string(value))
		}
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':', '"')
	dst = append(dst, value...)
	return append(dst, '"')
}

// plainJSON[b] reports whether encoding/json writes byte b of a string as
// itself (HTML escaping on): printable ASCII but '"', '\\', '<', '>', '&'.
var plainJSON = func() (t [256]bool) {
	for b := 0x20; b < 0x80; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// appendTime appends t in UTC as TimeFormat writes it (fraction truncated
// to microseconds, like Format), by hand for the years a clock gives.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimeFormat)
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, t.Nanosecond()/1000, 6)
	return append(dst, 'Z')
}

// appendDigits appends v (0 <= v < 10^n) as n decimal digits.
func appendDigits(dst []byte, v, n int) []byte {
	var b [8]byte
	for i := n - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:n]...)
}

// clip bounds s to n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// hashMember starts the last member of every line.
const hashMember = `,"hash":"`

// hashSuffixLen is len(`,"hash":"` + 64 hex + `"}`).
const hashSuffixLen = len(hashMember) + 64 + 2

// parseLine checks one line (without its newline) on its own: a JSON
// object whose last member is "hash", which is the SHA-256 of the rest. It
// returns the line's hash and prev.
func parseLine(b []byte) (hash, prev string, err error) {
	if len(b) == 0 {
		return "", "", errors.New("the line is empty")
	}
	var fields struct {
		Prev *string `json:"prev"`
		Hash *string `json:"hash"`
	}
	if !json.Valid(b) || json.Unmarshal(b, &fields) != nil {
		return "", "", errors.New("not a JSON object (a changed or truncated line)")
	}
	if fields.Prev == nil || fields.Hash == nil {
		return "", "", errors.New("no \"prev\" or \"hash\" member")
	}
	if len(b) < hashSuffixLen+2 || !bytes.HasSuffix(b, []byte(`"}`)) ||
		!bytes.Equal(b[len(b)-hashSuffixLen:len(b)-hashSuffixLen+len(hashMember)], []byte(hashMember)) {
		return "", "", errors.New("\"hash\" is not the last member")
	}
	hash = string(b[len(b)-hashSuffixLen+len(hashMember) : len(b)-2])
	if hash != *fields.Hash || !isHex64(hash) {
		return "", "", errors.New("malformed \"hash\"")
	}
	body := make([]byte, 0, len(b)-hashSuffixLen+1)
	body = append(body, b[:len(b)-hashSuffixLen]...)
	body = append(body, '}')
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != hash {
		return "", "", errors.New("its content does not match its hash (the line was modified)")
	}
	return hash, *fields.Prev, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
