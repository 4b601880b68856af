package dpdk

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"ringbench/backends"
	"ringbench/workloads"
)

// GenOptions say where the memif generator sends its load.
type GenOptions struct {
	// Socket is the memif control socket the server (role=server) made;
	// the generator connects as role=client.
	Socket string
	// CPUs: the generator's lcore is CPUs[0]; empty means the first CPU
	// the process may run on.
	CPUs []int
	// Queues is how many queue pairs the server's port has, one per
	// server core (default 1). memif has no RSS: the generator sends
	// connection c on queue c mod Queues, so with Conns ≥ Queues every
	// server lcore gets load, and polls every queue for the echoes.
	Queues int
	// Hugepages lets the generator's EAL use reserved 2 MiB pages; false
	// runs it with --no-huge.
	Hugepages bool
	// ServerIP and ServerPort are where requests go (default port
	// DefaultPort); ClientIP is their source (default ServerIP's next).
	ServerIP   netip.Addr
	ServerPort int
	ClientIP   netip.Addr
	// Command is the child's argv before its request; default
	// os.Executable() "dpdkgen", which the ringbench command hands to
	// GeneratorMain. Tests start their own binary.
	Command []string
	// Stderr receives the child's stderr (the EAL's log); default discard.
	Stderr io.Writer
	// BeforeClose is required: it is called once the window's report is
	// in, and must stop the server (dpdk or dpdk-testpmd) before it
	// returns; the generator holds its port open until then. Closing a
	// memif port makes the server's memif PMD unmap the shared rings from
	// its EAL interrupt thread with no handshake with the lcore polling
	// them: a server still polling reads unmapped memory. No frame
	// exchange can close that race (the PMD's tx still reads the peer's
	// ring flags after it has published the frame), so ringbench has no
	// goodbye frame: the server stops first, always.
	BeforeClose func()
}

// genRequest is what the parent hands the child, as one JSON argument.
type genRequest struct {
	Spec       workloads.Spec `json:"spec"`
	Socket     string         `json:"socket"`
	Lcore      int            `json:"lcore"`
	Queues     int            `json:"queues"`
	Hugepages  bool           `json:"hugepages"`
	ServerIP   netip.Addr     `json:"server_ip"`
	ServerPort int            `json:"server_port"`
	ClientIP   netip.Addr     `json:"client_ip"`
}

// genReport is the child's last line: what it measured in the window.
type genReport struct {
	WindowNS    int64                  `json:"window_ns"`
	Ops         uint64                 `json:"ops"`
	Bytes       uint64                 `json:"bytes"`
	Sent        uint64                 `json:"sent"`
	Errors      workloads.Errors       `json:"errors"`
	Late        uint64                 `json:"late"`
	Stale       uint64                 `json:"stale"`   // echoes of requests already expired
	TxFull      uint64                 `json:"tx_full"` // requests the memif ring refused: never sent, not lost; Report.Unsent
	ClientCPUNS int64                  `json:"client_cpu_ns"`
	Polls       uint64                 `json:"polls"`
	IdlePolls   uint64                 `json:"idle_polls"` // polls that neither received nor sent
	Latency     *hdrhistogram.Snapshot `json:"latency"`
}

// The child's protocol: it reports on stdout, one line each, and the parent
// drives it on stdin: a window at a time, the edges answered after the
// parent's hook runs, then close.
const (
	lineWindow      = "window"       // parent to child: run a window, "window <warm-up ns> <duration ns>"
	lineWindowStart = "window-start" // parent runs WindowStart, answers "go"
	lineWindowEnd   = "window-end"   // parent runs WindowEnd, answers "ok"
	lineReport      = "report"       // followed by the genReport JSON
	lineClose       = "close"        // parent to child: the server has stopped, close the port
	lineError       = "error"        // followed by why the child failed
)

// minGenPayload: every request carries its sequence number and the TSC its
// latency counts from.
const minGenPayload = 16

// Generate drives a DPDK server (or dpdk-testpmd) over net_memif with spec's
// load for one window: Attach, one Window, Close.
func Generate(ctx context.Context, spec workloads.Spec, opt GenOptions, hooks workloads.Hooks) (rep *workloads.Report, err error) {
	s, err := Attach(ctx, spec, opt)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	return s.Window(ctx, spec, hooks)
}

