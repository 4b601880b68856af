package epoll

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
)

// startServer starts a one-loop server on 127.0.0.1, closed when tb ends.
func startServer(tb testing.TB, proto backends.Proto, service backends.Service) *Server {
	tb.Helper()
	srv, err := New(backends.Config{Proto: proto, Service: service, Host: "127.0.0.1", CPUs: []int{0}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Error(err)
		}
	})
	return srv
}

// rawClient connects a blocking socket with unix calls only, so that a
// benchmark's allocs/op are the server's.
func rawClient(tb testing.TB, proto backends.Proto, port int) int {
	tb.Helper()
	typ := unix.SOCK_STREAM
	if proto == backends.UDP {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	if proto == backends.TCP {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	// A lost datagram must fail the benchmark, not hang it.
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	return fd
}

// benchEcho measures one request/response per op. allocs/op is the
// server's data path (the client makes raw syscalls): it must be 0.
func benchEcho(b *testing.B, proto backends.Proto, size int) {
	srv := startServer(b, proto, backends.Echo)
	fd := rawClient(b, proto, srv.Port())
	req := bytes.Repeat([]byte{0x5a}, size)
	resp := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Write(fd, req); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < size; {
			n, err := unix.Read(fd, resp[got:])
			if err == unix.EINTR {
				// The runtime's preemption signal interrupts a read that
				// has a receive timeout.
				continue
			}
			if err != nil || n == 0 {
				b.Fatalf("read echo: %d, %v", n, err)
			}
			got += n
		}
	}
	c := srv.Counters()
	b.ReportMetric(float64(c.Syscalls)/float64(b.N), "syscalls/op")
}

func BenchmarkEchoTCP64(b *testing.B)   { benchEcho(b, backends.TCP, 64) }
func BenchmarkEchoTCP1460(b *testing.B) { benchEcho(b, backends.TCP, 1460) }
func BenchmarkEchoUDP64(b *testing.B)   { benchEcho(b, backends.UDP, 64) }
func BenchmarkEchoUDP1472(b *testing.B) { benchEcho(b, backends.UDP, 1472) }

// BenchmarkSinkTCP64K streams 64 KiB writes into a sink.
func BenchmarkSinkTCP64K(b *testing.B) {
	srv := startServer(b, backends.TCP, backends.Sink)
	fd := rawClient(b, backends.TCP, srv.Port())
	p := make([]byte, 64<<10)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Write(fd, p); err != nil {
			b.Fatal(err)
		}
	}
}

// While a client writes without reading, an echo server stops reading once
// its output is pending: what it has read and not yet written back never
// exceeds one connection buffer.
func TestEchoBackPressure(t *testing.T) {
	srv := startServer(t, backends.TCP, backends.Echo)
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const total = 8 << 20
	want := make([]byte, total)
	for i := range want {
		want[i] = byte(i * 7)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	limit := uint64(srv.loops[0].connBuffer)
	// The client reads nothing for a while; the bound must hold at every
	// sample, whatever the server managed to do meanwhile.
	for range 200 {
		cs := srv.Counters()
		if cs.RxBytes-cs.TxBytes > limit {
			t.Fatalf("server holds %d bytes read and not written back, over its %d-byte buffer", cs.RxBytes-cs.TxBytes, limit)
		}
		time.Sleep(time.Millisecond)
	}
	got := make([]byte, total)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo differs from the bytes sent")
	}
}
