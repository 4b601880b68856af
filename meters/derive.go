package meters

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"ringbench/backends"
	"ringbench/results"
)

// PacketSource says where a trial's packets are counted.
type PacketSource int

const (
	// PacketsSNMP: the server namespace's TCP segments and UDP datagrams.
	PacketsSNMP PacketSource = iota
	// PacketsSNMPShared: the generator shares the server's namespace
	// (loopback): every segment is counted by both ends, so the count is
	// halved.
	PacketsSNMPShared
	// PacketsPort: a kernel-bypass server's port statistics (rx+tx).
	PacketsPort
)

// Limits are the thresholds of a trial's flags.
type Limits struct {
	Noise float64 // other tasks' share of the server cores
	Steal float64 // the hypervisor's share of the server cores
}

// DefaultLimits flag a trial noisy above 5% other tasks or 5% steal.
var DefaultLimits = Limits{Noise: 0.05, Steal: 0.05}

// Generator is what the load generator measured in its window.
type Generator struct {
	Ops, Bytes uint64
	Window     time.Duration
	// ThreadCPU is the generator's loop threads' CPU time in the window,
	// Loops their number: their share of the window says whether the
	// generator could have gone faster.
	ThreadCPU time.Duration
	Loops     int
	// Polling generators (DPDK) are always on CPU: IdlePollShare, the
	// share of their polls that found nothing to do, says how much slack
	// they had. Negative when not reported.
	Polling       bool
	IdlePollShare float64
	// CoresBusy, when set, is the busy share of the generator's CPUs that
	// the generator read itself, on another host than the meters (the
	// hosts topology): A and B hold this host's cores, not its.
	// CoresBusySource says where and how it was read.
	CoresBusy       *float64
	CoresBusySource string
	// Unsent counts the open-loop requests of the window the generator
	// never sent, every backlog being full (workloads.Report.Unsent);
	// Behind those its loop itself saw late, its thread having not run on
	// time (workloads.Report.Behind).
	Unsent, Behind uint64
}

// Window is everything a record's meters are derived from.
type Window struct {
	A, B         Snapshot
	ScanA, ScanB *TaskScan // nil when the noise scan did not run
	// Skip are the tasks that are not noise on the server cores: the
	// server's own threads and the server CPUs' ksoftirqd.
	Skip       map[int]bool
	ServerCPUs []int
	ClientCPUs []int
	TSCHz      float64
	Packets    PacketSource
	Iface      string // the server's interface for the skb counters
	CPUSource  string // "cgroup" or "schedstat"
	Gen        Generator
	Rate       float64 // open-loop target, 0 for closed loop
	// Stream: a one-way bulk workload, whose cost is per byte moved.
	Stream bool
	// DataPathSyscalls are the syscall names the backend's own count
	// counts (backends.Backend.DataPathSyscalls): what the outside count's
	// explanation sets apart from the rest.
	DataPathSyscalls []string
	// TrialIRQs are the IRQs of the trial's own NIC (the hosts topology);
	// virtual links (loopback, veth, memif) raise none. TrialIRQsErr says
	// why they are unknown, and device interrupts are then not reported.
	TrialIRQs    map[string]bool
	TrialIRQsErr error
	// BusyPolls: the server polls (DPDK, a spinning SQPOLL loop), so its
	// cores are always busy.
	BusyPolls bool
	Limits    Limits
}

// NoSyscallsByName starts the note of a window whose syscalls by name are
// not published.
const NoSyscallsByName = "syscalls by name not published: "