// Session is the memif generator attached to one server: UDP echo (closed
// loop, or open loop at spec.Rate with latency from the intended send time)
// or a UDP stream up to a sink, one window after another over the same
// port. A memif port is closed only once its server has stopped
// (GenOptions.BeforeClose), so a trial that needs several windows (cost,
// profile, syscall count) runs them all in one attachment. The EAL lives
// once per process, so the load comes from a child process; hooks run in
// this process at each window's edges while the child waits.
type Session struct {
	req    genRequest
	opt    GenOptions
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	closed bool
	err    error // the child is gone or out of step: no more windows
}

// Attach starts the generator on opt's port with spec's load; it sends
// nothing until Window.
func Attach(ctx context.Context, spec workloads.Spec, opt GenOptions) (*Session, error) {
	if !built {
		return nil, errNoTag
	}
	req, err := genRequestFor(spec, opt)
	if err != nil {
		return nil, err
	}
	arg, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode generator request: %w", err)
	}
	argv := opt.Command
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find ringbench binary: %w", err)
		}
		argv = []string{exe, "dpdkgen"}
	}
	s := &Session{req: req, opt: opt}
	s.cmd = exec.CommandContext(ctx, argv[0], append(argv[1:len(argv):len(argv)], string(arg))...)
	s.cmd.Stderr = opt.Stderr
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start generator: %w", err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start generator: %w", err)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start generator: %w", err)
	}
	s.out = bufio.NewScanner(stdout)
	s.out.Buffer(make([]byte, 64<<10), 16<<20) // the histogram snapshot is one long line
	return s, nil
}

// Window runs one window of spec.Warmup then spec.Duration; the rest of
// spec must be the load the session was attached with. Cancelling ctx ends
// the child, and with it the session.
func (s *Session) Window(ctx context.Context, spec workloads.Spec, hooks workloads.Hooks) (*workloads.Report, error) {
	if s.err != nil {
		return nil, s.err
	}
	req, err := genRequestFor(spec, s.opt)
	if err != nil {
		return nil, err
	}
	if a, b := loadOf(s.req.Spec), loadOf(req.Spec); !reflect.DeepEqual(a, b) {
		return nil, fmt.Errorf("run generator window: load %+v, the session was attached with %+v", b, a)
	}
	stop := context.AfterFunc(ctx, func() { s.cmd.Process.Kill() })
	defer stop()
	if _, err := fmt.Fprintf(s.stdin, "%s %d %d\n", lineWindow, req.Spec.Warmup, req.Spec.Duration); err != nil {
		s.err = fmt.Errorf("start generator window: %w", err)
		return nil, s.err
	}
	rep, err := followGenerator(s.out, s.stdin, hooks)
	if err != nil {
		s.err = err
		if ctx.Err() != nil {
			s.err = errors.Join(ctx.Err(), err)
		}
		return nil, s.err
	}
	return rep, nil
}

// loadOf is spec without its window's timing: what one session keeps.
func loadOf(spec workloads.Spec) workloads.Spec {
	spec.Warmup, spec.Duration = 0, 0
	return spec
}

// Close stops the server (BeforeClose), then lets the child close its port
// and waits for it. Whatever happened before, the server stops first.
func (s *Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.opt.BeforeClose()
	fmt.Fprintln(s.stdin, lineClose)
	s.stdin.Close()
	if err := s.cmd.Wait(); err != nil && s.err == nil {
		return fmt.Errorf("run generator: %w", err)
	}
	return nil
}

