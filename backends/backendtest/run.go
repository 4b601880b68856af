package backendtest

import (
	"context"
	"io"
	"maps"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringbench/backends"
	"ringbench/internal/testenv"
)

// Check names one conformance check, so RunOptions.Skip can leave it out.
type Check string

// The checks.
const (
	CheckEcho      Check = "echo"       // each size echoed exactly, one message at a time
	CheckPipelined Check = "pipelined"  // several messages written before the replies are read
	CheckManyConns Check = "many-conns" // hundreds of TCP connections at once
	CheckHalfClose Check = "half-close" // shutdown(SHUT_WR): everything echoed, then EOF
	CheckReset     Check = "reset"      // a peer's RST is survived and counted
	CheckOversize  Check = "oversize"   // a datagram over MaxDatagram is dropped and counted
	CheckSink      Check = "sink"       // every byte sent is counted in RxBytes
	CheckSource    Check = "source"     // the source pattern arrives intact from offset 0
	CheckCounters  Check = "counters"   // counters agree with the traffic
	CheckTwoLoops  Check = "two-loops"  // two loops on two CPUs serve one port
	CheckClose     Check = "close"      // Close with live connections frees everything
)

// RunOptions adapts the suite to a backend. The zero value tests a kernel
// backend on loopback.
type RunOptions struct {
	// Host is the address servers listen on (Config.Host); default
	// "127.0.0.1".
	Host string
	// DialHost is the address clients connect to; default Host.
	DialHost string
	// Iface is passed as Config.Iface.
	Iface string
	// Options are added to every server's Config.Options.
	Options map[string]string
	// Dial makes a client connection ("tcp" or "udp"); default a
	// net.Dialer. A test with the server behind a veth dials from inside
	// the client's network namespace.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Skip leaves checks out, each with the reason the skip reports.
	Skip map[Check]string
	// NoSyscalls declares that the backend makes no syscalls on its data
	// path (DPDK busy-polls), so Counters.Syscalls may stay 0.
	NoSyscalls bool
	// OneLoop and TwoLoops are the Config.CPUs of the one-loop servers and
	// of the two-loop server; defaults {0} and {0, 1}.
	OneLoop, TwoLoops []int
	// Timeout bounds each exchange and each wait for counters; default 10s.
	Timeout time.Duration
	// KeepsFD reports whether an fd a server left open after Close (named
	// by its /proc/self/fd link, "/dev/hugepages/rtemap_0") is one the
	// backend keeps for the life of the process, such as DPDK's EAL
	// hugepage and vfio files; the leak check passes over those. Default:
	// none.
	KeepsFD func(target string) bool
}

// Run runs the conformance suite against the backend registered as name,
// with at most one RunOptions.
func Run(t *testing.T, name string, opts ...RunOptions) {
	t.Helper()
	if len(opts) > 1 {
		t.Fatalf("backendtest.Run takes at most one RunOptions, got %d", len(opts))
	}
	var o RunOptions
	if len(opts) == 1 {
		o = opts[0]
	}
	o.fill()
	b, err := backends.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	testenv.SkipIfUnsupported(t, b.Probe())
	for _, p := range b.Protos {
		for _, svc := range b.Services {
			s := suite{b: b, o: o, proto: p, service: svc}
			t.Run(string(p)+"/"+string(svc), s.run)
		}
	}
}

