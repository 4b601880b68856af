package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"ringbench/backends"
	"ringbench/internal/outdir"
	"ringbench/meters"
	"ringbench/results"
	"ringbench/sampler"
	"ringbench/workloads"
)

// Trial is one configuration to measure.
type Trial struct {
	Index  int
	Repeat int

	// Backend is a registry name ("uring-sqpoll") or "external".
	Backend   string
	ServerCmd string // external only
	// ServerPort is the port an external server is told to listen on;
	// 0: one the kernel gives in the server's namespace.
	ServerPort int

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
	// NoProfile turns off the sampled profile of each cost window.
	NoProfile bool
	// NoSyscallCount skips the counting window that follows each cost
	// window (syscalls per op are then empty).
	NoSyscallCount bool

	// MemifAttach and Hugepages come from the dpdk package, wired in by
	// the command so that the harness does not depend on cgo.
	MemifAttach func(ctx context.Context, spec workloads.Spec, m MemifPath) (MemifSession, error)
	Hugepages   func(pages int) (release func() error, err error)

	// Hosts places the hosts topology's two sides; trials on that topology
	// fail without it.
	Hosts *HostsConfig

	topos    map[string]Topology
	releases []func() error
	hugeErr  error
	hugeDone bool
	scanner  *meters.Scanner
	observer windowObserver // validate's cross-checks
	profiles int            // pprof files written
}

// NewRunner returns a runner that appends to store.
func NewRunner(store *results.Store, run string, log io.Writer) *Runner {
	return &Runner{Env: Environment(), Store: store, Run: run, Log: log,
		MaxAttempts: 3, NoiseLimit: 0.05, topos: map[string]Topology{}}
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
	if r.scanner != nil {
		r.scanner.Close()
		r.scanner = nil
	}
	return errors.Join(errs...)
}

// CPUs splits this machine's CPUs between the server's cores and the
// generator (see splitCPUs): on a machine too small to give the generator
// a CPU of its own, both get every CPU and the trial is flagged.
func CPUs(cores int) (server, client []int, err error) {
	server, client, _, err = splitCPUs(cores, startCPUs)
	return server, client, err
}

// Trial runs t, re-running it while it is flagged noisy, appends the last
// attempt's record to the store and returns it. A failure is a record too.
func (r *Runner) Trial(ctx context.Context, t Trial) results.Record {
	return r.trial(ctx, t, nil)
}

// trial is Trial; annotate, when set, may add to the record before it is
// stored (the ndr search's verdict on it).
func (r *Runner) trial(ctx context.Context, t Trial, annotate func(*results.Record)) results.Record {
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
			earlier = append(earlier, fmt.Sprintf("attempt %d noisy (other tasks took %.0f%% of the server cores, steal %.0f%%)", attempt, 100*rec.NoiseOtherCPU, 100*rec.NoiseSteal))
		}
	}
	rec.Notes = append(earlier, rec.Notes...)
	if ctx.Err() != nil && rec.Status != results.StatusOK {
		return rec // interrupted mid-trial: not a result, not stored
	}
	if annotate != nil {
		annotate(&rec)
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
		return t, steer(t, srv, cli)
	}
	var t Topology
	var err error
	if name == Hosts {
		if r.Hosts == nil {
			return nil, errors.New("topology hosts needs --client-host and --server-addr (or a profile's hosts: section)")
		}
		t, err = newHosts(*r.Hosts, r.Log)
	} else {
		t, err = NewTopology(name, srv, cli)
	}
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