func genRequestFor(spec workloads.Spec, opt GenOptions) (genRequest, error) {
	if spec.Proto != "" && spec.Proto != backends.UDP {
		return genRequest{}, &backends.NotSupportedError{Feature: "dpdk generator over " + string(spec.Proto), Reason: "no TCP stack on a memif port"}
	}
	spec.Proto = backends.UDP
	switch {
	case spec.Workload == workloads.Echo:
	case spec.Workload == workloads.Stream && (spec.Direction == "" || spec.Direction == workloads.Up):
		spec.Direction = workloads.Up
	default:
		return genRequest{}, fmt.Errorf("check generator spec: %s %s: %w", spec.Workload, spec.Direction, backends.ErrNotSupported)
	}
	if spec.Size < minGenPayload || spec.Size > backends.MaxUDPPayload {
		return genRequest{}, fmt.Errorf("check generator spec: size %d outside [%d, %d]", spec.Size, minGenPayload, backends.MaxUDPPayload)
	}
	if spec.Conns <= 0 {
		spec.Conns = 1
	}
	if spec.Conns > 1024 {
		return genRequest{}, fmt.Errorf("check generator spec: %d conns, at most 1024 source ports", spec.Conns)
	}
	if spec.Depth <= 0 {
		spec.Depth = 1
	}
	if spec.Timeout <= 0 {
		spec.Timeout = time.Second
	}
	if spec.Duration <= 0 {
		return genRequest{}, errors.New("check generator spec: no duration")
	}
	if opt.BeforeClose == nil {
		return genRequest{}, errors.New("check generator options: BeforeClose is required (it stops the server before the memif port closes)")
	}
	if opt.Socket == "" || !opt.ServerIP.Is4() {
		return genRequest{}, errors.New("check generator options: Socket and an IPv4 ServerIP are required")
	}
	req := genRequest{Spec: spec, Socket: opt.Socket, Queues: max(opt.Queues, 1), Hugepages: opt.Hugepages, ServerIP: opt.ServerIP,
		ServerPort: opt.ServerPort, ClientIP: opt.ClientIP}
	if opt.Queues > maxLcore {
		return genRequest{}, fmt.Errorf("check generator options: %d queues, a server has at most %d lcores", opt.Queues, maxLcore)
	}
	if req.ServerPort == 0 {
		req.ServerPort = DefaultPort
	}
	if !req.ClientIP.IsValid() {
		req.ClientIP = opt.ServerIP.Next()
	}
	if len(opt.CPUs) > 0 {
		req.Lcore = opt.CPUs[0]
	} else {
		cpu, err := firstAllowedCPU()
		if err != nil {
			return genRequest{}, err
		}
		req.Lcore = cpu
	}
	return req, nil
}

// followGenerator reads the child's lines, runs the hooks at the window's
// edges, and returns its report.
func followGenerator(sc *bufio.Scanner, in io.Writer, hooks workloads.Hooks) (*workloads.Report, error) {
	for sc.Scan() {
		word, rest, _ := strings.Cut(sc.Text(), " ")
		switch word {
		case lineWindowStart:
			if hooks.WindowStart != nil {
				hooks.WindowStart()
			}
			if _, err := fmt.Fprintln(in, "go"); err != nil {
				return nil, fmt.Errorf("answer generator: %w", err)
			}
		case lineWindowEnd:
			if hooks.WindowEnd != nil {
				hooks.WindowEnd()
			}
			if _, err := fmt.Fprintln(in, "ok"); err != nil {
				return nil, fmt.Errorf("answer generator: %w", err)
			}
		case lineReport:
			var r genReport
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return nil, fmt.Errorf("decode generator report: %w", err)
			}
			return r.report(), nil
		case lineError:
			return nil, fmt.Errorf("run generator: %s", rest)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read generator: %w", err)
	}
	return nil, errors.New("run generator: ended without a report")
}

func (r genReport) report() *workloads.Report {
	rep := &workloads.Report{
		Window: time.Duration(r.WindowNS),
		Ops:    r.Ops,
		Bytes:  r.Bytes,
		Sent:   r.Sent,
		Errors: r.Errors,
		Late:   r.Late,
		// Refused by the TX ring after its retries: the load asked for was
		// not offered, which is what Unsent means; they are not in Sent
		// nor in Errors.Lost.
		Unsent:    r.TxFull,
		ClientCPU: time.Duration(r.ClientCPUNS),
		Polls:     r.Polls,
		IdlePolls: r.IdlePolls,
	}
	if r.Latency != nil {
		rep.Latency = hdrhistogram.Import(r.Latency)
	} else {
		rep.Latency = newLatencyHistogram()
	}
	if r.WindowNS > 0 {
		rep.ClientBusy = float64(r.ClientCPUNS) / float64(r.WindowNS)
	}
	return rep
}

// newLatencyHistogram covers 1 ns to a minute at 3 significant digits.
func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute), 3)
}

// GeneratorMain is the child side of Generate: `ringbench dpdkgen <request>`.
// It talks to its parent over stdin and stdout and returns when the report
// is written.
func GeneratorMain(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "dpdkgen" {
		args = args[1:]
	}
	if len(args) != 1 {
		return errors.New("dpdkgen: want one argument, the request JSON (Generate starts this)")
	}
	var req genRequest
	if err := json.Unmarshal([]byte(args[0]), &req); err != nil {
		return fmt.Errorf("decode generator request: %w", err)
	}
	err := generatorMain(req, stdin, stdout)
	if err != nil {
		fmt.Fprintf(stdout, "%s %v\n", lineError, err)
	}
	return err
}
