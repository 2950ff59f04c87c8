package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkms/raftkms/api"
	"github.com/raftkms/raftkms/client"
	kcrypto "github.com/raftkms/raftkms/crypto"
	"github.com/raftkms/raftkms/internal/node"
	"github.com/raftkms/raftkms/internal/testutil"
	"github.com/raftkms/raftkms/signature"
	"github.com/raftkms/raftkms/store"
)

// endlessBody is a request body of size bytes generated on demand, that
// counts how many of them the server pulled.
type endlessBody struct {
	size    int64
	read    atomic.Int64
	started chan struct{} // closed at the first Read
	once    atomic.Bool
	block   chan struct{} // when set, Read waits for it after the first call
}

func newEndlessBody(size int64) *endlessBody {
	return &endlessBody{size: size, started: make(chan struct{})}
}

func (b *endlessBody) Read(p []byte) (int, error) {
	if b.once.CompareAndSwap(false, true) {
		close(b.started)
	} else if b.block != nil {
		<-b.block
		return 0, errors.New("the uploader gave up")
	}
	left := b.size - b.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > left {
		n = left
	}
	clear(p[:n])
	b.read.Add(n)
	return int(n), nil
}

// restoreHandler is a second API server over tn's service, driven without
// a network so that the test sees exactly how much of a body it reads.
func restoreHandler(t *testing.T, tn *testNode) http.Handler {
	return api.New(api.Config{NodeID: "direct", Service: tn.Service(), Raft: tn.Store(), DataDir: t.TempDir()})
}