// Fill derives every meter field of rec from w. It is pure: the same window
// gives the same record.
func Fill(rec *results.Record, w Window) {
	win := (w.B.At - w.A.At).Seconds()
	rec.WindowS = win
	rec.WindowTraced, rec.WindowSampled = w.A.Traced || w.B.Traced, w.A.Sampled || w.B.Sampled
	rec.MeterReadUS = float64(max(w.A.ReadTook, w.B.ReadTook)) / 1e3
	genWin := w.Gen.Window.Seconds()
	if genWin <= 0 {
		genWin = win
	}
	ops := float64(w.Gen.Ops)
	perOp := func(v float64) float64 {
		if w.Gen.Ops == 0 {
			return 0
		}
		return v / ops
	}
	// Each count over the window that counted it: ops and bytes over the
	// generator's, packets (fillPackets) and every meter over the meters'.
	// Both windows' edges are marked the same way (the generator marks,
	// the meters read right after), so their lengths differ by the
	// difference of the snapshots' read times, well under 0.1% of a
	// window. A harness thread preempted between the mark and the read
	// shifts one edge by the stall (7.5 ms once in a 1 s window on the
	// loaded development VM): then the ops and the meters cover different
	// spans, every per-op figure is off by that share, and the trial is
	// flagged noisy to be re-run.
	rec.Ops, rec.Bytes = w.Gen.Ops, w.Gen.Bytes
	rec.ThroughputOps = ops / genWin
	rec.Gbps = float64(w.Gen.Bytes) * 8 / genWin / 1e9
	if d := win - genWin; genWin > 0 && (d > 0.001*genWin || d < -0.001*genWin) {
		rec.Noisy = true
		rec.Notes = append(rec.Notes, fmt.Sprintf("noisy: meter window %.4f s and generator window %.4f s differ by more than 0.1%%: "+
			"the harness was held up at an edge, and per-op figures divide the meters by ops of another span", win, genWin))
	}

	packets := fillPackets(rec, w, win)
	perPacket := func(v float64) *float64 {
		if packets == 0 {
			return nil
		}
		x := v / packets
		return &x
	}

	// Process CPU: the server's cgroup (or threads).
	rec.CPUSource = w.CPUSource
	if w.A.ServerCPUErr == nil && w.B.ServerCPUErr == nil {
		rec.CPUNs = w.B.ServerCPU - w.A.ServerCPU
		rec.CPUNsPerOp = perOp(rec.CPUNs)
		rec.CPUNsPerPacket = perPacket(rec.CPUNs)
	} else {
		rec.Notes = append(rec.Notes, "process CPU not read: "+firstErr(w.A.ServerCPUErr, w.B.ServerCPUErr).Error())
	}

	// Core busy: wall − idle − iowait − steal, per server CPU.
	ncores := float64(len(w.ServerCPUs))
	busy, steal, busySource, cpuErr := coreBusy(w.A, w.B, w.ServerCPUs, win)
	rec.BusySource = busySource
	if cpuErr != nil {
		rec.Notes = append(rec.Notes, "core busy not read: "+cpuErr.Error())
	}
	rec.BusyNs = busy
	rec.BusyNsPerOp = perOp(busy)
	rec.BusyNsPerPacket = perPacket(busy)
	rec.StealNs = steal
	if ncores > 0 && win > 0 {
		rec.ServerBusy = busy / (win * 1e9 * ncores)
		rec.NoiseSteal = steal / (win * 1e9 * ncores)
	}
	// Kernel work on the server cores outside the process: softirqs run
	// from idle or interrupt context (RPS steers the server's receive work
	// there), kworkers, other tasks. Negative values mean the two meters
	// disagree and are reported as they are.
	if cpuErr == nil && rec.CPUNs > 0 {
		rec.OutsideNsPerOp = perOp(busy - rec.CPUNs)
	}

	if shared := (results.Config{ServerCPUs: w.ServerCPUs, ClientCPUs: w.ClientCPUs}).SharedCPUs(); len(shared) > 0 {
		rec.ClientSharesServerCPUs = true
		rec.Notes = append(rec.Notes, fmt.Sprintf("the generator shares the server's CPUs %v (too few CPUs to give it its own): "+
			"core busy and cycles per op include the generator's work on them, so this trial's cost is not the server's alone "+
			"and stays out of the headline comparison", shared))
	}
	if w.Gen.CoresBusy != nil {
		rec.ClientBusy, rec.ClientBusySource = *w.Gen.CoresBusy, w.Gen.CoresBusySource
	} else if n := float64(len(w.ClientCPUs)); n > 0 && win > 0 {
		cliBusy, _, _, _ := coreBusy(w.A, w.B, w.ClientCPUs, win)
		rec.ClientBusy = cliBusy / (win * 1e9 * n)
	}
	if w.Gen.Loops > 0 && genWin > 0 {
		rec.ClientThreadBusy = w.Gen.ThreadCPU.Seconds() / (genWin * float64(w.Gen.Loops))
	}

	// Cycles: a hardware counter where there is a PMU, else TSC-equivalent.
	if w.A.CyclesErr == nil && w.B.CyclesErr == nil && w.B.Cycles >= w.A.Cycles {
		rec.Cycles = float64(w.B.Cycles - w.A.Cycles)
		rec.CyclesSource = "perf"
	} else {
		rec.Cycles = busy / 1e9 * w.TSCHz
		rec.CyclesSource = "tsc"
	}
	rec.CyclesPerOp = perOp(rec.Cycles)
	rec.CyclesPerPacket = perPacket(rec.Cycles)
	if w.Stream && w.Gen.Bytes > 0 && busy > 0 && win > 0 {
		cpb := rec.Cycles / float64(w.Gen.Bytes)
		cores := busy / (win * 1e9) // busy server cores, on average
		perCore := rec.Gbps / cores
		rec.CyclesPerByte, rec.GbpsPerCore = &cpb, &perCore
	}

	// Syscalls: only a counting window has them.
	if w.A.SyscallsErr == nil && w.B.SyscallsErr == nil {
		n := w.B.Syscalls - w.A.Syscalls
		rec.Syscalls = &n
		v := perOp(float64(n))
		rec.SyscallsPerOp = &v
		rec.SyscallsSource = "tracepoint (this window)"
		by, err := SyscallsByName(w.A.SyscallsByName, w.B.SyscallsByName, n, w.A.SyscallsReadGap+w.B.SyscallsReadGap)
		if w.A.SyscallsByNameErr != nil || w.B.SyscallsByNameErr != nil {
			err = firstErr(w.A.SyscallsByNameErr, w.B.SyscallsByNameErr)
		}
		if err != nil {
			rec.Notes = append(rec.Notes, NoSyscallsByName+err.Error())
		} else {
			rec.SyscallsByName = map[string]float64{}
			for name, v := range by {
				rec.SyscallsByName[name] = perOp(float64(v))
			}
		}
	} else {
		rec.SyscallsNote = firstErr(w.A.SyscallsErr, w.B.SyscallsErr).Error()
	}
	if w.A.CountersErr == nil && w.B.CountersErr == nil {
		v := perOp(float64(w.B.Counters.Syscalls - w.A.Counters.Syscalls))
		rec.BackendSyscallsPerOp = &v
		rec.BackendCounters = CounterDelta(w.A.Counters, w.B.Counters)
		if bp := rec.BackendCounters["busy_packets"]; bp > 0 {
			v := float64(rec.BackendCounters["busy_cycles"]) / float64(bp)
			rec.BusyCyclesPerPacket = &v
		}
	} else {
		rec.Notes = append(rec.Notes, results.NoOwnCounters+firstErr(w.A.CountersErr, w.B.CountersErr).Error())
	}

	if rec.SyscallsByName != nil {
		rec.SyscallsDataPath = w.DataPathSyscalls
		rec.SyscallsExplained = ExplainSyscalls(*rec.SyscallsPerOp, rec.BackendSyscallsPerOp, rec.SyscallsByName, w.DataPathSyscalls)
	}

	if w.Gen.Polling && w.Gen.IdlePollShare >= 0 {
		v := w.Gen.IdlePollShare
		rec.ClientIdlePolls = &v
	}
	fillNoise(rec, w, win, ncores)
	fillClientBound(rec, w)
	if w.BusyPolls {
		rec.Notes = append(rec.Notes, "the server busy-polls: its cores are always busy; compare its own busy_cycles/busy_packets")
	}
}

