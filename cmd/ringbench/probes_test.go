package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"ringbench/backends"
	"ringbench/harness"
)

// probe is one clumsy or hostile use of the command (issue 11's probes),
// and what it must come to. Adding a probe is adding a row to probes.
type probe struct {
	name string
	// args of ringbench; "{dir}" is a fresh folder, "{profile}" a file
	// in it holding profile.
	args    []string
	profile string
	// interrupt: a SIGINT once the output holds at ("": before the
	// command starts).
	interrupt bool
	at        string
	want      int    // exit status
	out       string // in the output: stdout, stderr and the final message
	notOut    string // never in it ("": no such check)
}

// A run's flags that keep a probe's trial short: no profile or counting
// window after the cost window.
var quickRun = []string{"--topology", "loopback", "--warmup", "200ms", "--duration", "500ms",
	"--cpu-profile=false", "--count-syscalls=false", "--conns", "2"}

func probeRun(args ...string) []string {
	return append(append([]string{"run", "--out", "{dir}/out"}, quickRun...), args...)
}

// probeBench runs a profile without the validation, the lesson or the report
// unless more turns them back on.
func probeBench(more ...string) []string {
	return append([]string{"bench", "--profile", "{profile}", "--out", "{dir}/out", "--validate=false",
		"--lesson=false", "--report=false", "--cpu-profile=false", "--count-syscalls=false"}, more...)
}

// profileOf is a profile of one experiment: one loopback trial of each
// backend, TCP echo unless proto says otherwise.
func profileOf(proto string, backends ...string) string {
	return probeProfile + `
  - name: probe
    backends: [` + strings.Join(backends, ", ") + `]
    workload: echo
    proto: [` + proto + `]
    size: [64]
    conns: [2]
    depth: [1]
    rate: [0]
`
}

// probeProfile is a probe profile's settings; its experiments follow.
const probeProfile = `name: probe
warmup: 200ms
duration: 500ms
repeats: 1
topology: loopback
experiments:`

// searchOf is an experiment of one rate search (the ndr: key) of backend
// over TCP, bounded so that it starts at its first step.
func searchOf(backend string) string {
	return `
  - name: rate
    backends: [` + backend + `]
    workload: echo
    proto: [tcp]
    conns: [2]
    depth: [1]
    ndr: {loss: 0.005, p99_us: 2000, max_rate: 4000}
`
}

var probes = []probe{
	{name: "flag that does not exist", args: []string{"run", "--nosuch"}, want: exitUsage, out: "flag provided but not defined"},
	{name: "server flips every byte", args: probeRun("--backend", "probe-flip"),
		want: exitFailed, out: "replies were not the bytes sent", notOut: "ringbench: trial failed"},
	// Longer than the generator's 1 s loss timeout, so that requests of
	// the window are given up inside it.
	{name: "silent UDP server", args: probeRun("--backend", "probe-silent", "--proto", "udp", "--duration", "1500ms"),
		want: exitFailed, out: "FAILED: every request was lost: none answered"},
	{name: "silent UDP server, a window shorter than the loss timeout", args: probeRun("--backend", "probe-silent", "--proto", "udp"),
		want: exitFailed, out: "FAILED: 0 ops in the measurement window"},
	{name: "run whose only trial is skipped", args: probeRun("--backend", "dpdk", "--proto", "tcp"),
		want: exitSkipped, out: "skipped: dpdk over tcp not supported: no kernel TCP stack"},
	{name: "bench where every trial fails", args: probeBench(), profile: profileOf("tcp", "probe-flip"),
		want: exitFailed, out: "1 of 1 trials failed"},
	{name: "bench with a trial skipped by design", args: probeBench(), profile: profileOf("tcp", "epoll", "dpdk"),
		want: 0, out: "no kernel TCP stack"},
	{name: "bench whose rate search fails", args: probeBench(), profile: probeProfile + searchOf("probe-flip"),
		want: exitFailed, out: "1 of 1 ndr searches could not finish"},
	{name: "bench whose only rate search is skipped by design", args: probeBench(), profile: probeProfile + searchOf("dpdk"),
		want: exitSkipped, out: "1 of 1 ndr searches skipped"},
	{name: "bench with a trial and a rate search skipped by design", args: probeBench(), profile: profileOf("tcp", "epoll") + searchOf("dpdk"),
		want: 0, out: "no kernel TCP stack"},
	{name: "ndr whose only search is skipped", args: append(append([]string{"ndr", "--out", "{dir}/out"}, quickRun...),
		"--backend", "dpdk", "--proto", "tcp", "--max-rate", "4000"), want: exitSkipped, out: "trial skipped: dpdk over tcp not supported"},
	{name: "Ctrl-C before the first trial ends", args: probeRun("--backend", "epoll"), interrupt: true,
		want: 130, out: "interrupted: 0 finished trials kept", notOut: "no results.jsonl"},
	{name: "Ctrl-C after a trial", args: probeRun("--backend", "epoll", "--repeats", "2"), interrupt: true, at: "[1/2]",
		want: 130, out: "interrupted: 1 finished trials kept"},
	{name: "Ctrl-C in the lesson", args: probeBench("--lesson=true", "--report=true"), profile: profileOf("tcp", "epoll"),
		interrupt: true, at: "lesson:", want: 130, out: "interrupted: 1 finished trials kept", notOut: "report:"},
}