// meteredCPUs are the CPUs whose busy time is the server's: its loops'
// cores and any its options pin a thread of its own to (uring-sqpoll's
// sq_cpu). An SQ thread off the loops' cores still works for the server,
// so the meters read its core too; where that core is the generator's,
// the record says the two share it (meters.Fill's client_shares_server_cpus)
// and the trial stays out of the comparison.
func meteredCPUs(t Trial, srvCPUs []int) []int {
	b, err := backends.Lookup(t.Backend)
	if err != nil || b.ThreadCPUs == nil {
		return srvCPUs
	}
	out := slices.Clone(srvCPUs)
	for _, c := range b.ThreadCPUs(t.Options) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
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
		return classify(rec, err)
	}
	metered := meteredCPUs(t, srvCPUs)
	rec.ServerCPUs, rec.ClientCPUs = metered, cliCPUs
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
		CPUs: srvCPUs, MsgSize: t.Size, Iface: topo.ServerIface(), Port: t.ServerPort,
	}
	remote, _ := topo.(*hosts)
	if remote != nil {
		// The generator's CPUs are the client host's (nil: all it may use,
		// known once it says so).
		rec.ClientHost, rec.ClientCPUs = remote.s.dest, remote.s.clientCPUs
		if dpdkFamily {
			if err := remote.checkDPDK(t.Options); err != nil {
				return failed(rec, err)
			}
			cfg.Iface = "" // the port is the one the user named
		}
	}
	// Every built-in backend runs with its own defaults; the only options
	// the harness adds are the DPDK port's plumbing, and they are recorded.
	if dpdkFamily {
		cfg.Options = map[string]string{}
		if m, ok := topo.(*memif); ok {
			cfg.Options["memif_socket"] = m.next()
		}
		if !r.hugepages() {
			cfg.Options["hugepages"] = "0"
		}
	}
	for k, v := range cfg.Options {
		if rec.HarnessOptions == nil {
			rec.HarnessOptions = map[string]string{}
		}
		rec.HarnessOptions[k] = v
	}
	for k, v := range t.Options {
		if cfg.Options == nil {
			cfg.Options = map[string]string{}
		}
		cfg.Options[k] = v
	}
	gen := Generator(workloads.Run)
	if remote != nil {
		gen = remote.generate
	}
	var srv *server
	// The memif generator attaches to the server once, at the first
	// window, and runs every window of the trial in that attachment: its
	// port may close only after the server has stopped.
	var session MemifSession
	if m, ok := topo.(*memif); ok {
		if r.MemifAttach == nil {
			return skipped(rec, &backends.NotSupportedError{Feature: "memif generator", Reason: "built without DPDK"})
		}
		path := MemifPath{Socket: m.Socket(), CPUs: cliCPUs, Queues: len(srvCPUs), Hugepages: r.hugepages(), BeforeClose: func() { srv.stop() }}
		trialCtx := ctx
		gen = func(ctx context.Context, spec workloads.Spec, t workloads.Target, hooks workloads.Hooks) (*workloads.Report, error) {
			if session == nil {
				path.Server = t.Addr
				s, err := r.MemifAttach(trialCtx, spec, path)
				if err != nil {
					return nil, err
				}
				session = s
			}
			return session.Window(ctx, spec, hooks)
		}
	}

	if remote != nil {
		// Before the server: a DPDK server may take over the interface
		// ssh would use, and a client host out of reach fails sooner.
		if _, err := remote.remoteBinary(ctx); err != nil {
			return failed(rec, err)
		}
	}
	srv, err = startServer(ctx, topo, ServerSpec{Backend: t.Backend, Command: t.ServerCmd, Config: cfg})
	if err != nil {
		return classify(rec, err)
	}
	defer func() {
		if err := srv.stop(); err != nil && rec.Status == results.StatusOK {
			rec = failed(rec, err)
		}
	}()
	defer func() {
		// Before the deferred stop above: the session stops the server
		// itself (BeforeClose), then lets go of its port.
		if session == nil {
			return
		}
		if err := session.Close(); err != nil && rec.Status == results.StatusOK {
			rec = failed(rec, err)
		}
	}()
	rec.ServerEnv = srv.env
	target, err := r.target(topo, srv)
	if err != nil {
		return failed(rec, err)
	}
	var counters func() (backends.Counters, error)
	if !srv.external {
		counters = srv.counters
	}
	reader, err := meters.NewReader(meters.Target{PID: srv.pid, Cgroup: srv.cgroup, ServerCPUs: metered, Counters: counters})
	if err != nil {
		return failed(rec, fmt.Errorf("open meters: %w", err))
	}
	defer reader.Close()
	newWindow := func() *window { return r.trialWindow(reader, srv, topo, metered, cliCPUs) }
	win := newWindow()
	win.obs = r.observer
	// A server that dies mid-trial stops the generator at once and fails
	// the trial with the server's own last words.
	run := func(spec workloads.Spec, hooks workloads.Hooks) (*workloads.Report, error) {
		genCtx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() {
			select {
			case <-srv.exited:
				if !srv.stopping() {
					cancel(srv.failure(errors.New("server exited during the trial")))
				}
			case <-genCtx.Done():
			}
		}()
		rep, err := gen(genCtx, spec, target, hooks)
		if cause := context.Cause(genCtx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
			return nil, cause
		}
		return rep, err
	}
	win.startScan()
	defer win.dropScan()
	rep, err := run(spec, win.hooks())
	win.finish()
	if err == nil {
		err = win.err()
	}
	if err != nil {
		return failed(rec, err)
	}
	if remote != nil {
		rec.ClientCPUs = remote.cpus
	}
	w := r.meterWindow(t, win, rep, srv, topo, metered, cliCPUs, dpdkFamily)
	meters.Fill(&rec, w)
	meters.FillLatency(&rec, rep)
	if remote != nil {
		noteRemote(&rec, remote.runOf(rep))
	}
	rec.Env.CyclesSource = rec.CyclesSource
	if err := meters.Measured(&rec); err != nil {
		return failed(rec, err)
	}
	window := func(cw *window, crep *workloads.Report) meters.Window {
		return r.meterWindow(t, cw, crep, srv, topo, metered, cliCPUs, dpdkFamily)
	}

	// The profile is sampled in a window of its own, after the cost window:
	// the sampling timer changes what it samples (see profileWindow).
	r.profileWindow(&rec, t, srv, metered, cliCPUs, newWindow, run, window)

	// Syscalls are counted in a second, shorter window on the same server
	// with the tracepoint attached: attaching it slows every syscall on the
	// machine, so the cost window above ran without it.
	r.countSyscalls(&rec, t, reader, newWindow, run, window)
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

