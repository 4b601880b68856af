package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"ringbench/backends"
	"ringbench/dpdk"
	"ringbench/harness"
	"ringbench/internal/outdir"
	"ringbench/internal/runlock"
	"ringbench/plots"
	"ringbench/results"
	"ringbench/workloads"

	// Backends register themselves.
	_ "ringbench/baselines/programs"
	_ "ringbench/epoll"
	_ "ringbench/uring"
)

var errUsage = errors.New("usage: ringbench <run|bench|ndr|validate|lesson|report|compare|doctor|backends> [flags]; ringbench help")

const usage = `ringbench measures what a packet costs over epoll, io_uring and DPDK.

Commands:
  run      one configuration:   ringbench run --backend uring --workload echo --proto tcp --conns 16 --size 64
  bench    a matrix (profile):  ringbench bench [--profile quick|full|FILE.yaml] [--out DIR]
  ndr      maximum sustainable rate per backend (loss ≤ L, p99 ≤ D; a bounded search, MLRsearch's manner):
           ringbench ndr --backends epoll,uring --proto udp --loss 0 --p99 1000 [run flags]
  validate check every meter against a ground truth on this machine (burn slope, perf stat,
           /proc/stat, a known syscall count, repeat spread): ringbench validate [--out DIR]
  lesson   the middle-ground experiments (kernel features per path, null-syscall cost): ringbench lesson --out DIR
  report   render report.md and report.html from a results folder: ringbench report DIR
  compare  compare two results folders, as benchstat would: ringbench compare DIR_A DIR_B
  doctor   what this machine supports, each line with its reason
  backends the registered backends and variants
  version  this build's identity (revision, Go version, digest of the executable)

Run 'ringbench <command> -h' for its flags.
`

func ringbench(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runCmd(ctx, rest, stdout, stderr)
	case "bench":
		return benchCmd(ctx, rest, stdout, stderr)
	case "ndr":
		return ndrCmd(ctx, rest, stdout, stderr)
	case "lesson":
		return lessonCmd(ctx, rest, stdout, stderr)
	case "validate":
		return validateCmd(ctx, rest, stdout, stderr)
	case "report":
		return reportCmd(rest, stdout, stderr)
	case "compare":
		return compareCmd(rest, stdout, stderr)
	case "doctor":
		return doctorCmd(stdout)
	case "backends":
		return backendsCmd(stdout)
	case "serve":
		return serveCmd(rest, stdin, stdout, stderr)
	case "dpdkgen":
		return dpdk.GeneratorMain(rest, stdin, stdout)
	case "remotegen":
		return harness.RemoteGenerate(stdin, stdout)
	case "version":
		v, err := harness.Version()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, v)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// trialFlags are the flags that describe one configuration.
type trialFlags struct {
	backend, serverCmd, workload, direction, proto, topology, arrival string
	conns, depth, size, cores, repeats, serverPort                    int
	rate                                                              float64
	warmup, duration                                                  time.Duration
	opts                                                              optionFlag
	hosts                                                             hostsFlags
}

func (f *trialFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.backend, "backend", "epoll", "server: a registered backend (see `ringbench backends`) or external")
	fs.StringVar(&f.serverCmd, "server-cmd", "", "external server command line; {port} and {host} are replaced with where it must listen")
	fs.IntVar(&f.serverPort, "server-port", 0, "external server's port, 1-65535 (0: one the kernel gives in the server's namespace); it must be free")
	fs.StringVar(&f.workload, "workload", "echo", "echo (request/response) or stream (one-way bulk)")
	fs.StringVar(&f.direction, "direction", "up", "stream direction: up (client sends, server sinks) or down (server sources)")
	fs.StringVar(&f.proto, "proto", "tcp", "tcp or udp")
	fs.StringVar(&f.topology, "topology", "auto", "loopback, veth (two network namespaces; root), memif (DPDK only), hosts (the generator on another host over ssh: --client-host, --server-addr), or auto (veth as root, else loopback)")
	fs.StringVar(&f.arrival, "arrival", "constant", "open-loop arrivals: constant or poisson")
	fs.IntVar(&f.conns, "conns", 16, "connections (UDP: connected sockets)")
	fs.IntVar(&f.depth, "depth", 1, "echo requests in flight per connection")
	fs.IntVar(&f.size, "size", 64, "message size in bytes (TCP up to 65536, UDP up to 1472)")
	fs.IntVar(&f.cores, "cores", 1, "server cores, one event loop each (the generator gets the other CPUs; with every CPU a server core, it shares them and the trial is flagged client_shares_server_cpus)")
	fs.IntVar(&f.repeats, "repeats", 1, "times to repeat the trial")
	fs.Float64Var(&f.rate, "rate", 0, "open loop at this many ops/s (0: closed loop, as fast as it goes)")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "warm-up before the measurement window")
	fs.DurationVar(&f.duration, "duration", 3*time.Second, "measurement window")
	fs.Var(&f.opts, "opt", "backend option key=value, repeatable (e.g. uring's batch=16, dpdk's pmd=af_packet)")
	f.hosts.register(fs)
}

