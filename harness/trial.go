package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"time"

	"ringbench/backends"
	"ringbench/results"
	"ringbench/workloads"
)

// Trial is one configuration to measure.
type Trial struct {
	Index  int
	Repeat int

	// Backend is a registry name ("uring-sqpoll") or "external".
	Backend   string
	ServerCmd string // external only

	Workload  workloads.Kind
	Direction workloads.Direction
	Proto     backends.Proto
	Topology  string
	Conns     int
	Depth     int
	Size      int
	Rate      float64
	Arrival   workloads.Arrival
	Cores     int
	Warmup    time.Duration
	Duration  time.Duration
	// Options are backend options (backends.Config.Options) on top of the
	// harness's own.
	Options map[string]string
}

// Service is what the server must do for this workload.
func (t Trial) Service() backends.Service {
	if t.Workload == workloads.Stream {
		if t.Direction == workloads.Down {
			return backends.Source
		}
		return backends.Sink
	}
	return backends.Echo
}

func (t Trial) spec(clientCPUs []int) workloads.Spec {
	return workloads.Spec{
		Workload: t.Workload, Direction: t.Direction, Proto: t.Proto,
		Conns: t.Conns, Depth: t.Depth, Size: t.Size,
		Rate: t.Rate, Arrival: t.Arrival,
		Warmup: t.Warmup, Duration: t.Duration,
		CPUs: clientCPUs,
	}
}

// family and variant split a registry name.
func (t Trial) family() (string, string) {
	if t.Backend == "external" {
		return "external", "default"
	}
	if b, err := backends.Lookup(t.Backend); err == nil {
		return b.Family, b.Variant
	}
	if i := strings.IndexByte(t.Backend, '-'); i > 0 {
		return t.Backend[:i], t.Backend[i+1:]
	}
	return t.Backend, "default"
}

// Generator drives a server and measures it. workloads.Run is the kernel-
// socket generator; the memif topology uses the DPDK one.
type Generator func(ctx context.Context, spec workloads.Spec, target workloads.Target, hooks workloads.Hooks) (*workloads.Report, error)

// Runner runs trials, one at a time, and appends each result to its store.
type Runner struct {
	Env   results.Env
	Store *results.Store
	Run   string // run id for the records
	Log   io.Writer

	// MaxAttempts bounds re-runs of a trial flagged noisy.
	MaxAttempts int
	// NoiseLimit: a trial is noisy when other tasks took more than this
	// share of the server cores, or the server waited this share of the
	// window for a CPU.
	NoiseLimit float64

	// MemifGenerator and Hugepages come from the dpdk package, wired in by
	// the command so that the harness does not depend on cgo.
	MemifGenerator func(ctx context.Context, spec workloads.Spec, m MemifPath, hooks workloads.Hooks) (*workloads.Report, error)
	Hugepages      func(pages int) (release func() error, err error)

	topos    map[string]Topology
	releases []func() error
	hugeErr  error
	hugeDone bool
}

// NewRunner returns a runner that appends to store.
func NewRunner(store *results.Store, run string, log io.Writer) *Runner {
	return &Runner{Env: Environment(), Store: store, Run: run, Log: log,
		MaxAttempts: 3, NoiseLimit: 0.10, topos: map[string]Topology{}}
}

// Close removes every topology the runner made, releases hugepages and
// closes the store: the runner owns the store it was given.
func (r *Runner) Close() error {
	var errs []error
	if r.Store != nil {
		errs = append(errs, r.Store.Close())
	}
	for _, t := range r.topos {
		errs = append(errs, t.Close())
	}
	r.topos = map[string]Topology{}
	for _, rel := range r.releases {
		errs = append(errs, rel())
	}
	r.releases = nil
	return errors.Join(errs...)
}

// CPUs splits this machine's CPUs: the last cores for the server, the rest
// for the generator (CPU 0 takes most device interrupts, so the server is
// kept off it).
func CPUs(cores int) (server, client []int, err error) {
	n := runtime.NumCPU()
	if cores < 1 {
		return nil, nil, fmt.Errorf("cores must be at least 1, got %d", cores)
	}
	if cores >= n {
		return nil, nil, fmt.Errorf("%d server cores need at least %d CPUs (one left for the generator); this machine has %d", cores, cores+1, n)
	}
	for c := 0; c < n; c++ {
		if c >= n-cores {
			server = append(server, c)
		} else {
			client = append(client, c)
		}
	}
	return server, client, nil
}

