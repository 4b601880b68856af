package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"ringbench/meters"
	"ringbench/workloads"
)

// The hosts topology's generator runs on the client host as the internal
// `ringbench remotegen`, inside an ssh session. The protocol, one JSON
// value per line:
//
//  1. The harness writes a remoteRequest on the session's stdin.
//  2. The generator pins itself to the request's CPUs and writes a hello
//     event (its pid and CPUs), then runs workloads.Run.
//  3. At each window edge it reads its cores (/proc/stat, timer_list) and
//     writes a window_start or window_end event; the harness reads its own
//     meters when the event arrives, then writes "ack" on stdin. The time
//     from the event to its ack is the edge's round trip.
//  4. It writes the report event (the workloads.Report, its cores' busy
//     share over the window, the two round trips), or an error event, and
//     exits.
//
// It exits too when its stdin ends (the session is gone: ssh died, the
// connection dropped, the harness closed it), on SIGHUP or SIGTERM, and
// when the request's time budget runs out, so nothing of it outlives its
// session.

// remoteRequest is what the harness asks of the client host.
type remoteRequest struct {
	Spec   workloads.Spec `json:"spec"`
	Target string         `json:"target"` // the server's addr:port
	// CPUs the generator runs on; empty: every CPU it is allowed on.
	CPUs []int `json:"cpus"`
	// Budget bounds the whole run: past it the generator gives up.
	Budget time.Duration `json:"budget_ns"`
}

// Event names of the protocol.
const (
	evHello       = "hello"
	evWindowStart = "window_start"
	evWindowEnd   = "window_end"
	evReport      = "report"
	evError       = "error"
)

// remoteEvent is one line from the client host.
type remoteEvent struct {
	Event string `json:"event"`
	PID   int    `json:"pid,omitempty"`
	CPUs  []int  `json:"cpus,omitempty"`
	Error string `json:"error,omitempty"`

	Report *wireReport `json:"report,omitempty"`
	// Busy is the generator's CPUs' busy share over the window, read on
	// its host; BusySource says how (timer_list or proc_stat), BusyError
	// why it is absent.
	Busy       *float64 `json:"busy,omitempty"`
	BusySource string   `json:"busy_source,omitempty"`
	BusyError  string   `json:"busy_error,omitempty"`
	// EdgeRTT is, for the window's start and end, the time from writing the
	// edge's event to reading its ack; 0 when no ack came.
	EdgeRTT [2]time.Duration `json:"edge_rtt_ns"`
}

// wireReport is a workloads.Report as JSON: the histogram travels as its
// snapshot.
type wireReport struct {
	workloads.Report
	Hist *hdrhistogram.Snapshot `json:"hist"`
}

func toWire(rep *workloads.Report) *wireReport {
	w := &wireReport{Report: *rep}
	w.Latency = nil
	if rep.Latency != nil {
		w.Hist = rep.Latency.Export()
	}
	return w
}

func (w *wireReport) report() *workloads.Report {
	rep := w.Report
	if w.Hist != nil {
		rep.Latency = hdrhistogram.Import(w.Hist)
	}
	return &rep
}

// remoteStopGrace is how long the generator may take to stop once its
// session is gone before RemoteGenerate returns without it.
const remoteStopGrace = 3 * time.Second

// errSessionGone: the generator's stdin ended.
var errSessionGone = errors.New("stdin closed: the ssh session ended")