// Measured says why a record filled by Fill and FillLatency measured
// nothing a report may use, or nil. A single mismatch is a wrong byte
// echoed: the server is broken, and its figures are not a path's cost.
// With no op in the window every per-op figure is empty.
func Measured(rec *results.Record) error {
	switch given := rec.ErrLost + rec.ErrTimeout; {
	case rec.ErrMismatch > 0:
		return fmt.Errorf("%d replies were not the bytes sent: the server echoed wrong bytes", rec.ErrMismatch)
	case rec.Ops == 0 && given > 0:
		return fmt.Errorf("every request was lost: none answered, %d lost, %d timed out", rec.ErrLost, rec.ErrTimeout)
	case rec.Ops == 0:
		return errors.New("0 ops in the measurement window: nothing was measured")
	}
	return nil
}

// Busy-time sources, as records name them.
const (
	BusyTimerList = "timer_list"
	BusyProcStat  = "proc_stat"
)

// coreBusy sums wall − idle − iowait − steal over cpus, and steal. Idle
// and iowait come from /proc/timer_list in ns where both snapshots have it
// (its own clock is the wall), else from /proc/stat in 10 ms units over the
// snapshots' window. Steal is only in /proc/stat.
func coreBusy(a, b Snapshot, cpus []int, win float64) (busy, steal float64, source string, err error) {
	if a.CPUErr != nil || b.CPUErr != nil {
		return 0, 0, "", firstErr(a.CPUErr, b.CPUErr)
	}
	precise := a.IdleErr == nil && b.IdleErr == nil && b.Idle.Now > a.Idle.Now
	source = BusyProcStat
	if precise {
		source = BusyTimerList
	}
	for _, c := range cpus {
		x, ok1 := a.CPU[c]
		y, ok2 := b.CPU[c]
		if !ok1 || !ok2 {
			return 0, 0, "", fmt.Errorf("cpu%d missing from /proc/stat", c)
		}
		st := y.Steal - x.Steal
		var wall, idle float64
		if precise {
			i0, ok1 := a.Idle.Idle[c]
			i1, ok2 := b.Idle.Idle[c]
			if !ok1 || !ok2 {
				return 0, 0, "", fmt.Errorf("cpu%d missing from /proc/timer_list", c)
			}
			wall, idle = b.Idle.Now-a.Idle.Now, i1-i0
		} else {
			wall, idle = win*1e9, (y.Idle-x.Idle)+(y.IOWait-x.IOWait)
		}
		// /proc/stat counts in 10 ms units: a CPU idle for the whole
		// window can read a unit more idle than the wall clock.
		busy += max(wall-idle-st, 0)
		steal += st
	}
	return busy, steal, source, nil
}

