package epoll

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/tsc"
)

func TestRequests(t *testing.T) {
	for _, tc := range []struct {
		partial, n, size int
		done             uint64
		rest             int
	}{
		{0, 0, 64, 0, 0},
		{0, 63, 64, 0, 63},
		{0, 64, 64, 1, 0},
		{63, 1, 64, 1, 0},
		{40, 60, 64, 1, 36},
		{0, 1000, 100, 10, 0},
		{50, 1000, 100, 10, 50},
		{99, 32 << 10, 1, 32<<10 + 99, 0},
	} {
		t.Run(fmt.Sprintf("%d+%d/%d", tc.partial, tc.n, tc.size), func(t *testing.T) {
			done, rest := requests(tc.partial, tc.n, tc.size)
			if done != tc.done || rest != tc.rest {
				t.Errorf("requests(%d, %d, %d) = %d, %d; want %d, %d", tc.partial, tc.n, tc.size, done, rest, tc.done, tc.rest)
			}
		})
	}
}

func TestBurnRejects(t *testing.T) {
	echo := func(opts map[string]string) backends.Config {
		return backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "127.0.0.1", Options: opts}
	}
	for _, tc := range []struct {
		name        string
		cfg         backends.Config
		want        string
		unsupported bool
	}{
		{"garbage", echo(map[string]string{"cycles": "abc"}), "burn: option cycles=abc: invalid syntax", false},
		{"negative", echo(map[string]string{"cycles": "-1"}), "burn: option cycles=-1: invalid syntax", false},
		{"empty", echo(map[string]string{"cycles": ""}), "burn: option cycles=: invalid syntax", false},
		{"out of range", echo(map[string]string{"cycles": "99999999999999999999"}), "burn: option cycles=99999999999999999999: value out of range", false},
		{"over the limit", echo(map[string]string{"cycles": "5000000000"}), "burn: option cycles=5000000000: over 4294967296", false},
		{"unknown option", echo(map[string]string{"cycles": "1", "spin": "2"}), "burn: unknown option spin (burn takes cycles)", false},
		{"sink", backends.Config{Proto: backends.TCP, Service: backends.Sink}, "burn sink not supported: burn serves echo only", true},
		{"source", backends.Config{Proto: backends.UDP, Service: backends.Source}, "burn source not supported", true},
		{"bad host", backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: "localhost"}, "parse host", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := NewBurn(tc.cfg)
			if err == nil {
				srv.Close()
				t.Fatalf("NewBurn(%+v) succeeded", tc.cfg)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewBurn: %v, want an error containing %q", err, tc.want)
			}
			if errors.Is(err, backends.ErrNotSupported) != tc.unsupported {
				t.Errorf("NewBurn: %v: errors.Is(err, ErrNotSupported) = %v, want %v", err, !tc.unsupported, tc.unsupported)
			}
		})
	}
}

func TestBurnRegistered(t *testing.T) {
	b, err := backends.Lookup("burn")
	if err != nil {
		t.Fatal(err)
	}
	if b.Family != "burn" || b.Variant != "default" {
		t.Errorf("registered as family %q variant %q", b.Family, b.Variant)
	}
	if !strings.Contains(b.Summary, "ground truth") {
		t.Errorf("Summary %q does not say burn is a meter ground truth", b.Summary)
	}
	for _, p := range []backends.Proto{backends.TCP, backends.UDP} {
		if err := b.Supports(p, backends.Echo); err != nil {
			t.Errorf("Supports(%s, echo): %v", p, err)
		}
		for _, s := range []backends.Service{backends.Sink, backends.Source} {
			if err := b.Supports(p, s); !errors.Is(err, backends.ErrNotSupported) {
				t.Errorf("Supports(%s, %s) = %v, want ErrNotSupported", p, s, err)
			}
		}
	}
	if err := b.Probe(); err != nil && !errors.Is(err, backends.ErrNotSupported) {
		t.Errorf("Probe: %v", err)
	}
}