// restoreRequest is a POST /v1/operator/snapshot with body, signed with
// creds over the claimed body hash when creds are set.
func restoreRequest(t *testing.T, body io.Reader, creds *signature.Credentials, claimedHash string, query url.Values) *http.Request {
	t.Helper()
	target := "http://node.test/v1/operator/snapshot"
	if query != nil {
		target += "?" + signature.CanonicalQuery(query)
	}
	r := httptest.NewRequest(http.MethodPost, target, body)
	r.Header.Set("Content-Type", "application/octet-stream")
	if creds != nil {
		if err := signature.SignV3(r, claimedHash, *creds, time.Now(), signature.NewNonce()); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func serveDirect(h http.Handler, r *http.Request) (int, string, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var e struct{ Code, Message string }
	json.Unmarshal(w.Body.Bytes(), &e)
	return w.Code, e.Code, e.Message
}

// Issue 9, point 1: a restore whose caller is not the operator — unsigned,
// a RAM user, a wrong secret, an unknown key, a V1 signature — is refused
// from its headers alone: the server reads none of a 1 GiB body, and the
// catalogue does not change.
func TestRestore_RefusesNonOperatorsBeforeReadingTheBody(t *testing.T) {
	tn := startNode(t)
	tn.must(t, "CreateUser", map[string]string{"UserName": "alice"}, nil)
	var ak struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	tn.must(t, "CreateAccessKey", map[string]string{"UserName": "alice"}, &ak)
	user := signature.Credentials{AccessKeyID: ak.AccessKey.AccessKeyId, AccessKeySecret: ak.AccessKey.AccessKeySecret}
	wrong := signature.Credentials{AccessKeyID: tn.Creds.AccessKeyID, AccessKeySecret: "not-the-secret"}
	unknown := signature.Credentials{AccessKeyID: "LTAIunknownkey0000000000", AccessKeySecret: "x"}
	h := restoreHandler(t, tn)
	claimed := hex.EncodeToString(make([]byte, 32))
	before := tn.hash()

	for _, c := range []struct {
		name   string
		creds  *signature.Credentials
		v1     bool
		status int
		code   string
	}{
		{"unsigned", nil, false, 403, "Forbidden.NoPermission"},
		{"a RAM user of the operator account", &user, false, 403, "Forbidden.NoPermission"},
		{"the operator's key with a wrong secret", &wrong, false, 400, "SignatureDoesNotMatch"},
		{"an unknown access key", &unknown, false, 404, "InvalidAccessKeyId.NotFound"},
		{"a V1 signature of the operator", nil, true, 400, "IncompleteSignature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := newEndlessBody(1 << 30)
			r := restoreRequest(t, body, c.creds, claimed, nil)
			if c.v1 {
				q := url.Values{}
				signature.SignV1(http.MethodPost, q, tn.Creds, time.Now(), signature.NewNonce())
				r.URL.RawQuery = q.Encode()
			}
			status, code, msg := serveDirect(h, r)
			if status != c.status || code != c.code {
				t.Fatalf("HTTP %d %s (%s), want %d %s", status, code, msg, c.status, c.code)
			}
			if n := body.read.Load(); n != 0 {
				t.Fatalf("the server read %d bytes of the body of a refused restore", n)
			}
			if tn.hash() != before {
				t.Fatal("a refused restore changed the catalogue")
			}
		})
	}
}

// One restore at a time per node: a second one, while the first is being
// received, is refused with 409 Rejected.RestoreInProgress before its body
// is read; once the first ends, a restore goes through.
func TestRestore_SecondConcurrentRestoreIsRefusedWith409(t *testing.T) {
	tn := startNode(t)
	snap := saveSnapshot(t, tn)
	h := restoreHandler(t, tn)

	first := newEndlessBody(1 << 30)
	first.block = make(chan struct{})
	done := make(chan int, 1)
	go func() {
		status, _, _ := serveDirect(h, restoreRequest(t, first, &tn.Creds, hex.EncodeToString(make([]byte, 32)), nil))
		done <- status
	}()
	<-first.started

	second := newEndlessBody(1 << 30)
	status, code, msg := serveDirect(h, restoreRequest(t, second, &tn.Creds, hex.EncodeToString(make([]byte, 32)), nil))
	if status != http.StatusConflict || code != "Rejected.RestoreInProgress" || !strings.Contains(msg, "in progress") {
		t.Fatalf("a concurrent restore: HTTP %d %s %q, want 409 Rejected.RestoreInProgress", status, code, msg)
	}
	if n := second.read.Load(); n != 0 {
		t.Fatalf("the server read %d bytes of the concurrent restore's body", n)
	}

	close(first.block)
	if status := <-done; status != http.StatusBadRequest {
		t.Fatalf("the abandoned upload: HTTP %d, want 400", status)
	}
	sum := sha256.Sum256(snap)
	status, code, msg = serveDirect(h, restoreRequest(t, bytes.NewReader(snap), &tn.Creds, hex.EncodeToString(sum[:]), nil))
	if status != http.StatusOK {
		t.Fatalf("a restore after the first ended: HTTP %d %s %s", status, code, msg)
	}
}

// The body must be the one whose hash the operator signed.
func TestRestore_RefusesBodyOtherThanTheSignedOne(t *testing.T) {
	tn := startNode(t)
	old := saveSnapshot(t, tn)
	tn.createKey(t, "after the save")
	current := saveSnapshot(t, tn)
	before := tn.hash()
	sum := sha256.Sum256(current)
	status, code, _ := serveDirect(restoreHandler(t, tn), restoreRequest(t, bytes.NewReader(old), &tn.Creds, hex.EncodeToString(sum[:]), nil))
	if status != 400 || code != "SignatureDoesNotMatch" {
		t.Fatalf("HTTP %d %s, want 400 SignatureDoesNotMatch", status, code)
	}
	if tn.hash() != before {
		t.Fatal("the refused restore changed the catalogue")
	}
}

// resealSHA256 replaces a snapshot's trailer with the SHA-256 of the rest,
// as someone without the root key would after editing it.
func resealSHA256(b []byte) []byte {
	body := bytes.Clone(b[:len(b)-32])
	sum := sha256.Sum256(body)
	return append(body, sum[:]...)
}

// asFormat1 turns a format 2 snapshot into the format 1 file an older build
// wrote of the same state: version 1 in the preamble and the header, a
// SHA-256 trailer.
func asFormat1(t *testing.T, b []byte) []byte {
	t.Helper()
	out := bytes.Clone(b)
	binary.BigEndian.PutUint16(out[8:], 1)
	i := bytes.Index(out, []byte("\xa6format\x02"))
	if i < 0 || i > 40 {
		t.Fatal("no format field in the snapshot header")
	}
	out[i+7] = 1
	return resealSHA256(out)
}

// Issue 9, point 5: an edited snapshot whose SHA-256 was recomputed — a
// key's description changed, the format kept or downgraded to the old
// unauthenticated one — is refused with InvalidSnapshot and changes nothing.
func TestRestore_RefusesEditedSnapshotWithRecomputedHash(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "description-as-saved")
	snap := saveSnapshot(t, tn)
	i := bytes.Index(snap, []byte("description-as-saved"))
	if i < 0 {
		t.Fatal("the description is not in the snapshot")
	}
	edited := bytes.Clone(snap)
	copy(edited[i:], "description-tampered")
	tn.must(t, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": "current"}, nil)
	before := tn.hash()

	for _, c := range []struct {
		name string
		file []byte
	}{
		{"format 2, SHA-256 recomputed", resealSHA256(edited)},
		{"format 2, MAC left as it was", edited},
		{"downgraded to format 1", asFormat1(t, edited)},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tn.V3.Do(context.Background(), http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(c.file), nil)
			wantAPIError(t, err, 400, "InvalidSnapshot")
			if tn.hash() != before {
				t.Fatal("a refused restore changed the catalogue")
			}
		})
	}
}