// Trial runs t, re-running it while it is flagged noisy, appends the last
// attempt's record to the store and returns it. A failure is a record too.
func (r *Runner) Trial(ctx context.Context, t Trial) results.Record {
	var rec results.Record
	var earlier []string
	max := r.MaxAttempts
	if max < 1 {
		max = 1
	}
	for attempt := 1; attempt <= max; attempt++ {
		rec = r.once(ctx, t)
		rec.Attempt = attempt
		if !rec.Noisy || rec.Status != results.StatusOK || ctx.Err() != nil {
			break
		}
		if attempt < max {
			earlier = append(earlier, fmt.Sprintf("attempt %d noisy (other tasks took %.0f%% of the server cores)", attempt, 100*rec.NoiseOtherCPU))
		}
	}
	rec.Notes = append(earlier, rec.Notes...)
	if ctx.Err() != nil && rec.Status != results.StatusOK {
		return rec // interrupted mid-trial: not a result, not stored
	}
	// A trial that finished measuring is stored, even when Ctrl-C came
	// while its server was being stopped.
	if r.Store != nil {
		if err := r.Store.Append(rec); err != nil && r.Log != nil {
			fmt.Fprintln(r.Log, "warning:", err)
		}
	}
	return rec
}

func (r *Runner) topology(name string, srv, cli []int) (Topology, error) {
	if t, ok := r.topos[name]; ok {
		return t, nil
	}
	t, err := NewTopology(name, srv, cli)
	if err != nil {
		return nil, err
	}
	r.topos[name] = t
	return t, nil
}

func (r *Runner) base(t Trial) results.Record {
	fam, variant := t.family()
	rec := results.Record{
		Run: r.Run, Trial: t.Index, Repeat: t.Repeat, Time: time.Now().UTC(), Status: results.StatusOK,
		Config: results.Config{
			Backend: fam, Variant: variant, Workload: string(t.Workload), Proto: string(t.Proto),
			Topology: t.Topology, Service: string(t.Service()), Conns: t.Conns, Depth: t.Depth,
			Size: t.Size, RateTarget: t.Rate, Arrival: string(t.Arrival), Cores: t.Cores,
			WarmupS: t.Warmup.Seconds(), DurationS: t.Duration.Seconds(), ServerCmd: t.ServerCmd,
			Options: t.Options,
		},
		Env: r.Env,
	}
	if t.Workload == workloads.Stream && t.Direction == workloads.Down {
		rec.Workload = "stream-down"
	}
	rec.CyclesSource = "tsc"
	return rec
}

func skipped(rec results.Record, err error) results.Record {
	rec.Status = results.StatusSkipped
	rec.Error = err.Error()
	return rec
}

func failed(rec results.Record, err error) results.Record {
	rec.Status = results.StatusFailed
	rec.Error = err.Error()
	return rec
}

// classify records err as a skip when it names a missing feature, else as a
// failure.
func classify(rec results.Record, err error) results.Record {
	if errors.Is(err, backends.ErrNotSupported) {
		return skipped(rec, err)
	}
	return failed(rec, err)
}