func fillPackets(rec *results.Record, w Window, win float64) float64 {
	var packets float64
	switch w.Packets {
	case PacketsPort:
		if w.A.CountersErr == nil && w.B.CountersErr == nil {
			rx := w.B.Counters.Extra["port_rx_packets"] - w.A.Counters.Extra["port_rx_packets"]
			tx := w.B.Counters.Extra["port_tx_packets"] - w.A.Counters.Extra["port_tx_packets"]
			p := rx + tx
			rec.Packets = &p
			rec.PacketsSource = "DPDK port statistics (rx+tx frames)"
			packets = float64(p)
		} else {
			rec.Notes = append(rec.Notes, "packets not counted: "+firstErr(w.A.CountersErr, w.B.CountersErr).Error())
		}
	default:
		if w.A.SNMPErr == nil && w.B.SNMPErr == nil {
			p := w.B.SNMP.Packets() - w.A.SNMP.Packets()
			rec.PacketsSource = "server namespace /proc/net/snmp: TCP segments + UDP datagrams, in + out"
			if w.Packets == PacketsSNMPShared {
				p /= 2
				rec.PacketsSource = "/proc/net/snmp shared by server and generator (loopback): TCP segments + UDP datagrams, in + out, halved"
			}
			rec.Packets = &p
			packets = float64(p)
		} else {
			rec.Notes = append(rec.Notes, "packets not counted: "+firstErr(w.A.SNMPErr, w.B.SNMPErr).Error())
		}
	}
	if rec.Packets != nil && win > 0 {
		pps := packets / win
		rec.PPS = &pps
	}
	if w.Iface != "" && w.A.LinkErr == nil && w.B.LinkErr == nil {
		x, ok1 := w.A.Links[w.Iface]
		y, ok2 := w.B.Links[w.Iface]
		if ok1 && ok2 {
			p := (y.RxPackets - x.RxPackets) + (y.TxPackets - x.TxPackets)
			rec.LinkPackets = &p
			rec.LinkPacketsSource = w.Iface + " rx+tx skbs (a GSO/GRO aggregate counts once)"
		}
	}
	return packets
}

