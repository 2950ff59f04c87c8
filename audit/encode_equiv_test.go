package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// refLine and refEncode are the reflection-based encoder appendLine
// replaced; lines must stay byte for byte what it wrote (auditors' scripts
// and old files depend on the format).
type refLine struct {
	V            int    `json:"v"`
	Time         string `json:"time"`
	RequestID    string `json:"request_id"`
	Node         string `json:"node"`
	Principal    string `json:"principal"`
	AccessKeyID  string `json:"access_key_id"`
	Source       string `json:"source"`
	Action       string `json:"action"`
	KeyID        string `json:"key_id"`
	KeyVersionID string `json:"key_version_id"`
	Code         string `json:"code"`
	Status       int    `json:"status"`
	LatencyUS    int64  `json:"latency_us"`
	ForwardedTo  string `json:"forwarded_to,omitempty"`
	Prev         string `json:"prev"`
}

func refEncode(r Record, prev string) []byte {
	l := refLine{
		V: FormatVersion, Time: r.Time.UTC().Format(TimeFormat),
		RequestID: clip(r.RequestID, maxShort), Node: clip(r.Node, maxShort), Principal: clip(r.Principal, maxLong),
		AccessKeyID: clip(r.AccessKeyID, maxShort), Source: clip(r.Source, maxShort), Action: clip(r.Action, maxShort),
		KeyID: clip(r.KeyID, maxLong), KeyVersionID: clip(r.KeyVersionID, maxShort), Code: clip(r.Code, maxShort),
		Status: r.Status, LatencyUS: r.Latency.Microseconds(), ForwardedTo: clip(r.ForwardedTo, maxLong), Prev: prev,
	}
	body, err := json.Marshal(l)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(body)
	out := append([]byte(nil), body[:len(body)-1]...)
	out = append(out, hashMember...)
	out = append(out, hex.EncodeToString(sum[:])...)
	return append(out, '"', '}', '\n')
}

func TestAppendLine_SameAsTheReflectionEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "Z", "0", `"`, `\`, "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "<", ">", "&",
		"\u2028", "\u2029", "é", "日本", "\xff", "\xe2\x80", "🔑", " ", "/", "+", ":", strings.Repeat("x", 200)}
	word := func() string {
		var b strings.Builder
		for n := rng.IntN(8); n > 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	// Times around the hand-written formatter's edges (it falls back to
	// time.Format outside years 0-9999).
	edges := []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(2026, 12, 6, 9, 5, 7, 123456789, time.FixedZone("y", -9*3600)),
		{}, time.Unix(0, 0),
	}
	for i := 0; i < 3000+len(edges); i++ {
		r := Record{
			Time:      time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(time.FixedZone("x", rng.IntN(20)*1800-36000)),
			RequestID: word(), Node: word(), Principal: word(), AccessKeyID: word(), Source: word(), Action: word(),
			KeyID: word(), KeyVersionID: word(), Code: word(), Status: rng.IntN(600) - 1,
			Latency: time.Duration(rng.Int64N(1e12) - 1e6),
		}
		if rng.IntN(2) == 0 {
			r.ForwardedTo = word()
		}
		if i >= 3000 {
			r.Time = edges[i-3000]
		}
		prev := hex.EncodeToString(bytes.Repeat([]byte{byte(i)}, 32))
		got, hash, _ := encode(r, prev)
		want := refEncode(r, prev)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
		if h, p, err := parseLine(bytes.TrimSuffix(got, []byte("\n"))); err != nil || h != hash || p != prev {
			t.Fatalf("case %d: parseLine %v, hash %s/%s", i, err, h, hash)
		}
	}
}

// Every byte the fast path copies as it is, encoding/json writes as itself.
func TestPlainJSON_BytesJSONWritesAsThemselves(t *testing.T) {
	for b := 0; b < 256; b++ {
		if !plainJSON[b] {
			continue
		}
		s := string([]byte{byte(b)})
		if got, want := refString(s), `"`+s+`"`; got != want {
			t.Errorf("byte %#x: encoding/json writes %s", b, got)
		}
	}
}

func refString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