func (r *Runner) once(ctx context.Context, t Trial) (rec results.Record) {
	rec = r.base(t)
	srvCPUs, cliCPUs, err := CPUs(t.Cores)
	if err != nil {
		return failed(rec, err)
	}
	rec.ServerCPUs, rec.ClientCPUs = srvCPUs, cliCPUs
	// The harness itself (meter reads, the runtime's threads) stays off the
	// server cores too.
	if err := pinProcess(cliCPUs); err != nil {
		return failed(rec, err)
	}
	spec := t.spec(cliCPUs)
	if err := spec.Validate(); err != nil {
		return failed(rec, err)
	}
	dpdkFamily := rec.Backend == "dpdk"
	if t.Backend != "external" {
		b, err := backends.Lookup(t.Backend)
		if err != nil {
			return failed(rec, err)
		}
		if err := b.Supports(t.Proto, t.Service()); err != nil {
			return skipped(rec, err)
		}
		if err := b.Probe(); err != nil {
			return classify(rec, err)
		}
	}
	if t.Topology == Memif && !dpdkFamily {
		return skipped(rec, &backends.NotSupportedError{Feature: "memif topology for " + t.Backend, Reason: "memif is a DPDK port: only DPDK servers attach to it"})
	}
	topo, err := r.topology(t.Topology, srvCPUs, cliCPUs)
	if err != nil {
		return classify(rec, err)
	}
	cfg := backends.Config{
		Proto: t.Proto, Service: t.Service(), Host: topo.ServerHost(),
		CPUs: srvCPUs, MsgSize: t.Size, Iface: topo.ServerIface(),
	}
	if rec.Backend == "uring" {
		// The serve process is the loop's alone: io_uring_enter may bypass
		// the runtime's syscall bookkeeping (whose futex hand-offs and
		// sysmon wake-ups are syscalls too) without starving anything.
		cfg.Options = map[string]string{"raw_enter": "1"}
	}
	if dpdkFamily {
		cfg.Options = map[string]string{}
		if m, ok := topo.(*memif); ok {
			cfg.Options["memif_socket"] = m.next()
		}
		if !r.hugepages() {
			cfg.Options["hugepages"] = "0"
		}
	}
	for k, v := range t.Options {
		if cfg.Options == nil {
			cfg.Options = map[string]string{}
		}
		cfg.Options[k] = v
	}
	gen := Generator(workloads.Run)
	if m, ok := topo.(*memif); ok {
		if r.MemifGenerator == nil {
			return skipped(rec, &backends.NotSupportedError{Feature: "memif generator", Reason: "built without DPDK"})
		}
		huge := r.hugepages()
		gen = func(ctx context.Context, spec workloads.Spec, t workloads.Target, hooks workloads.Hooks) (*workloads.Report, error) {
			return r.MemifGenerator(ctx, spec, MemifPath{Socket: m.Socket(), Server: t.Addr, CPUs: cliCPUs, Hugepages: huge}, hooks)
		}
	}

	srv, err := startServer(ctx, topo, ServerSpec{Backend: t.Backend, Command: t.ServerCmd, Config: cfg})
	if err != nil {
		return classify(rec, err)
	}
	defer func() {
		if err := srv.stop(); err != nil && rec.Status == results.StatusOK {
			rec = failed(rec, err)
		}
	}()
	m := newMeters(srv, topo, dpdkFamily, srvCPUs, cliCPUs)
	defer m.Close()

	addr, err := netip.ParseAddr(topo.ServerHost())
	if err != nil {
		return failed(rec, fmt.Errorf("parse server address: %w", err))
	}
	target := workloads.Target{Addr: netip.AddrPortFrom(addr, uint16(srv.port)), Netns: NetnsPath(topo.ClientNetns())}

	// A server that dies mid-trial stops the generator at once and fails
	// the trial with the server's own last words.
	genCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-srv.exited:
			cancel(srv.failure(errors.New("server exited during the trial")))
		case <-genCtx.Done():
		}
	}()
	var a, b snapshot
	var opened, closed bool
	hooks := workloads.Hooks{
		WindowStart: func() { a = m.read(true); opened = true },
		WindowEnd:   func() { b = m.read(false); closed = true },
	}
	rep, err := gen(genCtx, spec, target, hooks)
	if cause := context.Cause(genCtx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		return failed(rec, cause)
	}
	if err != nil {
		return failed(rec, err)
	}
	if !opened || !closed {
		return failed(rec, errNoWindow)
	}
	r.fill(&rec, t, rep, a, b, m, topo)
	return rec
}