func fillNoise(rec *results.Record, w Window, win, ncores float64) {
	switch {
	case w.ScanA != nil && w.ScanB != nil && (w.ScanA.Err != nil || w.ScanB.Err != nil):
		rec.Notes = append(rec.Notes, "other tasks on the server cores not scanned: "+firstErr(w.ScanA.Err, w.ScanB.Err).Error())
	case w.ScanA != nil && w.ScanB != nil:
		rec.NoiseSource = "task scan"
		// The scans run when the generator leaves its CPU idle: right
		// after each edge, unless the generator kept it busy.
		off := max(abs(w.ScanA.At-w.A.At), abs(w.ScanB.At-w.B.At))
		// The scans' span must cover nearly all the window for their
		// share to stand for it: a scan the generator kept waiting past
		// the other edge measured some other span.
		overlap := (min(w.ScanB.At, w.B.At) - max(w.ScanA.At, w.A.At)).Seconds()
		span := (w.ScanB.At - w.ScanA.At).Seconds()
		switch {
		case win > 0 && overlap < 0.9*win:
			rec.NoiseSource = ""
			rec.Notes = append(rec.Notes, fmt.Sprintf("other tasks on the server cores not measured: the task scans were "+
				"read up to %.1f ms off the window's edges (the generator kept their CPU busy) and cover %.0f%% of it",
				float64(off)/1e6, 100*max(overlap, 0)/win))
			span = 0
		case win > 0 && off.Seconds() > 0.01*win:
			rec.Notes = append(rec.Notes, fmt.Sprintf("the task scans were read up to %.1f ms off the window's edges "+
				"(the generator kept their CPU busy): other tasks' share is over the scans' span", float64(off)/1e6))
		}
		if span > 0 && ncores > 0 {
			other := OtherTasksNs(*w.ScanA, *w.ScanB, w.ServerCPUs, w.Skip)
			// A task's time is put on the CPU it was last seen on, so a
			// busy task that moved can overshoot: an estimate, capped.
			rec.NoiseOtherCPU = min(other/(span*1e9*ncores), 1)
		}
	default:
		rec.Notes = append(rec.Notes, "other tasks on the server cores not scanned")
	}
	if err := firstErrOrNil(w.A.RunDelayErr, w.B.RunDelayErr); err != nil {
		rec.Notes = append(rec.Notes, "run delay not read: "+err.Error())
	} else if ncores > 0 && win > 0 {
		rec.NoiseRunDelay = (w.B.RunDelay - w.A.RunDelay) / (win * 1e9 * ncores)
	}
	lim := w.Limits
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	if rec.NoiseOtherCPU > lim.Noise {
		rec.Noisy = true
		rec.Notes = append(rec.Notes, fmt.Sprintf("noisy: other tasks took %.1f%% of the server cores", 100*rec.NoiseOtherCPU))
	}
	// A generator on the server cores is the trial's own load, which the
	// ticks cannot tell from other tasks': the trial says it shares them.
	if t, ok := tickedOthers(w); ok && ncores > 0 && win > 0 && !rec.ClientSharesServerCPUs {
		rec.NoiseTicked = t / (win * 1e9 * ncores)
		// Ticks are 4 ms samples (HZ=250): a margin of the limit again
		// for their error, so that only a task that took a large share
		// flags the trial on them alone.
		if rec.NoiseTicked > 2*lim.Noise {
			rec.Noisy = true
			rec.Notes = append(rec.Notes, fmt.Sprintf("noisy: the server cores' user and system ticks exceed the server's CPU time by "+
				"%.1f%% of the cores: tasks the scan did not see (they exited inside the window)", 100*rec.NoiseTicked))
		}
	}
	fillDeviceIRQs(rec, w, win)
	if rec.NoiseSteal > lim.Steal {
		rec.Noisy = true
		rec.Notes = append(rec.Notes, fmt.Sprintf("noisy: the hypervisor stole %.1f%% of the server cores", 100*rec.NoiseSteal))
	}
}

// fillDeviceIRQs counts the device interrupts on the server cores that
// are not the trial's NIC's. Hardware interrupts' time is not in /proc/stat
// on a kernel without CONFIG_IRQ_TIME_ACCOUNTING, and the softirq column
// holds the server's own receive work: the count is what is measurable.
func fillDeviceIRQs(rec *results.Record, w Window, win float64) {
	err := firstErrOrNil(w.TrialIRQsErr, w.A.IRQErr, w.B.IRQErr)
	if err == nil && win <= 0 {
		err = errors.New("empty window")
	}
	if err != nil {
		rec.Notes = append(rec.Notes, "device interrupts on the server cores not counted: "+err.Error())
		return
	}
	var n uint64
	for irq, b := range w.B.IRQs {
		a, ok := w.A.IRQs[irq]
		if w.TrialIRQs[irq] || !ok {
			continue // the trial's own, or set up inside the window
		}
		for _, c := range w.ServerCPUs {
			// A count that went back is an IRQ freed and set up again
			// inside the window: like one set up there, left out.
			if b[c] >= a[c] {
				n += b[c] - a[c]
			}
		}
	}
	// The counts are read with the task scans (harness), over their span.
	if w.ScanA != nil && w.ScanB != nil && w.ScanB.At > w.ScanA.At {
		win = (w.ScanB.At - w.ScanA.At).Seconds()
	}
	v := float64(n) / win
	rec.NoiseDeviceIRQs = &v
}