// profileWindow samples the server cores in a third, shorter window on the
// same server and puts the breakdown beside the cost window's figures,
// with the cycles per op it measured while sampling: what the profile did
// to the cost (ProfileEffect).
//
// The sampler is kept out of the cost window because its timer changes
// what it measures. On the development VM (HZ=250, NO_HZ_IDLE), a uring
// echo at 20000 ops/s made its server core write the TSC deadline MSR
// (reprogram its timer: a trap to the hypervisor) 22300 times a second
// unsampled, and 860 times with a 999 Hz cpu-clock sampler on that core,
// whose timer, always less than a tick away, is the next event at every
// idle entry (IPIs, 17000 a second, did not change); such trials read
// 15-25% fewer cycles per op sampled than unsampled
// (measurements/profile-window.md; validate's "sampled profile's effect"
// check keeps reading it).
// The breakdown is that of the sampled window, its cycles per op that
// window's, so its parts sum to ProfileCyclesPerOp, not to CyclesPerOp.
func (r *Runner) profileWindow(rec *results.Record, t Trial, srv *server, srvCPUs, cliCPUs []int, newWindow func() *window,
	run func(workloads.Spec, workloads.Hooks) (*workloads.Report, error),
	window func(*window, *workloads.Report) meters.Window) {
	if r.NoProfile {
		return
	}
	// The sampler's slow work (kernel symbols, opening events) is done
	// here, before the window's warm-up; its edges are an ioctl each.
	pids, err := meters.ProcessTree(srv.pid)
	if err != nil {
		rec.Notes = append(rec.Notes, fmt.Sprintf("not profiled: %v", err))
		return
	}
	gs, err := guests(srvCPUs, cliCPUs)
	if err != nil {
		rec.Notes = append(rec.Notes, fmt.Sprintf("not profiled: %v", err))
		return
	}
	smp, err := sampler.Open(sampler.Config{CPUs: srvCPUs, PIDs: pids, Guests: gs})
	if err != nil {
		rec.Notes = append(rec.Notes, fmt.Sprintf("not profiled: %v", err))
		return
	}
	defer smp.Close()
	spec := t.spec(rec.ClientCPUs)
	spec.Warmup, spec.Duration = min(profileWarmup, t.Warmup), min(profileDuration, t.Duration)
	pw := newWindow()
	pw.scanner = nil // no noise scan: the sampler reads other tasks itself
	pw.smp = smp
	prep, err := run(spec, pw.hooks())
	pw.finish()
	if err == nil {
		err = pw.err()
	}
	if err != nil {
		rec.Notes = append(rec.Notes, fmt.Sprintf("not profiled: the profile window failed: %v", err))
		return
	}
	pwin := window(pw, prep)
	var sampled results.Record
	meters.Fill(&sampled, pwin)
	bd, err := r.profile(rec, t, pw)
	if err != nil {
		rec.Notes = append(rec.Notes, fmt.Sprintf("profile: %v", err))
	}
	if bd == nil {
		return
	}
	meters.FillProfile(rec, sampled, *bd)
}