func (f *trialFlags) trial() (harness.Trial, error) {
	topo := f.topology
	if topo == "auto" {
		topo = harness.AutoTopology()
	}
	if f.backend == "external" && f.serverCmd == "" {
		return harness.Trial{}, errors.New("--backend external needs --server-cmd 'CMD' (with {port} where it takes its port)")
	}
	switch {
	case f.serverPort != 0 && f.backend != "external":
		return harness.Trial{}, errors.New("--server-port is for --backend external only (a built-in server picks its own)")
	case f.serverPort < 0 || f.serverPort > 65535:
		return harness.Trial{}, fmt.Errorf("--server-port must be 1-65535 (0: ringbench picks a free one), got %d", f.serverPort)
	}
	if f.repeats < 1 {
		return harness.Trial{}, fmt.Errorf("--repeats must be at least 1, got %d", f.repeats)
	}
	t := harness.Trial{
		Backend: f.backend, ServerCmd: f.serverCmd, ServerPort: f.serverPort,
		Workload: workloads.Kind(f.workload), Direction: workloads.Direction(f.direction),
		Proto: backends.Proto(f.proto), Topology: topo,
		Conns: f.conns, Depth: f.depth, Size: f.size, Rate: f.rate,
		Arrival: workloads.Arrival(f.arrival), Cores: f.cores,
		Warmup: f.warmup, Duration: f.duration, Options: f.opts.m,
	}
	// --direction defaults to up, which echo ignores; any other direction
	// with echo is the user's mistake, and Check says so.
	if t.Workload == workloads.Echo && t.Direction == workloads.Up {
		t.Direction = ""
	}
	if err := t.Check(); err != nil {
		return t, err
	}
	_, _, err := harness.CPUs(f.cores)
	return t, err
}

// newRunner opens the results folder *out (a new one under bench-results
// when empty) and a runner that appends to it; closing the runner closes
// the store. *out becomes the folder written to (a link of the user's own,
// as bench-results/latest, resolved). It also clears what killed runs left.
func newRunner(out *string, log io.Writer) (*harness.Runner, error) {
	if *out == "" {
		*out = defaultOut()
	}
	store, err := results.Create(*out)
	if err != nil {
		return nil, err
	}
	*out = store.Dir()
	for _, w := range store.Warnings() {
		fmt.Fprintf(log, "warning: %s\n", w)
	}
	r := harness.NewRunner(store, filepath.Base(*out), log)
	r.Hugepages = dpdk.ReserveHugepages
	r.MemifAttach = memifAttach
	for _, what := range harness.SweepStale() {
		fmt.Fprintf(log, "removed %s left by an earlier run\n", what)
	}
	if os.Geteuid() == 0 {
		notes, err := dpdk.RestoreStaleHugepages()
		for _, n := range notes {
			fmt.Fprintf(log, "gave back %s\n", n)
		}
		if err != nil {
			fmt.Fprintf(log, "warning: %v\n", err)
		}
		notes, err = dpdk.SweepStaleXDP()
		for _, n := range notes {
			fmt.Fprintf(log, "detached %s\n", n)
		}
		if err != nil {
			fmt.Fprintf(log, "warning: %v\n", err)
		}
	}
	return r, nil
}