// An old unauthenticated snapshot is refused by default with a message
// naming the way out, and restored with AcceptUnauthenticated=true (its
// checksum and root key still checked).
func TestRestore_Format1OnlyWithAcceptUnauthenticated(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "in the old snapshot")
	old := asFormat1(t, saveSnapshot(t, tn))
	want := tn.hash()
	tn.must(t, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": "after the save"}, nil)
	changed := tn.hash()
	ctx := context.Background()

	_, err := tn.V3.Do(ctx, http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(old), nil)
	e := wantAPIError(t, err, 400, "InvalidSnapshot")
	if !strings.Contains(e.Message, "--accept-unauthenticated") {
		t.Fatalf("the refusal does not say how to accept the file: %s", e.Message)
	}
	if tn.hash() != changed {
		t.Fatal("a refused restore changed the catalogue")
	}
	_, err = tn.V3.Do(ctx, http.MethodPost, "/v1/operator/snapshot", url.Values{"AcceptUnauthenticated": {"maybe"}}, bytes.NewReader(old), nil)
	wantAPIError(t, err, 400, "InvalidParameter")
	damaged := bytes.Clone(old)
	damaged[len(damaged)/2] ^= 1
	_, err = tn.V3.Do(ctx, http.MethodPost, "/v1/operator/snapshot", url.Values{"AcceptUnauthenticated": {"true"}}, bytes.NewReader(damaged), nil)
	wantAPIError(t, err, 400, "InvalidSnapshot")

	resp, err := tn.V3.Do(ctx, http.MethodPost, "/v1/operator/snapshot", url.Values{"AcceptUnauthenticated": {"true"}}, bytes.NewReader(old), nil)
	if err != nil {
		t.Fatalf("format 1 with AcceptUnauthenticated=true: %v", err)
	}
	resp.Body.Close()
	if tn.hash() != want {
		t.Fatal("the restored catalogue is not the old snapshot's")
	}
	// What Raft stored is the resealed, authenticated format.
	again := saveSnapshot(t, tn)
	if binary.BigEndian.Uint16(again[8:]) != 2 {
		t.Fatal("a snapshot saved after the restore is not format 2")
	}
}