// The profile window's length: long enough for a few hundred samples of a
// core a third busy, short enough not to double a matrix's time.
const (
	profileWarmup   = 300 * time.Millisecond
	profileDuration = time.Second
)

// profile builds a sampled window's profile, writes it to the results
// folder and returns its breakdown (nil when the window was not sampled).
func (r *Runner) profile(rec *results.Record, t Trial, win *window) (*sampler.Breakdown, error) {
	if win.smp == nil {
		return nil, nil
	}
	if win.smpErr != nil {
		return nil, win.smpErr
	}
	res, err := win.smp.Profile()
	if err != nil {
		return nil, err
	}
	bd := res.Breakdown
	rec.ProfileEvent, rec.ProfileSamples, rec.ProfileLost = fmt.Sprintf("%s %d Hz", bd.Event, bd.Hz), bd.Samples, bd.Lost
	if r.Store != nil {
		r.profiles++
		name := fmt.Sprintf("t%03d-r%d-%s-%d.pb.gz", t.Index, t.Repeat, strings.ReplaceAll(rec.Label(), "/", "_"), r.profiles)
		dir, err := outdir.Subdir(r.Store.Dir(), ProfilesDir)
		if err != nil {
			return &bd, err
		}
		if err := res.WriteFile(filepath.Join(dir, name)); err != nil {
			return &bd, err
		}
		rec.Profile = filepath.Join(ProfilesDir, name)
	}
	return &bd, nil
}

// ProfilesDir is the results folder's folder of pprof files.
const ProfilesDir = "profiles"

// target is where the generator sends.
func (r *Runner) target(topo Topology, srv *server) (workloads.Target, error) {
	addr, err := netip.ParseAddr(topo.ServerHost())
	if err != nil {
		return workloads.Target{}, fmt.Errorf("parse server address: %w", err)
	}
	return workloads.Target{Addr: netip.AddrPortFrom(addr, uint16(srv.port)), Netns: NetnsPath(topo.ClientNetns())}, nil
}

// trialWindow is a window on srv: a memif generator pauses at its edges,
// and the tasks that are not noise are listed while srv runs.
func (r *Runner) trialWindow(reader *meters.Reader, srv *server, topo Topology, srvCPUs, cliCPUs []int) *window {
	w := r.newWindow(reader)
	w.paused = topo.Name() == Memif
	w.serverTasks = func() (map[int]bool, error) { return skipTasks(srv, srvCPUs, cliCPUs) }
	return w
}

func (r *Runner) newWindow(reader *meters.Reader) *window {
	if r.scanner == nil {
		r.scanner = meters.NewScanner()
	}
	return &window{reader: reader, scanner: r.scanner}
}