// startBurn starts a one-loop burn server on 127.0.0.1, closed when tb ends.
func startBurn(tb testing.TB, cfg backends.Config) *Server {
	tb.Helper()
	cfg.Host, cfg.CPUs, cfg.Service = "127.0.0.1", []int{0}, backends.Echo
	srv, err := NewBurn(cfg)
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

// waitBurn waits until the server has spun for requests requests, and
// fails if it spun for more, or for fewer than cycles each.
func waitBurn(t *testing.T, srv *Server, requests, cycles uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := srv.Counters()
		got := c.Extra["burn_requests"]
		if got > requests {
			t.Fatalf("burn_requests = %d, want %d", got, requests)
		}
		if got == requests {
			if spun := c.Extra["burn_cycles"]; spun < requests*cycles {
				t.Fatalf("burn_cycles = %d for %d requests of %d cycles", spun, requests, cycles)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("burn_requests = %d, want %d (counters %+v)", got, requests, c)
		}
		time.Sleep(time.Millisecond)
	}
}

// A TCP request is MsgSize bytes of the stream, however the reads cut it:
// one split across writes is spun for once, several in one write each
// once, and the bytes of an unfinished one wait for the rest.
func TestBurnTCPRequests(t *testing.T) {
	const size, cycles = 100, 1000
	srv := startBurn(t, backends.Config{Proto: backends.TCP, MsgSize: size, Options: map[string]string{"cycles": strconv.Itoa(cycles)}})
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var off int
	for _, step := range []struct {
		write int
		total uint64 // requests complete after it
	}{
		{40, 0},    // 40 of the first
		{60, 1},    // its last 60
		{250, 3},   // two whole, half of the fourth
		{49, 3},    // 99 of the fourth
		{1, 4},     // its last byte
		{1000, 14}, // ten at once
	} {
		msg := make([]byte, step.write)
		for i := range msg {
			msg[i] = byte(off + i)
		}
		off += step.write
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("read echo: %v", err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("echo differs from the bytes sent")
		}
		waitBurn(t, srv, step.total, cycles)
	}
}

// A UDP request is a datagram; an oversize one is dropped, not spun for.
func TestBurnUDPRequests(t *testing.T) {
	const cycles = 1000
	srv := startBurn(t, backends.Config{Proto: backends.UDP, MaxMsg: 100, Options: map[string]string{"cycles": strconv.Itoa(cycles)}})
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var want uint64
	for _, size := range []int{1, 100, 101, 64, 1000, 7} {
		if _, err := c.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if size > 100 {
			continue
		}
		want++
		buf := make([]byte, 2000)
		if n, err := c.Read(buf); err != nil || n != size {
			t.Fatalf("read echo of %d bytes: %d, %v", size, n, err)
		}
		waitBurn(t, srv, want, cycles)
	}
	if d := srv.Counters().Dropped; d != 2 {
		t.Errorf("Dropped = %d, want the 2 oversize datagrams", d)
	}
}

// The spin is on the echo's path: no reply comes sooner than the spin's
// cycles at the TSC frequency.
func TestBurnDelaysEcho(t *testing.T) {
	hz, src := tsc.Hz()
	if hz <= 0 {
		t.Skipf("skipped: TSC frequency unknown (%s)", src)
	}
	const spin = 20 * time.Millisecond
	cycles := uint64(spin.Seconds() * hz)
	for _, proto := range []backends.Proto{backends.TCP, backends.UDP} {
		t.Run(string(proto), func(t *testing.T) {
			srv := startBurn(t, backends.Config{Proto: proto, MsgSize: 64, Options: map[string]string{"cycles": strconv.FormatUint(cycles, 10)}})
			fd := rawClient(t, proto, srv.Port())
			msg, got := make([]byte, 64), make([]byte, 64)
			for range 3 {
				start := time.Now()
				if _, err := unix.Write(fd, msg); err != nil {
					t.Fatal(err)
				}
				for n := 0; n < len(got); {
					m, err := unix.Read(fd, got[n:])
					if err == unix.EINTR {
						continue
					}
					if err != nil || m == 0 {
						t.Fatalf("read echo: %d, %v", m, err)
					}
					n += m
				}
				if d := time.Since(start); d < spin {
					t.Errorf("echo after %v, sooner than its %d-cycle spin (%v at %.0f Hz, %s)", d, cycles, spin, hz, src)
				}
			}
		})
	}
}

// Plain epoll's work counts nothing and reports nothing: its Extra holds
// its waits alone.
func TestEpollReportsNoWork(t *testing.T) {
	srv := startServer(t, backends.UDP, backends.Echo)
	c := srv.Counters()
	for k := range c.Extra {
		if k != "raw_waits" && k != "runtime_waits" {
			t.Errorf("epoll Counters().Extra = %v, want its waits alone", c.Extra)
			break
		}
	}
}

// benchBurnEcho is benchEcho's request/response against burn: with
// cycles=0 its allocs/op must be 0 too.
func benchBurnEcho(b *testing.B, proto backends.Proto, size int) {
	srv := startBurn(b, backends.Config{Proto: proto, MsgSize: size, Options: map[string]string{"cycles": "0"}})
	fd := rawClient(b, proto, srv.Port())
	req, resp := make([]byte, size), make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Write(fd, req); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < size; {
			n, err := unix.Read(fd, resp[got:])
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				b.Fatalf("read echo: %d, %v", n, err)
			}
			got += n
		}
	}
	c := srv.Counters()
	b.ReportMetric(float64(c.Extra["burn_requests"])/float64(b.N), "requests/op")
}

func BenchmarkBurnEchoTCP64(b *testing.B) { benchBurnEcho(b, backends.TCP, 64) }
func BenchmarkBurnEchoUDP64(b *testing.B) { benchBurnEcho(b, backends.UDP, 64) }