// lockRuns takes the run lock for a command that runs trials, or says
// which run holds it; release drops it.
func lockRuns(name string, stderr io.Writer) (release func(), err error) {
	paths, fromEnv := runlock.Paths()
	if fromEnv {
		fmt.Fprintf(stderr, "note: the run lock is %s, from $%s (meant for tests): runs that take the default ones are not kept out\n", paths[0], runlock.EnvPath)
	}
	l, err := runlock.Acquire(paths...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return func() { l.Release() }, nil
}

// openRunner takes the run lock and opens the runner (newRunner); done
// closes the runner and drops the lock.
func openRunner(name string, out *string, stderr io.Writer) (r *harness.Runner, done func(), err error) {
	unlock, err := lockRuns(name, stderr)
	if err != nil {
		return nil, nil, err
	}
	if r, err = newRunner(out, stderr); err != nil {
		unlock()
		return nil, nil, err
	}
	return r, func() { r.Close(); unlock() }, nil
}

var _ harness.MemifSession = (*dpdk.Session)(nil)

func memifAttach(ctx context.Context, spec workloads.Spec, m harness.MemifPath) (harness.MemifSession, error) {
	s, err := dpdk.Attach(ctx, spec, dpdk.GenOptions{Socket: m.Socket, CPUs: m.CPUs, Queues: m.Queues, Hugepages: m.Hugepages,
		ServerIP: m.Server.Addr(), ServerPort: int(m.Server.Port()), BeforeClose: m.BeforeClose})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// resultsRoot is the folder default results folders are made in; the
// latest link lives there and nowhere else.
const resultsRoot = "bench-results"

func defaultOut() string {
	return filepath.Join(resultsRoot, time.Now().Format("20060102-150405"))
}

const latestLink = "latest"

// markLatest points root/latest at dir, a folder in root, for `make
// report`. Only a link is ever replaced (a file or a folder named latest
// is the user's and stays), and atomically: a new link under a temporary
// name is renamed over the old one.
func markLatest(root, dir string) error {
	link := filepath.Join(root, latestLink)
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("mark latest: %s is not a link; left as it is", link)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mark latest: %w", err)
	}
	tmp := filepath.Join(root, fmt.Sprintf(".%s.tmp-%d", latestLink, os.Getpid()))
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
		return fmt.Errorf("mark latest: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mark latest: %w", err)
	}
	return nil
}

// trialCommand is what the commands that measure one configuration (run,
// ndr) share: the trial's flags, the results folder and the meter flags.
type trialCommand struct {
	tf  trialFlags
	out *string
	m   meterFlags
	fs  *flag.FlagSet
	// hosts places the hosts topology's sides (nil on other topologies).
	hosts *harness.HostsConfig
}

// parseTrialCommand parses name's flags: the shared ones, and those more
// registers.
func parseTrialCommand(name string, args []string, stderr io.Writer, more func(*flag.FlagSet)) (*trialCommand, error) {
	c := &trialCommand{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.SetOutput(stderr)
	c.tf.register(c.fs)
	if more != nil {
		more(c.fs)
	}
	c.out = c.fs.String("out", "", "results folder (default bench-results/<time>)")
	c.m.register(c.fs)
	if err := c.fs.Parse(args); err != nil {
		return nil, errUsage
	}
	if c.fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected argument %q", name, c.fs.Arg(0))
	}
	var err error
	if c.hosts, err = c.tf.hosts.config(c.fs, nil, []string{c.tf.topology}); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseTrialCommand("run", args, stderr, nil)
	if err != nil {
		return err
	}
	tf, out, m := &c.tf, c.out, &c.m
	t, err := tf.trial()
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	r, done, err := openRunner("run", out, stderr)
	if err != nil {
		return err
	}
	defer done()
	m.apply(r)
	r.Hosts = c.hosts
	var trials []harness.Trial
	for i := 0; i < tf.repeats; i++ {
		t.Repeat = i
		trials = append(trials, t)
	}
	recs, benchErr := harness.Bench(ctx, r, trials, stderr)
	if err := finish(*out, recs, stdout, stderr); err != nil {
		return err
	}
	if benchErr != nil {
		return fmt.Errorf("interrupted: %d finished trials kept in %s", len(recs), *out)
	}
	return verdict(recs, *out, false)
}

// finish writes the benchmark-format file and the summary of a folder and
// prints the table of recs, when there is anything to show.
func finish(dir string, recs []results.Record, stdout, stderr io.Writer) error {
	if err := writeOutputs(dir, stderr); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil // interrupted before the first trial ended
	}
	plots.PrintTable(stdout, recs)
	fmt.Fprintf(stdout, "\nresults: %s (%s, %s, %s)\n", dir, results.JSONLFile, results.BenchFile, results.SummaryFile)
	return nil
}