// RemoteGenerate is the client host's side of the hosts topology (the
// internal `ringbench remotegen`): it reads one request from in, runs the
// load, and writes its events to out.
func RemoteGenerate(in io.Reader, out io.Writer) error {
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(ev remoteEvent) error {
		mu.Lock()
		defer mu.Unlock()
		return enc.Encode(ev)
	}
	fail := func(err error) error {
		send(remoteEvent{Event: evError, Error: err.Error()})
		return err
	}
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fail(fmt.Errorf("read request: %w", err))
	}
	var req remoteRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return fail(fmt.Errorf("decode request: %w", err))
	}
	target, err := netip.ParseAddrPort(req.Target)
	if err != nil {
		return fail(fmt.Errorf("parse target: %w", err))
	}
	cpus := req.CPUs
	if len(cpus) == 0 {
		if cpus, err = allowedCPUs(); err != nil {
			return fail(err)
		}
	}
	// The whole process, not only the loops, stays on the generator's
	// CPUs, as the harness does on its own host.
	if err := pinProcess(cpus); err != nil {
		return fail(err)
	}
	req.Spec.CPUs = cpus

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	if req.Budget > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, req.Budget, fmt.Errorf("the run's budget of %s ran out", req.Budget))
		defer stop()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	go func() {
		select {
		case s := <-sig:
			cancel(fmt.Errorf("signal %v", s))
		case <-ctx.Done():
		}
	}()
	acks := make(chan time.Time, 4)
	go readAcks(br, acks, cancel)

	if err := send(remoteEvent{Event: evHello, PID: os.Getpid(), CPUs: cpus}); err != nil {
		return err
	}
	cores, coresErr := meters.NewCoresReader()
	defer cores.Close()
	var a, b meters.Snapshot
	var sent [2]time.Time
	hooks := workloads.Hooks{
		WindowStart: func() {
			if cores != nil {
				a = cores.Read()
			}
			sent[0] = time.Now()
			send(remoteEvent{Event: evWindowStart})
		},
		WindowEnd: func() {
			if cores != nil {
				b = cores.Read()
			}
			sent[1] = time.Now()
			send(remoteEvent{Event: evWindowEnd})
		},
	}
	type result struct {
		rep *workloads.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := workloads.Run(ctx, req.Spec, workloads.Target{Addr: target}, hooks)
		done <- result{rep, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		select {
		case res = <-done:
		case <-time.After(remoteStopGrace):
			return fmt.Errorf("generator did not stop within %s of: %w", remoteStopGrace, context.Cause(ctx))
		}
	}
	if res.err != nil {
		if cause := context.Cause(ctx); cause != nil {
			res.err = fmt.Errorf("%w (stopped: %v)", res.err, cause)
		}
		return fail(res.err)
	}
	ev := remoteEvent{Event: evReport, Report: toWire(res.rep)}
	ev.EdgeRTT = edgeRTTs(ctx, sent, acks)
	host, _ := os.Hostname()
	switch {
	case coresErr != nil:
		ev.BusyError = coresErr.Error()
	default:
		busy, source, err := meters.CoresBusy(a, b, cpus)
		if err != nil {
			ev.BusyError = err.Error()
		} else {
			ev.Busy, ev.BusySource = &busy, fmt.Sprintf("%s on the client host %s", source, host)
		}
	}
	return send(ev)
}

// readAcks passes on the arrival time of each "ack" line and cancels the
// run when stdin ends.
func readAcks(br *bufio.Reader, acks chan<- time.Time, cancel context.CancelCauseFunc) {
	for {
		line, err := br.ReadString('\n')
		if strings.TrimSpace(line) == "ack" {
			select {
			case acks <- time.Now():
			default:
			}
		}
		if err != nil {
			cancel(errSessionGone)
			return
		}
	}
}

// edgeRTTs pairs each edge's event with its ack, waiting a moment for the
// last ones.
func edgeRTTs(ctx context.Context, sent [2]time.Time, acks <-chan time.Time) [2]time.Duration {
	var rtt [2]time.Duration
	wait := time.NewTimer(2 * time.Second)
	defer wait.Stop()
	for i := range rtt {
		if sent[i].IsZero() {
			return rtt
		}
		select {
		case at := <-acks:
			rtt[i] = at.Sub(sent[i])
		case <-wait.C:
			return rtt
		case <-ctx.Done():
			return rtt
		}
	}
	return rtt
}

// allowedCPUs are the CPUs this process may run on.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("read cpu affinity: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
