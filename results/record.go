package results

import "time"

// Status of a trial.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"  // the trial ran and broke; Error says how
	StatusSkipped = "skipped" // the trial could not run here; Error says why
)

// NoOwnCounters starts the note of a record without the backend's own
// counters (an external server has none): what the report cites for its
// own-syscalls column, rather than another meter's note.
const NoOwnCounters = "own counters not read: "

// Record is one trial: its configuration, every meter, its flags and the
// environment. It is plain data: JSON field names are the file format.
// Pointer fields are null when the meter could not be read; a *Note field
// then says why.
type Record struct {
	Run     string    `json:"run"`   // run identifier (the results folder's)
	Trial   int       `json:"trial"` // index of the configuration in the matrix
	Repeat  int       `json:"repeat"`
	Attempt int       `json:"attempt"` // 1 + re-runs after a noisy attempt
	Time    time.Time `json:"time"`
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`

	Config

	// Throughput over the measurement window. WindowS is the meters'
	// window (the generator's differs by the time a snapshot takes).
	WindowS float64 `json:"window_s"`
	// MeterReadUS is the longest a window edge's snapshot took: how far the
	// meters' instants may be from the generator's.
	MeterReadUS float64 `json:"meter_read_us"`
	// WindowTraced and WindowSampled say whether a syscall tracepoint was
	// attached, or a sampler enabled, at either edge of this record's
	// window, as the meters found them. Cost figures come from a window
	// with neither: validate and bench fail a record that has one.
	WindowTraced  bool    `json:"window_traced,omitempty"`
	WindowSampled bool    `json:"window_sampled,omitempty"`
	Ops           uint64  `json:"ops"`
	Bytes         uint64  `json:"bytes"`
	Packets       *uint64 `json:"packets"` // wire segments and datagrams (or DPDK frames)
	PacketsSource string  `json:"packets_source,omitempty"`
	// LinkPackets are the server interface's skbs (a GSO/GRO aggregate
	// counts once), beside the wire count.
	LinkPackets       *uint64 `json:"link_packets,omitempty"`
	LinkPacketsSource string  `json:"link_packets_source,omitempty"`
	ThroughputOps     float64 `json:"throughput_ops"`
	Gbps              float64 `json:"throughput_gbps"`
	// CyclesPerByte (stream trials) is Cycles over the bytes moved, and
	// GbpsPerCore the throughput per fully busy server core (Gbps over
	// the server cores' busy share × their count): a bulk path's cost, as
	// cycles per op is an echo's.
	CyclesPerByte *float64 `json:"cycles_per_byte,omitempty"`
	GbpsPerCore   *float64 `json:"gbps_per_core,omitempty"`
	PPS           *float64 `json:"throughput_pps"`

	// Latency in microseconds (open loop: from each request's intended send
	// time). LatCurve holds (percentile, µs) points for distribution charts.
	LatP50  float64      `json:"lat_p50_us"`
	LatP90  float64      `json:"lat_p90_us"`
	LatP99  float64      `json:"lat_p99_us"`
	LatP999 float64      `json:"lat_p999_us"`
	LatMax  float64      `json:"lat_max_us"`
	LatMean float64      `json:"lat_mean_us"`
	Curve   []Percentile `json:"lat_curve,omitempty"`

	// Server CPU: process CPU time of all its threads (kernel work in its
	// context included; CPUSource: its cgroup, exited threads kept, or its
	// threads' schedstat), and its cores' busy time: wall − idle − iowait −
	// steal (BusySource: timer_list in ns, or proc_stat in 10 ms units).
	// OutsideNsPerOp is busy minus process CPU per op: kernel work on the
	// server cores outside the process (softirqs run from idle, kworkers).
	CPUSource       string   `json:"cpu_source,omitempty"`
	BusySource      string   `json:"busy_source,omitempty"`
	OutsideNsPerOp  float64  `json:"outside_ns_per_op"`
	StealNs         float64  `json:"steal_ns"`
	CPUNs           float64  `json:"cpu_ns"`
	CPUNsPerOp      float64  `json:"cpu_ns_per_op"`
	CPUNsPerPacket  *float64 `json:"cpu_ns_per_packet"`
	BusyNs          float64  `json:"busy_ns"`
	BusyNsPerOp     float64  `json:"busy_ns_per_op"`
	BusyNsPerPacket *float64 `json:"busy_ns_per_packet"`
	ServerBusy      float64  `json:"server_busy"` // busy fraction of the server cores
	ClientBusy      float64  `json:"client_busy"` // busy fraction of the client cores
	// ClientBusySource is set when the generator's host read its own cores
	// (the hosts topology): which host, and timer_list or proc_stat.
	ClientBusySource string `json:"client_busy_source,omitempty"`
	// ClientThreadBusy is the generator's loop threads' CPU over the window.
	ClientThreadBusy float64 `json:"client_thread_busy"`
	// ClientIdlePolls is a polling generator's (DPDK's) share of polls that
	// found nothing to do: its slack, where its core's busy says nothing.
	ClientIdlePolls *float64 `json:"client_idle_polls,omitempty"`

	// Cycles on the server cores: perf (hardware counter) or tsc (busy time
	// × TSC frequency).
	Cycles      float64 `json:"cycles"`
	CyclesPerOp float64 `json:"cycles_per_op"`
	// CyclesPerPacket divides Cycles by Packets, frames in plus out: an
	// echo counts twice.
	CyclesPerPacket *float64 `json:"cycles_per_packet"`
	CyclesSource    string   `json:"cycles_source"`
	// BusyCyclesPerPacket is a busy-polling backend's own count: TSC cycles
	// of the polls that carried packets over the frames received (a
	// source's: received and sent), as testpmd's --record-core-cycles
	// counts (DPDK); nil for the others. For echo its denominator is half
	// of CyclesPerPacket's: a request counts once here, twice there.
	BusyCyclesPerPacket *float64 `json:"busy_cycles_per_packet,omitempty"`

	// Syscalls: counted outside the server by the raw_syscalls:sys_enter
	// tracepoint, and by the backend itself. The tracepoint slows every
	// syscall on the machine, so it is attached only in a counting window
	// that follows the cost window on the same server (SyscallsSource says
	// which); CountCyclesPerOp is cycles/op measured in that counting
	// window, and SyscallMeterEffect = CountCyclesPerOp / CyclesPerOp − 1,
	// what counting did to the cost.
	Syscalls             *uint64           `json:"syscalls"`
	SyscallsPerOp        *float64          `json:"syscalls_per_op"`
	SyscallsSource       string            `json:"syscalls_source,omitempty"`
	SyscallsNote         string            `json:"syscalls_note,omitempty"`
	CountCyclesPerOp     *float64          `json:"count_cycles_per_op,omitempty"`
	SyscallMeterEffect   *float64          `json:"syscall_meter_effect,omitempty"`
	BackendSyscallsPerOp *float64          `json:"backend_syscalls_per_op"`
	BackendCounters      map[string]uint64 `json:"backend_counters,omitempty"`
	// SyscallsByName is the outside count of the counting window by
	// syscall name, per op: every syscall of the server's threads, those
	// outside the meter's name table as "other". It counts the same
	// tasks as Syscalls (a BPF program on the same tracepoint) and sums to
	// SyscallsPerOp within 0.1% plus the syscalls made while the window's
	// edges read the total, or it is not published and a note says why.
	// Names that counted nothing are left out.
	SyscallsByName map[string]float64 `json:"syscalls_by_name,omitempty"`
	// SyscallsDataPath are the names the backend's own count counts (its
	// registry entry's DataPathSyscalls); SyscallsExplained says in one
	// line what the outside count is made of: those names, with the own
	// count of the same counting window beside them, plus every name
	// beyond them. (SyscallsNote, by contrast, says why there is no count.)
	SyscallsDataPath  []string `json:"syscalls_data_path,omitempty"`
	SyscallsExplained string   `json:"syscalls_explained,omitempty"`

	// Errors seen by the generator in the window.
	Errors      uint64 `json:"errors"`
	ErrMismatch uint64 `json:"err_mismatch"`
	ErrReset    uint64 `json:"err_reset"`
	ErrTimeout  uint64 `json:"err_timeout"`
	ErrLost     uint64 `json:"err_lost"`
	// ErrLate: correct UDP replies that came after their request was given
	// up as lost (that request is in ErrLost too, never a mismatch).
	ErrLate uint64 `json:"err_late"`
	// LatCensored is how many requests the latency figures hold at the
	// time they were given up (lost or timed out) rather than at a reply:
	// lower bounds of their latency.
	LatCensored uint64 `json:"lat_censored"`
	// Late counts open-loop requests sent over 1 ms after their intended
	// time; Unsent those of the window never sent (every queue of their
	// loop full, or still queued at the window's end): the generator or the
	// server's slots were the limit.
	Late   uint64 `json:"late"`
	Unsent uint64 `json:"unsent"`
	// Behind is the part of Late that the generator's loop itself saw
	// late (its thread did not run: the generator, the harness beside it or
	// the machine); the rest waited for a free slot behind the server.
	Behind uint64 `json:"behind"`
	// EdgeLagUS (the hosts topology) is how long after the generator's
	// window edge, on its host, the meters here read theirs: half the
	// ssh round trip measured at that edge, less the time the meters took
	// before answering; the larger of the two edges. The meters' window
	// is shifted by about this much from the generator's.
	EdgeLagUS *float64 `json:"edge_lag_us,omitempty"`

	// Where the server cores' cycles went: a cpu-clock (or PMU cycles)
	// sample of the server cores through a profile window of its own after
	// the cost window (the sampling timer changes the cost: see
	// ProfileEffect), every sample classified by its call chain
	// (sampler.Categories). Profile is the
	// pprof file in the results folder. ProfileCoverage (cpu-clock only) is
	// the time the non-idle samples stand for over busy_ns: where it is
	// below 1 the samples missed busy time (a guest kernel that drops the
	// idle task's samples misses the work done on a core woken from idle).
	// CyclesBreakdown is each category's share of the busy time (its share
	// of the non-idle samples × the coverage) and share ×
	// ProfileCyclesPerOp, the profile window's cycles per op; "unsampled"
	// holds the rest, 1 − coverage, so the shares sum to 1.
	// ProfileEffect = ProfileCyclesPerOp / CyclesPerOp − 1: what sampling
	// did to the cost.
	Profile            string                    `json:"profile,omitempty"`
	ProfileEvent       string                    `json:"profile_event,omitempty"`
	ProfileSamples     int                       `json:"profile_samples,omitempty"`
	ProfileLost        uint64                    `json:"profile_lost,omitempty"`
	ProfileCoverage    *float64                  `json:"profile_coverage,omitempty"`
	CyclesBreakdown    map[string]BreakdownShare `json:"cycles_breakdown,omitempty"`
	ProfileCyclesPerOp *float64                  `json:"profile_cycles_per_op,omitempty"`
	ProfileEffect      *float64                  `json:"profile_effect,omitempty"`

	// Flags.
	ClientBound bool `json:"client_bound"`
	// ClientSharesServerCPUs: the machine had too few CPUs to give the
	// generator its own, so it ran on the server's cores. The trial's
	// throughput is real, but its core busy and cycles per op include the
	// generator's work on those cores: its cost figures stay out of the
	// headline comparison and are marked wherever they are shown.
	ClientSharesServerCPUs bool `json:"client_shares_server_cpus,omitempty"`

	Noisy         bool    `json:"noisy"`
	NoiseOtherCPU float64 `json:"noise_other_cpu"` // other tasks' share of the server cores
	NoiseRunDelay float64 `json:"noise_run_delay"` // server run delay / window
	NoiseSteal    float64 `json:"noise_steal"`     // hypervisor steal / window
	// NoiseTicked: the server cores' user+nice+system ticks beyond the
	// server's own CPU time, over the window: other tasks, those that
	// exited inside the window included (the scan misses them); a
	// low estimate, flagged noisy above twice the noise limit.
	NoiseTicked float64 `json:"noise_ticked"`
	// NoiseDeviceIRQs: device interrupts on the server cores that are not
	// the trial's NIC's, per second of the window (a disk, the host's own
	// NIC). Their time is not measured: the kernel accounts it only with
	// CONFIG_IRQ_TIME_ACCOUNTING, and then in the server's own softirq
	// too. Reported, not flagged.
	NoiseDeviceIRQs *float64 `json:"noise_device_irqs_per_s,omitempty"`
	// NoiseSource: "task scan" (per-task run-time deltas between the
	// window's edges, each put on the CPU it was last seen on: it misses
	// tasks that moved away). Records from before profile windows may say
	// "samples" (other tasks' share of the server cores' samples).
	NoiseSource string   `json:"noise_source,omitempty"`
	Notes       []string `json:"notes,omitempty"`

	Env Env `json:"env"`
}

// BreakdownShare is one category of a trial's cycles breakdown.
type BreakdownShare struct {
	Share       float64 `json:"share"`
	CyclesPerOp float64 `json:"cycles_per_op"`
}

// Config is a trial's configuration.
type Config struct {
	Backend    string  `json:"backend"` // family: epoll, uring, dpdk, external
	Variant    string  `json:"variant"` // "default", "sqpoll", ...
	Workload   string  `json:"workload"`
	Proto      string  `json:"proto"`
	Topology   string  `json:"topology"`
	Service    string  `json:"service"`
	Conns      int     `json:"conns"`
	Depth      int     `json:"depth"`
	Size       int     `json:"size"`
	RateTarget float64 `json:"rate_target"` // ops/s; 0 means closed loop
	Arrival    string  `json:"arrival,omitempty"`
	Cores      int     `json:"cores"`
	ServerCPUs []int   `json:"server_cpus"`
	ClientCPUs []int   `json:"client_cpus"`
	WarmupS    float64 `json:"warmup_s"`
	DurationS  float64 `json:"duration_s"`
	ServerCmd  string  `json:"server_cmd,omitempty"` // external backend only
	// ClientHost is the ssh destination the generator ran on (the hosts
	// topology only; ClientCPUs are then that host's).
	ClientHost string `json:"client_host,omitempty"`
	// Options are the backend options the trial asked for.
	Options map[string]string `json:"options,omitempty"`
	// HarnessOptions are the backend options the harness added (DPDK's
	// port plumbing), and ServerEnv the environment settings it gave the
	// server process (Go servers: no async preemption, GOMAXPROCS = loops
	// + 1); neither is part of the configuration's key.
	HarnessOptions map[string]string `json:"harness_options,omitempty"`
	ServerEnv      []string          `json:"server_env,omitempty"`
}

// Label names the server: the family alone for the default variant.
func (c Config) Label() string {
	if c.Variant == "" || c.Variant == "default" {
		return c.Backend
	}
	return c.Backend + "-" + c.Variant
}

// SharedCPUs lists the CPUs the generator shares with the server: empty
// when it has CPUs of its own.
func (c Config) SharedCPUs() []int {
	var out []int
	for _, s := range c.ServerCPUs {
		for _, g := range c.ClientCPUs {
			if s == g {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Key identifies a configuration across repeats and runs.
func (c Config) Key() string {
	return fmtKey(c)
}

// Percentile is one point of a latency distribution.
type Percentile struct {
	P  float64 `json:"p"` // 0..100
	US float64 `json:"us"`
}

// Env describes the machine and build a trial ran on.
type Env struct {
	Kernel       string  `json:"kernel"`
	CPUModel     string  `json:"cpu_model"`
	CPUs         int     `json:"cpus"`
	TSCHz        float64 `json:"tsc_hz"`
	TSCSource    string  `json:"tsc_source"`
	CyclesSource string  `json:"cycles_source"`
	GoVersion    string  `json:"go_version"`
	GitRev       string  `json:"git_rev"`
	Hostname     string  `json:"hostname"`
	Virtualized  bool    `json:"virtualized"`
}
