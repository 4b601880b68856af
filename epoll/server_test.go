package epoll

import (
	"errors"
	"strings"
	"testing"

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
