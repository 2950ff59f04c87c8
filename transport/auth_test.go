package transport

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// rawClientAuth runs the client half of the handshake on c by hand, proving
// key for addr. It returns the server's answer byte (the echoed protocol
// byte, or authRefused) and an error if the server's proof is wrong.
func rawClientAuth(c net.Conn, key []byte, proto byte, addr string) (byte, error) {
	nc := bytes.Repeat([]byte{1}, authNonceSize)
	if _, err := c.Write(append([]byte{proto}, nc...)); err != nil {
		return 0, err
	}
	ns := make([]byte, authNonceSize)
	if _, err := io.ReadFull(c, ns); err != nil {
		return 0, fmt.Errorf("no server nonce: %w", err)
	}
	if _, err := c.Write(authProof(key, authRoleClient, proto, addr, nc, ns, nil)); err != nil {
		return 0, err
	}
	var reply [1]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return 0, fmt.Errorf("no answer to the proof: %w", err)
	}
	if reply[0] != proto {
		return reply[0], nil
	}
	mac := make([]byte, authMACSize)
	if _, err := io.ReadFull(c, mac); err != nil {
		return reply[0], err
	}
	if !hmac.Equal(mac, authProof(key, authRoleServer, proto, addr, nc, ns, nil)) {
		return reply[0], errors.New("server proof is wrong")
	}
	return reply[0], nil
}

// rawServerAuth runs the server half by hand with key, without checking the
// client's proof, and answers with echo (0: the protocol byte received).
func rawServerAuth(c net.Conn, key []byte, echo byte) error {
	first := make([]byte, 1+authNonceSize)
	if _, err := io.ReadFull(c, first); err != nil {
		return err
	}
	proto, nc := first[0], first[1:]
	ns := bytes.Repeat([]byte{2}, authNonceSize)
	if _, err := c.Write(ns); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, make([]byte, authMACSize)); err != nil {
		return err
	}
	if echo == 0 {
		echo = proto
	}
	_, err := c.Write(append([]byte{echo}, authProof(key, authRoleServer, proto, c.LocalAddr().String(), nc, ns, nil)...))
	return err
}

// logBuffer collects a transport's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hasWarn reports whether a warn line mentions every one of words.
func (b *logBuffer) hasWarn(words ...string) bool {
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.Contains(line, "[WARN]") {
			continue
		}
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

// guardedServer is a transport whose "store.apply" handler counts its runs
// and whose log is captured.
func guardedServer(t *testing.T, mods ...func(*Config)) (*Transport, *atomic.Int32, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	var ran atomic.Int32
	srv := newTestTransport(t, append([]func(*Config){func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "transport", Level: hclog.Debug, Output: logs})
	}}, mods...)...)
	srv.Handle("store.apply", func(ctx context.Context, req []byte) ([]byte, error) { ran.Add(1); return []byte("applied"), nil })
	return srv, &ran, logs
}

// expectNoAnswer reads until the server closes c and fails if it sent any
// byte or left the connection open.
func expectNoAnswer(t *testing.T, c net.Conn) {
	t.Helper()
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server left the connection open")
	}
	if len(got) != 0 {
		t.Fatalf("server answered %d bytes: %q", len(got), got)
	}
}

// The attack of issue 9, point 4: the pre-authentication handshake (a
// protocol byte, then an RPC frame) must no longer reach a handler.
func TestAuth_LegacyHandshakeIsClosedWithoutAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto byte
	}{{"rpc store.apply", legacyProtoRPC}, {"raft", legacyProtoRaft}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, ran, logs := guardedServer(t)
			c := rawConn(t, srv)
			forged := append([]byte{tc.proto}, encodeRequest(1, 0, "store.apply", []byte("\x16forged SetKeyPolicy"))...)
			if _, err := c.Write(forged); err != nil {
				t.Fatal(err)
			}
			expectNoAnswer(t, c)
			if n := ran.Load(); n != 0 {
				t.Fatalf("handler ran %d times for an unauthenticated peer", n)
			}
			waitFor(t, 5*time.Second, "a warning naming the remote address", func() bool {
				return logs.hasWarn("unauthenticated", c.LocalAddr().String())
			})
		})
	}
}

// A peer that speaks the new handshake but cannot prove the key is refused
// after its proof, before anything it sent next is read.
func TestAuth_WrongProofIsRefusedBeforeDispatch(t *testing.T) {
	srv, ran, logs := guardedServer(t)
	c := rawConn(t, srv)
	nc := make([]byte, authNonceSize)
	c.Write(append([]byte{ProtoRPC}, nc...))
	ns := make([]byte, authNonceSize)
	if _, err := io.ReadFull(c, ns); err != nil {
		t.Fatalf("no server nonce: %v", err)
	}
	// A guessed proof with the request right behind it, in one write.
	wrongKey := bytes.Repeat([]byte{0x66}, 32)
	msg := append(authProof(wrongKey, authRoleClient, ProtoRPC, srv.Addr(), nc, ns, nil),
		encodeRequest(1, 0, "store.apply", []byte("forged"))...)
	c.Write(msg)
	var reply [1]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil || reply[0] != authRefused {
		t.Fatalf("answer to a wrong proof: %#x, %v; want the refusal byte", reply[0], err)
	}
	expectNoAnswer(t, c)
	if n := ran.Load(); n != 0 {
		t.Fatalf("handler ran %d times", n)
	}
	waitFor(t, 5*time.Second, "a warning naming the remote address", func() bool {
		return logs.hasWarn("failed cluster authentication", c.LocalAddr().String())
	})
}

