package epoll

import (
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringbench/backends"
)

// The precomputed pattern must be the contract's: a source slices it at
// offset%backends.SourcePeriod, so the period must be SourceByte's.
func TestSourcePattern(t *testing.T) {
	p, err := newPlan(backends.Config{Proto: backends.TCP, Service: backends.Source, MsgSize: 1000}, noWork{})
	if err != nil {
		t.Fatal(err)
	}
	for off := uint64(0); off < 3*backends.SourcePeriod; off += 7 {
		k := off % backends.SourcePeriod
		chunk := p.pattern[k : k+uint64(p.msgSize)]
		for i, b := range chunk {
			if want := backends.SourceByte(off + uint64(i)); b != want {
				t.Fatalf("pattern for offset %d, byte %d: %d, want %d", off, i, b, want)
			}
		}
	}
}

// heldPort returns a UDP port that a server holds until t ends.
func heldPort(t *testing.T) int {
	srv, err := New(backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Port()
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  backends.Config
		want string
	}{
		{"unknown option", backends.Config{Proto: backends.TCP, Service: backends.Echo, Options: map[string]string{"sqpoll": "1"}}, "takes no options, got sqpoll"},
		{"IPv6 host", backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "::1"}, "not IPv4"},
		{"bad host", backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: "localhost"}, "parse host"},
		{"unknown protocol", backends.Config{Proto: "sctp", Service: backends.Echo}, "unknown protocol"},
		{"unknown service", backends.Config{Proto: backends.TCP, Service: "discard"}, "unknown service"},
		{"UDP source smaller than its header", backends.Config{Proto: backends.UDP, Service: backends.Source, MsgSize: 4}, "outside"},
		{"UDP source over the datagram limit", backends.Config{Proto: backends.UDP, Service: backends.Source, MsgSize: 2000}, "outside"},
		{"bad port", backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "127.0.0.1", Port: -1}, "bind"},
		{"port in use by a second loop set", backends.Config{Proto: backends.UDP, Service: backends.Echo, Host: "127.0.0.1", Port: heldPort(t)}, "bind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := New(tc.cfg)
			if err == nil {
				srv.Close()
				t.Fatalf("New(%+v) succeeded", tc.cfg)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A loop that cannot be pinned fails New, and New frees what it made
// (testenv.Main fails the package on a leaked fd or goroutine).
func TestNewPinFailure(t *testing.T) {
	const cpu = 1023 // the last CPUSet holds, on no machine this runs on
	srv, err := New(backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "127.0.0.1", CPUs: []int{0, cpu}})
	if err == nil {
		srv.Close()
		t.Fatalf("New with CPU %d succeeded", cpu)
	}
	if !strings.Contains(err.Error(), "pin loop to CPU") {
		t.Errorf("New: %v, want a pinning error", err)
	}
}

func TestRegistered(t *testing.T) {
	b, err := backends.Lookup("epoll")
	if err != nil {
		t.Fatal(err)
	}
	if b.Family != "epoll" || b.Variant != "default" {
		t.Errorf("registered as family %q variant %q", b.Family, b.Variant)
	}
	for _, p := range []backends.Proto{backends.TCP, backends.UDP} {
		for _, s := range []backends.Service{backends.Echo, backends.Sink, backends.Source} {
			if err := b.Supports(p, s); err != nil {
				t.Errorf("Supports(%s, %s): %v", p, s, err)
			}
		}
	}
	if err := b.Probe(); err != nil && !errors.Is(err, backends.ErrNotSupported) {
		t.Errorf("Probe: %v", err)
	}
}

// TestWaitsCounted: the counters say whether the loop's waits were raw. A
// loop waits raw when a P is left for the rest of the process
// (preempt.Hold), through the runtime when none is (GOMAXPROCS 1).
func TestWaitsCounted(t *testing.T) {
	for _, tc := range []struct {
		procs int
		raw   bool
	}{
		{max(2, runtime.GOMAXPROCS(0)), true},
		{1, false},
	} {
		t.Run("GOMAXPROCS="+strconv.Itoa(tc.procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tc.procs))
			srv, err := New(backends.Config{Proto: backends.TCP, Service: backends.Echo, Host: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			echoRounds(t, srv.Port(), 20)
			c := srv.Counters()
			raw, rt := c.Extra["raw_waits"], c.Extra["runtime_waits"]
			if _, ok := c.Extra["runtime_waits"]; !ok {
				t.Fatalf("no runtime_waits in the counters: %v", c.Extra)
			}
			if tc.raw && (raw == 0 || rt != 0) || !tc.raw && (raw != 0 || rt == 0) {
				t.Errorf("raw_waits %d, runtime_waits %d; want the loop's waits all raw: %v", raw, rt, tc.raw)
			}
		})
	}
}

// echoRounds makes rounds 64-byte round trips on one connection; each
// finds the loop waiting.
func echoRounds(t *testing.T, port, rounds int) {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for range rounds {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
}