// hugepages reserves 2 MiB pages for DPDK once per runner, and says whether
// they are there.
func (r *Runner) hugepages() bool {
	if !r.hugeDone {
		r.hugeDone = true
		if r.Hugepages == nil {
			r.hugeErr = errors.New("no hugepage reservation wired in")
		} else {
			release, err := r.Hugepages(512)
			r.hugeErr = err
			if err == nil {
				r.releases = append(r.releases, release)
			}
		}
		if r.hugeErr != nil && r.Log != nil {
			fmt.Fprintf(r.Log, "note: DPDK runs with --no-huge: %v\n", r.hugeErr)
		}
	}
	return r.hugeErr == nil
}

// fill computes the record's meters from the window's two snapshots.
func (r *Runner) fill(rec *results.Record, t Trial, rep *workloads.Report, a, b snapshot, m *meters, topo Topology) {
	win := b.at.Sub(a.at).Seconds()
	genWin := rep.Window.Seconds()
	if genWin <= 0 {
		genWin = win
	}
	ops := float64(rep.Ops)
	perOp := func(v float64) float64 {
		if rep.Ops == 0 {
			return 0
		}
		return v / ops
	}
	rec.Ops, rec.Bytes = rep.Ops, rep.Bytes
	rec.ThroughputOps = ops / genWin
	rec.Gbps = float64(rep.Bytes) * 8 / genWin / 1e9

	var packets float64
	if a.packetsErr == nil && b.packetsErr == nil && b.packets >= a.packets {
		p := b.packets - a.packets
		rec.Packets = &p
		packets = float64(p)
		pps := packets / win
		rec.PPS = &pps
		rec.PacketsSource = topo.PacketsSource()
		if m.dpdkPort {
			rec.PacketsSource = "DPDK port statistics (rx+tx)"
		}
	} else {
		rec.Notes = append(rec.Notes, fmt.Sprintf("packets not counted: %v", firstErr(a.packetsErr, b.packetsErr)))
	}
	perPacket := func(v float64) *float64 {
		if packets == 0 {
			return nil
		}
		x := v / packets
		return &x
	}

	// Server CPU: every thread of the server's process tree.
	rec.CPUNs = b.server.runNs - a.server.runNs
	rec.CPUNsPerOp = perOp(rec.CPUNs)
	rec.CPUNsPerPacket = perPacket(rec.CPUNs)

	var busy, cliBusy float64
	for _, c := range m.serverCPUs {
		busy += b.cpu[c].busy() - a.cpu[c].busy()
	}
	for _, c := range m.clientCPUs {
		cliBusy += b.cpu[c].busy() - a.cpu[c].busy()
	}
	ncores := float64(len(m.serverCPUs))
	rec.BusyNs = busy
	rec.BusyNsPerOp = perOp(busy)
	rec.BusyNsPerPacket = perPacket(busy)
	rec.ServerBusy = busy / (win * 1e9 * ncores)
	rec.ClientBusy = cliBusy / (win * 1e9 * float64(len(m.clientCPUs)))
	if rep.ClientBusy > rec.ClientBusy {
		rec.ClientBusy = rep.ClientBusy
	}

	if m.cycles != nil && b.cyclesErr == nil && a.cyclesErr == nil {
		rec.Cycles = float64(b.cycles - a.cycles)
		rec.CyclesSource = "perf"
	} else {
		rec.Cycles = busy / 1e9 * r.Env.TSCHz
		rec.CyclesSource = "tsc"
	}
	rec.Env.CyclesSource = rec.CyclesSource
	rec.CyclesPerOp = perOp(rec.Cycles)
	rec.CyclesPerPacket = perPacket(rec.Cycles)

	if a.syscallsErr == nil && b.syscallsErr == nil {
		n := b.syscalls - a.syscalls
		rec.Syscalls = &n
		v := perOp(float64(n))
		rec.SyscallsPerOp = &v
	} else {
		rec.SyscallsNote = firstErr(a.syscallsErr, b.syscallsErr).Error()
	}
	if a.countersErr == nil && b.countersErr == nil {
		v := perOp(float64(b.counters.Syscalls - a.counters.Syscalls))
		rec.BackendSyscallsPerOp = &v
		rec.BackendCounters = counterDelta(a.counters, b.counters)
		if bp := rec.BackendCounters["busy_packets"]; bp > 0 {
			v := float64(rec.BackendCounters["busy_cycles"]) / float64(bp)
			rec.BusyCyclesPerPacket = &v
		}
	}

	rec.Errors = rep.Errors.Total()
	rec.ErrMismatch, rec.ErrReset, rec.ErrTimeout, rec.ErrLost = rep.Errors.Mismatch, rep.Errors.Reset, rep.Errors.Timeout, rep.Errors.Lost

	if h := rep.Latency; h != nil && h.TotalCount() > 0 {
		us := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }
		rec.LatP50, rec.LatP90, rec.LatP99, rec.LatP999 = us(50), us(90), us(99), us(99.9)
		rec.LatMax = float64(h.Max()) / 1e3
		rec.LatMean = h.Mean() / 1e3
		for _, q := range curveQuantiles {
			rec.Curve = append(rec.Curve, results.Percentile{P: q, US: us(q)})
		}
	}

	// Noise: other tasks' time on the server cores, and the time the
	// server's threads waited for a CPU. Only the first flags a trial: a
	// SQPOLL thread and its loop share one core by design, and their wait
	// for each other is the backend's cost, not noise.
	var other float64
	for tid, end := range b.others {
		if start, ok := a.others[tid]; ok {
			other += end - start
		} else if end < win*1e9 {
			other += end // a task that began in the window, or moved in
		}
	}
	// A task's time is put on the CPU it was last seen on, so a busy task
	// that moved can overshoot: the share is an estimate, capped at 1.
	rec.NoiseOtherCPU = min(other/(win*1e9*ncores), 1)
	rec.NoiseRunDelay = (b.server.delayNs - a.server.delayNs) / (win * 1e9 * ncores)
	rec.Noisy = rec.NoiseOtherCPU > r.NoiseLimit

	// The generator must not be what limits a trial without saying so.
	if rec.ClientBusy >= 0.95 {
		rec.ClientBound = true
		rec.Notes = append(rec.Notes, fmt.Sprintf("generator CPUs %.0f%% busy: the generator may limit this trial", 100*rec.ClientBusy))
	}
	if t.Rate > 0 {
		ratio := rec.ThroughputOps / t.Rate
		if ratio < 0.98 {
			if rec.ClientBusy >= 0.9 {
				rec.ClientBound = true
			}
			who := "server saturated"
			if rec.ClientBound {
				who = "generator could not keep up"
			}
			rec.Notes = append(rec.Notes, fmt.Sprintf("achieved %.0f of %.0f ops/s (%.1f%%): %s", rec.ThroughputOps, t.Rate, 100*ratio, who))
		}
		if rep.Late > 0 {
			rec.Notes = append(rec.Notes, fmt.Sprintf("%d requests sent over 1 ms late; their latency counts from the intended time", rep.Late))
		}
	}
	if m.dpdkPort {
		rec.Notes = append(rec.Notes, "DPDK busy-polls: its core is always 100% busy; see backend_counters busy_cycles/busy_packets for the work done")
	}
	if b.server.tasks != a.server.tasks {
		rec.Notes = append(rec.Notes, fmt.Sprintf("server threads changed in the window (%d -> %d)", a.server.tasks, b.server.tasks))
	}
}

var curveQuantiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 99, 99.5, 99.9, 99.95, 99.99, 100}

func counterDelta(a, b backends.Counters) map[string]uint64 {
	d := map[string]uint64{
		"syscalls": b.Syscalls - a.Syscalls, "accepted": b.Accepted - a.Accepted,
		"closed": b.Closed - a.Closed, "rx_bytes": b.RxBytes - a.RxBytes, "tx_bytes": b.TxBytes - a.TxBytes,
		"rx_msgs": b.RxMsgs - a.RxMsgs, "tx_msgs": b.TxMsgs - a.TxMsgs,
		"dropped": b.Dropped - a.Dropped, "errors": b.Errors - a.Errors,
	}
	keys := make([]string, 0, len(b.Extra))
	for k := range b.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "tsc_hz" {
			d[k] = b.Extra[k] // a rate, not a count
			continue
		}
		d[k] = b.Extra[k] - a.Extra[k]
	}
	return d
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return errors.New("unknown")
}