// A proof made for another address is refused: a node tricked into dialing
// an impostor cannot have its proof relayed to a real node.
func TestAuth_ProofForAnotherAddressIsRefused(t *testing.T) {
	srv, ran, _ := guardedServer(t)
	c := rawConn(t, srv)
	reply, err := rawClientAuth(c, testAuthKey, ProtoRPC, "127.0.0.1:1")
	if err != nil || reply != authRefused {
		t.Fatalf("relayed proof: answer %#x, %v; want the refusal byte", reply, err)
	}
	// The same key, for the right address, is accepted.
	c2 := rawConn(t, srv)
	if reply, err := rawClientAuth(c2, testAuthKey, ProtoRPC, srv.Addr()); err != nil || reply != ProtoRPC {
		t.Fatalf("honest proof: answer %#x, %v", reply, err)
	}
	if ran.Load() != 0 {
		t.Fatal("handler ran")
	}
}

func TestAuth_SilentAfterProtocolByteIsClosedAfterHandshakeTimeout(t *testing.T) {
	srv, _, logs := guardedServer(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	c := rawConn(t, srv)
	c.Write(append([]byte{ProtoRPC}, make([]byte, authNonceSize)...))
	if _, err := io.ReadFull(c, make([]byte, authNonceSize)); err != nil {
		t.Fatalf("no server nonce: %v", err)
	}
	expectNoAnswer(t, c)
	waitFor(t, 5*time.Second, "a warning naming the remote address", func() bool {
		return logs.hasWarn("did not complete cluster authentication", c.LocalAddr().String())
	})
}

// Two transports with different keys refuse each other, whichever dials,
// on both protocols, with an error that says so.
func TestAuth_DifferentKeyIsRefusedBothDirections(t *testing.T) {
	otherKey := bytes.Repeat([]byte{0x77}, 32)
	a, ranA, logsA := guardedServer(t)
	b, ranB, logsB := guardedServer(t, func(c *Config) { c.AuthKey = otherKey })
	for _, d := range []struct {
		name     string
		from, to *Transport
		toLogs   *logBuffer
	}{{"a dials b", a, b, logsB}, {"b dials a", b, a, logsA}} {
		t.Run(d.name, func(t *testing.T) {
			_, err := d.from.Call(context.Background(), d.to.Addr(), "store.apply", []byte("x"))
			if !errors.Is(err, ErrPeerAuth) || !errors.Is(err, ErrUnreachable) {
				t.Fatalf("Call: %v; want ErrPeerAuth and ErrUnreachable", err)
			}
			if c, err := d.from.StreamLayer().Dial(raft.ServerAddress(d.to.Addr()), 5*time.Second); !errors.Is(err, ErrPeerAuth) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("raft Dial: %v; want ErrPeerAuth", err)
			}
			waitFor(t, 5*time.Second, "the accepting side to log the refusal", func() bool {
				return d.toLogs.hasWarn("failed cluster authentication", "remote=")
			})
		})
	}
	if ranA.Load()+ranB.Load() != 0 {
		t.Fatal("a handler ran across different keys")
	}
	// The same key works (the servers are healthy).
	c := newTestTransport(t)
	if resp, err := c.Call(context.Background(), a.Addr(), "store.apply", nil); err != nil || string(resp) != "applied" {
		t.Fatalf("call with the right key: %q, %v", resp, err)
	}
}

// A server that cannot prove the key (it answers the handshake with a
// made-up proof) never sees a request: the client checks the server's proof
// before sending anything.
func TestAuth_ImpostorServerGetsNoRequest(t *testing.T) {
	after := make(chan int, 1)
	addr := fakeServer(t, func(c net.Conn) {
		if err := rawServerAuth(c, bytes.Repeat([]byte{0x99}, 32), 0); err != nil {
			after <- -1
			return
		}
		rest, _ := io.ReadAll(c)
		after <- len(rest)
	})
	cli := newTestTransport(t)
	_, err := cli.Call(context.Background(), addr, "store.apply", []byte("secret write"))
	if !errors.Is(err, ErrPeerAuth) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Call to an impostor: %v; want ErrPeerAuth", err)
	}
	if n := recv(t, after, "the impostor to finish"); n != 0 {
		t.Fatalf("impostor received %d bytes after the handshake", n)
	}
}
