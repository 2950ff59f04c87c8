package node

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftkms/raftkms/internal/testutil"
)

// echoBody answers 200 with the length of the body it read, or 400 when
// reading it failed (as the API does).
func echoBody(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d", len(b))
}

func startLimited(t *testing.T, lim HTTPLimits, h http.HandlerFunc) (string, *connLimiter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, cl := newHTTPServer(h, ln, lim, prometheus.NewRegistry())
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), cl
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedBy reports whether the server closed c within bound: a read
// returns EOF or a reset (anything the server sent first is skipped). The
// bound is a deadline on the read, not a sleep.
func closedBy(c net.Conn, bound time.Duration) (time.Duration, error) {
	start := time.Now()
	c.SetReadDeadline(start.Add(bound))
	_, err := io.Copy(io.Discard, c)
	elapsed := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return elapsed, fmt.Errorf("still open after %s", bound)
	}
	return elapsed, nil // EOF (Copy's nil) or a reset
}

// get sends one keep-alive request on c and reads the answer.
func get(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestHTTPLimits_Defaults(t *testing.T) {
	d := HTTPLimits{}.withDefaults()
	if d.ReadTimeout <= 0 || d.ReadTimeout > 30*time.Second {
		t.Errorf("default read timeout %s, want at most 30s", d.ReadTimeout)
	}
	if d.ReadHeaderTimeout <= 0 || d.ReadHeaderTimeout > d.ReadTimeout {
		t.Errorf("default header timeout %s", d.ReadHeaderTimeout)
	}
	if d.IdleTimeout != 90*time.Second || d.MaxConnections != 4096 || d.WriteTimeout <= 30*time.Second {
		t.Errorf("defaults %+v", d)
	}
	if got := (HTTPLimits{ReadTimeout: time.Second}).withDefaults().ReadHeaderTimeout; got != time.Second {
		t.Errorf("a header timeout longer than the read timeout: %s", got)
	}
}

// A request body trickled a byte at a time is cut off by the read timeout,
// and so are headers trickled the same way.
func TestHTTPServer_CutsOffTrickledRequests(t *testing.T) {
	lim := HTTPLimits{ReadTimeout: time.Second, ReadHeaderTimeout: 500 * time.Millisecond}
	addr, _ := startLimited(t, lim, echoBody)
	cases := []struct {
		name  string
		head  string
		bound time.Duration
	}{
		{"body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", lim.ReadTimeout},
		{"headers", "POST / HTTP/1.1\r\nHost: x\r\n", lim.ReadHeaderTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			io.WriteString(c, tc.head)
			stop := make(chan struct{})
			defer close(stop)
			go trickle(c, 100*time.Millisecond, stop)
			// The server, not the client, ends it: well before the 1000
			// bytes (100 s at this pace), within the timeout and slack.
			elapsed, err := closedBy(c, tc.bound+5*time.Second)
			if err != nil {
				t.Fatalf("a trickled %s was not cut off: %v", tc.name, err)
			}
			t.Logf("cut off after %s", elapsed)
		})
	}
}

// trickle writes one byte every pace until stopped or the write fails.
func trickle(c net.Conn, pace time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(pace)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := c.Write([]byte("a")); err != nil {
				return
			}
		}
	}
}

