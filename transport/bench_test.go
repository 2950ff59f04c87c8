package transport

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
)

// BenchmarkCall_Parallel runs 64 concurrent callers (32 per P) echoing 256
// bytes over one pooled loopback connection, the shape of writes forwarded
// from a follower to the leader. writes/op counts the process's write
// system calls (write, writev; both ends of the connection are in this
// process) from /proc/self/io, when it is readable.
func BenchmarkCall_Parallel(b *testing.B) {
	srv := newBenchTransport(b)
	srv.Handle("echo", echo)
	cli := newBenchTransport(b)
	req := bytes.Repeat([]byte{0x42}, 256)
	if _, err := cli.Call(context.Background(), srv.Addr(), "echo", req); err != nil {
		b.Fatal(err)
	}
	w0, ok := syscw()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cli.Call(context.Background(), srv.Addr(), "echo", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if w1, ok1 := syscw(); ok && ok1 {
		b.ReportMetric(float64(w1-w0)/float64(b.N), "writes/op")
	}
}

// BenchmarkCall_Serial is one caller at a time: nothing to batch, so it
// shows what the batching costs a lone call (the writer's yield).
func BenchmarkCall_Serial(b *testing.B) {
	srv := newBenchTransport(b)
	srv.Handle("echo", echo)
	cli := newBenchTransport(b)
	req := bytes.Repeat([]byte{0x42}, 256)
	w0, ok := syscw()
	b.ResetTimer()
	for range b.N {
		if _, err := cli.Call(context.Background(), srv.Addr(), "echo", req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if w1, ok1 := syscw(); ok && ok1 {
		b.ReportMetric(float64(w1-w0)/float64(b.N), "writes/op")
	}
}

func newBenchTransport(b *testing.B) *Transport {
	tr, err := New(Config{BindAddr: "127.0.0.1:0", AuthKey: testAuthKey, Logger: testLogger("bench")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	return tr
}

// syscw is the number of write system calls this process has made.
func syscw() (int64, bool) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := bytes.CutPrefix(s.Bytes(), []byte("syscw: ")); ok {
			n, err := strconv.ParseInt(string(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