func (o *RunOptions) fill() {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.DialHost == "" {
		o.DialHost = o.Host
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	// CPUs 0 and 1 unless this process may not run there (taskset, a
	// cpuset): then the first CPUs it may use.
	allowed := allowedCPUs()
	if o.OneLoop == nil {
		o.OneLoop = []int{0}
		if len(allowed) > 0 && allowed[0] != 0 {
			o.OneLoop = allowed[:1]
		}
	}
	if o.TwoLoops == nil {
		o.TwoLoops = []int{0, 1}
		if len(allowed) >= 2 && !usableCPUs(o.TwoLoops) {
			o.TwoLoops = allowed[:2]
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
}

// suite runs the checks of one protocol and service.
type suite struct {
	b       backends.Backend
	o       RunOptions
	proto   backends.Proto
	service backends.Service
}

func (s suite) run(t *testing.T) {
	switch {
	case s.proto == backends.TCP && s.service == backends.Echo:
		s.check(t, CheckEcho, s.tcpEcho)
		s.check(t, CheckPipelined, s.tcpPipelined)
		s.check(t, CheckManyConns, s.tcpManyConns)
		s.check(t, CheckHalfClose, s.tcpHalfClose)
		s.check(t, CheckReset, s.tcpReset)
		s.check(t, CheckCounters, s.tcpEchoCounters)
		s.check(t, CheckTwoLoops, s.tcpTwoLoops)
	case s.proto == backends.UDP && s.service == backends.Echo:
		s.check(t, CheckEcho, s.udpEcho)
		s.check(t, CheckPipelined, s.udpBurst)
		s.check(t, CheckOversize, s.udpOversizeEcho)
		s.check(t, CheckCounters, s.udpEchoCounters)
		s.check(t, CheckTwoLoops, s.udpTwoLoops)
	case s.proto == backends.TCP && s.service == backends.Sink:
		s.check(t, CheckSink, s.tcpSink)
	case s.proto == backends.UDP && s.service == backends.Sink:
		s.check(t, CheckSink, s.udpSink)
		s.check(t, CheckOversize, s.udpOversizeSink)
	case s.proto == backends.TCP && s.service == backends.Source:
		s.check(t, CheckSource, s.tcpSource)
	case s.proto == backends.UDP && s.service == backends.Source:
		s.check(t, CheckSource, s.udpSource)
	default:
		t.Skipf("skipped: no checks for %s %s", s.proto, s.service)
	}
	s.check(t, CheckClose, s.closeLive)
}

func (s suite) check(t *testing.T, c Check, f func(*testing.T)) {
	t.Run(string(c), func(t *testing.T) {
		if why, ok := s.o.Skip[c]; ok {
			t.Skipf("skipped by the backend's test: %s", why)
		}
		f(t)
	})
}

// config returns the server config for this suite on cpus.
func (s suite) config(cpus []int) backends.Config {
	return backends.Config{
		Proto:   s.proto,
		Service: s.service,
		Host:    s.o.Host,
		CPUs:    cpus,
		Iface:   s.o.Iface,
		Options: maps.Clone(s.o.Options),
	}
}

// server is a backend server under test with the clients it made.
type server struct {
	s   suite
	srv backends.Server
}

// start starts a server on cfg. The server is closed, and checked for
// leaks, when t ends, after the clients that t's subtests dialed.
func (s suite) start(t *testing.T, cfg backends.Config) *server {
	t.Helper()
	snap := testenv.TakeSnapshot(s.o.KeepsFD)
	srv, err := s.b.New(cfg)
	testenv.SkipIfUnsupported(t, err)
	h := &server{s: s, srv: srv}
	t.Cleanup(func() {
		if err := closeWithin(srv, s.o.Timeout); err != nil {
			t.Errorf("close server: %v", err)
			return
		}
		if err := snap.Leaks(s.o.Timeout); err != nil {
			t.Errorf("after Close: %v", err)
		}
	})
	if srv.Port() <= 0 {
		t.Errorf("Port() = %d after starting on port 0; want the port the kernel picked", srv.Port())
	}
	return h
}

// closeWithin calls Close and fails if it does not return within d.
func closeWithin(srv backends.Server, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return errTimeout("Close did not return within " + d.String())
	}
}

type errTimeout string

func (e errTimeout) Error() string { return string(e) }

// addr is the address clients dial.
func (h *server) addr() string {
	return net.JoinHostPort(h.s.o.DialHost, strconv.Itoa(h.srv.Port()))
}

// dial connects a client; the connection closes when t ends.
func (h *server) dial(t *testing.T) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.s.o.Timeout)
	defer cancel()
	c, err := h.s.o.Dial(ctx, string(h.s.proto), h.addr())
	if err != nil {
		t.Fatalf("dial %s %s: %v", h.s.proto, h.addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(h.s.o.Timeout))
	return c
}

// dialN dials n clients.
func (h *server) dialN(t *testing.T, n int) []net.Conn {
	t.Helper()
	cs := make([]net.Conn, n)
	for i := range cs {
		cs[i] = h.dial(t)
	}
	return cs
}

// eventually waits until the server's counters satisfy ok, and fails t
// with what it last saw when they do not within the timeout. Counters may
// lag the traffic a little (a loop publishes them between waits).
func (h *server) eventually(t *testing.T, what string, ok func(backends.Counters) bool) backends.Counters {
	t.Helper()
	deadline := time.Now().Add(h.s.o.Timeout)
	for {
		c := h.srv.Counters()
		if ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters: want %s, have %+v", what, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSyscalls waits for the backend to count a syscall, unless it
// declared that it makes none.
func (h *server) checkSyscalls(t *testing.T) {
	t.Helper()
	if h.s.o.NoSyscalls {
		return
	}
	h.eventually(t, "Syscalls > 0 after traffic (a kernel backend counts its own; set RunOptions.NoSyscalls if it makes none)",
		func(c backends.Counters) bool { return c.Syscalls > 0 })
}

// closeLive closes a server while a client connection is open: Close must
// return, the client must see its connection end (TCP), and nothing may
// leak.
func (s suite) closeLive(t *testing.T) {
	snap := testenv.TakeSnapshot(s.o.KeepsFD)
	srv, err := s.b.New(s.config(s.o.OneLoop))
	testenv.SkipIfUnsupported(t, err)
	h := &server{s: s, srv: srv}
	c := h.dial(t)
	switch s.proto {
	case backends.TCP:
		// Make sure the server holds the connection before it closes.
		h.eventually(t, "Accepted = 1", func(c backends.Counters) bool { return c.Accepted == 1 })
	case backends.UDP:
		// A peer to answer: an echo or a source is busy when it closes.
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		h.eventually(t, "RxMsgs = 1", func(c backends.Counters) bool { return c.RxMsgs == 1 })
	}
	if err := closeWithin(srv, s.o.Timeout); err != nil {
		t.Fatalf("close server: %v", err)
	}
	if s.proto == backends.TCP {
		// A source may have left bytes in flight: drain them to the end.
		if _, err := io.Copy(io.Discard, c); isTimeout(err) {
			t.Errorf("read after server Close: %v; the server did not close its side", err)
		}
	}
	c.Close()
	if err := snap.Leaks(s.o.Timeout); err != nil {
		t.Errorf("after Close: %v", err)
	}
}

// allowedCPUs lists the CPUs this process may run on, in order.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// usableCPUs reports whether this process may run on every CPU in cpus.
func usableCPUs(cpus []int) bool {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return false
	}
	for _, c := range cpus {
		if !set.IsSet(c) {
			return false
		}
	}
	return true
}