// A handler may take longer than the server's read timeout by extending its
// own deadline with http.ResponseController (the snapshot upload does):
// the server's limits do not get in its way.
func TestHTTPServer_HandlersExtendTheirDeadlinesWithResponseController(t *testing.T) {
	lim := HTTPLimits{ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
	addr, _ := startLimited(t, lim, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := rc.SetWriteDeadline(time.Now().Add(20 * time.Second)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		echoBody(w, r)
	})
	c := dial(t, addr)
	const n = 12
	io.WriteString(c, fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n))
	stop := make(chan struct{})
	defer close(stop)
	go trickle(c, 100*time.Millisecond, stop) // 1.2 s: four read timeouts
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != fmt.Sprint(n) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestHTTPServer_ClosesIdleKeepAliveConnections(t *testing.T) {
	addr, cl := startLimited(t, HTTPLimits{IdleTimeout: 300 * time.Millisecond}, echoBody)
	c := dial(t, addr)
	get(t, c, bufio.NewReader(c))
	elapsed, err := closedBy(c, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed < 200*time.Millisecond {
		t.Fatalf("closed after %s, before the idle timeout", elapsed)
	}
	testutil.Eventually(t, "the closed connection to be forgotten", 5*time.Second, func() bool {
		f, a, i := cl.held()
		return f+a+i == 0
	})
}

// At the cap, a new connection is admitted by closing the longest-idle
// keep-alive connection, else the oldest one that has not sent a request
// yet; when every held connection runs a request it is refused at once,
// and the busy ones finish undisturbed.
func TestConnLimiter_AtTheCapClosesIdleThenSilentThenRefuses(t *testing.T) {
	release := make(chan struct{})
	addr, cl := startLimited(t, HTTPLimits{MaxConnections: 3}, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			<-release
		}
		echoBody(w, r)
	})
	waitHeld := func(what string, fresh, active, idle int) {
		t.Helper()
		testutil.Eventually(t, what, 10*time.Second, func() bool {
			f, a, i := cl.held()
			return f == fresh && a == active && i == idle
		})
	}
	idleOld, idleNew := dial(t, addr), dial(t, addr)
	get(t, idleOld, bufio.NewReader(idleOld))
	// The client has its answer before the server marks the connection
	// idle: wait for that mark, so that idleOld is idle for longer.
	waitHeld("one idle", 1, 0, 1)
	get(t, idleNew, bufio.NewReader(idleNew))
	silent := dial(t, addr)
	waitHeld("two idle, one silent", 1, 0, 2)

	dial(t, addr)
	if _, err := closedBy(idleOld, 5*time.Second); err != nil {
		t.Fatalf("the longest-idle connection: %v", err)
	}
	waitHeld("the newcomer admitted", 2, 0, 1)
	dial(t, addr)
	if _, err := closedBy(idleNew, 5*time.Second); err != nil {
		t.Fatalf("the other idle connection: %v", err)
	}
	dial(t, addr)
	if _, err := closedBy(silent, 5*time.Second); err != nil {
		t.Fatalf("the oldest silent connection: %v", err)
	}
	if got := value(cl.evicted); got != 3 {
		t.Fatalf("evicted %v, want 3", got)
	}

	// Three connections running a request: the cap is all busy.
	busy := make([]net.Conn, 3)
	for i := range busy {
		busy[i] = dial(t, addr)
		io.WriteString(busy[i], "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
	}
	waitHeld("three active", 0, 3, 0)
	refused := dial(t, addr)
	elapsed, err := closedBy(refused, 5*time.Second)
	if err != nil {
		t.Fatalf("a connection past a busy cap: %v", err)
	}
	if got := value(cl.rejected); got != 1 {
		t.Fatalf("rejected %v, want 1", got)
	}
	t.Logf("refused in %s", elapsed)
	close(release)
	for _, c := range busy {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a busy connection was disturbed: %v", err)
		}
		resp.Body.Close()
	}
	waitHeld("three idle", 0, 0, 3)
	if g := value(cl.gauge.WithLabelValues("idle")); g != 3 {
		t.Fatalf("kms_http_connections{state=idle} = %v", g)
	}
}

// value reads a counter or a gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	m.Write(&d)
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// raiseNoFile raises the test process's soft open-file limit to the hard
// limit and returns how many more descriptors it may open.
func raiseNoFile(t *testing.T) int {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return int(lim.Cur) - len(open)
}

func isTooManyFiles(err error) bool {
	return err != nil && (errors.Is(err, syscall.EMFILE) || strings.Contains(err.Error(), "too many open files"))
}

// Over HTTPS (HTTP/1.1 and HTTP/2) the limiter follows the same
// connections: the server reports the TLS connection, the limiter admitted
// the TCP one under it.
func TestConnLimiter_FollowsTLSConnections(t *testing.T) {
	ca := newTestCA(t, "api-ca")
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv, cl := newHTTPServer(http.HandlerFunc(echoBody), ln, HTTPLimits{MaxConnections: 1}, prometheus.NewRegistry())
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "api")}}
			go srv.ServeTLS(cl, "", "")
			t.Cleanup(func() { srv.Close() })
			newClient := func() *http.Client {
				tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: h2}
				t.Cleanup(tr.CloseIdleConnections)
				return &http.Client{Transport: tr, Timeout: 10 * time.Second}
			}
			for i, c := range []*http.Client{newClient(), newClient()} {
				resp, err := c.Post("https://"+ln.Addr().String()+"/", "text/plain", strings.NewReader("abc"))
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if (resp.ProtoMajor == 2) != h2 {
					t.Fatalf("protocol %s", resp.Proto)
				}
				testutil.Eventually(t, "one idle connection", 5*time.Second, func() bool {
					f, a, i := cl.held()
					return f == 0 && a == 0 && i == 1
				})
			}
			if got := value(cl.evicted); got != 1 {
				t.Fatalf("evicted %v, want 1 (the first client's idle connection)", got)
			}
		})
	}
}

// The tracker's cost per keep-alive request: two state changes (active,
// then idle again), as http.Server reports them.
//
//	go test -run '^$' -bench ConnLimiter_KeepAliveRequest -benchmem ./internal/node/
func BenchmarkConnLimiter_KeepAliveRequest(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	l := newConnLimiter(ln, 4096, nil, apiConnMetrics)
	conns := make([]net.Conn, 64)
	for i := range conns {
		c, _ := net.Pipe()
		defer c.Close()
		conns[i] = c
		if _, ok := l.admit(c); !ok {
			b.Fatal("not admitted")
		}
		l.connState(c, http.StateActive)
		l.connState(c, http.StateIdle)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := conns[i%len(conns)]
		l.connState(c, http.StateActive)
		l.connState(c, http.StateIdle)
	}
}