// tickedOthers is the time of tasks other than the server on the server
// cores as /proc/stat's ticks saw it: their user, nice and system ticks
// over the window less the server's own CPU time. The task scans cannot
// see a task that started and exited between them (a compiler run by
// another user: validate's cycles/op spread once came from a trial whose
// core was 56% busy outside the server while the scan saw 1%); the ticks
// do. They miss short bursts, so a bursty server's own time is
// under-ticked and this estimate is low rather than high; softirq and
// interrupt ticks are in columns of their own and not counted.
func tickedOthers(w Window) (float64, bool) {
	if w.A.CPUErr != nil || w.B.CPUErr != nil || w.A.ServerCPUErr != nil || w.B.ServerCPUErr != nil {
		return 0, false
	}
	var ticked float64
	for _, c := range w.ServerCPUs {
		a, okA := w.A.CPU[c]
		b, okB := w.B.CPU[c]
		if !okA || !okB {
			return 0, false
		}
		ticked += (b.User + b.Nice + b.System) - (a.User + a.Nice + a.System)
	}
	return max(0, ticked-(w.B.ServerCPU-w.A.ServerCPU)), true
}

// fillClientBound flags a trial whose generator may have been its limit:
// its threads were on CPU nearly all the window, or its cores were (their
// softirq work included), or a polling generator found work in nearly all
// its polls, or in open loop it fell behind its schedule and stopped
// queueing (Unsent with Behind: the load asked for was not offered, and
// the generator's own lateness is why); and, in open loop, it missed its
// rate. Unsent without Behind is the server's doing: its replies did not
// free the request slots (an NDR search overshooting the server's rate
// does this), so it is said but not flagged.
func fillClientBound(rec *results.Record, w Window) {
	var why string
	switch {
	case w.Gen.Polling && w.Gen.IdlePollShare >= 0:
		if w.Gen.IdlePollShare < 0.05 {
			why = fmt.Sprintf("the polling generator found work in %.0f%% of its polls", 100*(1-w.Gen.IdlePollShare))
		}
	case w.Gen.Polling:
		// No idle-poll count: a polling core is always busy, which says
		// nothing; not flagged.
	case rec.ClientThreadBusy >= 0.95:
		why = fmt.Sprintf("generator threads on CPU %.0f%% of the window", 100*rec.ClientThreadBusy)
	case rec.ClientBusy >= 0.95 && !rec.ClientSharesServerCPUs:
		// On shared CPUs the server's work keeps them busy too: their
		// busy time says nothing of the generator's, and only its
		// threads' own CPU time (above) can flag it.
		why = fmt.Sprintf("generator CPUs %.0f%% busy", 100*rec.ClientBusy)
	}
	if why != "" {
		rec.ClientBound = true
		rec.Notes = append(rec.Notes, why+": the generator may limit this trial")
	}
	if w.Rate > 0 && w.Gen.Unsent > 0 {
		due := w.Rate * rec.WindowS
		if w.Gen.Window > 0 {
			due = w.Rate * w.Gen.Window.Seconds()
		}
		unsent := fmt.Sprintf("%d of the window's %.0f requests (%.1f%%) were never sent: every backlog of the generator's connections was full, so the load asked for was not offered",
			w.Gen.Unsent, due, 100*float64(w.Gen.Unsent)/due)
		if w.Gen.Behind > 0 {
			rec.ClientBound = true
			rec.Notes = append(rec.Notes, fmt.Sprintf("client-bound: %s; the generator fell behind its schedule (its loop saw %d requests late itself) and stopped queueing", unsent, w.Gen.Behind))
		} else {
			rec.Notes = append(rec.Notes, unsent+"; its loop was on time, so the server's replies did not free the request slots")
		}
	}
	if w.Rate > 0 {
		ratio := rec.ThroughputOps / w.Rate
		if ratio < 0.98 {
			who := "the server saturated"
			if rec.ClientBound {
				who = "the generator could not keep up"
			}
			rec.Notes = append(rec.Notes, fmt.Sprintf("achieved %.0f of %.0f ops/s (%.1f%%): %s", rec.ThroughputOps, w.Rate, 100*ratio, who))
		}
	}
}

// CounterDelta is the difference of two readings of a backend's counters.
func CounterDelta(a, b backends.Counters) map[string]uint64 {
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

func abs(d time.Duration) time.Duration { return max(d, -d) }

// firstErrOrNil is the first non-nil error, or nil.
func firstErrOrNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// firstErr is firstErrOrNil for errors known to hold one.
func firstErr(errs ...error) error {
	if err := firstErrOrNil(errs...); err != nil {
		return err
	}
	return errors.New("unknown")
}