// TestProbes runs each probe in process, as main would, and checks its
// exit status and output.
func TestProbes(t *testing.T) {
	if _, _, err := harness.CPUs(1); err != nil {
		t.Skipf("skipped: %v", err)
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			dir := t.TempDir()
			if p.profile != "" {
				if err := os.WriteFile(filepath.Join(dir, "profile.yaml"), []byte(p.profile), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := make([]string, len(p.args))
			for i, a := range p.args {
				a = strings.ReplaceAll(a, "{profile}", filepath.Join(dir, "profile.yaml"))
				args[i] = strings.ReplaceAll(a, "{dir}", dir)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			out := &probeOutput{}
			if p.interrupt {
				out.at, out.interrupt = p.at, func() { cancel(interrupted{syscall.SIGINT}) }
				if p.at == "" {
					out.interrupt()
				}
			}
			err := ringbench(ctx, args, strings.NewReader(""), out, out)
			status := exit(ctx, err, out)
			got := out.String()
			t.Logf("exit %d; output:\n%s", status, got)
			if status != p.want || !strings.Contains(got, p.out) || p.notOut != "" && strings.Contains(got, p.notOut) {
				t.Errorf("ringbench %s: exit %d, want %d with %q in the output and not %q; output:\n%s",
					strings.Join(args, " "), status, p.want, p.out, p.notOut, got)
			}
		})
	}
}

// probeOutput collects what the command writes, and interrupts it once
// that holds at.
type probeOutput struct {
	mu        sync.Mutex
	b         strings.Builder
	at        string
	interrupt func()
}

func (o *probeOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	if o.interrupt != nil && o.at != "" && strings.Contains(o.b.String(), o.at) {
		o.interrupt()
		o.interrupt = nil
	}
	return len(p), nil
}

func (o *probeOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// The probes' faulty servers, registered in the test binary, which the
// harness runs as its server process (see TestMain): probe-flip echoes
// every byte inverted (TCP and UDP), probe-silent reads UDP and never
// answers.
func init() {
	for _, b := range []struct {
		name   string
		protos []backends.Proto
		flip   bool
	}{
		{"probe-flip", []backends.Proto{backends.TCP, backends.UDP}, true},
		{"probe-silent", []backends.Proto{backends.UDP}, false},
	} {
		backends.Register(backends.Backend{
			Name: b.name, Family: b.name, Summary: "a faulty server for the probes",
			Protos: b.protos, Services: []backends.Service{backends.Echo},
			New: func(cfg backends.Config) (backends.Server, error) { return startFaulty(cfg, b.flip) },
		})
	}
}

type faultyServer struct {
	ln   net.Listener
	pc   net.PacketConn
	flip bool
}

var _ backends.Server = (*faultyServer)(nil)

func startFaulty(cfg backends.Config, flip bool) (*faultyServer, error) {
	s := &faultyServer{flip: flip}
	var err error
	addr := net.JoinHostPort(cfg.Host, "0")
	if cfg.Proto == backends.UDP {
		if s.pc, err = net.ListenPacket("udp", addr); err == nil {
			go s.serveUDP()
		}
	} else if s.ln, err = net.Listen("tcp", addr); err == nil {
		go s.accept()
	}
	return s, err
}

func (s *faultyServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				invert(buf[:n])
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

func (s *faultyServer) serveUDP() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if s.flip {
			invert(buf[:n])
			s.pc.WriteTo(buf[:n], from)
		}
	}
}

func invert(b []byte) {
	for i := range b {
		b[i] ^= 0xff
	}
}

func (s *faultyServer) Port() int {
	if s.pc != nil {
		return s.pc.LocalAddr().(*net.UDPAddr).Port
	}
	return s.ln.Addr().(*net.TCPAddr).Port
}

func (s *faultyServer) Counters() backends.Counters { return backends.Counters{} }

func (s *faultyServer) Close() error {
	if s.pc != nil {
		return s.pc.Close()
	}
	return s.ln.Close()
}