// meterWindow gathers what meters.Fill derives a record from.
func (r *Runner) meterWindow(t Trial, win *window, rep *workloads.Report, srv *server, topo Topology, srvCPUs, cliCPUs []int, dpdkPort bool) meters.Window {
	w := meters.Window{
		A: win.a, B: win.b,
		ServerCPUs: srvCPUs, ClientCPUs: cliCPUs,
		TSCHz: r.Env.TSCHz, Iface: topo.ServerIface(),
		Gen: meters.Generator{
			Ops: rep.Ops, Bytes: rep.Bytes, Window: rep.Window,
			ThreadCPU: rep.ClientCPU, Loops: max(1, min(len(cliCPUs), t.Conns)),
			IdlePollShare: -1, Unsent: rep.Unsent, Behind: rep.Behind,
		},
		Rate:      t.Rate,
		Stream:    t.Workload == workloads.Stream,
		BusyPolls: dpdkPort,
		Limits:    meters.Limits{Noise: r.NoiseLimit, Steal: meters.DefaultLimits.Steal},
		CPUSource: "schedstat",
	}
	if b, err := backends.Lookup(t.Backend); err == nil {
		w.DataPathSyscalls = b.DataPathSyscalls
	}
	if srv.cgroup != "" {
		w.CPUSource = "cgroup"
	}
	if win.scanned {
		w.ScanA, w.ScanB, w.Skip = &win.scanA, &win.scanB, win.skip
	}
	switch {
	case dpdkPort:
		w.Packets = meters.PacketsPort
	case topo.Name() == Loopback:
		w.Packets = meters.PacketsSNMPShared
		w.Iface = "lo"
	}
	if h, ok := topo.(*hosts); ok {
		w.TrialIRQs, w.TrialIRQsErr = nicIRQs(h.iface)
		// The generator's CPUs are the client host's: their busy comes
		// from there, never from this host's /proc/stat.
		w.ClientCPUs = nil
		w.Gen.Loops = max(1, min(len(h.cpus), t.Conns))
		if run := h.runOf(rep); run != nil {
			w.Gen.CoresBusy, w.Gen.CoresBusySource = run.busy, run.busySource
		}
	}
	if topo.Name() == Memif {
		w.Gen.Polling = true
		if rep.Polls > 0 {
			w.Gen.IdlePollShare = float64(rep.IdlePolls) / float64(rep.Polls)
		}
	}
	return w
}

// countWindowLength is the counting window's: syscalls per op settle
// within a second, and the pass should not double a matrix's time.
const (
	countWarmup   = 300 * time.Millisecond
	countDuration = time.Second
)

// countSyscalls runs a second, shorter window on the same server with the
// syscall tracepoint attached and puts its count beside the cost window's
// figures, with the cycles per op it measured while counting: what the
// syscall meter did to the cost.
func (r *Runner) countSyscalls(rec *results.Record, t Trial, reader *meters.Reader, newWindow func() *window,
	run func(workloads.Spec, workloads.Hooks) (*workloads.Report, error),
	window func(*window, *workloads.Report) meters.Window) {
	if r.NoSyscallCount {
		rec.SyscallsNote = "not counted (--count-syscalls=false)"
		return
	}
	if err := reader.CountSyscalls(); err != nil {
		rec.SyscallsNote = fmt.Sprintf("not counted: %v", err)
		return
	}
	defer reader.StopCountingSyscalls()
	spec := t.spec(rec.ClientCPUs)
	spec.Warmup, spec.Duration = min(countWarmup, t.Warmup), min(countDuration, t.Duration)
	cw := newWindow()
	cw.scanner = nil // no noise scan: this window counts syscalls only
	crep, err := run(spec, cw.hooks())
	if err == nil {
		err = cw.err()
	}
	if err != nil {
		rec.SyscallsNote = fmt.Sprintf("not counted: the counting window failed: %v", err)
		return
	}
	var count results.Record
	meters.Fill(&count, window(cw, crep))
	meters.FillCount(rec, count)
}

// nicIRQs are the IRQs of a NIC's MSI vectors: on the hosts topology its
// interrupts are the trial's, not noise. A virtio NIC's vectors are its
// PCI device's, one level up.
func nicIRQs(iface string) (map[string]bool, error) {
	dev, err := filepath.EvalSymlinks(filepath.Join("/sys/class/net", iface, "device"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join("/sys/class/net", iface)); serr == nil {
			return map[string]bool{}, nil // a virtual interface (veth): no device, no interrupts of its own
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the trial NIC's interrupts: %w", err)
	}
	ents, err := os.ReadDir(filepath.Join(dev, "msi_irqs"))
	if errors.Is(err, fs.ErrNotExist) {
		ents, err = os.ReadDir(filepath.Join(dev, "..", "msi_irqs"))
	}
	if err != nil {
		return nil, fmt.Errorf("the trial NIC's interrupts: %w", err)
	}
	irqs := map[string]bool{}
	for _, e := range ents {
		irqs[e.Name()] = true
	}
	return irqs, nil
}