// writeOutputs writes the benchmark-format file and the summary of a
// folder from its results.jsonl.
func writeOutputs(dir string, stderr io.Writer) error {
	all, warnings, err := results.LoadWarn(dir)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s: %s\n", filepath.Join(dir, results.JSONLFile), w)
	}
	if len(all) == 0 {
		return nil // no trial has ended: nothing to summarise
	}
	if err := outdir.WriteFile(filepath.Join(dir, results.BenchFile), func(w io.Writer) error { return results.WriteBenchfmt(w, all) }); err != nil {
		return err
	}
	if err := outdir.WriteFile(filepath.Join(dir, results.SummaryFile), func(w io.Writer) error { return plots.Summary(dir, w) }); err != nil {
		return err
	}
	return nil
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("profile", "quick", "built-in profile ("+strings.Join(harness.Profiles(), ", ")+") or a YAML file")
	out := fs.String("out", "", "results folder (default bench-results/<time>)")
	topology := fs.String("topology", "", "override every experiment's topology (loopback, veth, hosts)")
	only := fs.String("backends", "", "comma-separated backends to keep (default: the profile's)")
	lesson := fs.Bool("lesson", true, "run the middle-ground experiments too")
	report := fs.Bool("report", true, "write report.md and report.html at the end")
	m := meterFlags{}
	m.register(fs)
	var hf hostsFlags
	hf.register(fs)
	validate := fs.Bool("validate", true, "check the meters against their ground truths first (ringbench validate; about 1.5 minutes); the report shows the outcome")
	dry := fs.Bool("n", false, "list the trials and exit")
	seed := fs.Int64("seed", 0, "order of the trials within each round of repeats (default: the profile's seed, else from the clock; printed so a run can be repeated)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	switch *topology {
	case "", harness.Loopback, harness.Veth, harness.Hosts:
	default:
		return fmt.Errorf("bench: unknown topology %q for --topology (want %s, %s or %s)", *topology, harness.Loopback, harness.Veth, harness.Hosts)
	}
	p, err := harness.LoadProfile(*profile)
	if err != nil {
		return err
	}
	if *seed != 0 {
		p.Seed = *seed
	}
	if p.Seed == 0 {
		p.Seed = time.Now().UnixNano()
	}
	trials, err := p.Trials(harness.AutoTopology())
	if err != nil {
		return fmt.Errorf("profile %s: %w", p.Name, err)
	}
	plans, err := p.Searches(harness.AutoTopology())
	if err != nil {
		return fmt.Errorf("profile %s: %w", p.Name, err)
	}
	plans = filterSearches(plans, *topology, *only)
	if len(trials) > 0 || len(plans) == 0 {
		if trials, err = filterTrials(trials, *topology, *only); err != nil {
			return err
		}
	}
	var topologies []string
	for _, t := range trials {
		topologies = append(topologies, t.Topology)
	}
	hosts, err := hf.config(fs, p.Hosts, topologies)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *dry {
		fmt.Fprintf(stdout, "profile %s: %d trials, order --seed %d\n", p.Name, len(trials), p.Seed)
		for i, t := range trials {
			fmt.Fprintf(stdout, "%3d %s #%d\n", i+1, harness.Describe(t), t.Repeat+1)
		}
		listSearches(stdout, plans)
		return nil
	}
	unlock, err := lockRuns("bench", stderr)
	if err != nil {
		return err
	}
	defer unlock()
	defaulted := *out == ""
	if defaulted {
		*out = defaultOut()
	}
	var validation *results.Validation
	if *validate {
		// The validation's trials go to a folder of their own; its table
		// to the run's folder, where the report finds it.
		vdir, err := outdir.Subdir(*out, "validate")
		if err != nil {
			return err
		}
		o := harness.DefaultValidateOptions
		// The meters are this host's on every topology: on hosts they are
		// validated on the local default.
		if *topology != harness.Hosts {
			o.Topology = *topology
		}
		v, err := runValidation(ctx, &vdir, o, stderr)
		if v != nil {
			printValidation(stderr, v)
			if err := v.Save(*out); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		validation = v
	}
	r, err := newRunner(out, stderr)
	if err != nil {
		return err
	}
	defer r.Close()
	m.apply(r)
	r.Hosts = hosts
	r.MaxAttempts = p.MaxAttempts
	if defaulted {
		if err := markLatest(resultsRoot, *out); err != nil {
			fmt.Fprintf(stderr, "warning: %v\n", err)
		}
	}
	fmt.Fprintf(stderr, "profile %s: %d trials into %s, order --seed %d\n", p.Name, len(trials), *out, p.Seed)
	recs, _ := harness.Bench(ctx, r, trials, stderr)
	if ctx.Err() == nil && *lesson {
		fmt.Fprintln(stderr, "lesson: kernel features per path and the null-syscall cost")
		// An interrupted lesson is not saved: its rows are not the
		// lesson asked for.
		if l, err := r.Lesson(ctx, lessonBackends(trials)); err == nil {
			if err := l.Save(*out); err != nil {
				return err
			}
		}
	}
	var searches []results.NDR
	var searchErr error
	if ctx.Err() == nil && len(plans) > 0 {
		searches, searchErr = runSearches(ctx, r, *out, plans, stdout, stderr)
	}
	if err := finish(*out, recs, stdout, stderr); err != nil {
		return err
	}
	// An interrupted run has no report: the report is what gets
	// published, and its figures would be a part presented as the whole.
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %d finished trials kept in %s, no report; `ringbench report %s` renders them", len(recs), *out, *out)
	}
	if searchErr != nil {
		return searchErr
	}
	if *report {
		if err := plots.Report(*out); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(stdout, "report: %s\n", filepath.Join(*out, results.ReportHTML))
		firstScreen(*out, stdout, stderr)
	}
	if err := benchVerdict(recs, searches, *out); err != nil {
		return err
	}
	// The searches' trials are measured as the matrix's are: the checks
	// every trial must hold are theirs too.
	searchRecs, err := results.LoadSearchTrials(*out)
	if err != nil {
		return fmt.Errorf("load the searches' trials: %w", err)
	}
	return trustVerdict(validation, append(recs, searchRecs...), *out, stderr)
}