// GET /v1/operator/restore tells the operator what a restore would
// replace; only the operator learns the counts of an initialized cluster.
func TestRestoreTarget_CountsForTheOperatorOnly(t *testing.T) {
	tn := startNode(t)
	tn.createKey(t, "one")
	tn.createKey(t, "two")
	ctx := context.Background()
	resp, err := tn.V3.Do(ctx, http.MethodGet, "/v1/operator/restore", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Initialized    bool
		Keys, Accounts int
		AppliedIndex   uint64
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !got.Initialized || got.Keys != 2 || got.Accounts != 1 || got.AppliedIndex != tn.FSM().AppliedIndex() {
		t.Fatalf("restore target = %+v, applied %d", got, tn.FSM().AppliedIndex())
	}
	_, err = tn.V3.DoUnsigned(ctx, http.MethodGet, "/v1/operator/restore", nil, nil, nil)
	wantAPIError(t, err, 400, "IncompleteSignature")
	tn.must(t, "CreateUser", map[string]string{"UserName": "bob"}, nil)
	var ak struct {
		AccessKey struct{ AccessKeyId, AccessKeySecret string }
	}
	tn.must(t, "CreateAccessKey", map[string]string{"UserName": "bob"}, &ak)
	bob, err := client.New(tn.Endpoint(), ak.AccessKey.AccessKeyId, ak.AccessKey.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.Do(ctx, http.MethodGet, "/v1/operator/restore", nil, nil, nil)
	wantAPIError(t, err, 403, "Forbidden.NoPermission")
}

// startPair starts two single-node clusters with the same root key: the
// first initialized (a testNode), the second never initialized.
func startPair(t *testing.T) (*testNode, *node.Node) {
	t.Helper()
	dir := t.TempDir()
	root, err := kcrypto.GenerateRootKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	start := func(id string) *node.Node {
		n, err := node.Start(node.Config{
			NodeID: id, DataDir: filepath.Join(dir, id), Single: true,
			HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", RootKey: root, Timing: store.FastTiming(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Stop)
		return n
	}
	src, fresh := start("src"), start("fresh")
	anon, _ := client.New(src.Endpoint(), "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := anon.DoUnsigned(ctx, http.MethodPost, "/v1/operator/init", nil, nil, nil)
	if err != nil {
		t.Fatalf("operator init: %v", err)
	}
	defer resp.Body.Close()
	var init struct{ AccountId, AccessKeyId, AccessKeySecret, InstanceId string }
	if err := json.NewDecoder(resp.Body).Decode(&init); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: src, AccountID: init.AccountId, InstanceID: init.InstanceId,
		Creds: signature.Credentials{AccessKeyID: init.AccessKeyId, AccessKeySecret: init.AccessKeySecret}}
	if tn.V3, err = client.New(src.Endpoint(), init.AccessKeyId, init.AccessKeySecret); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the fresh node leads", 30*time.Second, func() bool { return fresh.Store().IsLeader() })
	return tn, fresh
}

// A cluster that was never initialized accepts a restore without
// credentials — streamed to disk and checked by the snapshot's MAC — and
// says it is empty to anyone.
func TestRestore_UninitializedClusterTakesAnUnsignedRestore(t *testing.T) {
	src, n := startPair(t)
	src.createKey(t, "saved")
	snap := saveSnapshot(t, src)
	anon, _ := client.New(n.Endpoint(), "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := anon.DoUnsigned(ctx, http.MethodGet, "/v1/operator/restore", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var target struct {
		Initialized bool
		Keys        int
	}
	json.NewDecoder(resp.Body).Decode(&target)
	resp.Body.Close()
	if target.Initialized || target.Keys != 0 {
		t.Fatalf("a new cluster's restore target = %+v", target)
	}

	i := bytes.Index(snap, []byte("saved"))
	edited := bytes.Clone(snap)
	copy(edited[i:], "SAVED")
	_, err = anon.DoUnsigned(ctx, http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(resealSHA256(edited)), nil)
	wantAPIError(t, err, 400, "InvalidSnapshot")
	// Vouching for an unauthenticated (format 1) file takes the operator's
	// credentials, which a new cluster does not have yet.
	accept := url.Values{"AcceptUnauthenticated": {"true"}}
	_, err = anon.DoUnsigned(ctx, http.MethodPost, "/v1/operator/snapshot", accept, bytes.NewReader(asFormat1(t, snap)), nil)
	if e := wantAPIError(t, err, 403, "Forbidden.NoPermission"); !strings.Contains(e.Message, "operator init") {
		t.Fatalf("the refusal does not say what to do: %s", e.Message)
	}
	if ok, _ := n.FSM().Initialized(); ok {
		t.Fatal("a refused restore initialized the cluster")
	}
	out, err := anon.DoUnsigned(ctx, http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(snap), nil)
	if err != nil {
		t.Fatalf("unsigned restore into a new cluster: %v", err)
	}
	out.Body.Close()
	if h, _ := n.FSM().Hash(); h != src.hash() {
		t.Fatal("the new cluster does not hold the snapshot's catalogue")
	}
}

// A restore's staging file left by a crash is removed when the API starts;
// other files in the data directory are not touched.
func TestNew_RemovesStaleSnapshotStagingFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "snapshot-restore-1234")
	keep := filepath.Join(dir, "raft.db")
	for _, p := range []string{stale, keep} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	api.New(api.Config{DataDir: dir})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the stale staging file is still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("another file was removed: %v", err)
	}
}

// slowSecondPass is a snapshot body that the client reads twice (once to
// hash it, once to send it); while sending, it stalls halfway for longer
// than the server's read and write timeouts, as a large upload would.
type slowSecondPass struct {
	*bytes.Reader
	half    int64
	stall   time.Duration
	sending bool
	stalled bool
}

func (s *slowSecondPass) Seek(off int64, whence int) (int64, error) {
	if off == 0 && whence == io.SeekStart && s.Len() == 0 {
		s.sending = true // rewound after hashing
	}
	return s.Reader.Seek(off, whence)
}

func (s *slowSecondPass) Read(p []byte) (int, error) {
	pos := s.Size() - int64(s.Len())
	if s.sending && !s.stalled && pos >= s.half {
		s.stalled = true
		<-time.After(s.stall)
	}
	if s.sending && !s.stalled && pos+int64(len(p)) > s.half {
		p = p[:s.half-pos]
	}
	return s.Reader.Read(p)
}

// The API server's read and write timeouts suit API calls; an operator's
// restore that takes longer to upload extends its own deadlines once the
// caller is known, and succeeds.
func TestRestore_OutlastsTheServerTimeoutsOnceAuthenticated(t *testing.T) {
	tn := startNode(t)
	tn.createKey(t, "in the snapshot")
	snap := saveSnapshot(t, tn)
	srv := httptest.NewUnstartedServer(restoreHandler(t, tn))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	cl, err := client.New(srv.URL, tn.Creds.AccessKeyID, tn.Creds.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	body := &slowSecondPass{Reader: bytes.NewReader(snap), half: int64(len(snap) / 2), stall: time.Second}
	resp, err := cl.Do(context.Background(), http.MethodPost, "/v1/operator/snapshot", nil, body, nil)
	if err != nil {
		t.Fatalf("a restore slower than the server's timeouts: %v", err)
	}
	resp.Body.Close()
	if !body.stalled {
		t.Fatal("the upload never stalled: the test proves nothing")
	}
}