// trustVerdict fails a bench whose validation failed, or whose own trials
// (its searches' included) broke a check every trial must hold (validate
// checked only its own trials); ndr calls it with no validation.
// Everything ran and is kept, and the report says at its top that these
// figures are not to be trusted: not a success.
func trustVerdict(validation *results.Validation, recs []results.Record, out string, stderr io.Writer) error {
	var failed []string
	if validation != nil {
		failed = validation.Failed()
	}
	for _, c := range results.TrialChecks(recs) {
		if c.Failed() {
			fmt.Fprintf(stderr, "FAILED on this run's trials: %s: %s (%s)\n", c.Name, c.Display, c.Detail)
			failed = append(failed, c.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %v; the results in %s are marked untrusted", errValidation, failed, out)
	}
	return nil
}

func lessonBackends(trials []harness.Trial) []string {
	seen := map[string]bool{}
	var names []string
	for _, t := range trials {
		if t.Backend == "dpdk-testpmd" || seen[t.Backend] {
			continue
		}
		seen[t.Backend] = true
		names = append(names, t.Backend)
	}
	sort.Strings(names)
	return names
}

func filterTrials(trials []harness.Trial, topology, only string) ([]harness.Trial, error) {
	keep := map[string]bool{}
	for _, b := range strings.Split(only, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if _, err := backends.Lookup(b); err != nil {
				return nil, err
			}
			keep[b] = true
		}
	}
	var out []harness.Trial
	for _, t := range trials {
		if len(keep) > 0 && !keep[t.Backend] {
			continue
		}
		if topology != "" && t.Topology != harness.Memif {
			t.Topology = topology
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, errors.New("no trials left after --backends/--topology")
	}
	return out, nil
}

func lessonCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lesson", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "results folder to store lesson.json in")
	names := fs.String("backends", "epoll,uring,uring-sqpoll,dpdk", "backends to check")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lesson: unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("lesson: --out DIR is required")
	}
	var list []string
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			if _, err := backends.Lookup(n); err != nil {
				return err
			}
			list = append(list, n)
		}
	}
	r, done, err := openRunner("lesson", out, stderr)
	if err != nil {
		return err
	}
	defer done()
	l, err := r.Lesson(ctx, list)
	if err != nil {
		return fmt.Errorf("lesson: %w; nothing saved", err)
	}
	if err := l.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "null syscall: %.1f ns\n", l.SyscallCost.NsPerCall)
	for _, f := range l.Features {
		fmt.Fprintf(stdout, "%-14s nft counts: %-10s nft drop stops: %-10s ss lists: %s\n", f.Backend, f.NftCounts.Verdict, f.NftDropStops.Verdict, f.SSListsSocket.Verdict)
	}
	for _, w := range l.NotMeasured {
		fmt.Fprintln(stdout, "not measured:", w)
	}
	return nil
}

func reportCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		return errors.New("report: want one results folder: ringbench report DIR")
	}
	dir, err := outdir.Check(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := plots.Report(dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n%s\n", filepath.Join(dir, results.ReportMD), filepath.Join(dir, results.ReportHTML))
	firstScreen(dir, stdout, stderr)
	return nil
}

// firstScreen saves the report's first screen beside it, or says why not:
// the report itself is complete without it.
func firstScreen(dir string, stdout, stderr io.Writer) {
	shot, err := plots.FirstScreen(dir)
	switch {
	case errors.Is(err, plots.ErrNoChromium):
		fmt.Fprintf(stderr, "note: no %s: %v\n", results.FirstScreenPNG, plots.ErrNoChromium)
	case err != nil:
		fmt.Fprintf(stderr, "warning: no %s: %v\n", results.FirstScreenPNG, err)
	default:
		fmt.Fprintln(stdout, shot)
	}
}

func compareCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	charts := fs.String("charts", "", "folder to write the comparison chart into (default: DIR_B)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 2 {
		return errors.New("compare: want two results folders: ringbench compare DIR_A DIR_B")
	}
	if *charts == "" {
		*charts = fs.Arg(1)
	}
	return plots.Compare(fs.Arg(0), fs.Arg(1), stdout, *charts)
}

func backendsCmd(stdout io.Writer) error {
	for _, b := range backends.All() {
		status := "available"
		if err := b.Probe(); err != nil {
			status = "unavailable: " + err.Error()
		}
		fmt.Fprintf(stdout, "%-14s %-40s protos %-8s %s\n", b.Name, b.Summary, joinProtos(b.Protos), status)
	}
	return nil
}

func joinProtos(ps []backends.Proto) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// serveCmd is the internal server process the harness starts.
func serveCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("backend", "", "backend name")
	proto := fs.String("proto", "tcp", "tcp or udp")
	service := fs.String("service", "echo", "echo, sink or source")
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 0, "port (0: any)")
	cpus := fs.String("cpus", "", "comma-separated CPUs, one loop each")
	msg := fs.Int("msg-size", 0, "message size")
	maxMsg := fs.Int("max-msg", 0, "largest UDP datagram accepted")
	iface := fs.String("iface", "", "interface (DPDK)")
	var opts optionFlag
	fs.Var(&opts, "opt", "backend option key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg := backends.Config{Proto: backends.Proto(*proto), Service: backends.Service(*service), Host: *host,
		Port: *port, MsgSize: *msg, MaxMsg: *maxMsg, Iface: *iface, Options: opts.m}
	for _, c := range strings.Split(*cpus, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		n, err := strconv.Atoi(c)
		if err != nil {
			return fmt.Errorf("serve: bad cpu %q", c)
		}
		cfg.CPUs = append(cfg.CPUs, n)
	}
	return harness.Serve(*name, cfg, stdin, stdout)
}

type optionFlag struct{ m map[string]string }

func (o *optionFlag) String() string { return fmt.Sprint(o.m) }
func (o *optionFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if o.m == nil {
		o.m = map[string]string{}
	}
	o.m[k] = v
	return nil
}

// meterFlags turn off the meters that cost something: the sampled profile
// of each cost window and the syscall-counting window after it.
type meterFlags struct {
	profile, countSyscalls bool
}

func (m *meterFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&m.profile, "cpu-profile", true, "sample the server cores in a 1 s window after each cost window, on the same server (sampling moves the cost, so never in the cost window): a pprof file per trial (profiles/) and the cycles breakdown by category")
	fs.BoolVar(&m.countSyscalls, "count-syscalls", true, "count syscalls per op in a 1 s window after each cost window, on the same server (the tracepoint slows every syscall, so never in the cost window)")
}

func (m *meterFlags) apply(r *harness.Runner) {
	r.NoProfile, r.NoSyscallCount = !m.profile, !m.countSyscalls
}
